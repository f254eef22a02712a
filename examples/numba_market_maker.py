"""A market maker written in Numba, quoting against a seeded random order flow.

The whole session (random flow, the agent's fill accounting, its requotes) runs inside one
``@njit(cache=True)`` function that takes the matchcore book itself (a Numba type that unboxes to
the book's checked handle; the book is held for the whole call): no Python per order. The same
strategy is in ``c_market_maker.c`` (C, through matchcore.h) and ``python_agent.py`` (the Python
methods); with the same seed all three end in the same state.

Run:  python examples/numba_market_maker.py [--steps N] [--seed S]
"""
from __future__ import annotations

import argparse
import time

import numba
import numpy as np

import matchcore as mc
from matchcore import numba_ext as mcn
# the arguments read as the Python version reads them (this file's directory is on the path
# when it runs as a script, as python_agent.py beside it)
from python_agent import rate, seed_arg, steps_arg

AGENT = 7            # the market maker's owner id
FLOW = 1             # owner id of the random flow
AGENT_ID0 = 1 << 40  # agent order ids start here; flow ids start at 1
STAT_NAMES = ("flow_orders", "agent_orders", "fills", "fill_qty", "position", "cash",
              "mid2", "book_calls")

_U1 = np.uint64(1)


@numba.njit(cache=True)
def _rng(state):
    # splitmix64 -> 63 non-negative bits (same generator in the C and Python versions)
    state[0] += np.uint64(0x9E3779B97F4A7C15)
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.int64(z >> _U1)


@numba.njit(cache=True)
def run_session(book, n_steps, seed, half_spread, quote_qty, max_pos, evbuf, stats):
    """Run the session on ``book`` (an OrderBook); fills ``stats`` (see STAT_NAMES)."""
    state = np.empty(1, np.uint64)
    state[0] = np.uint64(seed)
    fair = 100
    next_flow = 1
    next_agent = AGENT_ID0
    bid_id = 0
    bid_px = 0
    ask_id = 0
    ask_px = 0
    pos = 0
    cash = 0
    fills = 0
    fill_qty = 0
    agent_orders = 0
    calls = 0
    mid2 = 2 * fair
    for t in range(n_steps):
        mcn.set_time(book, t * 1000)
        r = _rng(state)
        r2 = _rng(state)
        # -- the random flow --
        u = r % 100
        side = (r >> 8) & 1
        if u < 70:
            off = (r >> 16) % 8 - 1  # mostly passive, sometimes one tick through the fair price
            mcn.submit(book, next_flow, side, fair - off if side == 0 else fair + off,
                       1 + (r >> 24) % 10, 0, FLOW, 0)
            next_flow += 1
        elif u < 80:
            mcn.market(book, next_flow, side, 1 + (r >> 24) % 8, FLOW)
            next_flow += 1
        elif next_flow > 1:
            mcn.cancel(book, next_flow - 1 - (r >> 16) % min(next_flow - 1, 64))
        calls += 1
        if (r2 >> 8) % 8 == 0:  # the fair price drifts: one tick every 8 steps on average
            fair += 2 * (r2 % 2) - 1
        if fair < 20:
            fair = 20
        # -- the agent sees its own events only --
        while True:
            n = mcn.drain_events_owner(book, AGENT, evbuf)
            calls += 1
            for i in range(n):
                if evbuf[i].kind == 1:  # FILL
                    q = evbuf[i].qty
                    if evbuf[i].maker_owner == AGENT:
                        side = 1 - evbuf[i].side
                    else:
                        side = evbuf[i].side
                    if side == 0:
                        pos += q
                        cash -= q * evbuf[i].price
                    else:
                        pos -= q
                        cash += q * evbuf[i].price
                    fills += 1
                    fill_qty += q
            if n < evbuf.shape[0]:
                break
        if bid_id != 0:
            calls += 1
            if mcn.get(book, bid_id)[0] == 0:
                bid_id = 0
        if ask_id != 0:
            calls += 1
            if mcn.get(book, ask_id)[0] == 0:
                ask_id = 0
        # -- requote around the mid, skewed against the position --
        okb, bp, bq = mcn.best(book, 0)
        oka, ap, aq = mcn.best(book, 1)
        calls += 2
        if okb != 0 and oka != 0:
            mid2 = bp + ap
        else:
            mid2 = 2 * fair
        mid = mid2 // 2
        skew = (abs(pos) // 10) * (1 if pos >= 0 else -1)
        tb = mid - half_spread - skew
        ta = mid + half_spread - skew
        if tb < 1:
            tb = 1
        if bid_id != 0 and (bid_px != tb or pos >= max_pos):
            mcn.cancel(book, bid_id)
            calls += 1
            bid_id = 0
        if bid_id == 0 and pos < max_pos:
            mcn.submit(book, next_agent, 0, tb, quote_qty, 0, AGENT, 1)
            agent_orders += 1
            calls += 2
            if mcn.get(book, next_agent)[0] != 0:
                bid_id = next_agent
                bid_px = tb
            next_agent += 1
        if ask_id != 0 and (ask_px != ta or pos <= -max_pos):
            mcn.cancel(book, ask_id)
            calls += 1
            ask_id = 0
        if ask_id == 0 and pos > -max_pos:
            mcn.submit(book, next_agent, 1, ta, quote_qty, 0, AGENT, 1)
            agent_orders += 1
            calls += 2
            if mcn.get(book, next_agent)[0] != 0:
                ask_id = next_agent
                ask_px = ta
            next_agent += 1
    stats[0] = next_flow - 1
    stats[1] = agent_orders
    stats[2] = fills
    stats[3] = fill_qty
    stats[4] = pos
    stats[5] = cash
    stats[6] = mid2
    stats[7] = calls


def simulate(n_steps: int = 20000, seed: int = 42, half_spread: int = 2, quote_qty: int = 5,
             max_pos: int = 50, book: mc.OrderBook | None = None):
    """Run the session; returns (stats dict, book, elapsed seconds of the compiled run)."""
    book = mc.OrderBook(record_events=True) if book is None else book
    evbuf = mcn.event_buffer(256)
    stats = np.zeros(len(STAT_NAMES), np.int64)
    t0 = time.perf_counter()
    run_session(book, n_steps, seed, half_spread, quote_qty, max_pos, evbuf, stats)
    elapsed = time.perf_counter() - t0
    out = dict(zip(STAT_NAMES, stats.tolist()))
    out["pnl"] = (2 * out["cash"] + out["position"] * out["mid2"]) / 2
    return out, book, elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=steps_arg, default=20000)
    ap.add_argument("--seed", type=seed_arg, default=42)
    args = ap.parse_args(argv)
    simulate(100, args.seed)  # compile (or load from the cache) outside the timing
    s, book, dt = simulate(args.steps, args.seed)
    print(f"numba market maker: {args.steps} step{'' if args.steps == 1 else 's'}, "
          f"seed {args.seed}")
    print(f"  flow orders {s['flow_orders']}, agent orders {s['agent_orders']}, "
          f"fills {s['fills']} ({s['fill_qty']} lots)")
    print(f"  position {s['position']}, cash {s['cash']}, mark-to-mid PnL {s['pnl']:.1f} ticks*lots")
    print(f"  book: {len(book)} resting orders, state hash {book.state_hash():#018x}")
    print(f"  {s['book_calls']} book calls in {dt * 1e3:.1f} ms{rate(int(s['book_calls']), dt)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
