"""The readers of the project's own files (``OrderBook.from_snapshot`` / ``restore``,
``durability.load_snapshot``, the native command file readers) given another of its files:
an engine's ``snapshot-<seq>.mcs`` handed to ``OrderBook.from_snapshot``, a book snapshot to
``load_snapshot``, an engine journal segment (a "command journal" too) to ``read_commands``.
Each refused it as bad magic alone, where the replay readers name such a file and the way to
read it; the refusal now says what the file is and which reader takes it, and still changes
nothing."""
from __future__ import annotations

import numpy as np
import pytest

import matchcore as mc
from matchcore.durability import load_snapshot
from matchcore.native import (NativeFormatError, Recorder, read_commands, read_header,
                              replay_commands, write_commands)


@pytest.fixture()
def files(tmp_path):
    d = tmp_path / "state"
    eng = mc.Engine(journal=d)
    eng.add_symbol(1, "AAPL")
    eng.submit(1, 10, mc.Side.BUY, 100, 5)
    eng.snapshot()
    eng.close()
    book = mc.OrderBook()
    book.submit(1, mc.Side.SELL, 101, 5)
    (tmp_path / "book.snap").write_bytes(book.snapshot())
    cmds = np.zeros(1, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"], cmds["price"], cmds["qty"] = 1, 100, 5
    write_commands(tmp_path / "flow.mccmd", cmds)
    return {"engine_snapshot": next(d.glob("snapshot-*.mcs")),
            "journal": next(d.glob("journal-*.mcj")),
            "book_snapshot": tmp_path / "book.snap",
            "native": tmp_path / "flow.mccmd"}


@pytest.mark.parametrize("kind, said", [
    ("engine_snapshot", r"a matchcore engine snapshot; load it with mc\.durability\.load_snapshot"),
    ("journal", r"a matchcore journal segment .*matchcore journal inspect DIR"),
    ("native", r"a matchcore command file .*matchcore\.native\.read_commands"),
])
def test_book_snapshot_readers_name_another_state_file_book_unchanged(files, kind, said):
    data = files[kind].read_bytes()
    with pytest.raises(mc.SnapshotError, match=r"not a matchcore book snapshot \(bad magic\): "
                                               r"it is " + said):
        mc.OrderBook.from_snapshot(data)
    book = mc.OrderBook()
    book.submit(7, mc.Side.BUY, 99, 3)
    before = book.snapshot()
    with pytest.raises(mc.SnapshotError, match="it is " + said):
        book.restore(data)
    assert book.snapshot() == before


@pytest.mark.parametrize("kind, said", [
    ("book_snapshot", r"a matchcore book snapshot \(OrderBook\.snapshot\(\) bytes\); load it "
                      r"with mc\.OrderBook\.from_snapshot"),
    ("journal", r"a matchcore journal segment"),
    ("native", r"a matchcore command file"),
])
def test_load_snapshot_names_another_state_file(files, kind, said):
    with pytest.raises(mc.durability.SnapshotFileError,
                       match=r"not an engine snapshot \(bad magic\): it is " + said):
        load_snapshot(files[kind])


@pytest.mark.parametrize("kind, said", [
    ("journal", r"a matchcore journal segment \(an engine's command or trade journal\); read "
                r"its directory with matchcore journal inspect DIR"),
    ("engine_snapshot", r"a matchcore engine snapshot; load it"),
    ("book_snapshot", r"a matchcore book snapshot"),
])
def test_native_readers_name_another_state_file_file_unchanged(files, kind, said, tmp_path):
    path = files[kind]
    raw = path.read_bytes()
    for read in (read_commands, read_header, replay_commands, Recorder.resume):
        with pytest.raises(NativeFormatError, match=r"not a matchcore command file \(magic "
                                                    r".*\): it is " + said):
            read(path)
    assert path.read_bytes() == raw


def test_state_readers_say_nothing_more_for_foreign_bytes(tmp_path):
    # bytes of no file of the project keep the plain refusal
    with pytest.raises(mc.SnapshotError, match=r"^not a matchcore book snapshot \(bad magic\)$"):
        mc.OrderBook.from_snapshot(b"PK\x03\x04" + bytes(60))
    p = tmp_path / "x.mcs"
    p.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(mc.durability.SnapshotFileError, match=r"\(bad magic\)$"):
        load_snapshot(p)
    with pytest.raises(NativeFormatError, match=r"expected b'MCCMD'\)$"):
        read_commands(p)


@pytest.mark.parametrize("kind, said", [
    ("engine_snapshot", r"a matchcore engine snapshot; load it with mc\.durability\.load_snapshot"),
    ("native", r"a matchcore command file"),
    ("book_snapshot", r"a matchcore book snapshot"),
])
def test_read_journal_bytes_names_another_state_file(files, kind, said):
    with pytest.raises(mc.durability.JournalError,
                       match=r"not a journal segment \(bad magic\): it is " + said):
        mc.durability.read_journal(files[kind].read_bytes())
