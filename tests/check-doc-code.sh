#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compiles the code a reader copies: every ```c block of README.md,
# docs/*.md and bench/README.md, and the programs in tests/doc/, against
# the source tree's headers and the build tree's libraries, as C11 with
# -Wall -Wextra -Woverride-init -Wpedantic -Werror.
#
# A block is one translation unit: with a main() it is linked (with
# rill-tls where it includes rill/tls.h) and must link; without one it is
# compiled only. Blocks tagged otherwise are not compiled:
#   ```c-fragment    a few lines out of a function, shown, not built
#   ```c requires:NAME[,NAME...]
#                    built once the public headers declare every NAME (a
#                    call from a branch not merged yet); skipped, and said
#                    so, before that
# Usage: check-doc-code.sh LIBRILL.so [LIBRILL-TLS.so]
# Environment: CC, RILL_TEST_CFLAGS (the sanitizer flags of the build).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cc=${CC:-cc}
read -r -a san <<<"${RILL_TEST_CFLAGS:-}"
(($#)) || { echo "usage: $0 LIBRILL.so [LIBRILL-TLS.so]" >&2; exit 2; }
lib=$1
tls_lib=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

flags=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Woverride-init -Wpedantic -Werror
	-Wno-unused-function -I"$root/include" "${san[@]}")
status=0 built=0 skipped=0

# build NAME FILE: compiles FILE (links it if it has a main()).
build() {
	local name=$1 file=$2 out libs=("$lib")
	if grep -q 'rill/tls\.h' "$file"; then
		[[ -n $tls_lib ]] || { echo "skip $name: rill-tls not built"; skipped=$((skipped + 1)); return; }
		libs=("$tls_lib" "$lib")
	fi
	if grep -Eq '^int main\(' "$file"; then
		out=$("$cc" "${flags[@]}" -o "$work/a.out" "$file" "${libs[@]}" \
			-Wl,-rpath,"$(dirname "$lib")" 2>&1) || { echo "FAIL $name:" >&2; echo "$out" >&2; status=1; return; }
	else
		out=$("$cc" "${flags[@]}" -c -o "$work/a.o" "$file" 2>&1) ||
			{ echo "FAIL $name:" >&2; echo "$out" >&2; status=1; return; }
	fi
	built=$((built + 1))
}

# declared NAME: whether a public header declares NAME.
declared() {
	grep -Eqw -- "$1" "$root"/include/rill.h "$root"/include/rill/*.h
}

# extract FILE: writes each block to $work/<base>.<n>.c with its tag in
# $work/<base>.<n>.tag, the line it starts on in $work/<base>.<n>.line.
extract() {
	awk -v dir="$work" -v base="$(basename "$1" .md)" '
		/^```/ && !in_block {
			in_block = 1; tag = substr($0, 4); n++
			f = sprintf("%s/%s.%02d", dir, base, n)
			printf "%s\n", tag > (f ".tag"); close(f ".tag")
			printf "%d\n", NR + 1 > (f ".line"); close(f ".line")
			printf "" > (f ".c")
			next
		}
		/^```/ && in_block { in_block = 0; close(f ".c"); next }
		in_block { print >> (f ".c") }
	' "$1"
}

docs=("$root/README.md" "$root"/docs/*.md "$root/bench/README.md")
for md in "${docs[@]}"; do
	[[ -f $md ]] || continue
	rm -f "$work"/*.c "$work"/*.tag "$work"/*.line
	extract "$md"
	for tagf in "$work"/*.tag; do
		[[ -e $tagf ]] || continue
		f=${tagf%.tag}
		read -r tag <"$tagf" || true
		name="${md#"$root"/}:$(cat "$f.line")"
		read -r -a words <<<"$tag"
		[[ ${words[0]:-} == c ]] || continue	# c-fragment, sh, cmake, ...
		missing=
		for w in "${words[@]:1}"; do
			[[ $w == requires:* ]] || continue
			IFS=, read -r -a names <<<"${w#requires:}"
			for n in "${names[@]}"; do
				declared "$n" || missing+=" $n"
			done
		done
		if [[ -n $missing ]]; then
			echo "skip $name: the headers do not declare$missing yet"
			skipped=$((skipped + 1))
			continue
		fi
		build "$name" "$f.c"
	done
done
for f in "$root"/tests/doc/*.c; do
	[[ -e $f ]] || continue
	build "tests/doc/$(basename "$f")" "$f"
done

((built > 0)) || { echo "FAIL no code block found" >&2; status=1; }
((status == 0)) && echo "ok   $built blocks and programs compile ($skipped skipped)"
exit $status
