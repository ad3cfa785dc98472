#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks that each shared library exports the public API and nothing else:
# every defined dynamic symbol is rill_<something>, never rill__<internal>,
# except the few internals declared RILL_SPI for rill-tls (a library of its
# own that must reach them), which are read from the sources. Symbols are
# versioned (cmake/rill.map): the public ones RILL_0.<minor>, the internals
# RILL_PRIVATE.
# Usage: check-exports.sh LIB.so...
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
spi=$(grep -rhoE 'RILL_SPI [^;(]*rill__[A-Za-z0-9_]+' "$root/engine" "$root/streams" |
	grep -oE 'rill__[A-Za-z0-9_]+$' | sort -u)

status=0
for lib in "$@"; do
	# Sanitizer and toolchain symbols (__asan_*, _init, _fini, ...) start
	# with an underscore; they are not ours to police.
	# Version nodes are absolute symbols (type A): not functions.
	versioned=$(nm -D --defined-only "$lib" | awk '$2 != "A" { print $NF }' | grep -v '^_' || true)
	unversioned=$(grep -v '@' <<<"$versioned" || true)
	if [[ -n "$unversioned" ]]; then
		echo "FAIL $lib has symbols without a version (cmake/rill.map not applied?):" >&2
		head -n 5 <<<"$unversioned" >&2
		status=1
	fi
	badver=$(grep -Ev '^rill_[A-Za-z0-9][^@]*@@?RILL_0\.[0-9]+$|^rill__[^@]*@@?RILL_PRIVATE$' \
		<<<"$versioned" || true)
	if [[ -n "$badver" ]]; then
		echo "FAIL $lib: symbols in the wrong version node:" >&2
		head -n 5 <<<"$badver" >&2
		status=1
	fi
	syms=$(sed 's/@.*//' <<<"$versioned")
	if [[ -z "$syms" ]]; then
		echo "FAIL $lib exports no symbols at all" >&2
		status=1
		continue
	fi
	# rill__internal fails the pattern too: '_' is not alphanumeric.
	bad=$(grep -Ev '^rill_[A-Za-z0-9]' <<<"$syms" | grep -vxF -f <(echo "$spi") || true)
	if [[ -n "$bad" ]]; then
		echo "FAIL $lib exports symbols outside the public API (missing static or visibility?):" >&2
		while read -r sym; do echo "  $sym"; done <<<"$bad" >&2
		status=1
	else
		echo "ok   $lib: $(wc -l <<<"$syms") public symbols"
	fi
done
exit $status
