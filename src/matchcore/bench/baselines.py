"""Baselines timed in the same run as matchcore, reported as ratios to it.

- ``reference``: :class:`matchcore.ReferenceBook` (pure Python on sortedcontainers), same semantics.
- ``python_per_call``: a plain Python loop calling the compiled book's ``submit``/``cancel``/
  ``modify`` once per command: what a simulator pays for the Python call boundary.
- ``lightmatchingengine`` and ``pyorderbook`` (PyPI) when installed. Neither has IOC nor modify:
  an IOC is an order whose remainder is cancelled at once, a reprice is a cancel plus a new order.
  Their ids are their own (a counter, a UUID), mapped from ours in a dict. These adapters run the
  same commands; they are speed baselines, not checked for equal results.
"""
from __future__ import annotations

import time


from matchcore import CommandKind, OrderBook, TIF


def _columns(flow):
    return [flow[k].tolist() for k in ("kind", "order_id", "side", "price", "qty", "tif")]


def _time_reference(setup, flow):
    import matchcore

    book = matchcore.ReferenceBook(record_events=False)
    book.process(setup)
    t0 = time.perf_counter_ns()
    book.process(flow)
    return time.perf_counter_ns() - t0


def _time_python_per_call(setup, flow):
    book = OrderBook(record_events=False, capacity=len(setup) + len(flow) + 1024)
    book.process(setup)
    submit, market, cancel, modify = book.submit, book.submit_market, book.cancel, book.modify
    cols = _columns(flow)
    t0 = time.perf_counter_ns()
    for kind, oid, side, price, qty, tif in zip(*cols):
        if kind == CommandKind.MODIFY:
            modify(oid, qty, price)
        elif kind == CommandKind.SUBMIT:
            submit(oid, side, price, qty, tif)
        elif kind == CommandKind.CANCEL:
            cancel(oid)
        else:
            market(oid, side, qty)
    return time.perf_counter_ns() - t0


def _time_lightmatchingengine(setup, flow):
    from lightmatchingengine.lightmatchingengine import LightMatchingEngine, Side

    eng = LightMatchingEngine()
    ids = {}
    sides = (Side.BUY, Side.SELL)

    def add(oid, side, price, qty, tif):
        order, _ = eng.add_order("X", float(price), qty, sides[side])
        if order.leaves_qty > 0:
            if tif == TIF.IOC:
                eng.cancel_order(order.order_id, "X")
            else:
                ids[oid] = (order.order_id, side)

    def drop(oid):
        ref = ids.pop(oid, None)
        if ref is not None:
            eng.cancel_order(ref[0], "X")
        return ref

    for kind, oid, side, price, qty, tif in zip(*_columns(setup)):
        add(oid, side, price, qty, tif)
    cols = _columns(flow)
    t0 = time.perf_counter_ns()
    for kind, oid, side, price, qty, tif in zip(*cols):
        if kind == CommandKind.MODIFY:
            ref = drop(oid)
            if ref is not None:
                add(oid, ref[1], price, qty, TIF.GTC)
        elif kind == CommandKind.SUBMIT:
            add(oid, side, price, qty, tif)
        elif kind == CommandKind.CANCEL:
            drop(oid)
        else:
            add(oid, side, 0.0, qty, TIF.IOC)
    return time.perf_counter_ns() - t0


def _time_pyorderbook(setup, flow):
    import logging

    from pyorderbook import Book, ask, bid

    logging.getLogger("pyorderbook.book").setLevel(logging.CRITICAL)
    book = Book()
    orders = {}
    makers = (bid, ask)

    def add(oid, side, price, qty, tif):
        o = makers[side]("X", price, qty)
        book.match(o)
        if o.quantity > 0:
            if tif == TIF.IOC:
                book.cancel(o)
            else:
                orders[oid] = o

    def drop(oid):
        o = orders.pop(oid, None)
        if o is not None and o.quantity > 0 and o.id in book.order_map:
            book.cancel(o)
        return o

    for kind, oid, side, price, qty, tif in zip(*_columns(setup)):
        add(oid, side, price, qty, tif)
    cols = _columns(flow)
    t0 = time.perf_counter_ns()
    for kind, oid, side, price, qty, tif in zip(*cols):
        if kind == CommandKind.MODIFY:
            o = drop(oid)
            if o is not None:
                add(oid, 0 if o.side.name == "BID" else 1, price, qty, TIF.GTC)
        elif kind == CommandKind.SUBMIT:
            add(oid, side, price, qty, tif)
        elif kind == CommandKind.CANCEL:
            drop(oid)
        else:
            best = 10 ** 12 if side == 0 else 1
            add(oid, side, best, qty, TIF.IOC)
    return time.perf_counter_ns() - t0


BASELINES = {
    "reference": ("matchcore.ReferenceBook (pure Python)", _time_reference, None),
    "python_per_call": ("compiled book, one Python call per command", _time_python_per_call, None),
    "lightmatchingengine": ("lightmatchingengine (PyPI)", _time_lightmatchingengine,
                            "lightmatchingengine"),
    "pyorderbook": ("pyorderbook (PyPI)", _time_pyorderbook, "pyorderbook"),
}


def available() -> dict:
    """name -> installed? for every baseline (the first two are always there)."""
    import importlib.util

    return {name: (mod is None or importlib.util.find_spec(mod) is not None)
            for name, (_, _, mod) in BASELINES.items()}


def _best_ns(fn, setup, flow, reps: int) -> list:
    """The ``reps`` timings (ns) of ``fn`` on ``setup`` + ``flow`` after one untimed warm-up.

    A first pass pays for imports, allocator growth and cold caches; on a shared machine a
    single timing of a Python book wandered threefold between runs, so the figure taken is the
    best of several, as for matchcore's own."""
    fn(setup, flow)
    return [fn(setup, flow) for _ in range(reps)]


def run_baselines(setup, flow, matchcore_ns_per_msg: float, names=None, progress=None,
                  reps: int = 3) -> dict:
    """Time each installed baseline on ``setup`` + ``flow``; ns/msg and ratio to matchcore.

    ``matchcore_ns_per_msg`` is the compiled ``process()`` cost measured in the same run;
    ``names`` the baselines to run (keys of :data:`BASELINES`, default all; another name raises
    ValueError before any runs). Each
    baseline runs once untimed, then ``reps`` times; ``ns_per_msg`` is the best of those runs.
    A baseline that is not installed or fails is reported with the reason instead of figures.
    O((reps + 1) * (len(setup) + len(flow))) per baseline.
    """
    from matchcore.bench.harness import check_reps

    # (reps=1.5 was taken, and each baseline then reported as "failed: TypeError")
    check_reps(reps)
    if isinstance(names, str):
        # iterated, "reference" was the names "r", "e", "f", ...: "unknown baseline(s) r, e"
        raise TypeError(f"names is a list of baseline names, not a single name ({names!r}): "
                        f"write [{names!r}]")
    if names is not None:
        # held once: a generator was used up by the check below, and every baseline was then
        # skipped as not asked for (an empty result)
        names = tuple(names)
        # (a misspelt name was skipped without a word, as if it had been run)
        unknown = [n for n in names if n not in BASELINES]
        if unknown:
            raise ValueError(f"unknown baseline(s) {', '.join(map(str, unknown))}; choose from "
                             f"{', '.join(BASELINES)}")
    out = {}
    have = available()
    for name, (label, fn, _) in BASELINES.items():
        if names is not None and name not in names:
            continue
        if not have[name]:
            out[name] = {"label": label, "skipped": "not installed"}
        else:
            try:
                runs = _best_ns(fn, setup, flow, reps)
                per = min(runs) / max(len(flow), 1)
                out[name] = {"label": label, "n": len(flow), "ns_per_msg": per,
                             "reps": reps,
                             "ns_per_msg_runs": [r / max(len(flow), 1) for r in runs],
                             "msgs_per_s": 1e9 / per if per else float("inf"),
                             "slower_than_matchcore": per / matchcore_ns_per_msg}
            except Exception as e:  # a third-party book failing must not stop the run
                out[name] = {"label": label, "skipped": f"failed: {type(e).__name__}: {e}"}
        if progress is not None:
            progress.update(1)
    return out
