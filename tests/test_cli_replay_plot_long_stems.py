"""Several files' plots are named ``<stem>-<symbol>.png``: a file whose name is long but
legal made that name longer than the file system takes, and --plot failed after the whole
replay ("File name too long", exit status 1, no plot)."""
from __future__ import annotations

import os

import pytest

from cli_replay_checks import run_cli

pytest.importorskip("matplotlib")


def test_cli_replay_several_files_plot_of_a_long_file_stem_named_within_the_limit(capsys,
                                                                                  tmp_path):
    import matchcore.itch as itch

    day = itch.generate(None, messages=20_000, symbols=2, seed=3)
    long_file = tmp_path / ("x" * 248 + ".itch")
    long_file.write_bytes(day)
    (tmp_path / "b.itch").write_bytes(day)
    out = tmp_path / "plots"
    rc, stdout, err = run_cli(capsys, "replay", str(long_file), str(tmp_path / "b.itch"),
                              "--plot", str(out), "--plot-top", "2", "--no-progress")
    assert rc == 0 and "error" not in err, err
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 4 and "b-AAPL.png" in names and "b-MSFT.png" in names, names
    long_names = [n for n in names if n.startswith("x" * 200)]
    assert len(long_names) == 2 and len({n.split("~")[1] for n in long_names}) == 2, names
    most = os.pathconf(out, "PC_NAME_MAX")
    assert all(len(os.fsencode(n)) <= most and n.endswith(".png") for n in long_names)
    for n in long_names:
        assert n in stdout


def test_cli_replay_several_files_out_of_a_long_name_met_twice_within_the_limit(capsys,
                                                                                tmp_path):
    # a 255-byte name in two directories: the second stem gained "-2", a directory name too
    # long to make, found after the whole replay ("[Errno 36] File name too long", exit 1)
    import json

    import matchcore.itch as itch

    day = itch.generate(None, messages=20_000, symbols=2, seed=3)
    files = []
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        files.append(tmp_path / d / ("y" * 255))
        files[-1].write_bytes(day)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, "replay", *map(str, files), "--out", str(out),
                              "--no-progress")
    assert rc == 0 and "error" not in err, err
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(dirs) == 2 and all((d / "tob.npy").is_file() for d in dirs), dirs
    assert all(len(os.fsencode(d.name)) <= 255 for d in dirs)
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(os.path.basename(f["dir"]) for f in summary["files"]) == \
        sorted(d.name for d in dirs)
