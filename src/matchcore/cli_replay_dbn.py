"""``matchcore replay FILE.dbn[.zst]``: a Databento DBN MBO file through the books from the shell.

Called by :mod:`matchcore.cli_replay` when the file is DBN (detected, or ``--format dbn``);
same options and outputs as the ITCH replay: summary, ``--dump-book`` CSV, ``--out DIR`` sinks,
``--plot DIR`` pictures.
"""
from __future__ import annotations

import time
from pathlib import Path


from matchcore._cliutil import (RULE_COUNTERS, extra_missing, rate_text, report_dropped,
                               save_npy, shown_name, size_on_disk, write_json)


def print_dbn_summary(s: dict, names: dict, books: dict, elapsed: float, path: Path,
                      meta=None, read=None) -> None:
    from matchcore.cli_replay import _print_counts_and_books, _print_truncated

    rate = s["messages"] / elapsed if elapsed > 0 else float("inf")
    # the dataset is the file's text: a damaged header's newline or escape code is shown
    # escaped, as the books' names are
    what = f"{shown_name(meta.dataset)} {meta.schema} v{meta.version}" \
        if meta is not None else "DBN"
    print(f"replayed {s['messages']:,} DBN MBO records ({what}; "
          f"{size_on_disk(path, s['bytes_consumed'] if read is None else read)}) "
          f"in {elapsed:.3f} s: {rate_text(rate, 'records')}")
    _print_counts_and_books(s, names, books, "by action")
    print(f"unknown order ids: {s['unknown_refs']:,}; "
          + "".join(f"{words}: {s[key]:,}; " for key, words in RULE_COUNTERS["dbn"])
          + f"clears: {s['clears']:,}; F_TOB adds: {s['tob_adds']:,}")
    other = ", ".join(f"{t} {n:,}" for t, n in s["other_rtypes"].items()) or "none"
    print(f"other record types: {other}; bad record headers: {s['bad_records']:,}"
          + (f" (first at offset {s['first_bad_offset']:,} after the metadata; "
             f"{s['bytes_skipped']:,} bytes skipped)" if s["bad_records"] else "")
          + f"; unknown actions: {s['bad_actions']:,}; unknown sides: {s['bad_sides']:,}")
    if s["instruments_dropped"]:
        # their records were skipped without a word: a file of more instruments than book
        # numbers looked whole
        print(f"books dropped: {s['instruments_dropped']:,} (instrument and publisher pairs seen "
              "after the 65,535 book numbers were taken by every pair seen, also those --symbols "
              "leaves out); their records were skipped")
    _print_truncated(s["truncated"], "record",
                     meta.header_bytes if meta is not None else None)


def replay_dbn_cli(args, path: Path) -> int:
    from matchcore.cli_replay import (_file_progress, _note_symbols_and_dump, _print_interrupted,
                                      check_symbol_numbers)
    from matchcore.feeds.dbn import PRICE_SCALE, replay_dbn

    if args.infer_lengths:
        raise ValueError("--infer-lengths applies to ITCH files, not DBN")
    from matchcore._symfilter import split_symbols

    symbols = split_symbols(args.symbols)
    check_symbol_numbers(symbols, "dbn")
    bar, update = _file_progress(path, args.no_progress)
    seen = []                # the replayer, once its first chunk is in: for a partial summary
    t0 = time.perf_counter()
    try:
        # the top-of-book and trade sinks only for --out and --plot, which take them (kept
        # for nothing, they grew with the file)
        keep = bool(args.out or args.plot)
        r = replay_dbn(path, progress=update, symbols=symbols,
                       snapshot_every=args.snapshot_every,
                       snapshot_every_ns=args.snapshot_every_ns,
                       snapshot_depth=args.depth if args.depth_given else None,
                       record_tob=keep, record_trades=keep,
                       on_chunk=lambda rep: seen or seen.append(rep))
    except ImportError as e:          # the dbn extra is not installed
        return extra_missing("replay", e)
    except KeyboardInterrupt:
        # how far it got, as the ITCH replay says (a live feed from a FIFO is stopped so)
        bar.close()
        _print_interrupted(args, seen[0].stats["messages"] if seen else 0,
                           time.perf_counter() - t0, "DBN MBO records")
        raise
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    s = r.stats
    names = r.symbols
    books = r.books
    # from a pipe: the bytes read from it (compressed ones for .zst/.gz), as progress had them
    publishers = r.publishers
    shown = dbn_book_names(names, r.instruments, books, publishers)
    print_dbn_summary(s, shown, books, elapsed, path, r.metadata, update.state["pos"])
    print("prices are DBN fixed-point integers (1 unit = 1e-9); timestamps are ts_recv")
    # first_names: a name selects a book by its instrument's name at its first record, which
    # a symbol-mapping record may change: "no symbol named X" was said of a name that kept a
    # book, and a later name kept none without a word
    _note_symbols_and_dump(args, symbols, names, books, numbers=set(r.instruments.values()),
                           first_names=r.first_names, dropped=s["instruments_dropped"],
                           dump_names=publisher_names(names, publishers),
                           instruments=r.instruments)
    tob, trades = r.tob(), r.trades()
    if keep:
        note = unread_tob_note(tob, s["open_orders"])
        if note:
            print(note)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        save_npy(out / "tob.npy", tob)
        save_npy(out / "trades.npy", trades)
        save_npy(out / "snapshots.npy", r.snapshots())
        meta = r.metadata
        summary = {"file": str(path), "format": "dbn", "elapsed_s": elapsed,
                   "messages_per_s": s["messages"] / elapsed if elapsed else None,
                   "stats": s, "symbols": {str(k): v for k, v in names.items()},
                   "instruments": {str(k): v for k, v in r.instruments.items()},
                   "metadata": {"dataset": meta.dataset, "schema": meta.schema,
                                "version": meta.version, "ts_out": meta.ts_out},
                   "price_scale": PRICE_SCALE}
        if several_publishers(publishers):
            summary["publishers"] = {str(k): v for k, v in publishers.items()}
        write_json(out / "summary.json", summary, indent=2, default=str)
        print(f"sinks: tob.npy, trades.npy, snapshots.npy, summary.json -> {out}")
    if args.plot:
        plot_cli(args, tob, trades, shown, PRICE_SCALE)
    # as the ITCH replay: records the sinks could not grow for said, and exit status 1
    if report_dropped("replay", s["out_of_memory"]):
        return 1
    return 0


def unread_tob_note(tob, open_orders: int, file: str | None = None) -> str | None:
    """The note for a DBN replay that recorded no top of book while its books end holding
    orders (``open_orders``): the top of book is read after a record of the book that carries
    F_LAST, and a file without those flags left ``tob.npy`` empty and ``--plot`` with
    "nothing to draw (no top-of-book changes ...)", without a word of why. None otherwise.
    ``file``: named among several files. O(1)."""
    if len(tob) or not open_orders:
        return None
    from matchcore.bench.report import _count

    return (f"note: no top of book was recorded{' for ' + file if file else ''}, although the "
            f"books end with {_count(open_orders, 'open order')}: a book's top of book is read "
            "after a record of that book carrying F_LAST (the end of an exchange event), and a "
            "file without those flags records none; replay_dbn(path, tob_on_last=False) reads "
            "it after every record")


def several_publishers(publishers: dict) -> bool:
    """Whether the books of a DBN replay (``{book number: publisher id}``) come from more than
    one publisher: then every output that lists books names each book's publisher."""
    return len(set(publishers.values())) > 1


def publisher_names(names: dict, publishers: dict | None) -> dict:
    """``{book number: name}`` with each book's publisher, ``"ESZ4 (publisher 2)"``, when the
    books come from several publishers (each venue's book of an instrument is its own); the
    names unchanged when they come from one. O(len(names)).

    >>> publisher_names({0: "X", 1: "X"}, {0: 1, 1: 2})
    {0: 'X (publisher 1)', 1: 'X (publisher 2)'}
    """
    if not publishers or not several_publishers(publishers):
        return names
    return {L: (f"{n} (publisher {publishers[L]})" if L in publishers else n)
            for L, n in names.items()}


def dbn_book_names(names: dict, instruments: dict, books, publishers: dict | None = None) -> dict:
    """``{book number: name}`` for a DBN replay's summary and plots: a symbol the metadata
    maps to several instrument ids that have books (an id that changed between the days of a
    file) names each of those books with its id, ``"ESZ4 (instrument 7)"``, where both were
    shown as ``ESZ4``; ``--symbols`` and ``book()`` take that id. Books of several publishers
    are named with theirs (:func:`publisher_names`). Other names unchanged.
    O(len(names)).

    >>> dbn_book_names({0: "X", 1: "X", 2: "Y"}, {0: 7, 1: 8, 2: 9}, [0, 1, 2])
    {0: 'X (instrument 7)', 1: 'X (instrument 8)', 2: 'Y'}
    """
    names = publisher_names(names, publishers)
    count = {}
    for L in books:
        n = names.get(L, str(L))
        count[n] = count.get(n, 0) + 1
    return {L: (f"{n} (instrument {instruments[L]})"
                if L in instruments and count.get(n, 0) > 1 and L in books else n)
            for L, n in names.items()}


def plot_cli(args, tob, trades, names, price_scale, prefix: str = "", taken=None,
             of: str | None = None) -> None:
    """``--plot DIR``: the PNGs of the busiest symbols, paths printed (``taken``: see
    :func:`~matchcore.replay_plots.plot_replay`; ``of``: the file, named where nothing is
    drawn, one of several)."""
    from matchcore._cliutil import naming_output
    from matchcore.replay_plots import plot_replay

    with naming_output("--plot", args.plot):
        paths = plot_replay(args.plot, tob, trades, names, price_scale=price_scale,
                            top=args.plot_top, prefix=prefix, taken=taken)
    if paths:
        print(f"plots: {', '.join(p.name for p in paths)} -> {args.plot}")
    else:
        # among several files, the line of each such file said the same, naming none
        print(f"plots: nothing to draw{' for ' + of if of else ''} (no top-of-book changes or "
              "trades recorded)")
