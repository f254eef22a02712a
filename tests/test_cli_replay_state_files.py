"""The project's own state files (an engine journal's segments, an engine snapshot, a book
snapshot) given to the readers of market data: each is named for what it is, with the way to
read it, wherever it is given (``matchcore replay``, ``book``, ``itch.replay_file``, a
``Replayer``, ``itch.decode``, the MoldUDP64 publisher, several files and Dask)."""
from __future__ import annotations

import glob

import pytest

import matchcore as mc
import matchcore.itch as itch
from cli_replay_checks import day, run_cli  # noqa: F401  (pytest fixture)

WHAT = {"journal": ("a matchcore journal segment", "matchcore journal inspect"),
        "trades": ("a matchcore journal segment", "matchcore journal inspect"),
        "snapshot": ("a matchcore engine snapshot", "load_snapshot"),
        "book": ("a matchcore book snapshot", "OrderBook.from_snapshot")}


@pytest.fixture(scope="module")
def state_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("state") / "j"
    eng = mc.Engine(journal=str(d))
    eng.add_symbol(1, "AAPL")
    eng.submit(1, 1, mc.Side.SELL, 100, 5)
    eng.submit(1, 2, mc.Side.BUY, 100, 3)
    snap = eng.snapshot()
    book = d.parent / "book.snap"
    b = mc.OrderBook()
    b.submit(1, mc.Side.SELL, 100, 5)
    book.write_bytes(b.snapshot())
    eng.close()
    return {"journal": glob.glob(str(d / "journal-*.mcj"))[0],
            "trades": glob.glob(str(d / "trades-*.mct"))[0],
            "snapshot": str(snap), "book": str(book)}


@pytest.mark.parametrize("kind", list(WHAT))
@pytest.mark.parametrize("cmd", [["replay"], ["replay", "--format", "itch"],
                                 ["replay", "--format", "lobster"], ["book", "--symbol", "AAPL"]])
def test_cli_replay_state_file_refused_naming_what_it_is(capsys, state_files, kind, cmd):
    # refused as "not ITCH 5.0 framing: it starts with b'MCJOURNL'": an operator who gave
    # replay a journal segment was told about ITCH length prefixes, not what the file is
    path = state_files[kind]
    code, out, err = run_cli(capsys, cmd[0], path, *cmd[1:], "--no-progress")
    what, way = WHAT[kind]
    assert code == 1 and out == "" and "Traceback" not in err, err
    assert f"{path}: {what}" in err and way in err and "framing" not in err, err


@pytest.mark.parametrize("kind", list(WHAT))
def test_itch_readers_state_file_refused_naming_what_it_is(state_files, kind, tmp_path):
    from matchcore.moldudp import MoldUDP64Publisher

    path = state_files[kind]
    what, way = WHAT[kind]
    data = open(path, "rb").read()
    for call in (lambda: itch.replay_file(path), lambda: itch.decode(data),
                 lambda: itch.Replayer().feed(data),
                 lambda: MoldUDP64Publisher(path, 9), lambda: MoldUDP64Publisher(data, 9)):
        with pytest.raises(ValueError, match=what) as e:
            call()
        assert way in str(e.value) and "framing" not in str(e.value)


@pytest.mark.parametrize("kind", ["journal", "snapshot"])
def test_cli_replay_state_file_among_several_refused_before_any_replay(capsys, state_files,
                                                                      day, kind, tmp_path):
    path = state_files[kind]
    code, out, err = run_cli(capsys, "replay", str(day), path, "--out", str(tmp_path / "o"),
                             "--no-progress")
    what, way = WHAT[kind]
    assert code == 1 and out == "" and f"{path}: {what}" in err and way in err, err
    assert not (tmp_path / "o").exists()
