"""``matchcore replay FILES --dask S --split N``: a --split the other options or inputs rule out
is refused before any task, naming the options as the command line gives them."""
from __future__ import annotations

import os

import pytest

import matchcore.itch as itch
from matchcore.__main__ import main
from matchcore.feeds.dbn_gen import generate_mbo


@pytest.mark.parametrize("extra, said", [
    (["--symbols", "AAPL"], "--split and --symbols cannot be combined"),
    (["--snapshot-every", "100", "--out", "OUT"],
     "--split: depth snapshots of ITCH files are taken in the order the books changed, which "
     "the shares cannot reproduce; replay them without --split or without snapshots"),
    (["--snapshot-every-ns", "1000000000", "--out", "OUT"],
     "--split: depth snapshots of ITCH files are taken in the order the books changed, which "
     "the shares cannot reproduce; replay them without --split or without snapshots"),
    (["--format", "dbn", "--snapshot-every", "100", "--out", "OUT"],
     "--split: give --snapshot-every-ns (time), not --snapshot-every (records): each share of a "
     "DBN file counts only its own instruments' records"),
], ids=["symbols", "itch-snapshot-every", "itch-snapshot-every-ns", "dbn-snapshot-every"])
def test_cli_replay_split_ruled_out_by_another_option_names_the_options(capsys, tmp_path,
                                                                          monkeypatch, extra,
                                                                          said):
    # "split and a symbols filter cannot be combined", "split: give snapshot_every_ns ...":
    # the library's keywords, not the options given
    import matchcore.cluster.dask as cd

    def connect(*a, **k):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(cd, "connect", connect)
    if "dbn" in extra:
        files = [generate_mbo(tmp_path / "a.dbn", records=500, instruments=2, seed=1)]
    else:
        files = [itch.generate(tmp_path / "a.itch", messages=200, symbols=2, seed=1)]
    argv = ["replay", *map(str, files), "--dask", "local", "--split", "2", "--no-progress",
            *[str(tmp_path / "out") if a == "OUT" else a for a in extra]]
    rc = main(argv)
    out = capsys.readouterr()
    assert rc == 1 and out.out == ""
    assert out.err == f"matchcore replay: error: {said}\n"
    assert not (tmp_path / "out").exists()


def test_cli_replay_split_of_a_fifo_names_the_option(capsys, tmp_path, monkeypatch):
    import matchcore.cluster.dask as cd

    def connect(*a, **k):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(cd, "connect", connect)
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    rc = main(["replay", str(fifo), "--format", "itch", "--dask", "local", "--split", "2",
               "--no-progress"])
    out = capsys.readouterr()
    assert rc == 1 and out.out == ""
    assert out.err == (f"matchcore replay: error: {fifo} is a pipe or device: --split reads a "
                       f"file once per share, and a pipe gives its stream once; replay it "
                       f"without --split\n")
