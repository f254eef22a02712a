"""ITCH replay as a benchmark workload: a generated ITCH 5.0 file through the compiled replay
loop (decode + market-by-order book building), when :mod:`matchcore.itch` is present.

The replay loop consumes a whole buffer in one compiled call, so it is measured as throughput
(messages/s over the buffer, best of a few runs after a warm-up), and as the per-message mean of
fixed-size slices of the buffer (a distribution over slices, not per message: the loop has no
per-message clock of its own).
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def unavailable_reason() -> str | None:
    """None when ITCH replay can be benchmarked, else why not."""
    if importlib.util.find_spec("matchcore.itch") is None:
        return "matchcore.itch is not part of this build"
    try:
        import matchcore.itch as itch
    except ImportError as e:
        return f"matchcore.itch failed to import: {e}"
    missing = [name for name in ("generate", "Replayer") if not hasattr(itch, name)]
    if missing:
        return f"matchcore.itch has no {', '.join(missing)} yet"
    return None


#: Symbols of the generated file the ``itch`` workload replays.
SYMBOLS = 8

#: Bytes a message of the generated day takes, rounded up (31.4 on average, its length prefix
#: included): the day is read into memory whole and replayed from there.
BYTES_PER_MESSAGE = 32


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} PiB"


def _too_much(messages: int, name: str = "messages") -> str:
    """What ``messages`` (given as ``name``) asks of memory, in words."""
    return (f"{name} {messages:,}: the itch workload would need about "
            f"{_size(messages * BYTES_PER_MESSAGE)} of memory (it holds its generated day whole)")


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_messages(messages: int, symbols: int = SYMBOLS, name: str = "messages") -> None:
    """Raise ValueError now if a day of ``symbols`` symbols cannot hold ``messages`` messages,
    MemoryError if the day would not fit in this machine's memory (what :func:`run_itch` would
    find only after the workloads before it had been measured, as a bare "out of memory"); both
    name the count as ``name`` (the option, or a function's keyword)."""
    from matchcore.itch._gen import min_messages

    least = min_messages(symbols)
    if messages < least:
        raise ValueError(f"{name} {messages:,}: the itch workload's {symbols}-symbol day "
                         f"needs at least {least} messages")
    total = _physical_memory()
    if total and messages * BYTES_PER_MESSAGE > total:
        raise MemoryError(f"{_too_much(messages, name)}, more than this machine's {_size(total)}")


def run_itch(messages: int, *, seed: int = 1, symbols: int = SYMBOLS, reps: int = 3,
             slice_bytes: int = 1 << 16) -> dict:
    """Generate ``messages`` ITCH messages into a temporary file, then time their replay
    (best of ``reps`` >= 1 runs; the per-message cost over slices of ``slice_bytes`` >= 1, a
    slice widened where the message it starts at is longer)."""
    return _run_itch(messages, seed=seed, symbols=symbols, reps=reps, slice_bytes=slice_bytes)


def _run_itch(messages: int, *, seed: int = 1, symbols: int = SYMBOLS, reps: int = 3,
              slice_bytes: int = 1 << 16, name: str = "messages") -> dict:
    # run_itch, its refusals naming the count as ``name`` (the command: its option)
    # (reps=0 failed after the day was generated, on a replay that never ran; slice_bytes=0
    # timed no slice, and a negative one sliced from the end of the buffer)
    # (and 1.5 failed in range()'s or a slice's words once the day had been generated)
    from matchcore.bench.harness import _check_count

    for arg, value in (("reps", reps), ("slice_bytes", slice_bytes)):
        _check_count(value, arg)
    import matchcore.itch as itch

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.itch"
        t0 = time.perf_counter()
        try:
            itch.generate(path, messages=messages, symbols=symbols, seed=seed)
            gen_s = time.perf_counter() - t0
            data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        except MemoryError:
            # a bare "out of memory" said neither the count nor what it asks for
            raise MemoryError(_too_much(messages, name)) from None

    def replay_once():
        r = itch.Replayer()
        t = time.perf_counter_ns()
        used = r.feed(data)
        ns = time.perf_counter_ns() - t
        r.finish(bytes(data[used:]))
        return ns, r

    replay_once()
    best, r = None, None
    for _ in range(reps):
        ns, r = replay_once()
        best = ns if best is None else min(best, ns)
    n = int(r.stats["messages"])

    # per-slice cost: feed the buffer in slices of about slice_bytes, timing each slice
    rs = itch.Replayer()
    per_msg, pos, last = [], 0, 0
    total = len(data)
    while pos < total:
        end = min(pos + slice_bytes, total)
        while True:
            t = time.perf_counter_ns()
            used = rs.feed(data[pos:end])
            ns = time.perf_counter_ns() - t
            if used or end == total:
                break
            # a slice shorter than the message at pos holds none whole: widened until it does
            # (the first such slice ended the loop, and the figures covered the slices before
            # it only: one slice of a 20,000-message day with slice_bytes=40, none with 1)
            end = min(pos + 2 * (end - pos), total)
        if used == 0:
            break
        pos += used
        done = int(rs.stats["messages"])
        if done > last:
            per_msg.append(ns / (done - last))
        last = done
    rs.finish(bytes(data[pos:]))
    from matchcore.bench.harness import summarize

    return {"messages": n, "bytes": int(total), "symbols": symbols, "seed": seed,
            "generate_s": gen_s, "replay_ns_per_msg": best / max(n, 1),
            "replay_msgs_per_s": n / best * 1e9 if best else float("inf"),
            "slice_bytes": slice_bytes, "slice_ns_per_msg": summarize(np.array(per_msg))}
