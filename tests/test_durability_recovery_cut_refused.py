"""A writing recovery's repairs in a directory this user may not change (restored as another
user's files) failed with the system call's bare error: "[Errno 13] Permission denied:
SEGMENT" from the open() of a torn tail's cut and from the unlink of a trailing segment with
nothing valid, "... SNAPSHOT -> SNAPSHOT.unused" from a set-aside. None said what recovery
was doing. The errors are now recovery's own, as a truncation failing once opened was."""
from __future__ import annotations

import os

import pytest

import matchcore as mc
from durability_checks import as_nobody
# loaded before the child gives up root: the interpreter's own files may not be readable to
# the user it becomes
import matchcore.durability.recovery  # noqa: F401

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to run the child as another user")



def _refusal(call):
    try:
        call().close()
    except OSError as exc:
        return type(exc).__name__, exc.errno, str(exc), exc.filename
    return None


@pytest.fixture
def shared_dir():
    # a directory user nobody may reach (pytest's tmp_path is root's alone)
    import shutil
    import tempfile
    from pathlib import Path

    top = tempfile.mkdtemp(dir="/tmp")
    os.chmod(top, 0o755)
    yield Path(top)
    shutil.rmtree(top)


def test_recovery_cut_of_a_segment_it_may_not_write_says_it_was_cutting(shared_dir):
    d = shared_dir / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    for i in range(1, 11):
        eng.submit(1, i, mc.Side.BUY, 100 - i, 5)
    eng.close()
    seg = sorted(d.glob("journal-*.mcj"))[-1]
    whole = os.path.getsize(seg)
    os.truncate(seg, whole - 10)                    # a torn last record
    for f in d.iterdir():
        os.chmod(f, 0o666 if f.name == "LOCK" else 0o644)
    os.chmod(d, 0o777)
    got = as_nobody(lambda: _refusal(lambda: mc.Engine.recover(str(d))))
    assert got is not None
    kind, code, message, filename = got
    assert kind == "PermissionError" and filename == str(seg)
    assert f"recovery could not cut the segment to {whole - 88} bytes" in message, message
    assert os.path.getsize(seg) == whole - 10           # nothing cut
    rec = mc.Engine.recover(d)                          # as root, the cut is made
    assert rec.recovery_report.last_seq == 10 and rec.recovery_report.cut_bytes == 78
    rec.close()


def _restored_as_root(d):
    # another user's directory: its files writable to all, the directory itself not
    for f in d.iterdir():
        os.chmod(f, 0o666)
    os.chmod(d, 0o755)


def test_recovery_drop_it_may_not_make_says_it_was_dropping(shared_dir):
    # a trailing segment with nothing valid (a crash as it was being made) is deleted: in a
    # directory this user may not change, os.unlink's bare "Permission denied: SEGMENT"
    from matchcore.durability.journal import KIND_COMMANDS, segment_files

    d = shared_dir / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    torn = d / f"journal-{3:020d}.mcj"
    torn.write_bytes(b"MCJOURNL")                      # a header cut short
    _restored_as_root(d)
    got = as_nobody(lambda: _refusal(lambda: mc.Engine.recover(str(d))))
    assert got is not None
    kind, code, message, filename = got
    assert kind == "PermissionError" and filename == str(torn)
    assert "recovery could not drop the trailing segment (nothing valid in it)" in message, \
        message
    assert torn.exists() and len(segment_files(d, KIND_COMMANDS)) == 2


def test_recovery_set_aside_it_may_not_make_says_it_was_setting_aside(shared_dir):
    # a snapshot ahead of the journal is renamed .unused: in a directory this user may not
    # change, os.rename's bare "Permission denied: SNAPSHOT -> SNAPSHOT.unused"
    d = shared_dir / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.BUY, 99, 5)
    ahead = eng.snapshot()
    eng.close()
    seg = sorted(d.glob("journal-*.mcj"))[-1]
    os.truncate(seg, os.path.getsize(seg) - 88)       # the snapshot's record lost, whole
    _restored_as_root(d)
    got = as_nobody(lambda: _refusal(lambda: mc.Engine.recover(str(d))))
    assert got is not None
    kind, code, message, filename = got
    assert kind == "PermissionError" and filename == ahead
    assert (f"recovery could not set the snapshot aside as {os.path.basename(ahead)}.unused "
            f"(not a state of this journal)") in message, message
    assert os.path.exists(ahead) and not os.path.exists(ahead + ".unused")
