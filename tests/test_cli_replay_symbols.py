"""``matchcore replay`` / ``book`` and symbol names: ``--symbols`` by name, by locate number and by
label, stocks renamed during the day, names that are numbers, and one file or plot per book."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from conftest import slow_fifo_writer
from cli_replay_checks import (assert_dump_is_book, copies, run_cli, spaced_name_day,
                               stock_directory, with_names)
from cli_replay_checks import day  # noqa: F401  (module fixture)

import matchcore.itch as itch
from matchcore.itch.reference import ReferenceReplay


def test_cli_book_unknown_symbol_exit_1_lists_symbols(capsys, day):
    code, _, err = run_cli(capsys, "book", str(day), "--symbol", "NOPE", "--no-progress")
    assert code == 1 and "NOPE" in err and "AAPL" in err


@pytest.mark.parametrize("symbol", ["AAPL", "1"])
def test_cli_book_known_symbol_before_its_first_order_empty_ladder_exit_0(capsys, day, symbol):
    code, out, err = run_cli(capsys, "book", str(day), "--symbol", symbol, "--at", "09:30:00",
                             "--no-progress")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("AAPL (locate 1) at 09:30:00.000000: 0 orders, 0 bid / 0 ask levels")
    assert lines[1] == "trading state: T"
    assert lines[2].split() == ["orders", "qty", "bid", "|", "ask", "qty", "orders"]
    assert len(lines) == 3


def test_cli_book_symbol_before_the_directory_names_it_exit_1(capsys, day):
    code, _, err = run_cli(capsys, "book", str(day), "--symbol", "AAPL", "--at", "04:00:00",
                           "--no-progress")
    assert code == 1 and "'AAPL' before 04:00:00" in err


def test_cli_replay_symbols_numbers_with_zeros_kept_unknown_number_noted(capsys, day):
    # "003" kept no book (the filter compared the text "3"); 9999 was dropped without a note
    code, out, _ = run_cli(capsys, "replay", str(day), "--symbols", "003,9999,NOPE")
    assert code == 0
    assert "books: 1: " in out
    assert "note: no symbol named NOPE in this file" in out
    assert "note: no symbol numbered 9999 in this file" in out


def test_cli_book_symbol_as_locate_with_zeros_same_ladder_as_plain(capsys, day):
    # "--symbol 001" said "no symbol '001' in this file"
    code, plain, _ = run_cli(capsys, "book", str(day), "--symbol", "1")
    assert code == 0
    code, padded, err = run_cli(capsys, "book", str(day), "--symbol", "001")
    assert code == 0 and err == "" and padded == plain


def test_book_name_two_locates_carry_refused_naming_labels_label_or_locate_shows_that_book(
        tmp_path, capsys):
    from matchcore.itch.layouts import LAYOUTS

    data = bytearray(itch.generate(None, messages=20_000, symbols=3, seed=8))
    first = itch.symbol_names(3)[0]
    at = {t.encode(): next((f.offset for f in lay.fields if f.name == "stock"), None)
          for t, lay in LAYOUTS.items()}
    pos = 0
    while pos < len(data):                   # locate 2 carries locate 1's name
        m = pos + 2
        off = at.get(bytes(data[m:m + 1]))
        if off is not None and int.from_bytes(data[m + 1:m + 3], "big") == 2:
            data[m + off:m + off + 8] = first.ljust(8).encode()
        pos = m + int.from_bytes(data[pos:m], "big")
    path = tmp_path / "shared.itch"
    path.write_bytes(bytes(data))
    r = itch.replay_file(path)
    assert r.symbols[1] == r.symbols[2] == first and len(r.books[1]) != len(r.books[2])
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", first, "--no-progress")
    assert code == 1 and not out.strip()
    assert f"carried by locates 1, 2: give one of {first}@locate1, {first}@locate2" in err
    for sym in (f"{first}@locate2", "2"):
        code, out, _ = run_cli(capsys, "book", str(path), "--symbol", sym, "--no-progress")
        assert code == 0 and out.startswith(f"{first} (locate 2) at end of file")
        assert f": {len(r.books[2]):,} orders" in out
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", f"{first}@locate3",
                             "--no-progress")
    assert code == 1 and "locate 3 is 'AMZN'" in err
    code, out, _ = run_cli(capsys, "replay", str(path), "--no-progress")
    assert f"books: 3: {first}@locate1, {first}@locate2, AMZN;" in out


def renamed_mid_day(tmp_path, renames: dict, name: str = "renamed.itch"):
    """A generated 3-symbol day (AAPL, MSFT, AMZN at locates 1-3) with stock directory messages
    renaming ``renames`` ({locate: name}) in its middle, long after every locate's first order,
    written to ``tmp_path / name``. Returns its path and the plain replay of it."""
    data = itch.generate(None, messages=20_000, symbols=3, seed=8)
    pos = 0
    while pos < len(data) // 2:
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    path = tmp_path / name
    path.write_bytes(data[:pos] + b"".join(stock_directory(L, n) for L, n in renames.items())
                     + data[pos:])
    r = itch.replay_file(path)
    assert r.first_names == {1: "AAPL", 2: "MSFT", 3: "AMZN"}
    return path, r


def test_replay_symbols_label_of_locate_renamed_after_first_order_keeps_its_book(
        tmp_path, capsys):
    # locate 2 is MSFT at its first order and named AAPL (locate 1's name) mid-day: the summary
    # and book --symbol call its book AAPL@locate2, but --symbols AAPL@locate2 kept no book,
    # without a word (the label was matched against the name at the first order)
    path, r = renamed_mid_day(tmp_path, {2: "AAPL"})
    assert r.symbols == {1: "AAPL", 2: "AAPL", 3: "AMZN"}
    code, out, _ = run_cli(capsys, "book", str(path), "--symbol", "AAPL@locate2", "--no-progress")
    assert code == 0 and out.startswith("AAPL (locate 2) at end of file")
    assert f": {len(r.books[2]):,} orders" in out
    csv_path = tmp_path / "book.csv"
    code, out, err = run_cli(capsys, "replay", str(path), "--symbols", "AAPL@locate2",
                             "--dump-book", str(csv_path), "--no-progress")
    assert code == 0, err
    assert f"books: 1: AAPL; open orders: {len(r.books[2]):,}" in out and "note:" not in out
    assert_dump_is_book(csv_path, r.books[2], 2)
    lib = itch.replay_file(path, symbols=["AAPL@locate2"])
    assert sorted(lib.books) == [2]
    assert lib.book("AAPL@locate2").state_hash() == r.books[2].state_hash()
    # the label of its first name: its locate ends the replay as AAPL, refused as book does
    code, out, err = run_cli(capsys, "replay", str(path), "--symbols", "MSFT@locate2",
                             "--no-progress")
    assert code == 1 and "no book 'MSFT@locate2' in this file: locate 2 is 'AAPL'" in err
    assert "books:" not in out


def test_replay_symbols_name_renamed_after_first_order_noted_not_silent(tmp_path, capsys):
    # a name selects a locate by the name it has at its first order, the summary names books
    # by their last one: --symbols MSFT kept locate 2 (renamed AAPL) and said "no symbol named
    # MSFT"; --symbols AAPL left locate 2's book out without a word
    path, r = renamed_mid_day(tmp_path, {2: "AAPL"})
    code, out, _ = run_cli(capsys, "replay", str(path), "--symbols", "MSFT", "--no-progress")
    assert code == 0 and "books: 1: AAPL;" in out and "no symbol named" not in out
    assert ("note: locate 2 was kept as 'MSFT', its name at its first order, and is named "
            "'AAPL' in the end") in out
    code, out, _ = run_cli(capsys, "replay", str(path), "--symbols", "AAPL", "--no-progress")
    assert code == 0 and f"books: 1: AAPL; open orders: {len(r.books[1]):,}" in out
    assert ("note: locate 2 is named 'AAPL' only after its first order (then 'MSFT'): no book "
            "kept; AAPL@locate2 keeps it") in out
    # book names books as the summary does: MSFT is no book, and the error says where it went
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", "MSFT", "--no-progress")
    assert code == 1 and not out
    assert ("no symbol 'MSFT' in this file; symbols seen: AAPL, AMZN; locate 2 was named 'MSFT' "
            "at its first order, and is 'AAPL' in the end (--symbol AAPL@locate2)") in err


def test_book_symbol_name_given_after_first_order_shows_its_book_not_empty(tmp_path, capsys):
    # locate 1 is AAPL at its first order and renamed NEWNAME mid-day: book --symbol NEWNAME
    # found the name in the end but no book (the filter had left the locate out) and showed
    # an empty ladder
    path, r = renamed_mid_day(tmp_path, {1: "NEWNAME"})
    assert len(r.books[1]) > 0
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", "NEWNAME", "--no-progress")
    assert code == 0, err
    assert out.startswith("NEWNAME (locate 1) at end of file")
    assert f": {len(r.books[1]):,} orders" in out
    bids, _ = r.books[1].depth_orders(1)
    assert f"{bids[0][0] / 1e4:>11.4f} |" in out
    # from a FIFO, which cannot be read again for it: refused, naming the label that keeps it
    data = path.read_bytes()
    with slow_fifo_writer(tmp_path / "live.itch", data, b"") as (seen, _):
        seen.set()
        code, out, err = run_cli(capsys, "book", str(tmp_path / "live.itch"), "--symbol",
                                 "NEWNAME", "--no-progress")
    assert code == 1 and not out
    assert ("locate 1 is named 'NEWNAME' only after its first order (then 'AAPL'): give "
            "--symbol NEWNAME@locate1") in err


def test_replay_many_files_labels_checked_and_missing_symbols_noted_as_one_file(
        tmp_path, capsys, day):
    # several files: a label whose locate carries another name (or none) was not refused
    # (its books were summed up and dumped under it), and a name or number no file holds was
    # not noted, where one file's replay refuses and notes them
    path, r = renamed_mid_day(tmp_path, {2: "AAPL"})
    other = tmp_path / "other.itch"
    other.write_bytes(itch.generate(None, messages=3_000, symbols=2, seed=1))
    assert itch.replay_file(other).symbols == {1: "AAPL", 2: "MSFT"}
    for label, why in (("AAPL@locate2", "locate 2 is 'MSFT'"),
                       ("AAPL@locate9", "locate 9 does not occur")):
        code, out, err = run_cli(capsys, "replay", str(path), str(other), "--symbols", label,
                                 "--dump-book", str(tmp_path / "no.csv"), "--no-progress")
        assert code == 1 and f"error: no book {label!r} in {other}: {why}" in err, err
        assert "replayed" not in out and not (tmp_path / "no.csv").exists()
    copy = tmp_path / "copy.itch"
    copy.write_bytes(path.read_bytes())
    csv_path = tmp_path / "book.csv"
    code, out, err = run_cli(capsys, "replay", str(path), str(copy), "--symbols",
                             "AAPL@locate2,NOPE,77,MSFT", "--dump-book", str(csv_path),
                             "--no-progress")
    assert code == 0, err
    for f in (path, copy):
        assert f"note: no symbol named NOPE in {f}" in out
        assert f"note: no symbol numbered 77 in {f}" in out
        assert (f"note: locate 2 of {f} was kept as 'MSFT', its name at its first order, and "
                f"is named 'AAPL' in the end") in out
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert {row["locate"] for row in rows} == {"2"}
    code, out, err = run_cli(capsys, "replay", str(path), str(day), "--symbols", "AMZN",
                             "--no-progress")
    assert code == 0 and "note:" not in out, out


def _numeric_names_day(tmp_path):
    """A generated day with numeric stock codes, as some ITCH venues use: locate 2 is the
    stock named "5", and the name TEST is carried by locates 4 and 5. Returns its path and
    its replay."""
    data = with_names(itch.generate(None, messages=20_000, symbols=5, seed=8),
                       {2: "5", 4: "TEST", 5: "TEST"})
    path = tmp_path / "numeric.itch"
    path.write_bytes(data)
    return path, itch.replay_file(path)


def test_book_label_of_locate_whose_number_another_stock_is_named_shows_that_locate(
        tmp_path, capsys):
    # numeric stock codes (as some ITCH venues use): locate 2 is the stock named "5", and
    # the name TEST is carried by locates 4 and 5
    path, r = _numeric_names_day(tmp_path)
    assert r.symbols[2] == "5" and r.symbols[4] == r.symbols[5] == "TEST"
    assert len({len(r.books[L]) for L in (2, 4, 5)}) == 3
    for sym, loc in (("TEST@locate5", 5), ("TEST@locate4", 4)):
        code, out, err = run_cli(capsys, "book", str(path), "--symbol", sym, "--no-progress")
        # TEST@locate5 showed the stock named 5 (locate 2)
        assert code == 0 and out.startswith(f"TEST (locate {loc}) at end of file"), out + err
        assert f": {len(r.books[loc]):,} orders" in out
        bids, _ = r.books[loc].depth_orders(1)
        assert f"{bids[0][0] / 1e4:>11.4f} |" in out


def test_book_numeric_name_is_the_stock_so_named_whatever_the_locate_numbers(tmp_path, capsys):
    # Replayer.book("5") took the first locate in number order named 5 *or* numbered 5: with
    # the stock named 5 at locate 2 it was that stock, at locate 7 it was locate 5 (TEST), and
    # book --symbol 5 showed TEST's ladder; "007" (locate 7 in symbols=) was no book at all
    data = with_names(itch.generate(None, messages=20_000, symbols=7, seed=8),
                       {5: "TEST", 7: "5"})
    path = tmp_path / "numeric7.itch"
    path.write_bytes(data)
    r = itch.replay_file(path)
    books = r.books
    assert r.symbols[5] == "TEST" and r.symbols[7] == "5"
    assert len(books[5]) != len(books[7])
    assert r.book("5") is books[7] and r.book("TEST") is books[5]
    assert r.book(5) is books[5] and r.book("TEST@locate5") is books[5]
    assert r.book("007") is books[7] and r.book("5@locate7") is books[7]
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", "5", "--no-progress")
    assert code == 0 and out.startswith("5 (locate 7) at end of file"), out + err
    assert f": {len(books[7]):,} orders" in out
    # the other numbering (the stock named 5 below locate 5) gives the stock named 5 too
    _, r2 = _numeric_names_day(tmp_path)
    assert r2.book("5") is r2.books[2]


def test_replay_plot_two_books_of_one_name_or_file_name_each_its_own_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import struct

    from matchcore.replay_plots import plot_replay

    def msg(t, loc, body, ts):
        m = struct.pack(">cHH", t, loc, 0) + ts.to_bytes(6, "big") + body
        return len(m).to_bytes(2, "big") + m

    # locates 1 and 2 carry one name, 3 and 4 names that make one file name
    stock = {1: b"TEST", 2: b"TEST", 3: b"BRK A", 4: b"BRK_A"}
    data = b"".join(msg(b"A", loc, struct.pack(">QcI8sI", 10 * loc + i, b"BS"[i % 2:i % 2 + 1],
                                               100, stock[loc].ljust(8), 1000 + 10 * i), i + 1)
                    for loc in stock for i in range(4))
    path = tmp_path / "names.itch"
    path.write_bytes(data)
    code, out, _ = run_cli(capsys, "replay", str(path), "--no-progress", "--plot",
                           str(tmp_path / "plots"), "--plot-top", "4")
    assert code == 0, out
    pngs = sorted(x.name for x in (tmp_path / "plots").iterdir())
    # both books of TEST went to TEST.png, the second drawn over the first
    assert pngs == ["BRK_A-4.png", "BRK_A.png", "TEST_locate1.png", "TEST_locate2.png"]
    r = itch.replay_file(path)
    again = plot_replay(tmp_path / "again", r.tob(), r.trades(), r.symbols, price_scale=1e4,
                        top=4)
    assert len({p.name for p in again}) == 4


def test_replay_many_files_plot_two_books_of_one_name_under_their_labels(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    # several files: the two books of a name were drawn as TEST.png and TEST-2.png, both
    # titled TEST, where one file's replay draws them under their labels
    path, _ = renamed_mid_day(tmp_path, {2: "AAPL"})
    other = tmp_path / "other.itch"
    other.write_bytes(itch.generate(None, messages=3_000, symbols=1, seed=1))
    code, out, _ = run_cli(capsys, "replay", str(path), str(other), "--no-progress", "--plot",
                           str(tmp_path / "plots"), "--plot-top", "3")
    assert code == 0, out
    pngs = sorted(x.name for x in (tmp_path / "plots").iterdir())
    assert [p for p in pngs if p.startswith("renamed-")] == [
        "renamed-AAPL_locate1.png", "renamed-AAPL_locate2.png", "renamed-AMZN.png"]
    assert pngs[0] == "other-AAPL.png"


def test_plot_replay_file_name_taken_by_another_symbols_suffixed_name_each_its_own_png(
        tmp_path):
    pytest.importorskip("matplotlib")
    from matchcore.itch import TOB_DTYPE
    from matchcore.replay_plots import plot_replay

    # BRK_A-5 is drawn first (busiest), then BRK_A, then BRK A, whose file name BRK_A is
    # taken and whose suffixed one BRK_A-5 too
    names = {6: "BRK_A-5", 4: "BRK_A", 5: "BRK A"}
    rows = [(L, 30 - 10 * i) for i, L in enumerate(names)]
    tob = np.zeros(sum(n for _, n in rows), TOB_DTYPE)
    at = 0
    for L, n in rows:
        tob["locate"][at:at + n] = L
        tob["ts"][at:at + n] = np.arange(n) + 1
        tob["bid"][at:at + n] = 1000 + L
        tob["ask"][at:at + n] = 1010 + L
        at += n
    trades = np.zeros(0, itch.TRADE_DTYPE)
    paths = plot_replay(tmp_path, tob, trades, names, price_scale=1e4, top=3)
    assert [p.name for p in paths] == ["BRK_A-5.png", "BRK_A.png", "BRK_A-5-2.png"]
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_replay_symbols_book_label_keeps_that_book_label_of_other_name_refused(
        tmp_path, capsys):
    # locate 2 carries locate 1's name: `--symbols NAME@locate2` kept no book at all (the
    # label was looked up as a name), though the summary and book --symbol use that label
    first = itch.symbol_names(3)[0]
    data = with_names(itch.generate(None, messages=20_000, symbols=3, seed=8), {2: first})
    path = tmp_path / "shared.itch"
    path.write_bytes(data)
    r = itch.replay_file(path)
    assert r.symbols[1] == r.symbols[2] == first and len(r.books[1]) != len(r.books[2])
    csv_path = tmp_path / "book.csv"
    code, out, err = run_cli(capsys, "replay", str(path), "--symbols", f"{first}@locate002",
                             "--dump-book", str(csv_path), "--no-progress")
    assert code == 0, err
    assert f"books: 1: {first};" in out and "note:" not in out
    assert_dump_is_book(csv_path, r.books[2], 2)
    # the library takes the label as well: it keeps the label's locate, and its book() takes
    # the label only while the locate carries that name
    assert sorted(itch.replay_file(path, symbols=[f"{first}@locate2"]).books) == [2]
    assert sorted(itch.replay_file(path, symbols=[f"{first}@locate1", "AMZN"]).books) == [1, 3]
    other = itch.replay_file(path, symbols=[f"{first}@locate3"])
    assert sorted(other.books) == [3]
    with pytest.raises(KeyError):
        other.book(f"{first}@locate3")
    # a label whose locate carries another name, or does not occur: refused as book does
    for label, why in ((f"{first}@locate3", "locate 3 is 'AMZN'"),
                       (f"{first}@locate9", "locate 9 does not occur")):
        code, out, err = run_cli(capsys, "replay", str(path), "--symbols", f"AMZN,{label}",
                                 "--dump-book", str(tmp_path / "no.csv"), "--no-progress")
        assert code == 1 and f"error: no book {label!r} in this file: {why}" in err
        assert "books:" not in out and not (tmp_path / "no.csv").exists()
        code, _, err = run_cli(capsys, "book", str(path), "--symbol", label, "--no-progress")
        assert code == 1 and f"no book {label!r} in this file: {why}" in err


@pytest.mark.parametrize("given", ["", ",", " , "])
def test_replay_symbols_naming_nothing_refused_not_all_or_none(capsys, day, given):
    # --symbols "" replayed every symbol and --symbols , none, both without a word
    code, out, err = run_cli(capsys, "replay", str(day), "--symbols", given, "--no-progress")
    assert code == 1 and "--symbols" in err and "names nothing" in err and "books:" not in out


def test_replay_symbols_label_of_locate_another_stock_is_named_keeps_that_book_only(
        tmp_path, capsys):
    # numeric stock codes: locate 2 is the stock named "5", TEST is carried by locates 4
    # and 5; TEST@locate5 also kept the stock named 5 (the label's locate taken as a number)
    path, r = _numeric_names_day(tmp_path)
    csv_path = tmp_path / "book.csv"
    code, out, err = run_cli(capsys, "replay", str(path), "--symbols", "TEST@locate5",
                             "--dump-book", str(csv_path), "--no-progress")
    assert code == 0, err
    assert "books: 1: TEST;" in out
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    bids, asks = r.books[5].depth_orders(1 << 20)
    assert {row["locate"] for row in rows} == {"5"} and len(rows) == len(bids) + len(asks)


def test_replay_book_named_by_trading_action_before_orders_stock_directory_renames():
    # The README said books are named by the stock directory message, else by the first order
    # or trade: a trading action message (H) names a locate no stock directory has named yet
    import struct

    def frame(body):
        return struct.pack(">H", len(body)) + body

    def trading_action(loc, name):
        return frame(b"H" + struct.pack(">HH", loc, 0) + bytes(6) + name.ljust(8).encode()
                     + b"T" + b" " + b"    ")

    def add(loc, ref, name):
        return frame(b"A" + struct.pack(">HH", loc, 0) + bytes(6) + struct.pack(">Q", ref)
                     + b"B" + struct.pack(">I", 100) + name.ljust(8).encode()
                     + struct.pack(">I", 10000))

    def names(data):
        r = itch.Replayer()
        r.finish(data[r.feed(data):])
        return r.symbols

    data = trading_action(5, "HNAME") + add(5, 1, "ANAME") + trading_action(5, "LATER") \
        + add(6, 2, "ONLY") + trading_action(6, "LATER")
    assert names(data) == {5: "HNAME", 6: "ONLY"}
    assert names(data + stock_directory(5, "RNAME"))[5] == "RNAME"
    assert names(stock_directory(5, "RNAME") + data)[5] == "RNAME"
    # the reference model names books by the same rules: it took no name from H, P or Q, kept
    # a field's trailing NULs and other whitespace, and gave an empty field as ""
    trade = frame(b"P" + struct.pack(">HH", 7, 0) + bytes(6) + struct.pack(">Q", 0) + b"B"
                  + struct.pack(">I", 5) + b"TRADED  " + struct.pack(">I", 10000)
                  + struct.pack(">Q", 1))
    data += trade + add(7, 3, "LATER") + add(8, 4, "NUL\0\0\0\0\t") + add(9, 5, "")
    ref = ReferenceReplay()
    ref.feed(data)
    assert ref.names == names(data) == \
        {5: "HNAME", 6: "ONLY", 7: "TRADED", 8: "NUL\0\0\0\0\t", 9: "9"}


def test_name_with_leading_space_one_book_of_the_name_as_its_label_says(tmp_path, capsys):
    # the summary labels " AAPL" and "AAPL" AAPL@locate2 and AAPL@locate1 (the name a NATS
    # subject carries): the labels it prints are taken back, by r.book, book --symbol and
    # replay --symbols, and the bare name is refused naming them, as for any shared name
    path = spaced_name_day(tmp_path)
    r = itch.replay_file(path)
    assert r.book("AAPL@locate2") is r.books[2] and r.book("AAPL@locate1") is r.books[1]
    for name in ("AAPL", " AAPL"):
        with pytest.raises(ValueError, match="AAPL@locate1, AAPL@locate2"):
            r.book(name)
    code, out, err = run_cli(capsys, "replay", str(path), "--symbols", "AAPL@locate2",
                             "--no-progress")
    assert code == 0 and "books: 1: AAPL;" in out, err
    code, out, err = run_cli(capsys, "replay", str(path), "--symbols", "AAPL", "--no-progress")
    assert code == 0 and "books: 2: AAPL@locate1, AAPL@locate2;" in out, err
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", "AAPL@locate2",
                             "--no-progress")
    assert code == 0 and "(locate 2)" in out.splitlines()[0], err
    seen = []
    itch.replay_file(path, callback=lambda sym, book, ts: seen.append(sym), callback_every=1000)
    assert {"AAPL@locate1", "AAPL@locate2"} <= set(seen) and " AAPL" not in seen


def test_callback_labels_a_name_with_spaces_whose_book_comes_after_the_first_call():
    # A book made after the callback's names were taken (no stock directory message since) was
    # counted under its raw name " AAPL" but looked up as "AAPL": the second book of AAPL was
    # called plain "AAPL", like the first, instead of AAPL@locate2
    import struct

    def add(loc, ref, stock):
        body = struct.pack(">QcI8sI", ref, b"B", 100, stock.ljust(8), 1000 + ref)
        m = struct.pack(">cHH", b"A", loc, 0) + (ref).to_bytes(6, "big") + body
        return len(m).to_bytes(2, "big") + m

    data = (stock_directory(1, "AAPL") + stock_directory(2, " AAPL") + add(1, 1, b"AAPL")
            + add(1, 2, b"AAPL") + add(2, 3, b" AAPL") + add(2, 4, b" AAPL"))
    seen = []
    r = itch.Replayer(callback=lambda sym, book, ts: seen.append(sym), callback_every=1)
    assert r.feed(data) == len(data)
    r.finish(b"")
    assert seen[:2] == ["AAPL", "AAPL"]               # one book of the name so far
    assert seen[2:] == ["AAPL@locate2", "AAPL@locate2"]


@pytest.mark.parametrize("given, fmt, limit", [("70000", "itch", 65535),
                                               ("AAPL,65536", "itch", 65535),
                                               ("AAPL@locate70000", "itch", 65535),
                                               ("4294967296", "dbn", 4294967295)])
def test_replay_symbols_number_outside_the_formats_ids_refused_before_input(
        tmp_path, capsys, day, given, fmt, limit):
    # --symbols 70000 replayed the ITCH file into no book, exit 0, with a note at the end
    if fmt == "dbn":
        pytest.importorskip("databento_dbn")
        from matchcore.feeds.dbn_gen import generate_mbo

        path = generate_mbo(tmp_path / "day.dbn", records=500, instruments=2, seed=3)
    else:
        path = day
    bad = given.split(",")[-1]
    for files in ([path], copies(path, 2)):
        code, out, err = run_cli(capsys, "replay", *map(str, files), "--symbols", given,
                                 "--no-progress")
        assert code == 1 and out == ""
        assert f"error: --symbols holds {bad!r}, " in err and f"outside 0..{limit}" in err
    bad = bad.rpartition("@locate")[2]
    if fmt == "itch":
        for symbol in (bad, f"AAPL@locate{bad}"):
            code, out, err = run_cli(capsys, "book", str(path), "--symbol", symbol,
                                     "--no-progress")
            assert code == 1 and out == ""
            assert f"error: --symbol holds {bad!r}, outside 0..{limit}" in err


@pytest.mark.parametrize("given", ["\u0661\u0663", "\u00b2"])
def test_replay_symbols_name_of_other_scripts_digits_the_file_lacks_noted(capsys, day, given):
    # digits of another script ("١٣") or a superscript ("²", a latin-1 byte a stock field
    # can hold) are a name to the filter, not a locate number: the name selected no book, and
    # neither note said so (the name note skipped every str.isdigit() entry, the number note
    # every one that is not ASCII)
    code, out, _ = run_cli(capsys, "replay", str(day), "--symbols", f"{given},NOPE",
                           "--no-progress")
    assert code == 0 and "books: 0;" in out
    assert f"note: no symbol named {given}, NOPE in this file" in out


def test_replay_symbols_name_kept_with_surrounding_spaces_not_noted_missing(tmp_path, capsys):
    # locate 2 named " MSFT": --symbols MSFT keeps its book (names are compared without
    # surrounding spaces), and the notes said "no symbol named MSFT in this file" beside it
    path = tmp_path / "spaced.itch"
    path.write_bytes(with_names(itch.generate(None, messages=5_000, symbols=3, seed=4),
                                {2: " MSFT"}))
    code, out, err = run_cli(capsys, "replay", str(path), "--symbols", "MSFT,NOPE",
                             "--no-progress")
    assert code == 0 and "books: 1: MSFT;" in out, err
    assert "note: no symbol named NOPE in this file" in out
    assert "MSFT in this file" not in out
    # several files: the same notes, each naming its file
    other = tmp_path / "plain.itch"
    other.write_bytes(itch.generate(None, messages=5_000, symbols=1, seed=4))
    code, out, err = run_cli(capsys, "replay", str(path), str(other), "--symbols", "MSFT",
                             "--no-progress")
    assert code == 0, err
    assert f"note: no symbol named MSFT in {other}" in out
    assert f"MSFT in {path}" not in out


@pytest.mark.parametrize("stock", ["ZZZ", " ZZZ"])
def test_book_symbol_named_with_spaces_no_order_yet_empty_ladder_as_without(tmp_path, capsys,
                                                                           stock):
    # a locate named " ZZZ" by its stock directory message, with no order: book --symbol ZZZ
    # said "no symbol 'ZZZ' in this file; symbols seen:  ZZZ, ..." (exit 1), where the name
    # without spaces showed its empty ladder, as --symbols and r.book compare names
    path = tmp_path / "late.itch"
    path.write_bytes(itch.generate(None, messages=2_000, symbols=2, seed=4)
                     + stock_directory(9, stock))
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", "ZZZ", "--no-progress")
    assert code == 0 and err == "", err
    assert out.splitlines()[0].startswith(f"{stock} (locate 9) at end of file")
    assert "0 orders, 0 bid / 0 ask levels" in out.splitlines()[0]


def test_book_name_two_locates_carry_with_and_without_spaces_refused_naming_labels(tmp_path,
                                                                                   capsys):
    # " MSFT" (locate 9, no order yet) and MSFT (locate 2) are one name, two locates: the
    # ladder of one of them was shown under it, as if the name had one book
    path = tmp_path / "two.itch"
    path.write_bytes(itch.generate(None, messages=2_000, symbols=2, seed=4)
                     + stock_directory(9, " MSFT"))
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", "MSFT", "--no-progress")
    assert code == 1 and "MSFT@locate2, MSFT@locate9" in err, out


def test_replay_plot_name_with_dollar_signs_titled_as_written(tmp_path, capsys, monkeypatch):
    # a stock field holding two '$' was read by matplotlib as mathtext: "$\alp$" ended the
    # replay with exit 1 (a ParseFatalException) after the summary, its PNG not written
    pytest.importorskip("matplotlib")
    from cli_replay_checks import record_titles, with_names

    path = tmp_path / "dollar.itch"
    path.write_bytes(with_names(itch.generate(None, messages=5_000, symbols=2, seed=3),
                                {1: "$\\alp$", 2: "$X$"}))
    titles = record_titles(monkeypatch)
    code, out, err = run_cli(capsys, "replay", str(path), "--no-progress", "--plot",
                             str(tmp_path / "plots"), "--plot-top", "2")
    assert code == 0, err
    assert sorted(x.name for x in (tmp_path / "plots").iterdir()) == ["_X_.png", "_alp_.png"]
    assert sorted(titles) == [("$X$: top of book, spread and traded volume", False),
                              ("$\\alp$: top of book, spread and traded volume", False)]
