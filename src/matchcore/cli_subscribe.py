"""``matchcore subscribe``: read the market data a replay published to NATS JetStream.

Thin over :func:`matchcore.io.nats.consume`: rebuilds top of book, L2 levels and trade totals
per symbol from the stream (from its first message) and prints them; ``--print`` also shows
every batch as it arrives.
"""
from __future__ import annotations

import sys

from matchcore._cliutil import decimal, int64, shown_name
from matchcore._symfilter import split_symbols
from matchcore.bench.report import _count


def add_parser(p, name):
    p.add_argument("url", nargs="?", default="nats://127.0.0.1:4222",
                   help="NATS server (default nats://127.0.0.1:4222)")
    p.add_argument("--symbols", default=None, help="comma-separated symbols (default all)")
    p.add_argument("--kinds", default=None, help="comma-separated kinds: trade,tob,l2 (default all)")
    p.add_argument("--stream", default="MATCHCORE", help="JetStream stream (default MATCHCORE)")
    p.add_argument("--subject-prefix", default="mc", help="subject prefix (default mc)")
    p.add_argument("--follow", action="store_true",
                   help="keep reading new messages (until --idle or --timeout, or Ctrl-C)")
    p.add_argument("--idle", type=decimal, default=None, metavar="S",
                   help="with --follow: stop after S seconds without a message")
    p.add_argument("--timeout", type=decimal, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--depth", type=int64, default=None,
                   help="L2 levels shown per side (default 5; with l2 among --kinds)")
    p.add_argument("--print", dest="print_batches", action="store_true",
                   help="print one line per batch received")
    p.add_argument("--no-progress", action="store_true",
                   help="no effect: subscribe draws no progress bar (taken, as every command "
                        "takes it)")


def _px(p):
    return f"{p / 1e4:.4f}" if p else "-"


def run(args) -> int:
    try:
        from matchcore.io.nats import (KIND_NAMES, MarketDataConsumer, consume, decode_batch,
                                       display_url, filter_subjects)
        from matchcore.io.nats.consumer import kind_mismatch
        from matchcore.io.nats.streams import _check_stream_name, _check_url, _nats
        _nats()          # the extra itself: io.nats imports nats-py only when it connects
    except ImportError as e:
        from matchcore._cliutil import extra_missing

        return extra_missing("subscribe", e)
    depth_given = args.depth is not None
    if not depth_given:
        args.depth = 5
    if args.depth < 0:
        print(f"matchcore subscribe: error: --depth must be >= 0, got {args.depth}",
              file=sys.stderr)
        return 1
    if args.idle is not None and not args.follow:
        # without --follow the read stops at the stream's end: --idle did nothing
        print("matchcore subscribe: error: --idle needs --follow", file=sys.stderr)
        return 1
    for opt, value in (("--timeout", args.timeout), ("--idle", args.idle)):
        # a negative (or NaN) time read nothing and exited 0, as if the stream were empty
        if value is not None and not value > 0:
            print(f"matchcore subscribe: error: {opt} must be > 0 seconds, got {value}",
                  file=sys.stderr)
            return 1

    def show(subject, payload):
        # Each line is flushed as its batch arrives: into a pipe (`| grep`, `| head`) the lines
        # of a followed stream stayed in stdout's 8 KiB buffer, shown late or never, and a
        # reader that had gone went unnoticed for as long.
        # A subject as names are shown: its prefix (or a foreign publisher's token) may hold
        # characters that are not printable.
        shown = shown_name(subject)
        try:
            kind, loc, seq, rec = decode_batch(payload)
        except ValueError as e:
            print(f"{shown}: malformed batch ({e})", flush=True)
            return
        why = kind_mismatch(subject, kind)
        if why is not None:          # left out by the consumer, as a malformed one
            print(f"{shown}: malformed batch ({why})", flush=True)
            return
        head = f"{shown} {KIND_NAMES[kind]} locate {loc} seq {seq} +{len(rec)}"
        if c.left_out is not None:   # a redelivery, out of sequence: not in the books
            # the book it names (one a label selection leaves out) escaped, as the summary
            # shows names
            print(f"{head}: left out ({shown_name(c.left_out)})", flush=True)
            return
        last = rec[-1] if len(rec) else None
        tail = ""
        if last is not None and kind == 2:
            tail = (f" last: bid {_px(last['bid'])} x {last['bid_qty']}  ask {_px(last['ask'])}"
                    f" x {last['ask_qty']}")
        elif last is not None and kind == 1:
            tail = f" last: {last['shares']} @ {_px(last['price'])}"
        print(f"{head}{tail}", flush=True)

    class Consumer(MarketDataConsumer):
        left_out = None              # why the batch just applied was left out, for show()

        def apply(self, subject, payload, headers=None):
            self.left_out = super().apply(subject, payload, headers)
            return self.left_out

    try:
        c = Consumer()
        # --symbols "" read every symbol, as if it were not given
        symbols = split_symbols(args.symbols, "--symbols")
        kinds = split_symbols(args.kinds, "--kinds")
        filter_subjects(args.subject_prefix, symbols, kinds)
        # as consume() refuses them, before anything is read: refused there, the summary of a
        # read that never began followed the error
        _check_stream_name(args.stream)
        _check_url(args.url)
        if depth_given and kinds is not None and "l2" not in kinds:
            # the L2 levels shown: without l2 read the option did nothing
            raise ValueError("--depth needs l2 among --kinds")
    except ValueError as e:          # bad --kinds: nothing was read
        print(f"matchcore subscribe: error: {e}", file=sys.stderr)
        return 1
    code = 0
    try:
        consume(args.url, symbols=symbols, kinds=kinds,
                stream=args.stream, prefix=args.subject_prefix, follow=args.follow,
                idle=args.idle, timeout=args.timeout, consumer=c,
                on_batch=show if args.print_batches else None)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM (the connection is closed by now): report what was received;
        # matchcore.__main__ prints the one line on stderr and gives the exit status
        _summary(c, args)
        _note_unseen(c, symbols)
        raise
    except BrokenPipeError:          # stdout's reader left: nothing more to print
        raise
    except ValueError as e:
        print(f"matchcore subscribe: error: {e}", file=sys.stderr)
        code = 1
    except Exception as e:   # connection refused, no such stream: the client's own words
        # the stream name as other names are shown: one JetStream takes may hold characters
        # that are not printable (a right-to-left override)
        print(f"matchcore subscribe: error: cannot read {shown_name(args.stream)} at "
              f"{display_url(args.url)}: {type(e).__name__}: {e}", file=sys.stderr)
        code = 1
    # whatever ended the read (an error, Ctrl-C above), what was received is reported
    _summary(c, args)
    _note_unseen(c, symbols)
    if c.timed_out:
        # the books above looked like the stream's last ones
        print(f"note: --timeout {args.timeout:g} s ended the read before the end of the "
              f"stream: the books above are not its last state")
    # books rebuilt without some of their batches are not the publisher's: an exit 0 passed
    # them on as whole. Batches never received (sequence gaps), malformed ones and ones out
    # of sequence, all left out: one line naming each count.
    problems = []
    gaps = sum(c.gaps.values())
    if gaps:
        n = sum(c.missing.values())
        problems.append(f"{gaps:,} sequence gap{'s' if gaps != 1 else ''} seen: {n:,} "
                        f"record{'s' if n != 1 else ''} missed, in {len(c.gaps):,} "
                        f"subject{'s' if len(c.gaps) != 1 else ''}")
    if c.bad:
        problems.append(f"{c.bad:,} malformed batch{'es' if c.bad != 1 else ''}")
    if c.out_of_sequence:
        problems.append(f"{c.out_of_sequence:,} batch{'es' if c.out_of_sequence != 1 else ''} "
                        f"out of sequence left out")
    if problems:
        print(f"matchcore subscribe: error: {'; '.join(problems)}: the books above lack those "
              f"records", file=sys.stderr)
        code = 1
    return code


def _note_unseen(c, symbols) -> None:
    """The selected names and book labels no record was received for (a name never
    published, a typo, a label of a locate not published under that name): left out of the
    summary without a word, as a replay notes the symbols its file lacks."""
    if not symbols:
        return
    from matchcore._symfilter import LABEL, plain_number

    seen = set(c.symbols())
    named = {m.group(1) if m else k for k in seen for m in [LABEL.fullmatch(k)]}
    # per book (its label or name, a number in its plain form), in order: the ways it was
    # given ("AAPL@locate2,AAPL@locate02" was two notes for one book)
    unseen: dict[str, dict[str, None]] = {}
    for s in symbols:
        m = LABEL.fullmatch(s)
        if m:
            name, loc = m.group(1), int(m.group(2))
            book = f"{name}@locate{loc}"
            # under its label, or under the bare name when the name was selected whole and
            # that locate is its only book
            found = book in seen or (name in seen and loc in c.locates.get(name, ()))
        else:
            # a number read in both forms, as select() reads it ("007" found as "7")
            book = plain_number(s)
            found = s in named or book in named
        if not found:
            unseen.setdefault(book, {})[s] = None
    if unseen:
        # a number names a locate in the replay whatever its name, here the subjects of the
        # locates published without one: a named locate's book is not under its number
        numbers = any(s.isascii() and s.isdigit() for s in unseen)
        shown = []
        for given in unseen.values():
            first, *also = map(shown_name, given)
            shown.append(first + (f" (also given as {', '.join(also)})" if also else ""))
        print(f"note: no records received for {', '.join(shown)}"
              + (" (a number selects the book of a locate published without a name; a named "
                 "locate's book is read by its name or NAME@locateN)" if numbers else ""))


def _summary(c, args) -> None:
    rec = c.records
    print(f"received {_count(c.batches, 'batch', 'batches')}: trade {rec['trade']:,}, tob {rec['tob']:,}, "
          f"l2 {rec['l2']:,} records; malformed {c.bad:,}; missing (sequence gaps) "
          f"{sum(c.missing.values()):,} records"
          + (f"; {_count(c.session_changes, 'subject')} restarted by a newer publishing session"
             if c.session_changes else "")
          + (f"; {_count(c.out_of_sequence, 'batch', 'batches')} out of sequence (behind their subject's seq, of a "
             f"locate not read from it before: a publisher that counted seq per locate), left "
             f"out" if c.out_of_sequence else "")
          + (f"; broker errors: resubscribed {c.resubscribes:,}x, last {c.last_error}"
             if c.resubscribes or c.last_error else ""))
    # only the kinds read: --kinds tob printed "trades 0 (0 shares)" for books that trade
    read = set(split_symbols(getattr(args, "kinds", None), "--kinds") or ("trade", "tob", "l2"))
    for sym in c.symbols():
        # each book's own entries, as kept (a name can be kept whole in one kind and by its
        # books' labels in another, read in another session): get() and in on a name whose
        # books are kept under labels raise, naming them, as [] does
        t = dict.get(c.tob, sym)
        n, vol = dict.get(c.trades, sym, (0, 0))
        parts = []
        if "tob" in read:
            parts.append(f"bid {_px(t[1])} x {t[2]:,}  ask {_px(t[3])} x {t[4]:,}" if t
                         else "no top of book")
        if "trade" in read:
            parts.append(f"trades {n:,} ({vol:,} shares)")
        l2 = None
        if "l2" in read:        # the level count whenever l2 is read, --depth 0 too
            l2 = f"L2 {_count(len(dict.get(c.levels, sym, ())), 'level')}"
            if dict.get(c.levels, sym) and args.depth:
                # an empty side said as such: "best asks " with nothing after it read as a
                # line cut short (a book with no level at all has its count alone)
                for side, rows in zip(("bids", "asks"), c.depth(sym, args.depth)):
                    l2 += (f"; best {side} " + ", ".join(f"{_px(p)} x {q:,} ({o})"
                                                          for p, q, o in rows)
                           if rows else f"; no {side}")
        # a name from the stream (a damaged file's, read back from its subject token) as the
        # replay summary shows it: escaped
        shown = shown_name(sym)
        if not parts:           # L2 alone: on the book's own line
            print(f"{shown:<8} {l2}")
            continue
        print(f"{shown:<8} {'; '.join(parts)}")
        if l2:
            print(f"         {l2}")
