#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs a built rill tree into a temporary prefix, then builds and runs
# tests/install/main.c (C) and main.cpp (C++) against it: pkg-config
# (shared, static, rill-tls), and CMake find_package (shared, static, tls,
# C++). Each program checks that the library's run-time version is the
# one its headers state.
# Usage: run.sh BUILD_DIR. Environment: CC (compiler; CXX, else its C++
# sibling), RILL_TEST_CFLAGS (the sanitizer flags the tree was built with,
# if any), RILL_SOVERSION and RILL_VERSION (what the tree says it builds).
set -euo pipefail
trap 'echo "install test FAILED: line $LINENO: $BASH_COMMAND" >&2' ERR

build=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cc=${CC:-cc}
case $cc in
*clang*) cxx=${CXX:-clang++} ;;
*) cxx=${CXX:-g++} ;;
esac
so=${RILL_SOVERSION:?RILL_SOVERSION not set}
read -r -a flags <<<"${RILL_TEST_CFLAGS:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

step() { printf '== %s\n' "$*"; }

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log" >&2; exit 1; }
pc=$(find "$prefix" -name rill.pc -path '*/pkgconfig/*' | head -n1)
[[ -n "$pc" ]] || { echo "rill.pc not installed" >&2; cat "$work/install.log"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
for f in "$prefix/include/rill.h" "$libdir/librill.a" "$libdir/librill.so.$so" \
	"$libdir/cmake/rill/rillConfig.cmake" \
	"$libdir/cmake/rill/rillConfigVersion.cmake" \
	"$libdir/cmake/rill/rillTargets.cmake"; do
	[[ -e "$f" ]] || { echo "missing after install: $f" >&2; exit 1; }
done
readelf -d "$libdir/librill.so" | grep -q "SONAME.*\[librill\.so\.$so\]" ||
	{ echo "librill.so has no SONAME librill.so.$so" >&2; exit 1; }

export PKG_CONFIG_PATH=$libdir/pkgconfig
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# A clean include path: the prefix's include directory, not one reached
# through pkgconfig/../../.. (the .pc files name the install prefix).
cflags=$(pkg-config --cflags rill)
[[ $cflags == "-I$prefix/include " || $cflags == "-I$prefix/include" ]] ||
	{ echo "pkg-config --cflags rill: '$cflags', not -I$prefix/include" >&2; exit 1; }
step "pkg-config: $(pkg-config --cflags --libs rill)"
# shellcheck disable=SC2046 # word splitting of pkg-config output is intended
"$cc" "${flags[@]}" -o "$work/pc-shared" "$here/main.c" $(pkg-config --cflags --libs rill)
"$work/pc-shared"

static_libs=$(pkg-config --static --libs rill | sed -E 's/(^| )-lrill( |$)/\1-l:librill.a\2/')
step "pkg-config --static: $static_libs"
# shellcheck disable=SC2046,SC2086
"$cc" "${flags[@]}" -o "$work/pc-static" "$here/main.c" $(pkg-config --cflags rill) $static_libs
"$work/pc-static"

step "C++ ($cxx -std=c++17) with pkg-config rill"
# shellcheck disable=SC2046
"$cxx" -std=c++17 -Wall -Wextra -Werror "${flags[@]}" -o "$work/pc-cxx" "$here/main.cpp" \
	$(pkg-config --cflags --libs rill)
"$work/pc-cxx"

if pkg-config --exists rill-tls; then
	step "C++ with pkg-config rill-tls"
	# shellcheck disable=SC2046
	"$cxx" -std=c++17 -DRILL_TEST_TLS "${flags[@]}" -o "$work/pc-cxx-tls" \
		"$here/main.cpp" $(pkg-config --cflags --libs rill-tls)
	"$work/pc-cxx-tls"
fi

step "find_package(rill ${RILL_VERSION:-}) with CMAKE_PREFIX_PATH=$prefix"
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
	-DRILL_EXPECTED_VERSION="${RILL_VERSION:-}" \
	-DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="${RILL_TEST_CFLAGS:-}" \
	-DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="${RILL_TEST_CFLAGS:-}" \
	-DCMAKE_EXE_LINKER_FLAGS="${RILL_TEST_CFLAGS:-}" >"$work/configure.log" ||
	{ cat "$work/configure.log" >&2; exit 1; }
cmake --build "$work/cmake" >"$work/build.log" ||
	{ cat "$work/build.log" >&2; exit 1; }
for exe in "$work"/cmake/use_*; do
	step "run $(basename "$exe")"
	"$exe"
done
echo "install test passed"
