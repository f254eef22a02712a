"""Workload generator kernels: each command is applied to a real :class:`matchcore.OrderBook` as it
is generated, so every decision (which order to cancel or reprice, where the touch is) sees the
book the engine itself would have at that point.

The kernels call the book through six small functions (``_submit``, ``_market``, ``_cancel``,
``_modify``, ``_get``, ``_best``, plus ``_count`` and ``_fills``) that take the book's handle
(``OrderBook.address``). With Numba installed they are compiled (``cache=True``) calls through
:mod:`matchcore.numba_ext`; without it the same kernel bodies run as plain Python and the functions
forward to the OrderBook methods (the handle is looked up in ``_BOOKS``, filled by :func:`attach`).
Both paths run the same C matching code on the same inputs, so they write the same commands.

Orders that cancels and reprices may name sit in a pick set (``pick`` holds slots, ``pos`` each
slot's place in it; slot = order id - first id, ids are issued in sequence). Orders that trade
away are not removed eagerly: a pick checks the book and drops stale slots until it finds a
resting one. Every order has owner 0, so self-trade prevention never applies.

All randomness comes from arrays of uniforms drawn by NumPy's seeded generator before a kernel
runs; the kernels themselves are deterministic. This module imports Numba when it is installed,
so it is imported only when a workload is generated, never by ``import matchcore``.
"""
from __future__ import annotations

import numpy as np

from matchcore._core import EVENT_DTYPE

try:  # pragma: no cover - exercised whichever way the environment is
    import numba as _numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

# Command kinds and TIFs (mirrors matchcore.CommandKind / matchcore.TIF); FILL event kind.
SUBMIT, MARKET, CANCEL, MODIFY = 0, 1, 2, 3
GTC, IOC = 0, 1
EV_FILL = 1

# Indices into the stats array every kernel adds to.
ST_ORDERS, ST_CANCELLED, ST_EXPIRED, ST_FILLS, ST_REPLACED = range(5)
N_STATS = 5

# Events drained per call in compiled mode (a sweep's fills take a few rounds).
EVENT_CHUNK = 256

_BOOKS: dict = {}   # handle -> OrderBook, for the plain-Python path only

if HAVE_NUMBA:
    from matchcore import numba_ext as mcn

    def jit(fn):
        return _numba.njit(cache=True, nogil=True)(fn)

    @jit
    def _submit(book, oid, side, price, qty, tif):
        return mcn.submit(book, oid, side, price, qty, tif, 0, 0)

    @jit
    def _market(book, oid, side, qty):
        return mcn.market(book, oid, side, qty, 0)

    @jit
    def _cancel(book, oid):
        return mcn.cancel(book, oid)

    @jit
    def _modify(book, oid, qty, price):
        return mcn.modify(book, oid, qty, price)

    @jit
    def _get(book, oid):
        return mcn.get(book, oid)

    @jit
    def _best(book, side):
        return mcn.best(book, side)

    @jit
    def _count(book):
        return mcn.count(book)

    @jit
    def _fills(book, ev):
        """FILL events pending since the last call; drains them all (the buffer stays small)."""
        n = 0
        while True:
            k = mcn.drain_events(book, ev)
            for j in range(k):
                if ev[j].kind == EV_FILL:
                    n += 1
            if k < ev.shape[0]:
                return n

else:
    def jit(fn):
        return fn

    def _submit(book, oid, side, price, qty, tif):
        return _BOOKS[book].submit(oid, side, price, qty, tif)

    def _market(book, oid, side, qty):
        return _BOOKS[book].submit_market(oid, side, qty)

    def _cancel(book, oid):
        return _BOOKS[book].cancel(oid)

    def _modify(book, oid, qty, price):
        return _BOOKS[book].modify(oid, qty, price)

    def _get(book, oid):
        r = _BOOKS[book].get(oid)
        return (0, 0, 0, 0) if r is None else (1, r[0], r[1], r[2])

    def _best(book, side):
        b = _BOOKS[book]
        r = b.best_bid() if side == 0 else b.best_ask()
        return (0, 0, 0) if r is None else (1, r[0], r[1])

    def _count(book):
        return len(_BOOKS[book])

    def _fills(book, ev):
        return int(np.count_nonzero(_BOOKS[book].events()["kind"] == EV_FILL))


def attach(book) -> int:
    """The handle the kernels take for ``book`` (keep ``book`` alive until :func:`detach`)."""
    h = int(book.address)
    if not HAVE_NUMBA:
        _BOOKS[h] = book
    book.events()   # start from an empty event buffer
    return h


def detach(handle: int) -> None:
    _BOOKS.pop(handle, None)


def event_buffer() -> np.ndarray:
    return np.zeros(EVENT_CHUNK, dtype=EVENT_DTYPE)


class Picks:
    """The pick set's arrays (passed to the kernels one by one: Numba takes arrays, not objects)."""

    def __init__(self, n_orders: int):
        self.pos = np.full(n_orders, -1, np.int64)   # place in ``pick``, -1 = not in the set
        self.pick = np.zeros(n_orders, np.int64)
        self.npick = np.zeros(1, np.int64)

    def reserve(self, n_orders: int) -> None:
        """Room for at least ``n_orders`` order slots (grows geometrically, keeps contents)."""
        have = self.pos.shape[0]
        if n_orders <= have:
            return
        cap = max(n_orders, have * 3 // 2)
        pos = np.full(cap, -1, np.int64)
        pos[:have] = self.pos
        pick = np.zeros(cap, np.int64)
        pick[:have] = self.pick
        self.pos, self.pick = pos, pick

    def arrays(self):
        return self.pos, self.pick, self.npick


def out_views(cmds):
    """The COMMAND_DTYPE columns the kernels write, as strided views (no copy)."""
    return (cmds["kind"], cmds["order_id"], cmds["side"], cmds["price"], cmds["qty"], cmds["tif"])


@jit
def _pick_add(slot, pos, pick, npick):
    pos[slot] = npick[0]
    pick[npick[0]] = slot
    npick[0] += 1


@jit
def _pick_remove(slot, pos, pick, npick):
    i = pos[slot]
    if i < 0:
        return
    last = pick[npick[0] - 1]
    pick[i] = last
    pos[last] = i
    pos[slot] = -1
    npick[0] -= 1


@jit
def _pick_live(book, u, first_id, pos, pick, npick):
    """The slot of a resting order chosen by uniform ``u`` from the pick set, dropping the slots
    of orders that traded away on the way; -1 when none is left."""
    while npick[0] > 0:
        t = pick[int(u * npick[0])]
        if _get(book, first_id + t)[0]:
            return t
        _pick_remove(t, pos, pick, npick)
    return -1


@jit
def _enter(book, ev, oid, s, p, q, tif, stats):
    """A limit order into the book; returns the qty left resting (0 if none)."""
    stats[ST_ORDERS] += 1
    done = _submit(book, oid, s, p, q, tif)
    stats[ST_FILLS] += _fills(book, ev)
    if done < q:
        if tif == GTC:
            return q - done
        stats[ST_EXPIRED] += 1
    return 0


@jit
def _put(i, k, oid, s, price, q, tif, ok, oo, osd, op, oq, ot):
    ok[i] = k
    oo[i] = oid
    osd[i] = s
    op[i] = price
    oq[i] = q
    ot[i] = tif


@jit
def _cancel_slot(book, ev, row, oid, stats, ok, oo, osd, op, oq, ot):
    """Cancel the resting order ``oid`` and write the command (with its side and price)."""
    r = _get(book, oid)
    _put(row, CANCEL, oid, r[1], r[2], 0, 0, ok, oo, osd, op, oq, ot)
    _cancel(book, oid)
    stats[ST_FILLS] += _fills(book, ev)
    stats[ST_CANCELLED] += 1


@jit
def resting_setup(book, ev, resting, background, levels, first_id, mid, us, state,
                  pos, pick, npick, stats, ok, oo, osd, op, oq, ot):
    """Background orders (100 a level, beyond the active levels, never picked) then ``resting``
    active orders alternating sides at uniform distances 1..levels/2 from the mid."""
    half = max(levels // 2, 1)
    row = state[1]
    slot = state[0]
    for k in range(background):
        s = k & 1
        d = half + 10 + (k // 2) // 100
        p = mid - d if s == 0 else mid + d
        _enter(book, ev, first_id + slot, s, p, 100, GTC, stats)
        _put(row, SUBMIT, first_id + slot, s, p, 100, GTC, ok, oo, osd, op, oq, ot)
        row += 1
        slot += 1
    for k in range(resting):
        s = k & 1
        q = 1 + int(us[2 * k] * 199)
        d = 1 + int(us[2 * k + 1] * half)
        p = mid - d if s == 0 else mid + d
        if _enter(book, ev, first_id + slot, s, p, q, GTC, stats) > 0:
            _pick_add(slot, pos, pick, npick)
        _put(row, SUBMIT, first_id + slot, s, p, q, GTC, ok, oo, osd, op, oq, ot)
        row += 1
        slot += 1
    state[0] = slot
    state[1] = row


@jit
def standard_flow(book, ev, count, resting, background, levels, first_id, mid, uf, state,
                  pos, pick, npick, stats, ok, oo, osd, op, oq, ot):
    """``count`` commands of the standard mix (9% GTC, 3% IOC, 6% cancel, 82% reprice)."""
    half = max(levels // 2, 1)
    row = state[1]
    slot = state[0]
    for i in range(count):
        r = uf[4 * i]
        u1 = uf[4 * i + 1]
        u2 = uf[4 * i + 2]
        u3 = uf[4 * i + 3]
        t = -1
        if r >= 0.12 and npick[0] >= 2:
            t = _pick_live(book, u1, first_id, pos, pick, npick)
        if r < 0.09 or (r >= 0.12 and t < 0):
            # new passive GTC order: bids below the mid, asks above, so it never crosses
            s = int(u1 * 2)
            q = 1 + int(u2 * 199)
            d = 1 + int(u3 * half)
            p = mid - d if s == 0 else mid + d
            if _enter(book, ev, first_id + slot, s, p, q, GTC, stats) > 0:
                _pick_add(slot, pos, pick, npick)
            _put(row, SUBMIT, first_id + slot, s, p, q, GTC, ok, oo, osd, op, oq, ot)
            slot += 1
        elif r < 0.12:
            # marketable IOC at the opposite touch, sized so that adds (9%) minus cancels (6%)
            # stay balanced by what the IOCs take: larger when the book has grown
            s = int(u1 * 2)
            b = _best(book, 1 - s)
            if b[0]:
                p = b[1]
            else:
                p = mid + 1 + int(u2 * half) if s == 0 else mid - 1 - int(u2 * half)
            pressure = (_count(book) - background) / max(resting, 1)
            pressure = min(max(pressure, 0.5), 4.0)
            q = 1 + int(u3 * (int(260 * pressure) + 1))
            _enter(book, ev, first_id + slot, s, p, q, IOC, stats)
            _put(row, SUBMIT, first_id + slot, s, p, q, IOC, ok, oo, osd, op, oq, ot)
            slot += 1
        elif r < 0.18:
            _cancel_slot(book, ev, row, first_id + t, stats, ok, oo, osd, op, oq, ot)
            _pick_remove(t, pos, pick, npick)
        else:
            s = _get(book, first_id + t)[1]
            d = 1 + int(u2 * half)
            p = mid - d if s == 0 else mid + d
            q = 1 + int(u3 * 199)
            _put(row, MODIFY, first_id + t, s, p, q, 0, ok, oo, osd, op, oq, ot)
            _modify(book, first_id + t, q, p)
            stats[ST_FILLS] += _fills(book, ev)
            stats[ST_REPLACED] += 1
        row += 1
    state[0] = slot
    state[1] = row


@jit
def market_maker_flow(book, ev, n_rows, makers, quotes, spread, take_prob, move_prob, first_id,
                      lo, hi, u, state, slots, stats, ok, oo, osd, op, oq, ot):
    """Makers keep ``quotes`` levels a side around a drifting mid (kept in [lo, hi]) and replace
    them constantly (cancel + new order); takers send IOCs at the touch now and then.
    ``slots[m, j]`` is the order slot of maker m's quote j (-1 when it has none: filled or not
    placed yet). Writes until row ``n_rows`` or the uniforms run out; returns how many uniform
    quadruples it used."""
    slot = state[0]
    row = state[1]
    mid = state[2]
    i = 0
    m4 = u.shape[0] // 4
    while row < n_rows and i < m4:
        r = u[4 * i]
        u1 = u[4 * i + 1]
        u2 = u[4 * i + 2]
        u3 = u[4 * i + 3]
        i += 1
        if r < move_prob:
            # the fair price moves one tick; a step outside [lo, hi] reflects
            if u1 < 0.5:
                mid = mid - 1 if mid - 1 >= lo else mid + 1
            else:
                mid = mid + 1 if mid + 1 <= hi else mid - 1
            continue
        if r < move_prob + take_prob:
            s = int(u1 * 2)
            b = _best(book, 1 - s)
            if not b[0]:
                continue
            p = b[1] + (int(u2 * 3) if s == 0 else -int(u2 * 3))
            q = 1 + int(u3 * 150)
            _enter(book, ev, first_id + slot, s, p, q, IOC, stats)
            _put(row, SUBMIT, first_id + slot, s, p, q, IOC, ok, oo, osd, op, oq, ot)
            slot += 1
            row += 1
            continue
        m = int(u1 * makers)
        j = int(u2 * 2 * quotes)
        s = j & 1
        d = spread + (j >> 1) + (m % 3)
        p = mid - d if s == 0 else mid + d
        t = slots[m, j]
        if t >= 0 and _get(book, first_id + t)[0]:
            _cancel_slot(book, ev, row, first_id + t, stats, ok, oo, osd, op, oq, ot)
            stats[ST_REPLACED] += 1
            row += 1
            slots[m, j] = -1
            if row >= n_rows:
                break
        q = 1 + int(u3 * 99)
        left = _enter(book, ev, first_id + slot, s, p, q, GTC, stats)
        _put(row, SUBMIT, first_id + slot, s, p, q, GTC, ok, oo, osd, op, oq, ot)
        slots[m, j] = slot if left > 0 else -1
        slot += 1
        row += 1
    state[0] = slot
    state[1] = row
    state[2] = mid
    return i


@jit
def sweep_flow(book, ev, count, resting, levels, sweep_prob, sweep_levels, cancel_prob, first_id,
               mid, uf, state, pos, pick, npick, stats, ok, oo, osd, op, oq, ot):
    """Passive refills over ``levels`` levels, cancels (``cancel_prob`` at the target book size,
    more when the book is larger), and with probability ``sweep_prob`` a
    large marketable order that eats many levels at once, sized to take about ``sweep_levels``
    (x0.5..1.5) levels of the starting book: half IOCs with a limit twice that many ticks
    through the touch, half market orders."""
    half = max(levels // 2, 1)
    per_level = max(resting / (2.0 * half), 1.0)
    row = state[1]
    slot = state[0]
    for i in range(count):
        r = uf[4 * i]
        u1 = uf[4 * i + 1]
        u2 = uf[4 * i + 2]
        u3 = uf[4 * i + 3]
        # grows with the book, so that sweeps and cancels keep it near ``resting`` orders
        pressure = min(max(_count(book) / max(resting, 1), 0.25), 8.0)
        if r < sweep_prob:
            s = int(u1 * 2)
            k = max(int(sweep_levels * (0.5 + u2)), 1)
            q = max(int(k * per_level * 100 * pressure), 1)
            if u3 < 0.5:
                b = _best(book, 1 - s)
                ref = b[1] if b[0] else mid
                p = ref + 2 * k if s == 0 else ref - 2 * k
                _enter(book, ev, first_id + slot, s, p, q, IOC, stats)
                _put(row, SUBMIT, first_id + slot, s, p, q, IOC, ok, oo, osd, op, oq, ot)
            else:
                stats[ST_ORDERS] += 1
                if _market(book, first_id + slot, s, q) < q:
                    stats[ST_EXPIRED] += 1
                stats[ST_FILLS] += _fills(book, ev)
                _put(row, MARKET, first_id + slot, s, 0, q, 0, ok, oo, osd, op, oq, ot)
            slot += 1
            row += 1
            continue
        t = -1
        if r < sweep_prob + cancel_prob * pressure and npick[0] >= 2:
            t = _pick_live(book, u1, first_id, pos, pick, npick)
        if t >= 0:
            _cancel_slot(book, ev, row, first_id + t, stats, ok, oo, osd, op, oq, ot)
            _pick_remove(t, pos, pick, npick)
        else:
            # refills land closer to the mid more often (distance ~ half * u^2), so the levels
            # a sweep ate fill up again
            s = int(u1 * 2)
            q = 1 + int(u2 * 199)
            d = 1 + int(u3 * u3 * half)
            p = mid - d if s == 0 else mid + d
            if _enter(book, ev, first_id + slot, s, p, q, GTC, stats) > 0:
                _pick_add(slot, pos, pick, npick)
            _put(row, SUBMIT, first_id + slot, s, p, q, GTC, ok, oo, osd, op, oq, ot)
            slot += 1
        row += 1
    state[0] = slot
    state[1] = row
