#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fails when a source file (C, headers, assembly, CMake, scripts, Python,
# pkg-config templates) lacks "SPDX-License-Identifier: MIT" in its first
# three lines. Reads git's list of tracked files where the tree is a git
# checkout, else every such file below the root (a release tarball).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source_re='(\.(c|h|S|cpp|py|sh|cmake|in)|CMakeLists\.txt|^\.ci/run)$'
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	files=$(git ls-files)
else
	files=$(find . -path ./build -prune -o -type f -print | sed 's|^\./||')
fi
files=$(grep -E "$source_re" <<<"$files" || true)
[[ -n "$files" ]] || { echo "FAIL no source files found under $root" >&2; exit 1; }

missing=0 count=0
while read -r f; do
	[[ -f $f ]] || continue # deleted in the work tree, not yet in the index
	count=$((count + 1))
	if ! head -n 3 -- "$f" | grep -q 'SPDX-License-Identifier: MIT'; then
		echo "FAIL $f: no 'SPDX-License-Identifier: MIT' in its first 3 lines" >&2
		missing=$((missing + 1))
	fi
done <<<"$files"
[[ -f LICENSE ]] || { echo "FAIL LICENSE is missing" >&2; missing=$((missing + 1)); }
((missing == 0)) || exit 1
echo "ok   $count source files carry SPDX-License-Identifier: MIT"
