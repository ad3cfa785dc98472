#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""asyncio_echo: the asyncio Streams echo server from the Python docs, the
programming model rill copies, as a peer beside rill's echo server.

Usage: asyncio_echo.py --port P [--host H] [--mode echo|sink|http] [--uvloop]
                       [--tls CERT KEY]

--tls serves TLS (the ssl module's defaults; OPENSSL_CONF may narrow them)
with the certificate chain CERT and its key KEY. --uvloop needs the uvloop package (Debian: python3-uvloop, for /usr/bin/python3).
"""

import argparse
import asyncio
import signal
import socket
import ssl
import sys

# 64 KiB: the read size every peer and rill use.
READ_SIZE = 65536

# The load test opens up to 1000 connections at once; asyncio's default is 100.
BACKLOG = 1024

HTTP_REPLY = (b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n"
              b"Content-Type: text/plain\r\n\r\nHello, world!")


async def echo(reader, writer):
    while data := await reader.read(READ_SIZE):
        writer.write(data)
        await writer.drain()


async def sink(reader, writer):
    while await reader.read(READ_SIZE):
        pass


async def http(reader, writer):
    while True:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:  # EOF, possibly mid-request
            return
        writer.write(HTTP_REPLY)
        await writer.drain()


def make_handler(serve):
    async def handle(reader, writer):
        # asyncio already sets TCP_NODELAY on TCP transports; uvloop may not.
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await serve(reader, writer)
        except (ConnectionError, asyncio.LimitOverrunError):
            pass  # a reset peer, or a request over the 64 KiB stream limit
        finally:
            writer.close()  # flushes what is still buffered, then closes
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
    return handle


async def main(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serve = {"echo": echo, "sink": sink, "http": http}[args.mode]
    tls = None
    if args.tls:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(*args.tls)
    server = await asyncio.start_server(
        make_handler(serve), args.host, args.port,
        backlog=BACKLOG, reuse_address=True, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    print(f"Serving on {args.host}:{port}", flush=True)
    async with server:
        await stop.wait()
        # A second signal (timeout(1) also signals the process group) must not
        # kill the shutdown once the loop drops its handlers.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
    # asyncio.run() then cancels the connection tasks still running.


def run(args):
    if not args.uvloop:
        asyncio.run(main(args))
        return
    import uvloop
    if sys.version_info >= (3, 12):
        asyncio.run(main(args), loop_factory=uvloop.new_event_loop)
    else:  # Debian 12: uvloop 0.17, Python 3.11, no loop_factory yet
        uvloop.install()
        asyncio.run(main(args))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--mode", choices=("echo", "sink", "http"), default="echo")
    p.add_argument("--uvloop", action="store_true",
                   help="run on uvloop instead of the default event loop")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"),
                   help="serve TLS with this certificate chain and key")
    return p.parse_args()


if __name__ == "__main__":
    run(parse_args())
