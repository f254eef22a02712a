"""scan_journal of a directory that is not there: named as the other readers name it."""
from __future__ import annotations

import errno
import os

import pytest

import matchcore as mc
from matchcore.durability.journal import KIND_COMMANDS, KIND_TRADES


@pytest.mark.parametrize("kind", [KIND_COMMANDS, KIND_TRADES])
def test_scan_journal_of_a_missing_directory_names_it_as_list_snapshots_does(tmp_path, kind):
    # a bare "[Errno 2] No such file or directory" from os.listdir; the type is kept, the
    # words are list_snapshots' (and recovery's) for a missing journal directory
    missing = tmp_path / "typo"
    with pytest.raises(FileNotFoundError) as snap_err:
        mc.durability.list_snapshots(missing)
    with pytest.raises(FileNotFoundError) as err:
        mc.durability.scan_journal(missing, kind)
    assert str(err.value) == str(snap_err.value)
    assert f"no journal directory {missing}" in str(err.value)
    assert err.value.filename == str(missing) and err.value.errno == errno.ENOENT
    assert not os.path.lexists(missing)


@pytest.mark.parametrize("kind", [KIND_COMMANDS, KIND_TRADES])
def test_scan_journal_of_a_regular_file_names_it_as_not_a_directory(tmp_path, kind):
    # a bare "[Errno 20] Not a directory" from os.listdir, where a missing directory is
    # named in the library's words; the type is kept, the words are the other readers'
    # ("X is not a directory"), and the file is left as it was
    path = tmp_path / "journal"
    path.write_bytes(b"not a journal")
    link = tmp_path / "link"
    os.symlink(path, link)
    for where in (path, link):
        with pytest.raises(NotADirectoryError) as snap_err:
            mc.durability.list_snapshots(where)
        with pytest.raises(NotADirectoryError) as err:
            mc.durability.scan_journal(where, kind)
        assert str(err.value) == str(snap_err.value)
        assert f"{where} is not a directory" in str(err.value)
        assert err.value.filename == str(where) and err.value.errno == errno.ENOTDIR
    assert path.read_bytes() == b"not a journal" and sorted(os.listdir(tmp_path)) == [
        "journal", "link"]


@pytest.mark.parametrize("kind", [KIND_COMMANDS, KIND_TRADES])
def test_scan_journal_under_a_regular_file_is_a_missing_directory(tmp_path, kind):
    # a/b where a is a file: nothing is there, as inspect and recovery say it ("no journal
    # directory a/b"); the listings said "a/b is not a directory", as of a file standing there
    (tmp_path / "file").write_bytes(b"")
    under = tmp_path / "file" / "journal"
    with pytest.raises(mc.durability.JournalError, match=f"^no journal directory {under}$"):
        mc.durability.inspect(under)
    for listing in (lambda: mc.durability.list_snapshots(under),
                    lambda: mc.durability.scan_journal(under, kind)):
        with pytest.raises(FileNotFoundError) as err:
            listing()
        assert f"no journal directory {under}" in str(err.value)
        assert err.value.filename == str(under) and err.value.errno == errno.ENOENT


@pytest.mark.parametrize("into", [5, "buffer", bytearray(64), object()])
def test_scan_journal_into_that_is_no_read_buffer_raises_type_error_naming_it(tmp_path, into):
    # an AttributeError ("'int' object has no attribute 'source'") came out of the first
    # segment's read; the argument is refused before any file is read, as kind= and the
    # flags are
    d = str(tmp_path / "j")
    eng = mc.Engine(journal=d)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.close()
    with pytest.raises(TypeError, match=r"^into must be a ReadBuffer or None, got "):
        mc.durability.scan_journal(d, keep_data=False, into=into)
    with pytest.raises(TypeError, match=r"^into must be a ReadBuffer or None, got "):
        mc.durability.scan_journal(d, into=into)
    seg = mc.durability.scan_journal(d, keep_index=False).segments[0]
    with pytest.raises(TypeError, match=r"^into must be a ReadBuffer or None, got "):
        seg.load(into=into)


def test_scan_journal_into_a_read_buffer_still_loads_its_last_segment(tmp_path):
    from matchcore.durability.journal import ReadBuffer
    d = str(tmp_path / "j")
    eng = mc.Engine(journal=d)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.close()
    buf = ReadBuffer()
    scan = mc.durability.scan_journal(d, keep_index=False, into=buf)
    seg = scan.segments[-1].load(into=buf)
    assert seg.records == 2 and int(seg.index["seq"][-1]) == 2
