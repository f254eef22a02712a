"""Replay many tick files on a Dask cluster and merge what the workers return.

Each task replays one file (ITCH 5.0 or DBN MBO; or, with ``split``, one share of a file's books:
DBN instruments or ITCH stock locates) with the same compiled replay the serial command uses, and returns a
:class:`FileResult`: the stats, the symbol names, the sinks (top of book, trades, depth
snapshots as numpy arrays) and every final book as snapshot bytes with its state hash. The
client merges the shares of a split file and returns one result per file, in the order the files
were given: the same counters, trades, top-of-book records and books as :func:`replay_serial`.

>>> from matchcore.cluster.dask import replay_files          # doctest: +SKIP
>>> res = replay_files(["a.itch", "b.itch"], scheduler="local")  # doctest: +SKIP
>>> res.totals["messages"], res.files[0].book(1).state_hash()   # doctest: +SKIP

Pointing it at a real cluster: start ``dask scheduler`` on one machine and ``dask worker
tcp://SCHEDULER:8786`` on each worker (each with this package and its ``dbn`` extra installed,
and the files at the same paths, e.g. a shared filesystem), then pass
``scheduler="tcp://SCHEDULER:8786"``. ``"local"`` starts a LocalCluster of 2 worker processes on
this machine. Dask is imported only here; install it with ``pip install 'matchcore[dask]'``.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["FileResult", "ReplayResults", "TaskLostError", "detect_format", "replay_files",
           "replay_one", "replay_serial", "trade_count"]

_EXTRA = "pip install 'matchcore[dask]'"

# DBN counters counted before the instrument filter (equal in every share of a split file);
# every other numeric counter is counted only for kept books, so the shares add up.
_DBN_FILE_LEVEL = {"records", "messages", "counts", "other_rtypes", "bad_records",
                   "first_bad_offset", "bytes_skipped", "bad_actions", "bad_sides", "truncated",
                   "bytes_consumed", "last_ts", "instruments_dropped"}
# ITCH counters equal in every share of a split file (counted before the locate filter); every
# other numeric counter, unknown_refs and invalid_adds included, counts the share's own locates.
_ITCH_FILE_LEVEL = {"messages", "counts", "unknown_types", "bad_lengths", "bad_length_offsets",
                    "bytes_skipped", "truncated", "bytes_consumed", "last_ts"}


class TaskLostError(RuntimeError):
    """Every worker that ran a file's task died (killed, out of memory, ...) as many times as the
    scheduler allows (``distributed.scheduler.allowed-failures``). Names the file; the
    ``distributed.KilledWorker`` is its ``__cause__``. No result of any file is returned."""


def _require_dask():
    try:
        import distributed
    except ImportError as e:
        raise ImportError(f"replay on a Dask cluster needs dask.distributed: {_EXTRA}") from e
    return distributed


def detect_format(path, several: str = "replay_serial and replay_files take") -> str:
    """'dbn' for a DBN stream (plain, zstd or gzip'd), else 'itch' (plain or gzip'd). A native
    command file (magic ``MCCMD``) or a LOBSTER message CSV raises ValueError: read as ITCH it
    gave an empty, "truncated" replay; so does a file no replay takes (empty, other text; see
    :func:`matchcore._magic.detect_format`) and a pipe or FIFO, whose first bytes the
    detection would consume, and, as the replays refuse them, an empty path and one ending in
    a separator. ``several``: who takes the files, as the refusal names it (the command line
    names its own way)."""
    from matchcore._cliutil import path_arg, refuse_unusable_name
    from matchcore._magic import detect_format as _detect

    path = path_arg(path, "path")
    refuse_unusable_name(path, "path: ")
    path = Path(path)
    if path.exists() and not (path.is_file() or path.is_dir()):
        # (a path to nothing is left to the open below: FileNotFoundError, not "a pipe")
        # the bytes read to detect it are gone from a pipe or FIFO: its replay then started
        # inside the stream (lost messages, unknown references), or waited for a writer
        raise ValueError(f"{path} is a pipe or device: its format cannot be detected without "
                         f"consuming it; give fmt ('itch' or 'dbn')")
    fmt = _detect(path)
    if fmt in ("native", "lobster"):
        what = "a native command file" if fmt == "native" else "a LOBSTER message CSV"
        raise ValueError(f"{path} is {what}: {several} ITCH or DBN files (replay it by "
                         f"itself)")
    return fmt


@dataclass
class FileResult:
    """What the replay of one file leaves: stats, names, sinks and final books."""

    file: str
    format: str
    stats: dict
    symbols: dict                    # locate / book number -> name
    tob: np.ndarray
    trades: np.ndarray
    snapshots: np.ndarray
    books: dict                      # locate / book number -> OrderBook.snapshot() bytes
    hashes: dict                     # locate / book number -> state hash
    elapsed_s: float = 0.0
    worker: str = ""
    parts: int = 1
    # locate / book number -> name when its first order (ITCH) or record (DBN) arrived
    # (Replayer.first_names, DbnReplayer.first_names), which a name in symbols selects by;
    # instruments (DBN): book number -> instrument id, which a number selects by
    first_names: dict = field(default_factory=dict)
    instruments: dict = field(default_factory=dict)
    # DBN: book number -> publisher id (a file of several publishers has a book per instrument
    # and publisher); ITCH: none
    publishers: dict = field(default_factory=dict)
    # DBN: the metadata header's dataset, schema, version and ts_out (as one file's summary.json
    # has them); ITCH: none
    metadata: dict = field(default_factory=dict)
    # ITCH, file-level (every share sees them whole): the system event messages and
    # {locate: (state, reason, ts)} from the latest trading action of each locate; DBN: none
    system_events: np.ndarray | None = None
    trading_state: dict = field(default_factory=dict)

    def book(self, symbol):
        """The final book of a locate (book number, an int) or of a symbol name as a new
        OrderBook. A string is read as the file's own replayer's ``book()`` reads it: a name
        first (ITCH: also a label ``NAME@locateN``; a name several books carry raises
        ValueError naming them), else a number, an ITCH locate or a DBN instrument id;
        anything else (a float, a bool, bytes) raises TypeError. KeyError, naming the file,
        when it has no such book. O(orders + books).

        >>> res.files[0].book("AAPL").best_bid()                          # doctest: +SKIP
        """
        from matchcore import OrderBook

        # recording events, as the replayer's own book does for orders sent to it: restored
        # without, a what-if order traded with no event to read
        return OrderBook.from_snapshot(self.books[self._book_number(symbol)])

    def _book_number(self, symbol) -> int:
        # the replayers' rules (itch.Replayer.book, DbnReplayer.book) over the names the result
        # carries: a name was a bare KeyError here, and a bool or a float found the book of
        # the number it equals
        from matchcore._symfilter import LABEL, book_symbol, plain_number

        itch_file = self.format == "itch"
        symbol = book_symbol(symbol, "locate number" if itch_file else "book number")
        missing = KeyError(f"no book for symbol {symbol!r} in {self.file}")
        if isinstance(symbol, int):
            if symbol in self.books:
                return symbol
            raise missing
        label = LABEL.fullmatch(symbol) if itch_file else None
        if label is not None:
            L = int(label.group(2))
            if str(self.symbols.get(L)).strip() == label.group(1) and L in self.books:
                return L
            raise missing
        # ITCH names are compared without surrounding spaces (as labelled); DBN ones as given,
        # then without them
        for name in ((symbol.strip(),) if itch_file else dict.fromkeys((symbol,
                                                                         symbol.strip()))):
            more = [L for L, n in self.symbols.items()
                    if (n.strip() if itch_file else n) == name and L in self.books]
            if len(more) > 1:
                what = (", ".join(f"{name}@locate{L}" for L in more) if itch_file else
                        ", ".join(f"book {L} (instrument {self.instruments.get(L)})"
                                  for L in more))
                raise ValueError(f"symbol {symbol!r} is carried by several books of "
                                 f"{self.file}: {what}")
            if more:
                return more[0]
        number = plain_number(symbol.strip())
        if number.isascii() and number.isdigit():
            want = int(number)
            if itch_file:
                if want in self.books:
                    return want
            else:
                more = [L for L, iid in self.instruments.items()
                        if iid == want and L in self.books]
                if len(more) > 1:
                    raise ValueError(f"instrument {want} has several books in {self.file} "
                                     f"(one per publisher): give the book number, one of "
                                     f"{', '.join(map(str, more))}")
                if more:
                    return more[0]
        raise missing


@dataclass
class ReplayResults:
    """One :class:`FileResult` per file (in the order given) and the counters summed."""

    files: list
    elapsed_s: float
    totals: dict = field(default_factory=dict)


def replay_one(path, fmt: str | None = None, *, partition=None, **options) -> FileResult:
    """Replay one file (the unit of work of a task; also what the serial run does per file).

    ``fmt`` 'itch' or 'dbn' (None: detected); ``options`` are the replayer's (symbols,
    snapshot_every, snapshot_every_ns, snapshot_depth, ...); ``partition=(k, n)`` keeps only a
    share of the file's books: DBN instruments with ``instrument_id % n == k``, ITCH stock
    locates with ``locate % n == k`` (``0 <= k < n``).
    O(bytes of the file).
    """
    from matchcore._cliutil import path_arg, refuse_unusable_name

    path = path_arg(path, "path")
    refuse_unusable_name(path, "path: ")
    path = Path(path)
    fmt = fmt or detect_format(path)
    t0 = time.perf_counter()
    options = _file_options(path, fmt, partition, options)
    if fmt == "dbn":
        from matchcore.feeds.dbn import replay_dbn

        r = replay_dbn(path, **options)
    else:
        import matchcore.itch as itch

        r = itch.replay_file(path, **options)
    elapsed = time.perf_counter() - t0
    books = r.books
    meta = r.metadata if fmt == "dbn" else None
    return FileResult(file=str(path), format=fmt, stats=r.stats, symbols=r.symbols,
                      tob=r.tob(), trades=r.trades(), snapshots=r.snapshots(),
                      books={k: b.snapshot() for k, b in books.items()},
                      hashes={k: b.state_hash() for k, b in books.items()}, elapsed_s=elapsed,
                      worker=f"pid {os.getpid()}",
                      first_names=r.first_names,
                      instruments=r.instruments if fmt == "dbn" else {},
                      publishers=r.publishers if fmt == "dbn" else {},
                      metadata={"dataset": meta.dataset, "schema": meta.schema,
                                "version": meta.version, "ts_out": meta.ts_out}
                      if meta is not None else {},
                      system_events=r.system_events if fmt == "itch" else None,
                      trading_state=r.trading_state if fmt == "itch" else {})


def _file_options(path, fmt: str, partition, options: dict) -> dict:
    # The keywords of the format's file replay for one task (checked by _check_options too).
    options = dict(options)
    if fmt == "dbn":
        if options.pop("infer_lengths", False):
            raise ValueError(f"{path}: infer_lengths applies to ITCH files, not DBN")
    elif fmt != "itch":
        raise ValueError(f"unknown format {fmt!r} (itch or dbn)")
    elif options.get("record_l2") is not None:
        from matchcore._core import _flag_arg

        if _flag_arg(options["record_l2"], "record_l2"):
            # each task recorded the L2 changes, and the result dropped them
            raise ValueError(f"{path}: record_l2: a FileResult has no L2 sink, so the L2 "
                             f"records would be lost; replay the file with "
                             f"itch.replay_file(path, record_l2=True)")
    if partition is not None:
        if options.get("symbols") is not None:
            raise ValueError("split and a symbols filter cannot be combined")
        # by number in the replayer: a share given as locate numbers in ``symbols`` also kept
        # the stocks whose names are numbers of another share (a stock named "2" at locate 1)
        options["partition"] = partition
    return options


# A name no ITCH stock carries: longer than the 8-byte Stock field, no number, no book label.
_NO_ITCH_STOCK = "no ITCH stock locate"


def _task_options(options: dict, fmt: str, formats) -> dict:
    """The options of a task of format ``fmt`` in a run over files of ``formats``.

    A number in ``symbols`` beyond the ITCH locates (a uint16) is a DBN instrument id: in a run
    that has DBN files it selects their books, and no book of the ITCH files, as a name one
    file lacks does. The ITCH tasks get the selection without it (their replayer refuses it:
    among ITCH files alone it selects nothing), and when nothing is left a name no ITCH stock
    carries, so that they keep no book. Any other selection goes to every task as given."""
    from matchcore._symfilter import ITCH_LOCATES, symbol_number

    symbols = options.get("symbols")
    if fmt != "itch" or "dbn" not in formats or symbols is None or \
            isinstance(symbols, (str, bytes, bytearray)) or not hasattr(symbols, "__iter__"):
        return options

    def beyond(given) -> bool:
        number = symbol_number(given)
        return number is not None and number > ITCH_LOCATES[0]

    symbols = list(symbols)
    kept = [s for s in symbols if not beyond(s)]
    if len(kept) == len(symbols):
        return options
    return {**options, "symbols": kept or [_NO_ITCH_STOCK]}


def _check_options(tasks, options) -> None:
    # A task's replayer checks its options only on the worker: a bad one would fail every task
    # there, after a cluster was started. The same checks run here first, once per format, by
    # the code the task runs (same exception, same message), without opening the file.
    done = set()
    formats = {f for _, _, f, _ in tasks}
    for _, p, f, part in tasks:
        if f in done:
            continue
        done.add(f)
        opts = _file_options(p, f, part, _task_options(options, f, formats))
        if f == "dbn":
            from matchcore.feeds.dbn import _file_replayer
        else:
            from matchcore.itch import _file_replayer
        _file_replayer(**opts)


def _by_time(parts: list[np.ndarray], then_locate: bool = False) -> np.ndarray:
    from matchcore._padding import zero_padding

    # numpy's copies leave the records' padding uninitialised: zeroed, so that the merged
    # arrays hold (and save) the same bytes as the serial replay's
    a = np.concatenate(parts)
    if not len(a):
        return zero_padding(a)
    # Each share's records are in file order. The merge key is the latest time seen so far in
    # the share, not the record's own: a file whose timestamps step back (damage, a feed not
    # sorted by time) keeps every book's records in file order, as the serial replay has them.
    key = np.concatenate([np.maximum.accumulate(p["ts"]) for p in parts if len(p)])
    if then_locate:     # snapshots: the books of one boundary are in book-number order
        return zero_padding(a[np.lexsort((a["locate"], key))])
    return zero_padding(a[np.argsort(key, kind="stable")])


def merge_parts(parts: list[FileResult]) -> FileResult:
    """One file's result from the results of its shares (see ``partition``).

    File-level counters (and the names, first names, instruments, publishers, metadata,
    system events and trading states, which every share sees whole) are taken from the first
    share (all are equal), book-level ones summed (each share counts its own locates or
    instruments); books and hashes are united; sink
    records are merged by time (stable: file order within a book, also where a file's
    timestamps step back, and across books whenever their timestamps differ)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    stats = dict(first.stats)
    file_level = _DBN_FILE_LEVEL if first.format == "dbn" else _ITCH_FILE_LEVEL
    for key, val in first.stats.items():
        if key in file_level or not isinstance(val, int):
            continue
        stats[key] = sum(p.stats[key] for p in parts)
    books, hashes = {}, {}
    for p in parts:
        books.update(p.books)
        hashes.update(p.hashes)
    return FileResult(file=first.file, format=first.format, stats=stats, symbols=first.symbols,
                      tob=_by_time([p.tob for p in parts]),
                      trades=_by_time([p.trades for p in parts]),
                      snapshots=_by_time([p.snapshots for p in parts], then_locate=True),
                      books=dict(sorted(books.items())), hashes=dict(sorted(hashes.items())),
                      elapsed_s=max(p.elapsed_s for p in parts),
                      worker=", ".join(sorted({p.worker for p in parts})),
                      parts=len(parts), first_names=first.first_names,
                      instruments=first.instruments, publishers=first.publishers,
                      metadata=first.metadata,
                      system_events=first.system_events,
                      trading_state=first.trading_state)


def trade_count(trades: np.ndarray) -> int:
    """The executions in a replay's trade sink records (``TRADE_DTYPE``), each counted once
    (:func:`matchcore.itch.execution_mask`: a DBN execution is a T record and one F per resting
    order filled; an F counts only in a book with no T records). O(records).

    >>> from matchcore.itch import TRADE_DTYPE
    >>> t = np.zeros(3, TRADE_DTYPE); t["kind"] = [b"T", b"F", b"F"]
    >>> trade_count(t), trade_count(t[1:])
    (1, 2)
    """
    from matchcore.itch import execution_mask

    return int(execution_mask(trades).sum())


def _totals(files: list[FileResult]) -> dict:
    keys = ("messages", "open_orders", "books", "unknown_refs", "duplicate_refs",
            "invalid_adds", "bad_lengths", "bad_records", "bytes_consumed")
    out = {"files": len(files)}
    for k in keys:
        vals = [f.stats[k] for f in files if isinstance(f.stats.get(k), int)]
        if vals:
            out[k] = sum(vals)
    out["trades"] = sum(trade_count(f.trades) for f in files)     # executions, once each
    out["truncated_files"] = sum(1 for f in files if f.stats.get("truncated"))
    return out


# Every share reads the whole file and keeps a 1/split of its books, so split N reads each file
# N times: beyond the cores of a cluster it only adds reads, and the client builds and tracks
# one future per share (split 1000000 submitted a million tasks per file and sat there).
MAX_SPLIT = 1024


def _tasks(paths, split: int, fmt):
    if type(split) is bool or not isinstance(split, (int, np.integer)):
        raise TypeError(f"split must be an integer, not {split!r}")
    if split < 1:
        raise ValueError("split must be >= 1")
    if split > MAX_SPLIT:
        raise ValueError(f"split must be at most {MAX_SPLIT}, not {split}: each share reads the "
                         f"whole file, so more shares than the cluster has cores only read it "
                         f"again")
    split = int(split)
    out = []
    for i, p in enumerate(paths):
        f = fmt or detect_format(p)
        if split == 1:
            parts = [None]
        elif f == "dbn":
            parts = [(k, split) for k in range(split)]
        else:
            parts = [(k, split) for k in range(split)]
        out.extend((i, str(p), f, part) for part in parts)
    return out


def _check(paths, options):
    if isinstance(paths, (str, bytes, os.PathLike)):
        # iterated, "day0.itch" was the files "d", "a", "y", ...: "no such file: d"
        raise TypeError(f"paths is a list of files, not a single path ({paths!r}): "
                        f"write [{paths!r}]")
    from matchcore._cliutil import first_repeat, path_arg, refuse_unusable_name

    paths = [path_arg(p, "paths") for p in paths]
    for p in paths:
        refuse_unusable_name(p, "paths: ")
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no files to replay")
    for p in paths:
        if not p.exists():
            raise ValueError(f"no such file: {p}")
        if p.is_dir():
            # with fmt given nothing opened it here: a cluster was started (or a task sent)
            # for the worker to fail on "[Errno 21] Is a directory", named by no argument
            raise ValueError(f"paths: {p} is a directory, not a file")
    repeat = first_repeat(paths)
    if repeat is not None:
        a, b = repeat
        again = "" if str(a) == str(b) else f" (the same file as {a})"
        raise ValueError(f"paths: {b} is given twice{again}: its replay would be counted twice "
                         f"in the totals")
    # on_chunk too: run on a worker, its calls (a ReplayMetrics.update, a counter) happened in
    # another process, unseen by the caller
    for hook, what in (("callback", "a callback"), ("on_chunk", "an on_chunk hook")):
        if options.get(hook) is not None:
            raise ValueError(f"{what} cannot run on a cluster worker")
    if "partition" in options:
        raise TypeError("partition is given to each task by split, not as an option")
    if "symbols" in options:
        # checked once per format, then given to every task: a generator served the first
        from matchcore._symfilter import once_listed

        options["symbols"] = once_listed(options["symbols"])
    return paths


def _refuse_own_descriptors(paths, way: str = "replay it with replay_serial, in this process"
                            ) -> None:
    # /dev/fd/63 (bash's <(...)), /dev/stdin, /proc/self/fd/N name a descriptor of this
    # process: a worker process opening the same name gets its own descriptor of that number,
    # which is no such file or, worse, one of the worker's own files read as market data.
    # ``way``: what to do instead, as the caller names it (the command line: without --dask)
    own = (f"/proc/{os.getpid()}/fd/", "/proc/self/fd/", "/dev/fd/")
    for p in paths:
        a = os.path.abspath(p)
        if a.startswith(own) or a in ("/dev/stdin", "/dev/stdout", "/dev/stderr"):
            raise ValueError(f"{p} is a descriptor of this process (a pipe from <(...) or a "
                             f"redirect): a worker cannot open it; {way}, or "
                             f"write it to a file or a named FIFO (mkfifo)")


def _collect(paths, tasks, results) -> list:
    # Tasks were made file by file, the shares of a file in partition order.
    grouped: dict[int, list] = {i: [] for i in range(len(paths))}
    for (i, _, _, _), res in zip(tasks, results):
        grouped[i].append(res)
    return [merge_parts(grouped[i]) for i in range(len(paths))]


def _check_split(split: int, tasks, options) -> None:
    if split == 1:
        return
    for _, p, _, _ in tasks:
        if not (Path(p).is_file() or Path(p).is_dir()):
            # each share reads the whole file: from a FIFO the first took the stream and the
            # others another writer's, none, or (read at once) a part each, silently
            raise ValueError(f"{p} is a pipe or device: split reads a file once per share, and "
                             f"a pipe gives its stream once; replay it without split")
    # ITCH first: the DBN advice (snapshot_every_ns) was refused next for an ITCH file
    if (options.get("snapshot_every") or options.get("snapshot_every_ns")) \
            and any(f == "itch" for _, _, f, _ in tasks):
        raise ValueError("split: depth snapshots of ITCH files are taken in the order the books "
                         "changed, which the shares cannot reproduce; split without snapshots")
    if options.get("snapshot_every"):
        raise ValueError("split: give snapshot_every_ns (time), not snapshot_every (records): "
                         "each share of a DBN file counts only its own instruments' records")
    if options.get("symbols") is not None:
        raise ValueError("split and a symbols filter cannot be combined")


def _check_progress(progress) -> None:
    from matchcore._args import check_callable

    check_callable(progress, "progress", "done, total")


def replay_serial(paths, *, fmt: str | None = None, split: int = 1, progress=None,
                  **options) -> ReplayResults:
    """The same work as :func:`replay_files` in this process, one task after the other (the
    baseline the cluster run is compared with). O(total bytes)."""
    _check_progress(progress)
    paths = _check(paths, options)
    tasks = _tasks(paths, split, fmt)
    _check_split(split, tasks, options)
    # as replay_files: an option one of the formats refuses, before the first file (whole
    # files of the other format were replayed first, then thrown away)
    _check_options(tasks, options)
    t0 = time.perf_counter()
    results = []
    formats = {f for _, _, f, _ in tasks}
    for n, (_, p, f, part) in enumerate(tasks, 1):
        results.append(replay_one(p, f, partition=part,
                                  **_task_options(options, f, formats)))
        if progress is not None:
            progress(n, len(tasks))
    files = _collect(paths, tasks, results)
    return ReplayResults(files=files, elapsed_s=time.perf_counter() - t0, totals=_totals(files))


#: The most worker processes (or threads) of a LocalCluster started here: each is a process of
#: this machine (a scheduler given by address has the workers it has, unlimited).
MAX_LOCAL_WORKERS = 256


def _check_workers(workers) -> None:
    # a LocalCluster of 0 workers starts, takes the tasks and never runs them: a hang
    # (a numpy integer is one, as for split: "must be an integer, not np.int64(1)")
    if type(workers) is bool or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, not {workers!r}")
    if workers > MAX_LOCAL_WORKERS:
        # workers=10**6 set out to start a million processes on this machine
        raise ValueError(f"workers must be at most {MAX_LOCAL_WORKERS} for the LocalCluster "
                         f"started here, not {workers}: for more, start a cluster and give "
                         f"its scheduler's address")


def _local_cluster_options(scheduler, workers, processes):
    """``workers`` and ``processes`` checked, with their defaults (2, True) for a LocalCluster
    started here; given for any other ``scheduler`` they are refused: its workers are its own
    (taken, they were ignored)."""
    from matchcore._core import _flag_arg
    if processes is not None:
        processes = _flag_arg(processes, "processes")   # before a cluster is started
    if scheduler in (None, "local"):
        workers = 2 if workers is None else workers
        _check_workers(workers)
        return workers, True if processes is None else processes
    given = [n for n, v in (("workers", workers), ("processes", processes)) if v is not None]
    if given:
        where = (f"the scheduler at {scheduler}" if isinstance(scheduler, str)
                 else f"a {type(scheduler).__name__} given")
        raise ValueError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to "
                         f"scheduler='local' (the LocalCluster started here), not to {where}, "
                         f"whose workers are its own")
    return workers, processes


def connect(scheduler="local", *, workers: int | None = None, processes: bool | None = None):
    """A ``distributed.Client``: ``"local"`` starts a LocalCluster (``workers`` single-threaded
    worker processes, default 2, at most :data:`MAX_LOCAL_WORKERS`, or threads with
    ``processes=False``), which closing the client closes too; an address such as
    ``"tcp://host:8786"`` connects to a running scheduler (``workers`` and ``processes`` are
    then refused). Close it when done."""
    workers, processes = _local_cluster_options(scheduler, workers, processes)
    if isinstance(scheduler, str) and not scheduler.strip():
        # Dask's own word for it was "missing port number in address ''"
        raise ValueError(f"scheduler must be 'local' or a scheduler address such as "
                         f"tcp://host:8786, not {scheduler!r}")
    distributed = _require_dask()
    if scheduler in (None, "local"):
        # Worker processes talk over the loopback interface only; threads use in-process comms.
        where = {"host": "127.0.0.1"} if processes else {}
        # the client starts the cluster itself, and so owns it: client.close() closes it too
        # (made apart and handed over, it outlived the client, its scheduler and worker
        # processes running until the interpreter exited); a client that cannot connect to it
        # closes it before raising
        saved = dict(os.environ)
        try:
            return _signals_held(lambda: distributed.Client(
                n_workers=workers, threads_per_worker=1, processes=processes,
                dashboard_address="127.0.0.1:0", **where))
        finally:
            # a Nanny sets its workers' environment in this process's os.environ before it
            # spawns them (PYTHONHASHSEED=6640, OMP_NUM_THREADS=1, MALLOC_TRIM_THRESHOLD_...),
            # and left it there: every later subprocess of the caller's (and of a test
            # suite's) inherited a fixed hash seed and one-thread math libraries
            _environ_back(saved)
    _check_address(scheduler)
    if _refused_fast(scheduler):
        _answers_in_time(scheduler)
    return distributed.Client(scheduler, timeout=f"{CONNECT_WAIT_S}s")


# Dask's transports addressed as HOST:PORT over TCP (the websocket ones too: a scheduler started
# with --protocol ws), whose port can be checked and whose refusal a TCP probe tells at once.
_HOST_PORT_TRANSPORTS = ("tcp", "tls", "ws", "wss")


def _check_address(scheduler) -> None:
    """``ValueError`` naming ``scheduler`` for a TCP or TLS address whose port no scheduler can
    listen on: none, not a number, or outside 1..65535. Given to the client, ``:x`` failed in
    Python's words ("invalid literal for int()"), ``:-1`` waited 20 s to say "Timed out" and
    ``:70000`` connected to port 4464 (taken modulo 65536). The websocket transports (``ws``,
    ``wss``) take HOST:PORT alike; other transports are the client's. A scheme Dask has no
    transport for (``http://``), one whose transport cannot connect here (``ucx://`` without
    its package) and a malformed ``inproc://`` address are refused naming the address."""
    if not isinstance(scheduler, str):
        return
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        proto, loc = parse_address(scheduler)
    except ValueError:
        return

    def refuse(why):
        raise ValueError(f"scheduler {scheduler!r} is not a Dask scheduler address: {why}")

    from distributed.comm import registry

    try:
        backend = registry.get_backend(proto)
    except ValueError:
        # the client's words named neither the address nor the option it came from
        # ("unknown address scheme 'http' (known schemes: [...])")
        refuse(f"unknown scheme {proto!r} (Dask's: {', '.join(sorted(registry.backends))})")
    try:
        backend.get_connector()
    except Exception as e:      # (whatever a transport's own constructor raises)
        # a transport registered but unusable here: ucx:// of recent distributed versions
        # (moved to distributed-ucxx) raised a TypeError inside the client, a traceback
        refuse(f"Dask's {proto!r} transport cannot connect from here ({type(e).__name__}: "
               f"{e})")
    if proto == "inproc" and loc.count("/") != 2:
        # ("not enough values to unpack (expected 3, got 1)", the client's words)
        refuse("an inproc address is inproc://HOST/PID/N, a scheduler in this process")
    if proto not in _HOST_PORT_TRANSPORTS:
        return

    port_text = loc.rpartition(":")[2]
    try:
        _, port = parse_host_port(loc)
    except ValueError as e:
        if str(e).startswith("missing port"):
            refuse(f"no port ({proto}://HOST:PORT)")
        if not port_text.isdecimal():
            refuse(f"port {port_text!r} is not a number in 1..65535")
        refuse(str(e))
    if not 1 <= port <= 65535:
        refuse(f"port {port_text!r} is not a number in 1..65535")


def _signals_held(start):
    """``start()`` (a client that starts its LocalCluster, or a close returning None) with
    SIGINT, SIGTERM and SIGHUP held until it returns (see :func:`matchcore._signals.held`);
    when a signal held raises (Ctrl-C's KeyboardInterrupt) the client returned, and the
    cluster it owns, are closed first.

    Interrupted while the cluster started, the client was never made and nothing closed the
    half-started cluster: its workers went on starting, and Dask's exit hook then failed on
    them with a traceback. A start takes seconds; the signal waits that long."""
    from matchcore._signals import held

    return held(start, on_raise=lambda client: client.close())


def _environ_back(saved: dict) -> None:
    """Put back in ``os.environ`` every variable that differs from ``saved``: those added
    since are removed, those changed get their old value."""
    for name in [name for name in os.environ if name not in saved]:
        del os.environ[name]
    for name, value in saved.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _refused_fast(scheduler) -> bool:
    # Dask retries a refused connection until its timeout (20 s) and then says "timed out":
    # a scheduler not running, a wrong port, a host name that names no host. One TCP probe
    # tells a refusal (nothing listens) or a name without an address at once; anything else
    # (no answer to the probe, a name service failing for now, another transport) is left to
    # the client and its timeout. True when the connection was taken: something listens
    # there, and _answers_in_time() sees whether it answers.
    import socket

    if not isinstance(scheduler, str):
        return False
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        proto, loc = parse_address(scheduler)
        if proto not in _HOST_PORT_TRANSPORTS:
            return False
        host, port = parse_host_port(loc)
    except (ValueError, TypeError):
        return False
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except ConnectionRefusedError as e:
        raise OSError(f"cannot connect to the Dask scheduler at {scheduler}: connection refused "
                      f"(is `dask scheduler` running there, on that port?)") from e
    except socket.gaierror as e:
        if e.errno not in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            return False
        raise OSError(f"cannot connect to the Dask scheduler at {scheduler}: no address for the "
                      f"host {host!r} ({e.strerror})") from e
    except OSError:
        return False


#: Seconds a scheduler address is waited for: to take the connection, then to answer it.
CONNECT_WAIT_S = 20.0


def _answers_in_time(scheduler) -> None:
    """Dask's own connection and handshake to ``scheduler``, an address whose port took a
    TCP connection (:func:`_refused_fast`), given :data:`CONNECT_WAIT_S` seconds in all;
    ``TimeoutError`` naming the address when it has not answered by then, ``ConnectionError``
    when what answers is no Dask scheduler (another service, :func:`_not_a_scheduler`; a
    Dask worker or nanny, which its ``identity`` names). Any other failure is left to the
    client, which meets it again and says it in its own words.

    The client's timeout bounds only the connection: its handshake then waits for the
    scheduler's reply for ever. A scheduler stopped or hung (SIGSTOP, a paused VM), or a port
    forward whose far end is gone, takes the connection from the kernel and never answers,
    and the replay hung before its first task. The connection is closed again; the client
    makes its own (the scheduler has just answered)."""
    import asyncio
    import threading

    if not isinstance(scheduler, str):
        return
    from distributed.comm import connect as dask_connect
    from distributed.security import Security

    # what the client connects with (its Security from the configuration: TLS certificates)
    args = Security().get_connection_args("client")
    outcome: list = []
    identity: list = []

    async def probe():
        comm = await dask_connect(scheduler, timeout=CONNECT_WAIT_S, **args)
        try:
            identity.append(await _identity(comm))
        finally:
            await comm.close()

    def run():
        try:
            # (no answer: wait_for cancels the handshake and the loop's end closes the socket)
            asyncio.run(asyncio.wait_for(probe(), CONNECT_WAIT_S))
            outcome.append(None)
        except BaseException as e:      # handed to the caller's thread
            outcome.append(e)

    # a thread of its own: the caller may run an event loop already (a notebook), in which
    # asyncio.run() refuses to start another
    t = threading.Thread(target=run, name="matchcore-dask-connect", daemon=True)
    t.start()
    t.join()
    err = outcome[0] if outcome else None
    if isinstance(err, (TimeoutError, asyncio.TimeoutError)):
        raise TimeoutError(f"cannot connect to the Dask scheduler at {scheduler}: no answer "
                           f"within {CONNECT_WAIT_S:g} s (a scheduler stopped or hung, a "
                           f"network dropping the connection, or another service on that "
                           f"port)") from err
    if err is None and identity:
        _refuse_other_dask_server(scheduler, identity[0])
    why = _not_a_scheduler(err)
    if why:
        # The client met the same bytes and said it in words that named neither the address
        # nor the cause: a service that speaks first (a NATS broker, SSH) had its greeting
        # read as a frame length, a MemoryError ("Unable to allocate 7.20 EiB") that the
        # command reported as "out of memory"; others gave struct.error or "Stream is closed".
        raise ConnectionError(f"cannot connect to the Dask scheduler at {scheduler}: what "
                              f"answers on that port is not a Dask scheduler ({why}): another "
                              f"service listens there (a NATS broker, SSH, ...), or a scheduler "
                              f"that takes tls:// was given as tcp://") from err


async def _identity(comm) -> dict | None:
    """The server's answer to Dask's ``identity`` request (every Dask server takes it without
    arguments: scheduler, worker, nanny), None when it gives none."""
    try:
        await comm.write({"op": "identity", "reply": True})
        reply = await comm.read()
    except Exception:
        return None
    return reply if isinstance(reply, dict) else None


def _refuse_other_dask_server(scheduler, identity) -> None:
    """``ConnectionError`` for the address of a Dask worker or nanny given as the scheduler's:
    the client's first request failed in the worker (``Worker.identity() got an unexpected
    keyword argument 'n_workers'``), a traceback from the command. Other servers are left to
    the client."""
    kind = identity.get("type")
    if kind == "Worker":
        own = identity.get("scheduler")
        what = "a Dask worker's, not its scheduler's" + (
            f" (the worker's scheduler is {own})" if isinstance(own, str) and own else "")
    elif kind == "Nanny":
        what = "a Dask nanny's (a worker's process manager), not the scheduler's"
    else:
        return
    raise ConnectionError(f"cannot connect to the Dask scheduler at {scheduler}: that address "
                          f"is {what}: give the scheduler's address (tcp://HOST:8786 by "
                          f"default)")


def _not_a_scheduler(err) -> str | None:
    """How Dask's handshake with a port that took the connection failed, when that failure
    says the other end does not speak Dask's protocol; None for anything else (a timeout, a
    TLS certificate refused), which keeps its own words."""
    import struct

    from distributed.comm.core import CommClosedError, FatalCommClosedError

    if err is None or isinstance(err, FatalCommClosedError):
        return None
    if isinstance(err, CommClosedError):
        # (connection failures before the handshake are retried by Dask until the timeout;
        # a closed stream that ends the connect comes from the handshake)
        return "it closed the connection at Dask's handshake"
    if isinstance(err, (MemoryError, struct.error, ValueError, TypeError, KeyError,
                        IndexError)):
        # frame counts and lengths taken from another protocol's bytes, or a reply that
        # msgpack cannot read or that holds no handshake
        return "its reply is no Dask handshake"
    return None


#: Seconds a replay waits for a cluster to have a worker before it fails (TimeoutError): the
#: tasks of a scheduler without workers were taken and never run, and the replay waited for ever.
WORKER_WAIT_S = 20.0


def _wait_for_a_worker(client, scheduler, distributed) -> None:
    where = scheduler if isinstance(scheduler, str) else client.scheduler.address
    try:
        if client.scheduler_info().get("workers"):
            return
        client.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except (TimeoutError, distributed.TimeoutError) as e:
        raise TimeoutError(f"the Dask cluster at {where} has no workers: none joined within "
                           f"{WORKER_WAIT_S:g} s (start one with `dask worker {where}`)") from e
    except Exception as e:
        if client.status == "running":
            raise
        # a client of the caller's whose scheduler went away before the call (killed,
        # restarted, the network): after Dask's reconnection attempts this was its
        # internals' "ConnectionPool is closed" (RuntimeError) or "ConnectionPool closing."
        raise ConnectionError(f"the connection to the Dask scheduler at {where} is lost (the "
                              f"client is {client.status}): no task was sent; connect a new "
                              f"client, or give the scheduler's address") from e


class _WorkerWatch:
    """A thread that cancels the replay's tasks when the cluster has had no worker for
    :data:`WORKER_WAIT_S` seconds while they wait; ``expired`` then says so (the message of
    the TimeoutError the replay raises).

    A task whose only worker died (a worker without a nanny killed, its machine gone), or
    whose result was lost with it before the client fetched it, goes back to the scheduler
    and waits for another worker; when none joined, the replay waited for ever. The workers
    are asked for once a second."""

    def __init__(self, client, where: str, futures, files):
        import threading

        self.client, self.where, self.futures = client, where, futures
        # the file of each task not returned yet, for the message
        self.left = {fut.key: f for fut, f in zip(futures, files)}
        self.expired = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="matchcore-dask-workers",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        no_worker_since = None
        while not self._stop.wait(1.0):
            try:
                workers = self.client.nthreads()
            except Exception:
                continue        # a client that lost its scheduler: its futures say so
            now = time.monotonic()
            if workers:
                no_worker_since = None
            elif no_worker_since is None:
                no_worker_since = now
            elif now - no_worker_since >= WORKER_WAIT_S:
                files = ", ".join(sorted(set(dict(self.left).values())))
                self.expired = (f"the Dask cluster at {self.where} has had no workers for "
                                f"{WORKER_WAIT_S:g} s while the replays of {files} waited "
                                f"(its workers died or left), so no results are returned; "
                                f"start one with `dask worker {self.where}`")
                try:
                    self.client.cancel(self.futures)
                except Exception:
                    pass
                return

    def done(self, fut) -> None:
        self.left.pop(fut.key, None)

    def stop(self) -> None:
        self._stop.set()
        # (a question to a scheduler gone can take its connect timeout: not waited for)
        self._thread.join(timeout=2.0)


def _quiet_task_failures(client) -> None:
    from matchcore.cluster._quiet import QuietTaskFailures

    register = getattr(client, "register_plugin", None) or client.register_worker_plugin
    register(QuietTaskFailures())


def _name_as_given(exc, sent: str, given: str) -> None:
    """Rewrite the absolute path ``sent`` to a worker as ``given`` in the exception a task
    raised (its message; an OSError's file names)."""
    if sent == given:
        return
    exc.args = tuple(a.replace(sent, given) if isinstance(a, str) else a for a in exc.args)
    for attr in ("filename", "filename2"):
        if getattr(exc, attr, None) == sent:
            setattr(exc, attr, given)


def _sent_path(path) -> str:
    """The absolute path a task is sent for ``path``: the working directory put before a
    relative one, nothing else changed. ``os.path.abspath`` folded ``..`` lexically, and past a
    symlinked directory (``link/../day.itch``, which the kernel resolves from the link's target)
    that named another file, which the workers replayed in place of the one given."""
    return str(Path(path).absolute())


def replay_files(paths, scheduler="local", *, fmt: str | None = None, split: int = 1,
                 progress=None, workers: int | None = None, processes: bool | None = None,
                 **options) -> ReplayResults:
    """Replay ``paths`` on a Dask cluster, one task per file (or ``split`` tasks per file, each
    keeping a share of its books: DBN instruments, ITCH stock locates), and merge the
    results.

    ``scheduler``: ``"local"`` (a LocalCluster of ``workers`` processes, default 2, at most
    :data:`MAX_LOCAL_WORKERS`, or threads with ``processes=False``, closed afterwards), a
    scheduler address (``"tcp://host:8786"``), or a ``distributed.Client`` or a cluster object
    such as a ``LocalCluster`` (left open; ``workers`` and ``processes`` are then refused). A
    cluster that has no worker after :data:`WORKER_WAIT_S` seconds raises TimeoutError.
    ``options`` are the replayer's (symbols, snapshot_every_ns, snapshot_depth, ...), checked
    here before a cluster is started or connected to: a bad one raises what the replayer raises.
    ``progress(done, total)`` is called as tasks finish. Results come back in the order of
    ``paths``, equal to :func:`replay_serial`'s. O(total bytes / workers) plus the transfer
    of the sinks and books.

    >>> res = replay_files(["a.itch", "b.itch"], "local")   # doctest: +SKIP
    >>> [f.stats["messages"] for f in res.files]            # doctest: +SKIP
    [1000000, 1000000]
    """
    workers, processes = _local_cluster_options(scheduler, workers, processes)
    _check_progress(progress)
    local = isinstance(scheduler, str) and scheduler == "local" or scheduler is None
    paths = _check(paths, options)
    _refuse_own_descriptors(paths)
    tasks = _tasks(paths, split, fmt)
    _check_split(split, tasks, options)
    _check_options(tasks, options)
    distributed = _require_dask()
    own = not isinstance(scheduler, distributed.Client)
    if not own and scheduler.status in ("closing", "closed"):
        # it failed in Tornado's words ("IOLoop is closed"), naming neither the client nor
        # what was wrong with it
        raise ValueError("scheduler: the distributed.Client given is closed: give an open one, "
                         "or the scheduler's address")
    client = connect(scheduler, workers=workers, processes=processes) if own else scheduler
    futures, gathered, watch = [], False, None
    try:
        if own and local:
            # the cluster is ours: a task that raises is raised here, so each worker's own
            # "Compute Failed" record of it (its traceback, on stderr) is left out
            _quiet_task_failures(client)
        _wait_for_a_worker(client, scheduler, distributed)
        t0 = time.perf_counter()
        # a worker resolves a relative path against its own directory, which on another machine
        # (or after this process changed directory) is not this one: it read another file of the
        # same name, or none. Absolute paths go out; results keep the paths as given.
        formats = {f for _, _, f, _ in tasks}
        futures = [client.submit(replay_one, _sent_path(p), f, partition=part, pure=False,
                                 **_task_options(options, f, formats))
                   for _, p, f, part in tasks]
        index = {fut.key: n for n, fut in enumerate(futures)}
        results = [None] * len(futures)
        watch = _WorkerWatch(client, scheduler if isinstance(scheduler, str)
                             else client.scheduler.address, futures,
                             [p for _, p, _, _ in tasks])
        for done, fut in enumerate(distributed.as_completed(futures), 1):
            n = index[fut.key]
            try:
                results[n] = fut.result()
                watch.done(fut)
                results[n].file = tasks[n][1]
            except distributed.KilledWorker as e:
                # its message names only the task key: say which file (and share) it was
                _, p, _, part = tasks[n]
                share = "" if part is None else f" (share {part[0]} of {part[1]})"
                raise TaskLostError(f"{p}{share}: every worker that ran its replay died, so no "
                                    f"results are returned ({e})") from e
            except CancelledError as e:
                if watch.expired is not None:
                    raise TimeoutError(watch.expired) from e
                # the scheduler went away (killed, the network): after its reconnection
                # attempts the client cancels every future, and that went through as a
                # traceback naming a task key
                if getattr(e, "reason", None) != "scheduler-connection-lost":
                    raise
                _, p, _, part = tasks[n]
                share = "" if part is None else f" (share {part[0]} of {part[1]})"
                raise ConnectionError(f"{p}{share}: the connection to the Dask scheduler was "
                                      f"lost before its replay finished, so no results are "
                                      f"returned") from e
            except distributed.comm.CommClosedError as e:
                # the connection that brought the finished replay's results closed under the
                # client (the scheduler killed as they were fetched): Dask's "in <TCP (closed)
                # ConnectionPool.gather ...>: Stream is closed" named neither the file nor the
                # scheduler. A replay's own exception never comes as one: it is raised again
                # as the task raised it.
                _, p, _, part = tasks[n]
                share = "" if part is None else f" (share {part[0]} of {part[1]})"
                raise ConnectionError(f"{p}{share}: the connection to the Dask scheduler was "
                                      f"lost while its replay's results were fetched, so no "
                                      f"results are returned ({e})") from e
            except Exception as e:
                # a replay that raised names the file, as the worker was sent it: name it as
                # given, as replay_serial does
                _name_as_given(e, _sent_path(tasks[n][1]), tasks[n][1])
                raise
            if progress is not None:
                progress(done, len(futures))
        gathered = True
        files = _collect(paths, tasks, results)
        return ReplayResults(files=files, elapsed_s=time.perf_counter() - t0,
                             totals=_totals(files))
    finally:
        if watch is not None:
            watch.stop()
        if not own and not gathered and futures:
            # the caller's cluster, on a task that raised or an interruption: the other tasks
            # ran on and their results (sinks, books) stayed in the cluster's memory for as long
            # as the client lived (the exception's traceback holds this frame, and so every
            # future). A client whose connection is gone has nothing left to release.
            try:
                client.cancel(futures)
            except Exception:
                pass
        if own:
            # only the cluster started here: one given (a LocalCluster object, which the
            # client connects to) is the caller's, and was shut down with the client
            cluster = getattr(client, "cluster", None) if local else None

            def close():
                client.close()
                if cluster is not None:
                    cluster.close()

            # a second Ctrl-C (the first interrupted the replay) cut a LocalCluster's close
            # short: its workers ran on after the call, Dask's exit hook then closed them
            # with a traceback, or hung. Held until the close is over (seconds), then raised.
            # (A scheduler's address leaves no process here: its client's close is not held.)
            if cluster is not None:
                _signals_held(close)
            else:
                close()
