"""``matchcore journal inspect|trades DIR`` and ``matchcore recover DIR``: journals from the shell.

Thin over :mod:`matchcore.durability`: ``journal inspect`` lists segments, records, the last
sequence, snapshots and any damage (exit status 1 when recovery refuses the directory: the
journal is corrupt, its creation was cut short, or nothing holds the state it starts from;
0 otherwise);
``journal trades`` prints or exports the trade capture; ``recover`` rebuilds the engine and prints
its state hash and books (read-only unless ``--repair``).
"""
from __future__ import annotations

import csv
import json
import os
import sys

from matchcore._cliutil import (atomic_output, check_output_file, int64, naming_output, plural,
                               shown_name)


def add_parser(p, name):
    if name == "journal":
        p.add_argument("action", choices=("inspect", "trades"),
                       help="inspect: segments, records, damage; trades: the trade capture")
        p.add_argument("dir", help="journal directory (Engine(journal=DIR))")
        p.add_argument("--json", default=None, metavar="OUT",
                       help="inspect: write the summary as JSON ('-' for stdout)")
        p.add_argument("--csv", default=None, metavar="OUT",
                       help="trades: write every trade as CSV ('-' for stdout)")
        p.add_argument("--limit", type=int64, default=None,
                       help="trades: print the last N trades (default 20; 0 for all)")
        p.add_argument("--symbol", type=int64, default=None,
                       help="trades: only this symbol id (in [0, 2**32))")
    elif name == "recover":
        p.add_argument("dir", help="journal directory")
        p.add_argument("--no-snapshot", action="store_true",
                       help="replay the whole journal instead of starting from a snapshot")
        p.add_argument("--no-trades", action="store_true",
                       help="no trade capture (the way past a corrupt trade journal: the "
                            "engine is rebuilt from the command journal and a corrupt trade "
                            "journal left as it is; fills of commands not kept are still cut, "
                            "and listed without --repair). Default: the journal's own choice, "
                            "as its newest command segment records it")
        p.add_argument("--repair", action="store_true",
                       help="cut torn tails and rewrite missing trades so the directory is ready "
                            "for Engine.recover to append (default: change no file)")
        p.add_argument("--fsync", choices=("never", "batch", "always"), default=None,
                       help="--repair: the policy of the segments it starts (default: the "
                            "journal's own, as its newest command segment records it)")
        p.add_argument("--depth", type=int64, default=1, help="levels per side to show (default 1)")
        p.add_argument("--json", default=None, metavar="OUT",
                       help="write the report and books as JSON ('-' for stdout)")
    else:
        raise ValueError(f"unknown subcommand {name!r}")
    p.add_argument("--no-progress", action="store_true",
                   help=f"no effect: {name} draws no progress bar (taken, as every command "
                        f"takes it)")


def run(args) -> int:
    from matchcore.durability.errors import DurabilityError
    # a script's --json "$OUT" with OUT unset was taken for "not given": the command ran
    # (recover --repair changed the journal), wrote no file and exited 0; an empty DIR was
    # " is not a directory"
    for opt, value in (("dir", args.dir), ("--json", getattr(args, "json", None)),
                       ("--csv", getattr(args, "csv", None))):
        if value is not None and not value.strip():
            print(f"matchcore {args.command}: error: {opt}: an empty path", file=sys.stderr)
            return 1
    # refused before anything is read or (recover --repair) changed: a negative --limit sliced
    # the trades as t[-limit:], printing all but the first rows instead of failing
    for opt, value in (("--limit", getattr(args, "limit", None) or 0),
                       ("--depth", getattr(args, "depth", 0))):
        if value < 0:
            print(f"matchcore {args.command}: error: {opt} must be >= 0, got {value}",
                  file=sys.stderr)
            return 1
    if getattr(args, "symbol", None) is not None and not 0 <= args.symbol < 2**32:
        # a symbol id no engine can hold matched no trade and exited 0, as if none were made
        print(f"matchcore journal: error: --symbol must be a symbol id in [0, 2**32), got "
              f"{args.symbol}", file=sys.stderr)
        return 1
    if args.command == "recover" and args.fsync is not None and not args.repair:
        # a read-only recovery opens no writer: the policy would be ignored
        print("matchcore recover: error: --fsync does not apply to recover without --repair",
              file=sys.stderr)
        return 1
    if args.command == "journal":
        # an option of the other action was silently ignored (trades --json wrote nothing and
        # exited 0): refused, as replay refuses an option that does not apply to the format
        other = ([o for o, v in (("--csv", args.csv), ("--limit", args.limit),
                                 ("--symbol", args.symbol)) if v is not None]
                 if args.action == "inspect" else (["--json"] if args.json is not None else []))
        if other:
            print(f"matchcore journal: error: {', '.join(other)} "
                  f"{'does' if len(other) == 1 else 'do'} not apply to "
                  f"journal {args.action}", file=sys.stderr)
            return 1
        if args.action == "trades" and args.csv is not None and args.limit is not None:
            # --csv writes every trade: the limit of the rows printed would be ignored
            print("matchcore journal: error: --limit does not apply to journal trades --csv "
                  "(it writes every trade)", file=sys.stderr)
            return 1
        if args.limit is None:
            args.limit = 20
    try:
        _refuse_journal_outputs(args)
        if args.command == "journal":
            return _inspect(args) if args.action == "inspect" else _trades(args)
        return _recover(args)
    except BrokenPipeError:          # stdout's reader left: matchcore.__main__ ends quietly
        raise
    except (DurabilityError, OSError, ValueError) as e:
        print(f"matchcore {args.command}: error: {e}", file=sys.stderr)
        return 1


def _dump_json(obj, out):
    text = json.dumps(obj, indent=2, default=int)
    if out == "-":
        with naming_output("--json", "- (stdout)"):
            print(text)
            sys.stdout.flush()
    else:
        with naming_output("--json", out), atomic_output(out) as fh:
            fh.write(text + "\n")
        print(f"wrote {out}")


def _refuse_journal_outputs(args) -> None:
    """Output files checked before anything is read or (``recover --repair``) changed: one that
    can never be written (a directory, a missing directory, a file as its directory) failed
    only after the repair, its report never printed; one that is a file of the directory (a
    segment, a snapshot, LOCK) is refused, as replay refuses an output naming its input:
    written over it, the command replaced the journal it read (a segment's acknowledged
    commands gone, exit status 0); so is a new file there under a name recovery reads as its
    own (:func:`~matchcore.durability.journal.own_file_name`)."""
    from matchcore.durability.journal import (KIND_COMMANDS, KIND_TRADES, own_file_name,
                                              segment_files)
    from matchcore.durability.snapshot import _same_dir, list_snapshots

    outs = [(opt, value) for opt, value in (("--json", getattr(args, "json", None)),
                                            ("--csv", getattr(args, "csv", None)))
            if value is not None and value != "-"]
    own = []
    if outs and os.path.isdir(args.dir):
        own = [f for kind in (KIND_COMMANDS, KIND_TRADES)
               for _, f in segment_files(args.dir, kind)]
        own += [f for _, f in list_snapshots(args.dir)] + [os.path.join(args.dir, "LOCK")]
    for opt, value in outs:
        check_output_file(opt, value, own, describe=lambda f: f"{os.path.basename(f)} of the "
                          f"journal directory {args.dir}")
        # a new file there under a name recovery reads as its own: the next recovery took
        # the report for a torn trailing segment or a stale temporary (and deleted it), a
        # damaged snapshot, or the LOCK
        if os.path.isdir(args.dir):
            for f in dict.fromkeys((os.path.abspath(value), os.path.realpath(value))):
                what = own_file_name(os.path.basename(f))
                if what and _same_dir(os.path.dirname(f), args.dir):
                    raise ValueError(f"{opt} {value}: would be taken for {what} of the "
                                     f"journal directory {args.dir} ({os.path.basename(f)}); "
                                     f"give another name")


def _require_journal(path, live: bool = False) -> None:
    # a mistyped directory read as a journal with 0 records (exit 0), where recover refuses it;
    # trade segments alone (kept apart from their command journal) are a journal to read.
    # live: a directory whose LOCK a live writer holds is one too (Engine(journal=DIR) takes
    # the LOCK before it makes its first segment), as inspect reports it once that is begun
    from matchcore.durability.journal import (KIND_TRADES, lock_held, require_directory,
                                              segment_files)
    from matchcore.durability.recovery import holds_journal

    require_directory(path)
    if not (holds_journal(path) or segment_files(path, KIND_TRADES)
            or (live and lock_held(path))):
        raise ValueError(f"{path} holds no engine journal (no journal segment, no snapshot)")


def _inspect(args) -> int:
    from matchcore.durability.journal import creation_leftovers, inspect
    _require_journal(args.dir, live=True)
    info = inspect(args.dir)
    # a crash inside Engine(journal=DIR) before its first header: recovery refuses the
    # directory and a new engine replaces the files, so "recovery cuts it" was wrong there
    leftovers = creation_leftovers(args.dir)
    # (a live writer's first segment header may be being written right now)
    cut_short = bool(leftovers) and not info["snapshots"] and not info["live_writer"]
    if args.json:
        _dump_json(info, args.json)
        if args.json == "-":
            if cut_short:
                return _refused_cut_short(args, leftovers[0])
            return _refused_corrupt(args, info) or _refused_start(args, info)
    print(f"journal directory {info['path']}")
    if info["live_writer"]:
        # what recovery would repair is not known while the writer appends, and no writing
        # recovery runs until it closes
        print("held by a live writer (its LOCK is held): the end of each journal is in flight; "
              "Engine.recover and matchcore recover --repair refuse the directory until it "
              "closes")
        if not (info["snapshots"] or any(j["segments"] or j["in_flight"]
                                         for j in info["journals"].values())):
            print("nothing written yet: the writer has made no segment (it takes the LOCK "
                  "before its first one)")
    bad = False
    for label, j in info["journals"].items():
        types = ", ".join(f"{k} {v}" for k, v in sorted(j["record_types"].items())) or "none"
        before = " before the corruption" if j["corrupt"] else ""
        valid = [s for s in j["segments"] if not s["after_corruption"]]
        counted = f"{len(valid)} segment(s)"
        if j["corrupt"]:
            # the corrupt segment is among the readable ones only where records of it (those
            # before the damage) are among the records counted; one listed on its own (a bad
            # header, a sequence gap before it, unreadable) is not: counted among them, the
            # numbers did not add up
            readable = [s for s in valid if s["file"] != j["corrupt"]["file"]]
            if j["records"] > sum(s["records"] for s in readable):
                counted = f"{len(readable) + 1} readable segment(s)"
            else:
                counted = f"{len(readable)} readable segment(s), 1 corrupt"
        print(f"\n{label}: {j['records']} records in {counted}, "
              f"last seq {j['last_seq']}{before} ({types})")
        for s in j["segments"]:
            last = "-" if s["last_seq"] is None else s["last_seq"]
            dmg = f"  DAMAGE: {s['damage']} at offset {s['valid_bytes']}" if s["damage"] else ""
            after = "  (after the corruption)" if s["after_corruption"] else ""
            start = ("" if s["start_state_hash"] is None else
                     f"  (continues state hash {s['start_state_hash']:#018x})")
            # the policy recovery keeps (the newest command segment's) unless given another
            policy = "" if s["fsync"] is None else f"  fsync {s['fsync']}"
            # likewise the trade capture (shown when off, the choice that differs from the
            # default)
            capture = "  no trade capture" if s["trades"] is False else ""
            print(f"  {s['file']}  seq {s['first_seq']}..{last}  {s['records']} records  "
                  f"{s['bytes']} bytes{policy}{capture}{start}{dmg}{after}")
        if j["in_flight"]:
            t = j["in_flight"]
            print(f"  in flight: {t['file']} at offset {t['offset']} ({t['reason']} so far): "
                  f"the live writer is still writing there")
        elif j["torn_tail"] and cut_short:
            t = j["torn_tail"]
            print(f"  {t['file']} ({t['reason']}) holds no record: its creation was cut short "
                  f"and nothing was acknowledged; Engine(journal={args.dir!r}) starts a new "
                  f"journal there (recovery refuses the directory)")
        elif j["torn_tail"]:
            t = j["torn_tail"]
            # a segment whose header is torn is deleted, not cut; so is a trade segment holding
            # only fills recovery cuts; in a directory recovery refuses, nothing is
            done = ("refuses the directory and leaves it as it is"
                    if info["start_refused"] or info["journals"]["commands"]["corrupt"] else
                    "drops it" if t["file"] in j["dropped_segments"] + j.get("segments_to_drop", [])
                    else "cuts it")
            print(f"  torn tail: {t['file']} at offset {t['offset']} ({t['reason']}): "
                  f"recovery {done}")
        if j["corrupt"]:
            c = j["corrupt"]
            # a file that cannot be read is the corruption whether or not anything follows it
            why = ("what it holds is unknown" if c["unreadable"] else
                   "valid data follows")
            if label == "trades" and not info["trade_capture"]:
                # recovery without trade capture (the journal's own choice) goes past it
                print(f"  CORRUPT: {c['file']} at offset {c['offset']}: {c['reason']} "
                      f"({why}; recovery without trade capture, as the journal records it, "
                      f"leaves it as it is; one with trades=True refuses)")
            else:
                bad = True
                print(f"  CORRUPT: {c['file']} at offset {c['offset']}: {c['reason']} "
                      f"({why}; recovery refuses)")
        if j["dropped_segments"]:
            print(f"  trailing segment(s) with nothing valid: {', '.join(j['dropped_segments'])}")
        if j.get("fills_to_cut"):
            print(f"  recovery cuts {j['fills_to_cut']} fill record(s) after command "
                  f"{j['kept_through']}'s last fill (of commands the command journal does not "
                  f"hold, or not complete)" +
                  (f", dropping {', '.join(j['segments_to_drop'])}"
                   if j["segments_to_drop"] else ""))
        if j.get("commands_lacking_fills"):
            c = j["commands_lacking_fills"]
            print(f"  recovery writes again the fills of {c['count']} command(s) that the "
                  f"command journal holds as filled (seqs {c['first']}..{c['last']}), which "
                  f"the trade journal lacks")
        if j.get("fills_lost_at_start"):
            print(f"  recovery cannot write again {j['fills_lost_at_start']} fill record(s) of "
                  f"commands it replays, missing before {j['segments'][0]['file']} (the trade "
                  f"journal's first segment(s) deleted or lost)")
    print(f"\nsnapshots: {len(info['snapshots'])}")
    # the one recovery uses: it looks at no older one (sets none of them aside)
    used = [s["seq"] for s in info["snapshots"] if s["valid"] and not s["unusable"]]
    for s in info["snapshots"]:
        if s["valid"]:
            done = ("skips it and sets it aside" if s["set_aside"] else
                    "uses a newer snapshot and leaves it as it is"
                    if used and s["seq"] < used[-1] else "skips it")
            unusable = (f"  NOT USABLE: {s['unusable']} (recovery {done})"
                        if s["unusable"] else "")
            print(f"  {s['file']}  seq {s['seq']}  {plural(s['symbols'], 'symbol')}  "
                  f"state hash {s['state_hash']:#018x}{unusable}")
        else:
            print(f"  {s['file']}  INVALID: {s['error']}")
    for what in ("snapshot", "segment"):
        files = [f for f in info["temporaries_to_remove"]
                 if f.endswith(".new") == (what == "segment")]
        if files:
            print(f"  {len(files)} stale {what} temporary file(s) (a {what} interrupted before "
                  f"its rename; recovery removes them): {', '.join(files)}")
    if info["lock_refused"]:
        # what a recovery that may write raises before changing anything
        print(f"\nLOCK: {info['lock_refused']} (Engine.recover, matchcore recover --repair "
              f"refuse the directory until it is a regular file or gone)")
    if cut_short:
        return _refused_cut_short(args, leftovers[0])
    return _refused_corrupt(args, info) if bad else _refused_start(args, info)


# the way past a corrupt trade journal, as inspect and recover say it
_NO_TRADES_WAY = " (recover --no-trades rebuilds the engine without reading the trade journal)"


def _refused_corrupt(args, info) -> int:
    # exit status 1 is an error said in one line on stderr: the corruption went to stdout only
    # (a corrupt trade journal is not refused by a recovery without trade capture)
    refused = [label for label, j in info["journals"].items() if j["corrupt"]
               and (label == "commands" or info["trade_capture"])]
    found = [f"the {label} journal is corrupt in {j['corrupt']['file']} at offset "
             f"{j['corrupt']['offset']} ({j['corrupt']['reason']})"
             for label, j in info["journals"].items() if label in refused]
    if not found:
        return 0
    past = _NO_TRADES_WAY if "trades" in refused else ""
    print(f"matchcore journal: error: recovery refuses {args.dir}: {'; '.join(found)}{past}",
          file=sys.stderr)
    return 1


def _refused_start(args, info) -> int:
    # after the report: a directory recovery refuses for where its journal starts (only trade
    # segments, a journal after seq 1 without the snapshot before it, a seeded journal whose
    # seed is gone) exited 0; the checks are recovery's own (inspect's start_refused), and so
    # is the error line
    if info["start_refused"] is None:
        return 0
    print(f"matchcore journal: error: {info['start_refused']}", file=sys.stderr)
    return 1


def _refused_cut_short(args, segment) -> int:
    # after the report: the directory holds nothing recovery can start from, and recover
    # refuses it (exit 1), so inspect does not pass it as a journal either
    print(f"matchcore journal: error: recovery refuses {args.dir}: its only segment "
          f"{os.path.basename(segment)} (torn header) holds no record, its creation was cut "
          f"short (nothing was acknowledged); Engine(journal={args.dir!r}) starts a new "
          f"journal there", file=sys.stderr)
    return 1


def _trades(args) -> int:
    from matchcore.durability.journal import _RELISTS, KIND_COMMANDS, lock_held, scan_journal
    from matchcore.durability.recovery import (command_journal_end, filled_commands,
                                               holds_journal, recovers_with_capture,
                                               trade_journal_start)
    from matchcore.durability.trades import TRADE_DTYPE, read_trades
    import numpy as np
    # a live writer that has made no segment yet holds a journal with no trade, as inspect
    # reports it (exit 0): refused as "no engine journal", the two disagreed on one directory
    _require_journal(args.dir, live=True)
    for _ in range(_RELISTS):
        held_at_start = lock_held(args.dir)
        t = read_trades(args.dir)
        # fills recovery cuts, listed as they are and counted after the output, outside the
        # CSV data: those of commands the command journal no longer holds (its tail lost),
        # and those of a command whose last fill the trade journal lacks (a crash between the
        # two journals' writes), which recovery cuts as it does in inspect's count: every
        # fill after the last one flagged last of a command the command journal holds
        cscan = scan_journal(args.dir, KIND_COMMANDS, keep_index=False)
        end = command_journal_end(args.dir, cscan)
        held = lock_held(args.dir)
        if not (held_at_start and not held):
            break
        # The writer closed while the journals were read: the commands of its last calls
        # were read and their fills not, and with the LOCK free by then they were said to be
        # "lost from its tail". Read again, as the writer left it (as journal inspect does).
    cut = np.zeros(len(t), bool)
    kept = None             # the last command whose fills the trade journal holds completely
    # (a live writer's last command may be having its fills written right now: in flight,
    # as inspect says, not a tail recovery cuts)
    if end is not None and not held:
        done = np.flatnonzero((t["last"] == 1) & (t["cmd_seq"] <= end))
        cut[(done[-1] + 1) if len(done) else 0:] = True
        kept = int(t["cmd_seq"][done[-1]]) if len(done) else 0
        # (the command whose first fills are there, of any symbol: said apart, below)
        begun = np.unique(t["cmd_seq"][cut & (t["cmd_seq"] <= end)])
    if args.symbol is not None:
        mine = t["symbol"] == args.symbol
        t, cut = t[mine], cut[mine]
    beyond = int((t["cmd_seq"] > end).sum()) if end is not None else 0
    torn = cut & (t["cmd_seq"] <= end) if end is not None else cut
    # (one command at most: the one being executed when the trade journal's tail was lost)
    partial = sorted({int(c) for c in t["cmd_seq"][torn]})
    capture = recovers_with_capture(args.dir, cscan)
    note = (f"; {beyond} of them of commands after the command journal's last seq {end} "
            f"(recovery cuts them)" if beyond else "")
    if partial:
        again = " and writes that command's fills again" if capture else ""
        note += (f"; {int(torn.sum())} of them of command "
                 f"{', '.join(map(str, partial))}, whose last fill the trade journal lacks "
                 f"(recovery cuts them{again})")
    if kept is not None and capture:
        # commands after the last complete one that the command journal holds as filled, none
        # of whose fills the trade journal holds (a crash between the two journals' writes; a
        # power loss under "batch", the trade journal being fsynced only at sync()): listed
        # without a word, what it holds read as the session's whole execution
        # (an array: a whole journal's commands where the trade journal is gone)
        lacking = filled_commands(cscan, kept, end)
        lacking = lacking[~np.isin(lacking, begun)]
        if len(lacking):
            anyone = " of any symbol" if args.symbol is not None else ""
            note += (f"; the fills of {len(lacking)} command(s){anyone} after command {kept} "
                     f"that the command journal holds as filled (seqs {int(lacking[0])}.."
                     f"{int(lacking[-1])}) are not in the trade journal (lost from its tail: "
                     f"recovery writes them again where it can, matchcore recover says how "
                     f"many)")
    start = trade_journal_start(args.dir, cscan)
    if start > 1:
        # the fills before it are in no file here (a restored snapshot's, which recovery
        # reports as trades_missing, or pruned segments'): "0 trades" of a restored
        # snapshot's directory read as a session that never traded. Their symbols are
        # unknown, so with --symbol the count is not that symbol's
        anyone = " of any symbol" if args.symbol is not None else ""
        note += (f"; the {start - 1} fill(s){anyone} before trade seq {start} are not in the "
                 f"trade journal (lost from this directory: its start is missing)")
    if holds_journal(args.dir) and not capture:
        # a journal made with trades=False (or turned so by recover --no-trades --repair)
        # records no fill: "0 trades" of a session that traded read as one that never did
        note += ("; trade capture is off in this journal (trades=False, as recovery keeps "
                 "it): the fills of commands journaled without it are not recorded, so not "
                 "listed")
    if not len(t) and not holds_journal(args.dir) and held:
        note = ("; nothing written yet: a live writer holds the LOCK and has made no segment "
                "(it takes the LOCK before its first one)")
    cols = ["seq", "cmd_seq", "ts_ns", "symbol", "taker_id", "maker_id", "price", "qty",
            "taker_side", "taker_owner", "maker_owner"]
    # the CSV is an export: every field of read_trades(), in its order (it left out
    # journal_ts_ns and last, so a command's last fill could not be told from the file)
    csv_cols = [c for c in TRADE_DTYPE.names if not c.startswith("_")]
    if args.csv == "-":
        # stdout, as --json - is (it wrote a file named "-")
        # the file's bytes, csv's "\r\n" (as replay --dump-book - writes them)
        with naming_output("--csv", "- (stdout)"):
            w = csv.writer(sys.stdout)
            w.writerow(csv_cols)
            w.writerows(zip(*[t[c].tolist() for c in csv_cols]))
            sys.stdout.flush()
        if note:
            sys.stdout.flush()
            print(f"matchcore journal: {len(t)} trades{note}", file=sys.stderr)
        return 0
    if args.csv:
        with naming_output("--csv", args.csv), atomic_output(args.csv, newline="") as fh:
            w = csv.writer(fh)
            w.writerow(csv_cols)
            w.writerows(zip(*[t[c].tolist() for c in csv_cols]))
        print(f"wrote {len(t)} trades to {args.csv}{note}")
        return 0
    # summed as Python ints: fills of more than 2**63 - 1 lots in all wrapped an int64 sum
    print(f"{len(t)} trades, {sum(t['qty'].tolist())} lots{note}")
    rows = t if args.limit == 0 else t[-args.limit:]
    if len(rows):
        table = list(zip(*[rows[c].tolist() for c in cols]))
        # each column as wide as its widest value: at a fixed 12 a wall-clock ts_ns (19
        # digits) or a 64-bit id or owner pushed the rest of its row off its headers
        widths = [max(12, len(c), *(len(str(r[i])) for r in table)) for i, c in enumerate(cols)]
        print("  ".join(f"{c:>{w}}" for c, w in zip(cols, widths)))
        for r in table:
            print("  ".join(f"{v:>{w}}" for v, w in zip(r, widths)))
    return 0


def _recover(args) -> int:
    from matchcore.durability.errors import JournalError
    from matchcore.durability.journal import KIND_TRADES, scan_journal, segment_files
    from matchcore.durability.recovery import recover
    try:
        eng = recover(args.dir, snapshot=not args.no_snapshot, readonly=not args.repair,
                      trades=False if args.no_trades else None, fsync=args.fsync)
    except JournalError as exc:
        # refused for a corrupt trade journal: the way past it, as journal inspect says it
        if args.no_trades or not os.path.isdir(args.dir) or exc.segment not in {
                f for _, f in segment_files(args.dir, KIND_TRADES)}:
            raise
        corrupt = scan_journal(args.dir, KIND_TRADES, keep_index=False).corrupt
        if corrupt is None or corrupt[0] != exc.segment:
            raise
        raise JournalError(f"{exc}{_NO_TRADES_WAY}", exc.segment, exc.offset) from None
    rep = eng.recovery_report
    if args.repair:
        eng.close()
    books = []
    for sym, name in eng.symbols.items():
        # Exact totals: a level beyond int64 is legal, and depth() refuses it.
        bids, asks = ([[p, q] for p, q, _ in rows]
                      for rows in eng.book(sym)._depth_exact(args.depth))
        books.append({"symbol": sym, "name": name, "orders": len(eng.book(sym)),
                      "bids": bids, "asks": asks, "limits": eng.limits(sym)})
    if args.json:
        _dump_json({"report": {k: v for k, v in vars(rep).items()},
                    "state_hash": eng.state_hash(), "books": books}, args.json)
        if args.json == "-":
            return 0
    print(rep.summary())
    print(f"state hash {eng.state_hash():#018x}  ({plural(len(eng), 'resting order')}, "
          f"{plural(len(books), 'symbol')})")
    for b in books:
        label = f"{b['symbol']}" + (f" {shown_name(b['name'])}" if b["name"] else "")
        if args.depth == 0:
            # no levels asked for: "bid - ask -" would say both sides are empty
            print(f"  {label:<16} orders {b['orders']:>7}")
            continue
        bid = " ".join(f"{p}x{q}" for p, q, *_ in b["bids"]) or "-"
        ask = " ".join(f"{p}x{q}" for p, q, *_ in b["asks"]) or "-"
        print(f"  {label:<16} orders {b['orders']:>7}  bid {bid:<24} ask {ask}")
    return 0
