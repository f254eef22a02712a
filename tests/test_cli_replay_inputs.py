"""``matchcore replay`` / ``book`` input paths: a file given twice, a file named as a
directory."""
from __future__ import annotations

import os

import pytest

from cli_replay_checks import day, run_cli  # noqa: F401  (pytest fixture)
from matchcore.__main__ import main


@pytest.mark.parametrize("how", ["same", "dotted", "symlink", "dask"])
def test_cli_replay_same_file_twice_usage_error_exit_2_naming_it(capsys, tmp_path, day, how):
    # the file was replayed twice and added twice to the totals of the summary and the
    # --out summary.json, exit status 0: a day's volume doubled without a word
    first = str(day)
    if how == "dotted":
        (tmp_path / "sub").mkdir()
        second = str(tmp_path / "sub" / ".." / ".." / day.parent.name / day.name)
    elif how == "symlink":
        second = str(tmp_path / "link.itch")
        os.symlink(day, second)
    else:
        second = first
    out_dir = tmp_path / "out"
    argv = ["replay", first, second, "--out", str(out_dir), "--no-progress"]
    if how == "dask":
        argv += ["--dask", "local"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == "" and "Traceback" not in err, err
    last = err.splitlines()[-1]
    assert last.startswith(f"matchcore replay: error: {second}: given twice"), err
    if second != first:
        assert f"the same file as {first}" in last, err
    assert not out_dir.exists()


def test_cli_replay_distinct_files_with_one_name_still_replayed(capsys, tmp_path, day):
    # two files of the same name in two directories are two days, not one given twice
    import shutil

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = tmp_path / "a" / "day.itch", tmp_path / "b" / "day.itch"
    shutil.copyfile(day, a)
    shutil.copyfile(day, b)
    rc, out, err = run_cli(capsys, "replay", str(a), str(b), "--no-progress")
    assert rc == 0, err


@pytest.mark.parametrize("argv", [
    ["replay", "DAY/", "--no-progress"],
    ["replay", "DAY", "DAY2/", "--no-progress"],
    ["book", "DAY/", "--symbol", "AAPL", "--no-progress"],
], ids=["replay", "several", "book"])
def test_cli_input_file_named_with_trailing_slash_refused(capsys, tmp_path, day, argv):
    # "day.itch/" names a directory: open() refuses it, but the path went through pathlib,
    # which drops the slash, and the file day.itch was replayed as if named without it
    day2 = tmp_path / "day2.itch"
    day2.write_bytes(day.read_bytes())
    argv = [a.replace("DAY2", str(day2)).replace("DAY", str(day)) for a in argv]
    named = next(a for a in argv if a.endswith("/"))
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 1 and out == "", (out, err)
    assert err == (f"matchcore {argv[0]}: error: file {named}: names a directory (it ends "
                   f"with /), not a file\n")


@pytest.mark.parametrize("argv", [
    ["replay", "DIR"], ["replay", "DIR", "--format", "itch"],
    ["replay", "DIR", "--format", "lobster"], ["replay", "DIR", "--format", "native"],
    ["replay", "DAY", "DIR"], ["book", "DIR", "--symbol", "AAPL"],
], ids=["replay", "itch", "lobster", "native", "several", "book"])
def test_cli_input_directory_refused_naming_it_exit_1(capsys, tmp_path, day, argv):
    # a directory given as the input said "[Errno 21] Is a directory: 'adir'" (or, for a native
    # replay, "not a command file"): not which argument, nor that a file was wanted
    d = tmp_path / "adir"
    d.mkdir()
    argv = [{"DIR": str(d), "DAY": str(day)}.get(a, a) for a in argv]
    code, out, err = run_cli(capsys, *argv, "--no-progress")
    assert code == 1 and out == ""
    assert err == f"matchcore {argv[0]}: error: file {d}: is a directory, not a file\n"
