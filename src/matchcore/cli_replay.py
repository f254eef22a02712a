"""``matchcore replay`` / ``gen-itch`` / ``book``: tick files through the book from the shell.

Thin over :mod:`matchcore.itch` (and :mod:`matchcore.lobster`, :mod:`matchcore.native` for the
other formats): parse arguments, show a progress bar on long work, print a summary.
"""
from __future__ import annotations

import contextlib
import csv
import os
import stat
import sys
import time
from pathlib import Path

import numpy as np

from matchcore._cliutil import (OUT_FILES, RULE_COUNTERS, atomic_output, check_output_file,
                               extra_missing, int64, integer, is_stdout, made_by, naming_output,
                               refuse_dangling_link, refuse_directory_at, refuse_directory_name,
                               rate_text, refuse_unwritable_directory, report_dropped, save_npy,
                               shown_name, size_on_disk, size_text, write_json, _writes)
from matchcore.bench.report import _count

CSV_HEADER = ["locate", "symbol", "side", "level", "price", "qty", "orders"]
# what book --plot draws, for the refusal without matplotlib ("replay plots" named another
# command's images)
BOOK_PLOT = "depth charts (book --plot)"


def add_parser(p, name):
    if name == "replay":
        p.add_argument("file", nargs="+",
                       help="ITCH 5.0 file (plain or gzip'd), DBN MBO file (.dbn, .dbn.zst, "
                            ".dbn.gz), "
                            "LOBSTER message CSV, or native command file; several ITCH/DBN "
                            "files are replayed one by one (or on --dask) and summed up; '-' "
                            "reads an ITCH or DBN stream from stdin (plain, gzip'd or zstd)")
        p.add_argument("--format", choices=("itch", "lobster", "native", "dbn"), default=None,
                       help="input format (default: by the file's first bytes, after gzip or "
                            "zstd decompression: DBN, native, LOBSTER message CSV, else itch)")
        p.add_argument("--symbols", default=None,
                       # a DBN number is an instrument id, not the book number that DBN sinks
                       # carry as their locate: "locate numbers" led to --symbols 0
                       help="comma-separated names or numbers to keep: ITCH stock locates, "
                            "DBN instrument ids (default all)")
        p.add_argument("--snapshot-every", type=int64, default=0, metavar="N",
                       help="depth snapshot of each changed book every N messages (DBN: MBO "
                            "records of the books kept) (needs --out: written to "
                            "DIR/snapshots.npy)")
        p.add_argument("--snapshot-every-ns", type=int64, default=0, metavar="T",
                       help="depth snapshot of each changed book every T ns of exchange time "
                            "(needs --out: written to DIR/snapshots.npy)")
        # None until given: LOBSTER and native replays take no snapshots and refuse it
        p.add_argument("--depth", type=int64, default=None,
                       help="levels per snapshot (default 10; ITCH and DBN)")
        p.add_argument("--out", default=None, metavar="DIR",
                       help="write the sinks (.npy) and a summary.json here")
        p.add_argument("--dump-book", default=None, metavar="OUT.csv",
                       help="write the final book of every symbol as CSV ('-': to stdout, "
                            "the summary then goes to stderr)")
        p.add_argument("--infer-lengths", action="store_true",
                       help="take message lengths from the type byte (files with zero prefixes)")
        p.add_argument("--verify", action="store_true",
                       help="LOBSTER: compare the book with the orderbook file after every message")
        p.add_argument("--committed", action="store_true",
                       help="native: replay the committed records of a Recorder journal whose "
                            "last flush was cut short (a killed process), reporting the bytes "
                            "after them, which are left out")
        p.add_argument("--dask", default=None, metavar="SCHEDULER",
                       help="replay the files as tasks on a Dask cluster: 'local' (a LocalCluster "
                            "of 2 processes) or a scheduler address tcp://host:8786")
        p.add_argument("--split", type=int64, default=1, metavar="N",
                       help="with --dask: N tasks per file, each with a share of its books "
                            "(DBN instruments, ITCH locates) (default 1)")
        p.add_argument("--plot", default=None, metavar="DIR",
                       help="draw top of book, spread and traded volume of the busiest "
                            "symbols as PNGs in DIR")
        p.add_argument("--plot-top", type=int64, default=None, metavar="N",
                       help="symbols drawn by --plot (default 4)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        from matchcore.io.replay_hooks import add_replay_options

        add_replay_options(p)    # --metrics-port/--metrics-hold, --publish (matchcore.io)
    elif name == "gen-itch":
        p.add_argument("out", help="output path ('-' for stdout; a .gz name, in any case, is "
                                   "written gzip'd)")
        p.add_argument("--messages", type=int64, default=1_000_000, help="messages (default 1,000,000)")
        p.add_argument("--symbols", type=int64, default=8, help="symbols (default 8)")
        p.add_argument("--seed", type=integer, default=1, help="random seed (default 1)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
    elif name == "book":
        p.add_argument("file", help="ITCH 5.0 file (plain or gzip'd; '-' reads stdin)")
        p.add_argument("--symbol", required=True, help="symbol name or locate number")
        p.add_argument("--at", default=None, metavar="HH:MM:SS.ffffff",
                       help="exchange time to stop at (default: end of file)")
        p.add_argument("--depth", type=int64, default=10, help="levels per side (default 10)")
        p.add_argument("--plot", default=None, metavar="PNG", help="draw the depth to this PNG")
        p.add_argument("--infer-lengths", action="store_true",
                       help="take message lengths from the type byte (files with zero prefixes)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
    else:
        raise ValueError(f"unknown subcommand {name!r}")


def _refuse_unwritable_outputs(args) -> None:
    """An output path that can never be written, found before the replay (it was found only
    after the whole file had been replayed): a directory for a file, a file for a directory."""
    for opt, want_dir in (("dump_book", False), ("out", True), ("plot", True)):
        value = getattr(args, opt, None)
        if value is None:
            continue
        path, name = Path(value), "--" + opt.replace("_", "-")
        if not value.strip():
            # taken for "not given": nothing written and exit status 0 (a script's
            # --dump-book "$OUT" with OUT unset)
            raise ValueError(f"{name}: an empty path")
        if args.command == "book":
            want_dir = False            # book --plot is one PNG
        if not want_dir:
            check_output_file(name, value, _input_files(args) if value != "-" else (),
                              _describe_input, made=_made_directories(args),
                              stream=getattr(args, "dump_stream", None) is not None
                              and opt == "dump_book")
            continue
        if path.exists() and not path.is_dir():
            raise ValueError(f"{name} {value}: exists and is not a directory")
        refuse_dangling_link(name, value)
        # an input at a name it writes (D/tob.npy for --out D) was replaced, exit status 0
        for src in _input_files(args):
            if src != _STDIN_FILE and any(_writes("replay", opt, value, p, args)
                                          for p in (str(src), os.path.realpath(src))):
                raise ValueError(f"{name} {value}: writes {src}, the input file, which it "
                                 f"would replace")
        # a directory is made with its parents, of which the nearest that exists must be a
        # directory (found only after the whole replay, its summary printed)
        parent = next((a for a in (path, *path.parents) if a.exists()), Path("."))
        if not parent.is_dir():
            raise ValueError(f"{name} {value}: {parent} is not a directory")
        refuse_unwritable_directory(name, value, parent)


def _made_directories(args) -> list:
    """The directories the command makes for its outputs (replay's --out and --plot; book
    --plot is one PNG), in which a file output may be named before they exist."""
    if args.command != "replay":
        return []
    return [d for d in (getattr(args, "out", None), getattr(args, "plot", None)) if d]


def _refuse_empty_paths(args) -> None:
    """An empty file argument (a script's ``"$DAY"`` with DAY unset) is the current directory
    to ``Path``: the error said "Is a directory: '.'", of a directory nobody had named."""
    name = "out" if args.command == "gen-itch" else "file"
    value = getattr(args, name)
    for v in (value if isinstance(value, list) else [value]):
        if not v.strip():
            raise ValueError(f"{name}: an empty path")
        if name == "file":
            # "day.itch/" names a directory: through Path the slash was dropped and the file
            # day.itch read in its place (gen-itch's OUT is refused as every output file is)
            refuse_directory_name(name, v)


_STDIN_FILE = Path("/dev/stdin")


def _describe_input(path: Path) -> str:
    return "the file stdin reads" if path == _STDIN_FILE else f"the input file {path}"


def _input_files(args) -> list[Path]:
    """The files a replay or book reads: those named, and the orderbook file a LOBSTER message
    file is replayed with."""
    out = []
    for f in (args.file if isinstance(args.file, list) else [args.file]):
        if f == "-":
            # stdin: redirected from a file (`< day.itch`), that file
            out.append(_STDIN_FILE)
            continue
        p = Path(f)
        out.append(p)
        ob = _lobster_orderbook_path(p)
        if ob is not None:
            out.append(ob)
    return out


def _lobster_orderbook_path(path: Path) -> Path | None:
    """The orderbook file of a LOBSTER message file: its name with the last ``_message_`` made
    ``_orderbook_`` (None for a name without one)."""
    # only the file's name, and its last "_message_": a directory named *_message_* was
    # rewritten too, and a name without it gave the message file itself as "the orderbook"
    head, sep, tail = path.name.rpartition("_message_")
    return path.with_name(f"{head}_orderbook_{tail}") if sep else None


def run(args) -> int:
    dump = getattr(args, "dump_book", None)
    # a path naming the file stdout writes to (/dev/stdout) is stdout too: opened again, it
    # mixed the CSV into the summary in a pipe, and in a file (> out.txt) truncated it under
    # the summary, which was lost, NUL bytes left where it had been
    if dump == "-" or (dump and is_stdout(dump, null=False)):
        # '-' is stdout, as for bench/journal --json - (it wrote a file named "-"); stdout then
        # carries the CSV alone, so that it can be piped: every other line goes to stderr
        args.dump_stream = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            return _run(args)
    return _run(args)


@contextlib.contextmanager
def dump_output(args):
    """The file --dump-book writes: complete or not there at all; '-' is the command's stdout."""
    if getattr(args, "dump_stream", None) is not None:
        with naming_output("--dump-book", "- (stdout)" if args.dump_book == "-" else
                           args.dump_book):
            yield args.dump_stream
            args.dump_stream.flush()
    else:
        parent = Path(args.dump_book).parent
        if not parent.exists() and made_by(parent, _made_directories(args)):
            # a directory --out or --plot makes (or a parent of it), whose files are written
            # after this one
            parent.mkdir(parents=True, exist_ok=True)
        # UTF-8 whatever the locale, as JSON is ASCII whatever it is: in the locale's encoding
        # a name it cannot encode (latin-1 letters under LC_ALL=C) failed after the replay
        # (surrogateescape: a file name of bytes that are no UTF-8, in the several files'
        # file column, is written as those bytes, the path as given; it failed the CSV)
        with naming_output("--dump-book", args.dump_book), \
                atomic_output(args.dump_book, newline="", encoding="utf-8",
                              errors="surrogateescape") as f:
            yield f


def _run(args) -> int:
    try:
        _refuse_empty_paths(args)
        if args.command in ("replay", "book"):
            _refuse_unwritable_outputs(args)
        elif args.out != "-":
            # gen-itch's OUT, checked as every file output is (a missing directory said
            # "[Errno 2] No such file or directory")
            check_output_file("out", args.out)
        if args.command == "replay":
            args.depth_given = args.depth is not None
            if args.depth is None:
                args.depth = 10
            from matchcore.io.replay_hooks import refuse_orphan_options

            refuse_orphan_options(args)
            if args.plot_top is not None:
                # checked for every format and for several files (--dask) alike
                if not args.plot:
                    raise ValueError("--plot-top needs --plot")
                if args.plot_top < 1:
                    raise ValueError(f"--plot-top must be >= 1, got {args.plot_top}")
            else:
                args.plot_top = 4
        if args.command == "replay":
            # `--dask "$SCHEDULER"` with the variable unset: refused by the cluster code, not
            # taken for no --dask (one file was replayed in this process, without a word)
            if args.dask is not None or len(args.file) > 1:
                if "-" in args.file:
                    # one stream, read once in this process: not shared out nor summed up
                    raise ValueError("- (stdin) is replayed alone: not with other files or "
                                     "--dask")
                from matchcore.cli_replay_dask import run_many

                # refused before any work: the merged replay has no per-chunk hook to feed them
                given = [o for o, v in (("--publish", args.publish),
                                        ("--metrics-port", args.metrics_port)) if v is not None]
                if given:
                    verb = "work" if len(given) > 1 else "works"
                    raise ValueError(f"{' and '.join(given)} {verb} with one ITCH file, not "
                                     "with several files or --dask: replay the files one by one")

                return run_many(args)
            args.file = args.file[0]
            return _replay(args)
        if args.command == "gen-itch":
            return _gen(args)
        return _book(args)
    except BrokenPipeError:          # stdout's reader left: matchcore.__main__ ends quietly
        raise
    except ImportError as e:         # an optional extra missing: named in the message
        return extra_missing(args.command, e)
    except (OSError, ValueError) as e:
        print(f"matchcore {args.command}: error: {e}", file=sys.stderr)
        return 1


# ---- helpers ----

def _bar(total, unit, disable):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, dynamic_ncols=True, file=sys.stderr,
                disable=disable or not sys.stderr.isatty(), leave=False)


def _file_progress(path: Path, disable: bool):
    bar = _bar(path.stat().st_size, "B", disable)
    state = {"pos": 0}

    def update(pos):
        bar.update(pos - state["pos"])
        state["pos"] = pos

    update.state = state     # the last position: the bytes read from a pipe, for the summary
    return bar, update


def _fmt_time(ns: int) -> str:
    s, frac = divmod(int(ns), 1_000_000_000)
    # microseconds unless that would hide nanoseconds (ITCH stamps and --at are in ns)
    frac_s = f"{frac // 1000:06d}" if frac % 1000 == 0 else f"{frac:09d}"
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{frac_s}"


def _book_rows(books_by_locate: dict, names: dict):
    """CSV rows of every book: bids then asks, level 1 = best."""
    for loc in sorted(books_by_locate):
        book = books_by_locate[loc]
        # Exact totals: a native file may hold a level beyond int64, which depth_orders refuses.
        bids, asks = book._depth_exact(1 << 30)
        for side, rows in (("B", bids), ("S", asks)):
            for i, (price, qty, orders) in enumerate(rows, 1):
                yield [loc, names.get(loc, str(loc)), side, i, int(price), int(qty), int(orders)]


def refuse_unencodable_dump(args, texts, what: str = "symbol") -> None:
    """``ValueError`` naming --dump-book when it goes to stdout (``-``) and one of ``texts``
    (the symbol names, or with ``what`` "file name" the file names, its rows hold) has a
    character stdout's encoding cannot hold (an ASCII locale): found before any row is written. The report escapes such a
    character, as stderr does; in the CSV, data, an escaped name would be another name.
    O(len(texts))."""
    stream = getattr(args, "dump_stream", None)
    if stream is None:
        return
    encoding = getattr(stream, "encoding", None) or "utf-8"
    # surrogateescape (Python's stdout under the C locale or in its UTF-8 mode) writes a name
    # of undecodable bytes back as those bytes: exact, as the dump file writes it
    errors = "surrogateescape" if getattr(stream, "errors", None) == "surrogateescape" \
        else "strict"
    for text in texts:
        try:
            text.encode(encoding, errors)
        except UnicodeEncodeError:
            shown = "- (stdout)" if args.dump_book == "-" else args.dump_book
            raise ValueError(f"--dump-book {shown}: the {what} {text!r} cannot be written in "
                             f"stdout's encoding ({encoding}); a --dump-book file is UTF-8") \
                from None


def _dump_book(args, books_by_locate, names) -> int:
    refuse_unencodable_dump(args, [names.get(loc, str(loc)) for loc in books_by_locate])
    n = 0
    with dump_output(args) as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for row in _book_rows(books_by_locate, names):
            w.writerow(row)
            n += 1
    return n


def check_symbol_numbers(symbols, fmt: str | None) -> None:
    """Refuse, before any input is read, a ``--symbols`` number that no file of format ``fmt``
    holds (an ITCH locate above 65535, a DBN instrument id above 4294967295): it selected
    nothing, noted only after the whole replay. The library's refusal in the option's name."""
    from matchcore._symfilter import DBN_INSTRUMENTS, ITCH_LOCATES, symbol_filter

    symbol_filter(symbols, "--symbols", DBN_INSTRUMENTS if fmt == "dbn" else ITCH_LOCATES)


def symbol_notes(symbols, names, books, numbers=None, first_names=None,
                 file=None, dropped: int = 0, strip: bool = False,
                 instruments=None) -> list[str]:
    """The notes after a replay on the requested ``symbols`` (names and numbers; book labels,
    checked by :func:`matchcore._symfilter.label_errors`, are left out by the ITCH callers):
    names and numbers the file lacks, and, with ``first_names`` (``Replayer.first_names``),
    locates a stock directory message renamed after their first order, which a name selects by
    the name a locate has then while the summary names books by their last one. ``numbers``:
    the numbers a symbol may be given by (default the locates of ``names`` and ``books``; DBN:
    the instrument ids). ``file``: the file's name, for a replay of several. ``dropped``
    (DBN): books (instrument and publisher pairs) seen after the book numbers ran out, whose
    names and ids are unknown. ``strip`` (ITCH): names are compared without surrounding
    spaces, as the replay's filter selects them (a locate named " AAPL" is kept by AAPL).
    ``instruments`` (DBN): ``{book number: instrument id}``; ``first_names`` is then
    ``DbnReplayer.first_names``, the names at each book's first record (a symbol-mapping
    record may rename an instrument later), and the notes name books and instrument ids."""
    out = []
    where, of = ("in this file", "") if file is None else (f"in {file}", f" of {file}")
    if dropped:
        # a symbol of the file may be one of them: "no symbol ... in this file" was false
        where = (f"among the instruments of {where[3:]} that have a book number ({dropped:,} "
                 f"more instrument and publisher pairs were dropped: it may be one of them)")
    if not symbols:
        return out
    first_names = first_names or {}
    if strip:
        # the note named a kept book's name missing: the filter took " AAPL" as AAPL
        names = {k: n.strip() for k, n in names.items()}
        first_names = {k: n.strip() for k, n in first_names.items()}
    known = set(names.values()) | set(first_names.values())

    def number(x: str) -> bool:
        # as the filter tells a number from a name (symbol_filter): ASCII digits only; "١٣"
        # or "²" is a name, which neither note named when the file lacked it
        return x.isascii() and x.isdigit()

    missing = [x for x in symbols if x not in known and not number(x)]
    if missing:
        out.append(f"note: no symbol named {', '.join(missing)} {where}")
    # a number matches a book's locate (DBN: instrument id), whether or not it was named
    if numbers is None:
        numbers = set(names) | set(books)
    unseen = [x for x in symbols if number(x) and x not in known and int(x) not in numbers]
    if unseen:
        out.append(f"note: no symbol numbered {', '.join(unseen)} {where}")
    wanted = {x for x in symbols if not number(x)}
    for L in sorted(first_names):
        first, last = first_names[L], names.get(L, first_names[L])
        if first == last:
            continue
        if instruments is None:
            what, when = f"locate {L}{of}", "order"
            keeps = f"{shown_name(last)}@locate{L} keeps it"
        else:
            # DBN: a book is an instrument's (of one publisher), which its id selects
            what, when = f"book {L}{of} (instrument {instruments.get(L)})", "record"
            keeps = f"its instrument id {instruments.get(L)} keeps it"
        if L in books and first in wanted and last not in wanted:
            # kept by its first name, summed up and dumped under its last one
            out.append(f"note: {what} was kept as {first!r}, its name at its first "
                       f"{when}, and is named {last!r} in the end")
        elif L not in books and last in wanted and first not in wanted:
            # the summary's name for it was selected, and its book is missing without a word
            out.append(f"note: {what} is named {last!r} only after its first {when} "
                       f"(then {first!r}): no book kept; {keeps}")
    return out


def _note_symbols_and_dump(args, symbols, names, books, numbers=None, first_names=None,
                           dropped: int = 0, dump_names=None, strip: bool = False,
                           instruments=None) -> None:
    """After a replay: the notes of :func:`symbol_notes` (``strip``: its ITCH rule), then
    --dump-book (its symbol column from ``dump_names``, default ``names``)."""
    for line in symbol_notes(symbols, names, books, numbers, first_names, dropped=dropped,
                             strip=strip, instruments=instruments):
        print(line)
    if args.dump_book:
        n = _dump_book(args, books, names if dump_names is None else dump_names)
        print(f"book dump: {_count(n, 'level')} -> {args.dump_book}")


# ---- replay ----

# Options each format would otherwise accept and silently ignore, refused before any work.
_NOT_FOR = {
    "itch": ("--verify", "--committed"),
    "dbn": ("--verify", "--committed"),
    "lobster": ("--symbols", "--snapshot-every", "--snapshot-every-ns", "--depth",
                "--infer-lengths", "--plot", "--committed"),
    "native": ("--symbols", "--snapshot-every", "--snapshot-every-ns", "--depth",
               "--infer-lengths", "--verify", "--plot"),
}
_FORMAT_NAMES = {"itch": "ITCH", "dbn": "DBN", "lobster": "LOBSTER", "native": "native command"}


def _detect_format(path: Path, replay: bool = True) -> str:
    """The format of a replay file without --format: by its magic bytes after gzip
    decompression (DBN, native), a LOBSTER message row, else ITCH (plain or gzip'd; ITCH has no
    magic of its own). A file no replay takes (empty, a gzip'd native or LOBSTER file, other
    text) raises ValueError naming it (see matchcore._magic.detect_format)."""
    from matchcore._magic import detect_format

    return detect_format(path, replay)


def _is_gzip(path) -> bool:
    """Whether a replay input (a Path or stdin) starts with the gzip magic."""
    from matchcore._magic import GZIP_MAGIC, Stdin

    if isinstance(path, Stdin):
        return path.read_head(len(GZIP_MAGIC)) == GZIP_MAGIC
    with open(path, "rb") as f:
        return f.read(len(GZIP_MAGIC)) == GZIP_MAGIC


def _refuse_ignored(args, fmt: str) -> None:
    # --symbols "" is given too (it names nothing, and is refused where it applies)
    # --depth has a value whether given or not: whether it was given decides
    given = [o for o in _NOT_FOR[fmt] if (args.depth_given if o == "--depth" else
                                          getattr(args, o[2:].replace("-", "_")))
             or o == "--symbols" and args.symbols is not None]
    if given:
        raise ValueError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to "
                         f"{_FORMAT_NAMES[fmt]} files")
    check_snapshot_options(args)


def _require_plot_extra(args) -> None:
    """``--plot`` without matplotlib: the ImportError naming the extra (exit 2) before the
    replay, as book and bench say it, not after the whole replay and its outputs."""
    if args.plot:
        from matchcore.replay_plots import _pyplot

        _pyplot()


def _input(file: str):
    """The input a replay or book reads: a Path, or for '-' stdin (matchcore._magic.Stdin),
    whose format is detected from its first bytes, kept for its reader."""
    if file == "-":
        from matchcore._magic import Stdin

        return Stdin()
    path = Path(file)
    if not path.exists():
        raise ValueError(f"no such file: {path}")
    refuse_input_directory(path)
    return path


def refuse_input_directory(path: Path) -> None:
    """An input that is a directory: refused naming it ("[Errno 21] Is a directory" named
    neither the argument nor what was wanted)."""
    if path.is_dir():
        raise ValueError(f"file {path}: is a directory, not a file")


def _replay(args) -> int:
    from matchcore._magic import Stdin

    path = _input(args.file)
    stdin = isinstance(path, Stdin)
    if args.format is None and not (stdin or path.is_file() or path.is_dir()):
        # detection reads the first bytes, which a pipe or FIFO then no longer has to replay
        raise ValueError(f"{path} is a pipe or device: its format cannot be detected without "
                         f"consuming it; give --format")
    fmt = args.format or _detect_format(path)
    _refuse_ignored(args, fmt)
    # --publish "" too: an empty URL was ignored here, and refused by the ITCH replay
    hooked = [o for o, v in (("--publish", args.publish), ("--metrics-port", args.metrics_port))
              if v is not None]
    if hooked and fmt != "itch":
        # the options given and the format the file is read as ("--metrics-port and --publish
        # work with ITCH replays" named an option not given)
        verb = "work" if len(hooked) > 1 else "works"
        raise ValueError(f"{' and '.join(hooked)} {verb} with ITCH replays, not with a "
                         f"{_FORMAT_NAMES[fmt]} file")
    if args.split != 1:
        raise ValueError("--split needs --dask")
    if stdin and fmt in ("lobster", "native"):
        why = ("is memory-mapped" if fmt == "native" else
               "is read with its orderbook file, found by its name")
        raise ValueError(f"- (stdin) holds a {_FORMAT_NAMES[fmt]} file, which {why}: give "
                         f"its path")
    _require_plot_extra(args)
    if args.out:
        refuse_directory_at("--out", args.out, OUT_FILES[fmt])
    if fmt == "lobster":
        return _replay_lobster(args, path)
    if fmt == "native":
        return _replay_native(args, path)
    if fmt == "dbn":
        from matchcore.cli_replay_dbn import replay_dbn_cli

        return replay_dbn_cli(args, path)
    import matchcore.itch as itch

    from matchcore._symfilter import LABEL, label_errors, split_symbols

    symbols = split_symbols(args.symbols)
    check_symbol_numbers(symbols, "itch")
    if (args.publish is not None or args.metrics_port is not None) and not stdin \
            and path.is_file():
        # a file the ITCH reader refuses (--format itch on text, DBN, ITCH cut mid-message)
        # was refused after the metrics server had started and the NATS stream been made
        itch._check_file(path)
    bar, update = _file_progress(path, args.no_progress)
    from matchcore.io.replay_hooks import ReplayHooks

    try:
        hooks = ReplayHooks.from_args(args, bar=bar)
    except BaseException:
        bar.close()
        raise
    seen = []                # the replayer, once its first chunk is in: for a partial summary

    def on_chunk(rep):
        if not seen:
            seen.append(rep)
        hooks.on_chunk(rep)

    # the top-of-book and trade sinks only for an output that takes them: kept for nothing,
    # they held about 50 bytes a message (gigabytes for a real day's --dump-book, or for
    # --metrics-port, whose metrics are the replay's counters)
    keep = bool(args.out or args.plot or hooks.drains_sinks)
    t0 = time.perf_counter()
    try:
        # a book label NAME@locateN keeps locate N whatever it is named at its first order
        # (but not a stock named N) and is checked against the name the locate ends with, as
        # book --symbol does
        r = itch.replay_file(path, progress=update, symbols=symbols,
                             snapshot_every=args.snapshot_every,
                             snapshot_every_ns=args.snapshot_every_ns,
                             snapshot_depth=args.depth if args.depth_given else None,
                             infer_lengths=args.infer_lengths, on_chunk=on_chunk,
                             record_tob=keep, record_trades=keep, **hooks.replay_options)
    except KeyboardInterrupt:
        # the replay's time, before the publisher's close (its flush, and the batches in
        # flight with a broker gone: seconds) was counted in it
        elapsed = time.perf_counter() - t0
        bar.close()
        try:
            _print_interrupted(args, seen[0].stats["messages"] if seen else 0, elapsed,
                               "ITCH 5.0 messages")
        finally:
            # after how far the replay got, as a whole replay's summary comes before what
            # was published
            hooks.interrupted()
        raise
    except BaseException:
        hooks.close()
        raise
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    s = r.stats
    names = r.symbols
    books = r.books
    bad = label_errors(symbols, names)
    if bad:
        # the book of another stock would be summed up, dumped and written under the label;
        # but with --publish the kept locates' books are already in the stream: say so
        hooks.finish(r, hold=False)
        for label, why in bad:
            print(f"matchcore replay: error: no book {label!r} in this file: {why}",
                  file=sys.stderr)
        return 1
    try:
        _print_itch_summary(s, names, books, elapsed, path, update.state["pos"])
        # the book labels were checked above, and each names a locate of the file
        _note_symbols_and_dump(args, symbols and [x for x in symbols if not LABEL.fullmatch(x)],
                               names, books, first_names=r.first_names, strip=True)
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            sinks = hooks.sinks(r)
            save_npy(out / "tob.npy", sinks["tob"])
            save_npy(out / "trades.npy", sinks["trades"])
            save_npy(out / "snapshots.npy", r.snapshots())
            save_npy(out / "system_events.npy", r.system_events)
            summary = {"file": str(path), "format": "itch", "elapsed_s": elapsed,
                       "messages_per_s": s["messages"] / elapsed if elapsed else None,
                       "stats": s, "symbols": {str(k): v for k, v in names.items()},
                       "trading_state": {str(k): list(v) for k, v in r.trading_state.items()}}
            write_json(out / "summary.json", summary, indent=2, default=str)
            print(f"sinks: tob.npy, trades.npy, snapshots.npy, system_events.npy, summary.json "
                  f"-> {out}")
        if args.plot:
            from matchcore.cli_replay_dbn import plot_cli

            from matchcore.io import book_labels

            # a name two locates carry: each book drawn under its label, not both to one file;
            # the sinks as kept by --publish, which drained them ("nothing to draw")
            sinks = hooks.sinks(r)
            plot_cli(args, sinks["tob"], sinks["trades"], {**names, **book_labels(names, books)},
                     1e4)
    except Exception:
        # an output that failed (a full disk): what the replay handed to the publisher is
        # still flushed and reported, and the metrics endpoint stopped, as after a bad label;
        # without it the process's end cut the queued batches off the stream unreported
        hooks.finish(r, hold=False)
        raise
    except BaseException:
        # Ctrl-C or SIGTERM while the outputs are written: what was published said too
        hooks.interrupted()
        raise
    status = hooks.finish(r)
    # records the sinks could not grow for, or orders no book could take: the summary and
    # the outputs above are incomplete (they were, with exit status 0 and no word)
    if report_dropped("replay", s["out_of_memory"]):
        return 1
    return status


def check_snapshot_options(args) -> None:
    """Refuse a negative --snapshot-every or --snapshot-every-ns or a --depth below 1 (ITCH,
    DBN, several files), naming the option given and its value; then both cadences at once,
    a --depth given without either, and a cadence without --out."""
    for option, value, least in (("--snapshot-every", args.snapshot_every, 0),
                                 ("--snapshot-every-ns", args.snapshot_every_ns, 0),
                                 ("--depth", args.depth, 1)):
        if value < least:
            raise ValueError(f"{option} must be >= {least}, got {value}")
    from matchcore._sinks import MAX_SNAPSHOT_DEPTH

    if args.depth > MAX_SNAPSHOT_DEPTH:
        # (the replayers' refusal names their keyword, snapshot_depth)
        raise ValueError(f"--depth must be at most {MAX_SNAPSHOT_DEPTH:,} (a snapshot record of "
                         f"48 bytes a level must fit in 2**31 - 1 bytes), got {args.depth}")
    from matchcore._sinks import _snapshot_memory_limit, snapshot_record_bytes

    limit = _snapshot_memory_limit()
    if limit and snapshot_record_bytes(args.depth) > limit:
        # each snapshot record is this deep: the first ones grew the sink past the machine's
        # memory, which the kernel granted and then killed the replay for (no error, no output)
        raise ValueError(f"--depth {args.depth:,} needs {snapshot_record_bytes(args.depth):,} "
                         f"bytes a snapshot record (16 + 48 a level), more than the "
                         f"{limit:,} bytes snapshots may take on this machine (a quarter of its "
                         f"memory: they are held twice, in the replay and in snapshots.npy's "
                         f"array)")
    if args.snapshot_every and args.snapshot_every_ns:
        # (the replayers' refusal names their keywords, snapshot_every and snapshot_every_ns)
        raise ValueError("give --snapshot-every or --snapshot-every-ns, not both")
    # --depth is the depth of the snapshots: without a cadence none is taken, and the option
    # only set the depth of an empty snapshots.npy while the user expected deeper books
    if args.depth_given and not args.snapshot_every and not args.snapshot_every_ns:
        raise ValueError("--depth needs --snapshot-every or --snapshot-every-ns (it is the "
                         "depth of the snapshots; --dump-book writes every level)")
    # the snapshots go to --out's snapshots.npy alone: without it they were taken and dropped
    for option, value in (("--snapshot-every", args.snapshot_every),
                          ("--snapshot-every-ns", args.snapshot_every_ns)):
        if value and not args.out:
            raise ValueError(f"{option} needs --out (the snapshots are written to "
                             f"DIR/snapshots.npy)")


def _print_interrupted(args, n: int, elapsed: float, what: str) -> None:
    """The summary of a replay stopped by Ctrl-C or SIGTERM: how far it got, and that none of
    the outputs that need the whole file was written."""
    skipped = [o for o, v in (("--dump-book", args.dump_book), ("--out", args.out),
                              ("--plot", args.plot)) if v]
    print(f"interrupted after {n:,} {what} in {elapsed:.3f} s"
          + (f"; not written: {', '.join(skipped)}" if skipped else ""), flush=True)


def _print_itch_summary(s, names, books, elapsed, path, read=None) -> None:
    rate = s["messages"] / elapsed if elapsed > 0 else float("inf")
    print(f"replayed {s['messages']:,} ITCH 5.0 messages "
          f"({size_on_disk(path, s['bytes_consumed'] if read is None else read)}) in "
          f"{elapsed:.3f} s: {rate_text(rate)}")
    from matchcore.io import book_labels

    # two books of one name are told apart as NAME@locateN, as in the metrics and subscribe
    _print_counts_and_books(s, book_labels(names, books), books, "by type")
    print(f"unknown order references: {s['unknown_refs']:,}; "
          + "; ".join(f"{words}: {s[key]:,}" for key, words in RULE_COUNTERS["itch"]))
    unknown = ", ".join(f"{t!r} {n:,}" for t, n in s["unknown_types"].items()) or "none"
    print(f"unknown message types: {unknown}; bad length prefixes: {s['bad_lengths']:,}"
          + (f" (first at offset {s['bad_length_offsets'][0][0]:,}: "
             f"{s['bad_length_offsets'][0][1]}; {s['bytes_skipped']:,} bytes skipped)"
             if s["bad_lengths"] else ""))
    if s["bad_lengths"] and s["bad_length_offsets"][0] == (0, "zero length prefix"):
        print("hint: the file starts with a zero length prefix; if it was written without "
              "prefixes, replay it with --infer-lengths")
    _print_truncated(s["truncated"], "message")


def _print_counts_and_books(s, names, books, label) -> None:
    """Summary lines shared by the ITCH and DBN replays: counts by message type / action
    (``label``), busiest first, then the books (first ten names) and their open orders."""
    if s["counts"]:
        print(f"{label}: " + "  ".join(f"{_count_key(t)} {n:,}"
                                       for t, n in sorted(s["counts"].items(),
                                                          key=lambda kv: -kv[1])))
    _print_books([shown_name(names.get(k, str(k))) for k in sorted(books)[:10]], len(books),
                 s["open_orders"])


def _count_key(t: str) -> str:
    """A key of a summary's counts as printed: a DBN record's action byte is counted as it is,
    also a damaged one, whose newline split the line and whose control codes (ESC) went to
    the terminal; such a key is shown escaped, as an unknown ITCH message type is."""
    return t if t.isprintable() and not t.isspace() else repr(t)


def _print_books(first_ten, n_books, open_orders) -> None:
    """The books line of every replay summary (ITCH, DBN, native): the number of books, the
    first ten names (a file of thousands of symbols made it a line of tens of thousands of
    characters) and the orders left open, in one shape a script can read for any input."""
    more = f" (+{n_books - 10:,} more)" if n_books > 10 else ""
    shown = f": {', '.join(first_ten)}{more}" if n_books else ""
    print(f"books: {n_books:,}{shown}; open orders: {open_orders:,}")


def _print_truncated(t, unit, metadata: int | None = None) -> None:
    """The truncation line of a replay summary: ``t`` is the replayer's ``stats["truncated"]``,
    ``unit`` what the stream is made of (message, record); ``metadata`` (DBN): the bytes of the
    metadata header before the first record, which ``t``'s offsets do not count."""
    if not t:
        print("truncated: no")
        return
    if t.get("stream"):
        print(f"truncated: the {t['stream']}, after "
              f"{(metadata or 0) + t['offset'] + t['bytes']:,} decompressed bytes")
    if t["bytes"]:
        where = " after the metadata" if metadata is not None else ""
        print(f"truncated: the last {unit} at offset {t['offset']:,}{where} is incomplete "
              f"({_held(t)})")


def _held(t) -> str:
    """What an incomplete last message holds: "15 of 41 bytes", or "1 byte" when its length
    is not known (the one byte of a two-byte length prefix read "1 bytes")."""
    if t["expected"]:
        return f"{t['bytes']} of {t['expected']} bytes"
    return f"{t['bytes']} byte{'' if t['bytes'] == 1 else 's'}"


def _replay_lobster(args, path: Path) -> int:
    try:
        from matchcore.lobster import replay_lobster
    except ImportError:
        return extra_missing("replay", "--format lobster needs matchcore.lobster, which this "
                                       "build does not include")
    ob = _lobster_orderbook_path(path)
    if ob is not None and ob.is_symlink() and not ob.exists():
        # the link says which orderbook was meant: starting empty replayed another book
        raise ValueError(f"the orderbook file {ob} is a symbolic link to {os.readlink(ob)}, "
                         f"which does not exist")
    if ob is not None and ob.is_dir():
        raise ValueError(f"the orderbook file {ob} is a directory")
    orderbook = ob if ob is not None and ob.exists() else None
    if orderbook is None:
        # the path looked at: by its name alone, a file of that name in the current
        # directory seemed to be the one missing
        why = (f"no orderbook file {ob}" if ob is not None else
               f"no orderbook file: the name {path.name} has no '_message_' to replace with "
               f"'_orderbook_'")
        if args.verify:
            raise ValueError(f"--verify needs the orderbook file ({why})")
    res = replay_lobster(path, orderbook, verify=args.verify)
    print(res.summary())
    if orderbook is None:
        print(f"note: {why}: the book started empty")
    name = path.name.split("_")[0]
    if args.dump_book:
        n = _dump_book(args, {0: res.book}, {0: name})
        print(f"book dump: {_count(n, 'level')} -> {args.dump_book}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        save_npy(out / "trades.npy", res.trades)
        summary = {"file": str(path), "format": "lobster", "messages": res.messages,
                   "counts": {str(k): v for k, v in res.counts.items()}, "counters": res.counters,
                   "elapsed_s": res.elapsed_s, "agreement_rate": res.agreement_rate,
                   "transition_rate": res.transition_rate}
        write_json(out / "summary.json", summary, indent=2, default=str)
        print(f"sinks: trades.npy, summary.json -> {out}")
    return 0


def _by_symbol(cmds):
    """``(symbol, its records in file order)`` for each symbol of a command array, ascending.

    One stable sort of the symbol column: each symbol's records are then a run of its
    positions, taken when its book is replayed (one symbol's copy at a time, as before). A
    selection per symbol read every record once for each symbol (a file of 5,000 symbols and
    2,000,000 records spent 44 s selecting them, against 1 s replaying them). One symbol: the
    array itself, uncopied."""
    if len(cmds) == 0:
        return
    sym = np.asarray(cmds["symbol"])
    if not (sym != sym[0]).any():
        yield int(sym[0]), cmds
        return
    order = np.argsort(sym, kind="stable")
    keys = sym[order]
    bounds = (np.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist()
    base = np.asarray(cmds)
    for a, b in zip([0, *bounds], [*bounds, len(keys)]):
        yield int(keys[a]), base[order[a:b]]


def _replay_native(args, path: Path) -> int:
    try:
        from matchcore.native import _read_mapped, records
    except ImportError:
        return extra_missing("replay", "--format native needs matchcore.native, which this "
                                       "build does not include")
    from matchcore import EVENT_DTYPE, STP, EventKind, OrderBook

    hdr, cmds = _read_mapped(path, args.committed)     # the records this header counts
    if hdr.started_nonempty:
        print(f"matchcore replay: note: {path} is a journal begun on a book holding orders "
              f"(require_empty=False); replayed here from empty books, so the books and events "
              f"differ from the live session's (matchcore.native.replay_commands(path, book) "
              f"with a book holding that state replays it)", file=sys.stderr)
    stp = hdr.stp if hdr.stp is not None else STP.CANCEL_RESTING
    books, counts = {}, {}
    t0 = time.perf_counter()
    events = []
    for sym, sel in _by_symbol(cmds):
        book = OrderBook(stp=stp)
        ev = book.process(sel)
        # a lone book's events say symbol 0: stamped with the one they are of, else those of
        # several symbols (ids shared between them) cannot be told apart in events.npy
        ev["symbol"] = sym
        events.append(ev)
        books[int(sym)] = book
    elapsed = time.perf_counter() - t0
    # an empty file: no events, still EVENT_DTYPE (events.npy held a float64 array)
    ev = np.concatenate(events) if events else np.empty(0, dtype=EVENT_DTYPE)
    for k in EventKind:
        counts[k.name] = int(np.count_nonzero(ev["kind"] == k)) if len(ev) else 0
    rate = len(cmds) / elapsed if elapsed > 0 else float("inf")
    print(f"replayed {len(cmds):,} native commands through process() in {elapsed:.3f} s: "
          f"{rate_text(rate)}")
    print("events: " + "  ".join(f"{k} {v:,}" for k, v in counts.items()))
    _print_books([str(k) for k in list(books)[:10]], len(books),
                 sum(len(b) for b in books.values()))
    if args.committed:
        torn = hdr.uncommitted_bytes % hdr.record_size
        print(f"committed records: {hdr.count:,}; left out after them: "
              f"{hdr.uncommitted_bytes:,} bytes ({records(hdr.uncommitted_records, 'whole ')}"
              f"{f' and {torn} bytes of a torn one' if torn else ''})"
              f"{'' if hdr.is_journal else ' (not a Recorder journal)'}")
    names = {k: str(k) for k in books}
    if args.dump_book:
        n = _dump_book(args, books, names)
        print(f"book dump: {_count(n, 'level')} -> {args.dump_book}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        save_npy(out / "events.npy", ev)
        write_json(out / "summary.json",
                   {"file": str(path), "format": "native", "commands": len(cmds),
                    "uncommitted_bytes": hdr.uncommitted_bytes,
                    "elapsed_s": elapsed, "events": counts}, indent=2)
        print(f"sinks: events.npy, summary.json -> {out}")
    return 0


# ---- gen-itch ----

def _gen(args) -> int:
    import matchcore.itch as itch

    # the generator's own refusals name its keywords (messages, symbols, seed)
    if args.messages < 0:
        raise ValueError(f"--messages must be >= 0, got {args.messages}")
    if not 1 <= args.symbols <= 65535:
        raise ValueError(f"--symbols must be in 1..65535, got {args.symbols}")
    if not 0 <= args.seed < 2**64:
        raise ValueError(f"--seed must be in [0, 2**64), got {args.seed}")
    from matchcore.itch._gen import min_messages

    fixed = min_messages(args.symbols)
    if args.messages < fixed:
        raise ValueError(f"--messages {args.messages:,} is too few for --symbols {args.symbols}: "
                         f"it needs at least {fixed:,} (directory, trading actions, crosses, "
                         f"system events)")
    bar = _bar(args.messages, "msg", args.no_progress)
    state = {"done": 0}

    def update(done):
        bar.update(done - state["done"])
        state["done"] = done

    to_stdout = args.out == "-"
    # asked before the write: OUT replaced by a rename is no longer the file stdout writes to
    # (`gen-itch day.itch > day.itch`), and the summary went to the file it replaced
    summary_to_stderr = to_stdout or is_stdout(args.out)
    t0 = time.perf_counter()
    try:
        with naming_output("out", "- (stdout)" if to_stdout else args.out):
            path = itch.generate(sys.stdout.buffer if to_stdout else args.out,
                                 messages=args.messages, symbols=args.symbols, seed=args.seed,
                                 progress=update)
            if to_stdout:
                sys.stdout.buffer.flush()
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    size = ""
    if not to_stdout:
        st = path.stat()
        # a FIFO, pipe or device holds none of what went through it: its size (0) is not said
        size = f": {size_text(st.st_size)}" if stat.S_ISREG(st.st_mode) else ""
    # 'gen-itch - | matchcore replay /dev/stdin': the summary must not end the data
    symbols = f"{args.symbols} symbol" + ("s" if args.symbols != 1 else "")
    print(f"wrote {args.messages:,} ITCH 5.0 messages for {symbols} (seed "
          f"{args.seed}) to {'stdout' if to_stdout else path}{size} in {elapsed:.2f} s",
          file=sys.stderr if summary_to_stderr or is_stdout(path) else sys.stdout)
    return 0


# ---- book ----

def _book_damage_notes(s) -> None:
    """What the replay behind ``book`` could not read, on stderr: the ladder of a damaged or
    cut file is not the file's whole story, and a file without length prefixes read without
    --infer-lengths gave "no symbol ... symbols seen:" with nothing seen, as if the symbol
    were not in it."""
    if s["bad_lengths"]:
        off, why = s["bad_length_offsets"][0]
        print(f"note: bad length prefixes: {s['bad_lengths']:,} (first at offset {off:,}: "
              f"{why}; {s['bytes_skipped']:,} bytes skipped)", file=sys.stderr)
        if (off, why) == (0, "zero length prefix"):
            print("hint: the file starts with a zero length prefix; if it was written without "
                  "prefixes, read it with --infer-lengths", file=sys.stderr)
    t = s["truncated"]
    if t and t.get("stream"):
        print(f"note: the {t['stream']}, after {t['offset'] + t['bytes']:,} decompressed bytes",
              file=sys.stderr)
    if t and t["bytes"]:
        print(f"note: the last message at offset {t['offset']:,} is incomplete "
              f"({_held(t)})", file=sys.stderr)


def _book(args) -> int:
    import matchcore.itch as itch

    if args.depth < 1:
        raise ValueError(f"--depth must be >= 1, got {args.depth}")
    if not args.symbol.strip():
        # (the replay's own refusal named its "symbols" argument and the name stripped)
        raise ValueError(f"--symbol {args.symbol!r} names no symbol")
    if args.plot:
        from matchcore.replay_plots import check_image_name

        # a missing extra, or a suffix matplotlib cannot write, said before the replay
        check_image_name("--plot", args.plot, BOOK_PLOT)
    from matchcore._magic import Stdin

    path = _input(args.file)
    stdin = isinstance(path, Stdin)
    if stdin or path.is_file():
        # (a pipe or FIFO is read as ITCH: detection would consume its first bytes; stdin
        # keeps them for its reader)
        fmt = _detect_format(path, replay=False)
        if fmt != "itch":
            # read as ITCH it gave "no symbol ... symbols seen:" with nothing seen; refused
            # in book's words (replay's told a gzip'd LOBSTER file to be decompressed first)
            if fmt == "text":
                raise ValueError(f"{path} is a text file: book reads ITCH 5.0 files")
            gz = "gzip'd " if _is_gzip(path) else ""
            plain = (f"; it reads {_FORMAT_NAMES[fmt]} files uncompressed"
                     if gz and fmt != "dbn" else "")
            raise ValueError(f"{path} is a {gz}{_FORMAT_NAMES[fmt]} file: book reads ITCH 5.0 "
                             f"files (replay --dump-book gives the final books of any "
                             f"format{plain})")
    # (--at "" is no time: it showed the end of the file, as if --at had not been given)
    until = None
    if args.at is not None:
        try:
            until = itch.parse_time(args.at)
        except ValueError:
            # the library's words named no option, and said "not HH:MM:SS" of 09:30:60
            raise ValueError(f"--at {args.at!r}: not a time of day: HH:MM:SS[.fraction] with "
                             f"hours below 24, minutes and seconds below 60, 1 to 9 fraction "
                             f"digits") from None
    from matchcore._symfilter import ITCH_LOCATES, LABEL, label_errors, plain_number, symbol_filter

    args.symbol = plain_number(args.symbol.strip())     # a locate written "001", as --symbols
    # NAME@locateN: one of the books of a name several locates carry, as the summary shows it
    label = LABEL.fullmatch(args.symbol)
    want = str(int(label.group(2))) if label else args.symbol
    # a locate no ITCH file holds, in the option's name (the replay's names symbols)
    symbol_filter([want], "--symbol", ITCH_LOCATES)

    def replay(selection):
        bar, update = _file_progress(path, args.no_progress)
        try:
            return itch.replay_file(path, progress=update, symbols=[selection], until_ns=until,
                                    infer_lengths=args.infer_lengths, record_tob=False,
                                    record_trades=False)
        finally:
            bar.close()

    r = replay(want)
    _book_damage_notes(r.stats)
    if label:
        for _, why in label_errors([args.symbol], r.symbols):
            print(f"matchcore book: error: no book {args.symbol!r} "
                  f"{'before ' + args.at if args.at else 'in this file'}: {why}",
                  file=sys.stderr)
            return 1
        # that locate's book, looked up by number: r.book("7") is the book of a stock named
        # 7 when there is one, and such a stock was shown for AAPL@locate7
        from matchcore import OrderBook

        loc = int(want)
        book = r.books.get(loc)
        if book is None:                # named, no order yet: an empty book
            book = OrderBook()
        return _print_book(args, r, until, loc, book)
    # names without surrounding spaces, as --symbols, r.book and the labels take them: a
    # locate named " ZZZ" with no order yet was "no symbol 'ZZZ'", one beside ZZZ's book hidden
    carriers = sorted(k for k, n in r.symbols.items() if n.strip() == args.symbol)
    if len(carriers) > 1:
        # r.book(name) is the first of them: another book's ladder shown under the name
        from matchcore.io import book_label

        print(f"matchcore book: error: symbol {args.symbol!r} is carried by locates "
              f"{', '.join(map(str, carriers))}: give one of "
              f"{', '.join(book_label(args.symbol, k) for k in carriers)} (or its locate "
              f"number)", file=sys.stderr)
        return 1
    if len(carriers) == 1 and carriers[0] not in r.books and carriers[0] in r.first_names:
        # named so by a stock directory message after its first order: the name filter left
        # it out then, and its empty book was shown. Again, by its locate (as a label does).
        label = f"{args.symbol}@locate{carriers[0]}"
        if stdin or not path.is_file():
            # a pipe or FIFO cannot be read twice
            print(f"matchcore book: error: locate {carriers[0]} is named {args.symbol!r} only "
                  f"after its first order (then {r.first_names[carriers[0]]!r}): give "
                  f"--symbol {label}", file=sys.stderr)
            return 1
        r = replay(label)
    try:
        book = r.book(args.symbol)
        loc = next(k for k, b in r.books.items() if b is book)
    except KeyError:
        # a symbol the file names but which has had no order yet has an empty book, not none
        loc = next((k for k, n in r.symbols.items()
                    if n.strip() == args.symbol or str(k) == str(args.symbol)), None)
        if loc is None:
            # the file's names, escaped as the ladder's header shows them: a damaged file's
            # escape sequences reached the terminal through this error
            names = sorted(set(map(shown_name, r.symbols.values())))
            # the name a locate had at its first order, renamed since: the summary and this
            # command name its book by the later name
            renamed = "".join(
                f"; locate {k} was named {n!r} at its first order, and is {r.symbols[k]!r} "
                f"{'then' if args.at else 'in the end'} "
                f"(--symbol {shown_name(r.symbols[k])}@locate{k})"
                for k, n in sorted(r.first_names.items())
                if n.strip() == args.symbol and r.symbols.get(k, n).strip() != n.strip())
            print(f"matchcore book: error: no symbol {args.symbol!r} "
                  f"{'before ' + args.at if args.at else 'in this file'}; symbols seen: "
                  f"{', '.join(names[:20]) or 'none'}{' ...' if len(names) > 20 else ''}"
                  f"{renamed}",
                  file=sys.stderr)
            return 1
        from matchcore import OrderBook

        book = OrderBook()
    return _print_book(args, r, until, loc, book)


def _print_book(args, r, until, loc: int, book) -> int:
    name = shown_name(r.symbols.get(loc, str(loc)))
    when = _fmt_time(until) if until is not None else f"end of file ({_fmt_time(r.stats['last_ts'])})"
    bids, asks = book.depth_orders(args.depth)
    print(f"{name} (locate {loc}) at {when}: {_count(len(book), 'order')}, "
          f"{book.level_count(0):,} bid / {_count(book.level_count(1), 'ask level')}; "
          f"{_count(r.stats['messages'], 'message')} replayed")
    state = r.trading_state.get(loc)
    if state:
        print(f"trading state: {shown_name(state[0])}"
              f"{' (' + shown_name(state[1]) + ')' if state[1] else ''}")
    # (orders, qty, price) as shown; the columns widen to the widest value: a level of more
    # than 999,999,999 shares pushed its row's '|' and the ask side off their headers
    bid_rows = [(str(int(o)), str(int(q)), f"{p / 1e4:.4f}") for p, q, o in bids]
    ask_rows = [(str(int(o)), str(int(q)), f"{p / 1e4:.4f}") for p, q, o in asks]
    wide = [max([least] + [len(r[k]) for r in rows])
            for rows in (bid_rows, ask_rows) for k, least in ((0, 7), (1, 9), (2, 11))]
    bo, bq, bp, ao, aq, ap = wide
    print(f"{'orders':>{bo}} {'qty':>{bq}} {'bid':>{bp}} | {'ask':<{ap}} {'qty':<{aq}} orders")
    for i in range(max(len(bids), len(asks))):
        left = (f"{bid_rows[i][0]:>{bo}} {bid_rows[i][1]:>{bq}} {bid_rows[i][2]:>{bp}}"
                if i < len(bids) else " " * (bo + bq + bp + 2))
        right = (f"{ask_rows[i][2]:<{ap}} {ask_rows[i][1]:<{aq}} {ask_rows[i][0]:<{ao}}"
                 if i < len(asks) else "")
        print(f"{left} | {right}".rstrip())
    if len(bids) and len(asks):
        bid, ask = int(bids[0][0]), int(asks[0][0])
        print(f"spread {(ask - bid) / 1e4:.4f}, mid {_mid_dollars(bid, ask)}"
              " (prices in dollars: ITCH prices carry 4 implied decimals)")
    if args.plot:
        with naming_output("--plot", args.plot):
            _plot(args.plot, name, when, bids, asks)
        print(f"depth plot -> {args.plot}")
    # an order no book could take: the ladder shown lacks it (exit status 0 and no word)
    if report_dropped("book", r.stats["out_of_memory"],
                      incomplete="the book shown is incomplete"):
        return 1
    return 0


def _mid_dollars(bid: int, ask: int) -> str:
    """The mid of ``bid`` and ``ask`` (ITCH ticks of 1/10000 dollar) in dollars, exact: four
    decimals, five where the spread is an odd number of ticks and the mid falls between two
    ticks (at four it was rounded onto one of them, as often the ask as not). O(1)."""
    total = bid + ask                   # the mid in half ticks: 1/20000 dollar
    if total % 2 == 0:
        whole, frac = divmod(total // 2, 10_000)
        return f"{whole}.{frac:04d}"
    whole, frac = divmod(total * 5, 100_000)
    return f"{whole}.{frac:05d}"


def _level_width(bids, asks) -> int:
    """Price width (ticks) drawn for the deepest level of a side: the median gap between
    adjacent levels, else the spread, else one tick."""
    gaps = np.concatenate([np.abs(np.diff(bids[:, 0])) if len(bids) else np.empty(0),
                           np.abs(np.diff(asks[:, 0])) if len(asks) else np.empty(0)])
    if len(gaps):
        return max(int(np.median(gaps)), 1)
    if len(bids) and len(asks):
        return max(int(asks[0][0] - bids[0][0]), 1)
    return 1


def _depth_steps(levels, sign, width):
    """Step outline of cumulative depth: prices (ticks) and shares, one more point than levels.

    Each level holds its cumulative depth from its price to the next level's; the deepest one
    needs a closing price too, ``width`` ticks further out (``sign`` -1 for bids, +1 for asks),
    or a step drawn where="post" gives it no width at all."""
    x = np.append(levels[:, 0].astype(np.float64), float(levels[-1][0]) + sign * width)
    y = np.cumsum(levels[:, 1]).astype(np.float64)
    return x, np.append(y, y[-1])


def _plot(path, name, when, bids, asks) -> None:
    from matchcore.replay_plots import _pyplot, save_figure

    plt = _pyplot(BOOK_PLOT)    # without matplotlib: an ImportError naming the extra (exit 2)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = _level_width(bids, asks)
    for levels, sign, color, label in ((bids, -1, "tab:green", "bids (cumulative)"),
                                       (asks, 1, "tab:red", "asks (cumulative)")):
        if not len(levels):
            continue
        x, y = _depth_steps(levels, sign, width)
        ax.step(x / 1e4, y, where="post", color=color, label=label)
        ax.fill_between(x / 1e4, y, step="post", alpha=0.25, color=color)
    ax.set_xlabel("price ($)")
    ax.set_ylabel("shares")
    # literal text: a name holding two '$' was read as mathtext (see replay_plots)
    ax.set_title(f"{name} depth at {when}", parse_math=False)
    if len(bids) or len(asks):
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
