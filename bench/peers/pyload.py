#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pyload: a small, bounded load client that sanity-checks the peer servers.

It is not the benchmark's load generator (that one runs on rill): Python on
one core cannot saturate the C servers, so its rates say "works, and roughly
this fast", not "this is the server's ceiling".

Modes (match the server's --mode):
  echo  C connections each keep D messages of S bytes in flight and check
        every echoed byte; prints messages/s.
  http  C connections each keep D pipelined GET requests in flight, written
        in two pieces split at a random byte so requests straddle reads;
        checks every reply byte; prints requests/s.
  sink  C connections each write S-byte chunks as fast as the server takes
        them, then half-close and wait for the server to close; prints MB/s.

Every run is bounded: it stops sending after --duration seconds or
--max-messages messages, whichever comes first, and gives up on stragglers
after --grace seconds. --abort ends every connection with a reset
(SO_LINGER 0) while data is still in flight, to check servers survive it.

Usage: pyload.py --port P [--host H] [--mode echo|http|sink] [-c C] [-s S]
                 [-d D] [--duration T] [--max-messages N] [--abort] [--uvloop]
"""

import argparse
import asyncio
import random
import socket
import struct
import sys
import time

HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
HTTP_REPLY = (b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n"
              b"Content-Type: text/plain\r\n\r\nHello, world!")

# Bounds that hold whatever the command line says.
MAX_DURATION = 60.0
MAX_CONNS = 1000


class Run:
    """State shared by all connections of one run."""

    def __init__(self, args):
        self.args = args
        self.sending = True
        self.sent = 0          # messages (or requests) sent
        self.done = 0          # messages (or requests) fully answered
        self.errors = []
        self.max = args.max_messages

    def may_send(self):
        return self.sending and self.sent < self.max

    def fail(self, msg):
        self.errors.append(msg)
        self.sending = False


def reset_on_close(transport):
    """Make the coming close send RST instead of FIN."""
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Checked(asyncio.Protocol):
    """Keeps D units in flight; compares every received byte to what is due."""

    def __init__(self, run, cid):
        self.run = run
        self.cid = cid
        self.seq = 0
        self.unit = 0          # reply bytes per unit
        self.due = bytearray() # reply bytes expected, in order
        self.got = 0           # reply bytes received
        self.idle = asyncio.get_running_loop().create_future()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send(self.run.args.depth)

    def request(self):
        raise NotImplementedError

    def send(self, count):
        out = []
        for _ in range(count):
            if not self.run.may_send():
                break
            req, reply = self.request()
            self.seq += 1
            self.run.sent += 1
            out.append(req)
            self.due += reply
        if out:
            self.write(b"".join(out))
        elif not self.due and not self.idle.done():
            self.idle.set_result(None)

    def write(self, data):
        self.transport.write(data)

    def data_received(self, data):
        n = len(data)
        if self.due[:n] != data:
            self.run.fail(f"conn {self.cid}: wrong bytes after {self.got}")
            self.transport.abort()
            return
        del self.due[:n]
        before = self.got // self.unit
        self.got += n
        answered = self.got // self.unit - before
        self.run.done += answered
        if answered:
            self.send(answered)

    def connection_lost(self, exc):
        if self.due and self.run.sending:
            self.run.fail(f"conn {self.cid}: closed with {len(self.due)} bytes due")
        if not self.idle.done():
            self.idle.set_result(None)


class Echo(Checked):
    def __init__(self, run, cid):
        super().__init__(run, cid)
        self.unit = run.args.size

    def request(self):
        # Connection id and sequence number, repeated: a misrouted or
        # reordered echo shows up as a byte mismatch.
        stamp = struct.pack("<IQ", self.cid, self.seq)
        msg = (stamp * (self.unit // len(stamp) + 1))[:self.unit]
        return msg, msg


class Http(Checked):
    def __init__(self, run, cid):
        super().__init__(run, cid)
        self.unit = len(HTTP_REPLY)
        self.loop = asyncio.get_running_loop()
        self.tail = bytearray()  # held back for the second send

    def request(self):
        return HTTP_REQUEST, HTTP_REPLY

    def write(self, data):
        # Two sends a moment apart, split anywhere, so servers see requests
        # that straddle reads as well as several requests in one read.
        if self.tail:  # a second send is pending: stay behind it
            self.tail += data
            return
        cut = random.randrange(1, len(data) + 1)
        self.transport.write(data[:cut])
        if cut < len(data):
            self.tail += data[cut:]
            self.loop.call_later(0.0002, self.write_tail)

    def write_tail(self):
        data, self.tail = bytes(self.tail), bytearray()
        if not self.transport.is_closing():
            self.transport.write(data)


async def checked_conn(run, cls, cid):
    loop = asyncio.get_running_loop()
    a = run.args
    transport, proto = await loop.create_connection(
        lambda: cls(run, cid), a.host, a.port)
    return transport, proto


async def finish_checked(run, conns):
    """Stop sending, wait (bounded) for answers still due, then close."""
    a = run.args
    run.sending = False
    for _, p in conns:
        if not p.due and not p.idle.done():
            p.idle.set_result(None)
    if not a.abort:
        done, _ = await asyncio.wait([p.idle for _, p in conns], timeout=a.grace)
        late = sum(1 for _, p in conns if p.due)
        if late:
            run.errors.append(f"{late} connections still owed bytes after {a.grace}s")
    for t, _ in conns:
        if a.abort:
            reset_on_close(t)
            t.abort()
        else:
            t.close()
    await asyncio.sleep(0.05)  # let the closes go out before the loop ends


async def run_checked(run, cls):
    a = run.args
    conns = await asyncio.gather(*(checked_conn(run, cls, i) for i in range(a.conns)))
    start = time.monotonic()
    done0 = run.done
    while time.monotonic() - start < a.duration and run.may_send() and not run.errors:
        await asyncio.sleep(min(0.05, a.duration))
    elapsed = time.monotonic() - start
    answered = run.done - done0
    await finish_checked(run, conns)
    what = "messages" if cls is Echo else "requests"
    print(f"{a.mode}: {a.conns} conns, depth {a.depth}, "
          f"{a.size if cls is Echo else len(HTTP_REQUEST)} B: "
          f"{answered} {what} in {elapsed:.2f}s = {answered / elapsed:,.0f} {what}/s")


async def sink_conn(run, cid, deadline):
    a = run.args
    reader, writer = await asyncio.open_connection(a.host, a.port)
    chunk = bytes([cid & 0xff]) * a.size
    sent = 0
    try:
        while time.monotonic() < deadline and run.may_send():
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            run.sent += 1
        if a.abort:
            reset_on_close(writer.transport)
            writer.transport.abort()
            return sent
        writer.write_eof()
        # The server closes after EOF; anything it sends back is an error.
        extra = await asyncio.wait_for(reader.read(), a.grace)
        if extra:
            run.errors.append(f"conn {cid}: sink sent back {len(extra)} bytes")
    finally:
        writer.close()
    return sent


async def run_sink(run):
    a = run.args
    start = time.monotonic()
    sent = await asyncio.gather(
        *(sink_conn(run, i, start + a.duration) for i in range(a.conns)))
    elapsed = time.monotonic() - start
    total = sum(sent)
    print(f"sink: {a.conns} conns, {a.size} B writes: {total / 1e6:,.1f} MB "
          f"in {elapsed:.2f}s = {total / elapsed / 1e6:,.1f} MB/s")


async def main(args):
    run = Run(args)
    if args.mode == "sink":
        coro = run_sink(run)
    else:
        coro = run_checked(run, Echo if args.mode == "echo" else Http)
    await asyncio.wait_for(coro, args.duration + args.grace + 10)
    for e in run.errors[:10]:
        print("error:", e, file=sys.stderr)
    return 1 if run.errors else 0


def parse_args():
    p = argparse.ArgumentParser(
        description="bounded load client for sanity-checking the peer servers")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--mode", choices=("echo", "http", "sink"), default="echo")
    p.add_argument("-c", "--conns", type=int, default=50)
    p.add_argument("-s", "--size", type=int, default=64,
                   help="message size (echo) or write size (sink), bytes")
    p.add_argument("-d", "--depth", type=int, default=1,
                   help="messages or requests in flight per connection")
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--max-messages", type=int, default=10_000_000)
    p.add_argument("--grace", type=float, default=5.0,
                   help="seconds to wait for answers still due at the end")
    p.add_argument("--abort", action="store_true",
                   help="end connections with RST while data is in flight")
    p.add_argument("--uvloop", action="store_true")
    a = p.parse_args()
    if not (1 <= a.conns <= MAX_CONNS and a.size >= 1 and a.depth >= 1
            and 0 < a.duration <= MAX_DURATION and 0 < a.grace <= MAX_DURATION):
        p.error(f"need 1 <= conns <= {MAX_CONNS}, size, depth >= 1, "
                f"0 < duration, grace <= {MAX_DURATION}")
    return a


if __name__ == "__main__":
    args = parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    sys.exit(asyncio.run(main(args)))
