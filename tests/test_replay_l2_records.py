"""The L2 sink (``Replayer(record_l2=True)``): after each message, one record per price level
the message touched, holding the level as the message left it: every level whose total qty or
order count changed has one, and none states a level as it was half way through a message (the
reference builder's depth before and after each message is the specification)."""
from __future__ import annotations

import random
import struct

import matchcore.itch as itch
from matchcore.itch.reference import ReferenceReplay

_ADD = struct.Struct(">HcHH6sQcI8sI")
_EXEC = struct.Struct(">HcHH6sQIQ")
_CANCEL = struct.Struct(">HcHH6sQI")
_DELETE = struct.Struct(">HcHH6sQ")
_REPLACE = struct.Struct(">HcHH6sQQII")


def _ts(ns: int) -> bytes:
    return ns.to_bytes(6, "big")


def add(locate, ts, ref, side, shares, price):
    return _ADD.pack(36, b"A", locate, 0, _ts(ts), ref, side, shares, b"K%-7d" % locate, price)


def execute(locate, ts, ref, shares):
    return _EXEC.pack(31, b"E", locate, 0, _ts(ts), ref, shares, 1)


def cancel(locate, ts, ref, shares):
    return _CANCEL.pack(23, b"X", locate, 0, _ts(ts), ref, shares)


def delete(locate, ts, ref):
    return _DELETE.pack(19, b"D", locate, 0, _ts(ts), ref)


def replace(locate, ts, old, new, shares, price):
    return _REPLACE.pack(35, b"U", locate, 0, _ts(ts), old, new, shares, price)


def _l2(msgs):
    data = b"".join(msgs)
    r = itch.Replayer(record_l2=True)
    r.finish(data[r.feed(data):])
    return [(int(x["ts"]), int(x["locate"]), x["side"].decode(), int(x["price"]), int(x["qty"]),
             int(x["orders"])) for x in r.l2()]


def _levels_after(msgs):
    # per message (its timestamp): the levels it changed, and every level of its book as it
    # left them, {(side, price): (qty, orders)} (a level absent: gone, qty 0 and no orders)
    ref = ReferenceReplay()
    out = {}

    def levels(locate):
        bids, asks = ref.depth(locate)
        return ({("B", p): (q, n) for p, q, n in bids} | {("S", p): (q, n) for p, q, n in asks})

    for m in msgs:
        locate = int.from_bytes(m[3:5], "big")
        ts = int.from_bytes(m[7:13], "big")
        before = levels(locate)
        ref.feed(m)
        after = levels(locate)
        changed = {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
        out[ts] = (locate, changed, after)
    return out


def _assert_records_are_levels_as_left(msgs):
    got = _l2(msgs)
    for ts, (locate, changed, after) in _levels_after(msgs).items():
        recs = [rec for rec in got if rec[0] == ts]
        keys = [(side, price) for _, _, side, price, _, _ in recs]
        assert len(keys) == len(set(keys)), (ts, recs)        # one record a level
        assert changed <= set(keys), (ts, recs, changed)
        for _, loc, side, price, qty, orders in recs:
            assert (loc, qty, orders) == (locate, *after.get((side, price), (0, 0))), (ts, recs)


def test_replay_l2_replace_at_same_price_one_record_of_the_level_as_left():
    msgs = [add(1, 1, 10, b"S", 5, 101), add(1, 2, 11, b"B", 7, 100), add(1, 3, 12, b"B", 3, 100),
            replace(1, 4, 10, 20, 9, 101),       # the level's only order: never gone
            replace(1, 5, 11, 21, 2, 100),       # one of two orders: never one order short
            replace(1, 6, 20, 20, 4, 101)]       # the same reference, fewer shares
    got = _l2(msgs)
    assert [rec for rec in got if rec[0] == 4] == [(4, 1, "S", 101, 9, 1)]
    assert [rec for rec in got if rec[0] == 5] == [(5, 1, "B", 100, 5, 2)]
    assert [rec for rec in got if rec[0] == 6] == [(6, 1, "S", 101, 4, 1)]
    _assert_records_are_levels_as_left(msgs)


def test_replay_l2_replace_to_another_price_records_both_levels():
    msgs = [add(1, 1, 10, b"S", 5, 101), add(1, 2, 11, b"S", 6, 101),
            replace(1, 3, 10, 12, 8, 102)]
    assert [rec for rec in _l2(msgs) if rec[0] == 3] == [(3, 1, "S", 101, 6, 1),
                                                          (3, 1, "S", 102, 8, 1)]


def test_replay_l2_random_flow_records_equal_reference_level_changes():
    rng = random.Random(7)
    for _ in range(200):
        msgs = []
        for ts in range(1, rng.randrange(5, 120)):
            locate, ref = rng.randrange(1, 3), rng.randrange(1, 10)
            shares, price = rng.choice([0, 1, 5, 100]), rng.choice([0, 100, 101, 102])
            kind = rng.choice("AAAEXDDUU")
            if kind == "A":
                msgs.append(add(locate, ts, ref, rng.choice([b"B", b"S"]), shares, price))
            elif kind == "E":
                msgs.append(execute(locate, ts, ref, shares))
            elif kind == "X":
                msgs.append(cancel(locate, ts, ref, shares))
            elif kind == "D":
                msgs.append(delete(locate, ts, ref))
            else:
                new = rng.choice([ref, rng.randrange(1, 10)])
                msgs.append(replace(locate, ts, ref, new, shares, price))
        _assert_records_are_levels_as_left(msgs)
