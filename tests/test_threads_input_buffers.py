"""The decoders that read a caller's buffer in two passes without the GIL (count, then fill
arrays sized by the count): another thread may write into that buffer meanwhile (a socket's
``recv_into``, a reused read buffer). The second pass then found more messages than the first
had sized for, and wrote them past the end of the arrays (the heap corrupted). Now such a call
raises BufferError and writes nothing out of bounds.

The other thread's write is made at a known point between the two passes (a lookup the call
makes there runs the write), so the overlap is certain; one test also runs a real writer
thread against many calls."""
import threading

import numpy as np
import pytest

import matchcore.itch as itch
from matchcore.itch import _decode


def _messages(data):
    out, pos = [], 0
    while pos + 2 <= len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        out.append(bytes(data[pos:pos + 2 + n]))
        pos += 2 + n
    return out


def _one_of(data, kind):
    return next(m for m in _messages(data) if m[2:3] == kind)


SAMPLE = itch.generate(None, messages=400, symbols=2, seed=1)
ADD = _one_of(SAMPLE, b"A")         # 36-byte Add Order and Order Executed With Price: a C
EXEC = _one_of(SAMPLE, b"C")        # written over by an A keeps the framing, one A more
assert len(ADD) == len(EXEC)


class _WriteOnLookup(dict):
    """The decoder's dtype table: its first lookup (between the two passes) runs ``write``."""

    def __init__(self, table, write):
        super().__init__(table)
        self.write = write

    def __getitem__(self, key):
        if self.write is not None:
            write, self.write = self.write, None
            write()
        return super().__getitem__(key)


def _decode_with_write_between_passes(monkeypatch, buf, write, **kw):
    monkeypatch.setattr(_decode, "_DTYPES", _WriteOnLookup(_decode._DTYPES, write))
    try:
        return itch.decode(buf, **kw)
    finally:
        monkeypatch.undo()


def test_decode_buffer_written_between_its_passes_raises():
    buf = bytearray(ADD * 50 + EXEC)

    def write():
        buf[-len(EXEC):] = ADD          # one Add Order more than the first pass counted
    with pytest.raises(BufferError, match="the buffer changed while it was being decoded"):
        _decode_with_write_between_passes(pytest.MonkeyPatch(), buf, write)
    # the buffer as it now stands decodes whole
    d = itch.decode(bytes(buf))
    assert len(d["A"]) == 51 and "C" not in d


def test_decode_buffer_written_between_its_passes_same_framing_other_type_raises():
    # the same count of messages, one of another type than counted: its array was never made
    buf = bytearray(ADD * 5 + EXEC)

    def write():
        buf[:len(ADD)] = EXEC
    with pytest.raises(BufferError):
        _decode_with_write_between_passes(pytest.MonkeyPatch(), buf, write)


def test_decode_unchanged_buffer_between_passes_decodes():
    buf = bytearray(SAMPLE)
    d = _decode_with_write_between_passes(pytest.MonkeyPatch(), buf, lambda: None)
    whole = itch.decode(SAMPLE)
    assert d.stats == whole.stats
    assert all(np.array_equal(d[t], whole[t]) for t in whole)


def test_decode_while_another_thread_rewrites_the_buffer_never_corrupts():
    # a real writer thread: numpy's copy releases the GIL, so it runs while the passes do
    few = np.frombuffer(EXEC * 2000 + ADD, np.uint8)
    many = np.frombuffer(ADD * 2001, np.uint8)
    buf = few.copy()
    stop = threading.Event()

    def rewrite():
        while not stop.is_set():
            np.copyto(buf, many)
            np.copyto(buf, few)
    t = threading.Thread(target=rewrite)
    t.start()
    outcomes = {"ok": 0, "changed": 0}
    try:
        for _ in range(300):
            try:
                d = itch.decode(buf)
            except BufferError:
                outcomes["changed"] += 1
                continue
            outcomes["ok"] += 1
            # a whole decode is of one framing: every message an A or a C, 2001 of them
            assert d.stats["messages"] == 2001
            assert sum(len(d[k]) for k in d) == 2001
    finally:
        stop.set()
        t.join()
    assert outcomes["ok"] + outcomes["changed"] == 300


# ---- MoldUDP64 framing (moldudp.frame_itch, frame_offsets): count, then fill ----
# (the other thread's write runs as the call makes its arrays, between the passes)

def _hook_np_empty(monkeypatch, module, write):
    # the first array the call makes (between its two passes) runs ``write`` first
    real = np.empty
    state = {"write": write}

    def empty(*a, **k):
        if state["write"] is not None:
            w, state["write"] = state["write"], None
            w()
        return real(*a, **k)
    monkeypatch.setattr(module, "np", type("np", (), {"empty": staticmethod(empty),
                                                       "int64": np.int64}))


@pytest.mark.parametrize("name", ["frame_itch", "frame_offsets"])
def test_moldudp_framing_buffer_written_between_its_passes_raises(monkeypatch, name):
    from matchcore import _moldudp, moldudp
    small = _one_of(SAMPLE, b"D")       # Order Delete: 21 bytes with its prefix
    buf = bytearray(ADD * 20)           # 20 messages of 38 bytes; then 36 of 21 and a tail

    def write():
        buf[:] = (small * 41)[:len(buf)]
    _hook_np_empty(monkeypatch, _moldudp, write)
    with pytest.raises(BufferError, match="the buffer changed while it was being framed"):
        getattr(moldudp, name)(buf)
    monkeypatch.undo()
    # unchanged, or framed afresh: as before
    assert len(moldudp.frame_itch(bytes(buf))[0]) == 36 + 1
    assert len(moldudp.frame_offsets(bytes(buf))[0]) == 36 + 1


@pytest.mark.parametrize("name", ["frame_itch", "frame_offsets"])
def test_moldudp_framing_unchanged_buffer_frames(monkeypatch, name):
    from matchcore import _moldudp, moldudp
    want = getattr(moldudp, name)(SAMPLE)
    _hook_np_empty(monkeypatch, _moldudp, lambda: None)
    got = getattr(moldudp, name)(bytearray(SAMPLE))
    monkeypatch.undo()
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert np.array_equal(a, b)


def test_moldudp_frame_offsets_fewer_blocks_ending_where_counted_raises(monkeypatch):
    # written between the passes so that fewer, longer blocks reach the same end: the second
    # pass stopped there and returned the count's array with an offset never written
    from matchcore import _moldudp, moldudp
    small = _one_of(SAMPLE, b"D")                   # 21 bytes with its prefix
    buf = bytearray(small * 3 + b"\x00\x10")        # 3 blocks, then a cut block
    long_block = (len(small) * 3 - 2).to_bytes(2, "big") + small[2:] * 3 + b"\0\0\0\0"
    assert len(long_block) == 3 * len(small)

    def write():
        buf[:len(long_block)] = long_block          # 1 block where 3 were, the same length
    _hook_np_empty(monkeypatch, _moldudp, write)
    with pytest.raises(BufferError):
        moldudp.frame_offsets(buf)


def _process_while_quantities_flip(process, cmds, batches):
    """process(cmds) `batches` times, fresh order ids each time, while a real writer thread
    flips every command's quantity between 5 and 7."""
    n = len(cmds)
    qty = cmds["qty"]
    stop = threading.Event()

    def flip():
        v = 5
        while not stop.is_set():
            v = 12 - v
            qty[:] = v

    t = threading.Thread(target=flip)
    t.start()
    try:
        for i in range(batches):
            cmds["order_id"] = np.arange(1, n + 1) + i * n
            process(cmds)
    finally:
        stop.set()
        t.join()


def _two_sided_commands(n, **fields):
    import matchcore as mc

    cmds = np.zeros(n, mc.COMMAND_DTYPE)
    for name, value in fields.items():
        cmds[name] = value
    cmds["side"] = np.arange(n) % 2
    cmds["price"] = 100 + np.arange(n) % 5
    cmds["qty"] = 5
    return cmds


def test_journaled_engine_commands_rewritten_meanwhile_journal_holds_what_was_applied(tmp_path):
    # A journaled Engine's process() read each command of the caller's array twice without the
    # GIL: once to apply it, once to write its record. Another thread writing into the array
    # between the two reads made the record another command than the one applied, and recovery
    # stopped there ("replay diverged"): the journal could not be recovered. Whatever each
    # command was when read, the journal must replay to the engine's state.
    import matchcore as mc

    # 4 batches of 200k: before the fix each single batch diverged (7 runs of 7, at seq 11,700
    # to 187,244); 40 batches wrote 1.1 GB of journal a run for no more proof
    n, batches = 200_000, 4
    eng = mc.Engine(journal=str(tmp_path), fsync="never")
    eng.add_symbol(1)
    _process_while_quantities_flip(eng.process, _two_sided_commands(n, symbol=1), batches)
    live = eng.state_hash()
    eng.close()
    back = mc.Engine.recover(str(tmp_path))
    assert back.recovery_report.replayed_commands == batches * n
    assert back.state_hash() == live
    back.close()


def test_recorder_commands_rewritten_meanwhile_journal_holds_what_was_applied(tmp_path):
    # Recorder.process() gave the caller's array to the book, which read it without the GIL,
    # then read it again to write the records: a thread writing into the array meanwhile (a
    # reused batch buffer being refilled) left records of other commands than those applied,
    # and the journal replayed to another book.
    import matchcore as mc
    from matchcore import native

    path = tmp_path / "flow.mccmd"
    rec = native.Recorder(mc.OrderBook(), path)
    _process_while_quantities_flip(rec.process, _two_sided_commands(50_000), 20)
    live = rec.book.snapshot()
    rec.close()
    again = mc.OrderBook()
    native.replay_commands(path, again)
    assert again.snapshot() == live
