"""Malformed input never crashes the decoder or the replay loop and never corrupts a book.

Bounded in the default run (about a second per test); MATCHCORE_SOAK=1 runs each for a minute.
"""
from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

import matchcore.itch as itch
from matchcore._magic import TEXT_LOOK

SOAK = os.environ.get("MATCHCORE_SOAK") == "1"
BUDGET_S = 60.0 if SOAK else 1.0
AAPL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "itch" / "aapl-20191230-0935.itch50"


def _corpus() -> bytes:
    data = itch.generate(None, messages=3_000, symbols=3, seed=21)
    if AAPL.exists():
        data += AAPL.read_bytes()[:60_000]
    return data


# a system event message (start of messages): a start every reader takes
_SYSTEM_EVENT = b"\x00\x0cS" + bytes(10) + b"O"


def _check(buf: bytes, infer: bool, rng: random.Random) -> None:
    try:
        d = itch.decode(buf, infer_lengths=infer)
    except ValueError as e:
        # first bytes that cannot start an ITCH stream (bytes from inside a message), refused
        # as from a file, and by the loop's first feed in the same words: their framing is
        # still compared with the loop's, behind a system event message
        assert str(e).startswith("the buffer: "), e
        first = itch.Replayer(infer_lengths=infer)
        with pytest.raises(ValueError) as fed:
            n = first.feed(buf)
            # a first chunk too short to be judged as the whole stream is kept back, nothing
            # consumed, and judged when the stream ends
            assert n == 0 and len(buf) < TEXT_LOOK, (n, len(buf))
            first.finish(buf)
        assert str(fed.value) == str(e)
        buf = _SYSTEM_EVENT + buf
        d = itch._decode_buffer(memoryview(buf), infer)
    every = rng.choice([0, 7, 100])
    r = itch.Replayer(infer_lengths=infer, snapshot_every=every,
                      snapshot_depth=3 if every else None)
    n = r.feed(buf)
    assert 0 <= n <= len(buf)
    s = r.finish(buf[n:])
    # the decoder and the loop frame the bytes the same way
    assert (s["messages"], s["counts"], s["bad_lengths"], s["bytes_skipped"], s["truncated"]) == \
        (d.stats["messages"], d.stats["counts"], d.stats["bad_lengths"], d.stats["bytes_skipped"],
         d.stats["truncated"])
    # feed() may keep back a resync candidate that only the end of the stream decides
    assert (s["truncated"] is None) == (s["bytes_consumed"] == len(buf))
    for book in r.books.values():
        book.check_invariants(allow_crossed=True)
    r.tob(), r.trades(), r.snapshots()


def _chunked(buf: bytes, rng: random.Random) -> None:
    # (behind a system event message: the first feed's check of the start, which sees only
    # the first piece, is not what this compares)
    buf = _SYSTEM_EVENT + buf
    whole = itch.Replayer()
    whole.finish(buf[whole.feed(buf):])
    r = itch.Replayer()
    tail, pos = b"", 0
    while pos < len(buf):
        k = rng.randrange(1, 300)
        chunk = tail + buf[pos:pos + k]
        pos += k
        tail = chunk[r.feed(chunk):]
    r.finish(tail)
    for book in r.books.values():
        book.check_invariants(allow_crossed=True)
    # the framing (bad prefixes and resync included) never depends on where the pieces end
    assert r.stats == whole.stats
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in whole.books.items()}


def _until_budget():
    t_end = time.perf_counter() + BUDGET_S
    i = 0
    while time.perf_counter() < t_end or i < 20:
        yield i
        i += 1


def test_fuzz_random_bytes_never_crash_books_valid():
    rng = random.Random(1)
    for i in _until_budget():
        buf = rng.randbytes(rng.randrange(0, 5_000))
        if i % 3 == 0:      # random bytes behind plausible prefixes of known types
            buf = b"".join(len(m).to_bytes(2, "big") + m for m in
                           (bytes([rng.choice(b"AFEXDUCPQSRH")]) + rng.randbytes(rng.randrange(1, 60))
                            for _ in range(50)))
        _check(buf, infer=bool(i % 2), rng=rng)


def test_fuzz_mutated_real_messages_never_crash_books_valid():
    rng = random.Random(2)
    base = _corpus()
    for i in _until_budget():
        start = rng.randrange(0, len(base) - 4_000)
        buf = bytearray(base[start:start + rng.randrange(100, 20_000)])
        for _ in range(rng.randrange(1, 12)):
            op = rng.randrange(5)
            p = rng.randrange(len(buf))
            if op == 0:
                buf[p] = rng.randrange(256)                     # flip a byte
            elif op == 1:
                buf[p:p] = rng.randbytes(rng.randrange(1, 8))   # insert garbage
            elif op == 2:
                del buf[p:p + rng.randrange(1, 40)]             # drop bytes
            elif op == 3:
                buf[p:p + 2] = b"\x00\x00"                      # a zero prefix (or zeroed field)
            else:
                q = rng.randrange(len(buf))
                buf[p:p] = buf[q:q + rng.randrange(1, 80)]      # duplicate a slice
        _check(bytes(buf), infer=False, rng=rng)
        if i % 4 == 0:
            _chunked(bytes(buf), rng)


def test_fuzz_truncated_real_messages_report_truncation():
    rng = random.Random(3)
    base = _corpus()
    for _ in _until_budget():
        buf = base[: rng.randrange(0, len(base))]
        r = itch.Replayer()
        n = r.feed(buf)
        s = r.finish(buf[n:])
        assert s["bad_lengths"] == 0
        if n < len(buf):
            assert s["truncated"]["offset"] == n and s["truncated"]["bytes"] == len(buf) - n
        for book in r.books.values():
            book.check_invariants(allow_crossed=True)


@pytest.mark.parametrize("infer", [False, True])
def test_fuzz_zero_prefix_file_in_either_mode_never_crashes(infer):
    data = itch.generate(None, messages=2_000, symbols=2, seed=22)
    zero = bytearray()
    pos = 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        zero += b"\x00\x00" + data[pos + 2:pos + 2 + n]
        pos += 2 + n
    _check(bytes(zero), infer=infer, rng=random.Random(4))
    if infer:
        assert itch.decode(bytes(zero), infer_lengths=True).stats["messages"] == 2_000
