#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian packages of a built rill tree with `cpack -G DEB`,
# checks their names (from the SONAMEs), Depends fields and contents,
# unpacks them into a scratch root with dpkg-deb -x, and builds and runs
# tests/install/main.c against that root: pkg-config (shared, static,
# rill-tls) and CMake find_package, then find_package with the core
# packages alone. Usage: run.sh BUILD_DIR (an unsanitized build).
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
