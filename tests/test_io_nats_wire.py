"""The NATS market-data format without a server: batches encoded and decoded, malformed ones
refused, subject tokens for any symbol name, subject filters, and the consumer fed by hand."""
from __future__ import annotations

import re

import numpy as np
import pytest

import matchcore.itch as itch
from matchcore.io.nats import (KIND_L2, KIND_TOB, WIRE_L2, WIRE_TOB, WIRE_TRADE, BatchError,
                               MarketDataConsumer, decode_batch, encode_batch, filter_subjects)
from nats_checks import book_levels, feed_chunks
from nats_checks import day  # noqa: F401  (fixtures)


# ---- encoding (no server) ----

def test_encode_decode_batch_round_trip_exact_bytes():
    rec = np.zeros(3, WIRE_L2)
    rec["ts"] = [1, 2, 3]
    rec["price"] = [100, 101, 102]
    rec["qty"] = [5, 0, 7]
    rec["orders"] = [1, 0, 2]
    rec["side"] = [b"B", b"S", b"B"]
    payload = encode_batch(KIND_L2, 513, 42, rec)
    assert len(payload) == 16 + 3 * 32
    assert payload[:6] == b"MC\x01\x03\x01\x02"           # magic, version, kind, locate LE
    assert payload[6:8] == b"\x03\x00" and payload[8:16] == (42).to_bytes(8, "little")
    assert payload[16:24] == (1).to_bytes(8, "little")
    kind, loc, seq, back = decode_batch(payload)
    assert (kind, loc, seq) == (KIND_L2, 513, 42)
    assert back.tobytes() == rec.tobytes()


@pytest.mark.parametrize("make", [bytes, bytearray, lambda b: memoryview(bytearray(b))])
def test_decode_batch_records_read_only_whatever_the_payload(make):
    # the records of a bytearray (or writable memoryview) payload were a writable view of the
    # caller's buffer, where decode_batch says read-only: a write changed the payload itself
    rec = np.zeros(2, WIRE_TOB)
    rec["bid"] = [100, 101]
    payload = make(encode_batch(KIND_TOB, 7, 0, rec))
    _, _, _, out = decode_batch(payload)
    assert not out.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        out["bid"][0] = 5
    assert decode_batch(payload)[3]["bid"].tolist() == [100, 101]


@pytest.mark.parametrize("kind, locate, seq, exc, msg", [
    (9, 1, 0, ValueError, "unknown record kind 9"),
    (True, 1, 0, TypeError, "kind must be an int"),
    (KIND_TOB, 1.5, 0, TypeError, "locate must be an int"),
    (KIND_TOB, 70000, 0, ValueError, "locate must be in 0..65535, got 70000"),
    (KIND_TOB, -1, 0, ValueError, "locate must be in 0..65535, got -1"),
    (KIND_TOB, 1, 2.0, TypeError, "seq must be an int"),
    (KIND_TOB, 1, -5, ValueError, "seq must be in 0..2\\*\\*64-1, got -5"),
    (KIND_TOB, 1, 1 << 64, ValueError, "seq must be in 0..2\\*\\*64-1"),
])
def test_encode_batch_header_field_outside_its_type_refused_naming_it(kind, locate, seq, exc,
                                                                      msg):
    # a fractional locate or seq was truncated into the header (1.5 went out as locate 1),
    # an unknown kind was a KeyError and an out-of-range field numpy's OverflowError
    with pytest.raises(exc, match=msg):
        encode_batch(kind, locate, seq, np.zeros(1, WIRE_TOB))


@pytest.mark.parametrize("payload, msg", [
    (b"MC\x01", "shorter than its 16-byte header"),
    (b"XX\x01\x02" + bytes(12), "bad magic"),
    (b"MC\x01\x09" + bytes(12), "unknown record kind 9"),
    (b"MC\x01\x02\x00\x00\x02\x00" + bytes(8) + bytes(40), "should be 96 bytes"),
])
def test_decode_batch_malformed_raises_batch_error(payload, msg):
    with pytest.raises(BatchError, match=msg):
        decode_batch(payload)


def test_consumer_malformed_or_replayed_batch_changes_nothing():
    c = MarketDataConsumer()
    rec = np.zeros(1, WIRE_TOB)
    rec[0] = (5, 100, 10, 101, 20)
    c.apply("mc.tob.AAA", encode_batch(KIND_TOB, 1, 0, rec))
    c.apply("mc.tob.AAA", b"garbage")
    old = rec.copy()
    old[0] = (1, 1, 1, 1, 1)
    c.apply("mc.tob.AAA", encode_batch(KIND_TOB, 1, 0, old))      # seq already applied
    assert c.tob["AAA"] == (5, 100, 10, 101, 20) and c.bad == 1 and c.batches == 1
    c.apply("mc.tob.AAA", encode_batch(KIND_TOB, 1, 4, rec))      # seq 1..3 never came
    assert c.missing == {("tob", "AAA"): 3}


def test_filter_subjects_wildcards_and_bad_kind():
    assert filter_subjects("mc", None, ["tob"]) == ["mc.tob.*"]
    assert filter_subjects("mc", ["BRK.A"], None) == ["mc.*.BRK_2EA"]
    assert filter_subjects("mc") == ["mc.*.*"]       # not mc.>: that takes mc.eu.tob.X
    with pytest.raises(ValueError, match="unknown kinds"):
        filter_subjects("mc", None, ["quotes"])


def test_replay_l2_sink_rebuilds_every_level_of_every_book(day):
    r = itch.Replayer(record_l2=True)
    c = MarketDataConsumer()
    seqs = {}

    def chunk(rr):
        l2 = rr.l2(clear=True)
        for loc in np.unique(l2["locate"]).tolist():
            mine = l2[l2["locate"] == loc]
            w = np.zeros(len(mine), WIRE_L2)
            for f in ("ts", "price", "qty", "orders", "side"):
                w[f] = mine[f]
            c.apply(f"mc.l2.{loc}", encode_batch(KIND_L2, loc, seqs.get(loc, 0), w))
            seqs[loc] = seqs.get(loc, 0) + len(mine)

    feed_chunks(r, day, chunk, chunk=7_000)
    assert r.books
    for loc, book in r.books.items():
        bids, asks = c.depth(str(loc))
        assert (bids, asks) == book_levels(book)
    ss = r.symbol_stats()
    tr = r.trades()
    for row in ss:
        mine = tr[tr["locate"] == row["locate"]]
        assert row["trades"] == len(mine) and row["volume"] == int(mine["shares"][itch.volume_mask(mine)].sum())


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.A", "BRK_A", "BRK_2EA", "A B", "*", ">", "_",
                                    "X-Y", "ÄÖ.€", "a.b_c.d", ""])
def test_subject_token_reversible_one_token_distinct(symbol):
    from matchcore.io.nats import subject_token, symbol_from_token

    tok = subject_token(symbol)
    assert symbol_from_token(tok) == symbol
    assert tok and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in tok)


def test_subject_token_colliding_names_of_before_get_distinct_subjects():
    from matchcore.io.nats import subject_token

    names = ["BRK.A", "BRK_A", "BRK A", "BRK*A", "BRK_2EA", "brk.a"]
    assert len({subject_token(n) for n in names}) == len(names)


def test_consumer_new_session_restarts_that_subject_old_state_gone():
    from matchcore.io.nats import SESSION_HEADER

    c = MarketDataConsumer()
    l2 = np.zeros(2, WIRE_L2)
    l2["price"], l2["qty"], l2["orders"], l2["side"] = [100, 105], [5, 7], [1, 1], [b"B", b"S"]
    tob = np.zeros(1, WIRE_TOB)
    tob[0] = (1, 100, 5, 105, 7)
    a = {SESSION_HEADER: "a"}
    c.apply("mc.l2.X", encode_batch(KIND_L2, 1, 0, l2), a)
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 3, tob), a)          # a gap in session a
    l2b = np.zeros(1, WIRE_L2)
    l2b[0]["price"], l2b[0]["qty"], l2b[0]["orders"], l2b[0]["side"] = 90, 1, 1, b"B"
    c.apply("mc.l2.X", encode_batch(KIND_L2, 1, 0, l2b), {SESSION_HEADER: "b"})
    assert c.depth("X") == ([(90, 1, 1)], [])                # session a's levels are gone
    assert c.tob["X"] == (1, 100, 5, 105, 7)                 # tob subject not restarted yet
    assert c.session_changes == 1 and c.sessions[("l2", "X")] == "b"
    tob2 = np.zeros(1, WIRE_TOB)
    tob2[0] = (2, 90, 1, 0, 0)
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob2), {SESSION_HEADER: "b"})
    assert c.tob["X"] == (2, 90, 1, 0, 0) and not c.missing and c.session_changes == 2
    # without the header (an older publisher) a repeated seq is still a redelivery
    old = MarketDataConsumer()
    old.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob))
    old.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob2))
    assert old.tob["X"] == (1, 100, 5, 105, 7) and old.session_changes == 0


def test_consumer_batch_of_a_session_the_subject_moved_on_from_left_out():
    # A stream holding two replays read again into the same consumer (consume(consumer=)):
    # the first replay's batches come again before the second's. Taken for a newer session,
    # they put the first replay's books back (the state a read cut short there keeps) and
    # counted every subject restarted and every batch received once more.
    from matchcore.io.nats import SESSION_HEADER

    def tob(ts, bid):
        rec = np.zeros(1, WIRE_TOB)
        rec[0] = (ts, bid, 1, bid + 5, 1)
        return rec

    c = MarketDataConsumer()
    old = ("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob(1, 100)), {SESSION_HEADER: "a"})
    new = ("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob(2, 200)), {SESSION_HEADER: "b"})
    for batch in (old, new):
        assert c.apply(*batch) is None
    assert c.tob["X"] == (2, 200, 1, 205, 1) and c.session_changes == 1 and c.batches == 2
    why = c.apply(*old)                                     # the read again, from the start
    assert why is not None and "'a'" in why and "'b'" in why
    assert c.tob["X"] == (2, 200, 1, 205, 1)
    assert c.apply(*new) is not None                        # a redelivery of session b
    assert c.tob["X"] == (2, 200, 1, 205, 1)
    assert (c.session_changes, c.batches, c.records["tob"], c.missing, c.bad,
            c.out_of_sequence) == (1, 2, 2, {}, 0, 0)
    # a third session is new: the subject restarts again
    assert c.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob(3, 300)),
                   {SESSION_HEADER: "c"}) is None
    assert c.tob["X"] == (3, 300, 1, 305, 1) and c.session_changes == 2
    # batches without the header (an older publisher's) are a session as well
    plain = MarketDataConsumer()
    plain.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob(1, 100)))
    plain.apply(*new)
    assert plain.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob(1, 100))) is not None
    assert plain.tob["X"] == (2, 200, 1, 205, 1) and plain.session_changes == 1


def test_consumer_second_locate_under_a_name_moves_first_book_to_its_label():
    from matchcore.io.nats import SESSION_HEADER

    c = MarketDataConsumer()
    tob = np.zeros(1, WIRE_TOB)
    tob[0] = (1, 100, 5, 105, 7)
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 4, 0, tob), {SESSION_HEADER: "a"})
    assert c.symbols() == ["X"] and c.tob["X"] == (1, 100, 5, 105, 7)
    tob2 = np.zeros(1, WIRE_TOB)
    tob2[0] = (2, 200, 1, 210, 1)
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 9, 1, tob2), {SESSION_HEADER: "a"})
    assert c.tob == {"X@locate4": (1, 100, 5, 105, 7), "X@locate9": (2, 200, 1, 210, 1)}
    assert not c.missing and c.batches == 2
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 9, 1, tob), {SESSION_HEADER: "a"})  # redelivery
    assert c.tob["X@locate9"] == (2, 200, 1, 210, 1) and c.batches == 2
    # a new session (another replay) on the subject drops every book published under the
    # name; its own locates decide the labels: one locate, the bare name
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 4, 0, tob2), {SESSION_HEADER: "b"})
    assert c.tob == {"X": (2, 200, 1, 210, 1)} and c.session_changes == 1
    assert c.locates["X"] == {4}
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 5, 1, tob), {SESSION_HEADER: "b"})
    assert c.tob == {"X@locate4": (2, 200, 1, 210, 1), "X@locate5": (1, 100, 5, 105, 7)}


def test_consumer_older_per_locate_seq_on_shared_subject_counted_out_of_sequence(capsys):
    from types import SimpleNamespace

    from matchcore.cli_subscribe import _summary

    tob = np.zeros(2, WIRE_TOB)
    tob[:] = [(1, 100, 5, 105, 7), (2, 101, 5, 105, 7)]
    c = MarketDataConsumer()
    # two locates of one name, each counting its own seq (as publishers did before)
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob))
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 2, 0, tob[:1]))
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob))       # a true redelivery
    assert c.out_of_sequence == 1 and c.batches == 1 and c.symbols() == ["X"]
    _summary(c, SimpleNamespace(depth=0))
    # counts of one in the singular, as the replay summaries write them ("1 batches")
    out = capsys.readouterr().out
    assert out.startswith("received 1 batch: ") and "; 1 batch out of sequence" in out


def test_filter_subjects_kinds_or_symbols_as_generators_select_those_not_all():
    # the check for unknown kinds used the generator up: no kind left selected every kind
    assert filter_subjects("mc", (s for s in ["AAPL"]), (k for k in ["tob"])) == ["mc.tob.AAPL"]
    assert filter_subjects("mc", None, iter(["l2", "trade"])) == ["mc.l2.*", "mc.trade.*"]


@pytest.mark.parametrize("n", [-1, -5, 1.5, True])
def test_consumer_depth_negative_or_not_int_levels_refused_not_the_worst_dropped(n):
    # depth("X", -1) sliced [:-1]: every level but the worst, as if it were the whole book
    c = MarketDataConsumer()
    rec = np.zeros(3, WIRE_L2)
    rec["price"] = [100, 99, 101]
    rec["qty"] = [5, 6, 7]
    rec["orders"] = 1
    rec["side"] = [b"B", b"B", b"S"]
    c.apply("mc.l2.X", encode_batch(KIND_L2, 1, 0, rec))
    assert c.depth("X") == ([(100, 5, 1), (99, 6, 1)], [(101, 7, 1)])
    assert c.depth("X", 0) == ([], []) and c.depth("X", 1) == ([(100, 5, 1)], [(101, 7, 1)])
    with pytest.raises((ValueError, TypeError), match="n must be"):
        c.depth("X", n)


def test_consumer_select_label_with_surrounding_spaces_keeps_only_that_book():
    # " AAPL@locate2" selected AAPL's subjects (a token ignores the spaces) but its label was
    # kept under " AAPL", never the name read back from them: every book of AAPL was kept,
    # where the replay's symbols= (and --symbols) read the label without its spaces
    from matchcore.io.nats import SESSION_HEADER

    c = MarketDataConsumer()
    assert c.select([" AAPL@locate2 "]) == ["AAPL"]
    tob = np.zeros(1, WIRE_TOB)
    tob[0] = (5, 100, 10, 101, 20)
    c.apply("mc.tob.AAPL", encode_batch(KIND_TOB, 1, 0, tob), {SESSION_HEADER: "a"})
    c.apply("mc.tob.AAPL", encode_batch(KIND_TOB, 2, 1, tob), {SESSION_HEADER: "a"})
    assert c.symbols() == ["AAPL@locate2"]


def test_consumer_batch_kind_other_than_its_subjects_counted_bad_not_applied():
    # a batch whose header said top of book on an L2 subject was applied as top of book, its
    # subject's kind ignored: nothing flagged the mismatch
    tob = np.zeros(1, WIRE_TOB)
    tob[0] = (5, 100, 10, 101, 20)
    c = MarketDataConsumer()
    c.apply("mc.l2.AAA", encode_batch(KIND_TOB, 1, 0, tob))
    c.apply("mc.quote.AAA", encode_batch(KIND_TOB, 1, 0, tob))
    assert c.bad == 2 and c.batches == 0 and c.records["tob"] == 0
    assert c.tob == {} and c.symbols() == [] and not c.sessions
    c.apply("mc.tob.AAA", encode_batch(KIND_TOB, 1, 0, tob))     # its own subject: applied
    assert c.tob["AAA"] == (5, 100, 10, 101, 20) and c.bad == 2 and c.batches == 1


def test_readme_subscribe_example_trade_totals_are_the_replays_of_the_day_shown():
    # the README's `matchcore subscribe` example showed AAPL's volume with the shares of the
    # non-printable executions in it, which the subscriber has left out since volume_mask
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ matchcore subscribe nats://127.0.0.1:4222 --symbols AAPL", 1)[1]
    shown = re.search(r"^AAPL .*; trades ([\d,]+) \(([\d,]+) shares\)$", block, re.M)
    # the day of the README's `matchcore gen-itch day.itch` (its defaults)
    r = itch.Replayer(record_tob=False, record_trades=False)
    data = itch.generate(None)
    r.finish(data[r.feed(data):])
    row = r.symbol_stats()[[r.symbols[loc] for loc in r.symbol_stats()["locate"]].index("AAPL")]
    assert (int(shown.group(1).replace(",", "")), int(shown.group(2).replace(",", ""))) == \
        (int(row["trades"]), int(row["volume"]))


@pytest.mark.parametrize("kinds", ["tob", b"l2", "trade,tob"])
def test_publisher_kinds_given_as_one_str_refused_as_consume_refuses_it(kinds):
    # a str is iterable: NatsPublisher(kinds="tob") and ReplayPublisher(pub, kinds="tob") were
    # refused as the unknown kinds b, o and t, where consume(kinds="tob") says what to write
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    want = f"kinds must be a list of names, not {type(kinds).__name__} {kinds!r} " \
           f"(write [{kinds!r}])"
    for make in (lambda: NatsPublisher("nats://127.0.0.1:1", kinds=kinds),
                 lambda: ReplayPublisher(None, kinds=kinds),
                 lambda: consume("nats://127.0.0.1:1", kinds=kinds)):
        with pytest.raises(TypeError) as err:
            make()
        assert str(err.value) == want


@pytest.mark.parametrize("side", [b"X", b"b", b"\x00"])
def test_consumer_l2_record_side_not_b_or_s_batch_counted_bad_not_applied(side):
    # an L2 record whose side was neither B nor S was stored among the levels and counted, but
    # depth() never showed it: the batch is malformed, as one with another bad field
    rec = np.zeros(2, WIRE_L2)
    rec[0] = (1, 100, 5, 1, b"B", b"")
    rec[1] = (2, 101, 7, 2, b"S", b"")
    payload = bytearray(encode_batch(KIND_L2, 1, 0, rec))    # encode_batch refuses the side
    payload[16 + WIRE_L2.itemsize + WIRE_L2.fields["side"][1]] = side[0]
    payload = bytes(payload)
    with pytest.raises(BatchError, match=re.escape(f"L2 record 1 of 2 has side {side!r}, not "
                                                   f"B or S")):
        decode_batch(payload)
    c = MarketDataConsumer()
    assert c.apply("mc.l2.AAA", payload).startswith("malformed batch")
    assert c.bad == 1 and c.batches == 0 and c.records["l2"] == 0
    assert c.levels == {} and c.symbols() == []
    rec[1]["side"] = b"S"
    assert c.apply("mc.l2.AAA", encode_batch(KIND_L2, 1, 0, rec)) is None
    assert c.depth("AAA") == ([(100, 5, 1)], [(101, 7, 2)]) and c.records["l2"] == 2


def test_consumer_batch_whose_records_pass_seq_2_64_counted_bad_later_batches_applied():
    # seq + count beyond the u64 seq field: a batch no publisher could make (the next batch's
    # seq would not fit its header) set the subject's next seq past 2**64, and every later
    # batch of the subject was taken for a redelivery and dropped without a word
    top = (1 << 64) - 1
    rec = np.zeros(3, WIRE_TOB)
    rec["bid"] = [100, 101, 102]
    with pytest.raises(ValueError, match=r"seq \+ count.*2\*\*64-1"):
        encode_batch(KIND_TOB, 1, top - 2, rec)
    head = encode_batch(KIND_TOB, 1, 0, rec)
    payload = head[:8] + (top - 2).to_bytes(8, "little") + head[16:]
    with pytest.raises(BatchError, match=r"seq \+ count.*2\*\*64-1"):
        decode_batch(payload)
    c = MarketDataConsumer()
    assert c.apply("mc.tob.AAA", payload).startswith("malformed batch")
    assert c.bad == 1 and c.batches == 0 and c.tob == {}
    assert c.apply("mc.tob.AAA", encode_batch(KIND_TOB, 1, 0, rec)) is None
    assert c.tob["AAA"][1] == 102 and c.batches == 1 and c.missing == {}
    # the last batch whose next seq still fits: taken (as a jump ahead)
    assert decode_batch(encode_batch(KIND_TOB, 1, top - 3, rec))[2] == top - 3


@pytest.mark.parametrize("records", [np.zeros((2, 2), WIRE_TOB), [(1, 100, 10, 101, 20)], None])
def test_encode_batch_records_not_a_1d_array_of_the_kind_refused_no_malformed_batch(records):
    # a 2-d array went out with its first dimension as the header's count and every record
    # after it (a batch decode_batch refuses by its length); a list failed with an
    # AttributeError on .dtype
    with pytest.raises(TypeError, match=re.escape(f"records of kind {KIND_TOB} must be a 1-d "
                                                  f"numpy array of dtype {WIRE_TOB}")):
        encode_batch(KIND_TOB, 1, 0, records)


@pytest.mark.parametrize("side", [b"X", b"b", b"\x00"])
def test_encode_batch_l2_record_side_not_b_or_s_refused_as_decode_batch_refuses_it(side):
    # encode_batch made a batch every consumer counts as malformed and leaves out
    rec = np.zeros(2, WIRE_L2)
    rec[0] = (1, 100, 5, 1, b"B", b"")
    rec[1] = (2, 101, 7, 2, side, b"")
    with pytest.raises(ValueError, match=re.escape(f"L2 record 1 of 2 has side {side!r}, not "
                                                   f"B or S")):
        encode_batch(KIND_L2, 1, 0, rec)
    rec[1]["side"] = b"S"
    assert len(decode_batch(encode_batch(KIND_L2, 1, 0, rec))[3]) == 2


def _trades(kinds_sides):
    rec = np.zeros(len(kinds_sides), WIRE_TRADE)
    for i, (kind, side) in enumerate(kinds_sides):
        rec[i] = (1 + i, 100, 5, 1 + i, 7, kind, side, b"Y", b"")
    return rec


@pytest.mark.parametrize("field,value,want", [
    ("kind", b"X", "kind b'X', not one of 'E' 'C' 'P' 'Q'"),
    ("kind", b"\x00", "kind b'\\x00', not one of 'E' 'C' 'P' 'Q'"),
    ("side", b"X", "side b'X', not one of 'B' 'S' ' '"),
    ("side", b"b", "side b'b', not one of 'B' 'S' ' '"),
])
def test_trade_record_kind_or_side_no_publisher_writes_refused_by_encode_bad_in_decode(
        field, value, want):
    # decode_batch took a trade of any kind or side: the consumer counted it in the trade
    # totals and its shares in the volume as whatever volume_mask made of them
    from matchcore.io.nats import KIND_TRADE

    good = _trades([(b"E", b"B"), (b"C", b"S"), (b"P", b"B"), (b"Q", b" ")])
    assert len(decode_batch(encode_batch(KIND_TRADE, 1, 0, good))[3]) == 4
    bad = good.copy()
    bad[2][field] = value
    msg = re.escape(f"trade record 2 of 4 has {want}")
    with pytest.raises(ValueError, match=msg):
        encode_batch(KIND_TRADE, 1, 0, bad)
    payload = bytearray(encode_batch(KIND_TRADE, 1, 0, good))
    payload[16 + 2 * WIRE_TRADE.itemsize + WIRE_TRADE.fields[field][1]] = value[0]
    with pytest.raises(BatchError, match=msg):
        decode_batch(bytes(payload))
    c = MarketDataConsumer()
    assert c.apply("mc.trade.AAA", bytes(payload)).startswith("malformed batch")
    assert c.bad == 1 and c.batches == 0 and c.records["trade"] == 0 and c.trades == {}
    assert c.apply("mc.trade.AAA", encode_batch(KIND_TRADE, 1, 0, good)) is None
    assert c.trades["AAA"][0] == 4 and c.bad == 1


def test_replay_trade_records_all_of_a_kind_and_side_the_wire_takes(day):
    # every trade the replay's sink writes (E, C, P, Q of a generated day) goes into a batch
    from matchcore.io.nats import KIND_TRADE, TRADE_KINDS, TRADE_SIDES

    r = itch.Replayer()
    r.feed(day)
    r.finish()
    t = r.trades()
    assert set(t["kind"].tolist()) == {bytes([k]) for k in TRADE_KINDS}
    assert set(t["side"].tolist()) == {bytes([s]) for s in TRADE_SIDES}
    rec = np.zeros(len(t), WIRE_TRADE)
    for f in WIRE_TRADE.names:
        if f != "_pad":
            rec[f] = t[f]
    assert len(decode_batch(encode_batch(KIND_TRADE, 1, 0, rec[:65535]))[3]) == min(len(t),
                                                                                    65535)


@pytest.mark.parametrize("kinds", ["tob", "trade,tob"])
def test_cli_subscribe_depth_without_l2_kind_refused_before_connecting(kinds, capsys):
    # --depth sets the L2 levels shown: with --kinds leaving out l2 it was accepted and did
    # nothing. Refused before any connection (the URL has no server behind it).
    from matchcore.__main__ import main

    pytest.importorskip("nats")
    code = main(["subscribe", "nats://127.0.0.1:1", "--kinds", kinds, "--depth", "3",
                 "--timeout", "1"])
    cap = capsys.readouterr()
    assert code == 1 and cap.out == ""
    assert cap.err == "matchcore subscribe: error: --depth needs l2 among --kinds\n"
    # and a negative --depth says the value refused, as replay's and book's --depth do
    assert main(["subscribe", "nats://127.0.0.1:1", "--depth", "-1"]) == 1
    assert capsys.readouterr().err == "matchcore subscribe: error: --depth must be >= 0, got -1\n"


@pytest.mark.parametrize("kinds", ["l2", "l2,tob", "trade,l2", None])
def test_cli_subscribe_summary_depth_0_still_shows_the_l2_level_count(kinds, capsys):
    # --depth 0 showed "L2 2 levels" for --kinds l2 alone, but nothing of L2 when another kind
    # was shown too: the count is shown whenever l2 is read
    from types import SimpleNamespace

    from matchcore.cli_subscribe import _summary

    c = MarketDataConsumer()
    rec = np.zeros(2, WIRE_L2)
    rec["price"] = [100, 101]
    rec["qty"] = [5, 7]
    rec["orders"] = 1
    rec["side"] = [b"B", b"S"]
    c.apply("mc.l2.X", encode_batch(KIND_L2, 1, 0, rec))
    _summary(c, SimpleNamespace(depth=0, kinds=kinds))
    out = capsys.readouterr().out
    assert "L2 2 levels" in out and "best bids" not in out
    _summary(c, SimpleNamespace(depth=1, kinds=kinds))
    out = capsys.readouterr().out
    assert "L2 2 levels; best bids 0.0100 x 5 (1); best asks 0.0101 x 7 (1)" in out


@pytest.mark.parametrize("kinds, shown", [(["tob", "x", 1], "[1, 'x']"), ([["tob"]], "[['tob']]"),
                                          (["l2", None, None], "[None]")])
def test_kinds_not_names_refused_naming_them(kinds, shown):
    # a kind that is not a str failed in the check itself: ["x", 1] with "'<' not supported
    # between instances of 'str' and 'int'", [["tob"]] with "unhashable type: 'list'", words
    # that named neither the setting nor the kinds there are
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    want = f"unknown kinds {shown}: choose from ['l2', 'tob', 'trade']"
    for make in (lambda: filter_subjects("mc", None, kinds),
                 lambda: NatsPublisher("nats://127.0.0.1:1", kinds=kinds),
                 lambda: ReplayPublisher(None, kinds=kinds),
                 lambda: consume("nats://127.0.0.1:1", kinds=kinds)):
        with pytest.raises(ValueError) as err:
            make()
        assert str(err.value) == want


@pytest.mark.parametrize("changes, shown", [
    ([(b"B", 5)], "L2 1 level; best bids 0.0100 x 5 (1); no asks\n"),
    ([(b"B", 5), (b"S", 5), (b"B", 0)], "L2 1 level; no bids; best asks 0.0100 x 5 (1)\n"),
    ([(b"B", 5), (b"B", 0)], "L2 0 levels\n")])
def test_cli_subscribe_summary_one_sided_book_says_the_side_is_empty(changes, shown, capsys):
    # a one-sided book printed "best asks " with nothing after it, and a book whose levels
    # were all removed "best bids ; best asks ": lists cut short, not empty sides
    from types import SimpleNamespace

    from matchcore.cli_subscribe import _summary

    c = MarketDataConsumer()
    rec = np.zeros(1, WIRE_L2)
    for seq, (side, qty) in enumerate(changes):
        rec["price"], rec["qty"], rec["orders"], rec["side"] = 100, qty, qty > 0, side
        c.apply("mc.l2.X", encode_batch(KIND_L2, 1, seq, rec))
    _summary(c, SimpleNamespace(depth=5, kinds=None))
    out = capsys.readouterr().out
    assert shown in out, out
