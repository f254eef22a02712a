"""A writing recovery whose writers cannot start (a full disk, here a file size limit that the
first write into a new file exceeds) leaves no segment file it made: the new command segment it
starts for other options was left behind with a torn header, and the new trade segment beside
it, which the next inspect listed as damage. The error names the segment."""
from __future__ import annotations

import os
import resource
import shutil
import signal

import matchcore as mc


def _child(body) -> int:
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            code = body()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_durability_recovery_writer_start_failure_leaves_no_segment(tmp_path):
    d = str(tmp_path / "j")
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    for i in range(20):
        eng.submit(1, i + 1, i % 2, 100, 2)
    eng.sync()
    crashed = str(tmp_path / "crashed")
    shutil.copytree(d, crashed)             # as a kill -9 leaves it
    eng.close()
    before = sorted(os.listdir(crashed))

    def recover_with_no_room():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        # no new file can take its 64-byte header; the segments there are only read and fsynced
        resource.setrlimit(resource.RLIMIT_FSIZE, (32, resource.RLIM_INFINITY))
        try:
            # other options than the last segment records: a new segment of each journal
            mc.Engine.recover(crashed, segment_bytes=9000)
        except OSError as exc:
            return 0 if "journal-00000000000000000022.mcj" in str(exc) else 2
        return 1

    assert _child(recover_with_no_room) == 0
    assert sorted(os.listdir(crashed)) == before
    info = mc.durability.inspect(crashed)
    assert info["journals"]["commands"]["torn_tail"] is None
    rec = mc.Engine.recover(crashed, segment_bytes=9000)
    assert rec.recovery_report.last_seq == 21 and rec.recovery_report.dropped_files == []
    rec.close()
