"""The path a Dask task is sent names the file the caller's path names: made absolute without
folding ``..`` lexically, which past a symlinked directory named another file."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("distributed")

import matchcore.itch as itch  # noqa: E402
from matchcore.cluster.dask import connect, replay_files, replay_serial  # noqa: E402


def test_dask_replay_dotdot_past_a_symlinked_directory_reads_the_file_the_kernel_names(
        tmp_path, monkeypatch):
    # link/../day.itch is real/day.itch (the kernel resolves link first); folded to
    # ./day.itch, the workers replayed the caller's other day.itch, and said nothing
    (tmp_path / "real" / "sub").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    itch.generate(tmp_path / "real" / "day.itch", messages=3000, symbols=2, seed=1)
    itch.generate(work / "day.itch", messages=2000, symbols=2, seed=2)
    os.symlink(tmp_path / "real" / "sub", work / "link")
    monkeypatch.chdir(work)
    given = os.path.join("link", "..", "day.itch")
    serial = replay_serial([given])
    assert serial.files[0].stats["messages"] == 3000
    with connect("local", workers=1, processes=False) as client:
        res = replay_files([given], client)
    assert res.files[0].stats == serial.files[0].stats
    assert res.files[0].hashes == serial.files[0].hashes
    assert res.files[0].file == serial.files[0].file
