"""Compiled workload generators: a small price-time book model that knows every fill.

The generators must only cancel or reprice orders that are resting when the command arrives, so
they track the book themselves: a dense price window per side, FIFO queues as intrusive links over
order slots (slot = order id - first id; ids are issued in sequence), and the same matching rule
as the engine (price-time priority, fills at the maker's price, GTC remainders rest, IOC and
market remainders expire, a reprice or a larger qty re-enters at the back and may match). Every
order here has owner 0, so self-trade prevention never applies.

All randomness comes from arrays of uniforms drawn by NumPy's seeded generator before the kernel
runs; the kernels themselves are deterministic. They compile with Numba (``cache=True``) when it is
installed and run unchanged as plain Python otherwise (same output, slower). This module imports
Numba, so it is imported only when a workload is generated, never by ``import matchcore``.
"""
from __future__ import annotations

import numpy as np

try:  # pragma: no cover - exercised whichever way the environment is
    from numba import njit as _njit

    HAVE_NUMBA = True

    def jit(fn):
        return _njit(cache=True, nogil=True)(fn)
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

    def jit(fn):
        return fn

# Command kinds and TIFs (mirrors matchcore.CommandKind / matchcore.TIF).
SUBMIT, MARKET, CANCEL, MODIFY = 0, 1, 2, 3
GTC, IOC = 0, 1

# Indices into the stats array every kernel fills in.
ST_ORDERS, ST_FILLED, ST_CANCELLED, ST_EXPIRED, ST_FILLS, ST_RESTING, ST_REPLACED = range(7)
N_STATS = 7


class Model:
    """The model's arrays (passed to the kernels one by one: Numba takes arrays, not objects)."""

    def __init__(self, n_orders: int, window: int):
        self.qty = np.zeros(n_orders, np.int64)       # open qty, 0 = not resting
        self.side = np.zeros(n_orders, np.int64)
        self.lvl = np.zeros(n_orders, np.int64)       # price index in the window
        self.prev = np.full(n_orders, -1, np.int64)
        self.next = np.full(n_orders, -1, np.int64)
        self.pos = np.full(n_orders, -1, np.int64)    # place in the pick set, -1 = not pickable
        self.pick = np.zeros(n_orders, np.int64)      # slots that cancels/reprices may name
        self.head = np.full((2, window), -1, np.int64)
        self.tail = np.full((2, window), -1, np.int64)
        self.best = np.full(2, -1, np.int64)          # best level index per side, -1 = empty
        self.npick = np.zeros(1, np.int64)
        self.stats = np.zeros(N_STATS, np.int64)

    def reserve(self, n_orders: int) -> None:
        """Room for at least ``n_orders`` order slots (grows geometrically, keeps contents)."""
        have = self.qty.shape[0]
        if n_orders <= have:
            return
        cap = max(n_orders, have * 3 // 2)
        for name, fill in (("qty", 0), ("side", 0), ("lvl", 0), ("prev", -1), ("next", -1),
                           ("pos", -1), ("pick", 0)):
            old = getattr(self, name)
            new = np.full(cap, fill, np.int64)
            new[:have] = old
            setattr(self, name, new)

    def arrays(self):
        # the order every kernel takes them in
        return (self.qty, self.side, self.lvl, self.prev, self.next, self.pos, self.pick,
                self.npick, self.head, self.tail, self.best, self.stats)


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
def _link(slot, s, p, q, qty, side, lvl, prev, nxt, head, tail, best):
    qty[slot] = q
    side[slot] = s
    lvl[slot] = p
    nxt[slot] = -1
    t = tail[s, p]
    prev[slot] = t
    if t >= 0:
        nxt[t] = slot
    else:
        head[s, p] = slot
    tail[s, p] = slot
    b = best[s]
    if b < 0 or (s == 0 and p > b) or (s == 1 and p < b):
        best[s] = p


@jit
def _unlink(slot, qty, side, lvl, prev, nxt, head, tail, best):
    s = side[slot]
    p = lvl[slot]
    a = prev[slot]
    c = nxt[slot]
    if a >= 0:
        nxt[a] = c
    else:
        head[s, p] = c
    if c >= 0:
        prev[c] = a
    else:
        tail[s, p] = a
    qty[slot] = 0
    if head[s, p] < 0 and best[s] == p:
        w = head.shape[1]
        if s == 0:
            k = p - 1
            while k >= 0 and head[0, k] < 0:
                k -= 1
            best[0] = k
        else:
            k = p + 1
            while k < w and head[1, k] < 0:
                k += 1
            best[1] = k if k < w else -1


@jit
def _match(s, p, market, q, qty, side, lvl, prev, nxt, pos, pick, npick, head, tail, best, stats):
    """Aggressor of side s, limit index p (ignored if market), qty q: returns the remainder."""
    o = 1 - s
    while q > 0:
        b = best[o]
        if b < 0:
            break
        if not market and ((s == 0 and b > p) or (s == 1 and b < p)):
            break
        m = head[o, b]
        f = q if q < qty[m] else qty[m]
        qty[m] -= f
        q -= f
        stats[ST_FILLS] += 1
        if qty[m] == 0:
            _unlink(m, qty, side, lvl, prev, nxt, head, tail, best)
            _pick_remove(m, pos, pick, npick)
            stats[ST_FILLED] += 1
    return q


@jit
def _submit(slot, s, p, q, tif, pickable, qty, side, lvl, prev, nxt, pos, pick, npick, head, tail,
            best, stats):
    """A limit order through the model; returns the qty left resting (0 if none)."""
    stats[ST_ORDERS] += 1
    r = _match(s, p, False, q, qty, side, lvl, prev, nxt, pos, pick, npick, head, tail, best, stats)
    if r > 0:
        if tif == GTC:
            _link(slot, s, p, r, qty, side, lvl, prev, nxt, head, tail, best)
            if pickable:
                _pick_add(slot, pos, pick, npick)
            return r
        stats[ST_EXPIRED] += 1
    elif r == 0 and q > 0:
        stats[ST_FILLED] += 1
    return 0


@jit
def _modify(slot, q, p, qty, side, lvl, prev, nxt, pos, pick, npick, head, tail, best, stats):
    """The engine's modify: same price and no larger qty keeps its place, else re-enter."""
    if p == lvl[slot] and q <= qty[slot]:
        qty[slot] = q
        return
    s = side[slot]
    _unlink(slot, qty, side, lvl, prev, nxt, head, tail, best)
    r = _match(s, p, False, q, qty, side, lvl, prev, nxt, pos, pick, npick, head, tail, best, stats)
    if r > 0:
        _link(slot, s, p, r, qty, side, lvl, prev, nxt, head, tail, best)
    else:
        _pick_remove(slot, pos, pick, npick)
        stats[ST_FILLED] += 1


@jit
def _put(i, k, oid, s, price, q, tif, ok, oo, osd, op, oq, ot):
    ok[i] = k
    oo[i] = oid
    osd[i] = s
    op[i] = price
    oq[i] = q
    ot[i] = tif


@jit
def resting_setup(resting, background, levels, first_id, base, mid, us, state,
                  qty, side, lvl, prev, nxt, pos, pick, npick, head, tail, best, stats,
                  ok, oo, osd, op, oq, ot):
    """Background orders (100 a level, beyond the active levels, never picked) then ``resting``
    active orders alternating sides at uniform distances 1..levels/2 from the mid."""
    half = max(levels // 2, 1)
    row = state[1]
    slot = state[0]
    for k in range(background):
        s = k & 1
        d = half + 10 + (k // 2) // 100
        p = mid - d if s == 0 else mid + d
        _submit(slot, s, p, 100, GTC, False, qty, side, lvl, prev, nxt, pos, pick, npick,
                head, tail, best, stats)
        _put(row, SUBMIT, first_id + slot, s, base + p, 100, GTC, ok, oo, osd, op, oq, ot)
        row += 1
        slot += 1
    for k in range(resting):
        s = k & 1
        q = 1 + int(us[2 * k] * 199)
        d = 1 + int(us[2 * k + 1] * half)
        p = mid - d if s == 0 else mid + d
        _submit(slot, s, p, q, GTC, True, qty, side, lvl, prev, nxt, pos, pick, npick,
                head, tail, best, stats)
        _put(row, SUBMIT, first_id + slot, s, base + p, q, GTC, ok, oo, osd, op, oq, ot)
        row += 1
        slot += 1
    state[0] = slot
    state[1] = row


@jit
def standard_flow(count, resting, levels, first_id, base, mid, uf, state,
                  qty, side, lvl, prev, nxt, pos, pick, npick, head, tail, best, stats,
                  ok, oo, osd, op, oq, ot):
    """``count`` commands of the standard mix (9% GTC, 3% IOC, 6% cancel, 82% reprice)."""
    half = max(levels // 2, 1)
    row = state[1]
    slot = state[0]
    for i in range(count):
        r = uf[4 * i]
        u1 = uf[4 * i + 1]
        u2 = uf[4 * i + 2]
        u3 = uf[4 * i + 3]
        if r < 0.09 or npick[0] < 2:
            # new passive GTC order: bids below the mid, asks above, so it never crosses
            s = int(u1 * 2)
            q = 1 + int(u2 * 199)
            d = 1 + int(u3 * half)
            p = mid - d if s == 0 else mid + d
            _submit(slot, s, p, q, GTC, True, qty, side, lvl, prev, nxt, pos, pick, npick,
                    head, tail, best, stats)
            _put(row, SUBMIT, first_id + slot, s, base + p, q, GTC, ok, oo, osd, op, oq, ot)
            slot += 1
        elif r < 0.12:
            # marketable IOC at the opposite touch, sized so that adds (9%) minus cancels (6%)
            # stay balanced by what the IOCs take: larger when the book has grown
            s = int(u1 * 2)
            o = 1 - s
            if best[o] >= 0:
                p = best[o]
            else:
                p = mid + 1 + int(u2 * half) if s == 0 else mid - 1 - int(u2 * half)
            pressure = npick[0] / max(resting, 1)
            pressure = min(max(pressure, 0.5), 4.0)
            q = 1 + int(u3 * (int(260 * pressure) + 1))
            _submit(slot, s, p, q, IOC, False, qty, side, lvl, prev, nxt, pos, pick, npick,
                    head, tail, best, stats)
            _put(row, SUBMIT, first_id + slot, s, base + p, q, IOC, ok, oo, osd, op, oq, ot)
            slot += 1
        elif r < 0.18:
            t = pick[int(u1 * npick[0])]
            _put(row, CANCEL, first_id + t, side[t], base + lvl[t], 0, 0, ok, oo, osd, op, oq, ot)
            _unlink(t, qty, side, lvl, prev, nxt, head, tail, best)
            _pick_remove(t, pos, pick, npick)
            stats[ST_CANCELLED] += 1
        else:
            t = pick[int(u1 * npick[0])]
            s = side[t]
            d = 1 + int(u2 * half)
            p = mid - d if s == 0 else mid + d
            q = 1 + int(u3 * 199)
            _put(row, MODIFY, first_id + t, s, base + p, q, 0, ok, oo, osd, op, oq, ot)
            _modify(t, q, p, qty, side, lvl, prev, nxt, pos, pick, npick, head, tail, best, stats)
            stats[ST_REPLACED] += 1
        row += 1
    state[0] = slot
    state[1] = row


@jit
def market_maker_flow(n_rows, makers, quotes, spread, take_prob, move_prob, first_id, base, u,
                      state, slots, qty, side, lvl, prev, nxt, pos, pick, npick, head, tail, best,
                      stats, ok, oo, osd, op, oq, ot):
    """Makers keep ``quotes`` levels a side around a drifting mid and replace them constantly
    (cancel + new order); takers send IOCs at the touch now and then. ``slots[m, j]`` is the order
    slot of maker m's quote j (-1 when it has none: filled or not placed yet). Writes until row
    ``n_rows`` or the uniforms run out; returns how many uniforms quadruples it used."""
    window = head.shape[1]
    slot = state[0]
    row = state[1]
    mid = state[2]
    lo = 64 + quotes + spread + 3
    hi = window - 64 - quotes - spread - 3
    i = 0
    m4 = u.shape[0] // 4
    while row < n_rows and i < m4:
        r = u[4 * i]
        u1 = u[4 * i + 1]
        u2 = u[4 * i + 2]
        u3 = u[4 * i + 3]
        i += 1
        if r < move_prob:
            # the fair price moves one tick; a step outside the window reflects
            if u1 < 0.5:
                mid = mid - 1 if mid - 1 >= lo else mid + 1
            else:
                mid = mid + 1 if mid + 1 <= hi else mid - 1
            continue
        if r < move_prob + take_prob:
            s = int(u1 * 2)
            o = 1 - s
            if best[o] < 0:
                continue
            p = best[o] + (int(u2 * 3) if s == 0 else -int(u2 * 3))
            q = 1 + int(u3 * 150)
            _submit(slot, s, p, q, IOC, False, qty, side, lvl, prev, nxt, pos, pick, npick,
                    head, tail, best, stats)
            _put(row, SUBMIT, first_id + slot, s, base + p, q, IOC, ok, oo, osd, op, oq, ot)
            slot += 1
            row += 1
            continue
        m = int(u1 * makers)
        j = int(u2 * 2 * quotes)
        s = j & 1
        d = spread + (j >> 1) + (m % 3)
        p = mid - d if s == 0 else mid + d
        t = slots[m, j]
        if t >= 0 and qty[t] > 0:
            _put(row, CANCEL, first_id + t, s, base + lvl[t], 0, 0, ok, oo, osd, op, oq, ot)
            _unlink(t, qty, side, lvl, prev, nxt, head, tail, best)
            stats[ST_CANCELLED] += 1
            stats[ST_REPLACED] += 1
            row += 1
            slots[m, j] = -1
            if row >= n_rows:
                break
        q = 1 + int(u3 * 99)
        left = _submit(slot, s, p, q, GTC, False, qty, side, lvl, prev, nxt, pos, pick, npick,
                       head, tail, best, stats)
        _put(row, SUBMIT, first_id + slot, s, base + p, q, GTC, ok, oo, osd, op, oq, ot)
        slots[m, j] = slot if left > 0 else -1
        slot += 1
        row += 1
    state[0] = slot
    state[1] = row
    state[2] = mid
    return i


@jit
def sweep_flow(count, resting, levels, sweep_prob, sweep_levels, cancel_prob, first_id, base, mid, uf, state,
               qty, side, lvl, prev, nxt, pos, pick, npick, head, tail, best, stats,
               ok, oo, osd, op, oq, ot):
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
        if r < sweep_prob:
            # sized to take about k average levels, more when the book has grown, so that the
            # book stays near ``resting`` orders
            s = int(u1 * 2)
            o = 1 - s
            k = max(int(sweep_levels * (0.5 + u2)), 1)
            pressure = min(max(npick[0] / max(resting, 1), 0.25), 8.0)
            q = max(int(k * per_level * 100 * pressure), 1)
            if u3 < 0.5:
                ref = best[o] if best[o] >= 0 else mid
                p = ref + 2 * k if s == 0 else ref - 2 * k
                _submit(slot, s, p, q, IOC, False, qty, side, lvl, prev, nxt, pos, pick, npick,
                        head, tail, best, stats)
                _put(row, SUBMIT, first_id + slot, s, base + p, q, IOC, ok, oo, osd, op, oq, ot)
            else:
                stats[ST_ORDERS] += 1
                left = _match(s, 0, True, q, qty, side, lvl, prev, nxt, pos, pick, npick,
                              head, tail, best, stats)
                if left > 0:
                    stats[ST_EXPIRED] += 1
                else:
                    stats[ST_FILLED] += 1
                _put(row, MARKET, first_id + slot, s, 0, q, 0, ok, oo, osd, op, oq, ot)
            slot += 1
        elif r < sweep_prob + cancel_prob * min(max(npick[0] / max(resting, 1), 0.25), 8.0) \
                and npick[0] >= 2:
            # cancels scale with the book's size so that it stays near ``resting`` orders
            t = pick[int(u1 * npick[0])]
            _put(row, CANCEL, first_id + t, side[t], base + lvl[t], 0, 0, ok, oo, osd, op, oq, ot)
            _unlink(t, qty, side, lvl, prev, nxt, head, tail, best)
            _pick_remove(t, pos, pick, npick)
            stats[ST_CANCELLED] += 1
        else:
            # refills land closer to the mid more often (distance ~ half * u^2), so the levels
            # a sweep ate fill up again
            s = int(u1 * 2)
            q = 1 + int(u2 * 199)
            d = 1 + int(u3 * u3 * half)
            p = mid - d if s == 0 else mid + d
            _submit(slot, s, p, q, GTC, True, qty, side, lvl, prev, nxt, pos, pick, npick,
                    head, tail, best, stats)
            _put(row, SUBMIT, first_id + slot, s, base + p, q, GTC, ok, oo, osd, op, oq, ot)
            slot += 1
        row += 1
    state[0] = slot
    state[1] = row


@jit
def count_resting(qty, n):
    c = 0
    for k in range(n):
        if qty[k] > 0:
            c += 1
    return c
