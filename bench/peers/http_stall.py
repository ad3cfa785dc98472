#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""http_stall: an HTTP/1.1 keep-alive server (asyncio) whose whole event
loop stops for --stall ms once every --period ms, as a server in a
garbage-collection pause would. compare.py drives it to show what open-loop
latency measurement (rill-load --rate) sees and closed-loop measurement
(wrk, rill-load without --rate) misses.

Usage: http_stall.py --port P [--host H] [--stall MS] [--period MS] [--mode http]

Prints "Serving on HOST:PORT" when ready; SIGTERM stops it.
"""

import argparse
import asyncio
import signal
import time

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!"


async def http(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(REPLY)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    writer.close()


async def stall(ms, period):
    """Blocks the loop for ms at the start of every period: nothing is read
    or answered meanwhile."""
    start = time.monotonic()
    while True:
        elapsed = (time.monotonic() - start) * 1000
        await asyncio.sleep((period - elapsed % period) / 1000)
        time.sleep(ms / 1000)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--stall", type=int, default=200)
    ap.add_argument("--period", type=int, default=1000)
    ap.add_argument("--mode", default="http", choices=["http"])
    a = ap.parse_args()
    server = await asyncio.start_server(http, a.host, a.port, backlog=1024)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, done.set_result, None)
    loop.add_signal_handler(signal.SIGINT, done.set_result, None)
    pause = asyncio.create_task(stall(a.stall, a.period))
    print("Serving on %s:%d" % (a.host, server.sockets[0].getsockname()[1]), flush=True)
    await done
    pause.cancel()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
