"""Symbol names over NATS against a real ``nats-server -js``: two locates carrying one name, names
renamed during the day, names whose subject tokens once collided, and book labels."""
from __future__ import annotations

import re

import numpy as np
import pytest

import matchcore.itch as itch
from matchcore.__main__ import main
from cli_replay_checks import spaced_name_day, with_names
from nats_checks import (assert_consumer_is_replay, book_levels, cli_publish_day, feed_chunks,
                         itch_a, itch_e, itch_r, need_nats, renamed_after_first_chunk,
                         subscribe_symbols_of_day)
from nats_checks import names, server, shared_day  # noqa: F401  (fixtures)


def test_replay_symbols_sharing_old_token_stay_apart_looked_up_by_name(server, names, tmp_path):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    msgs = [itch_r(1, "BRK.A"), itch_r(2, "BRK_A")]
    rng = np.random.default_rng(0)
    for i in range(3000):                  # two interleaved books at very different prices
        loc = 1 + i % 2
        side = b"B" if rng.random() < 0.5 else b"S"
        base = 600_000_000 if loc == 1 else 4_000_000
        off = int(rng.integers(1, 6)) * 100 * (-1 if side == b"B" else 1)
        msgs.append(itch_a(loc, i + 1, side, 100, "BRK.A" if loc == 1 else "BRK_A", base + off,
                            i))
    path = tmp_path / "collide.itch"
    path.write_bytes(b"".join(msgs))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        r = itch.replay_file(path, record_l2=True, on_chunk=ReplayPublisher(pub, max_batch=100))
    assert sorted(r.symbols.values()) == ["BRK.A", "BRK_A"]
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.symbols() == ["BRK.A", "BRK_A"] and not c.missing
    for name in ("BRK.A", "BRK_A"):
        book = r.book(name)
        assert c.depth(name) == book_levels(book)
        bb, ba = book.best_bid(), book.best_ask()
        assert c.tob[name][1:] == (bb[0], bb[1], ba[0], ba[1])
    one = consume(server.url, stream=stream, prefix=prefix, symbols=["BRK.A"], timeout=60)
    assert one.symbols() == ["BRK.A"] and one.depth("BRK.A") == book_levels(r.book("BRK.A"))


# ---- two locates carrying one symbol name ----

def _publish_shared_day(server, stream, prefix, shared_day):
    # the shared-name day replayed into the stream in many batches per subject, the batches
    # kept: (the replay, its bridge, the publisher)
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub, max_batch=200, keep=True)
        feed_chunks(r, shared_day, bridge, chunk=50_000)
    return r, bridge, pub


def test_replay_two_locates_one_name_consumer_rebuilds_both_books_nothing_lost(
        server, names, shared_day):
    from matchcore.io.nats import consume

    stream, prefix = names
    first, _, third, _ = itch.symbol_names(4)
    r, bridge, pub = _publish_shared_day(server, stream, prefix, shared_day)
    assert r.symbols[1] == r.symbols[2] == first and r.symbols[3] == third
    assert len(r.books[1]) and len(r.books[2])
    assert pub.stats["published"] == bridge.batches
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    # every batch applied (the second book's were dropped as redeliveries), none missing
    assert c.batches == bridge.batches and c.records == bridge.records
    assert not c.missing and c.bad == 0
    assert bridge.shared() == {first: [1, 2]}              # the re-announced locate is one book
    assert c.locates[first] == {1, 2} and c.locates[third] == {3}
    assert f"{first}@locate1" in c.symbols() and third in c.symbols() and first not in list(c.tob)
    assert_consumer_is_replay(c, r, bridge.kept()["trades"])
    # the name selects every book published under it
    one = consume(server.url, stream=stream, prefix=prefix, symbols=[first], timeout=60)
    assert one.symbols() == [f"{first}@locate1", f"{first}@locate2"] and not one.missing
    assert one.depth(f"{first}@locate2") == book_levels(r.books[2])


def test_cli_replay_publish_two_locates_one_name_noted_subscribe_shows_both(
        server, names, shared_day, tmp_path, capsys):
    stream, prefix = names
    first = itch.symbol_names(4)[0]
    path = tmp_path / "shared.itch"
    path.write_bytes(shared_day)
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{first}@locate1, {first}@locate2" in out          # the summary's books
    assert f"note: symbol {first} is carried by locates 1, 2" in out
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", first])
    out = capsys.readouterr().out
    assert code == 0, out
    r = itch.replay_file(path)
    for loc in (1, 2):
        bb, ba = r.books[loc].best_bid(), r.books[loc].best_ask()
        assert (f"{first}@locate{loc} bid {bb[0] / 1e4:.4f} x {bb[1]:,}  "
                f"ask {ba[0] / 1e4:.4f} x {ba[1]:,}") in out
    assert "missing (sequence gaps) 0 records" in out


def test_consume_book_label_keeps_that_book_of_a_shared_name_nothing_missing(
        server, names, shared_day, capsys):
    from matchcore.io.nats import consume

    stream, prefix = names
    first = itch.symbol_names(4)[0]
    r, bridge, _ = _publish_shared_day(server, stream, prefix, shared_day)
    trades = bridge.kept()["trades"]
    c = consume(server.url, stream=stream, prefix=prefix, symbols=[f"{first}@locate2"],
                timeout=60)
    assert c.symbols() == [f"{first}@locate2"] and not c.missing
    assert c.depth(f"{first}@locate2") == book_levels(r.books[2])
    mine = trades[trades["locate"] == 2]
    assert c.trades[f"{first}@locate2"] == [len(mine), int(mine["shares"][itch.volume_mask(mine)].sum())]
    # a label with leading zeros in the locate, and the label of a book the name lacks
    c = consume(server.url, stream=stream, prefix=prefix,
                symbols=[f"{first}@locate01", f"{first}@locate3"], kinds=["l2"], timeout=60)
    assert c.symbols() == [f"{first}@locate1"] and not c.missing
    assert c.depth(f"{first}@locate1") == book_levels(r.books[1])
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", f"{first}@locate2", "--kinds", "tob"])
    out = capsys.readouterr().out
    bb, ba = r.books[2].best_bid(), r.books[2].best_ask()
    assert code == 0 and "missing (sequence gaps) 0 records" in out
    assert (f"{first}@locate2 bid {bb[0] / 1e4:.4f} x {bb[1]:,}  "
            f"ask {ba[0] / 1e4:.4f} x {ba[1]:,}") in out and f"{first}@locate1" not in out


def test_replay_publisher_second_replayer_refused_nothing_published_under_first_names(
        server, names):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    one = itch.generate(None, messages=10_000, symbols=3, seed=1)
    # another day whose locates 1 and 3 carry each other's names of the first day
    two = with_names(itch.generate(None, messages=10_000, symbols=3, seed=2),
                      {1: "AMZN", 3: "AAPL"})
    r1, r2 = itch.Replayer(record_l2=True), itch.Replayer(record_l2=True)
    r1.feed(one)
    r1.finish()
    r2.feed(two)
    r2.finish()
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub)
        bridge(r1)
        batches = bridge.batches
        with pytest.raises(ValueError, match="publishes one replay"):
            bridge(r2)
        assert bridge.batches == batches and len(r2.tob())     # r2's sinks not drained
        ReplayPublisher(pub)(r2)                               # the way: a new session
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert r2.symbols == {1: "AMZN", 2: "MSFT", 3: "AAPL"}
    for loc, book in r2.books.items():
        bb, ba = book.best_bid(), book.best_ask()
        assert c.tob[r2.symbols[loc]][1:] == (bb[0], bb[1], ba[0], ba[1])
        assert c.depth(r2.symbols[loc]) == book_levels(book)


def test_cli_replay_publish_locate_renamed_mid_day_noted_book_whole_under_first_name(
        server, names, tmp_path, capsys):
    from matchcore.io.nats import consume

    stream, prefix = names
    # past the first 4 MiB chunk: the replay's first batches are published by then
    path = renamed_after_first_chunk(tmp_path, {1: "NEWNAME"})
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix])
    out = capsys.readouterr().out
    assert code == 0, out
    # the summary names the book NEWNAME, the subscriber found it under AAPL, unexplained
    assert (f"note: locate 1 was renamed AAPL -> NEWNAME during the replay: its book was "
            f"published on the subjects of AAPL ({prefix}.*.AAPL)") in out
    r = itch.replay_file(path)
    assert r.symbols[1] == "NEWNAME"
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.symbols() == ["AAPL", "MSFT"] and not c.missing
    bb, ba = r.books[1].best_bid(), r.books[1].best_ask()
    assert c.tob["AAPL"][1:] == (bb[0], bb[1], ba[0], ba[1])


def _publish_chunks(server, stream, prefix, chunks):
    """A replay fed ``chunks`` (whole messages each), published after every chunk and at the
    end through one ReplayPublisher; returns the replayer and the publisher."""
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub)
        for chunk in chunks:
            r.feed(chunk)
            bridge(r)
        r.finish()
        bridge(r)
    return r, bridge


def test_replay_publisher_kind_first_seen_after_rename_stays_on_first_name_book_whole(
        server, names):
    from matchcore.io.nats import consume

    stream, prefix = names
    # locate 1 publishes top of book and L2 as AAA; then it is renamed BBB and a new locate
    # appears (the publisher looks the names up again); only then does locate 1 trade
    chunks = [itch_r(1, "AAA") + itch_a(1, 1, b"B", 100, "AAA", 10_000, 1)
              + itch_a(1, 2, b"S", 100, "AAA", 10_100, 2),
              itch_r(1, "BBB") + itch_r(2, "CCC") + itch_a(2, 3, b"B", 100, "CCC", 5_000, 3),
              itch_e(1, 1, 40, 7, 4)]
    r, bridge = _publish_chunks(server, stream, prefix, chunks)
    assert r.symbols == {1: "BBB", 2: "CCC"}
    assert bridge.renamed(r.symbols) == {1: ("AAA", "BBB")}
    assert bridge.locates == {"AAA": {1}, "CCC": {2}}
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    # the trade went to BBB's subject: the book split between AAA (top, L2) and BBB (trades)
    assert c.symbols() == ["AAA", "CCC"] and not c.missing
    assert c.trades["AAA"] == [1, 40]
    assert c.tob["AAA"] == (4, 10_000, 60, 10_100, 100)
    assert c.depth("AAA") == book_levels(r.books[1])


def test_cli_replay_publish_name_with_leading_space_shares_subject_noted_subscribe_both(
        server, names, tmp_path, capsys):
    stream, prefix = names
    # locate 2 is " AAPL": subjects ignore leading spaces, so it is published on AAPL's
    path = spaced_name_day(tmp_path)
    r = itch.replay_file(path)
    assert r.symbols[1] == "AAPL" and r.symbols[2] == " AAPL"
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix])
    out = capsys.readouterr().out
    assert code == 0, out
    # the subscriber shows two books of AAPL, and the publisher said nothing of it
    assert (f"note: symbol AAPL is carried by locates 1, 2: their books share the subjects "
            f"{prefix}.*.AAPL") in out
    assert "AAPL@locate1, AAPL@locate2" in out and "renamed" not in out
    assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", "AAPL", "--kinds", "tob"]) == 0
    out = capsys.readouterr().out
    for loc in (1, 2):
        bb, ba = r.books[loc].best_bid(), r.books[loc].best_ask()
        assert (f"AAPL@locate{loc} bid {bb[0] / 1e4:.4f} x {bb[1]:,}  "
                f"ask {ba[0] / 1e4:.4f} x {ba[1]:,}") in out


def _two_books_one_trades(chunked: bool):
    # locates 1 and 2 carry TEST; only locate 1 trades (locate 2's book first appears in a
    # later chunk when ``chunked``)
    one = (itch_r(1, "TEST") + itch_r(2, "TEST") + itch_r(3, "OTHER")
           + itch_a(1, 1, b"B", 100, "TEST", 10_000, 1)
           + itch_a(3, 2, b"B", 100, "OTHER", 5_000, 2) + itch_e(1, 1, 40, 7, 3))
    two = itch_a(2, 3, b"S", 50, "TEST", 20_000, 4)
    return [one, two] if chunked else [one + two]


@pytest.mark.parametrize("chunked", [False, True])
def test_replay_publish_trades_only_locate_without_trades_labels_agree_with_summary(
        server, names, tmp_path, capsys, chunked):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    chunks = _two_books_one_trades(chunked)
    if not chunked:
        path = tmp_path / "two.itch"
        path.write_bytes(chunks[0])
        code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                     "--subject-prefix", prefix, "--publish-kinds", "trade", "--no-progress"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "books: 3: TEST@locate1, TEST@locate2, OTHER;" in out
        assert "note: symbol TEST is carried by locates 1, 2" in out
    else:
        r = itch.Replayer()
        with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
            bridge = ReplayPublisher(pub, kinds=("trade",))
            for chunk in chunks:
                r.feed(chunk)
                bridge(r)
            r.finish()
            bridge(r)
        assert bridge.shared() == {"TEST": [1, 2]}
    # the subscriber only saw locate 1's trade under TEST, and named that book TEST
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.symbols() == ["TEST@locate1"] and not c.missing and not c.out_of_sequence
    assert c.trades == {"TEST@locate1": [1, 40]}
    assert c.locates["TEST"] == {1, 2}
    assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix]) == 0
    out = capsys.readouterr().out
    assert "TEST@locate1" in out and "TEST " not in out.replace("TEST@", "")


@pytest.mark.parametrize("given", ["", ","])
def test_cli_replay_publish_kinds_naming_nothing_refused_nothing_published(
        server, names, tmp_path, capsys, given):
    from matchcore.io.nats import consume

    stream, prefix = names
    path = itch.generate(tmp_path / "d.itch", messages=2000, symbols=2, seed=3)
    # --publish-kinds "" published every kind, as if it were not given
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--publish-kinds", given, "--no-progress"])
    cap = capsys.readouterr()
    assert code == 1 and f"--publish-kinds {given!r} names nothing" in cap.err
    assert "publishing" not in cap.out and "replayed" not in cap.out
    with pytest.raises(Exception, match="not found"):        # no stream was made
        consume(server.url, stream=stream, prefix=prefix, timeout=10)


def test_replay_publisher_locate_renamed_before_its_first_batch_published_under_new_name(
        server, names):
    from matchcore.io.nats import consume

    stream, prefix = names
    # locate 2 is BBB when locate 1's first batch is published, then renamed CCC before its
    # own first order: it went to BBB's subjects, a name it never published under
    chunks = [itch_r(1, "AAA") + itch_r(2, "BBB") + itch_a(1, 1, b"B", 100, "AAA", 10_000, 1),
              itch_r(2, "CCC") + itch_a(2, 2, b"B", 100, "CCC", 5_000, 2)]
    r, bridge = _publish_chunks(server, stream, prefix, chunks)
    assert r.symbols == {1: "AAA", 2: "CCC"} and bridge.renamed(r.symbols) == {}
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.symbols() == ["AAA", "CCC"] and not c.missing
    assert c.tob["CCC"] == (2, 5_000, 100, 0, 0)
    assert c.depth("CCC") == book_levels(r.books[2])


def test_cli_replay_publish_label_naming_no_book_reports_what_was_published(server, names,
                                                                           tmp_path, capsys):
    # a label found after the replay to name no book: the kept locate's book had been
    # published meanwhile, and the command exited 1 without a word about it
    from matchcore.io.nats import consume

    stream, prefix = names
    path = tmp_path / "day.itch"
    itch.generate(path, messages=3000, symbols=2, seed=4)
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--symbols", "AAPL@locate2"])
    cap = capsys.readouterr()
    assert code == 1 and "no book 'AAPL@locate2'" in cap.err
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.symbols() == ["MSFT"]
    n = sum(c.records.values())
    assert f"published: {c.batches:,} of {c.batches:,} batches ({n:,} records" in cap.out


def test_name_with_leading_space_labelled_alike_by_summary_metrics_and_consumer(
        server, names, tmp_path, capsys):
    from matchcore.io import book_labels
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    # " AAPL" shares AAPL's subjects: the subscriber sees two books of one name
    path = spaced_name_day(tmp_path)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        r = itch.replay_file(path, record_l2=True, on_chunk=ReplayPublisher(pub))
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    labels = book_labels(r.symbols, r.books)
    assert sorted(labels.values()) == c.symbols() == ["AAPL@locate1", "AAPL@locate2", "AMZN"]
    assert main(["replay", str(path), "--no-progress"]) == 0
    assert "books: 3: AAPL@locate1, AAPL@locate2, AMZN;" in capsys.readouterr().out


def test_consumer_read_by_label_then_by_name_applies_the_other_books_batches(
        server, names, shared_day):
    from matchcore.io.nats import consume

    stream, prefix = names
    first = itch.symbol_names(4)[0]
    r, bridge, _ = _publish_shared_day(server, stream, prefix, shared_day)
    trades = bridge.kept()["trades"]
    c = consume(server.url, stream=stream, prefix=prefix, symbols=[f"{first}@locate2"],
                timeout=60)
    assert c.symbols() == [f"{first}@locate2"]
    batches = c.batches
    # the same consumer, now the whole name: locate 1's batches were left out, never applied
    consume(server.url, stream=stream, prefix=prefix, symbols=[first], timeout=60,
            consumer=c)
    whole = consume(server.url, stream=stream, prefix=prefix, symbols=[first], timeout=60)
    assert c.symbols() == whole.symbols() == [f"{first}@locate1", f"{first}@locate2"]
    assert c.batches == whole.batches > batches and not c.missing and not c.out_of_sequence
    assert c.records == whole.records
    for loc in (1, 2):
        label = f"{first}@locate{loc}"
        assert c.depth(label) == book_levels(r.books[loc])
        mine = trades[trades["locate"] == loc]
        assert c.trades[label] == [len(mine),
                                   int(mine["shares"][itch.volume_mask(mine)].sum())]
    # and once more: every batch is now a redelivery, nothing applied twice
    consume(server.url, stream=stream, prefix=prefix, timeout=60, consumer=c)
    assert c.trades[f"{first}@locate1"] == whole.trades[f"{first}@locate1"]


@pytest.mark.parametrize("symbols", [[" "], ["", "AAPL"], ["AAPL", "\t"]])
def test_consume_blank_symbol_name_refused_before_connecting(symbols):
    # a blank name selected the subjects of the name "" (token _), which no replay publishes:
    # the read found nothing and returned as from an empty stream, where the replay's
    # symbols= and subscribe --symbols refuse it
    from matchcore.io.nats import consume, filter_subjects, free_port

    need_nats()
    url = f"nats://127.0.0.1:{free_port()}"          # nothing listens: raised before connecting
    with pytest.raises(ValueError, match=r"symbols holds an empty name .*: it selects no "
                                         r"symbol"):
        consume(url, symbols=symbols, timeout=30)
    with pytest.raises(ValueError, match="empty name"):
        filter_subjects("mc", symbols)


def _consumer_with_two_books_of_x():
    from matchcore.io.nats import (KIND_L2, KIND_TOB, KIND_TRADE, WIRE_L2, WIRE_TOB, WIRE_TRADE,
                                   MarketDataConsumer, encode_batch)

    c = MarketDataConsumer()
    for seq, loc in enumerate((4, 9)):
        tob = np.zeros(1, WIRE_TOB)
        tob[0] = (1, 100 + loc, 5, 200, 7)
        level = np.zeros(1, WIRE_L2)
        level[0] = (1, 100 + loc, 5, 1, b"B", b"")
        trade = np.zeros(1, WIRE_TRADE)
        trade[0] = (1, 100 + loc, 3, seq + 1, 7, b"E", b"B", b"Y", b"")
        assert c.apply("mc.tob.X", encode_batch(KIND_TOB, loc, seq, tob)) is None
        assert c.apply("mc.l2.X", encode_batch(KIND_L2, loc, seq, level)) is None
        assert c.apply("mc.trade.X", encode_batch(KIND_TRADE, loc, seq, trade)) is None
    assert c.symbols() == ["X@locate4", "X@locate9"]
    return c


def test_consumer_read_by_a_name_two_books_share_raises_naming_their_labels():
    # depth("X") of a name two locates carry returned an empty book, where the replay's
    # r.book("X") raises naming the labels to ask for; c.tob["X"] a bare KeyError
    c = _consumer_with_two_books_of_x()
    want = "symbol 'X' is carried by locates 4, 9: ask for one of X@locate4, X@locate9"
    with pytest.raises(ValueError, match=want):
        c.depth("X")
    with pytest.raises(ValueError, match=want):
        c.depth("X", 1)
    for books in (c.tob, c.levels, c.trades):
        with pytest.raises(ValueError, match=want):
            books["X"]
    # the labels read each book; a name no book carries is as before
    assert c.depth("X@locate9") == ([(109, 5, 1)], [])
    assert c.tob["X@locate4"][1] == 104 and c.trades["X@locate9"] == [1, 3]
    assert c.depth("Y") == ([], [])
    with pytest.raises(KeyError):
        c.tob["Y"]


@pytest.mark.parametrize("locates", [(4,), (4, 9)])
def test_consumer_read_by_the_name_of_a_label_selection_says_read_it_by_its_label(locates):
    # consume(symbols=["X@locate4"]) keeps that book under its label, also when locate 4
    # alone carries X: c.tob["X"] then said "symbol 'X' is carried by locates 4", as if the
    # name were shared, when the book was kept under the label the read selected it by
    from matchcore.io.nats import KIND_L2, KIND_TOB, WIRE_L2, WIRE_TOB, MarketDataConsumer, \
        encode_batch

    c = MarketDataConsumer()
    assert c.select(["X@locate4"]) == ["X"]
    for seq, loc in enumerate(locates):
        tob = np.zeros(1, WIRE_TOB)
        tob[0] = (1, 100 + loc, 5, 200, 7)
        level = np.zeros(1, WIRE_L2)
        level[0] = (1, 100 + loc, 5, 1, b"B", b"")
        c.apply("mc.tob.X", encode_batch(KIND_TOB, loc, seq, tob))
        c.apply("mc.l2.X", encode_batch(KIND_L2, loc, seq, level))
    assert c.symbols() == ["X@locate4"]
    want = "symbol 'X' was selected by its book label X@locate4: read it by that label"
    with pytest.raises(ValueError, match=want):
        c.depth("X")
    for books in (c.tob, c.levels):
        with pytest.raises(ValueError, match=want):
            books["X"]
    assert c.tob["X@locate4"][1] == 104 and c.depth("X@locate4") == ([(104, 5, 1)], [])


@pytest.mark.parametrize("given", [b"AAPL", 1.0, None, True])
def test_consume_symbol_not_a_name_or_number_refused_before_connecting(given):
    # bytes, a float, None or a bool was read as its str() (b'AAPL', 1.0, None, True): the
    # subjects of a name no replay publishes, and the read found nothing, as from an empty
    # stream; the replay's symbols= refuses them
    from matchcore.io.nats import MarketDataConsumer, consume, filter_subjects, free_port

    need_nats()
    url = f"nats://127.0.0.1:{free_port()}"          # nothing listens: raised before connecting
    want = (rf"symbols holds {re.escape(repr(given))} \({type(given).__name__}\): a name is a "
            rf"str, a number an int or a string of digits")
    with pytest.raises(TypeError, match=want):
        consume(url, symbols=["MSFT", given], timeout=30)
    with pytest.raises(TypeError, match=want):
        filter_subjects("mc", [given])
    c = MarketDataConsumer()
    with pytest.raises(TypeError, match=want):
        c.select([given])
    with pytest.raises(TypeError, match=want):
        itch.Replayer(symbols=[given])
    # a number is the name of a locate published without one
    assert filter_subjects("mc", [7], ["tob"]) == ["mc.tob.7"] and c.select([7]) == ["7"]


def test_consumer_read_by_label_written_with_leading_zeros_is_that_book():
    # consume(symbols=["X@locate09"]) keeps the book it names (as X@locate9), and a replay's
    # r.book("X@locate09") returns it, but c.depth("X@locate09") read an empty book
    c = _consumer_with_two_books_of_x()
    assert c.depth("X@locate09") == c.depth("X@locate9") == ([(109, 5, 1)], [])
    assert c.depth("X@locate004", 1) == c.depth("X@locate4", 1) != ([], [])
    assert c.tob["X@locate04"] == c.tob["X@locate4"]
    assert c.trades["X@locate009"] == c.trades["X@locate9"]
    assert c.levels["X@locate04"] == c.levels["X@locate4"]
    # a label of no book is as before
    assert c.depth("X@locate05") == ([], [])
    with pytest.raises(KeyError):
        c.tob["X@locate05"]


def test_consumer_read_by_the_label_of_a_names_only_book_is_that_book():
    # A name one locate carries is kept under the name; its label (X@locate4), which a
    # replay's r.book() and consume(symbols=) take for that book, read an empty book in
    # depth() and a bare KeyError in tob[] (get() None, in False), and the subscribe note
    # counts it as received
    from matchcore.io.nats import (KIND_L2, KIND_TOB, KIND_TRADE, WIRE_L2, WIRE_TOB, WIRE_TRADE,
                                   MarketDataConsumer, encode_batch)

    c = MarketDataConsumer()
    tob = np.zeros(1, WIRE_TOB)
    tob[0] = (1, 104, 5, 200, 7)
    level = np.zeros(1, WIRE_L2)
    level[0] = (1, 104, 5, 1, b"B", b"")
    trade = np.zeros(1, WIRE_TRADE)
    trade[0] = (1, 104, 3, 1, 7, b"E", b"B", b"Y", b"")
    assert c.apply("mc.tob.X", encode_batch(KIND_TOB, 4, 0, tob)) is None
    assert c.apply("mc.l2.X", encode_batch(KIND_L2, 4, 0, level)) is None
    assert c.apply("mc.trade.X", encode_batch(KIND_TRADE, 4, 0, trade)) is None
    assert c.symbols() == ["X"]
    for label in ("X@locate4", "X@locate04", " X @locate4"):
        assert c.depth(label) == c.depth("X") == ([(104, 5, 1)], [])
        assert c.depth(label, 0) == ([], [])
        for books in (c.tob, c.levels, c.trades):
            assert books[label] == books.get(label) == books["X"]
            assert label in books
    # the label of another locate is no book of the name
    assert c.depth("X@locate5") == ([], [])
    for books in (c.tob, c.levels, c.trades):
        assert books.get("X@locate5") is None and "X@locate5" not in books
        with pytest.raises(KeyError):
            books["X@locate5"]
    assert c.symbols() == ["X"]


def test_consumer_read_mappings_get_and_in_look_up_as_subscript():
    # c.tob.get("X@locate04") gave None and "X@locate04" in c.tob False where
    # c.tob["X@locate04"] found the book; c.tob.get(7) and 7 in c.tob skipped the str check
    # c.tob[7] makes; c.tob.get("X") gave None for a name two books share, where c.tob["X"]
    # names their labels: get, in and [] are one lookup, as a Mapping's
    c = _consumer_with_two_books_of_x()
    shared = "symbol 'X' is carried by locates 4, 9: ask for one of X@locate4, X@locate9"
    for books in (c.tob, c.levels, c.trades):
        assert books.get("X@locate04") == books["X@locate04"] == books["X@locate4"]
        assert "X@locate04" in books and "X@locate009" in books and "X@locate9" in books
        for key in (7, None, b"X@locate4", ("X", 4)):
            with pytest.raises(TypeError, match="symbol must be a str"):
                books[key]
            with pytest.raises(TypeError, match="symbol must be a str"):
                books.get(key)
            with pytest.raises(TypeError, match="symbol must be a str"):
                key in books
        with pytest.raises(ValueError, match=re.escape(shared)):
            books.get("X")
        with pytest.raises(ValueError, match=re.escape(shared)):
            "X" in books
        # a str that names nothing: the default, False, KeyError
        for key in ("Y", "X@locate5", "X@locate05"):
            assert books.get(key) is None and books.get(key, "none") == "none"
            assert key not in books
            with pytest.raises(KeyError):
                books[key]


def test_cli_replay_publish_notes_show_names_escaped(server, names, tmp_path, capsys):
    # the notes on shared and renamed names printed a name from the file as it is (an escape
    # sequence drove the terminal), where the replay summary and its other notes escape it
    from matchcore._cliutil import shown_name

    stream, prefix = names
    shared, renamed = "\x1b[2JA", "N\x1b[1m"
    data = with_names(itch.generate(None, messages=200_000, symbols=3, seed=3),
                      {1: shared, 2: shared})
    assert len(data) > 5 << 20
    pos = 0
    while pos < len(data) - (1 << 20):       # past the first 4 MiB chunk, already published
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    path = tmp_path / "names.itch"
    path.write_bytes(data[:pos] + itch_r(3, renamed) + data[pos:])
    third = itch.symbol_names(3)[2]
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "\x1b" not in out
    assert f"note: symbol {shown_name(shared)} is carried by locates 1, 2" in out
    assert (f"subscribe shows them as {shown_name(shared)}@locate1, "
            f"{shown_name(shared)}@locate2") in out
    assert (f"note: locate 3 was renamed {third} -> {shown_name(renamed)} during the replay"
            in out)


def test_cli_subscribe_summary_shows_book_names_escaped(server, names, capsys):
    # a name read back from its subject token (an escape sequence from a damaged ITCH file,
    # published as _1B_5B2JA) was printed as it is in the summary: it drove the terminal
    from matchcore._cliutil import shown_name
    from matchcore.io.nats import KIND_TOB, WIRE_TOB, NatsPublisher, encode_batch, subject_token

    stream, prefix = names
    name, unseen = "\x1b[2JA", "B\x07"
    rec = np.zeros(1, WIRE_TOB)
    rec[0] = (5, 1_000_000, 100, 1_000_100, 200)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.publish(f"{prefix}.tob.{subject_token(name)}",
                           encode_batch(KIND_TOB, 1, 0, rec), 1)
    assert pub.stats["published"] == 1
    assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", f"{name},{unseen}", "--timeout", "20"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert f"{shown_name(name):<8} bid 100.0000 x 100  ask 100.0100 x 200" in out
    assert f"note: no records received for {shown_name(unseen)}" in out


def test_cli_subscribe_label_and_its_name_both_selected_not_noted_unseen(server, names,
                                                                          tmp_path, capsys):
    # --symbols AAPL@locate1,AAPL of a name one locate carries: its book was received (and
    # shown under the name, which the whole-name selection keeps), and the note still said
    # "no records received for AAPL@locate1"
    stream, prefix = names
    out = subscribe_symbols_of_day(server, stream, prefix, tmp_path, capsys,
                                   "AAPL@locate01,AAPL,MSFT@locate3,MSFT")
    assert "AAPL     bid" in out and "MSFT     bid" in out
    assert out.rstrip().endswith("note: no records received for MSFT@locate3")


def test_cli_subscribe_print_left_out_book_named_escaped(server, names, capsys):
    # --print named the book a label selection leaves out with the name as it came from its
    # subject token (an escape sequence), where the summary shows names escaped
    from matchcore._cliutil import shown_name
    from matchcore.io.nats import KIND_TOB, WIRE_TOB, NatsPublisher, encode_batch, subject_token

    stream, prefix = names
    name = "\x1b[2JA"
    rec = np.zeros(1, WIRE_TOB)
    rec[0] = (5, 1_000_000, 100, 1_000_100, 200)
    subject = f"{prefix}.tob.{subject_token(name)}"
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.publish(subject, encode_batch(KIND_TOB, 1, 0, rec), 1)
        assert pub.publish(subject, encode_batch(KIND_TOB, 2, 1, rec), 1)
    assert pub.stats["published"] == 2
    assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", f"{name}@locate1", "--print", "--timeout", "20"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert f"left out (book {shown_name(name)}@locate2 not selected)" in out


@pytest.mark.parametrize("given", [7, np.int64(7), b"X", None, 7.0])
def test_consumer_read_by_name_not_a_str_refused_naming_the_argument(given):
    # c.depth(7) read an empty book, and c.tob[7] raised a bare KeyError, while
    # consume(symbols=[7]) keeps the book of locate 7 under the name "7": names are strings
    from matchcore.io.nats import KIND_L2, WIRE_L2, MarketDataConsumer, encode_batch

    c = MarketDataConsumer()
    level = np.zeros(1, WIRE_L2)
    level["price"], level["qty"], level["orders"], level["side"] = 100, 5, 1, b"B"
    c.apply("mc.l2.7", encode_batch(KIND_L2, 7, 0, level))
    want = rf"symbol must be a str \(a name or NAME@locateN\), got {type(given).__name__}"
    with pytest.raises(TypeError, match=want):
        c.depth(given)
    for books in (c.tob, c.levels, c.trades):
        with pytest.raises(TypeError, match=want):
            books[given]
    assert c.depth("7") == ([(100, 5, 1)], [])


@pytest.mark.parametrize("first, then", [("X@locate4", "X"), ("X", "X@locate4")])
def test_consumer_reselected_by_label_or_whole_name_keeps_one_book_under_the_new_key(first, then):
    # a consumer reused across reads whose selection changed between a label and the whole
    # name kept the book under the old key and sent new batches to the new one: symbols()
    # showed both, and depth() by the new key held only the levels changed since
    from matchcore.io.nats import KIND_L2, KIND_TOB, KIND_TRADE, WIRE_L2, WIRE_TOB, \
        WIRE_TRADE, MarketDataConsumer, encode_batch

    def batches(seq, price):
        tob = np.zeros(1, WIRE_TOB)
        tob[0] = (seq, price, 5, 200, 7)
        level = np.zeros(1, WIRE_L2)
        level[0] = (seq, price, 5, 1, b"B", b"")
        trade = np.zeros(1, WIRE_TRADE)
        trade["kind"], trade["side"], trade["shares"] = b"E", b"B", 3
        return [("mc.tob.X", encode_batch(KIND_TOB, 4, seq, tob)),
                ("mc.l2.X", encode_batch(KIND_L2, 4, seq, level))], \
            ("mc.trade.X", encode_batch(KIND_TRADE, 4, seq, trade))

    c = MarketDataConsumer()
    c.select([first])
    books, trade = batches(0, 100)
    for subject, payload in books + [trade]:
        assert c.apply(subject, payload) is None
    c.select([then])
    books, _ = batches(1, 101)             # no trade batch after the change of selection
    for subject, payload in books:
        assert c.apply(subject, payload) is None
    key = "X@locate4" if "@" in then else "X"
    assert c.symbols() == [key]
    assert c.depth(key) == ([(101, 5, 1), (100, 5, 1)], [])
    assert c.tob[key][1] == 101 and c.trades[key][0] == 1
    old = "X" if key != "X" else "X@locate4"
    assert old not in {*c.tob, *c.levels, *c.trades}


def test_cli_subscribe_summary_name_kept_whole_in_one_kind_and_by_labels_in_another(
        server, names, capsys):
    # a stream holding a replay with two books of X, then a top-of-book-only replay with one:
    # X's top of book is kept under X, its trades under X@locate1 and X@locate2; the summary
    # read each book's row with get(), which for X in the trades named their labels
    from matchcore.io.nats import (KIND_TOB, KIND_TRADE, SESSION_HEADER, WIRE_TOB, WIRE_TRADE,
                                   NatsPublisher, encode_batch)

    stream, prefix = names
    tob = np.zeros(1, WIRE_TOB)
    tob[0] = (1, 1_000_000, 5, 1_000_100, 7)
    trade = np.zeros(1, WIRE_TRADE)
    trade[0] = (1, 1_000_000, 3, 1, 7, b"E", b"B", b"Y", b"")
    day1, day2 = {SESSION_HEADER: "day1"}, {SESSION_HEADER: "day2"}
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        for seq, loc in enumerate((1, 2)):
            assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, loc, seq, tob), 1, day1)
            assert pub.publish(f"{prefix}.trade.X", encode_batch(KIND_TRADE, loc, seq, trade), 1,
                               day1)
        assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 0, tob), 1, day2)
    assert pub.stats["published"] == 5
    capsys.readouterr()
    assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--timeout", "20", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "X        bid 100.0000 x 5  ask 100.0100 x 7; trades 0 (0 shares)" in out
    for label in ("X@locate1", "X@locate2"):
        assert f"{label} no top of book; trades 1 (3 shares)" in out


def test_label_with_space_before_at_is_that_books_label_everywhere(server, names, shared_day,
                                                                   tmp_path, capsys):
    # "NAME @locate2": the replay's symbols= kept locate 2 for it, while `replay --symbols`
    # refused it, and consume()/subscribe read every book of NAME under a name no book has
    from matchcore.io.nats import consume

    stream, prefix = names
    first = itch.symbol_names(4)[0]
    label = f"{first} @locate2"
    path = tmp_path / "shared.itch"
    path.write_bytes(shared_day)
    r = itch.replay_file(path, symbols=[label])
    assert sorted(r.books) == [2]
    assert r.book(label) is r.books[2]
    code = main(["replay", str(path), "--symbols", label])
    cap = capsys.readouterr()
    assert code == 0 and "no book" not in cap.err, cap.err
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--symbols", label])
    cap = capsys.readouterr()
    assert code == 0 and "no book" not in cap.err, cap.err
    c = consume(server.url, stream=stream, prefix=prefix, symbols=[label], timeout=60)
    assert c.symbols() == [f"{first}@locate2"] and not c.missing
    assert c.depth(label) == c.depth(f"{first}@locate2") == book_levels(r.books[2])
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", label, "--kinds", "tob"])
    out = capsys.readouterr().out
    bb, ba = r.books[2].best_bid(), r.books[2].best_ask()
    assert code == 0 and "no records received" not in out, out
    assert (f"{first}@locate2 bid {bb[0] / 1e4:.4f} x {bb[1]:,}  "
            f"ask {ba[0] / 1e4:.4f} x {ba[1]:,}") in out and f"{first}@locate1" not in out


def test_consumer_reads_and_replay_book_take_names_and_labels_with_surrounding_spaces(
        server, names, shared_day):
    # r.book(" NAME") found NAME's book, while c.tob[" NAME"] raised KeyError and
    # c.depth(" NAME") read an empty book; r.book(" NAME@locate2") and c.depth(" NAME@locate2")
    # found nothing, where the replay's symbols= and consume(symbols=) take that label
    stream, prefix = names
    first, _, third, _ = itch.symbol_names(4)
    r, _, _ = _publish_shared_day(server, stream, prefix, shared_day)
    from matchcore.io.nats import consume

    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert r.book(f" {third} ") is r.book(third)
    assert c.tob[f" {third} "] == c.tob[third] and f" {third}" in c.trades
    assert c.depth(f" {third} ") == c.depth(third) == book_levels(r.book(third))
    label = f"{first}@locate2"
    assert r.book(f" {label}") is r.books[2]
    assert c.depth(f" {label}") == c.depth(label) == book_levels(r.books[2])
    assert c.levels.get(f" {first} @locate02") == c.levels[label]
    with pytest.raises(ValueError, match="carried by locates 1, 2"):
        c.depth(f" {first}")
    with pytest.raises(ValueError, match="carried by locates 1, 2"):
        c.tob[f"{first} "]


def test_consumer_reads_key_as_stored_first_name_with_spaces_from_another_publisher(
        server, names):
    # a subject token of a name with a leading space (not one a ReplayPublisher writes) keeps
    # its book under that name: read as stored, not as the name without the space
    from matchcore.io.nats import KIND_L2, WIRE_L2, NatsPublisher, consume, encode_batch

    stream, prefix = names
    rec = np.zeros(1, WIRE_L2)
    rec["side"], rec["price"], rec["qty"], rec["orders"] = b"B", 10_000, 100, 1
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.publish(f"{prefix}.l2._20A", encode_batch(KIND_L2, 1, 0, rec), 1)
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.symbols() == [" A"]
    assert c.depth(" A") == ([(10_000, 100, 1)], [])


@pytest.mark.parametrize("kinds", [None, ["tob", "l2"]])
def test_consume_twenty_thousand_symbols_reads_as_a_read_of_the_published_ones(
        server, names, tmp_path, kinds):
    # 5,000 symbols took 3.6 s before the first record and 20,000 timed out: one pull consumer
    # with a filter subject per symbol and kind, which the server makes in time growing with
    # the square of their number
    from matchcore.io.nats import consume

    stream, prefix = names
    cli_publish_day(server, stream, prefix, tmp_path / "day.itch", messages=5_000, seed=4,
                    symbols=3)
    published = itch.symbol_names(3)[:2]
    many = [f"Z{i:05d}" for i in range(20_000)] + published
    seen, few_seen = [], []
    c = consume(server.url, stream=stream, prefix=prefix, symbols=many, kinds=kinds,
                timeout=120, on_batch=lambda s, p: seen.append((s, p)))
    few = consume(server.url, stream=stream, prefix=prefix, symbols=published, kinds=kinds,
                  timeout=120, on_batch=lambda s, p: few_seen.append((s, p)))
    assert not c.timed_out and not few.timed_out
    assert seen == few_seen and len(seen) > 0           # the same batches, in the same order
    assert c.symbols() == few.symbols() == sorted(published)
    assert (c.batches, c.records, c.bad, c.missing, c.gaps, c.sessions, c.locates,
            c.out_of_sequence) == (few.batches, few.records, few.bad, few.missing, few.gaps,
                                   few.sessions, few.locates, few.out_of_sequence)
    for name in published:
        assert c.tob.get(name) == few.tob.get(name) and c.depth(name) == few.depth(name)
        assert c.trades.get(name) == few.trades.get(name)


def test_cli_subscribe_twenty_thousand_symbols_shows_the_published_books(server, names,
                                                                          tmp_path, capsys):
    # subscribe --symbols with 20,000 names timed out making its consumer
    stream, prefix = names
    cli_publish_day(server, stream, prefix, tmp_path / "day.itch", messages=5_000, seed=4,
                    symbols=3)
    published = itch.symbol_names(3)[:2]
    many = [f"Z{i:05d}" for i in range(20_000)]
    runs = []
    for symbols in (many + published, published):
        capsys.readouterr()
        assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                     "--symbols", ",".join(symbols), "--timeout", "120"]) == 0
        runs.append(capsys.readouterr().out.splitlines())
    assert runs[0][-1] == f"note: no records received for {', '.join(many)}"
    assert runs[0][:-1] == runs[1] and any(line.startswith(published[0]) for line in runs[1])


def test_consume_and_subscribe_number_with_leading_zeros_selects_the_replays_book(
        server, names, tmp_path, capsys):
    # --symbols 007 read the subjects of a name "007", which nothing publishes, where the
    # replay's --symbols 007 keeps locate 7: a digit string is a number in every form
    from matchcore.io.nats import consume

    stream, prefix = names
    msgs = [itch_a(7, 1, b"B", 100, "", 1_000_000, 1), itch_a(7, 2, b"S", 200, "", 1_000_100, 2),
            itch_a(3, 3, b"B", 50, "MSFT", 2_000_000, 3)]
    path = tmp_path / "unnamed.itch"
    path.write_bytes(b"".join(msgs))
    assert main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix]) == 0
    for given in ("007", "07", "7", 7):
        r = itch.replay_file(path, symbols=[given])
        assert list(r.books) == [7]
        c = consume(server.url, stream=stream, prefix=prefix, symbols=[given], timeout=60)
        assert c.symbols() == ["7"] and not c.missing
        bb, ba = r.books[7].best_bid(), r.books[7].best_ask()
        assert c.tob["7"][1:] == (bb[0], bb[1], ba[0], ba[1])
        assert c.depth("7") == book_levels(r.books[7])
        capsys.readouterr()
        assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                     "--symbols", str(given), "--kinds", "tob"]) == 0
        out = capsys.readouterr().out
        assert "7        bid 100.0000 x 100  ask 100.0100 x 200" in out
        assert "no records received" not in out
    # locate 3 is published under its name: its number names no subject, and the note says so
    assert itch.replay_file(path, symbols=["3"]).symbols[3] == "MSFT"
    assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", "003"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(
        "note: no records received for 003 (a number selects the book of a locate published "
        "without a name; a named locate's book is read by its name or NAME@locateN)")


def test_cli_subscribe_one_unseen_book_given_several_ways_noted_once(server, names, tmp_path,
                                                                     capsys):
    # --symbols AAPL@locate2,AAPL@locate02 noted "no records received for AAPL@locate2,
    # AAPL@locate02": two books, where both name one
    stream, prefix = names
    out = subscribe_symbols_of_day(server, stream, prefix, tmp_path, capsys,
                                   "AAPL@locate2,MSFT,AAPL@locate02,NOPE,AAPL @locate2,NOPE")
    assert out.rstrip().endswith("note: no records received for AAPL@locate2 (also given as "
                                 "AAPL@locate02, AAPL @locate2), NOPE")


def test_consumer_read_by_number_with_leading_zeros_is_that_locates_book():
    # c.tob["007"] raised KeyError for the book of locate 7 published without a name (kept as
    # "7"), which consume(symbols=["007"]) selects and a replay's book("007") returns
    from matchcore.io.nats import (KIND_L2, KIND_TOB, WIRE_L2, WIRE_TOB, MarketDataConsumer,
                                   encode_batch)

    c = MarketDataConsumer()
    tob = np.zeros(1, WIRE_TOB)
    tob[0] = (5, 1_000_000, 100, 1_000_100, 200)
    l2 = np.zeros(1, WIRE_L2)
    l2["ts"], l2["price"], l2["qty"], l2["orders"], l2["side"] = 5, 1_000_000, 100, 1, b"B"
    assert c.apply("mc.tob.7", encode_batch(KIND_TOB, 7, 0, tob)) is None
    assert c.apply("mc.l2.7", encode_batch(KIND_L2, 7, 0, l2)) is None
    for given in ("007", "07", " 7 "):
        assert c.tob[given] == c.tob["7"] == (5, 1_000_000, 100, 1_000_100, 200)
        assert given in c.tob and c.tob.get(given) == c.tob["7"]
        assert c.depth(given) == c.depth("7") == ([(1_000_000, 100, 1)], [])
    # a book named "007" is that book, as a replay's book() looks a name up first
    tob[0] = (6, 2_000_000, 10, 2_000_100, 20)
    assert c.apply("mc.tob.007", encode_batch(KIND_TOB, 9, 0, tob)) is None
    assert c.tob["007"] == (6, 2_000_000, 10, 2_000_100, 20) and c.tob["07"] == c.tob["7"]
    assert "8" not in c.tob and c.tob.get("08") is None
    assert c.tob[" 007 "] == c.tob["007"]           # the name "007" first, as stored


@pytest.mark.parametrize("symbol, what", [(-1, "-1"), (70_000, "70000"),
                                          (np.int64(65_536), "65536"),
                                          ("AAPL@locate70000", "a book label of locate 70000")])
def test_consume_locate_number_outside_a_uint16_refused_before_connecting(symbol, what, capsys):
    # consume(symbols=[70000]) read the subjects of a name "70000", a number no locate (a
    # uint16) can be, and AAPL@locate70000 the name's subjects, keeping a book no batch's
    # header can name: an empty read without a word, where the replay's symbols= raises
    from matchcore.io.nats import MarketDataConsumer, consume, filter_subjects

    need_nats()
    shown = symbol if isinstance(symbol, str) else int(symbol)
    want = re.escape(f"symbols holds {shown!r}") + ".*outside 0..65535"
    with pytest.raises(ValueError, match=want):
        itch.replay_file(itch.generate(None, messages=10, symbols=1, seed=1), symbols=[symbol])
    c = MarketDataConsumer()
    with pytest.raises(ValueError, match=want):
        consume("nats://127.0.0.1:1", symbols=[symbol], consumer=c, timeout=1)
    with pytest.raises(ValueError, match=want):
        filter_subjects("mc", [symbol])
    assert c._only == {} and not c.timed_out
    if isinstance(symbol, str):
        assert main(["subscribe", "nats://127.0.0.1:1", "--symbols", symbol]) == 1
        err = capsys.readouterr().err
        assert "outside 0..65535" in err and "cannot" not in err


@pytest.mark.parametrize("where", ["no broker", "no stream"])
def test_consume_that_never_began_leaves_the_consumers_books_under_their_keys(server, names,
                                                                              where):
    # the read's selection was made before connecting: a read by label into a consumer that
    # held the book under its name failed (no broker there, no such stream) with the book
    # moved to the label, and the name, read as the book until then, raised ValueError
    from matchcore.io.nats import (KIND_TOB, WIRE_TOB, MarketDataConsumer, consume,
                                   encode_batch, free_port)

    stream, prefix = names
    c = MarketDataConsumer()
    tob = np.zeros(1, WIRE_TOB)
    tob[0] = (1, 100, 5, 101, 7)
    assert c.apply(f"{prefix}.tob.X", encode_batch(KIND_TOB, 4, 0, tob)) is None
    from nats.js.errors import NotFoundError

    url = f"nats://127.0.0.1:{free_port()}" if where == "no broker" else server.url
    with pytest.raises(ConnectionError if where == "no broker" else NotFoundError,
                       match="cannot connect" if where == "no broker" else "stream not found"):
        consume(url, symbols=["X@locate4"], stream=stream, prefix=prefix, consumer=c,
                timeout=1 if where == "no broker" else 30)
    assert c.symbols() == ["X"] and c.tob["X"] == (1, 100, 5, 101, 7)
    # and the selection nothing was read with is not the consumer's: the next batch of the
    # book goes on under its name
    tob[0] = (2, 102, 5, 103, 7)
    assert c.apply(f"{prefix}.tob.X", encode_batch(KIND_TOB, 4, 1, tob)) is None
    assert c.symbols() == ["X"] and c.tob["X"][1] == 102
