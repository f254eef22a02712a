"""matchcore.lobster: LOBSTER message replay through the compiled book, seeding, and both checks
against the orderbook file, on hand-made files (every event type) and the shared real sample."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from matchcore.lobster import (
    SEED_BASE,
    LobsterMessages,
    read_messages,
    read_orderbook,
    replay_lobster,
    seed_id,
    seed_levels,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lobster"
REAL_MSG = DATA / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
REAL_OB = DATA / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"

# Book before message 1: asks 10100 x 10, 10200 x 20; bids 9900 x 30, 9800 x 40 (beyond 2 levels
# once 10000 arrives). Columns: time, type, id, size, price, direction.
MESSAGES = [
    (34200.000000001, 1, 1, 5, 10000, 1),     # 1 submit buy 5 @ 10000
    (34200.5, 2, 1, 2, 10000, 1),             # 2 partial cancel 2 of order 1
    (34201.25, 4, 77, 4, 10100, -1),          # 4 execution of an order added before the file
    (34202.0, 5, 0, 7, 10050, -1),            # 5 hidden execution: trade only
    (34203.0, 7, 0, 0, -1, -1),               # 7 halt
    (34204.0, 7, 0, 0, 1, -1),                # 7 resume trading
    (34205.0, 3, 1, 3, 10000, 1),             # 3 delete order 1 (9800 moves in from beyond)
    (34206.0, 1, 2, 8, 10150, -1),            # 1 submit sell 8 @ 10150
    (34207.0, 6, 0, 100, 10100, 1),           # 6 cross trade: trade only
    (34208.123456789, 4, 2, 10, 10150, -1),   # 4 execution of 10 against 8 open: clamped
    (34209.0, 3, 55, 5, 9700, 1),             # 3 delete of an unknown order beyond the depth
]
# Orderbook rows (book AFTER each message), 2 levels: ask1 p, s, bid1 p, s, ask2 p, s, bid2 p, s.
ROWS = [
    (10100, 10, 10000, 5, 10200, 20, 9900, 30),
    (10100, 10, 10000, 3, 10200, 20, 9900, 30),
    (10100, 6, 10000, 3, 10200, 20, 9900, 30),
    (10100, 6, 10000, 3, 10200, 20, 9900, 30),
    (10100, 6, 10000, 3, 10200, 20, 9900, 30),
    (10100, 6, 10000, 3, 10200, 20, 9900, 30),
    (10100, 6, 9900, 30, 10200, 20, 9800, 40),
    (10100, 6, 9900, 30, 10150, 8, 9800, 40),
    (10100, 6, 9900, 30, 10150, 8, 9800, 40),
    (10100, 6, 9900, 30, 10200, 20, 9800, 40),
    (10100, 6, 9900, 30, 10200, 20, 9800, 40),
]


def _write(tmp_path, messages=MESSAGES, rows=ROWS, header=False):
    m = tmp_path / "X_message_2.csv"
    o = tmp_path / "X_orderbook_2.csv"
    m.write_text(("Time,Type,OrderID,Size,Price,Direction\n" if header else "")
                 + "".join(",".join(str(v) for v in r) + "\n" for r in messages))
    o.write_text("".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return m, o


def _prefix(msgs: LobsterMessages, k: int) -> LobsterMessages:
    return LobsterMessages(*(getattr(msgs, f)[:k] for f in
                             ("ts_ns", "type", "order_id", "size", "price", "direction")))


@pytest.fixture
def tiny(tmp_path):
    m, o = _write(tmp_path)
    return read_messages(m), read_orderbook(o), m, o


def _after(tiny, k):
    """Replay the first k messages, seeded from the orderbook file."""
    msgs, ob, _, _ = tiny
    return replay_lobster(_prefix(msgs, k), ob[:k])


def test_lobster_read_messages_columns_and_exact_ns(tiny):
    msgs, ob, _, _ = tiny
    assert msgs.ts_ns[0] == 34200_000_000_001 and msgs.ts_ns[9] == 34208_123_456_789
    assert msgs.type.tolist() == [1, 2, 4, 5, 7, 7, 3, 1, 6, 4, 3]
    assert msgs.direction.dtype == np.int8 and msgs.price[4] == -1
    assert ob.shape == (11, 8) and ob.dtype == np.int64


def test_lobster_header_line_is_skipped(tmp_path):
    m, o = _write(tmp_path, header=True)
    assert len(read_messages(m)) == len(MESSAGES)


@pytest.mark.parametrize("first,column", [("3420O.5", "time '3420O.5'"),
                                           ("", "time ''"), ("abc", "time 'abc'")])
def test_lobster_first_row_with_a_damaged_first_field_raises_not_taken_for_a_header(
        tmp_path, first, column):
    # a first row whose first field was no number was taken for a header and dropped: the
    # file replayed without its message 1 (exit 0 without an orderbook file), or, with one,
    # "the orderbook file has 11 rows and the message file 10", naming no line
    m, o = _write(tmp_path)
    rows = m.read_text().splitlines()
    rows[0] = first + rows[0][rows[0].index(","):]
    m.write_text("\n".join(rows) + "\n")
    for call in (lambda: read_messages(m), lambda: replay_lobster(m),
                 lambda: replay_lobster(m, o)):
        with pytest.raises(ValueError, match=rf"X_message_2\.csv, line 1: {re.escape(column)} "):
            call()
    rows = o.read_text().splitlines()
    rows[0] = "1010O" + rows[0][rows[0].index(","):]
    o.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"X_orderbook_2\.csv, line 1: ask price 1 '1010O' is "
                                         r"not a number"):
        read_orderbook(o)
    # a header names its columns: none of its fields is a number
    m, o = _write(tmp_path, header=True)
    assert len(read_messages(m)) == len(MESSAGES)
    o.write_text("ask1,asksize1,bid1,bidsize1,ask2,asksize2,bid2,bidsize2\n" + o.read_text())
    assert read_orderbook(o).tolist() == [list(r) for r in ROWS]


def test_lobster_seed_is_first_row_with_first_message_undone(tiny):
    msgs, ob, _, _ = tiny
    seed = seed_levels(ob[0], 1, 10000, 5, 1)
    assert seed.tolist() == [[0, 9900, 30], [1, 10100, 10], [1, 10200, 20]]
    # a first message that removed liquidity gets it back in the seed
    assert seed_levels(ob[0], 3, 9900, 7, 1).tolist()[:2] == [[0, 10000, 5], [0, 9900, 37]]
    assert seed_levels(ob[0], 4, 10150, 3, -1).tolist()[2:] == [[1, 10100, 10], [1, 10150, 3],
                                                                [1, 10200, 20]]
    assert seed_levels(ob[0], 5, 10000, 5, 1).tolist() == [[0, 10000, 5], [0, 9900, 30],
                                                           [1, 10100, 10], [1, 10200, 20]]


def test_lobster_seed_orders_have_ids_outside_the_message_id_space(tiny):
    r = _after(tiny, 1)
    assert r.book.get(seed_id(0, 9900)) == (0, 9900, 30)
    assert seed_id(1, 10100) == SEED_BASE + (1 << 48) + 10100 > 2**63
    assert r.book.level(0, 10000) == [(1, 5)]


def test_lobster_type1_submit_rests_without_matching(tiny):
    r = _after(tiny, 1)
    assert r.book.get(1) == (0, 10000, 5)
    assert r.book.best_bid() == (10000, 5) and r.book.best_ask() == (10100, 10)


def test_lobster_type2_partial_cancel_reduces_order(tiny):
    r = _after(tiny, 2)
    assert r.book.get(1) == (0, 10000, 3)


def test_lobster_type4_unknown_id_takes_from_seed_level_and_is_a_trade(tiny):
    r = _after(tiny, 3)
    assert r.book.best_ask() == (10100, 6)
    assert r.counters["unknown_refs"] == 1 and r.counters["seed_hits"] == 1
    assert r.trades[["order_id", "price", "qty", "side", "type"]].tolist() == [(77, 10100, 4, 1, 4)]


def test_lobster_type5_hidden_execution_is_trade_only(tiny):
    before, after = _after(tiny, 3), _after(tiny, 4)
    assert after.book.state_hash() == before.book.state_hash()
    assert after.trades[-1][["price", "qty", "type"]].tolist() == (10050, 7, 5)


def test_lobster_type7_halt_and_resume_are_state_only(tiny):
    halted, resumed = _after(tiny, 5), _after(tiny, 6)
    assert halted.state == "halted" and resumed.state == "trading"
    assert resumed.halts["code"].tolist() == [-1, 1]
    assert resumed.halts["ts_ns"].tolist() == [34203 * 10**9, 34204 * 10**9]
    assert resumed.book.state_hash() == _after(tiny, 4).book.state_hash()
    assert resumed.counters["halt_events"] == 2


def test_lobster_type3_delete_removes_order(tiny):
    r = _after(tiny, 7)
    assert r.book.get(1) is None and r.book.best_bid() == (9900, 30)


def test_lobster_type6_cross_trade_is_trade_only(tiny):
    before, after = _after(tiny, 8), _after(tiny, 9)
    assert after.book.state_hash() == before.book.state_hash()
    assert after.trades[-1][["price", "qty", "type", "side"]].tolist() == (10100, 100, 6, 0)


def test_lobster_execution_above_open_qty_clamped_and_counted(tiny):
    r = _after(tiny, 10)
    assert r.counters["clamped"] == 1 and r.book.get(2) is None
    assert r.book.depth(5)[1].tolist() == [[10100, 6], [10200, 20]]


def test_lobster_unknown_id_without_seed_liquidity_counted_unresolved(tiny):
    msgs, ob, m, o = tiny
    r = replay_lobster(m, o)
    c = r.counters
    assert (c["unknown_refs"], c["seed_hits"], c["unresolved"], c["clamped"]) == (2, 1, 1, 1)
    assert (c["rejected"], c["unknown_types"], c["delete_mismatch"]) == (0, 0, 0)
    assert r.counts == {1: 2, 2: 1, 3: 2, 4: 2, 5: 1, 6: 1, 7: 2}
    assert len(r.trades) == 4 and r.trades["type"].tolist() == [4, 5, 6, 4]
    r.book.check_invariants(allow_crossed=True)


def test_lobster_verify_reports_agreement_and_drift_from_beyond_depth(tiny):
    _, _, m, o = tiny
    r = replay_lobster(m, o, verify=True)
    assert r.levels == 2
    # 9800 moves into view at message 7: the messages never said it was there.
    assert r.agree_levels.tolist() == [2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1]
    assert r.agree.tolist() == [True] * 6 + [False] * 5
    assert r.agreement_rate == pytest.approx(6 / 11) and r.top_of_book_rate == 1.0
    assert r.first_disagreement == {"message": 7, "index": 6, "side": "bid", "level": 2,
                                    "book": (0, 0), "file": (9800, 40), "type": 3, "order_id": 1}
    # Every transition is consistent except the clamped execution (10 taken from a level of 8).
    assert r.transitions.tolist() == [-1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1]
    assert r.first_transition_failure == 9
    assert "verify (top 2 levels" in r.summary()


def test_lobster_verify_with_fewer_levels_compares_only_those(tiny):
    _, _, m, o = tiny
    r = replay_lobster(m, o, verify=True, levels=1)
    assert r.agreement_rate == 1.0 and r.first_disagreement is None


def test_lobster_without_orderbook_starts_empty_and_refs_unresolved(tiny):
    _, _, m, _ = tiny
    r = replay_lobster(m)
    assert len(r.seed) == 0 and r.counters["seed_hits"] == 0 and r.counters["unresolved"] == 2
    assert r.book.best_ask() is None and r.book.best_bid() is None


def test_lobster_transition_check_flags_inconsistent_row(tmp_path):
    rows = list(ROWS)
    rows[2] = (10100, 5, 10000, 3, 10200, 20, 9900, 30)  # execution of 4 shown as 5
    m, o = _write(tmp_path, rows=rows)
    r = replay_lobster(m, o, verify=True)
    assert r.transitions[2] == 0 and r.transitions[3] == 0  # into and out of the bad row
    assert r.transitions[1] == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"verify": True, "orderbook": False}, "needs the orderbook"),
    ({"levels": 3}, "levels must be 1..2"),
    ({"levels": 0}, "levels must be 1..2"),
])
def test_lobster_bad_arguments_raise_value_error(tiny, kwargs, message):
    _, _, m, o = tiny
    ob = None if kwargs.pop("orderbook", True) is False else o
    with pytest.raises(ValueError, match=message):
        replay_lobster(m, ob, **kwargs)


@pytest.mark.parametrize("levels, exc, message", [
    # 2.5 compared 2 levels and counted no row as agreeing: agreement 0.0, no error
    (2.5, TypeError, "levels must be an integer, got float 2.5"),
    ("2", TypeError, "levels must be an integer, got str '2'"),
])
def test_lobster_levels_not_an_integer_raises_type_error(tiny, levels, exc, message):
    _, _, m, o = tiny
    with pytest.raises(exc, match=re.escape(message)):
        replay_lobster(m, o, verify=True, levels=levels)
    # without an orderbook file there is no upper bound to name ("1..None")
    with pytest.raises(ValueError, match=re.escape("levels must be >= 1, got 0")):
        replay_lobster(m, None, levels=0)
    assert replay_lobster(m, o, verify=True, levels=np.int64(2)).levels == 2


def test_lobster_messages_columns_of_different_lengths_refused_book_untouched():
    # the compiled loop read the short order_id column past its end, rested the garbage in
    # the caller's book, and only then an IndexError came from the trade extraction
    from matchcore import OrderBook
    from matchcore._lobster import replay as compiled_replay

    n = 1000
    cols = dict(ts_ns=np.arange(n, dtype=np.int64), type=np.ones(n, np.int8),
                order_id=np.arange(1, n + 1, dtype=np.int64), size=np.full(n, 10, np.int64),
                price=np.full(n, 100, np.int64), direction=np.ones(n, np.int8))
    for short in cols:
        bad = dict(cols, **{short: cols[short][:1]})
        book = OrderBook()
        with pytest.raises(ValueError, match="of one length"):
            replay_lobster(LobsterMessages(**bad), book=book)
        assert len(book) == 0
        with pytest.raises(ValueError, match="columns of different lengths"):
            compiled_replay(book, bad["type"], bad["ts_ns"], bad["order_id"], bad["size"],
                            bad["price"], bad["direction"], None, 0)
        assert len(book) == 0
    assert len(replay_lobster(LobsterMessages(**cols)).book) == n


@pytest.mark.parametrize("row, fix, expect", [
    # two ask levels at one price: the seed held two orders of one synthetic id, and the
    # replay failed with "order 9223653511836586464 rejected: DUPLICATE_ORDER_ID"
    (0, {4: 10100}, "line 1: ask price 2 10100 is not above ask price 1 10100"),
    (3, {4: 10050}, "line 4: ask price 2 10050 is not above ask price 1 10100"),
    (5, {6: 10000}, "line 6: bid price 2 10000 is not below bid price 1 10000"),
])
def test_lobster_orderbook_levels_not_best_first_raise_naming_line(tmp_path, row, fix, expect):
    rows = [list(r) for r in ROWS]
    for col, value in fix.items():
        rows[row][col] = value
    m, o = _write(tmp_path, rows=rows)
    with pytest.raises(ValueError, match=re.escape(f"{o}, {expect}")):
        read_orderbook(o)
    with pytest.raises(ValueError, match=re.escape(expect)):
        replay_lobster(m, o, verify=True)
    # an empty level after the last one holds any price (LOBSTER's dummies)
    rows = [list(r) for r in ROWS]
    rows[0][4:6] = [9999999999, 0]
    rows[0][6:8] = [-9999999999, 0]
    m, o = _write(tmp_path, rows=rows)
    assert read_orderbook(o)[0].tolist() == rows[0]


def test_lobster_mismatched_files_raise_value_error(tmp_path):
    m, o = _write(tmp_path, rows=ROWS[:-1])
    with pytest.raises(ValueError, match="one row per message"):
        replay_lobster(m, o)
    bad = tmp_path / "bad_orderbook.csv"
    bad.write_text("1,2,3,4,5\n")
    with pytest.raises(ValueError, match="not 4 per level"):
        read_orderbook(bad)
    short = tmp_path / "short_message.csv"
    short.write_text("34200.1,1,5,10\n")
    with pytest.raises(ValueError, match="at least 6"):
        read_messages(short)


def test_lobster_empty_message_file_gives_empty_result(tmp_path):
    m, o = _write(tmp_path, messages=[], rows=[])
    r = replay_lobster(m)
    assert r.messages == 0 and len(r.trades) == 0 and len(r.book) == 0


# ---- the shared real sample ----

@pytest.fixture(scope="module")
def real():
    if not (REAL_MSG.exists() and REAL_OB.exists()):
        pytest.skip(f"shared LOBSTER sample not found in {DATA} (../shared/data is absent)")
    return read_messages(REAL_MSG), read_orderbook(REAL_OB)


def _naive_replay(msgs: LobsterMessages, seed: np.ndarray):
    """An independent, obviously correct replay on dicts: the same rules, level sums at the end."""
    orders = {}
    seed_qty = {(int(s), int(p)): int(q) for s, p, q in seed}
    for t, oid, size, price, d in zip(msgs.type.tolist(), msgs.order_id.tolist(),
                                      msgs.size.tolist(), msgs.price.tolist(),
                                      msgs.direction.tolist()):
        side = 0 if d > 0 else 1
        if t == 1:
            orders[oid] = [side, price, size]
        elif t in (2, 3, 4):
            if oid in orders:
                if t == 3:
                    del orders[oid]
                else:
                    orders[oid][2] -= min(size, orders[oid][2])
                    if orders[oid][2] == 0:
                        del orders[oid]
            elif seed_qty.get((side, price), 0) > 0:
                seed_qty[(side, price)] -= min(size, seed_qty[(side, price)])
    levels = defaultdict(int)
    for side, price, q in orders.values():
        levels[(side, price)] += q
    for key, q in seed_qty.items():
        levels[key] += q
    bids = sorted(((p, q) for (s, p), q in levels.items() if s == 0 and q > 0), reverse=True)
    asks = sorted((p, q) for (s, p), q in levels.items() if s == 1 and q > 0)
    return bids, asks


def test_lobster_real_sample_counts_and_book_equal_naive_replay(real):
    msgs, ob = real
    r = replay_lobster(msgs, ob)
    assert r.messages == 999 and r.counts == {1: 471, 3: 369, 4: 98, 5: 61}
    assert len(r.trades) == 98 + 61
    r.book.check_invariants(allow_crossed=True)
    bids, asks = _naive_replay(msgs, r.seed)
    got_b, got_a = r.book.depth(10_000)
    assert [tuple(x) for x in got_b.tolist()] == bids
    assert [tuple(x) for x in got_a.tolist()] == asks


def test_lobster_real_sample_every_transition_agrees(real):
    msgs, ob = real
    r = replay_lobster(msgs, ob, verify=True)
    assert r.transition_rate == 1.0 and r.first_transition_failure is None
    assert r.transitions[0] == -1 and (r.transitions[1:] == 1).all()


def test_lobster_real_sample_seed_reproduces_first_row_and_drift_starts_at_deepest_level(real):
    msgs, ob = real
    r = replay_lobster(msgs, ob, verify=True)
    assert r.agree_levels[0] == 10, "the book after message 1 must equal orderbook row 1"
    fd = r.first_disagreement
    assert fd is not None
    # What first differs is the deepest level, at a price that crosses the file's depth boundary:
    # liquidity beyond level 10 changes without messages (here a level left while out of view),
    # so the book keeps what the file no longer has, or lacks what moves into view.
    assert fd["level"] == 10 and fd["book"] != fd["file"]
    k = fd["index"]
    assert fd["message"] == k + 1
    assert (r.agree_levels[:k] == 10).all()
    side_col = 0 if fd["side"] == "ask" else 2
    assert fd["file"][0] not in ob[k - 1, side_col::4].tolist()


# ---- every field is checked: a bad row is an error naming its line, never replayed ----

_GOOD = ["34200.0,1,1,100,5000000,1", "34200.0,1,2,50,5010000,-1"]


@pytest.mark.parametrize("row, column", [
    ("34200.1,257,3,100,4990000,1", "event type '257'"),       # would wrap to 1 in int8
    ("34200.1,-255,3,100,4990000,1", "event type '-255'"),
    ("34200.1,3.5,1,100,5000000,1", "event type '3.5'"),       # would truncate to a delete
    ("34200.1,8,3,100,4990000,1", "event type '8'"),
    ("34200.1,1,3,100,4990000,7", "direction '7'"),            # would rest as a buy
    ("34200.1,1,3,100,4990000,0", "direction '0'"),
    ("34200.1,4,2,-5,5010000,-1", "size '-5'"),                # would be a trade of -5
    ("34200.1,2,1,0,5000000,1", "size '0'"),
    ("34200.1,1,3,100.7,4990000,1", "size '100.7'"),
    ("34200.1,1,3,1e19,4990000,1", "size '1e19'"),
    ("34200.1,1,3,100,4990000.5,1", "price '4990000.5'"),
    ("34200.1,1,3,100,nan,1", "price 'nan'"),
    ("34200.1,1,3,100,0,1", "price '0'"),
    ("34200.1,7,0,0,5,-1", "price '5'"),                       # halt codes are -1, 0, 1
    ("nan,1,3,100,4990000,1", "time 'nan'"),
    ("inf,1,3,100,4990000,1", "time 'inf'"),
    ("-1,1,3,100,4990000,1", "time '-1'"),
    ("34200.1,1,1.5,100,4990000,1", "order id '1.5'"),
    ("34200.1,1,-4,100,4990000,1", "order id '-4'"),
    ("34200.1,1,99999999999999999999,100,4990000,1", "order id '99999999999999999999'"),
    ("34200.1,1,3,abc,4990000,1", "size 'abc'"),
])
@pytest.mark.parametrize("header", [False, True])
def test_lobster_invalid_field_raises_naming_line_and_field(tmp_path, row, column, header):
    p = tmp_path / "BAD_message_1.csv"
    p.write_text(("Time,Type,OrderID,Size,Price,Direction\n" if header else "")
                 + "\n".join(_GOOD + [row, _GOOD[0]]) + "\n")
    line = 4 if header else 3
    with pytest.raises(ValueError, match=f"line {line}: {re.escape(column)} "):
        read_messages(p)
    with pytest.raises(ValueError, match=f"line {line}: "):
        replay_lobster(p)


def test_lobster_order_ids_above_2_53_read_exactly_and_do_not_collide(tmp_path):
    big = 2 ** 53
    p = tmp_path / "BIG_message_1.csv"
    p.write_text("\n".join(_GOOD + [f"34200.1,1,{big},100,4990000,1",
                                    f"34200.2,1,{big + 1},70,4980000,1",
                                    f"34200.3,3,{big + 1},70,4980000,1"]) + "\n")
    m = read_messages(p)
    assert m.order_id.tolist() == [1, 2, big, big + 1, big + 1]
    r = replay_lobster(m)
    assert r.counters["rejected"] == 0 and r.counters["unknown_refs"] == 0
    assert r.book.get(big) == (0, 4990000, 100) and r.book.get(big + 1) is None


def test_lobster_sizes_above_2_53_read_exactly_or_refused_beyond_int64(tmp_path):
    # Sizes and prices were read through float64: a size of 2**53 + 1 rested as 2**53 (from
    # either file), a price of 10000.00000000000001 as the whole 10000, and columns given as
    # int64 holding 2**53 + 2 were refused as "not a positive whole number of shares".
    big = 2 ** 53 + 1
    p = tmp_path / "BIG_message_1.csv"
    p.write_text("\n".join(_GOOD + [f"34200.1,1,3,{big},4990000,1",
                                    f"34200.2,1,4,{2**63 - 1},4980000,1"]) + "\n")
    m = read_messages(p)
    assert m.size.tolist() == [100, 50, big, 2**63 - 1]
    r = replay_lobster(m)
    assert r.book.get(3) == (0, 4990000, big) and r.book.get(4) == (0, 4980000, 2**63 - 1)
    cols = {k: getattr(m, k) for k in ("ts_ns", "type", "order_id", "size", "price",
                                        "direction")}
    cols["size"] = cols["size"].copy()
    cols["size"][2] = big + 1
    assert replay_lobster(LobsterMessages(**cols)).book.get(3) == (0, 4990000, big + 1)
    for row, expect in (
            (f"34200.1,1,3,{2**63},4990000,1", f"size '{2**63}' is above 2**63-1"),
            ("34200.1,1,3,1e19,4990000,1", "size '1e19' is above 2**63-1"),
            ("34200.1,1,3,100,4990000.00000000000001,1",
             "price '4990000.00000000000001' is not a positive whole price"),
            ("34200.1,1,3,9007199254740993.5,4990000,1",
             "size '9007199254740993.5' is not a positive whole number")):
        p.write_text("\n".join(_GOOD + [row]) + "\n")
        with pytest.raises(ValueError, match=f"line 3: {re.escape(expect)}"):
            read_messages(p)
    # decimal and exponent forms of whole numbers are read as the numbers they spell
    p.write_text("\n".join(_GOOD + ["34200.1,1.0,3,1e2,4990000.0,1"]) + "\n")
    m = read_messages(p)
    assert (m.type[2], m.size[2], m.price[2]) == (1, 100, 4990000)
    o = tmp_path / "BIG_orderbook_1.csv"
    o.write_text(f"10100,{big},9900,30\n10100,10,9900,{2**63 - 1}\n")
    assert read_orderbook(o).tolist() == [[10100, big, 9900, 30], [10100, 10, 9900, 2**63 - 1]]
    o.write_text(f"10100,10,9900,30\n10100,10.0,9900,{big}\n")
    assert read_orderbook(o).tolist() == [[10100, 10, 9900, 30], [10100, 10, 9900, big]]
    for field, expect in ((str(2**63), f"bid size 1 {2**63} is above 2**63-1"),
                          ("10.00000000000000001", "bid size 1 10.00000000000000001 is not a "
                                                   "whole number")):
        o.write_text(f"10100,10,9900,30\n10100,10,9900,{field}\n")
        with pytest.raises(ValueError, match=f"line 2: {re.escape(expect)}"):
            read_orderbook(o)
    # an object array's Python ints are read exactly too
    p.write_text("\n".join(_GOOD) + "\n")
    exact = np.array([[10100, big, 9900, 30]] * 2, dtype=object)
    assert replay_lobster(read_messages(p), exact).seed.tolist() == [[0, 9900, 30],
                                                                     [1, 10100, big]]
    exact[1, 3] = 2**63
    with pytest.raises(ValueError, match=re.escape(f"line 2: bid size 1 {2**63} is above "
                                                   "2**63-1")):
        replay_lobster(read_messages(p), exact)


def test_lobster_files_of_float_formatted_integers_read_as_the_plain_ones(tmp_path):
    # A float column's export writes "5853300.0": such a file is read as the integers it
    # spells, also where it holds a value float64 cannot tell from its neighbour
    if not (REAL_MSG.exists() and REAL_OB.exists()):
        pytest.skip(f"shared LOBSTER sample not found in {DATA}")
    ob = read_orderbook(REAL_OB)
    msgs = read_messages(REAL_MSG)
    o = tmp_path / "F_orderbook_10.csv"
    o.write_text("".join(",".join(f"{v}.0" for v in row) + "\n" for row in ob.tolist()))
    assert np.array_equal(read_orderbook(o), ob)
    big = ob.copy()
    big[5, 1] = 2**53 + 1
    o.write_text("".join(",".join(f"{v}.00" for v in row) + "\n" for row in big.tolist()))
    assert np.array_equal(read_orderbook(o), big)
    m = tmp_path / "F_message_10.csv"
    m.write_text("".join(f"{t / 1e9:.9f},{ty}.0,{i},{q}.0,{p}.0,{d}.0\n" for t, ty, i, q, p, d in
                         zip(msgs.ts_ns.tolist(), msgs.type.tolist(), msgs.order_id.tolist(),
                             msgs.size.tolist(), msgs.price.tolist(),
                             msgs.direction.tolist())))
    got = read_messages(m)
    for name in ("ts_ns", "type", "order_id", "size", "price", "direction"):
        assert np.array_equal(getattr(got, name), getattr(msgs, name)), name


def test_lobster_columns_given_directly_are_checked_too(tiny):
    msgs, _, _, _ = tiny
    bad = LobsterMessages(msgs.ts_ns, msgs.type, msgs.order_id, msgs.size, msgs.price,
                          msgs.direction.copy())
    bad.direction[2] = 7
    with pytest.raises(ValueError, match="message 3: direction 7"):
        replay_lobster(bad)


def test_lobster_real_sample_passes_every_field_check():
    if not REAL_MSG.exists():
        pytest.skip(f"shared LOBSTER sample not found at {REAL_MSG}")
    m = read_messages(REAL_MSG)
    assert len(m) == 999 and set(np.unique(m.type).tolist()) == {1, 3, 4, 5}
    assert np.all(m.size > 0) and np.all(m.price > 0) and set(m.direction.tolist()) == {-1, 1}


def test_read_messages_from_pipe_written_in_pieces_reads_every_row(tmp_path):
    # `producer | matchcore replay /dev/stdin --format lobster`: the header check's first look
    # buffered the first rows, and the file opened again for the rest began after them, so a
    # pipe whose first write ended on a row boundary lost those rows without an error
    import fcntl
    import os
    import struct
    import termios
    import threading
    import time

    rows = [(34200.0 + i / 1000, 1, i + 1, 10 + i % 7, 10000 + 100 * (i % 5), 1 - 2 * (i % 2))
            for i in range(400)]
    lines = [",".join(str(v) for v in row).encode() + b"\n" for row in rows]
    path = tmp_path / "m.csv"
    path.write_bytes(b"".join(lines))
    want = read_messages(path)
    for header in (b"", b"time,type,id,size,price,direction\n"):
        r, w = os.pipe()
        split = []

        def write():
            with os.fdopen(w, "wb") as f:
                f.write(header + b"".join(lines[:10]))
                f.flush()
                # the rest only once the reader has taken the first rows out of the pipe (a
                # fixed 0.3 s wait let a reader that started late find every row in its first
                # read, and the test passed without the split it is about)
                deadline = time.monotonic() + 60
                while struct.unpack("i", fcntl.ioctl(w, termios.FIONREAD, b"\0" * 4))[0]:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.001)
                else:
                    split.append(True)
                f.write(b"".join(lines[10:]))

        t = threading.Thread(target=write, daemon=True)
        t.start()
        try:
            got = read_messages(f"/dev/fd/{r}")
        finally:
            os.close(r)
            t.join(10)
        assert split, "the reader never took the first rows"
        assert len(got.order_id) == len(rows)
        for name in ("ts_ns", "type", "order_id", "size", "price", "direction"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), name


def test_read_messages_bom_or_blank_lines_before_first_row_keep_every_row(tmp_path):
    # a UTF-8 byte-order mark made the first row look like a header (dropped: 1 row lost), and
    # a blank first line made the whole file read as empty (every row lost), both silently
    lines = [b"%d.5,1,%d,%d,%d,1\n" % (34200 + i, i + 1, 5 + i, 10000 + i) for i in range(50)]
    rows = b"".join(lines)
    plain = tmp_path / "plain.csv"
    plain.write_bytes(rows)
    want = read_messages(plain)
    assert len(want.order_id) == 50
    for name, data in (("bom", b"\xef\xbb\xbf" + rows), ("blank", b"\n" + rows),
                       ("blanks_crlf", b"\r\n \r\n" + rows.replace(b"\n", b"\r\n")),
                       ("bom_header", b"\xef\xbb\xbftime,type,id,size,price,direction\n" + rows)):
        p = tmp_path / f"{name}.csv"
        p.write_bytes(data)
        got = read_messages(p)
        for col in ("ts_ns", "type", "order_id", "size", "price", "direction"):
            assert np.array_equal(getattr(got, col), getattr(want, col)), (name, col)
    # line numbers in errors still count the lines before the first row
    p = tmp_path / "bad.csv"
    p.write_bytes(b"\n\ntime,type,id,size,price,direction\n" + b"".join(lines[:20])
                  + b"34300.5,9,1,1,1,1\n")
    with pytest.raises(ValueError, match=r"bad\.csv, line 24: event type '9' "):
        read_messages(p)
    # the orderbook reader shares the loader
    ob = tmp_path / "ob.csv"
    ob.write_bytes(b"\xef\xbb\xbf" + b"10100,10,9900,30\n10100,10,9900,25\n")
    assert read_orderbook(ob).tolist() == [[10100, 10, 9900, 30], [10100, 10, 9900, 25]]


@pytest.mark.parametrize("cell,value,expect", [
    (0, "nan", "ask price 1 nan is not a whole number"),
    (2, "inf", "bid price 1 inf is not a whole number"),
    (1, "200.7", "ask size 1 200.7 is not a whole number"),
    (3, "1e300", "bid size 1 1e300 is above 2**63-1"),
    (5, "-3", "ask size 2 -3 is negative"),
    (2, "-5853300", "bid price 1 -5853300 is not a positive price for a level with shares"),
    (2, str(2**48), f"bid price 1 {2**48} is at or above 2**48"),
    (0, str(2**50), f"ask price 1 {2**50} is at or above 2**48"),
])
def test_lobster_orderbook_invalid_field_raises_naming_line_and_field(tmp_path, cell, value,
                                                                      expect):
    # The orderbook file was cast to int64 unchecked: a NaN or an infinity became garbage that
    # seeded the book (or failed naming a synthetic order id), a fraction was truncated.
    if not REAL_OB.exists():
        pytest.skip(f"shared market data not found at {REAL_OB}")
    rows = REAL_OB.read_text().splitlines()
    cells = rows[1].split(",")
    cells[cell] = value
    rows[1] = ",".join(cells)
    ob = tmp_path / "X_orderbook_10.csv"
    ob.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=f"line 2: {re.escape(expect)}"):
        read_orderbook(ob)
    with pytest.raises(ValueError, match=f"line 2: {re.escape(expect)}"):
        replay_lobster(REAL_MSG, ob, verify=True)
    arr = np.loadtxt(ob, delimiter=",")
    with pytest.raises(ValueError, match="orderbook array, line 2: "):
        replay_lobster(REAL_MSG, arr)
    # an empty level holds any price (LOBSTER writes dummies there)
    good = read_orderbook(REAL_OB)
    good[0, 38:40] = (-9999999999, 0)
    assert replay_lobster(REAL_MSG, good).counters["rejected"] == 0


def test_lobster_orderbook_price_beyond_seed_ids_refused_before_replay(capsys, tmp_path):
    # seed ids are SEED_BASE + side * 2**48 + price: a bid at p + 2**48 got the id of the ask
    # seed at p, and the replay ended in "order 9223653511831496564 rejected:
    # DUPLICATE_ORDER_ID", naming a synthetic id and no line of the file
    from matchcore.__main__ import main
    msg = [(34200.5, 1, 10099, 5, 10000, 1)]
    rows = [(10100, 10, 10100 + 2**48, 30)]
    m, o = _write(tmp_path, msg, rows)
    expect = rf"X_orderbook_2\.csv, line 1: bid price 1 {10100 + 2**48} is at or above 2\*\*48"
    with pytest.raises(ValueError, match=expect):
        read_orderbook(o)
    with pytest.raises(ValueError, match=expect):
        replay_lobster(m, o)
    assert main(["replay", str(m), "--format", "lobster", "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and re.search(expect, err) and "DUPLICATE" not in err, err
    # an ask near 2**63 (an int64 array: a CSV holds whole numbers up to 2**53) wrapped onto
    # the id of the real order 10099
    for bad in (rows, [(2**63 - 2**48 + 10099, 10, 9900, 30)]):
        with pytest.raises(ValueError, match=r"^orderbook array, line 1: (ask|bid) price 1 "
                                             r"\d+ is at or above 2\*\*48"):
            replay_lobster(m, np.array(bad, dtype=np.int64))
    # an empty level still holds any price
    empty = np.array([(2**63 - 1, 0, 10100 + 2**48, 0)], dtype=np.int64)
    assert replay_lobster(m, empty).counters["rejected"] == 0


@pytest.mark.parametrize("side,price,why", [
    (2, 5, "side must be 0 (buy) or 1 (sell), got 2"),
    (-1, 5, "side must be 0 (buy) or 1 (sell), got -1"),
    (0, 0, "price must be in 1..2**48-1 (a seed level's), got 0"),
    (0, -1, "price must be in 1..2**48-1 (a seed level's), got -1"),
    (0, 2**48, f"price must be in 1..2**48-1 (a seed level's), got {2**48}"),
])
def test_lobster_seed_id_outside_the_seed_levels_refused(side, price, why):
    # seed_id(0, 2**48) was seed_id(1, 0), seed_id(0, -1) the LOBSTER order id 2**63 - 1, and
    # seed_id(1, 2**63 - 1) wrapped to a small id: ids of other orders, given without a word
    with pytest.raises(ValueError, match=f"^{re.escape(why)}$"):
        seed_id(side, price)
    assert seed_id(1, 2**48 - 1) == SEED_BASE + (1 << 48) + 2**48 - 1 and seed_id(0, 1) > 2**63


def test_lobster_message_price_beyond_seed_ids_refused_before_replay(capsys, tmp_path):
    # only orderbook prices were held below 2**48: a deletion of an order added before the
    # file, on the buy side at p + 2**48, took the sell seed at p (its id), so the ask level
    # at p emptied and every later row disagreed; a message price near 2**63 (columns built
    # by the caller) wrapped a seed id onto a real order's
    from matchcore.__main__ import main
    msg = [(34200.5, 1, 10099, 5, 10000, 1), (34201.0, 3, 55, 10, 10100 + 2**48, 1)]
    rows = [(10100, 10, 10000, 5), (10100, 10, 10000, 5)]
    m, o = _write(tmp_path, msg, rows)
    expect = rf"X_message_2\.csv, line 2: price '{10100 + 2**48}(\.0)?' is at or above 2\*\*48"
    with pytest.raises(ValueError, match=expect):
        read_messages(m)
    with pytest.raises(ValueError, match=expect):
        replay_lobster(m, o, verify=True)
    assert main(["replay", str(m), "--format", "lobster", "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and re.search(expect, err), err
    ob = read_orderbook(o)
    book_msgs = read_messages(_write(tmp_path, msg[:1], rows[:1])[0])
    for price, side in ((10100 + 2**48, 1), (2**63 - 2**48 + 10099, -1)):
        cols = LobsterMessages(*(np.append(getattr(book_msgs, f), v) for f, v in (
            ("ts_ns", 34201 * 10**9), ("type", 3), ("order_id", 55), ("size", 10),
            ("price", price), ("direction", side))))
        with pytest.raises(ValueError, match=rf"^message 2: price {price} is at or above "
                                             r"2\*\*48"):
            replay_lobster(cols, ob)
    # the largest price a seed id holds still replays (an unresolved deletion)
    cols = LobsterMessages(*(np.append(getattr(book_msgs, f), v) for f, v in (
        ("ts_ns", 34201 * 10**9), ("type", 3), ("order_id", 55), ("size", 10),
        ("price", 2**48 - 1), ("direction", 1))))
    r = replay_lobster(cols, ob)
    assert r.counters["unresolved"] == 1 and r.book.best_ask() == (10100, 10)


@pytest.mark.parametrize("kw", [{}, {"verify": True}, {"verify": True, "levels": 1}])
def test_lobster_orderbook_array_of_no_level_refused_naming_it(tiny, kw):
    # an array of 0 columns passed as 0 levels of 4: replayed with an empty seed and no word,
    # or with verify=True refused after the replay as "levels must be >= 1, got 0" (levels
    # not given) and "levels must be >= 1, got 1"
    msgs, _, _, _ = tiny
    for empty in (np.zeros((len(msgs), 0), dtype=np.int64), np.zeros((0, 0))):
        with pytest.raises(ValueError, match=r"^orderbook array: 0 columns: an orderbook has "
                                             r"4 per level, at least one level$"):
            replay_lobster(msgs if len(empty) else _prefix(msgs, 0), empty, **kw)


def test_lobster_inputs_of_another_type_refused_naming_the_argument(tiny):
    # a list, None or a number reached pathlib: "expected str, bytes or os.PathLike
    # object, not list", naming neither the argument nor what it takes
    msgs, ob, m, o = tiny
    for bad in (None, ob.tolist(), 5):
        with pytest.raises(TypeError, match=rf"^message_csv must be a path \(str or "
                                            rf"os\.PathLike\) or LobsterMessages, got "
                                            rf"{type(bad).__name__}$"):
            replay_lobster(bad, o)
        with pytest.raises(TypeError, match=rf"^path must be a str or os\.PathLike, got "
                                            rf"{type(bad).__name__}$"):
            read_messages(bad)
        with pytest.raises(TypeError, match=rf"^path must be a str or os\.PathLike, got "
                                            rf"{type(bad).__name__}$"):
            read_orderbook(bad)
    for bad in (ob.tolist(), 5):
        with pytest.raises(TypeError, match=rf"^orderbook_csv must be a path \(str or "
                                            rf"os\.PathLike\), a numpy array or None, got "
                                            rf"{type(bad).__name__}$"):
            replay_lobster(m, bad)
    # what they take, as before
    assert replay_lobster(str(m), str(o)).messages == replay_lobster(msgs, ob).messages


def test_read_messages_ragged_or_binary_file_raises_naming_file_and_line(tmp_path):
    # numpy's reader said "the number of columns changed from 6 to 3 at row 3; use `usecols`
    # to select a subset" (no file, a row count that skips the header, an option nobody can
    # pass), or "unquoted embedded newline" of a DBN or ITCH file given as --format lobster
    from matchcore.feeds.dbn_gen import generate_mbo
    from matchcore.itch import generate

    rows = "\n".join(",".join(str(x) for x in m) for m in MESSAGES[:3])
    cut = tmp_path / "cut_message_1.csv"
    cut.write_text("time,type,id,size,price,dir\n" + rows + "\n34200.5,1,7\n")
    with pytest.raises(ValueError, match=re.escape(f"{cut}: line 5 has 3 columns, the lines "
                                                   "before it 6")):
        read_messages(cut)
    ob = tmp_path / "cut_orderbook_1.csv"
    ob.write_text("5859400,200,5853300,18\n5859400,200\n")
    with pytest.raises(ValueError, match=re.escape(f"{ob}: line 2 has 2 columns, the lines "
                                                   "before it 4")):
        read_orderbook(ob)
    itch = tmp_path / "day_message_1.csv"
    itch.write_bytes(generate(None, messages=200, symbols=1, seed=1))
    with pytest.raises(ValueError, match=re.escape(f"{itch}: a binary file (it holds NUL "
                                                   "bytes, which no CSV does), not a LOBSTER CSV")):
        read_messages(itch)
    pytest.importorskip("databento_dbn", reason="writing a DBN file needs the 'dbn' extra")
    dbn = tmp_path / "mbo_message_1.csv"
    dbn.write_bytes(generate_mbo(None, records=50, instruments=1, seed=1))
    with pytest.raises(ValueError, match=re.escape(f"{dbn}: a DBN file, not a LOBSTER CSV")):
        read_messages(dbn)


def test_read_messages_binary_file_without_newline_or_with_one_raises_binary(tmp_path):
    # an ITCH file with no newline byte was one "header" line: 0 LOBSTER messages, exit 0;
    # one whose only newline byte sits in its first message made numpy warn of a line
    # holding no data before the error
    import struct
    import warnings

    def msg(t, body):
        return struct.pack(">H", len(body) + 1) + t + body

    ts = struct.pack(">HI", 0, 1)
    no_newline = b"".join(msg(b"S", struct.pack(">HH", 0, 0) + ts + bytes([code])) for code in b"OSQ")
    one_newline = msg(b"S", struct.pack(">HH", 0, 10) + ts + b"O") + no_newline
    assert b"\n" not in no_newline and one_newline.count(b"\n") == 1
    for name, data in (("a", no_newline), ("b", one_newline)):
        path = tmp_path / f"{name}_message_1.csv"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match=re.escape(f"{path}: a binary file")):
                read_messages(path)
            with pytest.raises(ValueError, match=re.escape(f"{path}: a binary file")):
                replay_lobster(path)


def test_replay_lobster_empty_files_verify_summary_says_nothing_compared(tmp_path):
    # summary() formatted the agreement rates, None without messages: TypeError, and a
    # traceback from matchcore replay --format lobster --verify
    msg, ob = tmp_path / "E_message_1.csv", tmp_path / "E_orderbook_1.csv"
    msg.write_text("")
    ob.write_text("")
    r = replay_lobster(msg, ob, verify=True)
    assert r.messages == 0 and r.agreement_rate is None and r.transition_rate is None
    assert r.summary().splitlines()[-1] == "verify: no messages, nothing compared"


def test_lobster_cross_trade_negative_pseudo_id_read_detected_and_replayed(tmp_path):
    # LOBSTER writes a cross trade (type 6) with a pseudo order id: -1 the opening cross, -2
    # the closing cross. A file whose open came after 9:30 starts with one: it was refused
    # ("order id '-1' is negative"), and without --format not even taken for LOBSTER
    from matchcore._magic import detect_format

    if not REAL_MSG.exists():
        pytest.skip(f"shared market data not found at {REAL_MSG}")
    body = REAL_MSG.read_text().rstrip("\n") + "\n"
    rows = REAL_OB.read_text().splitlines()
    ob = tmp_path / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
    ob.write_text("\n".join([rows[0]] + rows + [rows[-1]]) + "\n")
    files = {}
    for ids in ((-1, -2), (0, 0)):
        m = tmp_path / f"{ids[0]}" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
        m.parent.mkdir()
        m.write_text(f"34200.000000001,6,{ids[0]},1200,5853300,1\n" + body
                     + f"57599.999999999,6,{ids[1]},800,5853300,-1\n")
        files[ids] = m
    m = files[(-1, -2)]
    msgs = read_messages(m)
    assert msgs.order_id[0] == -1 and msgs.order_id[-1] == -2 and len(msgs.type) == 1001
    assert detect_format(m) == "lobster"
    r = replay_lobster(msgs, read_orderbook(ob))
    same = replay_lobster(read_messages(files[(0, 0)]), read_orderbook(ob))
    assert r.book.state_hash() == same.book.state_hash()       # a trade only, as with id 0
    crosses = r.trades[r.trades["type"] == 6]
    assert crosses["order_id"].tolist() == [-1, -2] and crosses["qty"].tolist() == [1200, 800]
    bad = tmp_path / "bad_message_1.csv"
    bad.write_text("34200.1,3,-1,100,5853300,1\n")
    with pytest.raises(ValueError, match="order id '-1' is negative"):
        read_messages(bad)


def test_replay_lobster_no_messages_summary_says_types_none(tmp_path):
    # the counts by type were joined after "types ": with none the line ended "types "
    msg = tmp_path / "E_message_1.csv"
    msg.write_text("")
    first = replay_lobster(msg).summary().splitlines()[0]
    assert first.endswith("; types none"), first


def test_replay_lobster_small_rate_not_shown_as_zero(tiny):
    # the rate was always in millions with two decimals: a few messages over a slow second
    # (a small file read from a slow disk) read "(0.00 M msg/s)", as if nothing had been
    # replayed; now as the replay commands show theirs (_cliutil.rate_text)
    _, _, m, o = tiny
    r = replay_lobster(m, o)
    r.elapsed_s = r.messages / 2000.0
    assert f"{r.messages:,} LOBSTER messages in" in r.summary()
    assert "(2,000 msg/s)" in r.summary().splitlines()[0], r.summary()
    r.elapsed_s = r.messages / 2.5e6
    assert "(2.50 M msg/s)" in r.summary().splitlines()[0], r.summary()


def test_lobster_verify_summary_without_failures_says_none_not_python_none(tmp_path):
    # where every level and transition agreed, the summary printed Python's None: "first
    # disagreement: None", "first failure at message None" (matchcore replay --verify too).
    # The first 9 messages of the hand-made file: the clamped execution is the 10th.
    m, o = _write(tmp_path, MESSAGES[:9], ROWS[:9])
    r = replay_lobster(m, o, verify=True, levels=1)
    assert r.first_disagreement is None and r.first_transition_failure is None
    text = r.summary()
    assert "None" not in text
    assert text.splitlines()[-2].endswith("; first disagreement: none")
    assert text.splitlines()[-1].endswith("100.00% agree; no transition fails")


def test_lobster_verify_counts_messages_from_one_as_readme_does(tiny):
    # the summary and first_disagreement called the 0-based index "message": the 7th message
    # was "message 6" while the README counts from 1 ("message 13 (index 12)"), and the first
    # failing transition (the 10th message, the clamped execution) was "message 9"
    _, _, m, o = tiny
    r = replay_lobster(m, o, verify=True)
    fd = r.first_disagreement
    assert (fd["message"], fd["index"]) == (7, 6) and r.agree_levels[fd["index"]] < r.levels
    assert r.first_transition_failure == 9 and r.transitions[9] == 0
    lines = r.summary().splitlines()
    assert lines[-2].endswith("; first disagreement: message 7 (index 6), bid level 2: "
                              "book (0, 0), file (9800, 40)"), lines[-2]
    assert lines[-1].endswith("; first failure at message 10 (index 9)"), lines[-1]


@pytest.mark.parametrize("which", ["message_csv", "orderbook_csv", "read_messages",
                                   "read_orderbook"])
@pytest.mark.parametrize("bad", ["slash", "empty"])
def test_lobster_path_with_trailing_separator_or_empty_refused(tmp_path, which, bad):
    # "x.csv/" names a directory: through Path the separator was dropped and the file x.csv
    # read; "" is "." to Path: "Is a directory: '.'", of a directory nobody had named
    # (the files the test writes itself: it ran into FileNotFoundError where ../shared is absent)
    msg, ob = _write(tmp_path)
    name = "path" if which.startswith("read_") else which
    given = {"message_csv": msg, "read_messages": msg}.get(which, ob)
    given = str(given) + "/" if bad == "slash" else ""
    expect = (f"{name}: {given} names a directory (it ends with /), not a file"
              if bad == "slash" else f"{name}: an empty path")
    run = {"message_csv": lambda: replay_lobster(given, str(ob)),
           "orderbook_csv": lambda: replay_lobster(str(msg), given),
           "read_messages": lambda: read_messages(given),
           "read_orderbook": lambda: read_orderbook(given)}[which]
    with pytest.raises(ValueError, match=re.escape(expect)):
        run()


@pytest.mark.parametrize("with_orderbook", [True, False], ids=["orderbook", "no-orderbook"])
def test_lobster_levels_without_verify_refused(tiny, with_orderbook):
    # levels is the depth verify compares: without verify=True it was accepted and ignored
    # (nothing compared, r.levels None)
    _, _, m, o = tiny
    with pytest.raises(ValueError, match=re.escape("levels=1 needs verify=True")):
        replay_lobster(m, o if with_orderbook else None, levels=1)
    with pytest.raises(ValueError, match=re.escape("levels=1 needs verify=True")):
        replay_lobster(m, o if with_orderbook else None, verify=False, levels=1)
    assert replay_lobster(m, o, verify=True, levels=1).levels == 1
    assert replay_lobster(m, o).levels is None


@pytest.mark.parametrize("kwargs, error, said", [
    ({"verify": True}, ValueError, "verify=True needs the orderbook file"),
    ({"verify": True, "orderbook_csv": "missing_ob.csv", "levels": 2.5}, TypeError,
     "levels must be an integer, got float 2.5"),
    ({"book": 5}, TypeError, "book must be a matchcore.OrderBook, got int")], ids=str)
def test_lobster_bad_argument_refused_before_the_files_are_read(tmp_path, kwargs, error, said):
    # found only after both CSV files were read (FileNotFoundError first for a missing one;
    # book=5 an AttributeError from the seeding, after reading)
    with pytest.raises(error, match=re.escape(said)):
        replay_lobster(str(tmp_path / "missing_message.csv"), **kwargs)


@pytest.mark.parametrize("column", ["ts_ns", "order_id", "size", "price"])
def test_lobster_messages_columns_of_other_dtypes_taken_exactly_or_refused_book_untouched(
        tiny, column):
    # An int32 or float column (a DataFrame's) raised Cython's "Buffer dtype mismatch" from
    # the compiled loop, after the orderbook's seed had been placed in the caller's book.
    # Integers that int64 holds exactly (another width or byte order) replay as int64 does, as
    # type and direction are taken.
    from matchcore import OrderBook

    msgs, ob, _, _ = tiny
    names = ("ts_ns", "type", "order_id", "size", "price", "direction")
    want = replay_lobster(msgs, ob)
    cols = {f: getattr(msgs, f) for f in names}
    other = ">i8" if column == "ts_ns" else np.int32      # (ns after midnight need 64 bits)
    got = replay_lobster(LobsterMessages(**dict(cols, **{column: cols[column].astype(other)})),
                         ob)
    assert got.book.state_hash() == want.book.state_hash()
    assert got.counters == want.counters and got.trades.tolist() == want.trades.tolist()
    for dtype in (np.float64, np.uint64):
        bad = LobsterMessages(**dict(cols, **{column: cols[column].astype(dtype)}))
        book = OrderBook()
        with pytest.raises(ValueError, match=re.escape(
                f"LobsterMessages column {column} holds {np.dtype(dtype).name}")):
            replay_lobster(bad, ob, book=book)
        assert len(book) == 0


def test_lobster_messages_time_given_directly_is_checked_as_read_from_a_file(tiny):
    # A file's time must be seconds after midnight, >= 0; ts_ns passed directly went unchecked:
    # a negative time was replayed and written into the trade records without a word.
    from matchcore import OrderBook

    msgs, ob, _, _ = tiny
    for value in (-1, 9 * 10**18):
        ts = msgs.ts_ns.copy()
        ts[2] = value
        book = OrderBook()
        with pytest.raises(ValueError, match=re.escape(
                f"message 3: time {value} is not a time in nanoseconds after midnight")):
            replay_lobster(LobsterMessages(ts, msgs.type, msgs.order_id, msgs.size, msgs.price,
                                           msgs.direction), ob, book=book)
        assert len(book) == 0


def test_lobster_blank_and_comment_lines_between_rows_line_numbers_right_no_numpy_warning(
        tmp_path):
    # numpy's reader skips empty lines and '#' comments, so row k was no longer line k: a bad
    # field after a blank line was named on the line before it, and numpy's UserWarning
    # ("Input line 2 contained no data ... max_rows=50000") reached the command line's stderr,
    # for a file ending in an empty line too
    import warnings

    good = "34200.0,1,1,100,1000000,1\n"
    msg = tmp_path / "X_message_1.csv"
    for text, want in (
            (good + "\n34200.1,1,2,100,1000000,7\n", "line 3: direction '7' "),
            (good + "\n# note\n\n34200.1,1,2,100,abc,1\n", "line 5: price 'abc' "),
            (good + "\r\n\n34200.1,1,2,100,1000000\n", "line 4 has 5 columns")):
        msg.write_text(text)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError) as e:
                read_messages(msg)
        assert f"{msg}, {want}" in str(e.value) or f"{msg}: {want}" in str(e.value), e.value
    book = tmp_path / "X_orderbook_1.csv"
    book.write_text("1000100,5,1000000,100\n\n1000100,-5,1000000,100\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=rf"{re.escape(str(book))}, line 3: ask size 1 "):
            read_orderbook(book)
        msg.write_text(good + "\n\n")
        book.write_text("1000100,5,1000000,100\n\n")
        assert replay_lobster(msg, book).messages == 1


def test_lobster_hash_inside_a_row_refused_naming_its_line(tmp_path):
    # numpy's reader took a '#' anywhere as the start of a comment: a row damaged into
    # "34200.1,1,2#,100,1000000,1" was read as "34200.1,1,2" and refused with a column count,
    # and one whose last fields were cut by a '#' in a 6-column file among 7-column rows was
    # taken short without a word. A comment is a line of its own, starting with '#'.
    good = "34200.0,1,1,100,1000000,1\n"
    msg = tmp_path / "X_message_1.csv"
    for text, line in ((good + "# a comment line # is fine\n34200.1,1,2,100,1000000,1#x\n", 3),
                       (good + "34200.1,1,2,100,1000000,1 # note\n", 2),
                       ("# header note\n" + good + good + "34200.2,1,#3,100,1000000,1\n", 4),
                       (good + " # indented\n", 2),
                       ("\ufeff34200.0,1,1,100,1000000,1#\n", 1)):
        msg.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError) as e:
            read_messages(msg)
        assert str(e.value) == (f"{msg}, line {line}: a '#' inside a row (a comment is a line "
                                f"of its own, starting with '#')"), text
    msg.write_text("# a note\n" + good + "# another # note\n" + good)
    assert read_messages(msg).order_id.tolist() == [1, 1]
    # the orderbook reader shares the loader; a row cut by '#' no longer passes as shorter
    book = tmp_path / "X_orderbook_1.csv"
    book.write_text("1000100,5,1000000,100,1000200,5,999900,100\n"
                    "1000100,5,1000000,100#,1000200,5,999900,100\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(book))}, line 2: a '#' inside a row"):
        read_orderbook(book)


def test_lobster_underscore_in_a_number_refused_naming_its_line(tmp_path):
    # Python's int() and float() take digit-group underscores: "1_000" was read as order id
    # 1000 and a size "1_00" as 100 in the message file, while the orderbook reader refused
    # the same field ("could not convert string '1_000100' to float64 at row 1, column 1")
    good = "34200.0,1,1,100,1000000,1\n"
    msg = tmp_path / "X_message_1.csv"
    for text, line in ((good + "34200.1,1,1_000,100,1000000,1\n", 2),
                       ("time,type,order_id,size,price,direction\n" + good
                        + "34200.1,1,2,1_00,1000000,1\n", 3)):
        msg.write_text(text)
        with pytest.raises(ValueError) as e:
            read_messages(msg)
        assert str(e.value) == (f"{msg}, line {line}: a '_' inside a row (a LOBSTER CSV field "
                                f"is a plain number)"), text
    book = tmp_path / "X_orderbook_1.csv"
    book.write_text("1000100,5,1000000,100\n1_000100,5,1000000,100\n")
    with pytest.raises(ValueError) as e:
        read_orderbook(book)
    assert str(e.value) == (f"{book}, line 2: a '_' inside a row (a LOBSTER CSV field is a "
                            f"plain number)")


@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("header", [False, True])
def test_lobster_rows_not_separated_by_commas_refused_naming_their_line(tmp_path, rows, header):
    # a message file of one row separated by ';' was taken for a header line: 0 messages
    # replayed, exit status 0; of several rows, "1 columns" of no line
    head = "time,type,id,size,price,direction\n" if header else ""
    line = 2 if header else 1
    msg = tmp_path / "X_message_1.csv"
    msg.write_text(head + "".join(";".join(str(x) for x in m) + "\n" for m in MESSAGES[:rows]))
    with pytest.raises(ValueError, match=re.escape(
            f"{msg}: line {line} has 1 column, a LOBSTER file of this kind at least 6 (its "
            "fields are separated by ';'")):
        read_messages(msg)
    good = tmp_path / "Y_message_1.csv"
    good.write_text("".join(",".join(str(x) for x in m) + "\n" for m in MESSAGES[:rows]))
    book = tmp_path / "Y_orderbook_1.csv"
    book.write_text(head + "1000100\t5\t1000000\t100\n" * rows)
    for call in (lambda: read_orderbook(book), lambda: replay_lobster(good, book)):
        with pytest.raises(ValueError, match=re.escape(
                f"{book}: line {line} has 1 column, a LOBSTER file of this kind at least 4 "
                "(its fields are separated by '\\t'")):
            call()
    book.write_text(head + "1000100,5\n" * rows)
    with pytest.raises(ValueError, match=re.escape(f"{book}: line {line} has 2 columns")):
        read_orderbook(book)


def test_lobster_binary_file_refusal_names_the_library_function_and_the_command(tmp_path):
    # read_messages, a library function, named only the command line's --format
    from matchcore.itch import generate

    path = tmp_path / "day_message_1.csv"
    path.write_bytes(generate(None, messages=200, symbols=1, seed=1))
    with pytest.raises(ValueError, match=re.escape(
            "ITCH 5.0 file is replayed with matchcore.itch.replay_file, matchcore replay "
            "--format itch)")):
        read_messages(path)
    path.write_bytes(b"MCCMD" + bytes(200))
    with pytest.raises(ValueError, match=re.escape(
            "a native command file, not a LOBSTER CSV (replay it with "
            "matchcore.native.replay_commands, matchcore replay --format native)")):
        read_messages(path)


def test_lobster_comment_lines_before_a_header_and_a_file_of_comments_alone(tmp_path):
    # Comment lines before the first row are skipped as blank lines are: a leading comment was
    # taken for the header, so the line of column names after it was refused as a row ("time
    # 'time' is not a number"), and a file of comments alone, one holding a digit, raised
    # AttributeError ('NoneType' object has no attribute 'group') in place of no rows.
    good = "34200.0,1,1,100,1000000,1\n"
    head = "time,type,order_id,size,price,direction\n"
    msg = tmp_path / "X_message_1.csv"
    for text in ("# AAPL 2012-06-21, 10 levels\n" + head + good,
                 "# a note\n" + head + good,
                 "\ufeff\n# 1\n\n# 2\n" + head + good):
        msg.write_text(text, encoding="utf-8")
        m = read_messages(msg)
        assert m.order_id.tolist() == [1] and m.price.tolist() == [1000000], text
    # a bad field is still named on its own line
    msg.write_text("# 10 levels\n" + head + good + "34200.1,1,2,100,1000000,7\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(msg))}, line 4: direction '7' "):
        read_messages(msg)
    book = tmp_path / "X_orderbook_1.csv"
    book.write_text("# 1 level\nask,ask_size,bid,bid_size\n1000100,5,1000000,100\n")
    assert read_orderbook(book).tolist() == [[1000100, 5, 1000000, 100]]
    for text in ("# 10 levels\n", "# 10\n# 11\n", "\n\n# 10", "# x\n"):
        msg.write_text(text)
        book.write_text(text)
        assert len(read_messages(msg)) == 0 and read_orderbook(book).shape[0] == 0, text
        assert replay_lobster(msg, book).messages == 0


def test_lobster_comment_lines_file_detected_as_lobster_and_replayed_by_the_command(tmp_path,
                                                                                   capsys):
    # The reader skips comment lines before the first row, but the format detection of
    # `matchcore replay` took a comment line for the header: a file of two comment lines, or
    # of one and a line of column names, was refused as "a text file that is not a LOBSTER
    # message CSV" (exit 1) unless --format lobster was given.
    from matchcore.__main__ import main
    from matchcore._magic import detect_format

    good = "34200.0,1,1,100,1000000,1\n34200.5,1,2,50,999900,1\n"
    head = "time,type,order_id,size,price,direction\n"
    msg = tmp_path / "X_message_1.csv"
    for text in ("# AAPL 2012-06-21, 10 levels\n" + head + good,
                 "# AAPL 2012-06-21\n# 10 levels\n" + good,
                 "\ufeff# 1\n\n# 2\n" + head + good):
        msg.write_text(text, encoding="utf-8")
        assert len(read_messages(msg)) == 2, text
        assert detect_format(msg) == "lobster", text
        assert main(["replay", str(msg), "--no-progress"]) == 0, text
        out, err = capsys.readouterr()
        assert out.startswith("2 LOBSTER messages") and err == "", (text, err)
    # a file of comments and no row is still no LOBSTER file to the detection
    msg.write_text("# 10 levels\n# 34200.0,1,1,100,1000000,1\n" + head)
    with pytest.raises(ValueError, match="not a LOBSTER message CSV"):
        detect_format(msg)


def test_lobster_whole_numbers_with_a_decimal_point_detected_as_lobster(tmp_path, capsys):
    # The reader takes an event type, size, price or direction written "1.0" (a float
    # column's export) as the whole number it spells, but the format detection of `matchcore
    # replay` read the type and the direction as integers alone: such a file was refused as
    # "a text file that is not a LOBSTER message CSV" (exit 1) unless --format lobster was
    # given.
    from matchcore.__main__ import main
    from matchcore._magic import detect_format

    msg = tmp_path / "X_message_1.csv"
    msg.write_text("34200.0,1.0,1,100.0,1000000.0,1.0\n34200.5,1.0,2,50.0,1000100.0,-1.0\n")
    assert read_messages(msg).direction.tolist() == [1, -1]
    assert detect_format(msg) == "lobster"
    assert main(["replay", str(msg), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("2 LOBSTER messages") and err == "", err
    # a type or direction that is no whole number is no LOBSTER row to the detection either
    for row in ("34200.0,1.5,1,100,1000000,1\n", "34200.0,1,1,100,1000000,0.5\n"):
        msg.write_text(row)
        with pytest.raises(ValueError, match="not a LOBSTER message CSV"):
            detect_format(msg)


def test_lobster_utf8_comment_or_header_detected_as_lobster_not_replayed_as_itch(tmp_path,
                                                                                 capsys):
    # Text was told by printable ASCII alone: a LOBSTER file whose comment or column names
    # hold a character beyond ASCII in their first bytes ("# AAPL – 10 levels", "Größe") was
    # taken for ITCH by `matchcore replay` and "replayed" as 0 ITCH messages with a bad
    # length prefix, exit status 0. UTF-8 text is text: the LOBSTER file is detected as such,
    # and other text is refused, by the command and by the ITCH reader.
    import matchcore.itch as itch
    from matchcore.__main__ import main
    from matchcore._magic import detect_format

    good = "34200.0,1,1,100,1000000,1\n34200.5,1,2,50,999900,1\n"
    msg = tmp_path / "X_message_1.csv"
    for text in ("# AAPL – LOBSTER sample, 10 levels\n" + good,
                 "Zeit,Typ,Auftrag,Größe,Preis,Richtung\n" + good,
                 "\ufeff# données\n" + good):
        msg.write_text(text, encoding="utf-8")
        assert len(read_messages(msg)) == 2, text
        assert detect_format(msg) == "lobster", text
        assert main(["replay", str(msg), "--no-progress"]) == 0, text
        out, err = capsys.readouterr()
        assert out.startswith("2 LOBSTER messages") and err == "", (text, out, err)
    notes = tmp_path / "notes.txt"
    notes.write_text("Größe,Preis\n" * 20, encoding="utf-8")
    with pytest.raises(ValueError, match="not a LOBSTER message CSV"):
        detect_format(notes)
    with pytest.raises(ValueError, match="a text file"):
        itch.replay_file(notes)
    assert main(["replay", str(notes), "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "ITCH 5.0 messages" not in out and "text file" in err, err


def test_lobster_first_row_of_quoted_numbers_is_a_row_not_a_header(tmp_path):
    # A first line none of whose fields is a number is a header; a row of quoted numbers was
    # judged so and dropped: a file of one such row replayed 0 messages without a word (and
    # of several, its first message was dropped before line 2 was refused). Its fields are
    # now refused on line 1 as any field that is not a number; quoted column names are
    # still a header.
    msg = tmp_path / "X_message_1.csv"
    book = tmp_path / "X_orderbook_1.csv"
    for quote in ('"', "'"):
        row = ",".join(f"{quote}{v}{quote}" for v in ("34200.1", 1, 5, 18, 5853300, 1))
        for text in (row + "\n", row + "\n" + row + "\n"):
            msg.write_text(text)
            with pytest.raises(ValueError, match=rf"^{re.escape(str(msg))}, line 1: time "):
                read_messages(msg)
        book.write_text(",".join(f"{quote}{v}{quote}" for v in (5853400, 10, 5853300, 18))
                        + "\n")
        with pytest.raises(ValueError, match=rf"^{re.escape(str(book))}"):
            read_orderbook(book)
    msg.write_text('"time","type","id","size","price","direction"\n'
                   "34200.1,1,5,18,5853300,1\n")
    assert read_messages(msg).order_id.tolist() == [5]


def test_lobster_orderbook_field_not_a_number_named_on_its_line(tmp_path):
    # The orderbook reader passed numpy's words on: "could not convert string 'abc' to float64
    # at row 1, column 2" for a field on line 3 (rows counted from 0 among those read, after
    # blank and comment lines and a header), where the message reader names the file's line
    # and the field, as the README says of both files.
    book = tmp_path / "X_orderbook_2.csv"
    good = "1000100,5,1000000,100,1000200,5,999900,100\n"
    for text, want in (
            (good + "\n1000100,abc,1000000,100,1000200,5,999900,100\n",
             "line 3: ask size 1 'abc' is not a number"),
            ("# note\nask,ask_size,bid,bid_size,ask2,ask_size2,bid2,bid_size2\n" + good
             + good.replace("999900,100", "999900,x"), "line 4: bid size 2 'x' is not a number"),
            ("0x10,5,1000000,100,1000200,5,999900,100\n",
             "line 1: ask price 1 '0x10' is not a number"),
            # a later row of another field count: the field is still found and named
            (good + "1000100,5,10x0000,100,1000200,5,999900,100\n" + good
             + "1000100,5,1000000,100,1000200,5\n", "line 2: bid price 1 '10x0000' is not a "
                                                     "number")):
        book.write_text(text)
        with pytest.raises(ValueError) as e:
            read_orderbook(book)
        assert str(e.value) == f"{book}, {want}", text


def test_lobster_carriage_return_inside_a_row_refused_naming_its_line(tmp_path):
    # A '\r' that ends no line (a file of old Mac line ends, a stray byte) reached numpy's
    # reader, which refused it as "an unquoted embedded newline within a single line of
    # input", naming no line. '\r\n' line ends are read as before.
    good = "34200.0,1,1,100,1000000,1"
    msg = tmp_path / "X_message_1.csv"
    for text, line in ((good + "\r" + good + "\r", 1),
                       (good + "\n" + good + "\n34200.1,1,2,1\r00,1000000,1\n", 3),
                       (good + "\r\n\r" + good + "\r\n", 2)):
        msg.write_bytes(text.encode())
        with pytest.raises(ValueError) as e:
            read_messages(msg)
        assert str(e.value) == (f"{msg}, line {line}: a carriage return ('\\r') inside a row "
                                f"(a line ends in '\\n' or '\\r\\n')"), text
    msg.write_bytes((good + "\r\n# a note\r\n" + good + "\r\n").encode())
    assert read_messages(msg).order_id.tolist() == [1, 1]
    book = tmp_path / "X_orderbook_1.csv"
    book.write_bytes(b"1000100,5,1000000,100\r1000100,5,1000000,100\r")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(book))}, line 1: a carriage return"):
        read_orderbook(book)


def test_lobster_orderbook_array_of_other_dtypes_refused_naming_the_field(tiny):
    # An orderbook passed as an array is held to the file's rules: a uint64 value above
    # int64's range was cast to a negative ("bid size 1 9223372036854775813 is negative", or
    # an empty level's price taken), an object array's None raised AttributeError ('NoneType'
    # object has no attribute 'item') and one holding text numpy's "could not convert string
    # to float: 'x'", naming neither the array nor the field. The book is not touched.
    from matchcore import OrderBook

    msgs, ob, _, _ = tiny
    for dtype, col, value, why in ((np.uint64, 0, 2**63 + 5, "is above 2**63-1"),
                                   (np.uint64, 3, 2**63 + 5, "is above 2**63-1"),
                                   (object, 3, None, "is not a whole number"),
                                   (object, 1, "x", "is not a number")):
        bad = ob.astype(dtype)
        bad[1, col] = value
        book = OrderBook()
        with pytest.raises(ValueError) as e:
            replay_lobster(msgs, bad, verify=True, book=book)
        field = ("ask price", "ask size", "bid price", "bid size")[col]
        shown = repr(value) if isinstance(value, str) else value
        assert str(e.value).startswith(f"orderbook array, line 2: {field} 1 {shown} {why}"), \
            str(e.value)
        assert len(book) == 0
    # an unsigned array within int64's range is read as the int64 one (empty levels' dummy
    # prices made 0, which an unsigned array holds)
    plain = np.where(ob < 0, 0, ob)
    want = replay_lobster(msgs, plain, verify=True)
    got = replay_lobster(msgs, plain.astype(np.uint64), verify=True)
    assert got.agree_levels.tolist() == want.agree_levels.tolist()
    assert got.book.snapshot() == want.book.snapshot()


def test_lobster_orderbook_array_of_non_numeric_dtype_refused_naming_the_field(tiny):
    # A complex array seeded the book from its real parts (101+1j an ask at 101), a datetime64
    # one from its counts of seconds, each with no error; a structured one raised numpy's
    # "setting an array element with a sequence". The book is not touched.
    from matchcore import OrderBook

    msgs, ob, _, _ = tiny
    for bad, shown in ((ob + 1j, "(10100+1j)"),
                       (ob.astype("datetime64[s]"), "datetime.datetime(1970, 1, 1, 2, 48, 20)"),
                       (np.zeros(ob.shape, dtype="V8"), "b'\\x00")):
        book = OrderBook()
        with pytest.raises(ValueError) as e:
            replay_lobster(msgs, bad, verify=True, book=book)
        assert str(e.value).startswith(f"orderbook array, line 1: ask price 1 {shown}"), \
            str(e.value)
        assert str(e.value).endswith("is not a number"), str(e.value)
        assert len(book) == 0


def test_lobster_messages_type_and_direction_columns_refused_with_their_value(tiny):
    # The refusal of a LobsterMessages row printed int(value): an event type of 1.5 (or "1")
    # was said to be "event type 1", which is one, and a None or NaN raised TypeError or
    # "cannot convert float NaN to integer" in place of the refusal naming the message.
    from matchcore import OrderBook

    msgs, ob, _, _ = tiny
    for name, value, want in (("type", 1.5, "event type 1.5 is not a LOBSTER event type"),
                              ("type", "1", "event type '1' is not a LOBSTER event type"),
                              ("type", None, "event type None is not a LOBSTER event type"),
                              ("type", float("nan"), "event type nan is not a LOBSTER event"),
                              ("direction", 0.5, "direction 0.5 is not a direction"),
                              ("direction", None, "direction None is not a direction")):
        cols = {k: getattr(msgs, k) for k in ("ts_ns", "type", "order_id", "size", "price",
                                                "direction")}
        col = cols[name].astype(object if value is None or isinstance(value, str) else float)
        col[3] = value
        cols[name] = col
        book = OrderBook()
        with pytest.raises(ValueError) as e:
            replay_lobster(LobsterMessages(**cols), ob, book=book)
        assert str(e.value).startswith(f"message 4: {want}"), str(e.value)
        assert len(book) == 0


def test_lobster_line_of_spaces_between_rows_is_a_blank_line(tmp_path):
    # Blank lines are skipped (before the first row, a line of spaces was), but a line of
    # spaces or tabs between rows reached numpy's reader as a row of 1 column: "line 2 has 1
    # columns, the lines before it 6", the file refused. Later lines keep their numbers.
    good = "34200.0,1,1,100,1000000,1\n"
    msg = tmp_path / "X_message_1.csv"
    for gap in ("   \n", "\t\n", " \t \r\n"):
        msg.write_text(good + gap + good.replace(",1,1,", ",1,2,"), newline="")
        assert read_messages(msg).order_id.tolist() == [1, 2], repr(gap)
        msg.write_text(good + gap + good + "34200.1,1,3,100,abc,1\n", newline="")
        with pytest.raises(ValueError, match=rf"^{re.escape(str(msg))}, line 4: price 'abc' "):
            read_messages(msg)
    book = tmp_path / "X_orderbook_1.csv"
    book.write_text("1000100,5,1000000,100\n  \n1000100,5,1000000,90\n")
    assert read_orderbook(book).tolist() == [[1000100, 5, 1000000, 100],
                                             [1000100, 5, 1000000, 90]]
    book.write_text("1000100,5,1000000,100\n  \n1000100,x,1000000,90\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(book))}, line 3: ask size 1 'x' "):
        read_orderbook(book)


@pytest.mark.parametrize("row, fix, expect", [
    # an empty first ask level before one with shares: the seed and both checks stop at the
    # first empty level, so the ask was never placed and verify said the row agreed
    (0, {0: 9999999999, 1: 0}, "line 1: ask level 2 (10200 x 20) has shares after the empty "
                               "ask level 1"),
    (4, {2: -9999999999, 3: 0}, "line 5: bid level 2 (9900 x 30) has shares after the empty "
                                "bid level 1"),
    # a real price with no shares is an empty level too
    (2, {1: 0}, "line 3: ask level 2 (10200 x 20) has shares after the empty ask level 1"),
])
def test_lobster_orderbook_level_with_shares_after_an_empty_one_raises_naming_line(
        tmp_path, row, fix, expect):
    from matchcore import OrderBook

    rows = [list(r) for r in ROWS]
    for col, value in fix.items():
        rows[row][col] = value
    m, o = _write(tmp_path, rows=rows)
    with pytest.raises(ValueError, match=re.escape(f"{o}, {expect}")):
        read_orderbook(o)
    book = OrderBook()
    with pytest.raises(ValueError, match=re.escape(expect)):
        replay_lobster(m, o, verify=True, book=book)
    assert len(book) == 0
    with pytest.raises(ValueError, match=re.escape(f"orderbook array, {expect}")):
        replay_lobster(m, np.array(rows, dtype=np.int64), verify=True)


def test_lobster_field_of_utf8_text_named_as_the_file_spells_it(tmp_path):
    # numpy's reader decodes the file byte by byte (latin-1): a spreadsheet's minus sign
    # (U+2212) in a direction was quoted as 'â\x88\x921', not as the file holds it
    minus = "\u2212"
    m = tmp_path / "U_message_1.csv"
    m.write_bytes(f"34200.0,1,1,100,1000000,1\n34200.5,1,2,100,1000000,{minus}1\n"
                  .encode("utf-8"))
    expect = f"line 2: direction '{minus}1' is not a number"
    with pytest.raises(ValueError, match=re.escape(f"{m}, {expect}")):
        read_messages(m)
    with pytest.raises(ValueError, match=re.escape(expect)):
        replay_lobster(m)
    # an orderbook file read as text (an exponent elsewhere in it) alike
    o = tmp_path / "U_orderbook_1.csv"
    o.write_bytes(f"1010000,50,1000000,1e2\n1010000,50,1000000,{minus}5\n".encode("utf-8"))
    with pytest.raises(ValueError, match=re.escape(f"{o}, line 2: bid size 1 '{minus}5' is "
                                                   f"not a number")):
        read_orderbook(o)
    # a byte that is no UTF-8 (a latin-1 file) is shown as read
    m.write_bytes(b"34200.0,1,1,100,1000000,1\n34200.5,1,2,1\xe9,1000000,1\n")
    with pytest.raises(ValueError, match=re.escape("line 2: size '1\xe9' is not a number")):
        read_messages(m)


def test_lobster_book_holding_a_seed_order_refused_book_unchanged(tiny):
    # A seeded replay into a book holding an order of a seed's id (a book an earlier replay
    # of the stock seeded) placed the seed levels one by one until that id: the book kept the
    # levels placed before it, and the error named only a synthetic id ("order
    # 9223653511831496664 rejected: DUPLICATE_ORDER_ID").
    from matchcore import OrderBook

    msgs, ob, _, _ = tiny
    seed = replay_lobster(msgs, ob).seed
    side, price, qty = (int(v) for v in seed[-1])   # the last level placed: the others first
    book = OrderBook()
    book.place(seed_id(side, price), side, price, qty)
    book.events()
    before, orders = book.state_hash(), len(book)
    with pytest.raises(ValueError, match=re.escape(
            f"the book already holds order {seed_id(side, price)}, the seed order of the "
            f"{'ask' if side else 'bid'} level at {price}")):
        replay_lobster(msgs, ob, book=book)
    assert book.state_hash() == before and len(book) == orders == 1


def test_lobster_seeded_replay_keeps_the_books_pending_events_and_writes_none(tiny):
    # The seed was placed with place(), which wrote an ACCEPTED event per level, and then
    # every pending event was drained to drop them: events the caller's own calls had written
    # to the book before the replay were lost with them (kept by a replay without the
    # orderbook file, which places no seed).
    from matchcore import OrderBook

    msgs, ob, _, _ = tiny
    for orderbook in (None, ob):
        book = OrderBook()
        book.submit(500, 0, 50, 3)
        book.cancel(500)
        own = [(int(e["kind"]), int(e["order_id"])) for e in book.events()]
        book.submit(500, 0, 50, 3)
        book.cancel(500)
        r = replay_lobster(msgs, orderbook, book=book)
        assert [(int(e["kind"]), int(e["order_id"])) for e in book.events()] == own
        assert r.book.state_hash() == replay_lobster(msgs, orderbook).book.state_hash()
    assert len(r.seed) == 3 and own
    assert replay_lobster(msgs, ob).book.events().tolist() == []


def test_lobster_order_id_with_a_decimal_point_read_as_the_id_it_spells(tmp_path, capsys):
    # Every other integer field (type, size, price, direction) written "1.0", as a float
    # column is exported, is the whole number it spells; an order id so written was refused
    # as "order id '16113575.0' is not a whole order id in 0..2**63-1", and without --format
    # such a file was not even taken for LOBSTER ("a text file that is not a LOBSTER message
    # CSV").
    from matchcore.__main__ import main
    from matchcore._magic import detect_format

    big = 2 ** 53 + 1
    msg = tmp_path / "X_message_1.csv"
    msg.write_text(f"34200.0,1.0,16113575.0,100.0,1000000.0,1.0\n"
                   f"34200.5,1.0,{big}.0,50.0,1000100.0,-1.0\n"
                   f"34201.0,6.0,-1.0,10.0,1000050.0,1.0\n"
                   f"34201.5,3.0,16113575.00,100.0,1000000.0,1.0\n")
    m = read_messages(msg)
    assert m.order_id.tolist() == [16113575, big, -1, 16113575]
    r = replay_lobster(m)
    assert r.counters["unknown_refs"] == 0 and r.book.get(big) == (1, 1000100, 50)
    assert len(r.book) == 1
    assert detect_format(msg) == "lobster"
    assert main(["replay", str(msg), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("4 LOBSTER messages") and err == "", err
    # still no whole id: a fraction, a number beyond int64, no number at all
    for field in ("1.5", "1e19", "9223372036854775808.0", "abc"):
        msg.write_text(f"34200.0,1,{field},100,1000000,1\n")
        with pytest.raises(ValueError, match=re.escape(
                f"line 1: order id '{field}' is not a whole order id in 0..2**63-1")):
            read_messages(msg)


def test_lobster_row_counts_that_differ_named_by_what_holds_them(tiny):
    # "the orderbook file has 10 rows and the message file 11" named no file, and was said of
    # an orderbook array and LobsterMessages as well ("has 1 rows" of one)
    msgs, ob, m, o = tiny
    for messages, orderbook, said in (
            (m, ob[:10], f"the orderbook array has 10 rows and {m} 11"),
            (msgs, ob[:1], "the orderbook array has 1 row and the LobsterMessages 11"),
            (_prefix(msgs, 10), o, f"{o} has 11 rows and the LobsterMessages 10"),
            (_prefix(msgs, 1), o, f"{o} has 11 rows and the LobsterMessages 1")):
        with pytest.raises(ValueError, match=re.escape(
                f"{said}: LOBSTER writes one row per message")):
            replay_lobster(messages, orderbook)
    short = o.with_name("Y_orderbook_2.csv")
    short.write_text("".join(o.read_text().splitlines(keepends=True)[:10]))
    with pytest.raises(ValueError, match=re.escape(
            f"{short} has 10 rows and {m} 11: LOBSTER writes one row per message")):
        replay_lobster(m, short)
