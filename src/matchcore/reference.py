"""ReferenceBook: a deliberately naive, pure-Python limit order book.

It is the executable specification of the matching rules: the compiled ``OrderBook`` must produce
exactly the same return values, exceptions and event sequences for every sequence of calls, and the
property tests hold the two equal step by step. It trades speed for clarity:

* each side is a ``SortedDict`` mapping ``price -> level``;
* a level is an ``OrderedDict`` mapping ``order_id -> _Order`` in arrival (FIFO) order, so appending,
  taking the head and removing any order are all O(1) and nothing is ever re-sorted;
* a plain ``dict`` maps ``order_id -> _Order`` for every resting order.

Units: ``price`` is in ticks (int64, > 0), ``qty`` is in lots (int64, > 0), ``order_id`` and ``owner``
are uint64, ``ts_ns`` is an int64 nanosecond timestamp copied into every event of a call.

Example:

>>> from matchcore.reference import ReferenceBook
>>> book = ReferenceBook()
>>> book.submit(1, 1, 101, 5)            # sell 5 @ 101, rests
0
>>> book.submit(2, 0, 101, 3)            # buy 3 @ 101, fills against order 1
3
>>> book.best_ask()
(101, 2)
>>> [int(k) for k in book.events()["kind"]]   # ACCEPTED, ACCEPTED, FILL
[0, 0, 1]
"""
from __future__ import annotations

import operator
from collections import OrderedDict
from typing import Iterator

import numpy as np
from sortedcontainers import SortedDict

from matchcore._args import refuse_masked
from matchcore._core import _MAX_CAPACITY, _flag_arg as _flag
from matchcore._enums import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    STP,
    TIF,
    CommandKind,
    EventKind,
    OrderRejected,
    Reason,
    Side,
)

__all__ = ["ReferenceBook"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1

# Column order of the internal event tuples (converted to EVENT_DTYPE by field name).
_EVENT_FIELDS = ("ts_ns", "order_id", "maker_id", "price", "qty", "owner", "maker_owner",
                 "kind", "side", "reason")

_BUY = int(Side.BUY)
_SELL = int(Side.SELL)


def _side_byte(side: int) -> int:
    # the side a REJECTED event records (one byte): an invalid side outside 0..255 is 255,
    # invalid too, never wrapped into another value (256 would read as BUY)
    return side if 0 <= side <= 255 else 255


def _index(value, name: str) -> int:
    """``operator.index`` with an error that names the argument, as the compiled book's."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}") from None


def _uint64(value, name: str) -> int:
    """Convert like a C ``uint64_t`` argument: any integer in [0, 2**64), else OverflowError."""
    v = _index(value, name)
    if not 0 <= v <= _UINT64_MAX:
        raise OverflowError(f"{name}={v} is outside the uint64 range [0, 2**64)")
    return v


def _cint(value, name: str) -> int:
    """Convert like a C ``int`` argument (side, tif): [-2**31, 2**31), else OverflowError."""
    v = _index(value, name)
    if not -(2**31) <= v < 2**31:
        raise OverflowError(f"{name}={v} is outside the C int range")
    return v


def _int64(value, name: str) -> int:
    """Convert like a C ``int64_t`` argument: any integer in [-2**63, 2**63), else OverflowError."""
    v = _index(value, name)
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise OverflowError(f"{name}={v} is outside the int64 range")
    return v


class _Order:
    """One resting order. ``qty`` is the open (unfilled) quantity."""

    __slots__ = ("oid", "side", "price", "qty", "owner", "post_only")

    def __init__(self, oid: int, side: int, price: int, qty: int, owner: int, post_only: bool):
        self.oid = oid
        self.side = side
        self.price = price
        self.qty = qty
        self.owner = owner
        self.post_only = post_only

    def __reduce__(self):
        # its fields, for every pickle protocol: protocols 0 and 1 refuse a __slots__ class
        # without __getstate__, and the book pickles with all of them
        return _Order, (self.oid, self.side, self.price, self.qty, self.owner, self.post_only)


def _into(buf: np.ndarray, events: np.ndarray) -> np.ndarray:
    buf[:len(events)] = events
    return buf[:len(events)]


class ReferenceBook:
    """Naive pure-Python limit order book with the exact semantics of the compiled ``OrderBook``.

    Price-time priority, fills at the maker's price, GTC/IOC/FOK limit orders, market orders,
    post-only, cancel, modify (in place when the price is kept and the quantity does not grow,
    else cancel/replace losing priority), self-trade prevention for a non-zero ``owner``, and
    the replay mode (``place`` and ``reduce``: the exchange's own events, without matching).

    Args:
        stp: self-trade prevention mode (``STP``), applied when the aggressor's owner is non-zero
            and equals the resting order's owner. Default ``STP.CANCEL_RESTING``.
        record_events: when False the per-call API keeps no events (``events()`` is empty);
            ``process()`` still returns the events of its batch.
        capacity: accepted for interface compatibility with ``OrderBook`` and checked as it
            checks it (an integer in [0, 2**30]); otherwise ignored.

    Example:

    >>> book = ReferenceBook(stp=STP.CANCEL_TAKER)
    >>> book.stp == STP.CANCEL_TAKER
    True
    """

    def __init__(self, stp=STP.CANCEL_RESTING, *, record_events: bool = True, capacity=1024):
        # the compiled book's checks and words, in its order (mc_stp_arg, mc_bool_arg,
        # mc_capacity_arg)
        mode = _index(stp, "stp")
        if mode not in (0, 1, 2, 3):
            raise ValueError(f"unknown self-trade prevention mode {stp!r}")
        recording = _flag(record_events, "record_events")
        cap = _int64(capacity, "capacity")
        if not 0 <= cap <= _MAX_CAPACITY:
            raise ValueError(f"capacity must be in [0, 2**30] (a book holds at most 2**30 "
                             f"orders), got {cap}")
        self._stp = STP(mode)
        self._record_events = recording
        # side -> SortedDict(price -> OrderedDict(order_id -> _Order))
        self._sides: tuple[SortedDict, SortedDict] = (SortedDict(), SortedDict())
        self._orders: dict[int, _Order] = {}
        self._pending: list[tuple] = []  # events of the per-call API since the last events()
        self._out: list[tuple] = self._pending  # where the operation being run writes its events
        self._ts_ns = 0

    # ------------------------------------------------------------------ properties

    @property
    def stp(self) -> STP:
        """The self-trade prevention mode (read-only). O(1).

        >>> ReferenceBook().stp
        <STP.CANCEL_RESTING: 1>
        """
        return self._stp

    @property
    def record_events(self) -> bool:
        """Whether the per-call API records events for ``events()`` (read-only). O(1).

        >>> ReferenceBook(record_events=False).record_events
        False
        """
        return self._record_events

    def __len__(self) -> int:
        """Number of resting orders. O(1).

        >>> book = ReferenceBook(); _ = book.submit(1, 0, 100, 5); len(book)
        1
        """
        return len(self._orders)

    def __repr__(self) -> str:
        return (f"ReferenceBook(stp={self._stp.name}, orders={len(self._orders)}, "
                f"best_bid={self.best_bid()}, best_ask={self.best_ask()})")

    def __getstate__(self):
        # object's own state (the attributes, and a subclass's __slots__ values), defined here
        # because protocols 0 and 1 refuse a class with __slots__ whose __getstate__ is
        # object's: a slotted subclass then pickles with every protocol, as OrderBook's does
        return object.__getstate__(self)

    def __copy__(self) -> "ReferenceBook":
        """``copy.copy`` is a full copy, as for :class:`~matchcore.OrderBook`: a shallow one
        would share the levels and orders, and each book would trade the other's. Pending
        events are copied too; pickle and ``copy.deepcopy`` work as for any Python object.
        O(orders + events)."""
        import copy

        return copy.deepcopy(self)

    # ------------------------------------------------------------------ order entry (per call)

    def submit(self, order_id, side, price, qty, tif=TIF.GTC, *, owner=0, post_only=False,
               ts_ns=0) -> int:
        """Submit a limit order; return the quantity (lots) executed by this call.

        ``price`` in ticks (> 0), ``qty`` in lots (> 0), ``tif`` one of GTC/IOC/FOK. A GTC
        remainder rests at the back of its price level; IOC and FOK never rest. A post-only order
        that would cross the best opposite price is rejected (REJECTED event, returns 0). Any
        other invalid argument (qty, price, side, tif, an order id already resting) records a
        REJECTED event and raises ``OrderRejected`` with the reason; the book is unchanged.

        Complexity: O(log L + F + S) for F makers filled and S self-trade cancellations
        (L = number of price levels); FOK adds a scan of the liquidity it needs.

        >>> book = ReferenceBook()
        >>> book.submit(1, Side.SELL, 100, 4)
        0
        >>> book.submit(2, Side.BUY, 101, 6, TIF.IOC)   # fills 4 @ 100, the 2 left expire
        4
        """
        post_only = _flag(post_only, "post_only")
        oid = _uint64(order_id, "order_id")
        side = _cint(side, "side")
        price = _int64(price, "price")
        qty = _int64(qty, "qty")
        tif = _cint(tif, "tif")
        owner = _uint64(owner, "owner")
        self._begin(_int64(ts_ns, "ts_ns"))
        filled, reason = self._submit(oid, side, price, qty, tif, owner, post_only)
        self._raise_unless_ok(reason, oid, Reason.POST_ONLY_WOULD_CROSS)
        return filled

    def submit_market(self, order_id, side, qty, *, owner=0, ts_ns=0) -> int:
        """Submit a market order; return the quantity (lots) executed by this call.

        It matches against the opposite side with no price limit; whatever is left expires
        (EXPIRED, reason MARKET_REMAINDER). It never rests. Invalid qty/side or a resting duplicate
        id raise ``OrderRejected`` (after recording a REJECTED event with price 0).

        Complexity: O(log L + F + S), as for ``submit``.

        >>> book = ReferenceBook()
        >>> book.submit(1, Side.SELL, 100, 4)
        0
        >>> book.submit_market(2, Side.BUY, 10)
        4
        >>> len(book)
        0
        """
        oid = _uint64(order_id, "order_id")
        side = _cint(side, "side")
        qty = _int64(qty, "qty")
        owner = _uint64(owner, "owner")
        self._begin(_int64(ts_ns, "ts_ns"))
        filled, reason = self._market(oid, side, qty, owner)
        self._raise_unless_ok(reason, oid)
        return filled

    def cancel(self, order_id, *, owner=0, ts_ns=0) -> int:
        """Cancel a resting order; return its open quantity (lots) removed, 0 if it is not resting.

        A resting order yields CANCELLED (reason CANCEL_REQUESTED); an unknown, filled or already
        cancelled id yields REJECTED (reason ORDER_NOT_FOUND, with ``owner``, the sender) and
        changes nothing. Never raises for an unknown id.

        Complexity: O(1) plus O(log L) when its level empties.

        >>> book = ReferenceBook(); _ = book.submit(1, Side.BUY, 100, 5)
        >>> book.cancel(1), book.cancel(1)
        (5, 0)
        """
        oid = _uint64(order_id, "order_id")
        owner = _uint64(owner, "owner")
        self._begin(_int64(ts_ns, "ts_ns"))
        return self._cancel(oid, owner)

    def modify(self, order_id, qty, price=None, *, owner=0, ts_ns=0) -> bool:
        """Change a resting order's quantity and/or price; return True if it was modified.

        ``qty`` is the new open quantity in lots (> 0), whatever was filled before. ``price`` in
        ticks; ``None`` (or 0) keeps the current price. With the same price and ``qty`` <= open qty
        the order is changed in place and keeps its queue position. Otherwise it leaves its level
        (MODIFIED) and re-enters as a GTC limit order with the same id/side/owner/post-only flag:
        it may trade as the aggressor (at the makers' prices) and its remainder rests at the back
        of its level. Returns False if the order is not resting (REJECTED ORDER_NOT_FOUND) or a
        post-only order would cross as it re-enters (REJECTED POST_ONLY_WOULD_CROSS, order
        unchanged): at a new price, or at its own in a book that ``place`` left crossed.
        Raises ``OrderRejected`` for qty <= 0 (INVALID_QTY) or price < 0 (INVALID_PRICE).
        A REJECTED event carries the order's owner and side, or ``owner`` (the sender) for an
        id that is not resting.

        Complexity: O(1) in place; otherwise as ``submit``.

        >>> book = ReferenceBook(); _ = book.submit(1, Side.BUY, 100, 5)
        >>> book.modify(1, 3), book.get(1)
        (True, (0, 100, 3))
        >>> book.modify(1, 3, price=101), book.get(1)
        (True, (0, 101, 3))
        """
        oid = _uint64(order_id, "order_id")
        qty = _int64(qty, "qty")
        price = 0 if price is None else _int64(price, "price")
        owner = _uint64(owner, "owner")
        self._begin(_int64(ts_ns, "ts_ns"))
        ok, reason = self._modify(oid, qty, price, owner)
        if reason in (Reason.INVALID_QTY, Reason.INVALID_PRICE):
            self._raise_unless_ok(reason, oid)
        return ok

    # ------------------------------------------------------------------ replay mode

    def place(self, order_id, side, price, qty, *, owner=0, ts_ns=0) -> None:
        """Rest an order at the back of its level WITHOUT matching (replay mode: the exchange
        already matched); the book may become locked or crossed, as exchange data can be.

        Writes ACCEPTED. qty <= 0, price <= 0, an unknown side or the id of a resting order
        record a REJECTED event and raise ``OrderRejected``; the book is unchanged. O(log L).

        >>> book = ReferenceBook(); book.place(1, 0, 101, 5); book.place(2, 1, 100, 5)
        >>> book.best_bid(), book.best_ask()
        ((101, 5), (100, 5))
        """
        oid = _uint64(order_id, "order_id")
        side = _cint(side, "side")
        price = _int64(price, "price")
        qty = _int64(qty, "qty")
        owner = _uint64(owner, "owner")
        self._begin(_int64(ts_ns, "ts_ns"))
        reason = self._entry_fault(oid, side, price, qty)
        if reason != Reason.NONE:
            self._refuse_entry(oid, side, price, qty, owner, reason)
            self._raise_unless_ok(reason, oid)
        self._emit(EventKind.ACCEPTED, oid, side=side, price=price, qty=qty, owner=owner)
        self._rest(_Order(oid, side, price, qty, owner, False))

    def reduce(self, order_id, qty, *, execution=False, ts_ns=0) -> int:
        """Take up to ``qty`` lots off a resting order, which keeps its queue position and leaves
        at zero (replay mode); return the qty taken (clamped to the open qty), 0 if the order is
        not resting (REJECTED ORDER_NOT_FOUND, owner 0).

        ``execution=True``: an execution the exchange reported, a FILL with the order as maker
        and no aggressor (order id 0, owner 0, the opposite side); else a partial cancel,
        CANCELLED (CANCEL_REQUESTED) with the qty taken. qty <= 0 records a REJECTED event (with
        the resting order's owner and side) and raises ``OrderRejected``. O(1), plus O(log L)
        when its level empties.

        >>> book = ReferenceBook(); book.place(1, 0, 100, 5)
        >>> book.reduce(1, 2), book.reduce(1, 7, execution=True), book.get(1)
        (2, 3, None)
        """
        oid = _uint64(order_id, "order_id")
        qty = _int64(qty, "qty")
        execution = _flag(execution, "execution")
        self._begin(_int64(ts_ns, "ts_ns"))
        o = self._orders.get(oid)
        if qty <= 0:
            # about the resting order, as a refused modify is: its owner and side
            self._emit(EventKind.REJECTED, oid, side=0 if o is None else o.side, qty=qty,
                       owner=0 if o is None else o.owner, reason=Reason.INVALID_QTY)
            self._raise_unless_ok(Reason.INVALID_QTY, oid)
        if o is None:
            self._emit(EventKind.REJECTED, oid, qty=qty, reason=Reason.ORDER_NOT_FOUND)
            return 0
        take = min(qty, o.qty)
        if execution:
            self._emit(EventKind.FILL, 0, maker_id=oid, side=1 - o.side, price=o.price, qty=take,
                       maker_owner=o.owner)
        else:
            self._emit(EventKind.CANCELLED, oid, side=o.side, price=o.price, qty=take,
                       owner=o.owner, reason=Reason.CANCEL_REQUESTED)
        if take == o.qty:
            self._unrest(o)
        else:
            o.qty -= take
        return take

    # ------------------------------------------------------------------ batch

    def process(self, commands, out=None) -> np.ndarray:
        """Apply a COMMAND_DTYPE array in order; return exactly the events of this batch.

        ``out``: a writeable 1-D C-contiguous aligned EVENT_DTYPE array, not sharing memory
        with ``commands``; when the k events fit they are
        written to ``out[:k]`` and that view is returned, else ``out`` is untouched and a new
        array of all k events is returned. A bad ``out`` raises before any command is applied.

        Each command is handled as the per-call method of its ``kind`` (SUBMIT, MARKET, CANCEL,
        MODIFY with price 0 = keep). Bad commands never raise: they produce REJECTED events and
        the batch goes on; an unknown ``kind`` is REJECTED with reason INVALID_COMMAND. The events
        pending for ``events()`` are not touched.

        Complexity: the sum of the per-command costs, O(n) for the conversion.

        >>> cmds = np.zeros(2, dtype=COMMAND_DTYPE)
        >>> cmds["kind"] = CommandKind.SUBMIT; cmds["order_id"] = [1, 2]
        >>> cmds["side"] = [Side.SELL, Side.BUY]; cmds["price"] = 100; cmds["qty"] = 5
        >>> ev = ReferenceBook().process(cmds)
        >>> [EventKind(k).name for k in ev["kind"]]
        ['ACCEPTED', 'ACCEPTED', 'FILL']
        """
        refuse_masked(commands, "process()")
        commands = np.asarray(commands)
        if commands.dtype != COMMAND_DTYPE:
            raise TypeError(f"process() needs an array of matchcore.COMMAND_DTYPE, got "
                            f"{commands.dtype}")
        if commands.ndim != 1:
            raise ValueError(f"process() needs a 1-D array of commands, got shape {commands.shape}")
        if out is not None:
            # refused in the compiled book's words, each saying what was given
            if not isinstance(out, np.ndarray):
                raise TypeError(f"process(out=...) needs a numpy array of matchcore.EVENT_DTYPE, "
                                f"got {type(out).__name__}")
            if out.dtype != EVENT_DTYPE:
                raise TypeError(f"process(out=...) needs a numpy array of matchcore.EVENT_DTYPE, "
                                f"got an array of dtype {out.dtype}")
            if out.ndim != 1:
                raise ValueError(f"process(out=...) needs a 1-D C-contiguous array at an 8-byte "
                                 f"aligned address, got shape {out.shape}")
            if not out.flags.c_contiguous or out.__array_interface__["data"][0] % 8:
                raise ValueError("process(out=...) needs a 1-D C-contiguous array at an 8-byte "
                                 "aligned address, got a strided or unaligned array")
            if not out.flags.writeable:
                raise ValueError("process(out=...) needs a writeable array, got a read-only one")
            if np.may_share_memory(out, commands):
                raise ValueError("process(out=...) must not share memory with the commands")
        columns = [commands[name].tolist() for name in
                   ("ts_ns", "kind", "order_id", "side", "price", "qty", "tif", "owner",
                    "post_only")]
        out_arr = out
        out: list[tuple] = []
        self._out = out
        try:
            for ts, kind, oid, side, price, qty, tif, owner, post_only in zip(*columns):
                self._ts_ns = ts
                if kind == CommandKind.SUBMIT:
                    self._submit(oid, side, price, qty, tif, owner, post_only != 0)
                elif kind == CommandKind.MARKET:
                    self._market(oid, side, qty, owner)
                elif kind == CommandKind.CANCEL:
                    self._cancel(oid, owner)
                elif kind == CommandKind.MODIFY:
                    self._modify(oid, qty, price, owner)
                else:
                    self._emit(EventKind.REJECTED, oid, side=side, price=price, qty=qty,
                               owner=owner, reason=Reason.INVALID_COMMAND)
        finally:
            self._out = self._pending
        result = self._to_array(out)
        return result if out_arr is None or len(result) > len(out_arr) else _into(out_arr, result)

    def events(self) -> np.ndarray:
        """Return (and clear) the events of the per-call API since the previous ``events()`` call.

        An EVENT_DTYPE array, oldest first; always empty when ``record_events`` is False.
        Complexity: O(number of events).

        >>> book = ReferenceBook(); _ = book.cancel(7)
        >>> ev = book.events(); EventKind(ev["kind"][0]).name, Reason(ev["reason"][0]).name
        ('REJECTED', 'ORDER_NOT_FOUND')
        >>> len(book.events())
        0
        """
        arr = self._to_array(self._pending)
        self._pending.clear()
        return arr

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> tuple[int, int] | None:
        """(price, total open qty at that price) of the highest bid, or None. O(orders at level).

        >>> book = ReferenceBook(); _ = book.submit(1, 0, 100, 2); _ = book.submit(2, 0, 100, 3)
        >>> book.best_bid()
        (100, 5)
        """
        return self._best(_BUY)

    def best_ask(self) -> tuple[int, int] | None:
        """(price, total open qty at that price) of the lowest ask, or None. O(orders at level).

        >>> ReferenceBook().best_ask() is None
        True
        """
        return self._best(_SELL)

    def depth(self, n=10) -> tuple[np.ndarray, np.ndarray]:
        """Aggregated top ``n`` levels per side: ``(bids, asks)``, int64 arrays of shape (k, 2).

        Rows are ``[price, total open qty]``, best price first (bids descending, asks ascending),
        k <= n. ``n < 0`` raises ValueError; a level total beyond int64 raises OverflowError
        (never wrapped). Complexity: O(orders in the k levels).

        >>> book = ReferenceBook(); _ = book.submit(1, 0, 99, 2); _ = book.submit(2, 0, 100, 3)
        >>> book.depth(5)[0].tolist()
        [[100, 3], [99, 2]]
        """
        return self._depth(n, "depth", False)

    def depth_orders(self, n=10) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`depth` with a third column: the number of orders at each level.
        O(orders in the k levels).

        >>> book = ReferenceBook(); _ = book.submit(1, 0, 99, 2); _ = book.submit(2, 0, 99, 3)
        >>> book.depth_orders()[0].tolist()
        [[99, 5, 2]]
        """
        return self._depth(n, "depth_orders", True)

    def _depth(self, n, what: str, counts: bool) -> tuple[np.ndarray, np.ndarray]:
        n = _int64(n, "n")
        if n < 0:
            raise ValueError(f"{what}(n) needs n >= 0, got {n}")
        width = 3 if counts else 2
        out = []
        for side in (_BUY, _SELL):
            rows = []
            for price, level in self._levels_best_first(side):
                if len(rows) >= n:
                    break
                total = sum(o.qty for o in level.values())
                if total > _INT64_MAX:
                    raise OverflowError(f"level {price} holds {total} lots, beyond int64: use "
                                        f"best_bid()/best_ask()/level() for exact totals")
                rows.append((price, total, len(level))[:width])
            out.append(np.array(rows, dtype=np.int64).reshape(len(rows), width))
        return out[0], out[1]

    def level_count(self, side) -> int:
        """Number of price levels on a side. O(1).

        >>> book = ReferenceBook(); _ = book.submit(1, 0, 99, 2); _ = book.submit(2, 0, 100, 3)
        >>> book.level_count(Side.BUY), book.level_count(Side.SELL)
        (2, 0)
        """
        side = _cint(side, "side")
        if side not in (_BUY, _SELL):
            raise ValueError(f"side must be 0 (BUY) or 1 (SELL), got {side}")
        return len(self._sides[side])

    def get(self, order_id) -> tuple[int, int, int] | None:
        """``(side, price, open_qty)`` of a resting order as plain ints, or None. O(1).

        >>> book = ReferenceBook(); _ = book.submit(1, Side.SELL, 100, 2)
        >>> book.get(1), book.get(2)
        ((1, 100, 2), None)
        """
        o = self._orders.get(_uint64(order_id, "order_id"))
        return None if o is None else (o.side, o.price, o.qty)

    def queue_position(self, order_id) -> int:
        """Open quantity (lots) ahead of a resting order at its level; KeyError if not resting.

        Complexity: O(orders ahead of it).

        >>> book = ReferenceBook(); _ = book.submit(1, 0, 100, 2); _ = book.submit(2, 0, 100, 3)
        >>> book.queue_position(1), book.queue_position(2)
        (0, 2)
        """
        oid = _uint64(order_id, "order_id")
        o = self._orders.get(oid)
        if o is None:
            raise KeyError(oid)
        ahead = 0
        for other in self._sides[o.side][o.price].values():
            if other is o:
                return ahead
            ahead += other.qty
        raise AssertionError(f"order {oid} is indexed but missing from its level {o.price}")

    def level(self, side, price) -> list[tuple[int, int]]:
        """``[(order_id, open_qty), ...]`` of one price level in FIFO order; [] if no such level.

        Complexity: O(orders at the level).

        >>> book = ReferenceBook(); _ = book.submit(7, 0, 100, 2); _ = book.submit(3, 0, 100, 1)
        >>> book.level(Side.BUY, 100)
        [(7, 2), (3, 1)]
        """
        side = _cint(side, "side")
        if side not in (_BUY, _SELL):
            raise ValueError(f"side must be 0 (BUY) or 1 (SELL), got {side}")
        level = self._sides[side].get(_int64(price, "price"))
        return [] if level is None else [(o.oid, o.qty) for o in level.values()]

    def check_invariants(self, *, allow_crossed: bool = False) -> None:
        """Verify the whole internal state; raise AssertionError naming the first violation.

        Checks: no empty level; every level key equals its orders' price and side; every open qty
        and price is positive; the index holds exactly the orders of the levels; the book is not
        crossed (best bid < best ask), unless ``allow_crossed`` (``place`` can lock or cross a
        book, as exchange data can). Complexity: O(number of orders + levels).

        >>> ReferenceBook().check_invariants(allow_crossed=True)
        """
        allow_crossed = _flag(allow_crossed, "allow_crossed")
        seen: set[int] = set()
        for side in (_BUY, _SELL):
            for price, level in self._sides[side].items():
                if not level:
                    raise AssertionError(f"empty level left in the ladder: side {side} price {price}")
                for oid, o in level.items():
                    if oid != o.oid:
                        raise AssertionError(f"level {side}/{price} keys order {o.oid} under {oid}")
                    if o.side != side or o.price != price:
                        raise AssertionError(
                            f"order {oid} (side {o.side}, price {o.price}) sits at level "
                            f"side {side} price {price}")
                    if o.qty <= 0:
                        raise AssertionError(f"order {oid} rests with open qty {o.qty}")
                    if o.price <= 0:
                        raise AssertionError(f"order {oid} rests at non-positive price {o.price}")
                    if oid in seen:
                        raise AssertionError(f"order {oid} appears twice in the book")
                    seen.add(oid)
                    if self._orders.get(oid) is not o:
                        raise AssertionError(f"order {oid} at level {side}/{price} is not indexed")
        if len(seen) != len(self._orders):
            missing = sorted(set(self._orders) - seen)[:5]
            raise AssertionError(
                f"index holds {len(self._orders)} orders but the levels hold {len(seen)}; "
                f"indexed but not in a level: {missing}")
        bid, ask = self._best_price(_BUY), self._best_price(_SELL)
        if not allow_crossed and bid is not None and ask is not None and bid >= ask:
            raise AssertionError(f"book is crossed: best bid {bid} >= best ask {ask}")

    # ------------------------------------------------------------------ internals: operations
    # Each returns (result, reason); reason is Reason.NONE on success. Events go to self._out.

    def _entry_fault(self, oid, side, price, qty, tif=TIF.GTC) -> Reason:
        """The first check an entering order fails, in the compiled book's order (a market
        order has no price, place() no time in force), or Reason.NONE."""
        if qty <= 0:
            return Reason.INVALID_QTY
        if price is not None and price <= 0:
            return Reason.INVALID_PRICE
        if side not in (_BUY, _SELL):
            return Reason.INVALID_SIDE
        if tif not in (TIF.GTC, TIF.IOC, TIF.FOK):
            return Reason.INVALID_TIF
        if oid in self._orders:
            return Reason.DUPLICATE_ORDER_ID
        return Reason.NONE

    def _refuse_entry(self, oid, side, price, qty, owner, reason) -> None:
        self._emit(EventKind.REJECTED, oid, side=_side_byte(side), price=price, qty=qty,
                   owner=owner, reason=reason)

    def _submit(self, oid, side, price, qty, tif, owner, post_only) -> tuple[int, Reason]:
        reason = self._entry_fault(oid, side, price, qty, tif)
        if reason == Reason.NONE and post_only and self._crosses(side, price):
            reason = Reason.POST_ONLY_WOULD_CROSS
        if reason != Reason.NONE:
            self._refuse_entry(oid, side, price, qty, owner, reason)
            return 0, reason

        self._emit(EventKind.ACCEPTED, oid, side=side, price=price, qty=qty, owner=owner)
        if tif == TIF.FOK and self._fok_liquidity(side, price, owner, qty) < qty:
            self._emit(EventKind.EXPIRED, oid, side=side, price=price, qty=qty, owner=owner,
                       reason=Reason.FOK_NOT_FILLABLE)
            return 0, Reason.NONE

        remaining, stopped = self._match(oid, side, price, qty, owner)
        if remaining > 0 and not stopped:
            if tif == TIF.GTC:
                self._rest(_Order(oid, side, price, remaining, owner, post_only))
            elif tif == TIF.IOC:
                self._emit(EventKind.EXPIRED, oid, side=side, price=price, qty=remaining,
                           owner=owner, reason=Reason.IOC_REMAINDER)
            else:  # FOK passed its liquidity check, so it must have filled completely
                raise AssertionError(f"FOK order {oid} passed the check but {remaining} remain")
        return qty - remaining, Reason.NONE

    def _market(self, oid, side, qty, owner) -> tuple[int, Reason]:
        reason = self._entry_fault(oid, side, None, qty)
        if reason != Reason.NONE:
            self._refuse_entry(oid, side, 0, qty, owner, reason)
            return 0, reason
        self._emit(EventKind.ACCEPTED, oid, side=side, price=0, qty=qty, owner=owner)
        remaining, stopped = self._match(oid, side, None, qty, owner)
        if remaining > 0 and not stopped:
            self._emit(EventKind.EXPIRED, oid, side=side, price=0, qty=remaining, owner=owner,
                       reason=Reason.MARKET_REMAINDER)
        return qty - remaining, Reason.NONE

    def _cancel(self, oid, owner=0) -> int:
        # owner: the command's sender, the only owner a REJECTED event of an unknown id can have
        o = self._orders.get(oid)
        if o is None:
            self._emit(EventKind.REJECTED, oid, owner=owner, reason=Reason.ORDER_NOT_FOUND)
            return 0
        self._unrest(o)
        self._emit(EventKind.CANCELLED, oid, side=o.side, price=o.price, qty=o.qty, owner=o.owner,
                   reason=Reason.CANCEL_REQUESTED)
        return o.qty

    def _modify(self, oid, qty, price, owner=0) -> tuple[bool, Reason]:
        reason = Reason.NONE
        o = None
        if qty <= 0:
            reason = Reason.INVALID_QTY
        elif price < 0:
            reason = Reason.INVALID_PRICE
        else:
            o = self._orders.get(oid)
            if o is None:
                reason = Reason.ORDER_NOT_FOUND
        if reason != Reason.NONE:
            # a refused modify of a resting order is about that order: its owner and side
            known = self._orders.get(oid)
            side = 0 if known is None else known.side
            if known is not None:
                owner = known.owner
            self._emit(EventKind.REJECTED, oid, side=side, price=price, qty=qty, owner=owner,
                       reason=reason)
            return False, reason

        new_price = price or o.price
        if new_price == o.price and qty <= o.qty:
            o.qty = qty  # in place: keeps its queue position
            self._emit(EventKind.MODIFIED, oid, side=o.side, price=o.price, qty=qty, owner=o.owner)
            return True, Reason.NONE

        # A post-only order never takes liquidity: a re-entry that would cross is refused, at a
        # new price or at its own (a larger qty in a book that place() left crossed).
        if o.post_only and self._crosses(o.side, new_price):
            self._emit(EventKind.REJECTED, oid, side=o.side, price=new_price, qty=qty,
                       owner=o.owner, reason=Reason.POST_ONLY_WOULD_CROSS)
            return False, Reason.POST_ONLY_WOULD_CROSS

        # Cancel/replace: leaves its level, re-enters as a GTC limit order (loses priority).
        self._unrest(o)
        self._emit(EventKind.MODIFIED, oid, side=o.side, price=new_price, qty=qty, owner=o.owner)
        remaining, stopped = self._match(oid, o.side, new_price, qty, o.owner)
        if remaining > 0 and not stopped:
            self._rest(_Order(oid, o.side, new_price, remaining, o.owner, o.post_only))
        return True, Reason.NONE

    # ------------------------------------------------------------------ internals: matching

    def _match(self, oid, side, limit, qty, owner) -> tuple[int, bool]:
        """Match an aggressor against the opposite side; return (remaining qty, stopped by STP).

        ``limit`` is the limit price in ticks or None for a market order.
        """
        opp = 1 - side
        remaining = qty
        stp = self._stp
        while remaining > 0:
            best = self._best_price(opp)
            if best is None or (limit is not None and not self._price_crosses(side, limit, best)):
                break
            level = self._sides[opp][best]
            maker = next(iter(level.values()))  # the oldest order at the best price
            if owner != 0 and maker.owner == owner and stp != STP.NONE:
                if stp in (STP.CANCEL_RESTING, STP.CANCEL_BOTH):
                    self._unrest(maker)
                    self._emit(EventKind.CANCELLED, maker.oid, side=maker.side, price=maker.price,
                               qty=maker.qty, owner=owner, reason=Reason.SELF_TRADE)
                if stp in (STP.CANCEL_TAKER, STP.CANCEL_BOTH):
                    self._emit(EventKind.EXPIRED, oid, side=side,
                               price=0 if limit is None else limit, qty=remaining, owner=owner,
                               reason=Reason.SELF_TRADE)
                    return remaining, True
                continue
            fill = min(remaining, maker.qty)
            self._emit(EventKind.FILL, oid, maker_id=maker.oid, side=side, price=maker.price,
                       qty=fill, owner=owner, maker_owner=maker.owner)
            maker.qty -= fill
            remaining -= fill
            if maker.qty == 0:
                self._unrest(maker)
        return remaining, False

    def _fok_liquidity(self, side, limit, owner, needed) -> int:
        """Quantity a FOK aggressor could trade within ``limit`` given the STP mode.

        Walks the opposite side in priority order and stops as soon as ``needed`` is reached.
        """
        stp = self._stp
        apply_stp = owner != 0 and stp != STP.NONE
        total = 0
        for price, level in self._levels_best_first(1 - side):
            if not self._price_crosses(side, limit, price):
                break
            for o in level.values():
                if apply_stp and o.owner == owner:
                    if stp == STP.CANCEL_RESTING:
                        continue  # will be cancelled, not traded
                    return total  # CANCEL_TAKER / CANCEL_BOTH: matching would stop here
                total += o.qty
                if total >= needed:
                    return total
        return total

    # ------------------------------------------------------------------ internals: book structure

    @staticmethod
    def _price_crosses(side, limit, opposite_price) -> bool:
        """True if an aggressor of ``side`` limited at ``limit`` trades with ``opposite_price``."""
        return opposite_price <= limit if side == _BUY else opposite_price >= limit

    def _crosses(self, side, price) -> bool:
        """True if a limit order of ``side`` at ``price`` would cross the best opposite price."""
        best = self._best_price(1 - side)
        return best is not None and self._price_crosses(side, price, best)

    def _best_price(self, side) -> int | None:
        levels = self._sides[side]
        if not levels:
            return None
        return levels.peekitem(-1 if side == _BUY else 0)[0]

    def _best(self, side) -> tuple[int, int] | None:
        price = self._best_price(side)
        if price is None:
            return None
        return price, sum(o.qty for o in self._sides[side][price].values())

    def _levels_best_first(self, side) -> Iterator[tuple[int, OrderedDict]]:
        items = self._sides[side].items()
        return iter(reversed(items)) if side == _BUY else iter(items)

    def _rest(self, o: _Order) -> None:
        """Append an order at the back of its price level (creating the level)."""
        levels = self._sides[o.side]
        level = levels.get(o.price)
        if level is None:
            level = levels[o.price] = OrderedDict()
        level[o.oid] = o
        self._orders[o.oid] = o

    def _unrest(self, o: _Order) -> None:
        """Remove a resting order; an emptied level leaves the ladder at once."""
        levels = self._sides[o.side]
        level = levels[o.price]
        del level[o.oid]
        if not level:
            del levels[o.price]
        del self._orders[o.oid]

    # ------------------------------------------------------------------ internals: events

    def _begin(self, ts_ns: int) -> None:
        """Start a per-call operation: events go to the pending buffer (or nowhere)."""
        self._ts_ns = ts_ns
        self._out = self._pending if self._record_events else []

    def _emit(self, kind, order_id, *, maker_id=0, side=0, price=0, qty=0, owner=0,
              maker_owner=0, reason=Reason.NONE) -> None:
        self._out.append((self._ts_ns, order_id, maker_id, price, qty, owner, maker_owner,
                          int(kind), side, int(reason)))

    @staticmethod
    def _to_array(rows: list[tuple]) -> np.ndarray:
        arr = np.zeros(len(rows), dtype=EVENT_DTYPE)
        if rows:
            for name, column in zip(_EVENT_FIELDS, zip(*rows)):
                arr[name] = column
        return arr

    @staticmethod
    def _raise_unless_ok(reason: Reason, oid: int, *allowed: Reason) -> None:
        if reason != Reason.NONE and reason not in allowed:
            raise OrderRejected(reason, oid, f"order {oid} rejected: {Reason(reason).name}")
