"""``matchcore replay FILES... [--dask SCHEDULER]``: several ITCH / DBN files, replayed one after
the other in this process or as tasks on a Dask cluster, with merged outputs.

Called by :mod:`matchcore.cli_replay` when more than one file or ``--dask`` is given. Prints
one line per file and the totals; ``--out DIR`` writes each file's sinks under ``DIR/<name>/``
and one ``summary.json``; ``--dump-book`` writes every final book with a ``file`` column;
``--plot DIR`` draws the busiest symbols of each file.
"""
from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path


from matchcore._cliutil import (OUT_FILES, RULE_COUNTERS, extra_missing, name_within,
                               refuse_directory_at, report_dropped, save_npy, write_json)
from matchcore.bench.report import _count
from matchcore.cli_replay import (CSV_HEADER, _bar, _print_interrupted, _require_plot_extra,
                                  check_snapshot_options, dump_output, refuse_input_directory,
                                  refuse_unencodable_dump)


def _options(args) -> dict:
    check_snapshot_options(args)
    # said with what rules them out here: one LOBSTER (native) file given with --dask was told
    # the option "applies to one LOBSTER file", which it was
    if args.verify:
        raise ValueError("--verify applies to one LOBSTER file replayed by itself, not with "
                         "several files or --dask")
    if args.committed:
        raise ValueError("--committed applies to one native command file (a Recorder journal) "
                         "replayed by itself, not with several files or --dask")
    opts = {"snapshot_every": args.snapshot_every, "snapshot_every_ns": args.snapshot_every_ns,
            # given only with a cadence (check_snapshot_options), else the default
            "snapshot_depth": args.depth if args.depth_given else None}
    if args.symbols is not None:
        from matchcore._symfilter import split_symbols

        opts["symbols"] = split_symbols(args.symbols)
    if args.infer_lengths:
        opts["infer_lengths"] = True
    return opts


def _check_split_options(args, files) -> None:
    """The refusals of a --split (more than 1) that the inputs or other options rule out, in
    the words of the command line: the library's (``replay_files``) name its keywords (split,
    snapshot_every, a symbols filter). The same checks, in the same order, as its own."""
    from matchcore._magic import detect_format

    fmts = []
    for f in files:
        if not (f.is_file() or f.is_dir()):
            raise ValueError(f"{f} is a pipe or device: --split reads a file once per share, "
                             f"and a pipe gives its stream once; replay it without --split")
        try:
            fmts.append(args.format or detect_format(f))
        except ValueError:
            fmts.append(None)           # refused by the replay, before any work
    if (args.snapshot_every or args.snapshot_every_ns) and "itch" in fmts:
        raise ValueError("--split: depth snapshots of ITCH files are taken in the order the "
                         "books changed, which the shares cannot reproduce; replay them "
                         "without --split or without snapshots")
    if args.snapshot_every:
        raise ValueError("--split: give --snapshot-every-ns (time), not --snapshot-every "
                         "(records): each share of a DBN file counts only its own "
                         "instruments' records")
    if args.symbols is not None:
        raise ValueError("--split and --symbols cannot be combined")


def run_many(args) -> int:
    from matchcore.cluster.dask import TaskLostError, replay_files, replay_serial, trade_count

    files = [Path(f) for f in args.file]
    if args.format not in (None, "itch", "dbn"):
        raise ValueError(f"--format {args.format} replays one file; several files or --dask "
                         "take ITCH or DBN files")
    for f in files:
        if not f.exists():
            raise ValueError(f"no such file: {f}")
        refuse_input_directory(f)
        if args.format is None and not (f.is_file() or f.is_dir()):
            # as for one file: detection reads the first bytes, which the replay then lacked
            # (a shifted stream: messages lost, unknown references)
            raise ValueError(f"{f} is a pipe or device: its format cannot be detected without "
                             f"consuming it; give --format")
    opts = _options(args)
    if args.symbols is not None:
        # a number outside a file's ids, in the option's name (the library's names symbols)
        from matchcore._magic import detect_format
        from matchcore.cli_replay import check_symbol_numbers
        from matchcore.cluster.dask import _task_options

        fmts = set()
        for f in files:
            try:
                fmts.add(args.format or (detect_format(f) if f.is_file() else "itch"))
            except ValueError:
                continue                # refused by the replay, before any work
        for fmt in sorted(fmts):
            # what each format's files are given: a DBN instrument id beyond the ITCH locates
            # selects nothing in the ITCH files of a run that has DBN files too
            check_symbol_numbers(_task_options(opts, fmt, fmts)["symbols"], fmt)
    # (the library's refusals name its keyword, split)
    from matchcore.cluster.dask import MAX_SPLIT

    if args.split < 1:
        raise ValueError(f"--split must be >= 1, got {args.split}")
    if args.split > MAX_SPLIT:
        raise ValueError(f"--split must be at most {MAX_SPLIT}, not {args.split}: each share "
                         f"reads the whole file, so more shares than the cluster has cores only "
                         f"read it again")
    if args.split > 1:
        _check_split_options(args, files)
    if args.infer_lengths:
        # (the replay's own refusal names its keyword, infer_lengths)
        from matchcore._magic import detect_format

        for f in files:
            if (args.format or (f.is_file() and detect_format(f))) == "dbn":
                raise ValueError(f"{f}: --infer-lengths applies to ITCH files, not DBN")
    _require_plot_extra(args)          # a missing extra said before the replay
    # the directory (--out) and plot prefix of each file, in the order given, as the results
    stems = _stems([str(f) for f in files])
    if args.out:
        # each file's sinks go into DIR/<name>/: one that is a file was found after the whole
        # replay, the outputs before it written
        for f, stem in zip(files, stems):
            d = Path(args.out) / stem
            if d.exists() and not d.is_dir():
                raise ValueError(f"--out {args.out}: {d} exists and is not a directory (the "
                                 f"sinks of {f} go there)")
            if d.is_symlink() and not d.exists():
                # no directory can be made there ("File exists"), found after the replay
                raise ValueError(f"--out {args.out}: {d} is a symlink to {os.readlink(d)}, "
                                 f"which does not exist (the sinks of {f} go there)")
        # a directory where a file goes (also found after the whole replay)
        from matchcore._magic import detect_format

        names = ["summary.json"]
        for f, stem in zip(files, stems):
            try:
                fmt = args.format or (detect_format(f) if f.is_file() else "itch")
            except ValueError:
                fmt = None              # refused by the replay, before any work
            names += [f"{stem}/{n}" for n in OUT_FILES.get(fmt, ()) if n != "summary.json"
                      and fmt in ("itch", "dbn")]
        refuse_directory_at("--out", args.out, names)
    # the library's refusals of the inputs name its functions: here the command's ways
    from matchcore.cluster.dask import _refuse_own_descriptors
    from matchcore.cluster.dask import detect_format as file_format

    if args.format is None:
        for f in files:
            if f.is_file():
                file_format(f, "several files or --dask take")
    if args.dask is not None:
        _refuse_own_descriptors(files, "replay it without --dask")
    bar = _bar(None, "task", args.no_progress)
    done_tasks = [0]

    def progress(done, total):
        done_tasks[0] = done
        bar.total = total
        bar.n = done
        bar.refresh()

    t0 = time.perf_counter()
    try:
        if args.dask is not None:
            try:
                res = replay_files(files, args.dask, fmt=args.format, split=args.split,
                                   progress=progress, **opts)
            except ImportError as e:
                return extra_missing("replay", e)
            except TaskLostError as e:
                # workers that die are the cluster's condition, not a fault of this command
                print(f"matchcore replay: error: {e}", file=sys.stderr)
                return 1
        else:
            if args.split != 1:
                raise ValueError("--split needs --dask")
            res = replay_serial(files, fmt=args.format, progress=progress, **opts)
    except KeyboardInterrupt:
        bar.close()
        # as one file's replay: how far it got, and the outputs not written
        what = (f"of {len(files)} files" if args.split == 1
                else f"of {len(files) * args.split} tasks")
        _print_interrupted(args, done_tasks[0], time.perf_counter() - t0, what)
        raise
    finally:
        bar.close()
    symbols = opts.get("symbols")
    bad = _label_errors(res.files, symbols)
    if bad:
        # as for one file: the book of another stock would be summed up, dumped and written
        # under the label (locates are numbered afresh each day: locate N of one day's file is
        # not locate N of the next)
        for file, label, why in bad:
            print(f"matchcore replay: error: no book {label!r} in {file}: {why}",
                  file=sys.stderr)
        return 1

    where = f"on the Dask cluster {args.dask}" if args.dask is not None else "in this process"
    t = res.totals
    print(f"replayed {_count(len(files), 'file')} {where} in {res.elapsed_s:.3f} s: "
          f"{_count(t['messages'], 'message')}, {_count(t['trades'], 'trade')}, "
          f"{_count(t['books'], 'book')}, {_count(t['open_orders'], 'open order')}")
    # each file by its name, or as given where another file has the same name (x/day.itch,
    # y/day.itch: two lines "day.itch" could not be told apart)
    names = [Path(f.file).name for f in res.files]
    for f, name in zip(res.files, names):
        s = f.stats
        shown = name if names.count(name) == 1 else str(f.file)
        print(f"  {shown} ({f.format}{', ' + str(f.parts) + ' tasks' if f.parts > 1 else ''}): "
              f"{_count(s['messages'], 'message')}, {_count(trade_count(f.trades), 'trade')}, "
              f"{_count(len(f.books), 'book')}, "
              f"{_count(s['open_orders'], 'open order')}, unknown refs {s['unknown_refs']:,}, "
              f"truncated {'yes' if s['truncated'] else 'no'}" + _damage(s, f.format)
              + (f", books dropped {s['instruments_dropped']:,}"
                 if s.get("instruments_dropped") else "")
              + f"; {f.elapsed_s:.3f} s"
              f"{' on ' + f.worker if args.dask is not None else ''}")
    from matchcore.cli_replay_dbn import unread_tob_note

    for f in res.files:
        note = unread_tob_note(f.tob, f.stats["open_orders"], f.file) \
            if f.format == "dbn" else None
        if note:
            print(note)
    for f in res.files:
        if f.stats.get("bad_lengths") and \
                tuple(f.stats["bad_length_offsets"][0]) == (0, "zero length prefix"):
            print(f"hint: {f.file} starts with a zero length prefix; if it was written "
                  "without prefixes, replay it with --infer-lengths")
    from matchcore.cli_replay import symbol_notes

    for f in res.files:
        # the notes one file's replay gives, each naming its file
        for line in symbol_notes(_plain(f, symbols), f.symbols, f.books,
                                 numbers=set(f.instruments.values()) if f.format == "dbn"
                                 else None, first_names=f.first_names, file=f.file,
                                 dropped=f.stats.get("instruments_dropped", 0),
                                 strip=f.format == "itch",
                                 instruments=f.instruments if f.format == "dbn" else None):
            print(line)
    if args.dump_book:
        from matchcore.cli_replay_dbn import publisher_names

        # a DBN file of several publishers: each book named with its publisher
        file_names = [publisher_names(f.symbols, f.publishers) for f in res.files]
        refuse_unencodable_dump(args, [f.file for f in res.files], "file name")
        for f, names in zip(res.files, file_names):
            refuse_unencodable_dump(args, [names.get(loc, str(loc)) for loc in f.books])
        n = 0
        with dump_output(args) as fh:
            w = csv.writer(fh)
            w.writerow(["file"] + CSV_HEADER)
            for f, names in zip(res.files, file_names):
                for loc in sorted(f.books):
                    bids, asks = f.book(loc).depth_orders(1 << 30)
                    for side, rows in (("B", bids), ("S", asks)):
                        for i, (price, qty, orders) in enumerate(rows, 1):
                            # the path as given: two files of one name in different
                            # directories had rows that could not be told apart
                            w.writerow([f.file, loc, names.get(loc, str(loc)),
                                        side, i, int(price), int(qty), int(orders)])
                            n += 1
        print(f"book dump: {_count(n, 'level')} -> {args.dump_book}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        per_file = []
        for f, stem in zip(res.files, stems):
            d = out / stem
            d.mkdir(exist_ok=True)
            save_npy(d / "tob.npy", f.tob)
            save_npy(d / "trades.npy", f.trades)
            save_npy(d / "snapshots.npy", f.snapshots)
            entry = {"file": f.file, "format": f.format, "dir": stem, "stats": f.stats,
                     "symbols": {str(k): v for k, v in f.symbols.items()},
                     "state_hashes": {str(k): v for k, v in f.hashes.items()},
                     "elapsed_s": f.elapsed_s, "worker": f.worker, "tasks": f.parts}
            if f.format == "dbn":
                from matchcore.cli_replay_dbn import several_publishers
                from matchcore.feeds.dbn import PRICE_SCALE

                # as one DBN file's --out: book number -> instrument id, the metadata header
                entry["instruments"] = {str(k): v for k, v in f.instruments.items()}
                entry["metadata"] = f.metadata
                entry["price_scale"] = PRICE_SCALE
                if several_publishers(f.publishers):
                    # as one DBN file's --out
                    entry["publishers"] = {str(k): v for k, v in f.publishers.items()}
            if f.format == "itch":
                # as one ITCH file's --out
                save_npy(d / "system_events.npy", f.system_events)
                entry["trading_state"] = {str(k): list(v) for k, v in f.trading_state.items()}
            per_file.append(entry)
        summary = {"files": per_file, "totals": res.totals, "elapsed_s": res.elapsed_s,
                   "scheduler": args.dask}
        write_json(out / "summary.json", summary, indent=2, default=str)
        print(f"sinks: <file>/tob.npy, trades.npy, snapshots.npy (and system_events.npy for "
              f"ITCH files) and summary.json -> {out}")
    if args.plot:
        from matchcore.cli_replay_dbn import dbn_book_names, plot_cli

        from matchcore.io import book_labels

        taken: set = set()             # the names every file's plots took, prefix included
        for f, stem in zip(res.files, stems):
            scale = 1e9 if f.format == "dbn" else 1e4
            # as for one file: two books of one name drawn under their labels (ITCH) or with
            # their instrument ids (DBN)
            names = (dbn_book_names(f.symbols, f.instruments, f.books, f.publishers)
                     if f.format == "dbn"
                     else {**f.symbols, **book_labels(f.symbols, f.books)})
            plot_cli(args, f.tob, f.trades, names, scale, prefix=f"{stem}-", taken=taken,
                     of=f.file)
    # as one file's replay: records the sinks could not grow for said, and exit status 1
    short = [f for f in res.files if f.stats.get("out_of_memory")]
    if report_dropped("replay", sum(f.stats["out_of_memory"] for f in short),
                      where=" in " + ", ".join(f.file for f in short)):
        return 1
    return 0


def _damage(s: dict, fmt: str) -> str:
    """What one file's replay (of format ``fmt``) skipped as damage or of a kind it does not
    know, as its summary says it (the book rules' counters that are not 0, ITCH unknown message
    types and bad length prefixes, DBN bad record headers and unknown actions and sides), for
    that file's line; empty when nothing was."""
    out = "".join(f", {words} {s[key]:,}" for key, words in RULE_COUNTERS.get(fmt, ())
                  if s.get(key))
    if s.get("unknown_types"):
        out += ", unknown message types " + ", ".join(
            f"{t!r} {n:,}" for t, n in s["unknown_types"].items())
    if s.get("bad_lengths"):
        off, why = s["bad_length_offsets"][0]
        out += (f", bad length prefixes {s['bad_lengths']:,} (first at offset {off:,}: {why}; "
                f"{s['bytes_skipped']:,} bytes skipped)")
    if s.get("bad_records"):
        out += (f", bad record headers {s['bad_records']:,} (first at offset "
                f"{s['first_bad_offset']:,} after the metadata; {s['bytes_skipped']:,} bytes "
                "skipped)")
    if s.get("bad_actions") or s.get("bad_sides"):
        out += f", unknown actions {s['bad_actions']:,}, unknown sides {s['bad_sides']:,}"
    return out


def _label_errors(files, symbols) -> list[tuple[str, str, str]]:
    """``(file, label, reason)`` for each book label ``NAME@locateN`` of ``symbols`` that names
    no book of an ITCH file (see :func:`matchcore._symfilter.label_errors`): refused as one
    file's replay refuses it. DBN files have no labels: their notes name them."""
    from matchcore._symfilter import label_errors

    return [(f.file, label, why) for f in files if f.format == "itch"
            for label, why in label_errors(symbols, f.symbols)]


def _plain(f, symbols):
    """The symbols the notes of file ``f`` judge: for ITCH all but the book labels, which
    :func:`_label_errors` checked."""
    if not symbols or f.format != "itch":
        return symbols
    from matchcore._symfilter import LABEL

    return [x for x in symbols if not LABEL.fullmatch(x)]


def _stems(names) -> list[str]:
    """A distinct directory / file-name prefix per input file (its path)."""
    out, seen = [], set()
    for f in names:
        base = Path(f).name.split(".")[0] or "file"
        stem, k = base, 2
        while name_within(stem) in seen:
            stem, k = f"{base}-{k}", k + 1
        stem = name_within(stem)
        seen.add(stem)
        out.append(stem)
    return out
