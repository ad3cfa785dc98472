#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs a built rill tree into a temporary prefix, then builds and runs
# tests/install/main.c against it three ways: pkg-config (shared),
# pkg-config --static, and CMake find_package (shared, static, tls).
# Usage: run.sh BUILD_DIR. Environment: CC (compiler), RILL_TEST_CFLAGS
# (the sanitizer flags the tree was built with, if any).
set -euo pipefail
trap 'echo "install test FAILED: line $LINENO: $BASH_COMMAND" >&2' ERR

build=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cc=${CC:-cc}
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
for f in "$prefix/include/rill.h" "$libdir/librill.a" "$libdir/librill.so.0" \
	"$libdir/cmake/rill/rillConfig.cmake" \
	"$libdir/cmake/rill/rillConfigVersion.cmake" \
	"$libdir/cmake/rill/rillTargets.cmake"; do
	[[ -e "$f" ]] || { echo "missing after install: $f" >&2; exit 1; }
done
readelf -d "$libdir/librill.so" | grep -q 'SONAME.*\[librill\.so\.0\]' ||
	{ echo "librill.so has no SONAME librill.so.0" >&2; exit 1; }

export PKG_CONFIG_PATH=$libdir/pkgconfig
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

step "pkg-config: $(pkg-config --cflags --libs rill)"
# shellcheck disable=SC2046 # word splitting of pkg-config output is intended
"$cc" "${flags[@]}" -o "$work/pc-shared" "$here/main.c" $(pkg-config --cflags --libs rill)
"$work/pc-shared"

static_libs=$(pkg-config --static --libs rill | sed -E 's/(^| )-lrill( |$)/\1-l:librill.a\2/')
step "pkg-config --static: $static_libs"
# shellcheck disable=SC2046,SC2086
"$cc" "${flags[@]}" -o "$work/pc-static" "$here/main.c" $(pkg-config --cflags rill) $static_libs
"$work/pc-static"

step "find_package(rill) with CMAKE_PREFIX_PATH=$prefix"
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="${RILL_TEST_CFLAGS:-}" \
	-DCMAKE_EXE_LINKER_FLAGS="${RILL_TEST_CFLAGS:-}" >"$work/configure.log" ||
	{ cat "$work/configure.log" >&2; exit 1; }
cmake --build "$work/cmake" >"$work/build.log" ||
	{ cat "$work/build.log" >&2; exit 1; }
for exe in "$work"/cmake/use_*; do
	step "run $(basename "$exe")"
	"$exe"
done
echo "install test passed"
