"""Under fsync="batch" the README said the writer never waits for the disk, the syncer thread
doing every fdatasync. At a segment roll the calling thread syncs all the same: the segment it
closes (which keeps no descriptor the syncer could sync), then the new segment and its
directory entry. The README now says so; here the syncer is kept asleep (its timer and record
count out of reach), so every sync counted, and every advance of ``durable_seq``, is the
calling thread's."""
from __future__ import annotations

from pathlib import Path

import matchcore as mc
from matchcore.durability.journal import KIND_COMMANDS, KIND_TRADES, segment_files

README = Path(__file__).resolve().parents[1] / "README.md"


def test_batch_calling_thread_syncs_the_segment_it_closes_at_a_roll(tmp_path):
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="batch", segment_bytes=8256, batch_us=10**9,
                    batch_records=10**9)
    eng.add_symbol(1)
    jc, jt = eng.journal, eng.trade_journal
    assert jc.fsyncs == 0 and eng.durable_seq == 0
    for i in range(1, 401):                     # 200 fills: both journals roll
        eng.submit(1, i, mc.Side.BUY if i % 2 else mc.Side.SELL, 100, 5)
    newest = segment_files(d, KIND_COMMANDS)[-1][0]
    assert jc.segments_created >= 3 and jt.segments_created >= 3
    # one sync per segment closed, in the calls that rolled: everything before the newest
    # segment is durable, nothing after its start was synced by anyone
    assert jc.fsyncs == jc.segments_created - 1
    assert eng.durable_seq == newest - 1 < eng.journal_seq
    assert jt.fsyncs == jt.segments_created - 1
    assert len(segment_files(d, KIND_TRADES)) == jt.segments_created
    eng.close()


def test_batch_roll_syncs_documented():
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert ("the writer does not wait for the disk, except at a segment roll (every "
            "`segment_bytes` of records, 64 MiB by default, in either journal), where the "
            "calling thread fdatasyncs the segment it closes") in text
    assert "the writer never waits for the disk" not in text
