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

# build NAME FILE: compiles FILE (links it, to FILE.exe, if it has a main()).
build() {
	local name=$1 file=$2 out libs=("$lib")
	if grep -q 'rill/tls\.h' "$file"; then
		[[ -n $tls_lib ]] || { echo "skip $name: rill-tls not built"; skipped=$((skipped + 1)); return; }
		libs=("$tls_lib" "$lib")
	fi
	if grep -Eq '^int main\(' "$file"; then
		out=$("$cc" "${flags[@]}" -o "$file.exe" "$file" "${libs[@]}" \
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

# extract FILE DIR: writes each block to DIR/<base>.<n>.c with its tag in
# DIR/<base>.<n>.tag, the line it starts on in DIR/<base>.<n>.line.
extract() {
	awk -v dir="$2" -v base="$(basename "$1" .md)" '
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
	dir=$work/$(basename "$(dirname "$md")")-$(basename "$md" .md)
	[[ $md == "$root/README.md" ]] && dir=$work/readme
	mkdir -p "$dir"
	extract "$md" "$dir"
	for tagf in "$dir"/*.tag; do
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
# The README's first server and client, run: the client's message comes
# back, and the server exits 0 on SIGINT. They use 127.0.0.1:8888, as the asyncio documentation does; if
# something else listens there, the run is skipped.
readme_server= readme_client=
for f in "$work"/readme/*.c; do
	[[ -e $f.exe ]] || continue
	if [[ -z $readme_server ]] && grep -q 'rill_start_server(' "$f"; then
		readme_server=$f.exe
	elif [[ -z $readme_client ]] && grep -q 'rill_open_connection(' "$f"; then
		readme_client=$f.exe
	fi
done
if [[ -z $readme_server || -z $readme_client ]]; then
	echo "FAIL README.md has no first server and client that build" >&2
	status=1
elif command -v ss >/dev/null 2>&1 && ss -Htln 'sport = :8888' | grep -q .; then
	echo "skip running the README's server and client: port 8888 is in use"
else
	"$readme_server" >"$work/server.out" 2>&1 &
	server_pid=$!
	for _ in $(seq 50); do
		grep -q '^Serving on' "$work/server.out" && break
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! timeout 10 "$readme_client" >"$work/client.out" 2>&1 ||
		! grep -qx 'Received: Hello World!' "$work/client.out"; then
		echo "FAIL the README's client against its server:" >&2
		cat "$work/client.out" "$work/server.out" >&2
		status=1
	else
		echo "ok   the README's client got its message back from the README's server"
	fi
	# Ctrl-C: the server frees its server and exits 0.
	kill -INT "$server_pid" 2>/dev/null || true
	rc=0
	for _ in $(seq 50); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid"
		echo "FAIL the README's server did not stop on SIGINT" >&2
		status=1
	fi
	wait "$server_pid" 2>/dev/null || rc=$?
	if ((rc != 0)); then
		echo "FAIL the README's server exited $rc after SIGINT, not 0:" >&2
		cat "$work/server.out" >&2
		status=1
	else
		echo "ok   the README's server stopped on SIGINT with exit status 0"
	fi
fi

mkdir -p "$work/doc"
for f in "$root"/tests/doc/*.c; do
	[[ -e $f ]] || continue
	cp "$f" "$work/doc/"
	build "tests/doc/$(basename "$f")" "$work/doc/$(basename "$f")"
done

((built > 0)) || { echo "FAIL no code block found" >&2; status=1; }
((status == 0)) && echo "ok   $built blocks and programs compile ($skipped skipped)"
exit $status
