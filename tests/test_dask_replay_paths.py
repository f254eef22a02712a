"""The path a Dask task is sent names the file the caller's path names: made absolute without
folding ``..`` lexically, which past a symlinked directory named another file."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("distributed")

import matchcore.itch as itch  # noqa: E402
from matchcore.cluster.dask import connect, replay_files, replay_serial  # noqa: E402


def _two_days_one_behind_a_symlink(tmp_path, monkeypatch):
    # work/day.itch (2,000 messages) and real/day.itch (3,000), reached from work/ as
    # link/../day.itch: link is real/sub, and the kernel resolves it before the ..
    (tmp_path / "real" / "sub").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    itch.generate(tmp_path / "real" / "day.itch", messages=3000, symbols=2, seed=1)
    itch.generate(work / "day.itch", messages=2000, symbols=2, seed=2)
    os.symlink(tmp_path / "real" / "sub", work / "link")
    monkeypatch.chdir(work)


def test_dask_replay_dotdot_past_a_symlinked_directory_reads_the_file_the_kernel_names(
        tmp_path, monkeypatch):
    # link/../day.itch is real/day.itch (the kernel resolves link first); folded to
    # ./day.itch, the workers replayed the caller's other day.itch, and said nothing
    _two_days_one_behind_a_symlink(tmp_path, monkeypatch)
    given = os.path.join("link", "..", "day.itch")
    serial = replay_serial([given])
    assert serial.files[0].stats["messages"] == 3000
    with connect("local", workers=1, processes=False) as client:
        res = replay_files([given], client)
    assert res.files[0].stats == serial.files[0].stats
    assert res.files[0].hashes == serial.files[0].hashes
    assert res.files[0].file == serial.files[0].file


def test_replay_dotdot_past_a_symlinked_directory_not_refused_as_given_twice(
        tmp_path, monkeypatch, capsys):
    # day.itch and link/../day.itch are two files; folded lexically they were one, and the
    # replay of the two days was refused as "given twice"
    from cli_replay_checks import run_cli

    _two_days_one_behind_a_symlink(tmp_path, monkeypatch)
    other = os.path.join("link", "..", "day.itch")
    res = replay_serial(["day.itch", other])
    assert [f.stats["messages"] for f in res.files] == [2000, 3000]
    code, out, err = run_cli(capsys, "replay", "day.itch", other, "--no-progress")
    assert code == 0, err
    assert "5,000 messages" in out.splitlines()[0]
    # one file named twice, through the link too, is still refused
    with pytest.raises(ValueError, match="given twice"):
        replay_serial(["day.itch", os.path.join("link", "..", "..", "work", "day.itch")])
