"""A journaled engine's calls from another thread while one of its calls runs without the GIL:
refused with BusyError, as for an engine without a journal, whatever the running call is doing
to the journal meanwhile (a segment roll closes one segment before it opens the next)."""
import threading
import time

import numpy as np
import pytest

import matchcore as mc
from matchcore import BusyError
from matchcore.durability.snapshot import load_snapshot
from matchcore.workloads import standard_mix


def test_journaled_engine_calls_during_another_threads_segment_rolls_raise_busy(tmp_path):
    # Small segments: the batch rolls to a new one every few hundred commands, and its thread
    # spends much of its time with no segment open (the old one closed, the next being made and
    # its name fsynced). A process() from another thread then raised JournalError "journal DIR
    # is closed" (its journal check came before its busy check), snapshot() took the engine
    # for a closed one and raised "DIR is in use by another engine", and journal.closed said
    # True, all for an engine that was open and merely busy.
    setup, flow = standard_mix(100_000, seed=2)
    eng = mc.Engine(journal=tmp_path / "j", segment_bytes=1 << 16)
    eng.add_symbol(0)
    eng.process(setup)
    ref = mc.Engine()
    ref.add_symbol(0)
    ref.process(setup)
    ref.process(flow)
    one = np.zeros(1, dtype=mc.COMMAND_DTYPE)     # an order far from the flow's prices
    one["order_id"], one["price"], one["qty"] = 10**12, 10, 1
    calls = {"process": lambda: eng.process(one), "snapshot": lambda: eng.snapshot(),
             "closed": lambda: eng.journal.closed}
    box = {}

    def batch():
        # until it gets in: a call of this thread may hold the engine as the batch starts
        while "events" not in box:
            try:
                box["events"] = eng.process(flow)
            except BusyError:
                time.sleep(0)

    t = threading.Thread(target=batch)
    t.start()
    refused, wrong, closed = 0, [], 0
    while t.is_alive():
        for name, call in calls.items():
            try:
                if call() is True:
                    closed += 1
            except BusyError:
                refused += 1
            except Exception as exc:            # anything else is the defect
                wrong.append(f"{name}: {type(exc).__name__}: {exc}")
            time.sleep(0)                       # the GIL to the batch while the engine is free
    t.join()
    assert "events" in box
    assert not wrong, wrong[:3]
    assert closed == 0
    if refused == 0:
        pytest.skip("the batch ended before any call met it on this machine")
    # a process() that ran did so after the batch: the engine is the batch's, plus that order
    eng.cancel(10**12)
    assert eng.state_hash() == ref.state_hash()
    h = eng.state_hash()
    eng.close()
    assert eng.journal.closed
    assert mc.Engine.recover(tmp_path / "j").state_hash() == h


def _while_batches_roll_segments(tmp_path, call, batches_wanted=3):
    """Journaled batches in this thread, each rolling to a new segment every few records (a
    roll closes one segment and opens the next, fsyncs included, without the GIL), while
    another thread makes ``call(eng)`` again and again. Returns what that thread's calls
    raised other than BusyError ({"type: message": count}), and the engine."""
    eng = mc.Engine(journal=tmp_path / "j", fsync="batch", segment_bytes=8256)
    eng.add_symbol(1)
    done = threading.Event()
    raised: dict[str, int] = {}

    def other():
        while not done.is_set():
            try:
                call(eng)
            except BusyError:
                pass
            except Exception as exc:     # noqa: BLE001 (what the test reports)
                key = f"{type(exc).__name__}: {exc}"
                raised[key] = raised.get(key, 0) + 1
            # the GIL to this thread's batches between two calls: a call that releases it
            # while it holds the engine (process(), snapshot()) and then calls again at once
            # let the batches in only while the engine was held, each refused, and on a
            # loaded machine they never got through (19 million calls journaled, 2.4 GB)
            time.sleep(0)

    t = threading.Thread(target=other)
    t.start()
    try:
        oid, batches = 1, 0
        while batches < batches_wanted:
            cmds = np.zeros(2_000, dtype=mc.COMMAND_DTYPE)
            cmds["symbol"] = 1
            cmds["order_id"] = np.arange(oid, oid + len(cmds))
            cmds["side"] = np.arange(len(cmds)) % 2
            cmds["price"] = 100
            cmds["qty"] = 1
            try:
                eng.process(cmds)
            except BusyError:           # the other thread's call held it: the batch again
                continue
            oid += len(cmds)
            batches += 1
    finally:
        done.set()
        t.join()
    return raised, eng


def test_journaled_engine_process_while_another_batch_rolls_a_segment_raises_busy(tmp_path):
    # process() asked the journal whether it was closed before checking the engine: during
    # another thread's segment roll it raised JournalError("journal ... is closed") for an
    # open journal, and the caller took the engine for closed
    cancel = np.zeros(1, dtype=mc.COMMAND_DTYPE)
    cancel["symbol"] = 1
    cancel["kind"] = int(mc.CommandKind.CANCEL)
    cancel["order_id"] = 10**12             # rests nowhere: a REJECTED event, journaled
    raised, eng = _while_batches_roll_segments(tmp_path, lambda e: e.process(cancel))
    assert not raised, raised
    want = eng.state_hash()
    eng.close()
    assert mc.Engine.recover(tmp_path / "j", readonly=True).state_hash() == want


def _open_journal_reads_open(eng):
    if eng.journal.closed:
        raise AssertionError("journal.closed read True")
    eng.journal.check()


def test_journaled_engine_writer_reads_open_while_another_thread_rolls_a_segment(tmp_path):
    # eng.journal.closed and check() took a writer between two segments for a closed one:
    # closed read True, and check() raised JournalError("journal ... is closed"), while the
    # engine went on journaling
    raised, eng = _while_batches_roll_segments(tmp_path, _open_journal_reads_open)
    assert not raised, raised
    eng.close()
    assert eng.journal.closed


@pytest.mark.parametrize("where", ["journal_dir", "other_dir"])
def test_journaled_engine_snapshot_during_a_segment_roll_raises_busy_not_closed(tmp_path, where):
    # A batch's journal writes roll to a new segment every few records here: between closing
    # one segment and opening the next (fsyncs included) the writer holds no open segment.
    # A snapshot from another thread meanwhile read that as a closed journal, unguarded, and
    # raised JournalError ("in use by another engine" in the journal directory, "closed
    # under fsync='batch'" elsewhere) for an engine that was only busy.
    target = tmp_path / "j" if where == "journal_dir" else tmp_path / "snaps"
    written = []
    refusals, eng = _while_batches_roll_segments(
        tmp_path, lambda e: written.append(e.snapshot(target)), batches_wanted=4)
    assert not refusals, refusals
    want = eng.state_hash()
    eng.close()
    for path in written:
        load_snapshot(path)             # whole files, each of a state at its seq
    assert mc.Engine.recover(tmp_path / "j", readonly=True).state_hash() == want
