"""Seeded order-flow generators that write :data:`COMMAND_DTYPE` arrays.

Every generator returns ``(setup, flow)``: ``setup`` builds the starting book, ``flow`` is the
measured stream. Each command is applied to a real :class:`~matchcore.OrderBook` as it is
generated (:mod:`matchcore.bench._kernels`), so every cancel and reprice names an order that is
resting when it arrives, and replaying ``setup`` then ``flow`` into an empty book (default STP
mode) gives exactly the generator's final book (same :meth:`~matchcore.OrderBook.state_hash`).
With Numba installed the generators are compiled and call the book through
:mod:`matchcore.numba_ext` (Numba is imported only when a workload is generated); without it they
run as plain Python over the OrderBook methods: same commands, about 40x slower (about 5 us a
command). The same seed gives the same commands, whichever way they run.

Workloads:

- :func:`standard_mix`: 9% new GTC orders, 3% marketable IOCs, 6% cancels and 82% reprices of a
  resting order, from 1,000 resting orders on a 750-tick band (the flow keeps about 1,700-2,000
  with the defaults); optional passive ``background`` orders beyond the active levels (a deep book that the flow does not touch).
- :func:`deep_book`: the standard mix over a book of about 1M resting orders, either active near
  the touch over a deep passive book, or spread over the whole book (``spread=True``).
- :func:`market_maker_mix`: makers' quotes replaced every few messages (cancel + new order), a
  drifting fair price, takers now and then: about 95% of orders end cancelled.
- :func:`sweep_burst`: passive refills and cancels, and now and then a large marketable order
  (IOC through many levels, or a market order) that eats many price levels at once.
- :func:`touch_flow` (``wide_book``, ``stale_cancel``, ``market_heavy``): new orders near the
  mid, cancels of recently issued ids (many already gone) and market orders, over a deep, wide
  book (1M orders over ~200k levels a side by default). Drawn with NumPy rather than through a
  book, since its cancels name stale ids on purpose; the statistics come from a replay.

:func:`generate` gives any of them by name as a :class:`Workload` with its parameters and the
generator's statistics (orders, fills, cancels, resting at the end, the final book's
state hash).
"""
from __future__ import annotations

import dataclasses
import errno
import numbers
import operator
import os
from pathlib import Path

import numpy as np

from matchcore._core import COMMAND_DTYPE, OrderBook, _flag_arg

MID = 1_000_000   # ticks; far from 0 so that prices never leave the positive range
_CHUNK = 1 << 19  # flow commands generated per kernel call (bounds the uniforms held at once)


@dataclasses.dataclass
class Workload:
    """A generated workload: ``setup`` (builds the book) and ``flow`` (measured), both
    :data:`COMMAND_DTYPE` arrays, with the generator's parameters and its statistics."""

    name: str
    setup: np.ndarray
    flow: np.ndarray
    params: dict
    stats: dict

    def __eq__(self, other):
        """Equal when name, parameters, statistics and both arrays (dtype, shape and every
        command) are: two generations with one seed, or a workload and what :meth:`load` reads
        back from its :meth:`save`. O(n)."""
        # (the generated __eq__ compared the arrays with ==, whose truth value numpy refuses)
        if not isinstance(other, Workload):
            return NotImplemented
        return (self.name == other.name and self.params == other.params
                and self.stats == other.stats and _same_array(self.setup, other.setup)
                and _same_array(self.flow, other.flow))

    # mutable, as the generated __eq__ left it: no hash
    __hash__ = None

    def save(self, path) -> Path:
        """Write the workload to ``path`` (a ``.npz`` of two ``.npy`` arrays plus parameters;
        ``.npz`` is appended to a name without it), through a temporary file renamed when
        complete: an interrupted save leaves the old file or none. A ``path`` ending with a
        separator (``"dir/"``) or naming no file (``"."``, ``".."``) raises
        ``IsADirectoryError``; an empty one ``ValueError``, as the native writers. ``setup`` and
        ``flow`` must be 1-d ``COMMAND_DTYPE`` arrays (in either byte order, written as
        ``COMMAND_DTYPE``): others raise ``TypeError`` / ``ValueError`` before anything is
        written.

        >>> w = generate("standard", 100, seed=1)
        >>> import tempfile, os; d = tempfile.mkdtemp()
        >>> Workload.load(w.save(os.path.join(d, "w.npz"))).flow.shape
        (100,)
        """
        from matchcore._cliutil import atomic_output

        _refuse_directory_name(path, "path")
        path = Path(path)
        # numpy scalars as Python numbers: the repr of np.int64(3) is a call, which load()'s
        # literal_eval refuses (a file written that could not be read back)
        meta = np.array(repr(_plain({"name": self.name, "params": self.params,
                                     "stats": self.stats})))
        # arrays load() reads back, checked before anything is written: a 2-d flow was written
        # and loaded, refused only by process(); one in the other byte order was written and
        # then refused by load() ("arrays are not COMMAND_DTYPE")
        setup = _command_array(self.setup, "save() setup")
        flow = _command_array(self.flow, "save() flow")
        path = _npz_path(path)
        # complete or not there (the old file kept), as the .mccmd files of save_native
        with atomic_output(path, "wb") as f:
            np.savez(f, setup=setup, flow=flow, meta=meta)
        return path

    def save_native(self, prefix) -> tuple[Path, Path]:
        """Write ``<prefix>.setup.mccmd`` and ``<prefix>.flow.mccmd`` in matchcore's native command
        format (:mod:`matchcore.native`). The flow runs on the book the setup builds: apply
        both, in order, to one book (``book.process(read_commands(setup_path))``, then
        ``book.process(read_commands(flow_path))``) for the generator's final book.
        ``matchcore replay FILE`` and ``replay_commands(path)`` replay one file from an empty
        book: the setup file alone as it is, the flow file alone from a book without its setup
        (its cancels and reprices then mostly ``ORDER_NOT_FOUND``), and
        ``replay_commands(flow_path, book)`` refuses the setup's book (the file's header says
        an empty start).
        A ``prefix`` ending with a separator (``"dir/"``) or naming no file (``"."``, ``".."``)
        raises ``IsADirectoryError``, and an empty one ``ValueError``, as :meth:`save`. Raises
        ``ImportError`` in a build without :mod:`matchcore.native`. O(n) bytes written."""
        from matchcore import native

        _refuse_directory_name(prefix, "prefix")
        prefix = Path(prefix)
        paths = (prefix.with_name(prefix.name + ".setup.mccmd"),
                 prefix.with_name(prefix.name + ".flow.mccmd"))
        for p in paths:
            if os.path.isdir(p):
                # refused before either is written (the flow file's was found after the
                # setup file had been written: half of the pair left behind)
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(p))
        # both arrays checked before either file is written, for the same reason: a flow that
        # write_commands refuses (another dtype, 2-d) was refused after the setup file
        setup = native._file_records(self.setup, "save_native() setup")
        flow = native._file_records(self.flow, "save_native() flow")
        native.write_commands(paths[0], setup, stp=1)
        native.write_commands(paths[1], flow, stp=1)
        return paths

    @classmethod
    def load(cls, path) -> "Workload":
        """Read a workload written by :meth:`save`, under the name given to it (``.npz`` is
        appended to a name without it, as :meth:`save` does, unless a file of that very name exists,
        one renamed since, say; a name it refuses raises the same ``IsADirectoryError``, or
        ``ValueError`` for an empty one). A file :meth:`save` did not write raises ``ValueError``
        ("not a matchcore workload", and why). O(size of the file)."""
        import ast
        import zipfile

        _refuse_directory_name(path, "path")
        path = Path(path)
        if not path.is_file():
            path = _npz_path(path)

        def not_workload(why):
            return ValueError(f"{path}: not a matchcore workload ({why})")

        # numpy's own words were of another file: "contains pickled (object) data. If you
        # trust the file you can load it unsafely using the allow_pickle= keyword" (of any
        # file that is no archive), KeyError "meta is not a file in the archive", EOFError
        try:
            z = np.load(path, allow_pickle=False)
        except (ValueError, EOFError, zipfile.BadZipFile):
            raise not_workload("not an .npz archive") from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise not_workload("a .npy array, not an .npz archive")
        try:
            with z:
                arrays = {k: z[k] for k in ("setup", "flow", "meta") if k in z.files}
        except (EOFError, zipfile.BadZipFile):
            raise not_workload("a damaged .npz archive") from None
        except ValueError:
            # an array of Python objects (refused, not unpickled, with the same advice to
            # unpickle it) or a damaged array header
            raise not_workload("an array that is not plain data") from None
        missing = [k for k in ("setup", "flow", "meta") if k not in arrays]
        if missing:
            raise not_workload(f"no {', '.join(missing)} array in the archive")
        setup, flow = arrays["setup"], arrays["flow"]
        try:
            meta = ast.literal_eval(str(arrays["meta"]))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            meta = None
        if not isinstance(meta, dict) or not {"name", "params", "stats"} <= meta.keys():
            raise not_workload("its meta array is not the name, params and stats save writes")
        if setup.dtype != COMMAND_DTYPE or flow.dtype != COMMAND_DTYPE:
            raise not_workload("arrays are not COMMAND_DTYPE")
        if setup.ndim != 1 or flow.ndim != 1:
            raise not_workload(f"arrays of shapes {setup.shape} and {flow.shape}, not 1-d")
        return cls(meta["name"], setup, flow, meta["params"], meta["stats"])


def _command_array(arr, what: str) -> np.ndarray:
    # a workload's setup or flow as save() writes it: a 1-d COMMAND_DTYPE array (one in the
    # other byte order holds the same records: converted, as write_commands converts it)
    a = np.asarray(arr)
    if a.dtype != COMMAND_DTYPE and a.dtype != COMMAND_DTYPE.newbyteorder():
        raise TypeError(f"{what} needs an array of matchcore.COMMAND_DTYPE, got {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{what} needs a 1-d array, got shape {a.shape}")
    return a.astype(COMMAND_DTYPE, copy=False)


def _same_array(a, b) -> bool:
    # Workload.__eq__'s comparison of a setup or flow
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def _npz_path(path: Path) -> Path:
    # the file save() writes for, and load() reads for, the name given
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _refuse_directory_name(path, name: str) -> None:
    # "dir/" names a directory: through Path the slash was dropped and "dir.npz" (or
    # "dir.setup.mccmd") written; "." is the current directory, a name Path has no
    # file name in ("PosixPath('.') has an empty name"), and "dir/.." the one above dir
    # ("dir/...npz" was written); "" ("." to Path) is refused as the native writers refuse it
    from matchcore._cliutil import names_a_directory

    if isinstance(path, str) and not path:
        raise ValueError(f"{name}: an empty path")
    if names_a_directory(path) or Path(path).name in ("", ".."):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)


def _plain(o):
    # a dict of parameters or statistics with numpy scalars replaced by Python numbers
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return type(o)(_plain(v) for v in o)
    return o.item() if isinstance(o, np.generic) else o


def _k():
    from matchcore.bench import _kernels

    return _kernels


class _Run:
    """One generation: the book the commands are applied to, its kernel handle, the event
    buffer and the statistics; ``close()`` gives the statistics and lets the book go."""

    def __init__(self, k, capacity: int):
        self.k = k
        self.book = OrderBook(capacity=capacity)
        self.handle = k.attach(self.book)
        self.ev = k.event_buffer()
        self.stats = np.zeros(k.N_STATS, np.int64)

    def close(self) -> dict:
        k, st = self.k, self.stats
        k.detach(self.handle)
        resting = len(self.book)
        orders, cancelled, expired = (int(st[k.ST_ORDERS]), int(st[k.ST_CANCELLED]),
                                      int(st[k.ST_EXPIRED]))
        return {
            "orders": orders,
            # every order ends resting, cancelled, expired (IOC/market remainder) or filled
            "fully_filled": orders - cancelled - expired - resting,
            "cancelled": cancelled,
            "expired": expired,
            "fills": int(st[k.ST_FILLS]),
            "replaced": int(st[k.ST_REPLACED]),
            "resting_at_end": resting,
            "state_hash": int(self.book.state_hash()),
            "compiled": bool(k.HAVE_NUMBA),
        }


def _ints(**named) -> list[int]:
    """The integer parameters, in the order given, as ints (anything with ``__index__``), with
    the books' error for anything else: a float went on to numpy or Numba and failed there
    with an error that named no parameter (``levels=1.5``), or made a workload (``band=1.5``)."""
    out = []
    for name, value in named.items():
        try:
            out.append(operator.index(value))
        except TypeError:
            raise TypeError(f"{name} must be an integer, got {type(value).__name__} "
                            f"{value!r}") from None
    return out


def _reals(**named) -> list[float]:
    """The probability parameters, in the order given, as floats (any real number), with a
    TypeError naming the parameter for anything else: a Fraction reached the Numba kernel and
    failed there ("non-precise type pyobject"), a string or None a comparison in Python's words,
    and either named no parameter."""
    out = []
    for name, value in named.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
        out.append(float(value))
    return out


def _check_common(n, seed, first_id):
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if first_id < 0:
        raise ValueError(f"first_id must be >= 0, got {first_id}")
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        # (numpy's generator said "expected non-negative integer", naming no parameter)
        raise ValueError(f"seed must be >= 0, got {seed}")


def _check_ids(first_id, count):
    # The generators count ids in int64 (the Numba kernels, the NumPy touch flows): ids past
    # 2**63 - 1 wrapped negative there, and the flow then named orders the book never held
    # (the standard mix replayed with ORDER_NOT_FOUND rejects into another book than its
    # stats; every stale cancel of a touch flow named first_id).
    if int(first_id) + count > 2**63:
        raise ValueError(f"first_id={first_id} leaves no room for the {count:,} ids this "
                         f"workload may issue: first_id + {count:,} must not pass 2**63 "
                         f"(the generators count ids in int64)")


def _check_span(span: int, what: str) -> None:
    # Prices at most `span` ticks from MID: beyond, bids went to zero or below, and the
    # workload silently held INVALID_PRICE rejects.
    if span >= MID:
        raise ValueError(f"{what} put prices up to {span} ticks from the mid ({MID}): bids "
                         f"would not be positive prices")


def _gen_standard(n, seed, resting, levels, background, first_id):
    n, resting, levels, background, first_id = _ints(
        n=n, resting=resting, levels=levels, background=background, first_id=first_id)
    _check_common(n, seed, first_id)
    if resting < 0 or background < 0 or levels < 1:
        raise ValueError("resting and background must be >= 0 and levels >= 1")
    # active orders and the flow within levels // 2 ticks, background 10 beyond, 100 a level
    half = max(levels // 2, 1)
    span = half + 10 + (background - 1) // 200 if background else half
    _check_span(span, f"levels={levels} and background={background}")
    n_setup = resting + background
    _check_ids(first_id, n_setup + n)
    k = _k()
    cmds = np.zeros(n_setup + n, dtype=COMMAND_DTYPE)
    out = k.out_views(cmds)
    run = _Run(k, n_setup + 4096)
    picks = k.Picks(n_setup + min(n, _CHUNK) + 16)
    state = np.zeros(4, np.int64)
    rng = np.random.default_rng(seed)
    us = rng.random(2 * resting)
    k.resting_setup(run.handle, run.ev, resting, background, levels, first_id, MID, us, state,
                    *picks.arrays(), run.stats, *out)
    done = 0
    while done < n:
        c = min(_CHUNK, n - done)
        picks.reserve(int(state[0]) + c + 16)
        k.standard_flow(run.handle, run.ev, c, resting, background, levels, first_id, MID,
                        rng.random(4 * c), state, *picks.arrays(), run.stats, *out)
        done += c
    return cmds[:n_setup], cmds[n_setup:], run.close()


def standard_mix(n: int, *, seed: int = 1, resting: int = 1000, levels: int = 750,
                 background: int = 0, first_id: int = 1):
    """Generate ``n`` commands of the standard mix; returns ``(setup, flow)``.

    ``setup`` places ``background`` passive orders (100 per level, on levels beyond the active
    ones, never named by the flow) and ``resting`` active orders at uniform distances of
    1..``levels``/2 ticks from the mid on both sides. ``flow``: 9% new passive GTC orders, 3% IOCs
    at the opposite best price (sized by the book's size over ``resting``, but taking that one
    level at most, so with the defaults the book settles at about 1,700-2,000 orders), 6% cancels
    and 82% reprices (new price and qty, usually losing queue place) of a random active resting
    order. Prices in ticks around 1,000,000; order ids from ``first_id`` in sequence. O(n) in
    compiled code (about 100 ns per command with Numba, the book's own matching included).

    >>> setup, flow = standard_mix(1000, seed=7)
    >>> len(setup), len(flow)
    (1000, 1000)
    """
    setup, flow, _ = _gen_standard(n, seed, resting, levels, background, first_id)
    return setup, flow


def deep_book(n: int, *, seed: int = 1, resting: int = 1_000_000, spread: bool = False,
              levels: int = 750, first_id: int = 1):
    """The standard mix over a deep book of ``resting`` orders; returns ``(setup, flow)``.

    ``spread=False``: 1,000 active orders over ``levels`` levels near the touch carry the flow,
    the other ``resting - 1000`` orders rest passively on deeper levels (100 per level): the
    common shape of a real book. ``spread=True``: all ``resting`` orders are active and the
    cancels and reprices pick among all of them (queues of about resting/levels orders). O(n +
    resting).

    >>> setup, flow = deep_book(100, resting=5000)
    >>> len(setup)
    5000
    """
    resting, = _ints(resting=resting)
    if _flag_arg(spread, "spread"):
        return standard_mix(n, seed=seed, resting=resting, levels=levels, first_id=first_id)
    active = min(resting, 1000)
    return standard_mix(n, seed=seed, resting=active, levels=levels,
                        background=resting - active, first_id=first_id)


def _gen_market_maker(n, seed, makers, quotes, spread, take_prob, move_prob, first_id):
    n, makers, quotes, spread, first_id = _ints(n=n, makers=makers, quotes=quotes, spread=spread,
                                                first_id=first_id)
    take_prob, move_prob = _reals(take_prob=take_prob, move_prob=move_prob)
    _check_common(n, seed, first_id)
    if makers < 1 or quotes < 1 or spread < 1:
        raise ValueError("makers, quotes and spread must be >= 1")
    if not (0 <= take_prob and 0 <= move_prob and take_prob + move_prob < 0.9):
        raise ValueError("take_prob and move_prob must be >= 0 and sum below 0.9")
    half_window = 2048 + quotes + spread
    lo = MID - half_window + 64 + quotes + spread + 3   # the fair price stays in [lo, hi]
    hi = MID + half_window - 64 - quotes - spread - 3
    warm = makers * quotes * 4          # enough rows for every maker to have its quotes up
    # quotes up to spread + quotes + 1 ticks from a fair price >= lo; a taker 2 ticks beyond
    _check_span(MID - lo + spread + quotes + 3, f"spread={spread} and quotes={quotes}")
    total = warm + n
    _check_ids(first_id, total)         # at most one new id a row
    k = _k()
    cmds = np.zeros(total, dtype=COMMAND_DTYPE)
    out = k.out_views(cmds)
    run = _Run(k, 4 * makers * quotes + 1024)
    slots = np.full((makers, 2 * quotes), -1, np.int64)
    state = np.zeros(4, np.int64)
    state[2] = MID
    rng = np.random.default_rng(seed)
    while state[1] < total:
        c = min(_CHUNK, int(total - state[1]))
        # each quadruple of uniforms yields at most two rows; the move steps yield none
        k.market_maker_flow(run.handle, run.ev, total, makers, quotes, spread, take_prob,
                            move_prob, first_id, lo, hi, rng.random(4 * c), state, slots,
                            run.stats, *out)
    return cmds[:warm], cmds[warm:], run.close()


def market_maker_mix(n: int, *, seed: int = 1, makers: int = 10, quotes: int = 5,
                     spread: int = 2, take_prob: float = 0.02, move_prob: float = 0.01,
                     first_id: int = 1):
    """Generate ``n`` commands of market-maker flow; returns ``(setup, flow)``.

    ``makers`` each keep ``quotes`` orders a side at ``spread`` + j (+ maker % 3) ticks from a
    fair price that moves one tick with probability ``move_prob`` per step. Each step either
    moves the price, sends a taker IOC at the touch (``take_prob``), or replaces one quote:
    a cancel of the old quote (if still resting) and a new GTC order at the current price, which
    trades if a stale quote on the other side is now crossed. About 95% of orders end cancelled.
    ``setup`` is the first ``makers * quotes * 4`` generated commands (puts the quotes up). O(n).

    >>> setup, flow = market_maker_mix(1000, seed=3)
    >>> len(flow)
    1000
    """
    setup, flow, _ = _gen_market_maker(n, seed, makers, quotes, spread, take_prob, move_prob,
                                       first_id)
    return setup, flow


def _gen_sweep(n, seed, resting, levels, sweep_prob, sweep_levels, first_id):
    n, resting, levels, sweep_levels, first_id = _ints(
        n=n, resting=resting, levels=levels, sweep_levels=sweep_levels, first_id=first_id)
    sweep_prob, = _reals(sweep_prob=sweep_prob)
    _check_common(n, seed, first_id)
    if resting < 0 or levels < 2 or sweep_levels < 1 or not 0 <= sweep_prob <= 0.5:
        raise ValueError("need resting >= 0, levels >= 2, sweep_levels >= 1, 0 <= sweep_prob <= 0.5")
    _check_ids(first_id, resting + n)
    # the book within levels // 2 ticks; a sweeping IOC's limit 2 x 1.5 x sweep_levels beyond
    _check_span(levels // 2 + 3 * sweep_levels,
                f"levels={levels} and sweep_levels={sweep_levels}")
    k = _k()
    cmds = np.zeros(resting + n, dtype=COMMAND_DTYPE)
    out = k.out_views(cmds)
    run = _Run(k, 2 * resting + 4096)
    picks = k.Picks(resting + min(n, _CHUNK) + 16)
    state = np.zeros(4, np.int64)
    rng = np.random.default_rng(seed)
    k.resting_setup(run.handle, run.ev, resting, 0, levels, first_id, MID,
                    rng.random(2 * resting), state, *picks.arrays(), run.stats, *out)
    done = 0
    while done < n:
        c = min(_CHUNK, n - done)
        picks.reserve(int(state[0]) + c + 16)
        k.sweep_flow(run.handle, run.ev, c, resting, levels, sweep_prob, sweep_levels, 0.10,
                     first_id, MID, rng.random(4 * c), state, *picks.arrays(), run.stats, *out)
        done += c
    return cmds[:resting], cmds[resting:], run.close()


def sweep_burst(n: int, *, seed: int = 1, resting: int = 20_000, levels: int = 2_000,
                sweep_prob: float = 0.005, sweep_levels: int = 40, first_id: int = 1):
    """Generate ``n`` commands with sweeps; returns ``(setup, flow)``.

    ``setup``: ``resting`` orders over ``levels`` levels (both sides). ``flow``: passive GTC
    refills spread over the same levels, cancels of resting orders, and with probability
    ``sweep_prob`` a sweep sized to take k = ``sweep_levels`` x (0.5..1.5) levels of the starting
    book (times the book's size over ``resting``, 0.25..8): half IOCs whose limit lies 2k ticks
    through the touch, half market orders. A command is a cancel with probability 10% times the
    book's size over ``resting`` (0.25..8): the sweeps keep the book below its start, so with
    the defaults it holds about 12,000-15,000 orders and about 7% of the flow is cancels. The
    levels near the touch hold less than the starting book's average, so with the defaults an
    IOC takes a median of about 26 levels (6-60 for 80% of them) and a market order about 145
    (60-240). O(n + fills).

    >>> setup, flow = sweep_burst(1000, resting=2000, levels=200)
    >>> len(flow)
    1000
    """
    setup, flow, _ = _gen_sweep(n, seed, resting, levels, sweep_prob, sweep_levels, first_id)
    return setup, flow


# ----------------------------------------------------------------------------------------------
# Touch flows over a deep, wide book: the flow is drawn in NumPy (no book needed to choose it:
# cancels name ids from the last `recent` issued whether or not they still rest), and the
# statistics come from replaying setup + flow into a real book.
# ----------------------------------------------------------------------------------------------

# name -> (new GTC share, cancel share, market share); the three sum to 1
TOUCH_MIXES = {
    "wide_book": (0.50, 0.45, 0.05),
    "stale_cancel": (0.25, 0.70, 0.05),
    "market_heavy": (0.45, 0.25, 0.30),
}


def _wide_setup(resting, levels, first_id, rng):
    # `resting` orders, half a side, each at a uniform distance of 1..levels ticks from the mid,
    # qty 1..100. Far levels come first on each side so that every new level is the new best
    # (an append to the ladder): the book a session starts from, built in O(resting).
    half = resting // 2
    cmds = np.zeros(resting, dtype=COMMAND_DTYPE)
    dist = rng.integers(1, levels + 1, resting)
    qty = rng.integers(1, 101, resting)
    for s, sl in ((0, slice(0, half)), (1, slice(half, resting))):
        d = np.sort(dist[sl])[::-1]
        c = cmds[sl]
        c["side"] = s
        c["price"] = MID - d if s == 0 else MID + d
        c["qty"] = qty[sl]
    cmds["order_id"] = np.arange(first_id, first_id + resting, dtype=np.uint64)
    cmds["kind"] = 0
    cmds["ts_ns"] = np.arange(resting, dtype=np.int64)
    return cmds


def _touch_flow(n, resting, mix, band, recent, first_id, rng):
    new_p, cancel_p, _ = mix
    u = rng.random(n)
    kind = np.where(u < new_p, 0, np.where(u < new_p + cancel_p, 2, 1)).astype(np.uint8)
    is_new = kind != 2
    # ids are issued in sequence: setup first, then each new or market order of the flow
    issued_before = resting + np.cumsum(is_new) - is_new       # ids issued before command i
    last_id = first_id + issued_before - 1
    back = rng.integers(0, recent, n)
    stale = np.maximum(last_id - back, first_id)
    oid = np.where(is_new, first_id + issued_before, stale).astype(np.uint64)
    side = rng.integers(0, 2, n).astype(np.uint8)
    dist = rng.integers(1, band + 1, n)
    qty = rng.integers(1, 101, n)
    flow = np.zeros(n, dtype=COMMAND_DTYPE)
    flow["ts_ns"] = resting + np.arange(n, dtype=np.int64)
    flow["order_id"] = oid
    flow["kind"] = kind
    flow["side"] = np.where(kind == 2, 0, side)
    flow["price"] = np.where(kind == 0, np.where(side == 0, MID - dist, MID + dist), 0)
    flow["qty"] = np.where(kind == 2, 0, qty)
    return flow


def _replay_stats(setup, flow) -> dict:
    book = OrderBook(capacity=len(setup) + len(flow) + 1024)
    ev_s = book.process(setup)
    ev = book.process(flow)
    kinds = np.concatenate([ev_s["kind"], ev["kind"]])
    rej = ev["kind"] == 4
    both_kind = np.concatenate([setup["kind"], flow["kind"]])
    return {
        "orders": int(np.count_nonzero(both_kind <= 1)),
        "fills": int(np.count_nonzero(kinds == 1)),
        "cancelled": int(np.count_nonzero(kinds == 2)),
        "expired": int(np.count_nonzero(kinds == 3)),
        "cancels_not_found": int(np.count_nonzero(rej & (ev["reason"] == 6))),
        "rejected": int(np.count_nonzero(rej)),
        "resting_at_end": len(book),
        "levels_at_end": int(book.level_count(0) + book.level_count(1)),
        "state_hash": int(book.state_hash()),
        "compiled": False,
    }


def _gen_touch(mix_name, n, seed, resting, levels, band, recent, first_id):
    n, resting, band, recent, first_id = _ints(n=n, resting=resting, band=band, recent=recent,
                                               first_id=first_id)
    if levels is not None:
        levels, = _ints(levels=levels)
    _check_common(n, seed, first_id)
    if resting < 2 or band < 1 or recent < 1:
        raise ValueError("need resting >= 2, band >= 1 and recent >= 1")
    if levels is None:
        levels = max(resting // 5, 1)
    if levels < 1:
        raise ValueError("levels must be >= 1")
    _check_ids(first_id, resting + n)
    _check_span(max(levels, band), f"levels={levels} and band={band}")
    rng = np.random.default_rng(seed)
    setup = _wide_setup(resting, levels, first_id, rng)
    flow = _touch_flow(n, resting, TOUCH_MIXES[mix_name], band, recent, first_id, rng)
    return setup, flow, _replay_stats(setup, flow)


def touch_flow(n: int, mix: str = "wide_book", *, seed: int = 1, resting: int = 1_000_000,
               levels: int | None = None, band: int = 20, recent: int = 1000,
               first_id: int = 1):
    """A flow at the touch of a deep, wide book; returns ``(setup, flow)``.

    ``setup``: ``resting`` GTC orders, half a side, each at a uniform distance of 1..``levels``
    ticks from the mid (default ``levels`` = ``resting // 5`` a side: about 2.5 orders a level;
    1M orders give about 200k levels a side), qty 1..100, far levels first. ``flow`` (shares by
    ``mix``, one of :data:`TOUCH_MIXES`): new GTC orders of 1..100 lots within ``band`` ticks of
    the mid (passive), cancels of ids drawn uniformly from the last ``recent`` issued (many
    already filled or cancelled: those give REJECTED ORDER_NOT_FOUND, as a simulator's stale
    cancels do), and market orders of 1..100 lots on a random side. Drawn with NumPy in
    O(n + resting); the statistics come from replaying setup and flow into a real book.

    >>> setup, flow = touch_flow(1000, "stale_cancel", resting=2000)
    >>> len(setup), len(flow), int((flow["kind"] == 2).sum()) > 600
    (2000, 1000, True)
    """
    if mix not in TOUCH_MIXES:
        raise ValueError(f"unknown mix {mix!r}; choose from {', '.join(TOUCH_MIXES)}")
    setup, flow, _ = _gen_touch(mix, n, seed, resting, levels, band, recent, first_id)
    return setup, flow


# name -> (generator returning setup, flow, stats; default parameters)
_REGISTRY = {
    "standard": (_gen_standard, dict(resting=1000, levels=750, background=0, first_id=1)),
    "market_maker": (_gen_market_maker, dict(makers=10, quotes=5, spread=2, take_prob=0.02,
                                             move_prob=0.01, first_id=1)),
    "deep_book": (None, dict(resting=1_000_000, spread=False, levels=750, first_id=1)),
    "sweep": (_gen_sweep, dict(resting=20_000, levels=2_000, sweep_prob=0.005, sweep_levels=40,
                               first_id=1)),
}
_TOUCH_DEFAULTS = dict(resting=1_000_000, levels=None, band=20, recent=1000, first_id=1)
for _name in TOUCH_MIXES:
    _REGISTRY[_name] = (None, dict(_TOUCH_DEFAULTS))

WORKLOADS = tuple(_REGISTRY)


def max_messages(name: str, **params) -> int:
    """The largest ``n`` workload ``name`` (one of :data:`WORKLOADS`) can number with these
    parameters (default its own): its setup's and flow's order ids, from ``first_id`` on, must
    not pass 2**63 - 1 (larger, :func:`generate` raises ``ValueError`` naming ``first_id``).
    O(1).

    >>> max_messages("standard") == 2**63 - 1 - 1000
    True
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    # refused as generate() refuses them: a misspelt name was ignored (the default's figure
    # given for it), a string taken as its number
    p = _known_params(name, params)
    first_id, = _ints(first_id=p["first_id"])
    # the ids a workload may issue besides its n flow commands (see each generator's _check_ids)
    if name == "standard":
        before = sum(_ints(resting=p["resting"], background=p["background"]))
    elif name == "market_maker":
        makers, quotes = _ints(makers=p["makers"], quotes=p["quotes"])
        before = makers * quotes * 4
    else:                       # deep_book, sweep and the touch flows: the resting orders
        before, = _ints(resting=p["resting"])
    return 2**63 - first_id - before


def _known_params(name: str, params: dict) -> dict:
    """Workload ``name``'s defaults updated with ``params``; TypeError for a name it has not."""
    defaults = _REGISTRY[name][1]
    unknown = set(params) - set(defaults)
    if unknown:
        raise TypeError(f"workload {name!r} has no parameter(s) {sorted(unknown)}; "
                        f"it takes {sorted(defaults)}")
    return {**defaults, **params}


def generate(name: str, n: int, *, seed: int = 1, **params) -> Workload:
    """Generate workload ``name`` (one of :data:`WORKLOADS`) with ``n`` flow commands.

    Unknown parameter names raise ``TypeError``; parameters that would put a price at or below
    0 ticks (prices lie around :data:`MID`) or an order id past 2**63 - 1 raise ``ValueError``
    (every generator checks them). The returned :class:`Workload` records every parameter
    actually used. O(n + setup).

    >>> w = generate("market_maker", 500, seed=2)
    >>> w.name, len(w.flow), w.params["makers"]
    ('market_maker', 500, 10)
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    fn = _REGISTRY[name][0]
    p = _known_params(name, params)
    for k in ("take_prob", "move_prob", "sweep_prob"):
        if k in p:
            # recorded as the float the generator runs with: a Fraction was recorded as is,
            # and save() wrote a file load() refused ("not a matchcore workload")
            p[k], = _reals(**{k: p[k]})
    if name == "deep_book":
        # as deep_book() takes it: a string such as "False" was true here, and recorded as is
        p["spread"] = _flag_arg(p["spread"], "spread")
        p["resting"], = _ints(resting=p["resting"])
        active = p["resting"] if p["spread"] else min(p["resting"], 1000)
        background = 0 if p["spread"] else p["resting"] - active
        setup, flow, stats = _gen_standard(n, seed, active, p["levels"], background, p["first_id"])
    elif name in TOUCH_MIXES:
        setup, flow, stats = _gen_touch(name, n, seed, *p.values())
        if p["levels"] is None:
            p["levels"] = max(p["resting"] // 5, 1)
    else:
        setup, flow, stats = fn(n, seed, *p.values())
    return Workload(name, setup, flow, {"n": n, "seed": int(seed), **p}, stats)
