"""``matchcore replay`` on DBN files (detected by their magic bytes) and ``--plot DIR`` for the
ITCH and DBN replays."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

import matchcore.itch as itch  # noqa: E402
from matchcore.__main__ import main  # noqa: E402
from matchcore.feeds.dbn import replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402
from conftest import run_cli_in_2gib  # noqa: E402


@pytest.fixture(scope="module")
def dbn_file(tmp_path_factory):
    return generate_mbo(tmp_path_factory.mktemp("dbn") / "day.dbn.zst", records=12_000,
                        instruments=3, seed=21)


def test_cli_replay_dbn_detected_summary_and_sinks(dbn_file, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["replay", str(dbn_file), "--no-progress", "--out", str(out),
               "--dump-book", str(tmp_path / "b.csv"), "--snapshot-every", "1000"])
    text = capsys.readouterr().out
    assert rc == 0, text
    r = replay_dbn(dbn_file, snapshot_every=1000)
    assert f"replayed {r.stats['messages']:,} DBN MBO records (GLBX.MDP3 mbo v" in text
    assert "bad record headers: 0" in text and "truncated: no" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["format"] == "dbn" and summary["stats"]["open_orders"] == r.stats["open_orders"]
    assert np.array_equal(np.load(out / "trades.npy"), r.trades())
    assert np.array_equal(np.load(out / "snapshots.npy"), r.snapshots())
    with open(tmp_path / "b.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["locate", "symbol", "side", "level", "price", "qty", "orders"]
    levels = sum(b.level_count(0) + b.level_count(1) for b in r.books.values())
    assert len(rows) - 1 == levels


def test_cli_replay_several_files_line_of_a_dbn_file_with_a_bad_header_says_so(tmp_path,
                                                                                capsys):
    from matchcore.feeds.dbn import read_metadata

    good = generate_mbo(tmp_path / "good.dbn", records=500, instruments=2, seed=3)
    with open(good, "rb") as f:
        start = read_metadata(f).header_bytes
    data = bytearray(good.read_bytes())
    data[start + 56 * 10] = 3               # record 10's length byte: 12 bytes, under a header
    bad = tmp_path / "bad.dbn"
    bad.write_bytes(bytes(data))
    rc = main(["replay", str(bad), str(good), "--no-progress"])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0
    bad_line = next(x for x in lines if x.strip().startswith("bad.dbn"))
    good_line = next(x for x in lines if x.strip().startswith("good.dbn"))
    r = replay_dbn(bad)
    assert r.stats["bad_records"] == 1
    assert (f"bad record headers 1 (first at offset {r.stats['first_bad_offset']:,} after the "
            f"metadata; {r.stats['bytes_skipped']:,} bytes skipped)") in bad_line
    assert "bad record headers" not in good_line


def test_cli_replay_dbn_metadata_length_beyond_the_file_said_cut_short_not_out_of_memory(
        tmp_path):
    # the metadata header's length is the file's word: 4 GiB claimed by a 16-byte file was
    # allocated before anything was read (exit 1, "error: out of memory" in 2 GiB)
    path = tmp_path / "bad.dbn"
    path.write_bytes(b"DBN\x02" + (0xFFFF_FFF0).to_bytes(4, "little") + b"8 bytes.")
    p = run_cli_in_2gib("replay", path, "--no-progress")
    assert p.returncode == 1, p.stderr
    assert "DBN metadata header truncated (8 of 4294967280 bytes)" in p.stderr, p.stderr
    assert "out of memory" not in p.stderr


def test_cli_replay_dbn_symbols_filter_and_errors(dbn_file, tmp_path, capsys):
    rc = main(["replay", str(dbn_file), "--no-progress", "--symbols", "SYM2,NOPE"])
    text = capsys.readouterr().out
    assert rc == 0 and "books: 1: SYM2" in text and "no symbol named NOPE" in text
    bad = tmp_path / "x.itch"
    bad.write_bytes(b"\x00\x0cS" + b"\x00" * 11)
    rc = main(["replay", str(bad), "--format", "dbn", "--no-progress"])
    assert rc == 1 and "not a DBN stream" in capsys.readouterr().err
    rc = main(["replay", str(dbn_file), "--infer-lengths", "--no-progress"])
    assert rc == 1 and "--infer-lengths applies to ITCH" in capsys.readouterr().err


def _is_png(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_cli_replay_plot_dbn_writes_one_png_per_busiest_symbol(dbn_file, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="plots need the 'plot' extra")
    rc = main(["replay", str(dbn_file), "--no-progress", "--plot", str(tmp_path / "p"),
               "--plot-top", "2"])
    assert rc == 0
    pngs = sorted((tmp_path / "p").glob("*.png"))
    assert len(pngs) == 2 and all(_is_png(p) for p in pngs)
    assert "plots: " in capsys.readouterr().out


def test_cli_replay_plot_itch_writes_pngs(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="plots need the 'plot' extra")
    path = itch.generate(tmp_path / "d.itch", messages=20_000, symbols=3, seed=2)
    rc = main(["replay", str(path), "--no-progress", "--plot", str(tmp_path / "p"),
               "--plot-top", "2"])
    assert rc == 0
    names = sorted(p.name for p in (tmp_path / "p").glob("*.png"))
    r = itch.replay_file(path)
    assert len(names) == 2 and set(names) <= {f"{n}.png" for n in r.symbols.values()}
    assert all(_is_png(tmp_path / "p" / n) for n in names)
    assert "plots: " in capsys.readouterr().out


def test_replay_plots_itch_volume_leaves_out_non_printable_executions():
    # ITCH 5.0: an execution with price (C) whose Printable field is N is not to be reflected
    # in volume calculations (the shares of a cross come in its Q message); the volume bars
    # counted them
    import struct

    from matchcore.replay_plots import _volume_trades

    def msg(t, body, ts):
        m = t + struct.pack(">HH", 1, 0) + ts.to_bytes(6, "big") + body
        return len(m).to_bytes(2, "big") + m

    data = b"".join([
        msg(b"A", struct.pack(">QcI8sI", 1, b"B", 1000, b"TEST    ", 100_000), 1),
        msg(b"E", struct.pack(">QIQ", 1, 100, 1), 2),
        msg(b"C", struct.pack(">QIQcI", 1, 200, 2, b"Y", 100_100), 3),
        msg(b"C", struct.pack(">QIQcI", 1, 300, 3, b"N", 100_000), 4),
        msg(b"Q", struct.pack(">Q8sIQc", 300, b"TEST    ", 100_000, 4, b"O"), 5),
    ])
    r = itch.Replayer()
    r.finish(data[r.feed(data):])
    trades = r.trades()
    assert trades["kind"].tolist() == [b"E", b"C", b"C", b"Q"]
    vol = _volume_trades(trades)
    assert vol["match_number"].tolist() == [1, 2, 4]
    assert int(vol["shares"].sum()) == 600


def test_replay_plots_empty_sinks_draw_nothing(tmp_path):
    from matchcore.replay_plots import plot_replay

    empty_tob = np.empty(0, itch.TOB_DTYPE)
    empty_trades = np.empty(0, itch.TRADE_DTYPE)
    assert plot_replay(tmp_path, empty_tob, empty_trades, {}, price_scale=1e4) == []
    with pytest.raises(ValueError, match="top"):
        plot_replay(tmp_path, empty_tob, empty_trades, {}, price_scale=1e4, top=0)


@pytest.mark.parametrize("bad, error, said", [
    ({"bins": 0}, ValueError, "bins must be >= 1, got 0"),
    ({"bins": -3}, ValueError, "bins must be >= 1, got -3"),
    ({"bins": 2.5}, TypeError, "bins must be an integer >= 1, got float 2.5"),
    ({"top": 1.5}, TypeError, "top must be an integer >= 1, got float 1.5"),
    ({"top": "2"}, TypeError, "top must be an integer >= 1, got str '2'"),
    ({"top": True}, TypeError, "top must be an integer >= 1, got bool True"),
    ({"price_scale": 0}, ValueError, "price_scale must be a finite number above 0"),
    ({"price_scale": -1e4}, ValueError, "price_scale must be a finite number above 0"),
    ({"price_scale": float("nan")}, ValueError, "price_scale must be a finite number above 0"),
    ({"price_scale": "1e4"}, TypeError, "price_scale must be a number"),
], ids=["bins0", "bins-3", "bins2.5", "top1.5", "top-str", "top-bool", "scale0", "scale-neg",
        "scale-nan", "scale-str"])
def test_replay_plots_bad_arguments_refused_before_anything_is_made(tmp_path, bad, error, said):
    # bins=0 drew an empty volume panel, -3 failed in numpy's words ("Number of samples, -2"),
    # price_scale=0 drew infinite prices after a divide-by-zero warning, a negative one
    # negative prices, top=1.5 failed in a slice: each after the directory was made
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from matchcore.replay_plots import plot_replay

    tob = np.zeros(2, itch.TOB_DTYPE)
    tob["locate"], tob["ts"], tob["bid"], tob["ask"] = 1, [1, 2], 1000, 1010
    trades = np.zeros(1, itch.TRADE_DTYPE)
    trades["locate"], trades["kind"], trades["ts"], trades["shares"] = 1, b"E", 2, 100
    opened = set(plt.get_fignums())
    kwargs = {"price_scale": 1e4, **bad}
    with pytest.raises(error, match=re.escape(said)):
        plot_replay(tmp_path / "plots", tob, trades, {1: "X"}, **kwargs)
    assert not (tmp_path / "plots").exists()
    assert set(plt.get_fignums()) == opened
    # numpy integers are integers
    paths = plot_replay(tmp_path / "plots", tob, trades, {1: "X"}, price_scale=np.int64(10_000),
                        top=np.int32(1), bins=np.uint8(10))
    assert [p.name for p in paths] == ["X.png"]


def test_replay_plots_sinks_without_the_fields_drawn_refused_naming_them(tmp_path):
    # tob and trades given the other way round failed after the directory was made, in
    # numpy's words: "no field of name kind"
    pytest.importorskip("matplotlib")
    from matchcore.replay_plots import plot_replay

    tob = np.zeros(2, itch.TOB_DTYPE)
    tob["locate"], tob["ts"], tob["bid"], tob["ask"] = 1, [1, 2], 1000, 1010
    trades = np.zeros(1, itch.TRADE_DTYPE)
    trades["locate"], trades["kind"], trades["ts"], trades["shares"] = 1, b"E", 2, 100
    out = tmp_path / "plots"
    with pytest.raises(ValueError, match=r"^tob must hold the replay's top-of-book \(TOB_DTYPE\) "
                                         r"records: its fields \(ts, ref, .*\) lack bid, ask$"):
        plot_replay(out, trades, tob, {1: "X"}, price_scale=1e4)
    with pytest.raises(ValueError, match=r"^trades must hold the replay's trade \(TRADE_DTYPE\) "
                                         r"records: .* lack kind, flag, shares$"):
        plot_replay(out, tob, tob, {1: "X"}, price_scale=1e4)
    with pytest.raises(TypeError, match=r"^trades must be a numpy array of the replay's trade "
                                        r"\(TRADE_DTYPE\) records, got list$"):
        plot_replay(out, tob, [], {1: "X"}, price_scale=1e4)
    with pytest.raises(TypeError, match="tob must be a numpy array .* got ndarray of float64"):
        plot_replay(out, np.zeros(2), trades, {1: "X"}, price_scale=1e4)
    assert not out.exists()
    assert [p.name for p in plot_replay(out, tob, trades, {1: "X"}, price_scale=1e4)] == [
        "X.png"]


def test_replay_plots_save_fails_figure_closed(tmp_path, monkeypatch):
    # a plot whose saving failed (a full disk) stayed open in pyplot: a caller that goes on (a
    # notebook, a loop over days) kept each such figure and its memory, as the benchmark
    # charts once did
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    import matchcore.replay_plots as replay_plots

    def save_figure(fig, path, **kw):
        raise OSError(28, "No space left on device")

    tob = np.zeros(2, itch.TOB_DTYPE)
    tob["locate"], tob["ts"], tob["bid"], tob["ask"] = 1, [1, 2], 1000, 1010
    monkeypatch.setattr(replay_plots, "save_figure", save_figure)
    plt.close("all")
    with pytest.raises(OSError, match="No space left"):
        replay_plots.plot_replay(tmp_path, tob, np.empty(0, itch.TRADE_DTYPE), {1: "X"},
                                 price_scale=1e4)
    assert plt.get_fignums() == []


def _without_f_last(path):
    """The generated DBN file at ``path`` with the F_LAST flag cleared in every record, as a
    file written by a tool that sets no flags."""
    import io

    from matchcore.feeds.dbn import read_metadata

    data = bytearray(path.read_bytes())
    start = read_metadata(io.BytesIO(bytes(data))).header_bytes
    recs = np.frombuffer(data, np.uint8, offset=start).reshape(-1, 56)
    recs[:, 36] &= 0x7F
    path.write_bytes(bytes(data))
    return path


def test_cli_replay_help_says_a_dbn_number_is_an_instrument_id(capsys):
    # the help said "names or locate numbers to keep": a DBN file's sinks and --dump-book
    # carry the book number as their locate, and --symbols 0 (book 0) selected instrument id
    # 0, no book at all; --snapshot-every counted "messages", a DBN replay the kept records
    with pytest.raises(SystemExit) as done:
        main(["replay", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert ("--symbols SYMBOLS comma-separated names or numbers to keep: ITCH stock locates, "
            "DBN instrument ids (default all)") in text
    assert "every N messages (DBN: MBO records of the books kept)" in text
    assert "locate numbers" not in text


def test_cli_replay_dbn_file_without_f_last_says_why_no_top_of_book_was_recorded(tmp_path,
                                                                                  capsys):
    # the books held orders, but no record carried F_LAST, after which the top of book is
    # read: tob.npy was empty and --plot said "nothing to draw" without a word of why
    flagged = generate_mbo(tmp_path / "flagged.dbn", records=3_000, instruments=2, seed=4)
    plain = _without_f_last(generate_mbo(tmp_path / "plain.dbn", records=3_000,
                                         instruments=2, seed=4))
    r = replay_dbn(plain)
    assert len(r.tob()) == 0 and r.stats["open_orders"] > 0
    assert len(replay_dbn(plain, tob_on_last=False).tob()) > 0
    why = ("although the books end with {:,} open orders: a book's top of book is read "
           "after a record of that book carrying F_LAST").format(r.stats["open_orders"])
    rc = main(["replay", str(plain), "--out", str(tmp_path / "out"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and f"note: no top of book was recorded, {why}" in out
    assert "tob_on_last=False" in out
    assert len(np.load(tmp_path / "out" / "tob.npy")) == 0
    # several files: the note names the file that lacks the flags, not the other
    rc = main(["replay", str(flagged), str(plain), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and f"note: no top of book was recorded for {plain}, {why}" in out
    assert out.count("note: no top of book") == 1
    # a flagged file, and a replay that records no top of book (no --out or --plot): no note
    for args in ([str(flagged), "--out", str(tmp_path / "out2")], [str(plain)]):
        assert main(["replay", *args, "--no-progress"]) == 0
        assert "note: no top of book" not in capsys.readouterr().out


def _drawn_lines(monkeypatch, *args, **kwargs) -> dict:
    """plot_replay(*args, **kwargs) with each figure's lines read as it is saved: {file name:
    [(x data, y data) of each line of the top-of-book axes]}."""
    import os

    import matchcore.replay_plots as replay_plots

    drawn = {}

    def save_figure(fig, path, **kw):
        drawn[os.path.basename(path)] = [(np.asarray(ln.get_xdata(), float),
                                   np.asarray(ln.get_ydata(), float))
                                  for ln in fig.axes[0].get_lines()]

    monkeypatch.setattr(replay_plots, "save_figure", save_figure)
    replay_plots.plot_replay(*args, **kwargs)
    return drawn


def test_replay_plots_last_top_of_book_held_to_the_replays_end(tmp_path, monkeypatch):
    # a book quoted once (bid 50, ask 51) and left alone while another traded for 200 s: its
    # step lines held one point each and its plot was blank, as if both sides were empty
    pytest.importorskip("matplotlib")
    t0 = 1_700_000_000_000_000_000
    tob = np.zeros(5, itch.TOB_DTYPE)
    tob["locate"] = [2, 1, 1, 1, 1]
    tob["ts"] = [t0, t0 + 10**9, t0 + 50 * 10**9, t0 + 120 * 10**9, t0 + 200 * 10**9]
    tob["bid"] = [50 * 10**9, 100 * 10**9, 101 * 10**9, 0, 99 * 10**9]
    tob["ask"] = [51 * 10**9, 102 * 10**9, 103 * 10**9, 104 * 10**9, 0]
    drawn = _drawn_lines(monkeypatch, tmp_path, tob, np.empty(0, itch.TRADE_DTYPE),
                         {1: "BUSY", 2: "QUIET"}, price_scale=1e9)
    (qx, qbid), (_, qask) = drawn["QUIET.png"]
    assert qx.tolist() == [0.0, 200.0]
    assert qbid.tolist() == [50.0, 50.0] and qask.tolist() == [51.0, 51.0]
    # the busy book's last change is the end: nothing added; an empty side stays a gap
    (bx, bbid), (_, bask) = drawn["BUSY.png"]
    assert bx.tolist() == [1.0, 50.0, 120.0, 200.0]
    assert bbid[[0, 1, 3]].tolist() == [100.0, 101.0, 99.0] and np.isnan(bbid[2])
    assert bask[:3].tolist() == [102.0, 103.0, 104.0] and np.isnan(bask[3])
    # ITCH (ns since midnight, hours on the axis): held until the last trade
    tob = tob[:1].copy()
    tob["ts"] = 9 * 3_600 * 10**9
    trades = np.zeros(1, itch.TRADE_DTYPE)
    trades["locate"], trades["kind"], trades["shares"] = 7, b"E", 100
    trades["ts"] = 15 * 3_600 * 10**9
    drawn = _drawn_lines(monkeypatch, tmp_path / "itch", tob, trades, {2: "Q"},
                         price_scale=1e4)
    (x, bid), _ = drawn["Q.png"]
    assert x.tolist() == [9.0, 15.0] and bid.tolist() == [5e6, 5e6]


def test_replay_plots_prices_and_times_drawn_without_an_offset(tmp_path, monkeypatch):
    # a quote near 353.65 moving by cents was drawn on ticks "0.00" to "0.08" under a
    # "+3.536e2" in the corner of the axes: the prices read off the chart were cents; a
    # replay of a fraction of a second had its hours the same way
    pytest.importorskip("matplotlib")
    import matchcore.replay_plots as replay_plots

    nine_thirty = 34_200 * 10**9
    tob = np.zeros(4, itch.TOB_DTYPE)
    tob["locate"] = 1
    tob["ts"] = nine_thirty + np.array([0, 1, 2, 3]) * 10**8
    tob["bid"] = [3_536_000, 3_536_200, 3_536_500, 3_536_500]
    tob["ask"] = [3_536_600, 3_536_700, 3_536_800, 3_536_600]
    drawn = []

    def save_figure(fig, path, **kw):
        fig.canvas.draw()
        drawn.append([(ax.xaxis.get_offset_text().get_text(),
                       ax.yaxis.get_offset_text().get_text(),
                       [t.get_text() for t in ax.get_yticklabels()]) for ax in fig.axes])

    monkeypatch.setattr(replay_plots, "save_figure", save_figure)
    replay_plots.plot_replay(tmp_path, tob, np.empty(0, itch.TRADE_DTYPE), {1: "AAPL"},
                             price_scale=1e4)
    (price, spread, volume), = drawn
    assert [a[:2] for a in (price, spread, volume)] == [("", "")] * 3
    assert price[2] and all(t.startswith("353.") for t in price[2]), price[2]


def test_replay_plots_a_top_of_book_of_one_instant_is_marked(tmp_path, monkeypatch):
    # a replay of one record: a step line of one point draws nothing, and the plot was blank
    pytest.importorskip("matplotlib")
    import matchcore.replay_plots as replay_plots

    tob = np.zeros(1, itch.TOB_DTYPE)
    tob["locate"], tob["ts"], tob["bid"], tob["ask"] = 1, 5, 1000, 0
    markers = []

    def save_figure(fig, path, **kw):
        markers.extend(ln.get_marker() for ln in fig.axes[0].get_lines())

    monkeypatch.setattr(replay_plots, "save_figure", save_figure)
    replay_plots.plot_replay(tmp_path, tob, np.empty(0, itch.TRADE_DTYPE), {1: "X"},
                             price_scale=1e4)
    assert markers == ["o", "o"]


def test_replay_plots_dbn_axis_label_names_the_first_records_time_to_the_nanosecond(
        tmp_path, monkeypatch):
    # the axis starts at the first record, 0.75 s into its second; the label said
    # "seconds since 2023-11-14 22:13:20 UTC", so every time read off the axis was 0.75 s early
    pytest.importorskip("matplotlib")
    import matchcore.replay_plots as replay_plots

    t0 = 1_700_000_000_750_000_000
    tob = np.zeros(2, itch.TOB_DTYPE)
    tob["locate"], tob["ts"], tob["bid"], tob["ask"] = 1, [t0, t0 + 10**9], 10**11, 0
    labels = []

    def save_figure(fig, path, **kw):
        labels.append(fig.axes[-1].get_xlabel())

    monkeypatch.setattr(replay_plots, "save_figure", save_figure)
    replay_plots.plot_replay(tmp_path, tob, np.empty(0, itch.TRADE_DTYPE), {1: "X"},
                             price_scale=1e9)
    tob["ts"] += 123
    replay_plots.plot_replay(tmp_path, tob, np.empty(0, itch.TRADE_DTYPE), {1: "X"},
                             price_scale=1e9)
    tob["ts"] -= 750_000_123
    replay_plots.plot_replay(tmp_path, tob, np.empty(0, itch.TRADE_DTYPE), {1: "X"},
                             price_scale=1e9)
    assert labels == ["seconds since 2023-11-14 22:13:20.75 UTC",
                      "seconds since 2023-11-14 22:13:20.750000123 UTC",
                      "seconds since 2023-11-14 22:13:20 UTC"]


def test_replay_plots_busiest_symbols_ranked_by_executions_not_trade_records(tmp_path):
    # a DBN execution is one T and one F per resting order filled at a venue that sends both,
    # a T alone at one that does not: 3 executions of 4 records each outranked 5 executions
    # of one record each
    pytest.importorskip("matplotlib")
    from matchcore.cluster.dask import trade_count
    from matchcore.replay_plots import plot_replay

    tob = np.zeros(4, itch.TOB_DTYPE)
    tob["locate"] = [1, 1, 2, 2]
    tob["ts"] = [1, 2, 1, 2]
    tob["bid"], tob["ask"] = 1000, 1010
    trades = np.zeros(17, itch.TRADE_DTYPE)
    trades["locate"][:12] = 1
    trades["kind"][:12] = [b"T", b"F", b"F", b"F"] * 3
    trades["locate"][12:] = 2
    trades["kind"][12:] = b"T"
    trades["ts"] = np.arange(17) + 1
    trades["shares"] = 10
    assert trade_count(trades[trades["locate"] == 1]) == 3
    assert trade_count(trades[trades["locate"] == 2]) == 5
    paths = plot_replay(tmp_path, tob, trades, {1: "TF", 2: "TONLY"}, price_scale=1e9, top=1)
    assert [p.name for p in paths] == ["TONLY.png"]


def test_cli_replay_missing_extras_name_the_extra(dbn_file, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)
    rc = main(["replay", str(dbn_file), "--dask", "local", "--no-progress"])
    assert rc == 2 and "pip install 'matchcore[dask]'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "databento_dbn", None)
    rc = main(["replay", str(dbn_file), "--no-progress"])
    assert rc == 2 and "pip install 'matchcore[dbn]'" in capsys.readouterr().err


def test_replay_dbn_zst_without_zstandard_names_the_extra_and_closes_the_file(
        dbn_file, monkeypatch, capsys):
    import os
    import sys

    def open_on(path):
        return sum(1 for fd in os.listdir("/proc/self/fd")
                   if os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(path))

    monkeypatch.setitem(sys.modules, "zstandard", None)     # import now raises ImportError
    with pytest.raises(ImportError, match=r"'zstandard'.*pip install 'matchcore\[dbn\]'"):
        replay_dbn(dbn_file)
    assert open_on(dbn_file) == 0
    rc = main(["replay", str(dbn_file), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'matchcore[dbn]'" in err and "Traceback" not in err


@pytest.mark.parametrize("compress", [True, False], ids=["zst", "plain"])
def test_cli_replay_dbn_on_stdin_pipe_summary_like_file(compress, tmp_path, capsys):
    # `... | matchcore replay /dev/stdin --format dbn`: a pipe has no position, which the
    # progress report and the cut-stream message asked of it ("Illegal seek")
    import subprocess
    import sys

    path = generate_mbo(tmp_path / ("d.dbn.zst" if compress else "d.dbn"), records=6_000,
                        instruments=2, seed=5, compress=compress)
    data = path.read_bytes()
    cases = [(path, data)]
    if compress:
        cut = tmp_path / "cut.dbn.zst"
        cut.write_bytes(data[: len(data) // 2])
        cases.append((cut, cut.read_bytes()))
    for p, body in cases:
        assert main(["replay", str(p), "--no-progress"]) == 0
        want = [x for x in capsys.readouterr().out.splitlines() if not x.startswith("replayed")]
        run = subprocess.run([sys.executable, "-m", "matchcore", "replay", "/dev/stdin",
                              "--format", "dbn", "--no-progress"], input=body,
                             capture_output=True, timeout=120)
        assert run.returncode == 0, run.stderr.decode()
        got = run.stdout.decode().splitlines()
        assert [x for x in got if not x.startswith("replayed")] == want
    if compress:
        assert any("zstd stream ended inside a frame" in x for x in want)


def test_cli_replay_zstd_file_not_dbn_refused_not_replayed_as_itch(tmp_path, capsys):
    # An ITCH file compressed with zstd, and a DBN file cut inside its first zstd block, were
    # read as ITCH bytes: one unknown message, a bad length prefix, exit status 0.
    import zstandard
    plain = tmp_path / "day.itch"
    itch.generate(plain, messages=3000, symbols=2, seed=1)
    z = tmp_path / "day.itch.zst"
    z.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    dbn_cut = tmp_path / "cut.zst"
    dbn_cut.write_bytes(generate_mbo(tmp_path / "d.dbn.zst", records=1500, seed=2)
                        .read_bytes()[:200])
    for f in (z, dbn_cut):
        assert main(["replay", str(f), "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert "zstd-compressed file" in err and "plain or gzip'd" in err
        with pytest.raises(ValueError, match="zstd-compressed file"):
            itch.replay_file(f)


def test_cli_book_on_a_dbn_file_refused_naming_its_format(capsys, tmp_path):
    # read as ITCH it said "no symbol 'SYM0' in this file; symbols seen: " (nothing)
    path = generate_mbo(tmp_path / "x.dbn", records=500)
    assert main(["book", str(path), "--symbol", "SYM0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"matchcore book: error: {path} is a DBN file: book reads ITCH 5.0 files")


def test_cli_replay_dbn_symbols_by_instrument_id_kept_unknown_id_noted(capsys, tmp_path):
    path = generate_mbo(tmp_path / "x.dbn", records=1000, instruments=3)
    assert main(["replay", str(path), "--symbols", "1001,01002,99"]) == 0
    out = capsys.readouterr().out
    assert "books: 2: SYM0, SYM1" in out
    assert "note: no symbol numbered 99 in this file" in out


@pytest.mark.timeout(60)
def test_cli_replay_gzip_dbn_replayed_as_dbn_at_every_entry_point(tmp_path, capsys):
    # `gzip -k mbo.dbn` then `matchcore replay mbo.dbn.gz` was replayed as gzip'd ITCH: 0
    # messages, a bad length prefix, exit status 0.
    import gzip
    import os
    import threading

    from matchcore.cluster.dask import detect_format, replay_serial

    plain = generate_mbo(tmp_path / "mbo.dbn", records=20_000, instruments=4, seed=9)
    gz = tmp_path / "mbo.dbn.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    want = replay_dbn(plain)
    assert main(["replay", str(gz), "--no-progress", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert f"replayed {want.stats['messages']:,} DBN MBO records (GLBX.MDP3 mbo v" in out
    assert "truncated: no" in out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["format"] == "dbn" and summary["stats"] == json.loads(json.dumps(want.stats))
    assert np.array_equal(np.load(tmp_path / "o" / "trades.npy"), want.trades())
    # forced to ITCH, or given to the ITCH reader: refused, naming what it is
    assert main(["replay", str(gz), "--format", "itch", "--no-progress"]) == 1
    assert "a gzip'd DBN file, not ITCH 5.0" in capsys.readouterr().err
    for read in (itch.replay_file, itch.decode):
        with pytest.raises(ValueError, match="a gzip'd DBN file, not ITCH 5.0"):
            read(gz)
    # from a FIFO with --format dbn
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(gz.read_bytes()))
    writer.start()
    try:
        assert main(["replay", str(fifo), "--format", "dbn", "--no-progress"]) == 0
    finally:
        writer.join()
    first = capsys.readouterr().out.splitlines()[0]
    assert f"replayed {want.stats['messages']:,} DBN MBO records" in first
    assert "MB read from a pipe)" in first and "on disk" not in first      # not "0.0 MB on disk"
    # several files (the detection of replay_files and replay_serial)
    assert detect_format(gz) == "dbn"
    res = replay_serial([gz, plain])
    assert [f.format for f in res.files] == ["dbn", "dbn"]
    assert res.files[0].stats == res.files[1].stats and res.files[0].hashes == res.files[1].hashes


def test_cli_replay_dbn_symbol_two_instruments_carry_shown_with_their_ids(tmp_path, capsys):
    # The metadata maps one symbol to two instrument ids (an id that changed between the days
    # of a file): the summary listed "books: 3: ESZ4, ESZ4, NQZ4" and the two plots were both
    # titled ESZ4. Each of the two is now shown with its id, which --symbols selects it by.
    pytest.importorskip("matplotlib", reason="plots need the 'plot' extra")
    import datetime
    import io
    from types import SimpleNamespace

    import databento_dbn as d

    from matchcore.feeds.dbn import read_metadata

    body = generate_mbo(None, records=6000, instruments=3, seed=5)
    meta = read_metadata(io.BytesIO(body))
    day = datetime.date(2023, 11, 14)

    def iv(k, iid):
        return SimpleNamespace(start_date=day + datetime.timedelta(days=k),
                               end_date=day + datetime.timedelta(days=k + 1), symbol=str(iid))

    mappings = [SimpleNamespace(raw_symbol="ESZ4", intervals=[iv(0, 1001), iv(1, 1002)]),
                SimpleNamespace(raw_symbol="NQZ4", intervals=[iv(0, 1003)])]
    header = d.Metadata(dataset="GLBX.MDP3", start=meta.start, end=meta.end,
                        stype_in=d.SType.RAW_SYMBOL, stype_out=d.SType.INSTRUMENT_ID,
                        schema=d.Schema.MBO, symbols=["ESZ4", "NQZ4"], mappings=mappings)
    path = tmp_path / "two-days.dbn"
    path.write_bytes(bytes(header.encode()) + body[meta.header_bytes:])
    with open(path, "rb") as f:
        assert read_metadata(f).names == {1001: "ESZ4", 1002: "ESZ4", 1003: "NQZ4"}
    rc = main(["replay", str(path), "--no-progress", "--plot", str(tmp_path / "p")])
    text = capsys.readouterr().out
    assert rc == 0, text
    books_line = next(line for line in text.splitlines() if line.startswith("books: "))
    assert books_line.startswith("books: 3: ")
    assert {"ESZ4 (instrument 1001)", "ESZ4 (instrument 1002)", "NQZ4"} == set(
        books_line.split("; ")[0][len("books: 3: "):].split(", "))
    pngs = sorted(p.name for p in (tmp_path / "p").glob("*.png"))
    assert pngs == ["ESZ4_instrument_1001_.png", "ESZ4_instrument_1002_.png", "NQZ4.png"]
    # the id selects one of the two, and the summary says which
    rc = main(["replay", str(path), "--no-progress", "--symbols", "1002"])
    text = capsys.readouterr().out
    assert rc == 0 and "books: 1: ESZ4;" in text


def test_cli_replay_dbn_instruments_beyond_book_numbers_said_not_noted_as_absent(capsys,
                                                                                 tmp_path):
    # 65,535 instruments that --symbols leaves out take every book number; SYM1 comes after
    # them and is dropped. The summary said nothing of it, and the note said SYM1 was not in
    # the file at all.
    from matchcore.feeds.dbn_gen import mbo_record

    head = generate_mbo(None, records=0, instruments=2)          # SYM0 = 1001, SYM1 = 1002
    rec = np.frombuffer(mbo_record(0, 1, 1, 100, 5, "A", "B"), dtype=np.uint8)
    recs = np.tile(rec, (65_536, 1))
    ids = np.arange(2_000_000, 2_000_000 + 65_536, dtype="<u4")
    ids[-1] = 1002
    recs[:, 4:8] = ids.view(np.uint8).reshape(-1, 4)
    path = tmp_path / "wide.dbn"
    path.write_bytes(head + recs.tobytes())
    assert main(["replay", str(path), "--symbols", "SYM1,NOPE", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "books: 0; open orders: 0" in out
    assert ("books dropped: 1 (instrument and publisher pairs seen after the 65,535 book "
            "numbers were taken by every pair seen, also those --symbols leaves out); their "
            "records were skipped") in out
    assert ("note: no symbol named SYM1, NOPE among the instruments of this file that have a "
            "book number (1 more instrument and publisher pairs were dropped: it may be one of "
            "them)") in out
    assert "in this file" not in out
    other = tmp_path / "wide2.dbn"
    other.write_bytes(path.read_bytes())
    assert main(["replay", str(path), str(other), "--symbols", "SYM1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("truncated no, books dropped 1;") == 2
    assert f"note: no symbol named SYM1 among the instruments of {path} that have a book " \
           f"number (1 more instrument and publisher pairs were dropped: it may be one of " \
           f"them)" in out
    # below the limit nothing changes
    assert main(["replay", str(generate_mbo(tmp_path / "n.dbn", records=100, instruments=2)),
                 "--symbols", "NOPE", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "books dropped" not in out and "note: no symbol named NOPE in this file" in out


def test_cli_replay_dbn_dropped_count_is_of_books_and_said_so(capsys, tmp_path):
    # books are per (instrument, publisher): one instrument of two venues after the book
    # numbers ran out is two dropped books, which the summary called "instruments dropped: 2"
    from matchcore.feeds.dbn_gen import mbo_record

    head = generate_mbo(None, records=0, instruments=2)
    rec = np.frombuffer(mbo_record(0, 1, 1, 100, 5, "A", "B"), dtype=np.uint8)
    recs = np.tile(rec, (65_537, 1))
    ids = np.arange(2_000_000, 2_000_000 + 65_537, dtype="<u4")
    ids[-2:] = 1002
    recs[:, 4:8] = ids.view(np.uint8).reshape(-1, 4)
    recs[-1, 2:4] = np.array([2], "<u2").view(np.uint8)           # publisher_id 2
    path = tmp_path / "venues.dbn"
    path.write_bytes(head + recs.tobytes())
    assert replay_dbn(path).stats["instruments_dropped"] == 2
    assert main(["replay", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "books dropped: 2 (instrument and publisher pairs seen after" in out
    assert "instruments dropped" not in out


def test_cli_replay_dbn_records_dropped_out_of_memory_reported_exit_1(dbn_file, tmp_path):
    # as for ITCH: snapshot records the sink could not allocate were counted in
    # stats["out_of_memory"] only; the DBN summary said nothing and the exit status was 0.
    # A 2 GiB address space leaves no room for one 2.1 GB snapshot record (44,739,242 levels).
    p = run_cli_in_2gib("replay", dbn_file, "--snapshot-every", "1000", "--depth", "44739242",
                        "--no-progress", "--out", tmp_path / "o")
    assert p.returncode == 1, p.stderr
    assert "DBN MBO records" in p.stdout
    assert p.stderr.startswith("matchcore replay: error: out of memory: ")
    assert "records or orders dropped" in p.stderr and p.stderr.count("\n") == 1


@pytest.mark.parametrize("extra, words", [
    (["--depth", "0"], "--depth must be >= 1, got 0"),
    (["--snapshot-every", "-5"], "--snapshot-every must be >= 0, got -5"),
    (["--snapshot-every-ns", "-1"], "--snapshot-every-ns must be >= 0, got -1"),
])
def test_cli_replay_dbn_bad_snapshot_option_error_names_that_option(dbn_file, capsys, extra,
                                                                    words):
    rc = main(["replay", str(dbn_file), "--no-progress", *extra])
    out = capsys.readouterr()
    assert rc == 1 and out.out == ""
    assert out.err == f"matchcore replay: error: {words}\n"


def test_cli_replay_dbn_several_publishers_books_named_with_their_publisher(tmp_path, capsys):
    # Each venue's book of an instrument is its own: the summary, the --dump-book rows and
    # summary.json name its publisher (they listed "SYM0, SYM0" for two venues' books), in one
    # file's replay as in a replay of several files.
    path = generate_mbo(tmp_path / "venues.dbn", records=3000, instruments=2, seed=8,
                        publishers=2)
    r = replay_dbn(path)
    want = {f"SYM{i} (publisher {p})" for i in (0, 1) for p in (1, 2)}
    rc = main(["replay", str(path), "--no-progress", "--out", str(tmp_path / "o"),
               "--dump-book", str(tmp_path / "b.csv")])
    text = capsys.readouterr().out
    assert rc == 0, text
    books_line = next(line for line in text.splitlines() if line.startswith("books: "))
    assert set(books_line.split("; ")[0][len("books: 4: "):].split(", ")) == want
    with open(tmp_path / "b.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["symbol"] for row in rows} == want
    for row in rows:
        L = int(row["locate"])
        assert row["symbol"] == f"{r.symbols[L]} (publisher {r.publishers[L]})"
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["publishers"] == {str(k): v for k, v in r.publishers.items()}
    other = generate_mbo(tmp_path / "one.dbn", records=500, instruments=1, seed=2)
    rc = main(["replay", str(path), str(other), "--no-progress", "--out", str(tmp_path / "m"),
               "--dump-book", str(tmp_path / "m.csv")])
    assert rc == 0
    files = json.loads((tmp_path / "m" / "summary.json").read_text())["files"]
    assert files[0]["publishers"] == summary["publishers"] and "publishers" not in files[1]
    with open(tmp_path / "m.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["symbol"] for row in rows if row["file"] == str(path)} == want
    assert {row["symbol"] for row in rows if row["file"] == str(other)} == {"SYM0"}


@pytest.mark.parametrize("dask", [[], ["--dask", "tcp://127.0.0.1:1"]])
def test_cli_replay_several_files_infer_lengths_with_dbn_refused_naming_the_option(
        dbn_file, tmp_path, capsys, dask):
    # with several files (or --dask) the refusal named the library's keyword, not the option:
    # "day.dbn.zst: infer_lengths applies to ITCH files, not DBN"
    day = tmp_path / "day.itch"
    itch.generate(day, messages=2_000, symbols=2, seed=3)
    rc = main(["replay", str(day), str(dbn_file), "--infer-lengths", "--no-progress", *dask])
    cap = capsys.readouterr()
    assert rc == 1 and cap.out == ""
    assert cap.err == (f"matchcore replay: error: {dbn_file}: --infer-lengths applies to ITCH "
                       "files, not DBN\n")


def test_cli_replay_dbn_cut_short_truncation_counts_the_metadata(tmp_path, capsys):
    # The truncation lines counted from the first record: "after N decompressed bytes" left
    # out the metadata header that was decompressed too, and the last record's offset was
    # not said to be after the metadata, as the bad record headers' is
    import gzip
    import zlib

    plain = generate_mbo(None, records=3000, instruments=2, seed=3)
    packed = gzip.compress(plain)
    cut = packed[:len(packed) // 2]
    path = tmp_path / "cut.dbn.gz"
    path.write_bytes(cut)
    got = len(zlib.decompressobj(31).decompress(cut))
    t = replay_dbn(path).stats["truncated"]
    assert main(["replay", str(path), "--no-progress"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("truncated:")]
    assert lines[0].endswith(f", after {got:,} decompressed bytes")
    assert lines[1].startswith(f"truncated: the last record at offset {t['offset']:,} after the "
                               "metadata is incomplete")


def test_cli_replay_format_dbn_empty_stream_said_empty_not_starting_with_nothing(tmp_path,
                                                                               capsys):
    # --format dbn on an empty file (and on a .zst file holding an empty frame) said "not a
    # DBN stream (starts with b'', expected b'DBN')", where the detected format says "an empty
    # file"
    import io

    import zstandard

    from matchcore.feeds.dbn import read_metadata

    with pytest.raises(ValueError, match=r"^an empty stream: nothing to replay"):
        read_metadata(io.BytesIO(b""))
    empty = tmp_path / "e.dbn"
    empty.write_bytes(b"")
    zst = tmp_path / "ez.dbn.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(b""))
    for path in (empty, zst):
        with pytest.raises(ValueError) as e:
            replay_dbn(path)
        assert str(e.value).startswith(f"{path}: an empty stream: nothing to replay")
        assert main(["replay", str(path), "--format", "dbn", "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert f"error: {e.value}" in err and "starts with b''" not in err


def test_cli_replay_dbn_unknown_action_bytes_shown_escaped_summary_lines_whole(tmp_path,
                                                                             capsys):
    # A damaged record's action byte is counted under that byte in stats["counts"], and the
    # summary printed it as it was: a newline (0x0A) split the "by action" line in two, and
    # an ESC (0x1B) went to the terminal as a control code. Such a byte is shown escaped, as
    # the ITCH summary shows an unknown message type.
    from matchcore.feeds.dbn import read_metadata

    good = generate_mbo(tmp_path / "good.dbn", records=500, instruments=2, seed=3)
    with open(good, "rb") as f:
        start = read_metadata(f).header_bytes
    data = bytearray(good.read_bytes())
    data[start + 56 * 10 + 38] = 0x0A       # record 10's action byte
    data[start + 56 * 20 + 38] = 0x1B
    bad = tmp_path / "bad.dbn"
    bad.write_bytes(bytes(data))
    assert replay_dbn(bad).stats["counts"]["\n"] == 1
    assert main(["replay", str(bad), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("by action: ") and lines[2].startswith("books: "), lines[:3]
    assert "'\\n' 1" in lines[1] and "'\\x1b' 1" in lines[1], lines[1]
    assert not any("\x1b" in line for line in lines)


def test_cli_replay_dbn_dataset_name_of_control_characters_shown_escaped(tmp_path, capsys):
    # The metadata header's dataset was printed as it was in the first summary line: a
    # damaged header's newline split that line, and an escape code reached the terminal.
    # It is shown escaped, as the books' names from the file are.
    import databento_dbn as d
    from matchcore.feeds.dbn_gen import mbo_record

    meta = d.Metadata(dataset="GLBX\x1b[31m\n", start=1, end=2, stype_in=d.SType.RAW_SYMBOL,
                      stype_out=d.SType.INSTRUMENT_ID, schema=d.Schema.MBO, symbols=[],
                      mappings=[], ts_out=False)
    path = tmp_path / "odd.dbn"
    path.write_bytes(bytes(meta.encode()) + mbo_record(1001, 5, 1, 100, 5, "A", "B"))
    assert main(["replay", str(path), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("replayed 1 DBN MBO records (GLBX\\x1b[31m\\n mbo v"), lines[0]
    assert lines[1].startswith("by action: ") and not any("\x1b" in x for x in lines)
