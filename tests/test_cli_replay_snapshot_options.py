"""replay's snapshot options on the command line: what they need to be of use."""
from __future__ import annotations

import pytest

from cli_replay_checks import copies, run_cli
from cli_replay_checks import day  # noqa: F401  (module fixture)


def _inputs(kind, day, tmp_path):
    if kind == "dbn":
        pytest.importorskip("databento_dbn")
        from matchcore.feeds.dbn_gen import generate_mbo

        return [str(generate_mbo(tmp_path / "m.dbn", records=200, instruments=2, seed=1))]
    return copies(day, 2 if kind == "several" else 1)


@pytest.mark.parametrize("kind", ["itch", "dbn", "several"])
@pytest.mark.parametrize("cadence", [["--snapshot-every", "100"],
                                     ["--snapshot-every-ns", "1000000000"]])
def test_cli_replay_snapshot_cadence_without_out_refused_before_the_replay(capsys, day, tmp_path,
                                                                           kind, cadence):
    # the snapshots were taken and thrown away: only --out writes them (snapshots.npy), and the
    # command said nothing
    files = _inputs(kind, day, tmp_path)
    dump = tmp_path / "book.csv"
    extra = ["--dump-book", str(dump)] if kind != "several" else []
    code, out, err = run_cli(capsys, "replay", *files, *cadence, *extra, "--no-progress")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err == (f"matchcore replay: error: {cadence[0]} needs --out (the snapshots are "
                   f"written to DIR/snapshots.npy)\n")
    assert not dump.exists()
    code, out, _ = run_cli(capsys, "replay", *files, *cadence, "--out", str(tmp_path / "o"),
                           "--no-progress")
    assert code == 0 and "replayed" in out
    assert list((tmp_path / "o").rglob("snapshots.npy"))


def test_cli_replay_help_says_the_snapshot_cadences_need_out():
    # the help of --snapshot-every(-ns) did not say where the snapshots go, nor that they are
    # refused without it
    import argparse

    from matchcore import cli_replay

    p = argparse.ArgumentParser()
    cli_replay.add_parser(p, "replay")
    helps = {s: a.help for a in p._actions for s in a.option_strings}
    for option in ("--snapshot-every", "--snapshot-every-ns"):
        assert "needs --out" in helps[option] and "snapshots.npy" in helps[option], helps[option]


@pytest.mark.parametrize("kind", ["itch", "dbn", "several"])
def test_cli_replay_depth_beyond_a_snapshot_record_names_the_option(capsys, day, tmp_path,
                                                                    kind):
    # "snapshot_depth must be at most 44,739,242 ...": the replayer's keyword, not --depth
    from matchcore._sinks import MAX_SNAPSHOT_DEPTH

    files = _inputs(kind, day, tmp_path)
    bad = MAX_SNAPSHOT_DEPTH + 1
    code, out, err = run_cli(capsys, "replay", *files, "--snapshot-every", "100", "--depth",
                             str(bad), "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 1 and out == ""
    assert err == (f"matchcore replay: error: --depth must be at most {MAX_SNAPSHOT_DEPTH:,} (a "
                   f"snapshot record of 48 bytes a level must fit in 2**31 - 1 bytes), got "
                   f"{bad}\n")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind", ["itch", "dbn", "several"])
def test_cli_replay_depth_beyond_the_memory_for_snapshots_refused(capsys, day, tmp_path, kind,
                                                                  monkeypatch):
    # a --depth whose snapshot records the machine cannot hold (a machine of 40 KB memory:
    # 10,000 bytes for snapshots) was taken: the sink grew into memory the kernel granted and
    # the replay was killed, no error and no output
    from matchcore import _sinks

    monkeypatch.setattr(_sinks, "_snapshot_memory_limit", lambda: 10_000)
    files = _inputs(kind, day, tmp_path)
    code, out, err = run_cli(capsys, "replay", *files, "--snapshot-every", "100", "--depth",
                             "1000", "--out", str(tmp_path / "o"), "--no-progress")
    # exit 1, as --depth 0 and a depth beyond one numpy record: a value the command refuses
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("matchcore replay: error: --depth 1,000 needs 48,016 bytes a "
                          "snapshot record (16 + 48 a level), more than the 10,000 bytes "
                          "snapshots may take on this machine"), err
    assert not (tmp_path / "o").exists()
    code, out, _ = run_cli(capsys, "replay", *files, "--snapshot-every", "100", "--depth",
                           "200", "--out", str(tmp_path / "o"), "--no-progress")
    assert "replayed" in out
