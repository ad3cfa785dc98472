#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds tests/arch/fiber_aarch64.c with the aarch64 cross compiler and runs
# it under qemu-user. Exit 77 (skipped, with the reason) where either tool
# is missing or the cross compiler cannot build a trivial static program
# (gcc-aarch64-linux-gnu without libc6-dev-arm64-cross has no C library
# headers: scripts/deps.sh installs both).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
	echo "skipped: needs gcc-aarch64-linux-gnu and qemu-user"
	exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '#include <stdio.h>\nint main(void) { return puts("") < 0; }\n' >"$out/probe.c"
if ! aarch64-linux-gnu-gcc -static "$out/probe.c" -o "$out/probe" 2>"$out/probe.log"; then
	echo "skipped: aarch64-linux-gnu-gcc cannot build a trivial static program" \
		"(install libc6-dev-arm64-cross):"
	head -n 3 "$out/probe.log"
	exit 77
fi
aarch64-linux-gnu-gcc -O2 -static "$root/tests/arch/fiber_aarch64.c" \
	"$root/engine/fiber_switch.S" -o "$out/fiber"
qemu-aarch64 "$out/fiber"
