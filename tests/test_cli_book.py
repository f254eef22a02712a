"""``matchcore book``: the ladder at a time, its plot, and what it says of files it cannot read."""
from __future__ import annotations

import numpy as np
import pytest

from cli_replay_checks import RITCH, run_cli, shared
from cli_replay_checks import day  # noqa: F401  (module fixture)

import matchcore.itch as itch
from matchcore.itch.reference import ReferenceReplay


def test_cli_book_ladder_at_time_equals_reference(capsys, day):
    at = "11:00:00.000000"
    code, out, _ = run_cli(capsys, "book", str(day), "--symbol", "MSFT", "--at", at, "--depth", "4",
                           "--no-progress")
    assert code == 0
    ref = ReferenceReplay()
    ref.feed(day.read_bytes(), until_ns=itch.parse_time(at))
    bids, asks = ref.depth(2)
    lines = out.splitlines()
    n_orders = sum(1 for o in ref.orders.values() if o[0] == 2)
    assert lines[0].startswith(f"MSFT (locate 2) at {at}: {n_orders:,} orders")
    ladder = [ln for ln in lines if "|" in ln][1:]
    assert len(ladder) == 4
    for i, ln in enumerate(ladder):
        left, right = ln.split("|")
        assert left.split() == [str(bids[i][2]), str(bids[i][1]), f"{bids[i][0] / 1e4:.4f}"]
        assert right.split() == [f"{asks[i][0] / 1e4:.4f}", str(asks[i][1]), str(asks[i][2])]


@pytest.mark.parametrize("at, shown", [("11:00:00.123456789", "11:00:00.123456789"),
                                        ("11:00:00.1234567", "11:00:00.123456700"),
                                        ("11:00:00.5", "11:00:00.500000")])
def test_cli_book_header_shows_the_time_asked_to_its_nanosecond(capsys, day, at, shown):
    # --at takes nanoseconds (ITCH timestamps are ns), but the header cut them off: the book
    # at .123456789 was announced as the book at .123456
    code, out, _ = run_cli(capsys, "book", str(day), "--symbol", "MSFT", "--at", at,
                           "--no-progress")
    assert code == 0 and out.startswith(f"MSFT (locate 2) at {shown}: "), out


def test_cli_book_plot_writes_png(capsys, day, tmp_path):
    png = tmp_path / "depth.png"
    code, out, _ = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--plot", str(png),
                           "--no-progress")
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_book_plot_without_matplotlib_exit_2_names_the_extra(capsys, day, tmp_path,
                                                                 monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import now raises ImportError
    code, out, err = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--plot",
                             str(tmp_path / "depth.png"), "--no-progress")
    assert code == 2 and "pip install 'matchcore[plot]'" in err
    assert out == ""                                          # said before the replay


@pytest.mark.parametrize("depth", ["1", "4"])
def test_cli_book_plot_every_level_drawn_with_its_width(capsys, day, tmp_path, monkeypatch, depth):
    from matplotlib.axes import Axes

    drawn = []
    step = Axes.step

    def record(self, x, y, *a, **kw):
        drawn.append((np.asarray(x), np.asarray(y), kw.get("label")))
        return step(self, x, y, *a, **kw)

    monkeypatch.setattr(Axes, "step", record)
    png = tmp_path / "depth.png"
    code, _, _ = run_cli(capsys, "book", str(day), "--symbol", "MSFT", "--at", "11:00:00",
                         "--depth", depth, "--plot", str(png), "--no-progress")
    assert code == 0 and png.exists()
    ref = ReferenceReplay()
    ref.feed(day.read_bytes(), until_ns=itch.parse_time("11:00:00"))
    bids, asks = ref.depth(2)
    n = int(depth)
    assert [d[2] for d in drawn] == ["bids (cumulative)", "asks (cumulative)"]
    for (x, y, _), levels, sign in zip(drawn, (bids[:n], asks[:n]), (-1, 1)):
        prices = [p / 1e4 for p, _, _ in levels]
        # one closing point beyond the deepest level, further from the touch, at the same depth
        assert len(x) == n + 1 and list(x[:n]) == prices
        assert sign * (x[n] - x[n - 1]) > 0 and y[n] == y[n - 1] == sum(q for _, q, _ in levels)


def test_cli_book_zero_prefix_file_without_infer_lengths_hints_the_option(capsys):
    code, _, err = run_cli(capsys, "book", str(shared(RITCH)), "--symbol", "ALC", "--no-progress")
    assert code == 1
    assert "bad length prefixes: 1 (first at offset 0: zero length prefix" in err
    assert "--infer-lengths" in err
    code, out, err = run_cli(capsys, "book", str(shared(RITCH)), "--symbol", "ALC",
                             "--infer-lengths", "--no-progress")
    assert code == 0 and err == "" and out.startswith("ALC (locate ")


def test_cli_book_damaged_or_cut_file_notes_what_it_could_not_read(capsys, day, tmp_path):
    data = day.read_bytes()
    pos = 0
    while pos < 5000:                       # a frame boundary: its prefix zeroed
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    bad = tmp_path / "bad.itch"
    bad.write_bytes(data[:pos] + b"\x00\x00" + data[pos + 2:-7])
    code, out, err = run_cli(capsys, "book", str(bad), "--symbol", "AAPL", "--no-progress")
    r = itch.replay_file(bad)
    assert code == 0 and out.startswith("AAPL (locate 1)")
    assert f"note: bad length prefixes: 1 (first at offset {pos:,}: zero length prefix" in err
    t = r.stats["truncated"]
    assert f"note: the last message at offset {t['offset']:,} is incomplete" in err
    code, out, err = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--no-progress")
    assert code == 0 and err == ""


def test_cli_book_bad_time_error(capsys, day):
    code, _, err = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--at", "25:00",
                           "--no-progress")
    assert code == 1 and "HH:MM:SS" in err


def test_cli_book_on_a_native_command_file_refused_naming_its_format(capsys, tmp_path):
    # read as ITCH it said "no symbol '0' in this file; symbols seen: " (nothing)
    import matchcore as mc
    from matchcore.native import write_commands

    cmds = np.zeros(3, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = [1, 2, 3]
    cmds["price"] = 100
    cmds["qty"] = 5
    path = tmp_path / "flow.mccmd"
    write_commands(path, cmds)
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", "0")
    assert code == 1 and out == ""
    assert err.startswith(f"matchcore book: error: {path} is a native command file: book reads "
                          "ITCH 5.0 files")


def test_cli_book_no_symbol_before_first_message_says_none_seen(capsys, day):
    # "symbols seen: " ended the line with nothing, as if the list had been cut off
    code, out, err = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--at", "00:00:00",
                             "--no-progress")
    assert code == 1 and out == ""
    assert err.strip() == ("matchcore book: error: no symbol 'AAPL' before 00:00:00; "
                           "symbols seen: none")


@pytest.mark.parametrize("at", ["", " "])
def test_cli_book_empty_at_refused_not_end_of_file(capsys, day, at):
    # --at "" showed the book at the end of the file, exit status 0
    code, out, err = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--at", at,
                             "--no-progress")
    assert code == 1 and out == ""
    assert err.strip() == (f"matchcore book: error: --at {at!r}: not a time of day: "
                           f"HH:MM:SS[.fraction] with hours below 24, minutes and seconds below "
                           f"60, 1 to 9 fraction digits")


def test_cli_book_orders_dropped_out_of_memory_reported_exit_1(capsys, day, monkeypatch):
    # an order no book could take (stats["out_of_memory"]) left the ladder shown short, with
    # no word and exit status 0. No small file makes a book fail to grow, so the replay's
    # count is raised on the real result.
    real = itch.replay_file

    class Short:
        def __init__(self, r):
            self._r = r
            self.stats = {**r.stats, "out_of_memory": 3}

        def __getattr__(self, name):
            return getattr(self._r, name)

    monkeypatch.setattr(itch, "replay_file", lambda *a, **k: Short(real(*a, **k)))
    sym = next(iter(sorted(real(day).symbols.values())))
    code, out, err = run_cli(capsys, "book", str(day), "--symbol", sym, "--no-progress")
    assert code == 1 and f"{sym} (locate " in out
    assert err == ("matchcore book: error: out of memory: 3 records or orders dropped (sinks or "
                   "books that could not grow); the book shown is incomplete\n")


@pytest.mark.parametrize("at", ["11:00:00.1234567891", "11:00:00.", "1_1:00:00", "11:00:0\u0661",
                                "+11:00:00", " 11:00:00", "11:00:00 ", "\t11:00:00",
                                "11:00:00\n"])
def test_cli_book_at_beyond_nine_fraction_digits_not_ascii_digits_or_padded_refused(capsys, day,
                                                                                    at):
    # a 10th fraction digit was cut off (the book at .1234567891 shown as the book at
    # .123456789) and int() took "1_1", "+11" and non-ASCII digits: all ran with exit status 0;
    # the time text was stripped first, so a padded --at ran as if it were written plain,
    # unlike every other option's value, which is taken exactly
    code, out, err = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--at", at,
                             "--no-progress")
    assert code == 1 and out == ""
    assert err.strip() == (f"matchcore book: error: --at {at!r}: not a time of day: "
                           f"HH:MM:SS[.fraction] with hours below 24, minutes and seconds below "
                           f"60, 1 to 9 fraction digits")
    with pytest.raises(ValueError, match="is not HH:MM:SS"):
        itch.parse_time(at)


@pytest.mark.parametrize("symbol", ["", " "])
def test_cli_book_empty_symbol_refused_naming_the_option(capsys, day, symbol):
    # the refusal was the library's, naming an argument the command does not have and not
    # what was given: "symbols holds an empty name ('')" for --symbol " "
    code, out, err = run_cli(capsys, "book", str(day), "--symbol", symbol, "--no-progress")
    assert code == 1 and out == ""
    assert err.strip() == f"matchcore book: error: --symbol {symbol!r} names no symbol"


def test_cli_book_plot_format_matplotlib_cannot_write_refused_before_the_replay(capsys, day,
                                                                              tmp_path):
    # the whole replay ran and its ladder was printed, then savefig refused the suffix
    # ("Format 'xyz' is not supported"), exit status 1
    pytest.importorskip("matplotlib")
    png = tmp_path / "depth.xyz"
    code, out, err = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--plot", str(png),
                             "--no-progress")
    assert code == 1 and out == "" and not png.exists()
    assert err.startswith(f"matchcore book: error: --plot {png}: matplotlib cannot write "
                          f"'.xyz' images (it writes ") and "png" in err and err.count("\n") == 1
    for name in ("depth.PNG", "depth.svg", "depth"):        # a name without a suffix: PNG
        code, _, err = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--plot",
                               str(tmp_path / name), "--no-progress")
        assert code == 0 and (tmp_path / name).exists(), err


def test_cli_book_gzipd_lobster_or_text_refused_as_book_not_replay_would(capsys, tmp_path):
    # detection spoke for replay: a gzip'd LOBSTER CSV was to be decompressed first (and then
    # still refused by book), other text was told what replay reads
    import gzip

    from cli_replay_checks import LOBSTER

    lob_gz = tmp_path / "msg.csv.gz"
    lob_gz.write_bytes(gzip.compress(shared(LOBSTER).read_bytes()))
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"symbol,price\nAAPL,100\n")
    for path, what in ((lob_gz, "a gzip'd LOBSTER file"), (notes, "a text file")):
        code, out, err = run_cli(capsys, "book", str(path), "--symbol", "AAPL", "--no-progress")
        assert code == 1 and out == ""
        assert err.startswith(f"matchcore book: error: {path} is {what}: book reads ITCH 5.0 "
                              f"files"), err
        assert "decompress" not in err and "replay reads" not in err, err


@pytest.mark.parametrize("at", ["09:30:60", "24:00:00", "09:30:00.1234567891", "9:30", ""])
def test_cli_book_bad_at_refused_naming_the_option_and_the_form(capsys, day, at):
    # "time '09:30:60' is not HH:MM:SS[.fraction]": the library's words named no option, and a
    # time in that very form (a second of 60, a 10th fraction digit) was said not to be in it
    code, out, err = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--at", at,
                             "--no-progress")
    assert code == 1 and out == ""
    assert err == (f"matchcore book: error: --at {at!r}: not a time of day: HH:MM:SS[.fraction] "
                   f"with hours below 24, minutes and seconds below 60, 1 to 9 fraction "
                   f"digits\n")


def test_cli_replay_and_book_file_cut_one_byte_into_a_message_say_1_byte(capsys, day,
                                                                          tmp_path):
    # one byte of a message's two-byte length prefix: no length to say "of N", and the
    # summary read "(1 bytes)"
    data = day.read_bytes()
    pos = 0
    while pos < 5000:                       # a frame boundary
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    cut = tmp_path / "cut.itch"
    cut.write_bytes(data[:pos + 1])
    t = itch.replay_file(cut).stats["truncated"]
    assert (t["offset"], t["bytes"]) == (pos, 1) and not t["expected"]
    code, out, _ = run_cli(capsys, "replay", str(cut), "--no-progress")
    assert code == 0
    assert f"truncated: the last message at offset {pos:,} is incomplete (1 byte)" in out, out
    code, _, err = run_cli(capsys, "book", str(cut), "--symbol", "AAPL", "--no-progress")
    assert code == 0
    assert f"note: the last message at offset {pos:,} is incomplete (1 byte)" in err, err
    assert "(1 bytes)" not in out + err


def test_cli_book_plot_without_matplotlib_names_the_depth_plot(capsys, day, tmp_path,
                                                              monkeypatch):
    # book --plot draws one depth chart; the refusal said "replay plots need matplotlib", of
    # a command the user had not run
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import now raises ImportError
    png = tmp_path / "d.png"
    code, out, err = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--plot", str(png),
                             "--no-progress")
    assert code == 2 and out == "" and err.count("\n") == 1 and not png.exists()
    assert err.startswith("matchcore book: error: depth charts (book --plot) need matplotlib: "
                          "pip install 'matchcore[plot]'")


def test_cli_book_header_counts_one_order_level_and_message_in_the_singular(capsys, tmp_path):
    # a book of one order was announced as "1 orders, 1 bid / 0 ask levels; 2 messages"
    import struct

    from cli_replay_checks import stock_directory

    add = (b"A" + struct.pack(">HH", 1, 0) + (1000).to_bytes(6, "big")
           + struct.pack(">QcI8sI", 7, b"B", 100, b"ONE     ", 1_000_000))
    path = tmp_path / "one.itch"
    path.write_bytes(stock_directory(1, "ONE") + struct.pack(">H", len(add)) + add)
    code, out, _ = run_cli(capsys, "book", str(path), "--symbol", "ONE", "--no-progress")
    assert code == 0
    assert ": 1 order, 1 bid / 0 ask levels; 2 messages replayed" in out.splitlines()[0]
    code, out, _ = run_cli(capsys, "book", str(path), "--symbol", "ONE", "--no-progress",
                           "--at", "00:00:00.000000500")
    assert ": 0 orders, 0 bid / 0 ask levels; 1 message replayed" in out.splitlines()[0]


def _add_order(ref: int, side: bytes, price: int) -> bytes:
    """An ITCH add order ('A') of 100 shares on locate 1, stock PENNY, length-prefixed."""
    import struct

    body = struct.pack(">cHH6sQcI8sI", b"A", 1, 0, (1).to_bytes(6, "big"), ref, side, 100,
                       b"PENNY   ", price)
    return struct.pack(">H", len(body)) + body


@pytest.mark.parametrize("bid, ask, mid", [(10_000, 10_001, "1.00005"),
                                           (12_344, 12_347, "1.23455"),
                                           (4_338_900, 4_339_000, "433.8950"),
                                           (4_338_900, 4_339_100, "433.9000")])
def test_cli_book_mid_of_an_odd_tick_spread_shown_exactly(capsys, tmp_path, bid, ask, mid):
    # the mid of a spread of an odd number of ticks lies half a tick between two ticks: at four
    # decimals it was rounded to one of them (1.0000 | 1.0001 had "mid 1.0001", the ask)
    path = tmp_path / "penny.itch"
    path.write_bytes(_add_order(1, b"B", bid) + _add_order(2, b"S", ask))
    code, out, _ = run_cli(capsys, "book", str(path), "--symbol", "PENNY", "--no-progress")
    assert code == 0
    spread = f"{(ask - bid) // 10_000}.{(ask - bid) % 10_000:04d}"
    assert f"spread {spread}, mid {mid} (prices in dollars" in out, out


def test_cli_replay_book_dump_of_one_level_and_recovery_summary_in_the_singular(capsys, tmp_path):
    # "book dump: 1 levels -> ..." and a recovery summary's "replayed 1 commands, 1 config
    # records"
    import struct

    import matchcore as mc
    from cli_replay_checks import stock_directory

    add = (b"A" + struct.pack(">HH", 1, 0) + (1000).to_bytes(6, "big")
           + struct.pack(">QcI8sI", 7, b"B", 100, b"ONE     ", 1_000_000))
    path = tmp_path / "one.itch"
    path.write_bytes(stock_directory(1, "ONE") + struct.pack(">H", len(add)) + add)
    dump = tmp_path / "book.csv"
    code, out, _ = run_cli(capsys, "replay", str(path), "--dump-book", str(dump), "--no-progress")
    assert code == 0 and f"book dump: 1 level -> {dump}" in out
    eng = mc.Engine(journal=str(tmp_path / "j"))
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    back = mc.Engine.recover(str(tmp_path / "j"))
    assert "  replayed 1 command, 1 config record" in back.recovery_report.summary().splitlines()
    back.close()


@pytest.mark.parametrize("name", ["$\\alp$", "$X$"])
def test_cli_book_plot_name_with_dollar_signs_drawn_as_written(capsys, day, tmp_path,
                                                               monkeypatch, name):
    # a stock field holding two '$' was read by matplotlib as mathtext: "$\alp$" failed the
    # plot after the ladder (exit 1, a ParseException), "$X$" was drawn as an italic X
    from cli_replay_checks import record_titles, with_names

    path = tmp_path / "dollar.itch"
    path.write_bytes(with_names(day.read_bytes(), {1: name}))
    titles = record_titles(monkeypatch)
    png = tmp_path / "depth.png"
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", "1", "--plot", str(png),
                             "--no-progress")
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shown = name.replace("\\", "\\\\")          # the header's escaping (shown_name)
    assert out.startswith(f"{shown} (locate 1) at end of file")
    assert [(t.split(" depth at ")[0], math) for t, math in titles] == [(shown, False)]


def test_cli_book_ladder_columns_stay_under_their_headers_with_wide_levels(capsys, tmp_path,
                                                                         day):
    # a level of more than 999,999,999 shares (three orders of the largest share count) was
    # printed wider than its column: the '|' and every column after it moved right on that
    # row only, away from the header
    import struct

    def add(ref, side, shares, price):
        body = struct.pack(">cHH6sQcI8sI", b"A", 1, 0, (1).to_bytes(6, "big"), ref, side,
                           shares, b"WIDE    ", price)
        return struct.pack(">H", len(body)) + body

    path = tmp_path / "wide.itch"
    path.write_bytes(b"".join([add(1, b"B", 2**32 - 1, 10_000), add(2, b"B", 2**32 - 1, 10_000),
                               add(3, b"B", 2**32 - 1, 10_000), add(4, b"B", 5, 9_900),
                               add(5, b"S", 2**32 - 1, 10_100), add(6, b"S", 2**32 - 1, 10_100),
                               add(7, b"S", 2**32 - 1, 10_100), add(8, b"S", 7, 10_200)]))
    code, out, _ = run_cli(capsys, "book", str(path), "--symbol", "WIDE", "--no-progress")
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, x in enumerate(lines) if x.lstrip().startswith("orders"))
    ladder = lines[header:header + 3]
    assert [x.index("|") for x in ladder] == [ladder[0].index("|")] * 3, "\n".join(ladder)
    # each value ends (bid side) or starts (ask side) where its header does
    import re

    def spans(text):
        return [m.span() for m in re.finditer(r"\S+", text)]

    head_left, head_right = ladder[0].split(" | ")
    for row in ladder[1:]:
        left, right = row.split(" | ")
        assert [e for _, e in spans(left)] == [e for _, e in spans(head_left)], row
        assert [b for b, _ in spans(right)] == [b for b, _ in spans(head_right)], row
    assert "12884901885" in ladder[1] and ladder[1].rstrip().endswith("3")
    # an ordinary day's ladder is laid out as before
    code, out, _ = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--no-progress",
                           "--depth", "2")
    assert " orders       qty         bid | ask         qty       orders" in out.splitlines()
