#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ABI check: compares the built librill.so and librill-tls.so with the
# baseline in abi/ (abidw of the last release's libraries) and fails on any
# change a program built against the baseline would notice, beyond what the
# ABI policy allows: added functions, and fields added at the end of the
# size-versioned structs (abi/rill.suppr). Usage: check.sh BUILD_DIR.
# Exit 77 (skipped, with the reason) without abidiff or debug info.
#
# An incompatible change needs, in the same commit, a new RILL_SOVERSION in
# CMakeLists.txt and a new baseline: scripts/abi-baseline.sh BUILD_DIR.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$1
if ! command -v abidiff >/dev/null; then
	echo "skipped: abidiff not found (Debian package abigail-tools)"
	exit 77
fi
status=0
for base in "$root"/abi/*.abi; do
	name=$(basename "$base" .abi)
	lib=$build/$name.so
	if [[ ! -e $lib ]]; then
		echo "FAIL $lib not built, but abi/$name.abi is a baseline" >&2
		status=1
		continue
	fi
	if ! readelf -S "$lib" | grep -q '\.debug_info'; then
		echo "skipped: $lib has no debug info (build with -g, e.g. RelWithDebInfo)"
		exit 77
	fi
	rc=0
	abidiff --no-added-syms --suppressions "$root/abi/rill.suppr" \
		"$base" "$lib" >"$build/abidiff-$name.txt" 2>&1 || rc=$?
	if ((rc != 0)); then
		cat "$build/abidiff-$name.txt" >&2
		echo "FAIL $name: the ABI differs from abi/$name.abi (abidiff exit $rc)." >&2
		echo "  Undo the change, or bump RILL_SOVERSION in CMakeLists.txt and run" >&2
		echo "  scripts/abi-baseline.sh in the same commit (README: ABI policy)." >&2
		status=1
	else
		echo "ok   $name: compatible with abi/$name.abi"
	fi
done
exit $status
