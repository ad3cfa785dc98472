#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Server CPU per GiB of a file sent with sendfile: rill-echo-server
# --mode http --root (io_uring: SPLICE through a pipe; epoll: sendfile(2))
# beside nginx (sendfile on, one process), each on CPU 0, the same curl on
# CPU 1 downloading a 1 GiB file in the page cache three times over one
# keep-alive connection. The server's user+system time comes from
# /proc/PID/stat before and after (every thread counted, io_uring's
# workers too). Runs are interleaved; the median of --runs is reported.
#
#   bench/sendfile-vs-nginx.sh [--build DIR] [--runs N] [--nginx PATH]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build/gcc runs=5 nginx=/usr/sbin/nginx
while (($#)); do
	case $1 in
	--build) build=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--nginx) nginx=$2; shift 2 ;;
	-h | --help) sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: $0 [--build DIR] [--runs N] [--nginx PATH]" >&2; exit 2 ;;
	esac
done
server=$build/bench/rill-echo-server
for tool in "$server" "$nginx" curl taskset; do
	command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 77; }
done

work=$(mktemp -d /tmp/rill-sendfile-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/www" "$work/nginx"
head -c $((1 << 30)) /dev/zero | tr '\0' 'x' >"$work/www/big.bin"
cat "$work/www/big.bin" >/dev/null	# into the page cache
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server { listen 127.0.0.1:18941; root $work/www; }
}
EOF

hz=$(getconf CLK_TCK)

# One run: NAME PORT ENV COMMAND...; prints "NAME cpu_s_per_gib MBps".
run() {
	local name=$1 port=$2 envs=$3 pid t0 t1 url=http://127.0.0.1:$2/big.bin
	shift 3
	env $envs taskset -c 0 "$@" >"$work/$name.log" 2>&1 &
	pid=$!
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
		sleep 0.1
	done
	t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	taskset -c 1 curl -s -o /dev/null -o /dev/null -o /dev/null \
		-w '%{speed_download}\n' "$url" "$url" "$url" >"$work/$name.curl"
	t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	awk -v n="$name" -v d=$((t1 - t0)) -v hz="$hz" \
		'{s += $1} END {printf "%s %.3f %.0f\n", n, d / hz / 3, s / NR / 1e6}' \
		"$work/$name.curl"
}

for i in $(seq "$runs"); do
	run rill-io_uring 18951 RILL_BACKEND=io_uring "$server" --port 18951 --mode http --root "$work/www"
	run nginx 18941 RILL_BACKEND=auto "$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf"
	run rill-epoll 18952 RILL_BACKEND=epoll "$server" --port 18952 --mode http --root "$work/www"
done | tee "$work/runs.txt" >&2

echo "| server | server CPU s/GiB (median of $runs) | min | max | curl MB/s (median) |"
echo "|---|---|---|---|---|"
# The median of a column ($2: CPU, $3: MB/s) of one server's runs.
median() {
	grep "^$1 " "$work/runs.txt" | awk -v c="$2" '{print $c}' | sort -n |
		awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)], v[1], v[NR]}'
}

for name in rill-io_uring nginx rill-epoll; do
	read -r cpu lo hi <<<"$(median "$name" 2)"
	read -r mb _ _ <<<"$(median "$name" 3)"
	echo "| $name | $cpu | $lo | $hi | $mb |"
done
