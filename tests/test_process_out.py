"""process(commands, out=buf): events written into a caller-owned EVENT_DTYPE buffer reused
across calls; a buffer too small gives a new array with every event (never a lost event); a bad
buffer raises before any command is applied. Run on the compiled book and the reference model."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import matchcore as mc
from conftest import event_dicts


def _cmds(rows):
    a = np.zeros(len(rows), dtype=mc.COMMAND_DTYPE)
    for i, (kind, oid, side, price, qty) in enumerate(rows):
        a[i]["kind"], a[i]["order_id"], a[i]["side"] = kind, oid, side
        a[i]["price"], a[i]["qty"], a[i]["ts_ns"] = price, qty, 1000 + i
    return a


S, M, C = mc.CommandKind.SUBMIT, mc.CommandKind.MARKET, mc.CommandKind.CANCEL
BATCH = _cmds([(S, 1, 1, 101, 5), (S, 2, 1, 102, 5), (S, 3, 0, 102, 7), (C, 9, 0, 0, 0),
               (M, 4, 0, 0, 2)])


def test_process_out_fits_returns_view_of_out(book_cls):
    expected = book_cls().process(BATCH)
    buf = np.zeros(64, dtype=mc.EVENT_DTYPE)
    got = book_cls().process(BATCH, out=buf)
    assert len(got) == len(expected) == 8
    assert np.shares_memory(got, buf)
    assert event_dicts(got) == event_dicts(expected)
    assert event_dicts(buf[:len(got)]) == event_dicts(expected)
    assert not buf[len(got):].view(np.uint8).any()


def test_process_out_reused_across_calls_each_call_own_events(book_cls):
    book, ref = book_cls(), book_cls()
    buf = np.zeros(16, dtype=mc.EVENT_DTYPE)
    for lo, hi in ((0, 2), (2, 4), (4, 5)):
        got = book.process(BATCH[lo:hi], out=buf)
        assert event_dicts(got) == event_dicts(ref.process(BATCH[lo:hi]))
    assert len(book) == len(ref) == 1


def test_process_out_too_small_returns_all_events(book_cls):
    expected = book_cls().process(BATCH)
    buf = np.zeros(len(expected) - 1, dtype=mc.EVENT_DTYPE)
    book = book_cls()
    got = book.process(BATCH, out=buf)
    assert len(got) == len(expected) > len(buf)
    assert not np.shares_memory(got, buf)
    assert event_dicts(got) == event_dicts(expected)
    assert len(book.events()) == 0           # nothing was left pending either


@pytest.mark.parametrize("size", [0, 1, 5, 7, 8, 9, 40])
def test_process_out_any_size_same_events_as_per_call(book_cls, size):
    # events overflowing a small buffer go on in the book's own one and are joined in order;
    # pending per-call events before the batch are neither returned nor lost
    rng = np.random.default_rng(size)
    rows = []
    for i in range(60):
        r = rng.integers(0, 4)
        if r < 2:
            rows.append((S, 100 + i, int(rng.integers(0, 2)), int(rng.integers(95, 106)),
                         int(rng.integers(1, 9))))
        elif r == 2:
            rows.append((C, 100 + int(rng.integers(0, 60)), 0, 0, 0))
        else:
            rows.append((M, 100 + i, int(rng.integers(0, 2)), 0, int(rng.integers(1, 20))))
    cmds = _cmds(rows)
    ref = book_cls()
    ref.submit(1, 0, 90, 1)
    ref.events()
    expected = ref.process(cmds)
    book = book_cls()
    book.submit(1, 0, 90, 1)
    buf = np.zeros(size, dtype=mc.EVENT_DTYPE)
    got = book.process(cmds, out=buf)
    assert event_dicts(got) == event_dicts(expected)
    assert np.shares_memory(got, buf) == (len(expected) <= size)
    assert [int(k) for k in book.events()["kind"]] == [mc.EventKind.ACCEPTED]
    assert len(book) == len(ref)
    assert (book.best_bid(), book.best_ask()) == (ref.best_bid(), ref.best_ask())


def test_process_out_exact_size_fits(book_cls):
    n = len(book_cls().process(BATCH))
    buf = np.empty(n, dtype=mc.EVENT_DTYPE)
    assert np.shares_memory(book_cls().process(BATCH, out=buf), buf)


def test_process_out_empty_batch_empty_view(book_cls):
    buf = np.zeros(4, dtype=mc.EVENT_DTYPE)
    got = book_cls().process(BATCH[:0], out=buf)
    assert len(got) == 0 and got.dtype == mc.EVENT_DTYPE


@pytest.mark.parametrize("bad, exc", [
    (np.zeros(8, dtype=np.int64), TypeError),
    ([0] * 8, TypeError),
    (np.zeros((2, 8), dtype=mc.EVENT_DTYPE), ValueError),
    (np.zeros(16, dtype=mc.EVENT_DTYPE)[::2], ValueError),
    (np.zeros(8 * 64 + 1, dtype=np.uint8)[1:].view(mc.EVENT_DTYPE), ValueError),   # unaligned
])
def test_process_out_bad_buffer_raises_book_unchanged(book_cls, bad, exc):
    book = book_cls()
    with pytest.raises(exc):
        book.process(BATCH, out=bad)
    assert len(book) == 0
    assert len(book.process(BATCH)) == 8        # nothing of the batch was applied before


def test_process_out_read_only_buffer_raises_value_error(book_cls):
    buf = np.zeros(16, dtype=mc.EVENT_DTYPE)
    buf.flags.writeable = False
    book = book_cls()
    with pytest.raises(ValueError, match="writeable array, got a read-only one"):
        book.process(BATCH, out=buf)
    assert len(book) == 0


@pytest.mark.parametrize("bad, exc, given", [
    (np.zeros(8, dtype=np.int64), TypeError, "got an array of dtype int64"),
    ([0] * 8, TypeError, "got list"),
    (np.zeros((2, 8), dtype=mc.EVENT_DTYPE), ValueError, r"got shape \(2, 8\)"),
    (np.zeros(16, dtype=mc.EVENT_DTYPE)[::2], ValueError, "got a strided or unaligned array"),
    (np.zeros(8 * 64 + 1, dtype=np.uint8)[1:].view(mc.EVENT_DTYPE), ValueError,
     "got a strided or unaligned array"),
])
def test_process_out_bad_buffer_refusal_says_what_was_given(book_cls, bad, exc, given):
    # "needs a numpy array of matchcore.EVENT_DTYPE" said the same for a list and for an
    # int64 array, and "needs a 1-D C-contiguous array at an 8-byte aligned address" the same
    # for a 2-D array and a strided view: the caller could not tell which rule was broken
    # (process()'s commands and depth_into()'s arrays are refused naming what was given)
    book = book_cls()
    with pytest.raises(exc, match=given):
        book.process(BATCH, out=bad)
    assert len(book) == 0 and len(book.events()) == 0


def test_engine_process_out_bad_buffer_refusal_says_what_was_given():
    # the Engine checks its out= with the book's check: the same words
    eng = mc.Engine()
    eng.add_symbol(1)
    cmds = BATCH.copy()
    cmds["symbol"] = 1
    with pytest.raises(TypeError, match="got an array of dtype float64"):
        eng.process(cmds, out=np.zeros(8))
    with pytest.raises(ValueError, match=r"got shape \(2, 8\)"):
        eng.process(cmds, out=np.zeros((2, 8), dtype=mc.EVENT_DTYPE))
    assert len(eng.book(1)) == 0 and len(eng.events()) == 0


def test_process_out_keeps_pending_per_call_events(book_cls):
    book = book_cls()
    book.submit(50, 0, 90, 1)
    buf = np.zeros(32, dtype=mc.EVENT_DTYPE)
    book.process(BATCH, out=buf)
    pending = book.events()
    assert [int(k) for k in pending["kind"]] == [mc.EventKind.ACCEPTED]
    assert int(pending["order_id"][0]) == 50


def _market_batch(n, seed, market_share):
    # new passive orders and market orders of 3-10 lots that sweep one-lot makers
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        side = int(rng.integers(0, 2))
        if rng.random() < market_share:
            rows.append((M, 10 + i, side, 0, int(rng.integers(3, 11))))
        else:
            px = int(rng.integers(90, 100)) if side == 0 else int(rng.integers(101, 111))
            rows.append((S, 10 + i, side, px, 1))
    return _cmds(rows)


@pytest.mark.parametrize("n, makers, market_share", [
    (100, 10, 0.2),          # a small batch: copied from the book's own buffer
    (6000, 10, 0.2),         # every event fits the array made up front: written in place
    (12000, 20000, 0.9),     # ~8 events a command: the array runs short, the rest spills over
    (3000, 20000, 0.9),      # a book deeper than the batch: copied from the book's own buffer
])
def test_process_without_out_same_events_as_one_command_at_a_time(n, makers, market_share):
    cmds = _market_batch(n, n, market_share)
    setup = _cmds([(S, 1_000_000 + i, i % 2, (80 - i % 20) if i % 2 == 0 else (120 + i % 20), 1)
                   for i in range(makers)])
    a, b = mc.OrderBook(), mc.OrderBook()
    a.process(setup)
    b.process(setup)
    a.submit(1, 0, 10, 1)                    # pending per-call events, kept apart
    a.cancel(1)
    got = a.process(cmds)
    expected = np.concatenate([b.process(cmds[i:i + 1]) for i in range(len(cmds))])
    assert event_dicts(got) == event_dicts(expected)
    # (its own array, or a view of one no other result refers to: see the reuse test below)
    assert got.flags.writeable and got.flags.c_contiguous and len(got) == len(expected)
    held = got.copy()
    a.copy().process(cmds)                   # a later batch leaves a held result as it was
    assert np.array_equal(got, held)
    if makers == 20000 and n == 12000:
        assert len(got) > 2 * n + 64         # the spill path was taken
    assert [int(k) for k in a.events()["kind"]] == [mc.EventKind.ACCEPTED,
                                                     mc.EventKind.CANCELLED]
    assert a.state_hash() == b.state_hash()


@pytest.mark.parametrize("n", range(0, 11))
def test_process_short_batches_growing_the_index_same_as_one_at_a_time(n):
    # The command loop reads ahead (it prefetches the index line of the command a few places
    # on, clamped to the last): batches shorter and longer than that distance, against one
    # command at a time. The book starts one order short of its 64 slots, so a batch's resting
    # orders grow the order pool and the id index partway through.
    a, b = mc.OrderBook(capacity=64), mc.OrderBook(capacity=64)
    rows = [(S, 10 + i, 0, 96 - i % 7, 1) for i in range(63)]
    a.process(_cmds(rows))
    b.process(_cmds(rows))
    rng = np.random.default_rng(n)
    batch = []
    for i in range(n):
        r = rng.random()
        if r < 0.2:
            batch.append((C, 10 + int(rng.integers(0, 70)), 0, 0, 0))
        elif r < 0.35:
            batch.append((M, 500 + i, 1, 0, int(rng.integers(1, 4))))
        else:
            batch.append((S, 500 + i, 0, 85 + int(rng.integers(0, 5)), 2))
    cmds = _cmds(batch)
    got = a.process(cmds)
    expected = [b.process(cmds[i:i + 1]) for i in range(n)]
    expected = np.concatenate(expected) if expected else np.zeros(0, mc.EVENT_DTYPE)
    assert event_dicts(got) == event_dicts(expected)
    assert a.state_hash() == b.state_hash()
    a.check_invariants()
    if n == 10:
        assert len(a) > 64                  # the pools grew inside the batch


def _deep_book(book_cls, n, stp=mc.STP.CANCEL_RESTING):
    # n one-lot asks over n // 2 levels and as many bids, owners 1..3
    book = book_cls(stp=stp)
    cmds = np.zeros(2 * n, dtype=mc.COMMAND_DTYPE)
    i = np.arange(n)
    for side, px in ((1, 1001 + i // 2), (0, 999 - i // 2)):
        rows = cmds[side * n:(side + 1) * n]
        rows["kind"], rows["side"], rows["price"], rows["qty"] = S, side, px, 1
        rows["order_id"] = 1 + side * n + i
        rows["owner"] = 1 + i % 3
    book.process(cmds)
    return book


@pytest.mark.parametrize("stp, owner, qty", [
    (mc.STP.CANCEL_RESTING, 0, 5),      # at most qty fills per order: room for qty + a few
    (mc.STP.CANCEL_TAKER, 2, 5),        # a self-trade stops the order: still bounded by qty
    (mc.STP.CANCEL_BOTH, 1, 5),
    (mc.STP.CANCEL_RESTING, 2, 5),      # may cancel every maker it meets: room for them all
    (mc.STP.CANCEL_RESTING, 0, 3000),   # one order fills 3,000 makers
])
def test_process_out_deep_book_room_per_order(book_cls, stp, owner, qty):
    # A book far deeper than the buffer: each order needs room only for the events it can
    # write (written in place; a speed matter the benchmark measures), and when an order cannot
    # be sure of its room the rest of the batch spills over. Either way every event comes back
    # in order, the same as one command at a time.
    n = 20_000
    rng = np.random.default_rng(qty + owner + int(stp))
    cmds = np.zeros(3000, dtype=mc.COMMAND_DTYPE)
    cmds["kind"] = np.where(rng.random(3000) < 0.5, S, M)
    cmds["side"] = rng.integers(0, 2, 3000)
    cmds["price"] = np.where(cmds["kind"] == S, np.where(cmds["side"] == 0, 990, 1010), 0)
    cmds["qty"] = qty if qty < 100 else np.where(np.arange(3000) == 5, qty, 1)
    cmds["order_id"] = 10 * n + np.arange(3000)
    cmds["owner"] = owner
    cmds["ts_ns"] = np.arange(3000)
    ref = _deep_book(book_cls, n, stp)
    expected = np.concatenate([ref.process(cmds[i:i + 1]) for i in range(len(cmds))])
    book = _deep_book(book_cls, n, stp)
    buf = np.zeros(12_000, dtype=mc.EVENT_DTYPE)
    got = book.process(cmds, out=buf)
    assert event_dicts(got) == event_dicts(expected)
    assert np.shares_memory(got, buf) == (len(expected) <= len(buf))
    assert len(book.events()) == 0
    assert len(book) == len(ref)
    for mine, theirs in zip(book.depth(100), ref.depth(100)):
        assert np.array_equal(mine, theirs)


_rows = st.lists(st.tuples(st.sampled_from([S, M, C, mc.CommandKind.MODIFY]), st.integers(0, 1),
                           st.integers(95, 106), st.sampled_from([1, 2, 3, 7, 40, 400]),
                           st.integers(0, 3), st.integers(0, 2)),
                 min_size=1, max_size=80)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stp=st.sampled_from(list(mc.STP)), depth=st.integers(0, 300), size=st.integers(0, 48),
       rows=_rows)
def test_process_out_small_buffer_on_a_deeper_book_property(stp, depth, size, rows):
    # A buffer smaller than the book: each order is held to its own event bound (one per lot,
    # the whole book under cancel-resting STP with an owner) and the batch spills over when an
    # order cannot be sure of its room. Whatever the mix, every event comes back, in order, the
    # same as one command at a time, and the buffer is never written past its end (an ASan
    # build of the tests checks the last part).
    def build():
        book = mc.OrderBook(stp=stp)
        for i in range(depth):
            book.submit(1 + i, i % 2, 100 - 1 - i % 5 if i % 2 == 0 else 100 + 1 + i % 5, 1 + i % 3,
                        owner=i % 3)
        book.events()
        return book
    cmds = np.zeros(len(rows), dtype=mc.COMMAND_DTYPE)
    for i, (kind, side, px, qty, owner, back) in enumerate(rows):
        c = cmds[i]
        c["kind"], c["side"], c["qty"], c["owner"], c["ts_ns"] = kind, side, qty, owner, i
        c["price"] = 0 if kind == M else px
        # cancels and modifies hit resting ids (from the setup or this batch) or unknown ones
        c["order_id"] = (1000 + i if kind in (S, M) else
                         max(1, 1000 + i - 1 - back) if i > back else 1 + (i * 7 + back) % (depth + 2))
    ref = build()
    expected = [ref.process(cmds[i:i + 1]) for i in range(len(cmds))]
    expected = np.concatenate(expected) if expected else np.zeros(0, mc.EVENT_DTYPE)
    book = build()
    buf = np.zeros(size, dtype=mc.EVENT_DTYPE)
    got = book.process(cmds, out=buf)
    event("fits" if len(expected) <= size else "spills over")
    event("buffer below one event per resting order" if size < depth + 4 else "buffer >= book")
    assert event_dicts(got) == event_dicts(expected)
    assert np.shares_memory(got, buf) == (0 < len(expected) <= size)
    assert book.state_hash() == ref.state_hash()
    book.check_invariants()


def _engine_on(sym=0):
    eng = mc.Engine()
    eng.add_symbol(sym)
    return eng


@pytest.mark.parametrize("make", [mc.OrderBook, _engine_on], ids=["book", "engine"])
def test_process_without_out_reuses_a_result_array_no_result_refers_to(make):
    # A large batch's result is a view of an array made for it; once no result refers to that
    # array, the next batch that fits writes into it (pages already mapped). A result still
    # held is never written again, and every result holds exactly its batch's events.
    from matchcore._core import _result_blocks
    from matchcore.workloads import standard_mix
    setup, flow = standard_mix(6_000, seed=11)
    parts = [flow[i:i + 3_000] for i in (0, 3_000)]
    ref = make()
    ref.process(setup)
    expect = [ref.process(p).copy() for p in parts]

    def run_both():
        target = make()
        target.process(setup)
        return [target.process(p) for p in parts]

    first = run_both()                      # both results held: two arrays in use
    assert not np.shares_memory(first[0], first[1])
    kept = [r.copy() for r in first]
    again = run_both()                      # the first two still held: new arrays
    for a, b in zip(first, again):
        assert not np.shares_memory(a, b)
    for r, k, e in zip(first, kept, expect):
        assert np.array_equal(r, k) and np.array_equal(r, e)
    for r, e in zip(again, expect):
        assert np.array_equal(r, e)
    blocks = _result_blocks()
    assert 0 < len(blocks) <= 2
    assert sum(b.nbytes for b in blocks) <= 128 << 20
    held = [b for b in blocks if any(np.shares_memory(b, r) for r in first + again)]
    del first, again, kept, r, a, b
    free = [b.__array_interface__["data"][0] for b in _result_blocks()]
    del blocks, held
    reused = run_both()                     # the kept arrays are free again: written again
    assert any(r.__array_interface__["data"][0] in free for r in reused)
    for r, e in zip(reused, expect):
        assert np.array_equal(r, e)


def test_process_without_out_result_is_a_plain_array_of_its_events():
    book = mc.OrderBook()
    from matchcore.workloads import standard_mix
    setup, flow = standard_mix(5_000, seed=3)
    book.process(setup)
    ev = book.process(flow)
    assert ev.dtype == mc.EVENT_DTYPE and ev.ndim == 1 and ev.flags.c_contiguous
    assert ev.flags.writeable and len(ev) >= len(flow)
    ev2 = ev.copy()
    ev[:] = ev2[::-1]                       # the caller's to write
    assert np.array_equal(ev[::-1], ev2)


# the start of the out-of-memory child scripts: what (argv[1], "book" or "engine") to make
_OOM_CHILD_MAKE = r"""
import resource, sys
import numpy as np
import matchcore as mc

what = sys.argv[1]


def make():
    if what == "engine":
        e = mc.Engine()
        e.add_symbol(0)
        return e
    return mc.OrderBook()


def process_within(obj, batch, room):
    # obj.process(batch) with only ``room`` bytes of address space beyond what the child
    # holds now: its MemoryError (a batch that fits ends the child: "returned", exit 0)
    vm = next(int(l.split()[1]) for l in open("/proc/self/status")
              if l.startswith("VmSize")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + room, resource.RLIM_INFINITY))
    try:
        obj.process(batch)
    except MemoryError as ex:
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
        return ex
    print("returned")
    sys.exit(0)
"""


_BEFORE_OOM_SCRIPT = _OOM_CHILD_MAKE + r"""
strided = sys.argv[2] == "strided"


n = 3_000_000
flow = np.zeros(n, mc.COMMAND_DTYPE)
flow["order_id"] = np.arange(1, n + 1)
flow["side"] = np.arange(n) % 2
flow["price"] = np.where(flow["side"] == 0, 1 + np.arange(n) % 40, 101 + np.arange(n) % 40)
flow["qty"] = 1
batch = flow[::2] if strided else flow
obj = make()
empty = obj.state_hash()
# room for neither the result array made before the batch (2n + 64 events, then n + 64) nor
# the aligned copy of a strided batch
err = process_within(obj, batch, 40 * 2**20)
print(err.applied, str(err))
assert obj.state_hash() == empty and len(obj.events()) == 0 and not obj.busy
"""


@pytest.mark.parametrize("strided", ["contiguous", "strided"])
@pytest.mark.parametrize("what", ["engine", "book"])
def test_process_out_of_memory_before_first_command_says_none_applied(what, strided):
    # A large batch without out= makes its result array before the first command, and a
    # strided batch is copied first: memory running out there gave numpy's MemoryError,
    # without the `applied` count the README promises (a caller keeping its own record of
    # the batch read e.applied: AttributeError)
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _BEFORE_OOM_SCRIPT, what, strided],
                       capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert r.returncode == 0, r.stderr
    applied, message = r.stdout.split(" ", 1)
    n = 1_500_000 if strided == "strided" else 3_000_000
    assert applied == "0" and message.strip() == f"matchcore: out of memory after 0 of {n} commands"


def test_readme_process_out_of_memory_message_is_the_one_raised():
    # the README quoted "out of memory after 1,204 of 3,000,000 commands": the message has no
    # thousands separators, and a caller matching the quoted form never matched
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    quoted = re.search(r"`(matchcore: )?out of memory after [^`]* commands`", readme).group(0)
    r = subprocess.run([sys.executable, "-c", _BEFORE_OOM_SCRIPT, "book", "contiguous"],
                       capture_output=True, text=True, env=dict(os.environ), timeout=300)
    raised = r.stdout.split(" ", 1)[1].strip()
    shape = re.sub(r"\d+", "N", raised)
    assert re.sub(r"\d+", "N", quoted.strip("`")) == shape, (quoted, raised)


_EVENTS_FIT_SCRIPT = r"""
import resource, sys
import numpy as np
import matchcore as mc

what = sys.argv[1]
if what == "engine":
    obj = mc.Engine()
    obj.add_symbol(0)
else:
    obj = mc.OrderBook()
n = 2_000_000
# cancels of ids that are not resting: one REJECTED event each, and the book stays empty
batch = np.zeros(n, mc.COMMAND_DTYPE)
batch["order_id"] = np.arange(1, n + 1)
batch["kind"] = mc.CommandKind.CANCEL
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
# room for the batch's n events (128 MB) and some to spare, not for 2n
resource.setrlimit(resource.RLIMIT_AS, (vm + 200 * 2**20, resource.RLIM_INFINITY))
try:
    events = obj.process(batch)
except MemoryError as ex:
    print("MemoryError", getattr(ex, "applied", None), ex)
    sys.exit(1)
resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
assert len(events) == n and (events["kind"] == mc.EventKind.REJECTED).all()
assert (events["order_id"] == batch["order_id"]).all()
print("ok")
"""


@pytest.mark.parametrize("what", ["engine", "book"])
def test_process_whose_events_fit_in_memory_runs(what):
    # A large batch without out= made its result array for 2n + 64 events before the first
    # command and, when that did not fit, refused the whole batch ("out of memory after 0 of
    # n commands") although its n events fitted: the array is room for a guess, and events
    # past it go to the book's own buffer, as past a short out=
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _EVENTS_FIT_SCRIPT, what],
                       capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.stdout, r.stderr)


_PART_WAY_OOM_SCRIPT = _OOM_CHILD_MAKE + r"""


n = 2_000_000
batch = np.zeros(n, mc.COMMAND_DTYPE)
batch["order_id"] = np.arange(1, n + 1)
batch["qty"] = 1
# asks at 200 and bids at 100 that rest, so that the book's pools keep growing; the sixth
# command buys 3 lots at 200 (IOC): fills among the first commands, which stay applied
batch["side"][: n // 2] = 1
batch["price"] = np.where(batch["side"] == 1, 200, 100)
batch["side"][5], batch["price"][5], batch["qty"][5], batch["tif"][5] = 0, 200, 3, 1
obj = make()
# room for the result array, not for the pools of two million resting orders
err = process_within(obj, batch, 300 * 2**20)
done = err.applied
assert 6 <= done < n, (done, str(err))
want = make().process(batch[:done])
assert (want["kind"] == mc.EventKind.FILL).sum() == 3
got = getattr(err, "events", None)
assert got is not None, "the applied commands' events are not on the MemoryError"
assert np.array_equal(got, want)
assert len(obj.events()) == 0 and not obj.busy
print("ok", done)
"""


@pytest.mark.parametrize("what", ["engine", "book"])
def test_process_out_of_memory_part_way_keeps_the_applied_commands_events(what):
    # Memory running out part way left the commands before that point applied, with their
    # fills, but raised without their events (not returned, not pending): a simulator
    # accounting for the applied commands by e.applied could not tell what they traded
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _PART_WAY_OOM_SCRIPT, what],
                       capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("ok"), (r.stdout, r.stderr)
