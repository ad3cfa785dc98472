#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: installs missing Debian packages, builds rill in Release
# into build/release, runs an echo round trip between the example server
# and client over 127.0.0.1, then the short side-by-side comparison of
# rill's echo server with its peers, plain and TLS (bench/compare.py
# --quick: builds the non-C peers, then a few rows, one 2 s run each, a
# few minutes) and prints the table.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
rill_install_deps

build=build/release
# Warnings fail the tests (scripts/test-all.sh), not the demo.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DRILL_WERROR=OFF \
	-DRILL_BUILD_TESTS=OFF
cmake --build "$build" -j"$(nproc)"

server=$build/examples/echo-server
client=$build/examples/echo-client
if [[ ! -x $server || ! -x $client ]]; then
	echo "demo: the build works, but examples/echo-server.c and" \
		"examples/echo-client.c do not exist yet: nothing to run."
	exit 0
fi

host=127.0.0.1
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
"$server" "$host" "$port" >"$log" 2>&1 &
server_pid=$!
cleanup() {
	kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	rm -f "$log"
}
trap cleanup EXIT

for _ in $(seq 100); do
	grep -q 'Serving on' "$log" && break
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "demo: echo-server exited before serving:" >&2
		cat "$log" >&2
		exit 1
	fi
	sleep 0.1
done
if ! grep -q 'Serving on' "$log"; then
	echo "demo: echo-server printed no 'Serving on' line within 10 s:" >&2
	cat "$log" >&2
	exit 1
fi
echo "server: $(grep -m1 'Serving on' "$log")"
timeout 30 "$client" "$host" "$port"
echo "demo: echo round trip done"
cleanup
trap - EXIT

echo
echo "demo: rill against its peers, plain and TLS (server on CPU 0, load on CPU 1), a few minutes"
/usr/bin/python3 bench/compare.py --quick --build "$build" --out "$build/bench-results"
echo "demo: table, JSON and plots (latest.png: echo; latest-bulk.png: bulk and TLS) in $build/bench-results/"
