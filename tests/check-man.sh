#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks the section-3 man pages: every public function the given shared
# libraries export (rill_*, not rill__*) has man/man3/<name>.3, every
# ".so" link points at a page that exists, and every page renders with
# no warning from man and groff.
# Usage: check-man.sh LIB.so...   Exit 77 (skip) without man or groff.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mandir=$root/man
status=0

fail() {
	echo "FAIL $*" >&2
	status=1
}

for tool in man groff nm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP $tool is not installed (Debian: man-db, groff-base, binutils)"
		exit 77
	fi
done
(($#)) || { echo "usage: $0 LIB.so..." >&2; exit 2; }
pages=("$mandir"/man3/*.3)
[[ -e ${pages[0]} ]] || { fail "no pages in $mandir/man3"; exit 1; }

# 1. Every exported public function has a page. Versioned symbols read
# "name@@NODE": the name is what comes before the '@'.
nsyms=0
for lib in "$@"; do
	syms=$(nm -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//' |
		grep -E '^rill_[A-Za-z0-9]' | sort -u || true)
	[[ -n "$syms" ]] || { fail "$lib exports no rill_ function"; continue; }
	while read -r sym; do
		nsyms=$((nsyms + 1))
		[[ -f $mandir/man3/$sym.3 ]] || fail "$sym (exported by $(basename "$lib")) has no man/man3/$sym.3"
	done <<<"$syms"
done

# 1b. The overview pages, one per object a program handles, exist as
# pages of their own (not links) and rill(3), the index, names each.
overviews=(rill_server rill_reader rill_writer rill_task rill_tls rill_errors)
for o in "${overviews[@]}"; do
	page=$mandir/man3/$o.3
	if [[ ! -f $page ]]; then
		fail "overview page man3/$o.3 is missing"
	elif grep -q '^\.so[[:space:]]' "$page"; then
		fail "overview page man3/$o.3 is a link, not a page"
	elif ! grep -q "^\.BR $o (3)" "$mandir/man3/rill.3"; then
		fail "rill(3) does not name the overview page $o(3)"
	fi
done

# 2. Links: ".so man3/x.3" must name a page here that is not a link itself
# (man-db follows one level, and a chain is a maintenance trap).
for page in "${pages[@]}"; do
	target=$(sed -n 's/^\.so[[:space:]]\{1,\}//p' "$page" | head -n 1)
	[[ -n "$target" ]] || continue
	if [[ ! -f $mandir/$target ]]; then
		fail "$(basename "$page"): .so target $target does not exist"
	elif grep -q '^\.so[[:space:]]' "$mandir/$target"; then
		fail "$(basename "$page"): .so target $target is itself a link"
	fi
done

# 3. Every page renders cleanly. man resolves ".so man3/x.3" against the
# current directory, hence the cd. man exits 0 even when groff warns: the
# warning text on stderr is what counts.
cd "$mandir"
export LC_ALL=C.UTF-8 MANWIDTH=80
unset MANPAGER PAGER MANOPT
for page in "${pages[@]}"; do
	rel=man3/$(basename "$page")
	if ! head -n 1 "$page" | grep -q 'SPDX-License-Identifier: MIT'; then
		fail "$rel: first line lacks SPDX-License-Identifier: MIT"
	fi
	if ! out=$(man --warnings -E UTF-8 -l "$rel" 2>&1 >/dev/null); then
		fail "$rel: man failed${out:+: $out}"
	elif [[ -n "$out" ]]; then
		fail "$rel renders with warnings:"
		sed 's/^/  /' <<<"$out" >&2
	fi
done

((status == 0)) && echo "ok   ${#pages[@]} pages render cleanly; $nsyms exported functions each have one; ${#overviews[@]} overview pages"
exit $status
