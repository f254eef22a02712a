"""Stateful property test: the compiled OrderBook and the ReferenceBook driven side by side.

Every step applies the same operation to both books and compares the return value (or the
exception type and reason), every event, and after each step the whole observable state: len,
best bid/ask, depth(100) (and of a few levels), the FIFO content of every level, get() and
queue_position() of every id ever used; check_invariants() runs on both. The events are also
checked against the rules themselves (ledger_checks.EventLedger), with each call's result or
refusal, and the book against what they leave. A call that raises must leave the compiled book's snapshot unchanged, and the
steps go on, at any point, with a twin of the compiled book made by copy(), copy.copy,
copy.deepcopy, pickle, from_snapshot() or restore(). Batches run through process() also
into a caller's out= buffer (often too small) and with every field at its limits; depth_into()
is held to the reference's levels and clear() to a new reference model. A book made with
record_events=False takes every call beside the compiled one (its twins too): the same results
and snapshot bytes, no pending events, the same events from process(). One state machine per
self-trade prevention mode, and one with the replay mode's place() and reduce(). Now and then
the books are made with a capacity of 0 to 5 orders, so that they grow in the middle of a call.

The default budget keeps the run well under a minute; MATCHCORE_SOAK=1 raises it a lot.
"""
from __future__ import annotations

import copy
import os
import pickle

import numpy as np
import pytest
from conftest import assert_events_equal, describe_event
from ledger_checks import EventLedger, LedgerError
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from matchcore import OrderBook, ReferenceBook
from matchcore._enums import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    STP,
    TIF,
    CommandKind,
    EventKind,
    OrderRejected,
    Reason,
)

SOAK = os.environ.get("MATCHCORE_SOAK") == "1"
MAX_U64 = 2**64 - 1

# Narrow band so that orders cross often; a few out-of-band and invalid values on purpose.
prices = st.integers(95, 105)
qtys = st.integers(1, 20)
owners = st.integers(0, 2)
ts = st.integers(0, 2**40)
fresh_ids = st.one_of(st.integers(0, 60), st.integers(0, MAX_U64), st.sampled_from([MAX_U64, 0]))

# Mostly valid values, sometimes an invalid one (qty <= 0, price <= 0, side 2, tif 3).
maybe_bad_qty = st.one_of(qtys, qtys, qtys, qtys, qtys, qtys, qtys, st.sampled_from([0, -1]))
maybe_bad_price = st.one_of(prices, prices, prices, prices, prices, prices, prices,
                            st.sampled_from([0, -1]))
maybe_bad_side = st.one_of(st.sampled_from([0, 1]), st.sampled_from([0, 1]),
                           st.sampled_from([0, 1]), st.sampled_from([0, 1]),
                           st.sampled_from([0, 1]), st.sampled_from([0, 1]), st.just(2))
# Values at the limits of their types, drawn by rules of their own: a buy at 2**63-1 crosses
# every ask, a sell there rests beyond them all; quantities whose level totals and FOK sums pass
# int64; the largest owner; the clock's extremes.
edge_prices = st.sampled_from([1, 2**63 - 1])
edge_qtys = st.sampled_from([2**62, 2**63 - 1])
edge_owners = st.one_of(owners, st.just(MAX_U64))
edge_ts = st.sampled_from([-(2**63), -1, 2**63 - 1])
maybe_bad_tif = st.one_of(st.sampled_from([0, 1, 2]), st.sampled_from([0, 1, 2]),
                          st.sampled_from([0, 1, 2]), st.sampled_from([0, 1, 2]),
                          st.sampled_from([0, 1, 2]), st.sampled_from([0, 1, 2]), st.just(3))


def _outcome(fn, *args, **kwargs):
    """Call and capture the result or the exception (type, reason, order id)."""
    try:
        result = fn(*args, **kwargs)
    except OrderRejected as exc:
        return ("raised", type(exc).__name__, int(exc.reason), exc.order_id)
    except (KeyError, ValueError, OverflowError) as exc:
        return ("raised", type(exc).__name__)
    return ("ok", type(result).__name__ if isinstance(result, bool) else "value", result)


def _result(outcome):
    """What a call returned, or the OrderRejected it raised, from its _outcome (the ledger
    holds it to the call's events)."""
    if outcome[0] == "raised":
        assert outcome[1] == "OrderRejected", outcome
        return OrderRejected(outcome[2], outcome[3])
    return outcome[2]


# a per-call order entry as the event ledger takes it: the call's own arguments, which its
# events must echo (the ledger checks them against the call, not against either book)
_ORDER_ENTRY = {
    "submit": lambda oid, side, price, qty, tif=TIF.GTC, *, owner=0, post_only=False, ts_ns=0: {
        "kind": "submit", "oid": oid, "side": side, "price": price, "qty": qty, "tif": tif,
        "owner": owner, "post_only": post_only, "ts_ns": ts_ns},
    "submit_market": lambda oid, side, qty, *, owner=0, ts_ns=0: {
        "kind": "market", "oid": oid, "side": side, "price": 0, "qty": qty, "owner": owner,
        "ts_ns": ts_ns},
    "cancel": lambda oid, *, owner=0, ts_ns=0: {"kind": "cancel", "oid": oid, "owner": owner,
                                                "ts_ns": ts_ns},
    "modify": lambda oid, qty, price=None, *, owner=0, ts_ns=0: {
        "kind": "modify", "oid": oid, "qty": qty, "price": price or 0, "owner": owner,
        "ts_ns": ts_ns},
    "place": lambda oid, side, price, qty, *, owner=0, ts_ns=0: {
        "kind": "place", "oid": oid, "side": side, "price": price, "qty": qty, "owner": owner,
        "ts_ns": ts_ns},
    "reduce": lambda oid, qty, *, execution=False, ts_ns=0: {
        "kind": "reduce", "oid": oid, "qty": qty, "execution": execution, "ts_ns": ts_ns},
}


class BookComparison(RuleBasedStateMachine):
    """Drives both books with the same operations and holds them equal."""

    stp_mode: STP = STP.CANCEL_RESTING  # set per subclass
    allow_crossed = False  # only place() may leave a book crossed

    ids = Bundle("ids")

    def __init__(self):
        super().__init__()
        self.capacity = 1024
        self.known_ids: set[int] = set()
        self.owner_of: dict[int, int] = {}  # owner of the last accepted order with each id
        self.log: list[str] = []
        self.seed: list[tuple] = []     # the orders seed_book rested
        self._new_books()

    def _new_books(self):
        self.compiled = OrderBook(stp=self.stp_mode, capacity=self.capacity)
        self.reference = ReferenceBook(stp=self.stp_mode)
        # the same calls on a book that records no events: the same results and state, none
        # of the events (process() still returns a batch's own)
        self.silent = OrderBook(stp=self.stp_mode, record_events=False, capacity=self.capacity)
        # the rules checked from the events alone: a rule both books break alike shows here
        self.ledger = EventLedger(self.stp_mode, allow_crossed=self.allow_crossed)

    # ------------------------------------------------------------------ helpers

    def both(self, method: str, *args, **kwargs):
        self.log.append(f"{method}{args}{kwargs or ''}")
        before = self.compiled.snapshot()
        # every third order entry also runs on a copy whose events one owner reads, in turn
        # 0, 1 and 2 (events(owner=), filtered in compiled code, of every kind of call)
        who = len(self.log) // 3 % 3 if method in _ORDER_ENTRY and len(self.log) % 3 == 0 \
            else None
        if who is not None:
            twin = self.compiled.copy()
            _outcome(getattr(twin, method), *args, **kwargs)
        got = _outcome(getattr(self.compiled, method), *args, **kwargs)
        want = _outcome(getattr(self.reference, method), *args, **kwargs)
        assert got == want, (f"{method}{args} {kwargs}: compiled {got} != reference {want}\n"
                             f"history: {self.log[-15:]}")
        quiet = _outcome(getattr(self.silent, method), *args, **kwargs)
        assert quiet == got, f"{method}{args} {kwargs}: record_events=False {quiet} != {got}"
        assert len(self.silent.events()) == 0
        if got[0] == "raised":
            # bad input changes nothing: the whole state, clock and pending events included
            assert self.compiled.snapshot() == before, (
                f"{method}{args} {kwargs} raised and changed the book")
        ev_c, ev_r = self.compiled.events(), self.reference.events()
        assert_events_equal(ev_c, ev_r, labels=("compiled", "reference"),
                            context=f"after {method}{args} {kwargs}: ")
        if got[0] == "ok" and len(ev_r) == 1 and ev_r["kind"][0] == EventKind.REJECTED:
            # a refusal that does not raise (an id that is not resting, a post-only cross)
            # changes nothing either: the book's clock stays with the last command it took
            assert self.compiled.snapshot() == before, (
                f"{method}{args} {kwargs} was refused and changed the book or its clock")
        if who is not None:
            mine = (ev_r["owner"] == who) | ((ev_r["kind"] == EventKind.FILL)
                                             & (ev_r["maker_owner"] == who))
            assert_events_equal(twin.events(owner=who), ev_r[mine],
                                labels=("compiled", "reference"),
                                context=f"after {method}{args} {kwargs}, events(owner={who}): ")
        self._note_owners(ev_r)
        if method in _ORDER_ENTRY:
            self.ledger.apply(_ORDER_ENTRY[method](*args, **kwargs), ev_r, _result(got))
        if got[0] == "raised":
            event(f"{method} raised {got[1]} {Reason(got[2]).name if len(got) > 2 else ''}")
        for kind in sorted(set(ev_r["kind"].tolist())):
            event(f"{method} emitted {EventKind(kind).name}")
        return got

    def _note_owners(self, events):
        for e in events[events["kind"] == EventKind.ACCEPTED].tolist():
            self.owner_of[int(e[EVENT_DTYPE.names.index("order_id")])] = int(
                e[EVENT_DTYPE.names.index("owner")])

    def _level_prices(self, side) -> list[int]:
        """The prices of one side's levels, best first, as the event ledger holds them (checked
        equal to both books after every step; depth() refuses a level total beyond int64)."""
        return sorted({o[1] for o in self.ledger.orders.values() if o[0] == side},
                      reverse=side == 0)

    # ------------------------------------------------------------------ rules

    @initialize(target=ids, oid=fresh_ids)
    def seed_id(self, oid):
        self.known_ids.add(oid)
        return oid

    @initialize(capacity=st.sampled_from([1024, 1024, 0, 1, 5]))
    def choose_capacity(self, capacity):
        """Now and then books made with room for almost nothing: their order pool, id index and
        event buffer then grow in the middle of a sweep, a modify's re-entry or a batch, which
        books of the default capacity (far above the few dozen orders a run rests) never do."""
        self.capacity = capacity
        self._new_books()
        self._rest_seed()           # the books seed_book filled, if it ran first, start again

    @initialize(target=ids, orders=st.lists(
        st.tuples(st.sampled_from([0, 1]), st.integers(0, 4), qtys, owners), max_size=12))
    def seed_book(self, orders):
        """Up to a dozen GTC orders resting from the first step, bids at 95-99 and asks at
        101-105, often several at a price: something for the rules to trade with. Left to the
        rules alone the book was empty in most steps and two-sided in one in twenty, so sweeps,
        FIFO within a level and self-trade prevention in the middle of a match were rare."""
        self.seed = orders
        return multiple(*self._rest_seed())

    def _rest_seed(self):
        oids = []
        for i, (side, off, qty, owner) in enumerate(self.seed):
            oid = 100 + i           # above the small fresh ids: each rests
            self.known_ids.add(oid)
            self.both("submit", oid, side, 99 - off if side == 0 else 101 + off, qty,
                      owner=owner)
            oids.append(oid)
        return oids

    @rule(target=ids, oid=st.one_of(ids, fresh_ids), side=maybe_bad_side, price=maybe_bad_price,
          qty=maybe_bad_qty, tif=maybe_bad_tif, owner=owners, post_only=st.booleans(), ts_ns=ts)
    def submit(self, oid, side, price, qty, tif, owner, post_only, ts_ns):
        self.known_ids.add(oid)
        self.both("submit", oid, side, price, qty, tif, owner=owner, post_only=post_only,
                  ts_ns=ts_ns)
        return oid

    @rule(target=ids, oid=st.one_of(ids, fresh_ids), side=maybe_bad_side, price=prices,
          qty=qtys, owner=owners)
    def submit_gtc(self, oid, side, price, qty, owner):
        # plain resting liquidity, so the book is not always nearly empty
        self.known_ids.add(oid)
        self.both("submit", oid, side, price, qty, owner=owner)
        return oid

    @rule(target=ids, oid=st.one_of(ids, fresh_ids), side=maybe_bad_side, qty=maybe_bad_qty,
          owner=owners, ts_ns=ts)
    def submit_market(self, oid, side, qty, owner, ts_ns):
        self.known_ids.add(oid)
        self.both("submit_market", oid, side, qty, owner=owner, ts_ns=ts_ns)
        return oid

    @rule(oid=ids, owner=owners, ts_ns=ts)
    def cancel(self, oid, owner, ts_ns):
        # owner: the sender, which the REJECTED event of an id that does not rest carries
        self.both("cancel", oid, owner=owner, ts_ns=ts_ns)

    @rule(oid=ids, qty=maybe_bad_qty,
          price=st.one_of(st.none(), prices, prices, st.sampled_from([0, -1])), owner=owners,
          ts_ns=ts)
    def modify(self, oid, qty, price, owner, ts_ns):
        self.both("modify", oid, qty, price, owner=owner, ts_ns=ts_ns)

    @rule(target=ids, oid=st.one_of(ids, fresh_ids), side=st.sampled_from([0, 1]),
          price=st.one_of(prices, edge_prices), qty=st.one_of(qtys, edge_qtys),
          tif=st.sampled_from(list(TIF)), owner=edge_owners, ts_ns=edge_ts)
    def submit_at_limits(self, oid, side, price, qty, tif, owner, ts_ns):
        self.known_ids.add(oid)
        self.both("submit", oid, side, price, qty, tif, owner=owner, ts_ns=ts_ns)
        return oid

    @rule(target=ids, oid=st.one_of(ids, fresh_ids), side=st.sampled_from([0, 1]),
          qty=st.one_of(qtys, edge_qtys), owner=edge_owners, ts_ns=edge_ts)
    def submit_market_at_limits(self, oid, side, qty, owner, ts_ns):
        self.known_ids.add(oid)
        self.both("submit_market", oid, side, qty, owner=owner, ts_ns=ts_ns)
        return oid

    @rule(oid=ids, qty=st.one_of(qtys, edge_qtys), price=st.one_of(st.none(), edge_prices),
          ts_ns=edge_ts)
    def modify_at_limits(self, oid, qty, price, ts_ns):
        self.both("modify", oid, qty, price, ts_ns=ts_ns)

    @rule(target=ids, oid=st.one_of(ids, fresh_ids), side=st.sampled_from([0, 1]), price=prices,
          qty=qtys, tif=st.sampled_from(list(TIF)), owner=owners, who=owners)
    def events_of_one_owner(self, oid, side, price, qty, tif, owner, who):
        """A submit whose events are read with events(owner=who) (the compiled book's filter):
        those of who's orders and the fills where who's order was the maker, nothing else."""
        self.known_ids.add(oid)
        self.log.append(f"submit{(oid, side, price, qty, tif)} owner={owner}, events(owner={who})")
        call = _ORDER_ENTRY["submit"](oid, side, price, qty, tif, owner=owner)
        got = _outcome(self.compiled.submit, oid, side, price, qty, tif, owner=owner)
        want = _outcome(self.reference.submit, oid, side, price, qty, tif, owner=owner)
        assert got == want, f"submit: compiled {got} != reference {want}"
        assert _outcome(self.silent.submit, oid, side, price, qty, tif, owner=owner) == got
        assert len(self.silent.events(owner=who)) == 0
        ev_r = self.reference.events()
        mine = (ev_r["owner"] == who) | ((ev_r["kind"] == EventKind.FILL)
                                         & (ev_r["maker_owner"] == who))
        assert_events_equal(self.compiled.events(owner=who), ev_r[mine],
                            labels=("compiled", "reference"), context=f"events(owner={who}): ")
        self._note_owners(ev_r)
        self.ledger.apply(call, ev_r, _result(got))
        return oid

    @rule(how=st.sampled_from(["copy", "copy.copy", "deepcopy", "pickle", "from_snapshot",
                               "restore"]))
    def continue_on_a_twin(self, how):
        """Go on with a twin of the compiled book: every later step must hold on it as well."""
        c = self.compiled
        make = {"copy": c.copy, "copy.copy": lambda: copy.copy(c),
                "deepcopy": lambda: copy.deepcopy(c),
                "pickle": lambda: pickle.loads(pickle.dumps(c, pickle.HIGHEST_PROTOCOL)),
                "from_snapshot": lambda: OrderBook.from_snapshot(c.snapshot())}.get(how)
        if make is None:
            twin = OrderBook(stp=STP.NONE, capacity=1)
            twin.restore(c.snapshot())
        else:
            twin = make()
        assert twin.snapshot() == c.snapshot() and twin.state_hash() == c.state_hash()
        assert twin.stp == self.stp_mode
        self.log.append(f"twin by {how}")
        self.compiled = twin
        self.silent = self._silent_twin(how)
        self.reference = copy.deepcopy(self.reference)

    def _silent_twin(self, how):
        # the twins of a book that records no events record none either (from_snapshot() and
        # restore() into a book made so)
        q = self.silent
        if how == "restore":
            twin = OrderBook(stp=STP.NONE, capacity=1, record_events=False)
            twin.restore(q.snapshot())
        else:
            twin = {"copy": q.copy, "copy.copy": lambda: copy.copy(q),
                    "deepcopy": lambda: copy.deepcopy(q),
                    "pickle": lambda: pickle.loads(pickle.dumps(q, pickle.HIGHEST_PROTOCOL)),
                    "from_snapshot": lambda: OrderBook.from_snapshot(
                        q.snapshot(), record_events=False)}[how]()
        assert twin.record_events is False and twin.snapshot() == q.snapshot()
        return twin

    @rule(n=st.integers(0, 4))
    def depth_of_a_few_levels(self, n):
        # the invariant reads 100 levels, more than this band ever holds: here the top n only
        for name in ("depth", "depth_orders"):
            got = _outcome(lambda: [a.tolist() for a in getattr(self.compiled, name)(n)])
            want = _outcome(lambda: [a.tolist() for a in getattr(self.reference, name)(n)])
            assert got == want, f"{name}({n}): compiled {got} != reference {want}"

    @rule(oid=ids)
    def queries_of_one_id(self, oid):
        self.both("get", oid)
        self.both("queue_position", oid)

    @rule(data=st.data(), n=st.integers(1, 12))
    def process_batch(self, data, n):
        """A small COMMAND_DTYPE batch through process() on both books (incl. bad commands)."""
        cmds = np.zeros(n, dtype=COMMAND_DTYPE)
        pool = sorted(self.known_ids) or [0]
        for i in range(n):
            oid = data.draw(st.one_of(st.sampled_from(pool), fresh_ids))
            self.known_ids.add(oid)
            cmds["order_id"][i] = oid
            cmds["kind"][i] = data.draw(st.one_of(st.sampled_from(list(CommandKind)),
                                                  st.sampled_from(list(CommandKind)),
                                                  st.sampled_from(list(CommandKind)),
                                                  st.just(7)))
            cmds["side"][i] = data.draw(maybe_bad_side)
            cmds["price"][i] = data.draw(st.one_of(maybe_bad_price, st.just(0)))
            cmds["qty"][i] = data.draw(maybe_bad_qty)
            cmds["tif"][i] = data.draw(maybe_bad_tif)
            cmds["owner"][i] = data.draw(owners)
            cmds["post_only"][i] = data.draw(st.sampled_from([0, 0, 1]))
            cmds["ts_ns"][i] = data.draw(ts)
        self._run_batch(cmds)

    def _run_batch(self, cmds, room=None):
        """One batch through both books' process(), into a caller's buffer of `room` events
        when given (the compiled book borrows it as its event buffer for the batch)."""
        self.log.append(f"process({cmds.tolist()}, out room {room})")
        buf = None if room is None else np.zeros(room, dtype=EVENT_DTYPE)
        before = self.compiled.snapshot()
        out_c = self.compiled.process(cmds, out=buf)
        out_r = self.reference.process(cmds)
        assert_events_equal(out_c, out_r, labels=("compiled", "reference"),
                            context=f"process(out room {room}): ")
        quiet = None if room is None else np.zeros(room, dtype=EVENT_DTYPE)
        assert_events_equal(self.silent.process(cmds, out=quiet), out_r,
                            labels=("record_events=False", "reference"),
                            context=f"process(out room {room}): ")
        if (out_r["kind"] == EventKind.REJECTED).all():
            # a batch of refused commands moves nothing, the clock included
            assert self.compiled.snapshot() == before, "a refused batch changed the book"
        if buf is not None and len(out_r) <= room:
            # the events that fit are the caller's buffer's first k
            assert np.shares_memory(out_c, buf) and out_c.base is not None
        self._note_owners(out_r)
        self.ledger.apply_batch(cmds, out_r)
        # process() must not touch the pending per-call buffer
        assert len(self.compiled.events()) == 0
        assert len(self.reference.events()) == 0

    @rule(data=st.data(), n=st.integers(1, 12),
          room=st.sampled_from([0, 1, 2, 3, 5, 8, 13, 64]))
    def process_into_out(self, data, n, room):
        """A batch written into a caller's out= buffer, often too small for its events (the
        rest of the batch then goes to the book's own buffer and the two parts are joined)."""
        cmds = np.zeros(n, dtype=COMMAND_DTYPE)
        pool = sorted(self.known_ids) or [0]
        for i in range(n):
            oid = data.draw(st.one_of(st.sampled_from(pool), fresh_ids))
            self.known_ids.add(oid)
            cmds[i] = (data.draw(ts), oid, data.draw(st.one_of(prices, st.just(0))),
                       data.draw(qtys), data.draw(owners), 0,
                       data.draw(st.sampled_from(list(CommandKind))),
                       data.draw(st.sampled_from([0, 1])), data.draw(st.sampled_from([0, 1, 2])),
                       data.draw(st.sampled_from([0, 0, 1])))
        self._run_batch(cmds, room)

    @rule(data=st.data(), n=st.integers(1, 8))
    def process_at_limits(self, data, n):
        """A batch of commands at the limits of their fields: prices and quantities at both
        ends of int64 (the command fields are signed), the largest ids and owners, the clock's
        extremes, every byte value a kind, side or time in force can hold."""
        cmds = np.zeros(n, dtype=COMMAND_DTYPE)
        pool = sorted(self.known_ids) or [0]
        for i in range(n):
            oid = data.draw(st.one_of(st.sampled_from(pool), st.sampled_from([0, MAX_U64])))
            self.known_ids.add(oid)
            cmds[i] = (data.draw(edge_ts), oid,
                       data.draw(st.one_of(prices, edge_prices,
                                           st.sampled_from([0, -1, -(2**63)]))),
                       data.draw(st.one_of(qtys, edge_qtys, st.sampled_from([0, -(2**63)]))),
                       data.draw(edge_owners), data.draw(st.sampled_from([0, 2**32 - 1])),
                       data.draw(st.one_of(st.sampled_from(list(CommandKind)),
                                           st.sampled_from([4, 255]))),
                       data.draw(st.sampled_from([0, 1, 2, 255])),
                       data.draw(st.sampled_from([0, 1, 2, 3, 255])),
                       data.draw(st.sampled_from([0, 1, 255])))
        self._run_batch(cmds)

    @rule(n_bids=st.integers(0, 4), n_asks=st.integers(0, 4))
    def depth_into_rows(self, n_bids, n_asks):
        """depth_into() writes the top levels the reference holds, or raises OverflowError
        for a level total beyond int64 among the rows asked for, writing nothing; rows past
        the counts stay as they were."""
        bids = np.full((n_bids, 2), -7, dtype=np.int64)
        asks = np.full((n_asks, 2), -7, dtype=np.int64)
        want = []
        for side, rows in ((0, n_bids), (1, n_asks)):
            want.append([[p, sum(q for _, q in self.reference.level(side, p))]
                         for p in self._level_prices(side)[:rows]])
        beyond = any(q > 2**63 - 1 for side in want for _, q in side)
        try:
            nb, na = self.compiled.depth_into(bids, asks)
        except OverflowError:
            assert beyond, want
            assert (bids == -7).all() and (asks == -7).all()
            return
        assert not beyond, want
        assert bids[:nb].tolist() == want[0] and asks[:na].tolist() == want[1]
        assert (bids[nb:] == -7).all() and (asks[na:] == -7).all()

    # Only a book that has grown is cleared: hypothesis tries the rules without arguments
    # first far more often than the others, and this one, always enabled, emptied the book in
    # about one step of four.
    @precondition(lambda self: len(self.reference) >= 6)
    @rule()
    def clear_books(self):
        """clear() empties the compiled book (no events); it goes on as a new book would, the
        reference model (which has no clear()) being a new one."""
        self.log.append("clear()")
        self.compiled.clear()
        self.silent.clear()
        assert len(self.compiled) == 0 and len(self.compiled.events()) == 0
        self.reference = ReferenceBook(stp=self.stp_mode)
        clock = self.ledger.clock           # clear() keeps the clock
        self.ledger = EventLedger(self.stp_mode, allow_crossed=self.allow_crossed)
        self.ledger.clock = clock

    @precondition(lambda self: len(self.reference) > 0)
    @rule(data=st.data(), side=st.sampled_from([0, 1]), owner=st.integers(1, 2), limit=prices,
          oid=fresh_ids)
    def fok_at_liquidity_boundary(self, data, side, owner, limit, oid):
        """A FOK whose qty sits at (or one lot around) a liquidity total that some STP mode uses:
        all crossing qty, crossing qty of other owners, crossing qty ahead of the first own order."""
        everything = others = ahead_of_own = 0
        own_seen = False
        for price in self._level_prices(1 - side):
            if (side == 0 and price > limit) or (side == 1 and price < limit):
                break
            for maker, qty in self.reference.level(1 - side, price):
                mine = self.owner_of.get(maker) == owner
                own_seen = own_seen or mine
                everything += qty
                others += 0 if mine else qty
                ahead_of_own += 0 if own_seen else qty
        # a FOK takes at most 2**63-1 lots; totals of edge_qtys orders pass that
        candidates = sorted({min(t + d, 2**63 - 1) for t in (everything, others, ahead_of_own)
                             for d in (-1, 0, 1) if t + d > 0})
        qty = data.draw(st.sampled_from(candidates))
        self.known_ids.add(oid)
        self.both("submit", oid, side, limit, qty, TIF.FOK, owner=owner)

    @precondition(lambda self: len(self.reference) > 0)
    @rule(data=st.data())
    def cancel_resting(self, data):
        side, rows = data.draw(st.sampled_from([(s, self._level_prices(s)) for s in (0, 1)])
                               .filter(lambda x: len(x[1])))
        price = rows[data.draw(st.integers(0, len(rows) - 1))]
        queue = self.reference.level(side, price)
        oid = queue[data.draw(st.integers(0, len(queue) - 1))][0]
        if data.draw(st.booleans()):
            self.both("cancel", oid)
        else:
            self.both("modify", oid, data.draw(qtys), data.draw(st.one_of(st.none(), prices)))

    @precondition(lambda self: len(self.reference) > 0)
    @rule(data=st.data(), more=st.integers(1, 5), same_price=st.booleans())
    def grow_resting(self, data, more, same_price):
        """A resting order asked for more than its open qty at its own price: it loses its place
        and re-enters (post-only orders too, which must not take liquidity then)."""
        side, rows = data.draw(st.sampled_from([(s, self._level_prices(s)) for s in (0, 1)])
                               .filter(lambda x: len(x[1])))
        price = rows[data.draw(st.integers(0, len(rows) - 1))]
        queue = self.reference.level(side, price)
        oid, qty = queue[data.draw(st.integers(0, len(queue) - 1))]
        self.both("modify", oid, min(qty + more, 2**63 - 1), price if same_price else None)

    @precondition(lambda self: len(self.reference) > 0)
    @rule(data=st.data(), through=st.integers(0, 2), more=st.integers(-2, 3), ts_ns=ts)
    def reprice_through_touch(self, data, through, more, ts_ns):
        """A resting order repriced to the opposite touch or through it: it leaves its level and
        re-enters as the aggressor, trading at the makers' prices, cancelling or stopped by its
        owner's own orders (STP), or, post-only, refused and left as it was. (Drawn at random,
        a repriced order that rests next to an opposite side that it crosses is rare.)"""
        both_sides = [s for s in (0, 1) if self._level_prices(s) and self._level_prices(1 - s)]
        side = data.draw(st.sampled_from(both_sides or [s for s in (0, 1)
                                                        if self._level_prices(s)]))
        rows = self._level_prices(side)
        price = rows[data.draw(st.integers(0, len(rows) - 1))]
        queue = self.reference.level(side, price)
        oid, qty = queue[data.draw(st.integers(0, len(queue) - 1))]
        opposite = self._level_prices(1 - side)
        touch = opposite[0] if opposite else price
        new = touch + through if side == 0 else touch - through
        self.both("modify", oid, min(max(qty + more, 1), 2**63 - 1),
                  min(max(new, 1), 2**63 - 1), ts_ns=ts_ns)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def books_equal_and_consistent(self):
        c, r = self.compiled, self.reference
        c.check_invariants(allow_crossed=self.allow_crossed)
        r.check_invariants(allow_crossed=self.allow_crossed)
        assert len(c) == len(r)
        assert c.best_bid() == r.best_bid()
        assert c.best_ask() == r.best_ask()
        # a level total beyond int64 (edge_qtys) makes both refuse depth with OverflowError
        for name in ("depth", "depth_orders"):
            got = _outcome(lambda: [(a.dtype, a.tolist()) for a in getattr(c, name)(100)])
            want = _outcome(lambda: [(a.dtype, a.tolist()) for a in getattr(r, name)(100)])
            assert got == want, f"{name}: compiled {got} != reference {want}"
        for side in (0, 1):
            for price in {o[1] for o in self.ledger.orders.values() if o[0] == side}:
                assert c.level(side, price) == r.level(side, price), (side, price)
            assert c.level_count(side) == r.level_count(side), side
        for oid in self.known_ids:
            assert c.get(oid) == r.get(oid), oid
            assert _outcome(c.queue_position, oid) == _outcome(r.queue_position, oid), oid
        # nothing was left in the pending buffers by an unchecked call
        ev_c, ev_r = c.events(), r.events()
        assert len(ev_c) == len(ev_r) == 0, [describe_event(e) for e in ev_c]
        self.ledger.check_book(c)
        # record_events changes no state: the same snapshot bytes, clock and arrivals included
        self.silent.check_invariants(allow_crossed=self.allow_crossed)
        assert self.silent.snapshot() == c.snapshot() and len(self.silent.events()) == 0


class ReplayModeComparison(BookComparison):
    """The same, with the replay mode mixed in: place() rests without matching (the book may
    lock or cross, and later orders match against it), reduce() takes lots off a resting order.
    The STP mode is drawn."""

    allow_crossed = True

    @initialize(stp=st.sampled_from(list(STP)))
    def choose_stp(self, stp):
        self.stp_mode = stp
        self._new_books()
        self._rest_seed()           # the books seed_book filled, if it ran first, start again

    @rule(target=BookComparison.ids, oid=st.one_of(BookComparison.ids, fresh_ids),
          side=maybe_bad_side, price=maybe_bad_price, qty=maybe_bad_qty, owner=owners, ts_ns=ts)
    def place(self, oid, side, price, qty, owner, ts_ns):
        self.known_ids.add(oid)
        self.both("place", oid, side, price, qty, owner=owner, ts_ns=ts_ns)
        return oid

    @rule(target=BookComparison.ids, oid=st.one_of(BookComparison.ids, fresh_ids),
          side=st.sampled_from([0, 1]), price=st.one_of(prices, edge_prices),
          qty=st.one_of(qtys, edge_qtys), owner=edge_owners, ts_ns=edge_ts)
    def place_at_limits(self, oid, side, price, qty, owner, ts_ns):
        # a bid at 2**63-1 or an ask at 1 crosses the whole other side; level totals past int64
        self.known_ids.add(oid)
        self.both("place", oid, side, price, qty, owner=owner, ts_ns=ts_ns)
        return oid

    @precondition(lambda self: len(self.reference) > 0)
    @rule(target=BookComparison.ids, data=st.data(), oid=fresh_ids, qty=qtys, owner=owners,
          through=st.integers(0, 2))
    def place_through_resting(self, data, oid, qty, owner, through):
        """place() on the other side at (or through) a resting order's price: the book locks or
        crosses there, and the orders it holds (post-only ones too) meet it as they re-enter."""
        side, rows = data.draw(st.sampled_from([(s, self._level_prices(s)) for s in (0, 1)])
                               .filter(lambda x: len(x[1])))
        price = rows[data.draw(st.integers(0, len(rows) - 1))]
        at = max(1, price - through) if side == 0 else min(price + through, 2**63 - 1)
        self.known_ids.add(oid)
        self.both("place", oid, 1 - side, at, qty, owner=owner)
        return oid

    @rule(target=BookComparison.ids, oid=fresh_ids, other=fresh_ids, side=st.sampled_from([0, 1]),
          price=prices, qty=qtys, owner=owners, through=st.integers(0, 2),
          more=st.integers(0, 3), same_price=st.booleans())
    def post_only_meets_a_crossed_book(self, oid, other, side, price, qty, owner, through, more,
                                       same_price):
        """A resting post-only order, then place() at or through its price on the other side,
        then the order modified (grown, so it re-enters, or kept): it must take no liquidity."""
        self.known_ids.update((oid, other))
        self.both("submit", oid, side, price, qty, owner=owner, post_only=True)
        if self.reference.get(oid) is None or self.reference.get(other) is not None:
            return oid
        at = price + through if side == 0 else price - through
        self.both("place", other, 1 - side, max(1, at), qty, owner=owner)
        self.both("modify", oid, qty + more, price if same_price else None)
        return oid

    @rule(oid=BookComparison.ids, qty=st.one_of(maybe_bad_qty, st.integers(15, 40)),
          execution=st.booleans(), ts_ns=ts)
    def reduce(self, oid, qty, execution, ts_ns):
        self.both("reduce", oid, qty, execution=execution, ts_ns=ts_ns)

    @precondition(lambda self: len(self.reference) > 0)
    @rule(data=st.data(), delta=st.integers(-3, 3), execution=st.booleans(), ts_ns=ts)
    def reduce_resting(self, data, delta, execution, ts_ns):
        """reduce() of a resting order (the rule above mostly draws ids that rest nowhere): part
        of its open qty, which keeps its queue place, all of it, or more (clamped: it leaves)."""
        side, rows = data.draw(st.sampled_from([(s, self._level_prices(s)) for s in (0, 1)])
                               .filter(lambda x: len(x[1])))
        price = rows[data.draw(st.integers(0, len(rows) - 1))]
        queue = self.reference.level(side, price)
        oid, qty = queue[data.draw(st.integers(0, len(queue) - 1))]
        self.both("reduce", oid, min(max(qty + delta, 1), 2**63 - 1), execution=execution,
                  ts_ns=ts_ns)


_SETTINGS = settings(
    max_examples=2000 if SOAK else 120,
    stateful_step_count=200 if SOAK else 50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
)


def _machine_for(mode: STP):
    cls = type(f"BookComparison_{mode.name}", (BookComparison,), {"stp_mode": mode})
    cls.TestCase.settings = _SETTINGS
    return cls


BookComparisonNone = _machine_for(STP.NONE)
BookComparisonCancelResting = _machine_for(STP.CANCEL_RESTING)
BookComparisonCancelTaker = _machine_for(STP.CANCEL_TAKER)
BookComparisonCancelBoth = _machine_for(STP.CANCEL_BOTH)

test_book_stp_none_matches_reference = BookComparisonNone.TestCase
test_book_stp_cancel_resting_matches_reference = BookComparisonCancelResting.TestCase
test_book_stp_cancel_taker_matches_reference = BookComparisonCancelTaker.TestCase
test_book_stp_cancel_both_matches_reference = BookComparisonCancelBoth.TestCase

ReplayModeComparison.TestCase.settings = _SETTINGS
test_book_replay_mode_matches_reference = ReplayModeComparison.TestCase


# ------------------------------------------------------------------ the ledger itself

def _ledger_call(book, ledger, method, *args, **kwargs):
    try:
        getattr(book, method)(*args, **kwargs)
    except OrderRejected:
        pass
    return _ORDER_ENTRY[method](*args, **kwargs), book.events()


@pytest.mark.parametrize("method, args, kwargs, field, value", [
    ("submit", (9, 0, 100, 4), {"owner": 2}, "qty", 5),                 # ACCEPTED qty
    ("submit", (9, 0, 100, 4), {"owner": 2}, "owner", 1),               # ACCEPTED owner
    ("submit", (9, 1, 0, 4), {}, "reason", int(Reason.INVALID_QTY)),    # wrong refusal
    ("submit", (9, 0, 100, 4), {"post_only": True}, "kind", int(EventKind.REJECTED)),
    ("submit_market", (9, 0, 3), {}, "price", 100),                     # market ACCEPTED price
    ("cancel", (77,), {"owner": 2}, "owner", 0),                        # not the sender
    ("modify", (1, 3), {}, "price", 101),                               # MODIFIED price
    ("modify", (77, 3, 101), {"owner": 2}, "price", 0),                 # REJECTED price
    ("place", (9, 1, 99, 4), {"owner": 2}, "side", 0),                  # ACCEPTED side
    ("reduce", (1, 0), {}, "owner", 0),                                 # not the order's owner
    ("submit", (9, 0, 100, 4), {}, "maker_id", 1),                      # ACCEPTED with a maker
    ("cancel", (1,), {}, "maker_owner", 7),                             # CANCELLED with a maker
    ("modify", (1, 3), {}, "reason", int(Reason.CANCEL_REQUESTED)),     # MODIFIED with a reason
    ("place", (9, 1, 99, 4), {}, "symbol", 3),                          # another symbol
])
def test_ledger_flags_a_first_event_that_does_not_echo_its_call(method, args, kwargs, field,
                                                                  value):
    # Both books could agree on a wrong field: the ledger checks it against the call itself.
    book, ledger = ReferenceBook(), EventLedger(STP.CANCEL_RESTING, allow_crossed=True)
    ledger.apply(*_ledger_call(book, ledger, "submit", 1, 0, 100, 5, owner=7))
    ledger.apply(*_ledger_call(book, ledger, "submit", 2, 1, 102, 5, owner=7))
    call, events = _ledger_call(book, ledger, method, *args, **kwargs)
    twin = copy.deepcopy(ledger)                # the events as written pass
    twin.apply(call, events)
    events = events.copy()
    assert events[0][field] != value
    events[0][field] = value
    with pytest.raises(LedgerError):
        ledger.apply(call, events)


def test_ledger_flags_a_book_clock_other_than_its_last_taken_call():
    # the clock is the time of the last call the book took: a refused one leaves it there
    book, ledger = OrderBook(), EventLedger(STP.CANCEL_RESTING)
    ledger.apply(*_ledger_call(book, ledger, "submit", 1, 0, 100, 5, ts_ns=7))
    ledger.apply(*_ledger_call(book, ledger, "cancel", 2, ts_ns=9))     # not resting: refused
    ledger.check_book(book)
    assert ledger.clock == 7
    ledger.clock = 9
    with pytest.raises(LedgerError, match="clock is 7"):
        ledger.check_book(book)


@pytest.mark.parametrize("method, args, kwargs, wrong", [
    ("submit", (9, 0, 102, 4), {}, 3),                          # filled 2 of 4, not 3
    ("submit", (9, 0, 102, 4), {}, True),                       # the lots, not a flag
    ("submit", (9, 0, 101, 4), {"post_only": True}, OrderRejected(Reason.POST_ONLY_WOULD_CROSS,
                                                                  9)),    # returns 0
    ("submit", (1, 0, 100, 4), {}, 0),                          # a resting id: raises
    ("submit", (9, 0, 100, 4), {}, OrderRejected(Reason.INVALID_QTY, 9)),  # wrong reason
    ("submit_market", (9, 0, 4), {}, 4),                        # 2 lots there to take
    ("cancel", (1,), {}, 0),                                    # its 5 open lots
    ("cancel", (77,), {}, OrderRejected(Reason.ORDER_NOT_FOUND, 77)),  # returns 0
    ("modify", (1, 3), {}, False),                              # modified
    ("modify", (77, 3), {}, True),                              # not resting: False
    ("modify", (1, 0), {}, False),                              # raises INVALID_QTY
    ("place", (9, 1, 99, 4), {}, 0),                            # returns None
    ("reduce", (1, 9), {}, 9),                                  # clamped to the 5 open lots
    ("reduce", (77, 2), {}, OrderRejected(Reason.ORDER_NOT_FOUND, 77)),  # returns 0
    ("submit", (9, 0, 100, 0), {}, OrderRejected(Reason.INVALID_QTY, 8)),  # another order's id
])
def test_ledger_flags_a_call_result_its_events_do_not_give(method, args, kwargs, wrong):
    # Both books could agree on a wrong return value or refusal, as on a wrong event: the
    # ledger holds the result to the call's events, and takes the one the book gave.
    book, ledger = ReferenceBook(), EventLedger(STP.CANCEL_RESTING, allow_crossed=True)
    ledger.apply(*_ledger_call(book, ledger, "submit", 1, 0, 100, 5, owner=7))
    ledger.apply(*_ledger_call(book, ledger, "submit", 2, 1, 102, 2, owner=7))
    got = _outcome(getattr(book, method), *args, **kwargs)
    call, events = _ORDER_ENTRY[method](*args, **kwargs), book.events()
    copy.deepcopy(ledger).apply(call, events, _result(got))     # the book's own passes
    with pytest.raises(LedgerError, match="its events say"):
        ledger.apply(call, events, wrong)
