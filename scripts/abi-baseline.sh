#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Writes the ABI baseline abi/<lib>.abi from a gcc RelWithDebInfo build of
# librill.so and librill-tls.so. Run it when a release is made, or in the
# commit that bumps RILL_SOVERSION for an incompatible change.
# Usage: scripts/abi-baseline.sh [BUILD_DIR] (default build/gcc).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build/gcc}
mkdir -p "$root/abi"
for name in librill librill-tls; do
	[[ -e $build/$name.so ]] || continue
	abidw --no-corpus-path --no-show-locs --drop-private-types \
		--headers-dir "$root/include" "$build/$name.so" >"$root/abi/$name.abi"
	echo "wrote abi/$name.abi ($(readelf -d "$build/$name.so" | grep -o 'librill[^]]*'))"
done
