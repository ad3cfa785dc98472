#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the peers that are not C (CMake builds bench/peers/*.c) into
# BUILD/bench/peers: asio_uring_echo and asio_epoll_echo (Boost.Asio, C++20
# coroutines, on io_uring and on epoll), tokio_echo (cargo, offline, from
# Debian's packaged crates) and go_echo (go). Each one whose toolchain or
# package is missing is skipped with the reason; a binary newer than its
# sources is left as it is. Always exits 0: compare.py runs what is there.
#
# Usage: bench/peers/build-peers.sh BUILD
set -uo pipefail

peers=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:?usage: build-peers.sh BUILD}
out=$build/bench/peers
mkdir -p "$out"
out=$(cd "$out" && pwd)

skip() { echo "build-peers: $1 skipped: $2" >&2; }

# fresh BIN SOURCE...: BIN exists and is newer than every SOURCE.
fresh() {
	local bin=$1 src
	shift
	[[ -x $bin ]] || return 1
	for src in "$@"; do
		[[ $src -nt $bin ]] && return 1
	done
	return 0
}

asio() {
	local src=$peers/asio_echo/asio_echo.cpp
	if ! command -v g++ >/dev/null; then
		skip "asio_*_echo" "no g++"
		return
	fi
	if [[ ! -e /usr/include/boost/asio.hpp ]]; then
		skip "asio_*_echo" "no Boost.Asio (libboost-dev or libboost1.81-dev)"
		return
	fi
	fresh "$out/asio_epoll_echo" "$src" ||
		g++ -std=c++20 -O2 -DNDEBUG -o "$out/asio_epoll_echo" "$src" ||
		skip asio_epoll_echo "g++ failed"
	if [[ ! -e /usr/include/boost/asio/detail/io_uring_service.hpp ]]; then
		skip asio_uring_echo "this Boost has no io_uring backend (1.78 or later)"
	elif ! pkg-config --exists liburing; then
		skip asio_uring_echo "no liburing-dev"
	else
		local uring
		read -ra uring <<<"$(pkg-config --cflags --libs liburing)"
		fresh "$out/asio_uring_echo" "$src" ||
			g++ -std=c++20 -O2 -DNDEBUG -DBOOST_ASIO_HAS_IO_URING \
				-DBOOST_ASIO_DISABLE_EPOLL -o "$out/asio_uring_echo" "$src" \
				"${uring[@]}" ||
			skip asio_uring_echo "g++ failed"
	fi
}

tokio() {
	local dir=$peers/tokio_echo cargo=/usr/bin/cargo rustc=/usr/bin/rustc
	# Debian's cargo and rustc, which the packaged crates are made for,
	# ahead of a rustup toolchain on PATH.
	[[ -x $cargo ]] || cargo=$(command -v cargo) || cargo=
	[[ -x $rustc ]] || rustc=$(command -v rustc) || rustc=
	if [[ -z $cargo || -z $rustc ]]; then
		skip tokio_echo "no cargo (apt: cargo)"
		return
	fi
	if ! compgen -G '/usr/share/cargo/registry/tokio-1.*' >/dev/null; then
		skip tokio_echo "no packaged tokio crate (apt: librust-tokio-dev)"
		return
	fi
	fresh "$out/tokio_echo" "$dir/src/main.rs" "$dir/Cargo.toml" && return
	if (cd "$dir" && CARGO_TARGET_DIR=$out/tokio-target RUSTC=$rustc \
		"$cargo" build --release --offline -q); then
		cp "$out/tokio-target/release/tokio_echo" "$out/tokio_echo"
	else
		skip tokio_echo "cargo build failed"
	fi
}

go_peer() {
	local dir=$peers/go_echo
	if ! command -v go >/dev/null; then
		skip go_echo "no go (apt: golang-go)"
		return
	fi
	fresh "$out/go_echo" "$dir/main.go" && return
	(cd "$dir" && GOFLAGS=-mod=mod GOCACHE=$out/go-cache go build -o "$out/go_echo" .) ||
		skip go_echo "go build failed"
}

asio
tokio
go_peer
exit 0
