#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian packages of a built rill tree with `cpack -G DEB`,
# checks their names (from the SONAMEs), Depends fields and contents,
# the documentation they carry (man pages split between librill-dev and
# librill-tls-dev, the guides and examples, changelog.Debian.gz, the
# Maintainer field; lintian errors where lintian is installed), unpacks
# them into a scratch root with dpkg-deb -x, builds every installed
# example against that root (and runs the echo pair), and builds and runs
# tests/install/main.c against it: pkg-config (shared, static, rill-tls)
# and CMake find_package, then find_package with the core packages alone. Usage: run.sh BUILD_DIR (an unsanitized build).
# Environment: CC (compiler). Exits 77 where the packaging tools are missing.
set -euo pipefail
trap 'echo "package test FAILED: line $LINENO: $BASH_COMMAND" >&2' ERR

build=$(cd "$1" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/install
cc=${CC:-cc}

for tool in cpack dpkg-deb dpkg-shlibdeps file readelf pkg-config; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool not found (cmake, dpkg, dpkg-dev, file, binutils, pkg-config)"
		exit 77
	fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { printf '== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# The runtime package is named after the SONAME: librill.so.N -> librillN.
soname() {
	local lib
	lib=$(find "$build" -name "$1" -not -path '*/_CPack_Packages/*' -print -quit)
	[[ -n $lib ]] || return 0
	readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'
}
so=$(soname librill.so)
[[ $so =~ ^librill\.so\.([0-9]+)$ ]] || fail "no librill.so with a SONAME in $build"
rt=librill${BASH_REMATCH[1]}
pkgs=("$rt" librill-dev)
tls_so=$(soname librill-tls.so)
tls=
if [[ -n $tls_so ]]; then
	[[ $tls_so =~ ^librill-tls\.so\.([0-9]+)$ ]] || fail "librill-tls.so SONAME $tls_so"
	tls=librill-tls${BASH_REMATCH[1]}
	pkgs+=("$tls" librill-tls-dev)
fi

step "cpack -G DEB in $build"
(cd "$build" && cpack -G DEB -B "$work/out") >"$work/cpack.log" 2>&1 ||
	{ cat "$work/cpack.log" >&2; fail "cpack"; }

declare -A deb
for p in "${pkgs[@]}"; do
	deb[$p]=$(find "$work/out" -maxdepth 1 -name "${p}_*.deb" -print -quit)
	[[ -n ${deb[$p]} ]] || { ls "$work/out" >&2; fail "no package $p"; }
	[[ $(dpkg-deb -f "${deb[$p]}" Package) == "$p" ]] || fail "${deb[$p]}: Package field"
done
version=$(dpkg-deb -f "${deb[$rt]}" Version)

# depends PACKAGE REGEX...: the Depends field matches every REGEX.
depends() {
	local p=$1 d re
	shift
	d=$(dpkg-deb -f "${deb[$p]}" Depends)
	printf '%-16s Depends: %s\n' "$p" "$d"
	for re in "$@"; do
		re="(^|, )${re}( |,|$)"
		[[ $d =~ $re ]] || fail "$p: Depends lacks $re: $d"
	done
}
# contains PACKAGE REGEX...: some file of the package matches each REGEX.
contains() {
	local p=$1 list
	shift
	list=$(dpkg-deb -c "${deb[$p]}" | awk '{ print $6 }')
	for re in "$@"; do
		grep -Eq "$re" <<<"$list" || fail "$p holds nothing like $re"
	done
}

step "Depends fields"
depends "$rt" 'liburing[0-9]+'
depends librill-dev "$rt \\(= $version\\)" 'liburing-dev'
contains "$rt" "/$so\$"
contains librill-dev '/include/rill\.h$' '/librill\.so$' '/librill\.a$' \
	'/pkgconfig/rill\.pc$' '/cmake/rill/rillConfig\.cmake$'
! dpkg-deb -c "${deb[$rt]}" | grep -Eq '\.(a|h|pc)$' ||
	fail "$rt holds development files"
if [[ -n $tls ]]; then
	depends "$tls" 'libssl[0-9a-z]*' "$rt \\(= $version\\)"
	depends librill-tls-dev "$tls \\(= $version\\)" 'librill-dev' 'libssl-dev'
	contains "$tls" "/$tls_so\$"
	contains librill-tls-dev '/include/rill/tls\.h$' '/librill-tls\.so$' \
		'/pkgconfig/rill-tls\.pc$' '/cmake/rill/rillTlsTargets\.cmake$'
fi

step "documentation, man pages, changelogs, Maintainer"
for p in "${pkgs[@]}"; do
	contains "$p" "/usr/share/doc/$p/copyright\$" "/usr/share/doc/$p/changelog\.Debian\.gz\$"
	m=$(dpkg-deb -f "${deb[$p]}" Maintainer)
	[[ $m =~ ^[^\<\>]+\ \<[^\<\>@\ ]+@[^\<\>@\ ]+\>$ ]] || fail "$p: Maintainer '$m' is not 'Name <email>'"
done
contains librill-dev '/usr/share/man/man3/rill\.3\.gz$' '/usr/share/man/man3/rill_server\.3\.gz$' \
	'/usr/share/doc/librill-dev/README\.md$' '/usr/share/doc/librill-dev/docs/tutorial\.md$' \
	'/usr/share/doc/librill-dev/examples/echo-server\.c$'
! dpkg-deb -c "${deb[librill-dev]}" | grep -Eq '/man3/rill_(tls|start_tls)' ||
	fail "librill-dev holds rill-tls man pages"
if [[ -n $tls ]]; then
	contains librill-tls-dev '/usr/share/man/man3/rill_tls\.3\.gz$' \
		'/usr/share/man/man3/rill_tls_ctx_new_client\.3\.gz$' \
		'/usr/share/man/man3/rill_start_tls\.3\.gz$'
fi
# lintian, where installed: no error (warnings are listed in the log).
if command -v lintian >/dev/null 2>&1; then
	step "lintian"
	lintian_out=$(lintian "${deb[@]}" 2>&1) || true
	[[ -z $lintian_out ]] || printf '%s\n' "$lintian_out"
	! grep -q '^E: ' <<<"$lintian_out" || fail "lintian reports errors"
fi

root=$work/root
for p in "${pkgs[@]}"; do
	dpkg-deb -x "${deb[$p]}" "$root"
done
pc=$(find "$root" -name rill.pc -path '*/pkgconfig/*' -print -quit)
libdir=$(dirname "$(dirname "$pc")")
# The .pc files name /usr, where the packages install: pkg-config finds
# them in the scratch root through PKG_CONFIG_SYSROOT_DIR, which puts the
# root before every -I and -L path, as for a cross build's sysroot.
for p in rill rill-tls; do
	[[ -e $libdir/pkgconfig/$p.pc ]] || continue
	grep -qx 'prefix=/usr' "$libdir/pkgconfig/$p.pc" ||
		fail "$p.pc: $(grep '^prefix=' "$libdir/pkgconfig/$p.pc"), not prefix=/usr"
done
export PKG_CONFIG_PATH=$libdir/pkgconfig
# Installed as the packages install it, --cflags gives nothing (/usr/include
# is a system directory), never a path through pkgconfig/../../..
cflags=$(pkg-config --cflags rill)
[[ -z ${cflags// /} ]] || fail "pkg-config --cflags rill, installed in /usr: '$cflags'"
export PKG_CONFIG_SYSROOT_DIR=$root
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# run ROOT PROGRAM: runs it, and fails if it loaded librill from elsewhere.
run() {
	local from=$1 exe=$2
	step "run $(basename "$exe")"
	if ldd "$exe" | grep 'librill' | grep -vq "=> $from/"; then
		ldd "$exe" >&2
		fail "$exe did not load librill from $from"
	fi
	"$exe"
}

cflags=$(pkg-config --cflags rill)
[[ $cflags == *"$root/"* ]] || fail "pkg-config --cflags rill: $cflags (not in $root)"
step "pkg-config: $cflags $(pkg-config --libs rill)"
# shellcheck disable=SC2046 # word splitting of pkg-config output is intended
"$cc" -o "$work/pc-shared" "$src/main.c" $(pkg-config --cflags --libs rill)
run "$root" "$work/pc-shared"

static_libs=$(pkg-config --static --libs rill | sed -E 's/(^| )-lrill( |$)/\1-l:librill.a\2/')
step "pkg-config --static: $static_libs"
# shellcheck disable=SC2046,SC2086
"$cc" -o "$work/pc-static" "$src/main.c" $(pkg-config --cflags rill) $static_libs
run "$root" "$work/pc-static"

if [[ -n $tls ]]; then
	step "pkg-config: $(pkg-config --cflags --libs rill-tls)"
	# shellcheck disable=SC2046
	"$cc" -o "$work/pc-tls" "$src/main.c" $(pkg-config --cflags --libs rill-tls)
	run "$root" "$work/pc-tls"
fi

# Every example, from the copy the package installs, built against the
# packages alone (and over rill-tls as the build tree builds them).
examples=("$root"/usr/share/doc/librill-dev/examples/*.c)
[[ -e ${examples[0]} ]] || fail "no examples in librill-dev"
for ex in "${examples[@]}"; do
	name=$(basename "$ex" .c)
	step "example $name from the packages"
	# shellcheck disable=SC2046
	"$cc" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$work/ex-$name" "$ex" \
		$(pkg-config --cflags --libs rill)
	if [[ -n $tls ]]; then
		# shellcheck disable=SC2046
		"$cc" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -DRILL_HAVE_TLS \
			-o "$work/ex-$name-tls" "$ex" $(pkg-config --cflags --libs rill-tls)
	fi
done
# One of them run: the echo pair, client against server, over loopback.
if [[ -x $work/ex-echo-server && -x $work/ex-echo-client ]]; then
	"$work/ex-echo-server" 127.0.0.1 0 >"$work/server.out" 2>&1 &
	spid=$!
	port=
	for _ in $(seq 50); do
		# "Serving on ('127.0.0.1', PORT)", as asyncio prints it
		port=$(sed -n 's/^Serving on .*, \([0-9][0-9]*\))$/\1/p' "$work/server.out" | head -n1)
		[[ -n $port ]] && break
		sleep 0.1
	done
	if [[ -z $port ]]; then
		kill "$spid" 2>/dev/null || true
		cat "$work/server.out" >&2
		fail "echo-server from the packages did not start"
	fi
	step "run echo-client against echo-server on port $port"
	timeout 10 "$work/ex-echo-client" 127.0.0.1 "$port" >"$work/client.out" 2>&1 ||
		{ kill "$spid"; cat "$work/client.out" "$work/server.out" >&2; fail "echo-client"; }
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	cat "$work/client.out"
fi

# find_package PREFIX DIR: configures and builds tests/install in DIR.
find_package() {
	step "find_package(rill) with CMAKE_PREFIX_PATH=$1"
	cmake -S "$src" -B "$2" -DCMAKE_PREFIX_PATH="$1" -DCMAKE_C_COMPILER="$cc" \
		>"$2.log" 2>&1 || { cat "$2.log" >&2; fail "configure"; }
	grep -q "^rill_DIR:PATH=$1/" "$2/CMakeCache.txt" ||
		fail "found $(grep '^rill_DIR' "$2/CMakeCache.txt"), not the one in $1"
	cmake --build "$2" >>"$2.log" 2>&1 || { cat "$2.log" >&2; fail "build"; }
}
find_package "$root/usr" "$work/cmake"
[[ -z $tls || -x $work/cmake/use_tls ]] || fail "find_package(rill) gave no rill::tls"
for exe in "$work"/cmake/use_*; do
	run "$root" "$exe"
done

# librill-dev must work without librill-tls-dev.
if [[ -n $tls ]]; then
	core=$work/core
	for p in "$rt" librill-dev; do
		dpkg-deb -x "${deb[$p]}" "$core"
	done
	find_package "$core/usr" "$work/cmake-core"
	[[ ! -e $work/cmake-core/use_tls ]] || fail "rill::tls without librill-tls-dev"
	LD_LIBRARY_PATH=$core/${libdir#"$root"/} run "$core" "$work/cmake-core/use_shared"
fi
echo "package test passed: ${pkgs[*]} $version"
