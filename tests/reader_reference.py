#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs CPython's own asyncio.StreamReader over scripted chunks and reads.

The expected values in tests/test_streams_parse.c come from this script:
`python3 tests/reader_reference.py` prints every case the C tests assert.

A script is a list of steps run in order:
  ("feed", b"...")      feed_data(); then the pending read runs until it waits
  ("eof",)              feed_eof()
  ("op", name, arg)     start read/readline/readuntil/readexactly (arg: n, a
                        separator or a tuple of them); the previous op should
                        have finished by then, else it is reported pending
Each op prints one line: its result, the exception it raised, and the bytes
left in the reader's buffer just after. An op still waiting at the end is
reported as "pending" (rill's NEED_MORE).

Tuple separators appeared in Python 3.13. On an older interpreter readuntil
with a tuple runs `emulated_readuntil`, this file's transcription of the 3.13
rule (sorted by length, earliest end wins, offset = buflen + 1 - max_seplen),
and the output says so.
"""
import asyncio
import sys

NATIVE_TUPLES = sys.version_info >= (3, 13)


async def emulated_readuntil(reader, seps):
    """Python 3.13's readuntil(tuple) semantics, for older interpreters."""
    seps = sorted(seps, key=len)
    if not seps or not seps[0]:
        raise ValueError("bad separator")
    lo, hi = len(seps[0]), len(seps[-1])
    buf = reader._buffer
    offset = 0
    while True:
        if len(buf) - offset >= lo:
            best = None
            for sep in seps:
                i = buf.find(sep, offset)
                if i != -1 and (best is None or i + len(sep) < best[1]):
                    best = (i, i + len(sep))
            if best is not None:
                break
            offset = max(0, len(buf) + 1 - hi)
            if offset > reader._limit:
                raise asyncio.LimitOverrunError("not found", offset)
        if reader._eof:
            chunk = bytes(buf)
            buf.clear()
            raise asyncio.IncompleteReadError(chunk, None)
        await reader._wait_for_data("readuntil")
    if best[0] > reader._limit:
        raise asyncio.LimitOverrunError("found", best[0])
    chunk = bytes(buf[: best[1]])
    del buf[: best[1]]
    return chunk


def start_op(reader, name, arg):
    if name == "readuntil" and isinstance(arg, tuple) and not NATIVE_TUPLES:
        return emulated_readuntil(reader, arg)
    fn = getattr(reader, name)
    return fn() if name == "readline" else fn(arg)


async def traced(reader, coro):
    """Runs one op; returns its outcome and the buffer as it completes."""
    try:
        res = f"ok {await coro!r}"
    except asyncio.IncompleteReadError as e:
        res = f"IncompleteReadError partial={e.partial!r} expected={e.expected}"
    except asyncio.LimitOverrunError as e:
        res = f"LimitOverrunError consumed={e.consumed}"
    except ValueError:
        res = "ValueError"
    return f"{res} buffer={bytes(reader._buffer)!r}"


def describe(task, reader):
    if not task.done():
        return f"pending buffer={bytes(reader._buffer)!r}"
    return task.result()


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


async def run_script(limit, steps):
    reader = asyncio.StreamReader(limit=limit)
    out, task = [], None
    for step in steps:
        if step[0] == "feed":
            reader.feed_data(step[1])
        elif step[0] == "eof":
            reader.feed_eof()
        else:
            if task is not None:
                out.append(describe(task, reader))
            task = asyncio.ensure_future(
                traced(reader, start_op(reader, step[1], step[2])))
        await settle()
    if task is not None:
        out.append(describe(task, reader))
    return out


def run(limit, steps):
    return asyncio.run(run_script(limit, steps))


# The cases tests/test_streams_parse.c asserts, by test name.
CASES = {
    "readuntil_limit_found_at": (4, [("feed", b"abcd\nxyz"), ("op", "readuntil", b"\n")]),
    "readuntil_limit_found_past": (4, [("feed", b"abcde\nxyz"), ("op", "readuntil", b"\n")]),
    "readuntil_limit_notfound_at": (4, [("feed", b"abcd"), ("op", "readuntil", b"\n"), ("eof",)]),
    "readuntil_limit_notfound_past": (4, [("feed", b"abcde"), ("op", "readuntil", b"\n")]),
    "readuntil_limit_notfound_long_sep_at": (4, [("feed", b"abcdef"), ("op", "readuntil", b"\r\n\r\n"), ("eof",)]),
    "readuntil_limit_notfound_long_sep_past": (4, [("feed", b"abcdefgh"), ("op", "readuntil", b"\r\n\r\n")]),
    "readuntil_limit_across_chunks": (4, [("op", "readuntil", b"\n"), ("feed", b"abc"), ("feed", b"de"), ("feed", b"\n")]),
    "readuntil_limit_one_chunk": (4, [("op", "readuntil", b"\n"), ("feed", b"abcde\n")]),
    "readuntil_split_sep": (64, [("op", "readuntil", b"\r\n\r\n"), ("feed", b"GET / HTTP/1.1\r\n\r"), ("feed", b"\n"), ("feed", b"body")]),
    "readuntil_split_sep_each_byte": (64, [("op", "readuntil", b"END")] + [("feed", bytes([c])) for c in b"xxENxEND!"]),
    "readuntil_incomplete": (64, [("op", "readuntil", b"\r\n"), ("feed", b"partial\r"), ("eof",)]),
    "readuntil_incomplete_empty": (64, [("eof",), ("op", "readuntil", b"\n")]),
    "readuntil_found_at_eof": (64, [("feed", b"a\nb"), ("eof",), ("op", "readuntil", b"\n"), ("op", "readuntil", b"\n")]),
    "readuntil_empty_sep": (64, [("feed", b"abc"), ("op", "readuntil", b"")]),
    "multi_earliest_end": (64, [("feed", b"xx||yy;zz"), ("op", "readuntil", (b"||", b";"))]),
    "multi_tie_shorter": (64, [("feed", b"a\r\nb"), ("op", "readuntil", (b"\r\n", b"\n"))]),
    "multi_tie_limit": (1, [("feed", b"a\r\nb"), ("op", "readuntil", (b"\r\n", b"\n"))]),
    "multi_tie_limit_single": (1, [("feed", b"a\r\nb"), ("op", "readuntil", b"\r\n")]),
    "multi_overlap": (64, [("feed", b"xabcd"), ("op", "readuntil", (b"abcd", b"bc"))]),
    "multi_empty_tuple": (64, [("feed", b"abc"), ("op", "readuntil", ())]),
    "multi_one_empty": (64, [("feed", b"abc"), ("op", "readuntil", (b"b", b""))]),
    "multi_limit_notfound": (3, [("op", "readuntil", (b"\n", b"ABCDEF")), ("feed", b"12345678"), ("feed", b"9")]),
    "multi_many": (64, [("feed", b"xxxffffg"), ("op", "readuntil", (b"ccc", b"b", b"dd", b"e", b"ffff", b"g"))]),
    "multi_split": (64, [("op", "readuntil", (b"\r\n\r\n", b"\n\n")), ("feed", b"hdr\r\n\r"), ("feed", b"\n")]),
    "readexactly_eof": (64, [("feed", b"abc"), ("eof",), ("op", "readexactly", 5)]),
    "readexactly_chunks": (2, [("op", "readexactly", 5), ("feed", b"ab"), ("feed", b"cd"), ("feed", b"efg")]),
    "readexactly_zero": (64, [("eof",), ("op", "readexactly", 0)]),
    "readexactly_negative": (64, [("feed", b"abc"), ("op", "readexactly", -1)]),
    "readline_overrun_newline": (4, [("feed", b"abcdefg\nrest\n"), ("op", "readline", None), ("op", "readline", None)]),
    "readline_overrun_no_newline": (4, [("feed", b"abcdefg"), ("op", "readline", None), ("feed", b"xy\n"), ("op", "readline", None)]),
    "readline_overrun_later_chunk": (4, [("op", "readline", None), ("feed", b"abc"), ("feed", b"defg\nz"), ("op", "readline", None), ("eof",)]),
    "readline_at_limit": (4, [("feed", b"abcd\n"), ("op", "readline", None)]),
    "readline_partial": (64, [("feed", b"ab\ncd"), ("eof",), ("op", "readline", None), ("op", "readline", None), ("op", "readline", None)]),
    "read_variants": (64, [("feed", b"hello"), ("op", "read", 0), ("op", "read", 3), ("op", "read", 10), ("op", "read", 4)]),
    "read_eof": (64, [("feed", b"xy"), ("eof",), ("op", "read", 5), ("op", "read", 5), ("op", "read", -1)]),
    "read_all": (2, [("op", "read", -1), ("feed", b"abc"), ("feed", b"defgh"), ("eof",)]),
}


def main():
    if not NATIVE_TUPLES:
        print(f"# Python {sys.version.split()[0]}: tuple separators emulated")
    for name, (limit, steps) in CASES.items():
        for i, line in enumerate(run(limit, steps)):
            print(f"{name}[{i}] {line}")


if __name__ == "__main__":
    main()
