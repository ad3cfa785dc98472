#!/usr/bin/env bash
# Builds tests/arch/fiber_aarch64.c with the aarch64 cross compiler and runs
# it under qemu-user. Exit 77 (skipped) where either tool is missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
	echo "skipped: needs gcc-aarch64-linux-gnu and qemu-user"
	exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
aarch64-linux-gnu-gcc -O2 -static "$root/tests/arch/fiber_aarch64.c" \
	"$root/engine/fiber_switch.S" -o "$out/fiber"
qemu-aarch64 "$out/fiber"
