"""A market-making agent in plain Python against a seeded random order flow.

The strategy of ``numba_market_maker.py`` written with the book's Python methods: each step one
random flow order, then the agent reads only its own events (``book.events(owner=AGENT)``,
filtered in compiled code), books its fills, and requotes around the mid, skewed against its
position. Same seed, same result as the Numba and C versions, at Python speed.

Run:  python examples/python_agent.py [--steps N] [--seed S]
"""
from __future__ import annotations

import argparse
import re
import time

import matchcore as mc

AGENT = 7
FLOW = 1
AGENT_ID0 = 1 << 40
MASK = (1 << 64) - 1


class SplitMix64:
    """splitmix64 giving 63 non-negative bits (the generator of the Numba and C versions)."""

    def __init__(self, seed: int):
        self.state = seed & MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return (z ^ (z >> 31)) >> 1


def simulate(n_steps: int = 2000, seed: int = 42, half_spread: int = 2, quote_qty: int = 5,
             max_pos: int = 50, book: mc.OrderBook | None = None):
    """Run the session; returns (stats dict, book, elapsed seconds)."""
    book = mc.OrderBook() if book is None else book
    rng = SplitMix64(seed)
    fair, next_flow, next_agent = 100, 1, AGENT_ID0
    bid_id = bid_px = ask_id = ask_px = 0
    pos = cash = fills = fill_qty = agent_orders = calls = 0
    mid2 = 2 * fair
    t0 = time.perf_counter()
    for t in range(n_steps):
        ts = t * 1000
        r, r2 = rng.next(), rng.next()
        u, side = r % 100, (r >> 8) & 1
        if u < 70:
            off = (r >> 16) % 8 - 1
            book.submit(next_flow, side, fair - off if side == 0 else fair + off,
                        1 + (r >> 24) % 10, owner=FLOW, ts_ns=ts)
            next_flow += 1
        elif u < 80:
            book.submit_market(next_flow, side, 1 + (r >> 24) % 8, owner=FLOW, ts_ns=ts)
            next_flow += 1
        elif next_flow > 1:
            book.cancel(next_flow - 1 - (r >> 16) % min(next_flow - 1, 64), ts_ns=ts)
        calls += 1
        if (r2 >> 8) % 8 == 0:
            fair += 2 * (r2 % 2) - 1
        fair = max(fair, 20)

        for e in book.events(owner=AGENT).tolist():  # only the agent's own events
            # tolist() gives tuples in EVENT_DTYPE field order
            _, _, _, price, q, _, maker_owner, _, kind, ev_side, _, _ = e
            if kind == mc.EventKind.FILL:
                s = 1 - ev_side if maker_owner == AGENT else ev_side
                pos, cash = (pos + q, cash - q * price) if s == 0 else (pos - q, cash + q * price)
                fills += 1
                fill_qty += q
        calls += 1
        if bid_id:
            calls += 1
            if book.get(bid_id) is None:
                bid_id = 0
        if ask_id:
            calls += 1
            if book.get(ask_id) is None:
                ask_id = 0

        bb, ba = book.best_bid(), book.best_ask()
        calls += 2
        mid2 = bb[0] + ba[0] if bb and ba else 2 * fair
        mid = mid2 // 2
        skew = (abs(pos) // 10) * (1 if pos >= 0 else -1)
        tb, ta = max(1, mid - half_spread - skew), mid + half_spread - skew
        if bid_id and (bid_px != tb or pos >= max_pos):
            book.cancel(bid_id, ts_ns=ts)
            calls += 1
            bid_id = 0
        if not bid_id and pos < max_pos:
            book.submit(next_agent, mc.Side.BUY, tb, quote_qty, owner=AGENT, post_only=True,
                        ts_ns=ts)
            agent_orders += 1
            calls += 2
            if book.get(next_agent) is not None:
                bid_id, bid_px = next_agent, tb
            next_agent += 1
        if ask_id and (ask_px != ta or pos <= -max_pos):
            book.cancel(ask_id, ts_ns=ts)
            calls += 1
            ask_id = 0
        if not ask_id and pos > -max_pos:
            book.submit(next_agent, mc.Side.SELL, ta, quote_qty, owner=AGENT, post_only=True,
                        ts_ns=ts)
            agent_orders += 1
            calls += 2
            if book.get(next_agent) is not None:
                ask_id, ask_px = next_agent, ta
            next_agent += 1
    elapsed = time.perf_counter() - t0
    stats = {"flow_orders": next_flow - 1, "agent_orders": agent_orders, "fills": fills,
             "fill_qty": fill_qty, "position": pos, "cash": cash, "mid2": mid2,
             "book_calls": calls}
    stats["pnl"] = (2 * cash + pos * mid2) / 2
    return stats, book, elapsed


# What the C version's strtoll / strtoull take whole: leading blanks, a sign, ASCII digits. int()
# takes more ("1_000", Unicode digits, trailing blanks), which the C version refuses.
_C_DECIMAL = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")


def _c_decimal(text: str, what: str) -> int:
    if _C_DECIMAL.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: an integer is needed")
    return int(text)


def seed_arg(text: str) -> int:
    """--seed: an integer in (-2**64, 2**64), taken modulo 2**64 as the C version's strtoull
    takes it; a wider one is refused (exit 2), as the C version refuses it, instead of being
    wrapped here and failing (or wrapped differently) there."""
    v = _c_decimal(text, "seed")
    if not -(1 << 64) < v < (1 << 64):
        raise argparse.ArgumentTypeError(f"seed {text} is outside (-2**64, 2**64)")
    return v % (1 << 64)


def steps_arg(text: str) -> int:
    """--steps: an integer in [0, 2**63), the C version's range (an int64 count); outside it a
    usage error (exit 2), as the C version gives, instead of a run of no steps reported as
    a negative count, an overflow in compiled code, or a loop without end."""
    v = _c_decimal(text, "steps")
    if not 0 <= v < (1 << 63):
        raise argparse.ArgumentTypeError(f"steps {text} is outside [0, 2**63)")
    return v


def rate(calls: int, seconds: float, note: str = "") -> str:
    """' (N ns per call)' for a run that made calls; nothing for none (no time per call)."""
    return f" ({seconds * 1e9 / calls:.0f} ns per call{note})" if calls > 0 else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=steps_arg, default=20000)
    ap.add_argument("--seed", type=seed_arg, default=42)
    args = ap.parse_args(argv)
    s, book, dt = simulate(args.steps, args.seed)
    print(f"python agent: {args.steps} step{'' if args.steps == 1 else 's'}, seed {args.seed}")
    print(f"  flow orders {s['flow_orders']}, agent orders {s['agent_orders']}, "
          f"fills {s['fills']} ({s['fill_qty']} lots)")
    print(f"  position {s['position']}, cash {s['cash']}, mark-to-mid PnL {s['pnl']:.1f} ticks*lots")
    print(f"  book: {len(book)} resting orders, state hash {book.state_hash():#018x}")
    print(f"  {s['book_calls']} book calls in {dt * 1e3:.1f} ms"
          f"{rate(s['book_calls'], dt, ', Python loop included')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
