#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The benchmark programs' command line: for each PROGRAM given, --help
# exits 0 with a "Usage:" line on stdout, and an unknown option exits 2
# with the usage line on stderr and nothing on stdout.
# Usage: check-bench-cli.sh PROGRAM...
set -uo pipefail

(($#)) || { echo "usage: check-bench-cli.sh PROGRAM..." >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

fail() {
	echo "FAIL $name: $*" >&2
	sed 's/^/  stdout: /' "$work/out" >&2
	sed 's/^/  stderr: /' "$work/err" >&2
	failed=$((failed + 1))
}

for prog in "$@"; do
	name=$(basename "$prog")
	# timeout: a program that ignored the option would start serving.
	timeout 10 "$prog" --help >"$work/out" 2>"$work/err"
	rc=$?
	if ((rc != 0)); then
		fail "--help exited $rc, not 0"
	elif ! grep -qi '^usage:' "$work/out"; then
		fail "--help printed no 'Usage:' line on stdout"
	else
		echo "ok   $name --help"
	fi

	timeout 10 "$prog" --no-such-option >"$work/out" 2>"$work/err"
	rc=$?
	if ((rc != 2)); then
		fail "--no-such-option exited $rc, not 2"
	elif ! grep -qi '^usage:' "$work/err"; then
		fail "--no-such-option printed no 'Usage:' line on stderr"
	elif [[ -s $work/out ]]; then
		fail "--no-such-option wrote to stdout"
	else
		echo "ok   $name --no-such-option"
	fi
done
((failed == 0)) || { echo "$failed check(s) failed" >&2; exit 1; }
