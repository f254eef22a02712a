"""The ITCH replay's trade records: what a trade message may carry to become one."""
import struct

import numpy as np

from matchcore import itch


def _frame(m):
    return len(m).to_bytes(2, "big") + m


def _hdr(t, loc, ts):
    return struct.pack(">cHH", t, loc, 0) + ts.to_bytes(6, "big")


def _trade(side, ts, match):
    # P: non-cross trade (hidden liquidity), the indicator of the message as its side
    return _hdr(b"P", 1, ts) + struct.pack(">QcI8sIQ", 0, side, 100, b"X".ljust(8), 5000, match)


def test_replayer_non_cross_trade_of_a_side_other_than_b_or_s_counted_not_a_trade():
    # The indicator of a P message is B or S. Any other byte was copied into a trade record
    # that no reader of trade records takes (the NATS wire refuses its batch, so a publishing
    # replay stopped): it is counted as an invalid trade and makes no record, as a Q of more
    # shares than int64 holds does.
    add = _hdr(b"A", 1, 1) + struct.pack(">QcI8sI", 1, b"B", 100, b"X".ljust(8), 5000)
    data = _frame(add) + b"".join(
        _frame(_trade(side, ts, ts)) for ts, side in ((2, b"B"), (3, b"X"), (4, b"S"), (5, b" "),
                                                       (6, b"\x00")))
    r = itch.Replayer()
    r.feed(data)
    r.finish()
    assert r.stats["invalid_trades"] == 3
    t = r.trades()
    assert t["side"].tolist() == [b"B", b"S"] and t["match_number"].tolist() == [2, 4]
    st = r.symbol_stats()
    assert st["trades"].tolist() == [2] and st["volume"].tolist() == [200]
    # the book is untouched by any of them, and the records left are ones the wire takes
    assert r.book(1).best_bid() == (5000, 100)
    from matchcore.io.nats import TRADE_KINDS, TRADE_SIDES

    assert {bytes([c]) for c in TRADE_SIDES} >= set(t["side"].tolist())
    assert {bytes([c]) for c in TRADE_KINDS} >= set(t["kind"].tolist())


def test_replayer_non_cross_trade_sides_the_same_whole_and_fed_byte_by_byte():
    add = _hdr(b"A", 1, 1) + struct.pack(">QcI8sI", 1, b"S", 100, b"X".ljust(8), 5000)
    data = _frame(add) + _frame(_trade(b"Z", 2, 1)) + _frame(_trade(b"S", 3, 2))
    whole = itch.Replayer()
    whole.feed(data)
    whole.finish()
    bytewise = itch.Replayer()
    pending = b""
    for i in range(len(data)):
        pending += data[i:i + 1]
        pending = pending[bytewise.feed(pending):]     # feed() consumes whole messages only
    bytewise.finish(pending)
    assert whole.stats["invalid_trades"] == bytewise.stats["invalid_trades"] == 1
    assert np.array_equal(whole.trades(), bytewise.trades()) and len(whole.trades()) == 1


def _cross(shares, ts, match):
    # Q: a cross of ``shares`` (an 8-byte field) at 50.00, opening cross
    return _hdr(b"Q", 1, ts) + struct.pack(">Q8sIQc", shares, b"X".ljust(8), 500_000, match, b"O")


def test_replayer_cross_volume_beyond_int64_held_at_the_top_never_negative():
    # A Q of up to 2**63 - 1 shares is a trade (more is counted as invalid), but the per-book
    # volume summed two such crosses into an int64 that wrapped negative: symbol_stats() and
    # the volume_shares_total counter went below zero (a counter that falls). The sum is held
    # at the largest int64 instead; the trade records keep each cross's own shares.
    top = 2**63 - 1
    data = b"".join(_frame(_cross(s, ts, ts)) for ts, s in ((1, 2**62), (2, 2**62), (3, 5),
                                                             (4, top)))
    r = itch.Replayer()
    r.finish(data[r.feed(data):])
    assert r.stats["invalid_trades"] == 0
    assert r.trades()["shares"].tolist() == [2**62, 2**62, 5, top]
    st = r.symbol_stats()
    assert st["trades"].tolist() == [4] and st["volume"].tolist() == [top]
    # below the top, the volume is the plain sum
    r = itch.Replayer()
    data = _frame(_cross(2**62, 1, 1)) + _frame(_cross(2**62 - 1, 2, 2))
    r.finish(data[r.feed(data):])
    assert r.symbol_stats()["volume"].tolist() == [top]


def test_replayer_non_cross_trade_of_zero_shares_or_price_counted_not_a_trade():
    # A P of zero shares (or at a zero price, which no add may carry) was recorded as a trade:
    # it was summed up in the replay's trades, its book's trade count and the trade records
    # a publisher sends, while an add, a replace or an execution of zero shares is counted
    # invalid. It is counted as an invalid trade and makes no record, as a P of another side.
    def trade(shares, price, ts):
        return _hdr(b"P", 1, ts) + struct.pack(">QcI8sIQ", 0, b"B", shares, b"X".ljust(8), price,
                                               ts)

    add = _hdr(b"A", 1, 1) + struct.pack(">QcI8sI", 1, b"B", 100, b"X".ljust(8), 5000)
    data = _frame(add) + b"".join(_frame(trade(shares, price, ts)) for ts, shares, price in (
        (2, 100, 5000), (3, 0, 5000), (4, 100, 0), (5, 0, 0), (6, 7, 5000)))
    r = itch.Replayer()
    r.finish(data)
    assert r.stats["invalid_trades"] == 3
    t = r.trades()
    assert t["shares"].tolist() == [100, 7] and t["match_number"].tolist() == [2, 6]
    st = r.symbol_stats()
    assert st["trades"].tolist() == [2] and st["volume"].tolist() == [107]
