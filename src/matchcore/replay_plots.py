"""Pictures of a replay: for each of the busiest symbols, one PNG with the top-of-book path
(best bid and ask), the spread and the traded volume over time.

Reads only the replay's sinks (``TOB_DTYPE`` and ``TRADE_DTYPE`` arrays, shared by the ITCH and
DBN replays), so it draws any replay, serial or merged from a cluster. matplotlib is imported
only when a plot is drawn (``pip install 'matchcore[plot]'``).
"""
from __future__ import annotations

import numbers
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from matchcore.itch import execution_mask, volume_mask

__all__ = ["plot_replay"]

_DAY_NS = 86_400 * 1_000_000_000


def _pyplot(what: str = "replay plots"):
    """matplotlib's pyplot on the Agg backend; without matplotlib an ImportError that names
    ``what`` needs it and the extra to install."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(f"{what} need matplotlib: pip install 'matchcore[plot]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_image_name(option: str, path, what: str = "replay plots") -> None:
    """Refuse, before any work, an image name whose suffix matplotlib cannot write (savefig
    refused it only once the work was done): ``ValueError`` naming ``option``. A name without
    a suffix is written as PNG. Imports matplotlib (:func:`_pyplot`, whose refusal names
    ``what``, the images the command draws)."""
    _pyplot(what)                   # the Agg backend save_figure draws with
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fmt = Path(path).suffix[1:].lower()
    known = FigureCanvasAgg.get_supported_filetypes()
    if fmt and fmt not in known:
        raise ValueError(f"{option} {path}: matplotlib cannot write '.{fmt}' images (it writes "
                         f"{', '.join(sorted(known))})")


def save_figure(fig, path, **kwargs) -> None:
    """``fig.savefig(path, **kwargs)`` through a temporary file renamed when complete (see
    :func:`matchcore._cliutil.atomic_output`): an interrupted command leaves the old image or
    none, not a truncated one. The format follows the name's suffix, as savefig takes it."""
    from matchcore._cliutil import atomic_output

    fmt = Path(path).suffix[1:].lower() or None
    with atomic_output(path, "wb") as f:
        fig.savefig(f, format=fmt, **kwargs)


def _png_name(out: Path, stem: str) -> str:
    """``stem + ".png"``, or where that is longer than the directory ``out`` takes a name (255
    bytes: several files' plots carry the file's name as a prefix, whose own name may take
    most of them), cut as :func:`matchcore._cliutil.name_within` cuts it: the rename to the
    long name failed after the whole replay. O(len(stem))."""
    import os

    from matchcore._cliutil import name_within

    try:
        most = os.pathconf(out, "PC_NAME_MAX")
    except (OSError, ValueError):
        most = 255
    return name_within(stem, most, ".png")


def _volume_trades(trades: np.ndarray) -> np.ndarray:
    """The trades that count towards traded volume once: executions counted once
    (:func:`~matchcore.itch.execution_mask`: a DBN execution's T, not also the F of each
    resting order filled) and not an ITCH execution with price (C) marked non-printable, as the
    specification says of volume calculations (a cross's shares come in its Q message)."""
    if not len(trades):
        return trades
    return trades[volume_mask(trades) & execution_mask(trades)]


def _time_axis(ts: np.ndarray, t0: int):
    if t0 < _DAY_NS:            # ITCH: nanoseconds since midnight
        return ts / 3.6e12, "time of day (hours)"
    # to the nanosecond: the axis starts at the first record, and the label cut to the whole
    # second put every time read off it up to a second early
    secs, ns = divmod(int(t0), 1_000_000_000)
    start = datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    fraction = f".{ns:09d}".rstrip("0") if ns else ""
    return (ts - t0) / 1e9, f"seconds since {start}{fraction} UTC"


def _held_to_end(x: np.ndarray, bid: np.ndarray, ask: np.ndarray, end: float):
    """The step lines' points with the last top of book held until ``end`` (the latest time
    the replay's sinks record, on the same axis): a book keeps its quotes after its last
    change, and the step line stopped there, so a book that changed once early on was drawn
    as nothing at all."""
    if not len(x) or not end > x[-1]:
        return x, bid, ask
    return np.append(x, end), np.append(bid, bid[-1]), np.append(ask, ask[-1])


# the fields the plots read of each sink, and what the sink holds
_SINK_FIELDS = {"tob": (("ts", "locate", "bid", "ask"), "top-of-book (TOB_DTYPE)"),
                "trades": (("ts", "locate", "kind", "flag", "shares"), "trade (TRADE_DTYPE)")}


def _check_sinks(tob, trades) -> None:
    """Refuse, before anything is made, a ``tob`` or ``trades`` that is not a sink array with
    the fields the plots read: the two given the other way round failed after the directory
    was made, in numpy's words ("no field of name kind"), naming neither. O(1)."""
    for name, value in (("tob", tob), ("trades", trades)):
        want, what = _SINK_FIELDS[name]
        names = value.dtype.names if isinstance(value, np.ndarray) else None
        if names is None:
            raise TypeError(f"{name} must be a numpy array of the replay's {what} records, got "
                            f"{type(value).__name__}"
                            + (f" of {value.dtype}" if isinstance(value, np.ndarray) else ""))
        missing = [f for f in want if f not in names]
        if missing:
            raise ValueError(f"{name} must hold the replay's {what} records: its fields "
                             f"({', '.join(names)}) lack {', '.join(missing)}")


def _check_arguments(top, bins, price_scale) -> None:
    """Refuse, before the directory is made or a figure drawn, what the plots cannot be drawn
    with: ``top`` and ``bins`` not whole numbers >= 1 (1.5 failed in a slice, -3 buckets in
    numpy's words, 0 buckets drew an empty volume panel), a ``price_scale`` not a finite number
    above 0 (0 drew infinite prices after a divide-by-zero warning, a negative one negative
    prices, NaN nothing). O(1)."""
    import math

    from matchcore._symfilter import whole_number

    for name, value in (("top", top), ("bins", bins)):
        n = whole_number(value)
        if n is None:
            raise TypeError(f"{name} must be an integer >= 1, got {type(value).__name__} "
                            f"{value!r}")
        if n < 1:
            raise ValueError(f"{name} must be >= 1, got {n}")
    if isinstance(price_scale, (bool, np.bool_)) or not isinstance(price_scale, numbers.Real):
        raise TypeError(f"price_scale must be a number (price units per currency unit: ITCH "
                        f"1e4, DBN 1e9), got {type(price_scale).__name__} {price_scale!r}")
    if not (math.isfinite(price_scale) and price_scale > 0):
        raise ValueError(f"price_scale must be a finite number above 0 (price units per "
                         f"currency unit: ITCH 1e4, DBN 1e9), got {price_scale!r}")


def plot_replay(out_dir, tob: np.ndarray, trades: np.ndarray, symbols: dict, *,
                price_scale: float, top: int = 4, prefix: str = "", bins: int = 120,
                taken: set | None = None) -> list:
    """Draw the ``top`` busiest symbols (most top-of-book changes + executions, counted as
    :func:`matchcore.cluster.dask.trade_count` counts them) of a replay into
    ``out_dir`` as ``<prefix><symbol>.png`` (``<symbol>-<locate>`` for a second symbol that
    gives the same file name, ``<symbol>-<locate>-2``... when that one is taken too; a name
    beyond the directory's longest, 255 bytes, is cut and ends in a hash); returns
    the paths written. ``taken``: the file names earlier calls drew into ``out_dir`` (several
    replays' plots with their own ``prefix``), which count as taken too; the names this call
    draws are added to it.

    ``tob``/``trades``: the replay's sink arrays; ``symbols``: {locate: name};
    ``price_scale``: price units per currency unit (ITCH 1e4, DBN 1e9; a finite number above
    0, and ``top`` and ``bins`` whole numbers >= 1, else ValueError, or TypeError for another
    type, before anything is made or drawn; so are sinks without the fields drawn, such as
    ``tob`` and ``trades`` given the other way round). Each PNG holds the best
    bid and ask (step lines, each book's last top of book held until the latest time the sinks
    record; an empty side is a gap), the spread, and the traded volume in
    ``bins`` time buckets. O(records + symbols drawn x bins).

    >>> import matchcore.itch as itch, tempfile                    # doctest: +SKIP
    >>> r = itch.Replayer(); r.feed(itch.generate(None, messages=20000)) and None  # doctest: +SKIP
    >>> plot_replay(tempfile.mkdtemp(), r.tob(), r.trades(), r.symbols, price_scale=1e4)  # doctest: +SKIP
    """
    _check_sinks(tob, trades)
    _check_arguments(top, bins, price_scale)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    activity: dict[int, int] = {}
    # executions, each counted once (a DBN execution is a T and an F per resting order filled
    # at a venue that sends both, a T alone at one that does not)
    executions = trades[execution_mask(trades)] if len(trades) else trades
    for arr in (tob, executions):
        if len(arr):
            locs, counts = np.unique(arr["locate"], return_counts=True)
            for L, c in zip(locs.tolist(), counts.tolist()):
                activity[L] = activity.get(L, 0) + c
    chosen = sorted(activity, key=lambda L: (-activity[L], L))[:top]
    if not chosen:
        return []
    plt = _pyplot()
    starts = [int(a["ts"].min()) for a in (tob, trades) if len(a)]
    t0 = min(starts)
    # where every book's last top of book is held until (_held_to_end), on the plots' axis
    end, _ = _time_axis(np.float64(max(int(a["ts"].max()) for a in (tob, trades) if len(a))),
                        t0)
    paths = []
    # prefix included: another file's prefix and symbol ("a-" + "2-X", "a-2-" + "X") can
    # give the same name, and its plot replaced the first one
    taken = set() if taken is None else taken
    # every figure opened here is closed, also when one fails (a full disk): pyplot kept it,
    # and its memory, in the caller's process
    opened = set(plt.get_fignums())
    try:
        for L in chosen:
            name = str(symbols.get(L, L))
            t = tob[tob["locate"] == L]
            tr = _volume_trades(trades[trades["locate"] == L])
            fig, (ax1, ax2, ax3) = plt.subplots(3, 1, sharex=True, figsize=(9, 7),
                                                gridspec_kw={"height_ratios": [3, 1.3, 1.3]})
            x, xlabel = _time_axis(t["ts"].astype(np.float64), t0)
            bid = np.where(t["bid"] > 0, t["bid"] / price_scale, np.nan)
            ask = np.where(t["ask"] > 0, t["ask"] / price_scale, np.nan)
            x, bid, ask = _held_to_end(x, bid, ask, end)
            # a line of one instant is no segment: marked, as it was drawn as nothing
            mark = "o" if len(x) and x.min() == x.max() else None
            ax1.step(x, bid, where="post", color="tab:green", lw=0.9, label="best bid",
                     marker=mark)
            ax1.step(x, ask, where="post", color="tab:red", lw=0.9, label="best ask",
                     marker=mark)
            ax1.set_ylabel("price")
            ax1.legend(loc="upper left", fontsize=8)
            # the name as the file spells it: two '$' in it were read as mathtext, drawn
            # as math or failing the whole plot (a stock field of a damaged file)
            ax1.set_title(f"{name}: top of book, spread and traded volume", parse_math=False)
            ax2.step(x, ask - bid, where="post", color="tab:blue", lw=0.9, marker=mark)
            ax2.set_ylabel("spread")
            if len(tr):
                xt, _ = _time_axis(tr["ts"].astype(np.float64), t0)
                lo, hi = (min(xt.min(), x.min()), max(xt.max(), x.max())) if len(x) else \
                    (xt.min(), xt.max())
                edges = np.linspace(lo, hi if hi > lo else lo + 1e-9, bins + 1)
                vol, _ = np.histogram(xt, bins=edges, weights=tr["shares"].astype(np.float64))
                ax3.bar(edges[:-1], vol, width=np.diff(edges), align="edge", color="tab:gray")
            ax3.set_ylabel("volume / bucket")
            ax3.set_xlabel(xlabel)
            for ax in (ax1, ax2, ax3):
                # prices as they are: matplotlib's offset drew a quote of 353.65 as "0.05"
                # under a "+3.536e2" in the corner, and a short replay's hours alike
                ax.ticklabel_format(useOffset=False)
            fig.tight_layout()
            base = safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()) or str(L)
            n = 1
            png = _png_name(out, f"{prefix}{safe}")
            while png in taken:
                # two symbols of one file name ("BRK A", "BRK_A"): the second PNG overwrote the
                # first, and both were listed; so did BRK_A-5 when a symbol of that name had
                # been drawn before
                safe = f"{base}-{L}" if n == 1 else f"{base}-{L}-{n}"
                n += 1
                png = _png_name(out, f"{prefix}{safe}")
            taken.add(png)
            path = out / png
            save_figure(fig, path, dpi=100)
            plt.close(fig)
            paths.append(path)
    finally:
        for num in set(plt.get_fignums()) - opened:
            plt.close(num)
    return paths
