"""kill -9 of a process recording through ``matchcore.native.Recorder``.

A forked child records a seeded flow (per-call methods, or ``process()`` batches large enough
that one flush is a write of hundreds of kilobytes) with a small ``flush_every`` and writes the
journal's committed count to a pipe after every call. The parent SIGKILLs it at a random moment
and checks the file it left: the header count covers at least every acknowledged flush and never
more records than the file holds; the counted records are the flow's first records; any bytes
after them are the start of the next ones (whole records, or a torn one), which the plain readers
refuse and ``committed=True`` leaves out, reporting them; ``Recorder.resume`` continues the
journal to a file equal to an uninterrupted recording.
"""
from __future__ import annotations

import os
import struct
import time

import numpy as np
import pytest

from matchcore import EventKind, OrderBook
from matchcore.native import (FILE_DTYPE, HEADER_SIZE, NativeFormatError, Recorder, read_commands,
                              read_header, repair_journal, replay_commands)
from matchcore.workloads import standard_mix
from test_durability_kill import _at_rename, _fork, _kill_and_acks, _read_acks

KILLS = 1200 if os.environ.get("MATCHCORE_SOAK") == "1" else 120
REC = 48


def _flow():
    _, cmds = standard_mix(6000, seed=5)
    return cmds


def _record(rec, cmds, per_call, on_call=lambda: None, batch=2000):
    """Feed cmds to the Recorder, one call per command or in process() batches."""
    if not per_call:
        for i in range(0, len(cmds), batch):
            rec.process(cmds[i:i + batch])
            on_call()
        return
    for c in cmds.tolist():
        ts, oid, price, qty, owner, _sym, kind, side, tif, po = c
        try:
            if kind == 0:
                rec.submit(oid, side, price, qty, tif, owner=owner, post_only=bool(po), ts_ns=ts)
            elif kind == 1:
                rec.submit_market(oid, side, qty, owner=owner, ts_ns=ts)
            elif kind == 2:
                rec.cancel(oid, owner=owner, ts_ns=ts)
            else:
                rec.modify(oid, qty, price or None, owner=owner, ts_ns=ts)
        except Exception as exc:  # rejections are journaled too; anything else is a failure
            if type(exc).__name__ != "OrderRejected":
                raise
        on_call()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The journal of the whole flow, recorded without interruption, per call and batched."""
    cmds = _flow()
    out = {}
    for per_call in (True, False):
        p = tmp_path_factory.mktemp("ref") / "ref.mccmd"
        with Recorder(OrderBook(), p, flush_every=1 << 20) as rec:
            _record(rec, cmds, per_call)
        out[per_call] = p.read_bytes()
    # one record per command either way (a per-call record holds only the fields its call has)
    assert len(out[True]) == len(out[False]) == HEADER_SIZE + REC * len(cmds)
    return cmds, out


def test_native_recorder_kill9_committed_prefix_readable_and_resumable(tmp_path, reference):
    cmds, refs = reference
    rng = np.random.default_rng(2027)
    whole_tails = torn_tails = resumed = 0
    for k in range(KILLS):
        p = tmp_path / f"k{k}.mccmd"
        per_call = k % 4 != 3
        fsync = k % 5 == 0
        flush_every = int(rng.integers(1, 12)) if per_call else 1000
        ref = refs[per_call]
        ref_records = ref[HEADER_SIZE:]

        def child(w, p=p, per_call=per_call, fsync=fsync, flush_every=flush_every):
            rec = Recorder(OrderBook(), p, flush_every=flush_every, fsync=fsync)
            os.write(w, struct.pack("<Q", 0))
            _record(rec, cmds, per_call, lambda: os.write(w, struct.pack("<Q", rec.count)),
                    batch=20000 if k % 8 == 3 else 2000)

        pid, r = _fork(child)
        _read_acks(r, 1)
        time.sleep(rng.random() * (0.03 if per_call else 0.004))
        acks = _kill_and_acks(pid, r)
        acked = max(acks) if acks else 0

        hdr = read_header(p, committed=True)
        size = p.stat().st_size
        n, tail = hdr.count, hdr.uncommitted_bytes
        assert n >= acked, f"kill {k}: flushed {acked} records, header counts {n}"
        assert size == HEADER_SIZE + REC * n + tail            # the count never runs ahead
        data = p.read_bytes()
        assert data[HEADER_SIZE:HEADER_SIZE + REC * n] == ref_records[:REC * n]
        assert read_commands(p, committed=True).tobytes() == ref_records[:REC * n]
        # the tail is the start of the next records: written bytes, never anything else
        assert data[HEADER_SIZE + REC * n:] == ref_records[REC * n:REC * n + tail]
        if tail:
            whole_tails += tail % REC == 0
            torn_tails += tail % REC != 0
            assert hdr.uncommitted_records == tail // REC
            for reader in (read_header, read_commands, replay_commands):
                with pytest.raises(NativeFormatError, match="trailing bytes.*committed=True"):
                    reader(p)
        if n or tail:
            with pytest.raises(FileExistsError, match="Recorder.resume"):
                Recorder(OrderBook(), p)
            assert p.read_bytes() == data                       # refused, not truncated
        if k % 3 == 0:
            # the committed state back, then the rest of the flow: the uninterrupted journal
            rec = Recorder.resume(p)
            assert rec.resumed.count == n and rec.resumed.uncommitted_bytes == tail
            want = OrderBook()
            want.process(np.frombuffer(ref_records[:REC * n], dtype=FILE_DTYPE))
            assert rec.book.state_hash() == want.state_hash()
            _record(rec, cmds[n:], per_call)
            rec.close()
            assert p.read_bytes() == ref
            resumed += 1
        p.unlink()
    # the kills reached the window between a flush's records and its count
    assert whole_tails + torn_tails > 0
    print(f"\n{KILLS} kills: {whole_tails} whole-record tails, {torn_tails} torn tails, "
          f"{resumed} resumed")


def _fill_journal(p, n, **kw):
    cmds = _flow()[:n]
    with Recorder(OrderBook(), p, **kw) as rec:
        rec.process(cmds)
    return cmds


def test_native_committed_read_torn_tail_reported_and_repaired(tmp_path):
    # a torn record after the count, as a write cut short leaves it (the real bytes, half of them)
    p = tmp_path / "j.mccmd"
    cmds = _fill_journal(p, 10)
    full = p.read_bytes()
    with open(p, "r+b") as f:
        f.seek(16)
        f.write(struct.pack("<Q", 7))                          # the last flush: 3 records
    with open(p, "r+b") as f:
        f.truncate(len(full) - 20)
    hdr = read_header(p, committed=True)
    assert (hdr.count, hdr.uncommitted_bytes, hdr.uncommitted_records) == (7, 2 * REC + 28, 2)
    assert read_commands(p, committed=True).tobytes() == cmds[:7].tobytes()
    book = OrderBook()
    assert np.array_equal(replay_commands(p, committed=True), book.process(cmds[:7]))
    with pytest.raises(NativeFormatError, match=r"7 records .*124 bytes after the counted records: 2 whole "
                       r"records and 28 bytes of a torn one\): read its 7 committed.*repair_journal"):
        read_commands(p)
    assert repair_journal(p).uncommitted_bytes == 2 * REC + 28
    assert p.stat().st_size == HEADER_SIZE + 7 * REC
    assert read_commands(p).tobytes() == cmds[:7].tobytes()    # a plain file again
    assert repair_journal(p).uncommitted_bytes == 0             # nothing more to cut


def test_native_committed_read_not_a_journal_trailing_bytes_still_refused(tmp_path):
    from matchcore.native import write_commands

    p = tmp_path / "w.mccmd"
    write_commands(p, _flow()[:5])
    with open(p, "ab") as f:
        f.write(b"\0" * REC)
    before = p.read_bytes()
    for call in (lambda: read_header(p, committed=True), lambda: read_commands(p, committed=True),
                 lambda: replay_commands(p, committed=True), lambda: repair_journal(p),
                 lambda: Recorder.resume(p)):
        with pytest.raises(NativeFormatError, match="trailing bytes.*not one"):
            call()
    assert p.read_bytes() == before


def test_native_repair_journal_command_file_refused(tmp_path):
    # documented as refused, a valid file that is not a journal was taken and its header returned
    from matchcore.native import write_commands

    p = tmp_path / "w.mccmd"
    write_commands(p, _flow()[:5])
    before = p.read_bytes()
    with pytest.raises(NativeFormatError, match="not a Recorder journal.*can be repaired"):
        repair_journal(p)
    assert p.read_bytes() == before


def test_native_committed_read_truncated_journal_still_refused(tmp_path):
    # records missing under the count are never read, with or without committed=True
    p = tmp_path / "j.mccmd"
    _fill_journal(p, 10)
    os.truncate(p, p.stat().st_size - 1)
    before = p.read_bytes()
    for call in (lambda: read_commands(p, committed=True), lambda: repair_journal(p),
                 lambda: Recorder.resume(p)):
        with pytest.raises(NativeFormatError, match="truncated"):
            call()
    assert p.read_bytes() == before


def test_native_recorder_existing_journal_refused_unless_overwrite(tmp_path):
    p = tmp_path / "j.mccmd"
    _fill_journal(p, 10)
    before = p.read_bytes()
    with pytest.raises(FileExistsError, match=r"10 records.*Recorder\.resume.*overwrite=True"):
        Recorder(OrderBook(), p)
    assert p.read_bytes() == before
    with Recorder(OrderBook(), p, overwrite=True) as rec:
        rec.submit(1, 0, 100, 5)
    assert read_header(p).count == 1
    # a journal with nothing recorded, or another file, is replaced as before
    with Recorder(OrderBook(), tmp_path / "e.mccmd"):
        pass
    with Recorder(OrderBook(), tmp_path / "e.mccmd") as rec:
        rec.submit(1, 0, 100, 5)
    assert read_header(tmp_path / "e.mccmd").count == 1
    (tmp_path / "t.txt").write_text("x" * 100)
    Recorder(OrderBook(), tmp_path / "t.txt").close()
    assert read_header(tmp_path / "t.txt").count == 0


def test_native_recorder_resume_checks_symbol_and_stp(tmp_path):
    from matchcore import STP

    p = tmp_path / "j.mccmd"
    with Recorder(OrderBook(stp=STP.CANCEL_BOTH), p, symbol=9) as rec:
        rec.submit(1, 0, 100, 5)
        rec.submit(2, 1, 101, 5)
    before = p.read_bytes()
    with pytest.raises(ValueError, match="symbol=3.*symbol 9"):
        Recorder.resume(p, symbol=3)
    with pytest.raises(ValueError, match="STP mode"):
        Recorder.resume(p, OrderBook(stp=STP.CANCEL_RESTING))
    assert p.read_bytes() == before
    with Recorder.resume(p, flush_every=1) as rec:
        assert rec.symbol == 9 and rec.book.stp == STP.CANCEL_BOTH and len(rec.book) == 2
        rec.submit(3, 1, 100, 5)
    got = read_commands(p)
    assert got["order_id"].tolist() == [1, 2, 3] and set(got["symbol"].tolist()) == {9}


def test_native_replay_cli_committed_reports_left_out_bytes(tmp_path, capsys):
    from matchcore.__main__ import main

    p = tmp_path / "j.mccmd"
    cmds = _fill_journal(p, 10)
    with open(p, "r+b") as f:
        f.seek(16)
        f.write(struct.pack("<Q", 6))
    os.truncate(p, p.stat().st_size - 10)
    assert main(["replay", str(p), "--no-progress"]) != 0
    assert "--committed" in capsys.readouterr().err
    assert main(["replay", str(p), "--no-progress", "--committed", "--out",
                 str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "replayed 6 native commands" in out
    assert "left out after them: 182 bytes (3 whole records and 38 bytes of a torn one)" in out
    ev = np.load(tmp_path / "o" / "events.npy")
    assert np.array_equal(ev, OrderBook().process(cmds[:6]))
    assert main(["replay", str(p), "--no-progress", "--committed", "--format", "itch"]) != 0
    assert "--committed does not apply to ITCH" in capsys.readouterr().err



@pytest.mark.parametrize("flag", [None, "yes", 2.0])
def test_native_committed_not_a_bool_refused(tmp_path, flag):
    # a truth test took committed=None for False and "yes" for True
    p = tmp_path / "j.mccmd"
    _fill_journal(p, 3)
    with pytest.raises(TypeError, match="committed"):
        read_header(p, committed=flag)
    with pytest.raises(TypeError, match="committed"):
        read_commands(p, committed=flag)
    with pytest.raises(TypeError, match="committed"):
        replay_commands(p, committed=flag)


def test_native_recorder_journal_in_use_refused_to_second_writer(tmp_path):
    # a second Recorder on the path (even with overwrite=True) truncated the live journal and
    # both wrote into it; resume and repair_journal cut or appended under the live writer
    p = tmp_path / "j.mccmd"
    cmds = _flow()[:20]
    with Recorder(OrderBook(), p, flush_every=1 << 20) as rec:
        rec.process(cmds[:10])
        for call in (lambda: Recorder(OrderBook(), p), lambda: Recorder(OrderBook(), p, overwrite=True),
                     lambda: Recorder.resume(p), lambda: repair_journal(p)):
            with pytest.raises(BlockingIOError, match="being written by a Recorder"):
                call()
        rec.flush()
        for call in (lambda: Recorder(OrderBook(), p, overwrite=True), lambda: Recorder.resume(p)):
            with pytest.raises(BlockingIOError, match="being written by a Recorder"):
                call()
        rec.process(cmds[10:])
    assert read_commands(p).tobytes() == cmds.tobytes()
    with Recorder.resume(p) as rec:                             # released by close()
        assert rec.count == 20


def test_native_recorder_fifo_or_device_refused_precisely(tmp_path):
    # a FIFO without a reader hung the constructor (open for writing waits for one); a device
    # took the records into nowhere
    fifo = tmp_path / "f.mccmd"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/null"):
        with pytest.raises(ValueError, match="not a regular file"):
            Recorder(OrderBook(), path)


def test_native_write_commands_over_live_journal_refused(tmp_path):
    # renamed over a journal being recorded: the Recorder went on writing into the unlinked
    # file, and the session's records were gone
    from matchcore.native import write_commands

    p = tmp_path / "j.mccmd"
    cmds = _flow()[:20]
    with Recorder(OrderBook(), p, flush_every=5) as rec:
        rec.process(cmds[:10])
        with pytest.raises(BlockingIOError, match="being written by a Recorder"):
            write_commands(p, cmds[:3])
        rec.process(cmds[10:])
    assert read_commands(p).tobytes() == cmds.tobytes()
    assert write_commands(p, cmds[:3]) == 3                      # closed: replaced as before
    assert not list(tmp_path.glob("*.tmp*"))
    fifo = tmp_path / "f.mccmd"
    os.mkfifo(fifo)
    assert write_commands(fifo, cmds[:2]) == 2                   # a FIFO is replaced, no wait
    assert read_commands(fifo).tobytes() == cmds[:2].tobytes()


def _exit_status(pid):
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.parametrize("existing", ["journal", "command_file"])
def test_native_recorder_replacing_mapped_file_reader_keeps_its_records(tmp_path, existing):
    # A Recorder made on an existing file (overwrite=True over a journal, or any other file)
    # truncated it in place: a reader holding it memory-mapped (read_commands) died of SIGBUS
    # on its next access. The new journal is now a new file renamed over the path.
    from matchcore.native import write_commands

    p = tmp_path / "j.mccmd"
    cmds = _flow()[:5000]
    if existing == "journal":
        _fill_journal(p, 5000)
    else:
        write_commands(p, cmds)
    os.chmod(p, 0o640)

    def child(w):
        arr = read_commands(p)
        rec = Recorder(OrderBook(), p, overwrite=True)
        rec.submit(1, 0, 100, 5)
        rec.close()
        os.write(w, b"R")
        os.write(w, b"S" if arr.tobytes() == cmds.tobytes() else b"X")

    pid, r = _fork(child)
    got = _read_acks(r, 1)[:2]
    os.close(r)
    status = _exit_status(pid)
    assert not os.WIFSIGNALED(status), f"reader killed by signal {os.WTERMSIG(status)}"
    assert os.waitstatus_to_exitcode(status) == 0 and got == b"RS"
    assert read_commands(p)["order_id"].tolist() == [1]
    assert (p.stat().st_mode & 0o777) == 0o640                     # its permission bits kept
    assert not list(tmp_path.glob("*.tmp"))


def test_native_recorder_on_symlink_replaces_target_and_keeps_link(tmp_path):
    target = tmp_path / "real.mccmd"
    _fill_journal(target, 10)
    link = tmp_path / "link.mccmd"
    link.symlink_to(target)
    with Recorder(OrderBook(), link, overwrite=True) as rec:
        rec.submit(1, 0, 100, 5)
        with pytest.raises(BlockingIOError, match="being written by a Recorder"):
            Recorder(OrderBook(), target, overwrite=True)
    assert link.is_symlink()
    assert read_commands(target)["order_id"].tolist() == [1]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to record as another user")
def test_native_recorder_file_in_unwritable_directory_still_recorded(tmp_path):
    # the rename needs the directory; a writable file in a directory this user may not write
    # is emptied in place as before
    import tempfile

    d = tempfile.mkdtemp(dir="/tmp")
    try:
        os.chmod(d, 0o755)
        p = os.path.join(d, "j.mccmd")
        _fill_journal(p, 10)
        os.chmod(p, 0o666)

        def child(w):
            os.setgid(65534)
            os.setuid(65534)
            with Recorder(OrderBook(), p, overwrite=True) as rec:
                rec.submit(7, 0, 100, 5)
            os.write(w, b"K")

        pid, r = _fork(child)
        assert _read_acks(r, 1)[:1] == b"K"
        os.close(r)
        assert os.waitstatus_to_exitcode(_exit_status(pid)) == 0
        assert read_commands(p)["order_id"].tolist() == [7]
        assert os.listdir(d) == ["j.mccmd"]
    finally:
        import shutil
        shutil.rmtree(d)


def test_native_recorder_closed_with_forked_child_alive_lock_released(tmp_path):
    # a child forked while the Recorder was open (a multiprocessing worker) inherited its
    # descriptor and with it the lock: after the owner's close(), resume and repair_journal
    # were refused with "being written by a Recorder" for as long as the child lived
    p = tmp_path / "j.mccmd"
    cmds = _flow()[:20]
    rec = Recorder(OrderBook(), p, flush_every=1 << 20)
    rec.process(cmds[:10])
    go_r, go_w = os.pipe()

    def child(w):
        os.write(w, b"F")
        os.read(go_r, 1)                    # alive until the parent has checked
        with pytest.raises(ValueError, match="belongs to process"):
            rec.flush()
        rec.close()

    pid, r = _fork(child)
    assert os.read(r, 1) == b"F"
    rec.close()
    try:
        assert repair_journal(p).count == 10
        with Recorder.resume(p) as rec2:
            rec2.process(cmds[10:])
    finally:
        os.write(go_w, b"G")
        os.close(go_w)
        os.close(go_r)
        os.close(r)
        assert os.waitstatus_to_exitcode(_exit_status(pid)) == 0
    assert read_commands(p).tobytes() == cmds.tobytes()


def test_native_resume_journal_begun_nonempty_without_book_refused(tmp_path, capsys):
    # Recorder.resume(path) / replay_commands(path) of a journal begun with require_empty=False
    # on a book holding orders replayed it from an empty book: another state than the live one,
    # without a word; and a journal begun empty was resumed into a book holding orders
    from matchcore import STP
    from matchcore.__main__ import main

    p = tmp_path / "j.mccmd"
    live = OrderBook(stp=STP.CANCEL_BOTH)
    live.submit(1, 0, 100, 5)
    start = OrderBook(stp=STP.CANCEL_BOTH)
    start.submit(1, 0, 100, 5)
    with Recorder(live, p, require_empty=False) as rec:
        rec.submit(2, 1, 100, 3)
    assert read_header(p).started_nonempty and p.read_bytes()[5] == 1
    before = p.read_bytes()
    for call in (lambda: Recorder.resume(p), lambda: replay_commands(p),
                 lambda: Recorder.resume(p, OrderBook(stp=STP.CANCEL_BOTH))):
        with pytest.raises(ValueError, match="begun on a book holding orders"):
            call()
    assert p.read_bytes() == before
    with Recorder.resume(p, start) as rec:
        assert rec.book.state_hash() == live.state_hash()
        rec.cancel(1)
    live.cancel(1)
    assert start.state_hash() == live.state_hash()
    assert read_header(p).started_nonempty                     # kept by the resumed writer
    assert main(["replay", str(p), "--no-progress"]) == 0
    assert "begun on a book holding orders" in capsys.readouterr().err

    q = tmp_path / "e.mccmd"
    _fill_journal(q, 10)
    assert not read_header(q).started_nonempty and q.read_bytes()[5] == 0
    full = OrderBook()
    full.submit(10**9, 0, 1, 1)
    with pytest.raises(ValueError, match="begun on an empty book"):
        Recorder.resume(q, full)
    assert len(full) == 1
    # require_empty=False on an empty book: an ordinary journal
    r = tmp_path / "r.mccmd"
    with Recorder(OrderBook(), r, require_empty=False) as rec:
        rec.submit(1, 0, 100, 5)
    assert not read_header(r).started_nonempty
    Recorder.resume(r).close()


@pytest.mark.parametrize("other", ["write_commands", "recorder"])
def test_native_path_replaced_racing_live_recorder_never(tmp_path, other):
    # write_commands checked the target's lock, let it go, then renamed: a Recorder opened in
    # between was replaced under it and recorded into an unlinked file (about one in ten here);
    # and a lock taken on a file another Recorder had just renamed its journal over was stale.
    # Another process replaces the path as fast as it can while this one opens Recorders on it:
    # while a Recorder is open, the path always names its file.
    from matchcore import COMMAND_DTYPE
    from matchcore.native import write_commands

    p = tmp_path / "race.mccmd"
    cmds = np.zeros(3, COMMAND_DTYPE)
    write_commands(p, cmds)
    seconds = 3.0

    def child(w):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                if other == "write_commands":
                    write_commands(p, cmds)
                else:
                    Recorder(OrderBook(), p, overwrite=True).close()
            except BlockingIOError:
                pass

    pid, r = _fork(child)
    end = time.monotonic() + seconds
    opened = replaced = 0
    while time.monotonic() < end:
        try:
            rec = Recorder(OrderBook(), p, overwrite=True)
        except BlockingIOError:
            continue
        opened += 1
        rec.submit(1, 0, 100, 1)
        for _ in range(3):
            if os.stat(p).st_ino != os.fstat(rec._f.fileno()).st_ino:
                replaced += 1
                break
        rec.close()
    os.close(r)
    assert os.waitstatus_to_exitcode(_exit_status(pid)) == 0
    assert opened > 100
    assert replaced == 0, f"{replaced} of {opened} live journals replaced under their Recorder"
    assert not list(tmp_path.glob("*.tmp*"))


def test_native_read_commands_file_renamed_over_meanwhile_one_file_only(tmp_path):
    # read_commands read the header through the path, then mapped the path again: a file
    # write_commands renamed over it in between gave one file's count over the other's records
    # (one read in fifteen here), or a bare ValueError from mmap when the new one was shorter
    from matchcore import COMMAND_DTYPE
    from matchcore.native import write_commands

    p = tmp_path / "r.mccmd"

    def generation(g):
        a = np.zeros(100 + (g % 7) * 50, COMMAND_DTYPE)
        a["order_id"] = g
        a["price"] = len(a)
        return a

    write_commands(p, generation(0))
    seconds = 2.0

    def child(w):
        end, g = time.monotonic() + seconds, 1
        while time.monotonic() < end:
            write_commands(p, generation(g))
            g += 1

    pid, r = _fork(child)
    end = time.monotonic() + seconds
    reads = mixed = 0
    while time.monotonic() < end:
        for a in (read_commands(p), read_commands(p, committed=True)):
            reads += 1
            ids = np.unique(a["order_id"])
            mixed += len(ids) != 1 or int(a["price"][0]) != len(a)
    os.close(r)
    assert os.waitstatus_to_exitcode(_exit_status(pid)) == 0
    assert reads > 100 and mixed == 0, f"{mixed} of {reads} reads mixed two files"


def test_native_start_bit_in_file_not_journal_ignored(tmp_path):
    # header byte 5 was reserved (ignored when read): in a file that is not a journal it still
    # is, and such a file replays into a fresh book as before
    from matchcore.native import write_commands

    p = tmp_path / "w.mccmd"
    cmds = _flow()[:20]
    write_commands(p, cmds)
    with open(p, "r+b") as f:
        f.seek(5)
        f.write(b"\x01")
    assert not read_header(p).started_nonempty
    assert np.array_equal(replay_commands(p), OrderBook().process(cmds))


def test_native_resume_path_replaced_by_command_file_meanwhile_refused(tmp_path):
    # resume checked the journal flag through the path before opening and locking it: a file
    # that is not a journal renamed over the path in between was resumed (its records replayed,
    # new ones appended to it as if to a journal)
    from matchcore import COMMAND_DTYPE
    from matchcore.native import write_commands

    p = tmp_path / "r.mccmd"
    j = tmp_path / "j.mccmd"
    _fill_journal(j, 1)
    journal = j.read_bytes()
    plain = np.zeros(1, COMMAND_DTYPE)
    write_commands(p, plain)
    seconds = 2.0

    def child(w):
        end, g = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            try:
                if g % 2:
                    write_commands(p, plain)
                else:
                    t = tmp_path / "t.part"
                    t.write_bytes(journal)
                    os.replace(t, p)
            except BlockingIOError:
                pass
            g += 1

    pid, r = _fork(child)
    end = time.monotonic() + seconds
    resumed = not_journal = 0
    while time.monotonic() < end:
        try:
            rec = Recorder.resume(p)
        except (NativeFormatError, BlockingIOError):
            continue
        resumed += 1
        not_journal += not rec.resumed.is_journal
        rec.close()
    os.close(r)
    assert os.waitstatus_to_exitcode(_exit_status(pid)) == 0
    assert resumed > 50
    assert not_journal == 0, f"{not_journal} of {resumed} resumed files were not journals"


def _temp_files(p):
    return sorted(e for e in os.listdir(p.parent) if e.startswith(p.name + ".tmp"))


def _size(path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:        # renamed into place meanwhile
        return -1


def _caught_mid_write(p, cmds, sig):
    """A forked child writing ``cmds`` to ``p`` with write_commands, sent ``sig`` while its
    temporary file is being written (retried if it finished first); (pid, its temp files)."""
    import signal as _signal
    from matchcore.native import write_commands

    for _ in range(20):
        pid, r = _fork(lambda w: write_commands(p, cmds))
        os.close(r)
        tmps = []
        while not tmps:
            tmps = [e for e in _temp_files(p) if _size(p.parent / e) > HEADER_SIZE]
            if not tmps and os.waitpid(pid, os.WNOHANG)[0]:
                break                           # it finished before it was seen: again
        else:
            os.kill(pid, sig)
            if sig == _signal.SIGKILL:
                os.waitpid(pid, 0)
            if set(tmps) <= set(_temp_files(p)):     # caught before its rename
                return pid, tmps
            if sig != _signal.SIGKILL:
                os.kill(pid, _signal.SIGCONT)
                os.waitpid(pid, 0)
        p.unlink(missing_ok=True)
    pytest.fail("write_commands finished before it could be caught 20 times")


def test_native_write_commands_killed_mid_write_temp_removed_by_next_write(tmp_path):
    # A write_commands killed before its rename left <name>.tmp<pid> beside the target for
    # good: no later write removed it.
    import signal as _signal
    from matchcore.native import write_commands

    p = tmp_path / "f.mccmd"
    big = np.zeros(1_500_000, dtype=FILE_DTYPE)                   # 72 MB: a while to write
    _, left = _caught_mid_write(p, big, _signal.SIGKILL)
    assert left and not p.exists()
    cmds = _flow()[:10]
    assert write_commands(p, cmds) == 10
    assert _temp_files(p) == []
    assert read_commands(p).tobytes() == cmds.tobytes()


def test_native_write_commands_live_writer_temp_kept_by_another_write(tmp_path):
    # the temporary file of a writer that is alive (here stopped mid-write) is never removed
    import signal as _signal
    from matchcore.native import write_commands

    p = tmp_path / "f.mccmd"
    big = np.zeros(1_500_000, dtype=FILE_DTYPE)
    pid, held = _caught_mid_write(p, big, _signal.SIGSTOP)
    try:
        cmds = _flow()[:10]
        assert write_commands(p, cmds) == 10
        assert set(held) <= set(_temp_files(p))
        assert read_commands(p).tobytes() == cmds.tobytes()
    finally:
        os.kill(pid, _signal.SIGCONT)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _temp_files(p) == []
    assert len(read_commands(p)) == len(big)          # its rename came after the other write


def _recorder_temps(p):
    return sorted(e for e in os.listdir(p.parent) if e.startswith(p.name + ".") and e != p.name)


def test_native_recorder_killed_before_rename_temp_removed_by_next_recorder(tmp_path):
    # A Recorder replacing an existing file writes a new one beside it and renames it over.
    # Killed between the two, it used to leave its <name>.XXXXXXXX.tmp there for good; the
    # next Recorder of that path now removes it.
    import signal as _signal

    p = tmp_path / "s.mccmd"
    p.write_bytes(b"not a journal")
    _at_rename(lambda: Recorder(OrderBook(), p).close(), _signal.SIGKILL)
    left = _recorder_temps(p)
    assert len(left) == 1 and p.read_bytes() == b"not a journal"    # killed before the rename
    cmds = _flow()[:10]
    with Recorder(OrderBook(), p) as rec:
        rec.process(cmds)
    assert _recorder_temps(p) == []
    assert read_commands(p).tobytes() == cmds.tobytes()


def test_native_recorder_live_replacer_temp_kept_by_others(tmp_path):
    # the new file of a Recorder that is alive (stopped before its rename) is never removed,
    # by another Recorder or by write_commands
    import signal as _signal
    from matchcore.native import remove_stale_temp_files, write_commands

    p = tmp_path / "s.mccmd"
    p.write_bytes(b"not a journal")
    cmds = _flow()[:10]

    def body():
        with Recorder(OrderBook(), p) as rec:
            rec.process(cmds)

    pid = _at_rename(body, _signal.SIGSTOP)
    try:
        held = _recorder_temps(p)
        assert len(held) == 1
        assert remove_stale_temp_files(p) == []
        with pytest.raises(BlockingIOError):        # the stopped Recorder holds the file
            Recorder(OrderBook(), p)
        with pytest.raises(BlockingIOError):
            write_commands(p, cmds)
        assert _recorder_temps(p) == held
    finally:
        os.kill(pid, _signal.SIGCONT)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _recorder_temps(p) == []
    assert read_commands(p).tobytes() == cmds.tobytes()


def test_native_remove_stale_temp_files_other_files_kept(tmp_path):
    # only a dead writer's temporary file of this path goes: not a user's file that looks
    # like one (other content), not another path's, not one whose writer lives (this process)
    from matchcore.native import remove_stale_temp_files, write_commands

    p = tmp_path / "s.mccmd"
    dead = 2**22 + 12345                   # above pid_max's default: no such process
    with pytest.raises(ProcessLookupError):
        os.kill(dead, 0)
    keep = {f"s.mccmd.tmp{dead}.00ff": b"my notes",                 # not a command file
            f"t.mccmd.tmp{dead}.00ff": b"",                          # another path's
            f"s.mccmd.tmp{os.getpid()}.00ff": b"",                   # a live writer's
            "s.mccmd.abcdefgh.tmp": b"",        # an earlier Recorder's, maybe before its lock
            "s.mccmd.abcdefg1.tmp": b"MCCMD"}   # not a bare journal header
    for name, data in keep.items():
        (tmp_path / name).write_bytes(data)
    write_commands(tmp_path / "x.mccmd", _flow()[:3])
    header = (tmp_path / "x.mccmd").read_bytes()[:HEADER_SIZE]
    with Recorder(OrderBook(), tmp_path / "j.mccmd"):
        pass
    bare = (tmp_path / "j.mccmd").read_bytes()
    gone = {f"s.mccmd.tmp{dead}": header, f"s.mccmd.tmp{dead}.0a1b": b"",
            "s.mccmd.zz_9abcd.tmp": bare}      # an earlier Recorder's, killed before rename
    for name, data in gone.items():
        (tmp_path / name).write_bytes(data)
    assert sorted(remove_stale_temp_files(p)) == sorted(gone)
    assert sorted(os.listdir(tmp_path)) == sorted(set(keep) | {"x.mccmd", "j.mccmd"})


def test_native_recorder_fsync_replacing_file_new_one_synced_before_rename(tmp_path):
    # Recorder(fsync=True) over an existing file renamed its new file over the old one before
    # syncing it: a power loss in between could leave an empty file under the name, the old
    # one gone. Seen with strace: the new file's fsync comes before the rename.
    import re
    import shutil
    import subprocess
    import sys

    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    p = os.path.realpath(tmp_path) + "/s.mccmd"
    with open(p, "wb") as fh:
        fh.write(b"an older file")
    trace = tmp_path / "trace.txt"
    code = (f"import matchcore as mc\nfrom matchcore.native import Recorder\n"
            f"Recorder(mc.OrderBook(), {p!r}, fsync=True).close()\n")
    r = subprocess.run([strace, "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync,rename,renameat,"
                        "renameat2", "-o", str(trace), sys.executable, "-c", code],
                       capture_output=True, text=True)
    if r.returncode != 0 and "ptrace" in r.stderr.lower():
        pytest.skip(f"strace cannot trace here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    lines = trace.read_text().splitlines()
    tmp_re = re.escape(p) + r"\.tmp\d+\.[0-9a-f]{8}"
    renamed = [i for i, ln in enumerate(lines) if re.search(r"rename\w*\(.*" + tmp_re, ln)]
    synced = [i for i, ln in enumerate(lines)
              if re.search(r"f(?:data)?sync\(\d+<" + tmp_re + ">", ln)]
    assert len(renamed) == 1, lines
    assert synced and synced[0] < renamed[0], lines
    assert read_header(p).is_journal


def test_native_one_record_left_out_or_committed_said_singular(tmp_path, capsys):
    # "1 whole records", "its 1 committed records": plural for one, in the reader's error and
    # in `replay --committed`
    from matchcore.__main__ import main

    p = tmp_path / "j.mccmd"
    _fill_journal(p, 3)
    with open(p, "r+b") as f:
        f.seek(16)
        f.write(struct.pack("<Q", 1))                    # one record counted, two after it
    os.truncate(p, p.stat().st_size - 10)                # the last of them torn
    with pytest.raises(NativeFormatError) as e:
        read_commands(p)
    msg = str(e.value)
    assert "header says 1 record (" in msg and "(2 whole records)" in msg
    assert "86 bytes after the counted records: 1 whole record and 38 bytes" in msg
    assert "read its 1 committed record with committed=True" in msg
    assert main(["replay", str(p), "--no-progress", "--committed"]) == 0
    out = capsys.readouterr().out
    assert "left out after them: 86 bytes (1 whole record and 38 bytes of a torn one)" in out


def test_native_recorder_rejected_call_flushed_at_flush_every_survives_kill9(tmp_path):
    # A rejected submit, market order or modify is journaled (replay gives its REJECTED event)
    # but did not count towards flush_every: with flush_every=1 its record stayed in the buffer
    # after the call returned, and a kill -9 then lost it (and every rejection after it, until
    # an accepted call flushed them all)
    import signal

    from matchcore import OrderRejected, Side

    p = tmp_path / "rej.mccmd"
    calls = [lambda book: book.submit(1, Side.SELL, 100, 5),
             lambda book: book.modify(99, 3, 100),                   # unknown id: returns False
             lambda book: book.submit(2, Side.BUY, 100, 0),          # qty 0: rejected
             lambda book: book.submit_market(3, Side.BUY, 0),        # qty 0: rejected
             lambda book: book.modify(1, 0)]                         # qty 0: rejected

    def run(book, after=lambda: None):
        events = []
        for call in calls:
            try:
                call(book)
            except OrderRejected:
                pass
            events.append(book.events())
            after()
        return np.concatenate(events)

    def child(w):
        rec = Recorder(OrderBook(), p, flush_every=1)
        run(rec, lambda: os.write(w, struct.pack("<Q", rec.count)))
        os.kill(os.getpid(), signal.SIGKILL)

    pid, r = _fork(child)
    acks = _kill_and_acks(pid, r, _read_acks(r, len(calls)))    # once it has made every call
    assert acks == tuple(range(1, len(calls) + 1))
    hdr = read_header(p, committed=True)
    assert (hdr.count, hdr.uncommitted_bytes) == (len(calls), 0)
    # the file replays to the live session's events, every rejection included
    want = run(OrderBook())
    assert (want["kind"] == EventKind.REJECTED).sum() == 4
    assert np.array_equal(replay_commands(p), want)
