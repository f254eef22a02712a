"""``matchcore replay -``: the format detection of stdin, which keeps the bytes it reads."""
from __future__ import annotations

import gzip
import os

import pytest

from matchcore._magic import Stdin, detect_format


def test_stdin_damaged_gzip_detection_stops_at_the_damage_not_the_end(tmp_path):
    # The detection of a gzip'd stdin read on, doubling its look, until the stream inflated to
    # a few KiB or ended. A stream damaged near its start never inflates further, so it read
    # (and kept in memory) the whole of stdin, and from a pipe waited for the writer to end,
    # before the ITCH reader reported the damage.
    damaged = gzip.compress(b"x" * 100)[:10] + b"\xff" * 20 + os.urandom(8 << 20)
    path = tmp_path / "damaged.gz"
    path.write_bytes(damaged)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert detect_format(Stdin(fd)) == "itch"     # the ITCH reader reports the damage
        read = os.lseek(fd, 0, os.SEEK_CUR)
    finally:
        os.close(fd)
    assert read < 1 << 20, f"read {read:,} of {len(damaged):,} bytes to detect the format"


def test_stdin_gzip_detection_still_reads_on_where_the_stream_is_only_cut_by_its_look(tmp_path):
    # what the detection must keep doing: a gzip header longer than the first look (a file
    # name of 200,000 bytes) inflates to nothing in it, and is read on until the data tell
    import io

    pytest.importorskip("databento_dbn")
    from matchcore.feeds.dbn_gen import generate_mbo

    data = generate_mbo(None, records=50, seed=1)
    blob = io.BytesIO()
    with gzip.GzipFile("n" * 200_000, "wb", fileobj=blob, mtime=0) as g:
        g.write(data)
    path = tmp_path / "named.gz"
    path.write_bytes(blob.getvalue())
    fd = os.open(path, os.O_RDONLY)
    try:
        stdin = Stdin(fd)
        assert detect_format(stdin) == "dbn"
        with stdin.open() as f:
            assert f.read() == blob.getvalue()       # nothing the detection read is lost
    finally:
        os.close(fd)
