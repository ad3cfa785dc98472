# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Sourced by scripts/test-all.sh and scripts/demo.sh: installs the Debian
# packages that rill's build, tests, benchmarks and demo need. A machine
# that already has them all gets no apt-get call at all; one that lacks
# only optional packages gets one install attempt without a list update.

RILL_DEPS=(build-essential cmake pkg-config clang liburing-dev libssl-dev
	libcriterion-dev libuv1-dev openssl curl nginx python3 python3-uvloop
	iproute2 libclang-rt-14-dev iperf3 gnuplot-nox g++ abigail-tools dpkg-dev
	file man-db groff-base libhttp-parser-dev wrk)
# Tests that need these skip, with the reason, without them. The cross C
# library headers are only a recommendation of gcc-aarch64-linux-gnu, which
# --no-install-recommends leaves out: they are named here.
RILL_DEPS_OPTIONAL=(valgrind gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
# The benchmark peers (bench/peers): libevent, Boost.Asio (1.78 or later
# for its io_uring backend), Go, and tokio built offline from Debian's
# crates. compare.py leaves out, with the reason, a peer that cannot build.
RILL_DEPS_OPTIONAL+=(libevent-dev libboost1.81-dev golang-go cargo librust-tokio-dev)

rill__pkg_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

rill_install_deps() {
	local missing=() optional=() p sudo=() rc=0 policy=/usr/sbin/policy-rc.d

	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "deps: not a Debian system; install these yourself: ${RILL_DEPS[*]}" >&2
		return 0
	fi
	for p in "${RILL_DEPS[@]}"; do
		rill__pkg_installed "$p" || missing+=("$p")
	done
	for p in "${RILL_DEPS_OPTIONAL[@]}"; do
		rill__pkg_installed "$p" || optional+=("$p")
	done
	((${#missing[@]} + ${#optional[@]})) || return 0

	if [[ $(id -u) -ne 0 ]]; then
		if ! command -v sudo >/dev/null 2>&1; then
			((${#missing[@]})) || return 0
			echo "deps: missing ${missing[*]}; run as root or install them" >&2
			return 1
		fi
		sudo=(sudo)
	fi
	if ((${#missing[@]} == 0)); then
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${optional[@]}" >/dev/null 2>&1 ||
			echo "deps: optional ${optional[*]} not installed; tests that need them skip" >&2
		return 0
	fi
	echo "deps: installing ${missing[*]}"
	# Keep package scripts from starting services (nginx would take port
	# 80): the benchmarks start their own servers.
	local own_policy=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
		"${sudo[@]}" chmod +x "$policy"
		own_policy=1
	fi
	"${sudo[@]}" apt-get update || rc=$?
	if ((rc == 0)); then
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends "${missing[@]}" || rc=$?
	fi
	if ((rc == 0 && ${#optional[@]})); then
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends "${optional[@]}" ||
			echo "deps: optional ${optional[*]} not installed" >&2
	fi
	((own_policy)) && "${sudo[@]}" rm -f "$policy"
	return $rc
}
