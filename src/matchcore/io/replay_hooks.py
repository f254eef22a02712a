"""The integrations of ``matchcore replay`` (``--metrics-port``, ``--publish``) as one object the
replay command drives per chunk, so that the command itself stays a thin caller:

    hooks = ReplayHooks.from_args(args)       # starts the metrics server / connects to NATS
    r = itch.replay_file(path, on_chunk=hooks.on_chunk, **hooks.replay_options)
    hooks.finish(r)                           # flush, report, hold the endpoint, stop

Each optional dependency is imported only when its option is given.
"""
from __future__ import annotations

import sys
import time

from matchcore._nocopy import NoCopy


def add_replay_options(p) -> None:
    """The replay options of the integrations (argparse)."""
    from matchcore._cliutil import decimal_or_inf, int64

    p.add_argument("--metrics-port", type=int64, default=None, metavar="N",
                   help="serve Prometheus metrics at http://127.0.0.1:N/metrics during the replay "
                        "(0 = a free port; needs matchcore[metrics])")
    p.add_argument("--metrics-hold", type=decimal_or_inf, default=None, metavar="S",
                   help="keep serving the metrics S seconds after the replay (for a last scrape)")
    p.add_argument("--publish", default=None, metavar="nats://HOST:PORT",
                   help="publish trades, top of book and L2 changes per symbol to NATS JetStream "
                        "(needs matchcore[nats])")
    p.add_argument("--publish-kinds", default=None, metavar="K,K",
                   help="what --publish sends: any of trade,tob,l2 (default all)")
    p.add_argument("--stream", default=None,
                   help="JetStream stream for --publish (default MATCHCORE)")
    p.add_argument("--subject-prefix", default=None,
                   help="subjects are PREFIX.KIND.SYMBOL (default mc)")


def refuse_orphan_options(args) -> None:
    """Refuse an option of --publish without --publish, or --metrics-hold without
    --metrics-port: it was ignored, and the replay ran without what the user asked for."""
    orphans = [o for o, v in (("--publish-kinds", getattr(args, "publish_kinds", None)),
                              ("--stream", getattr(args, "stream", None)),
                              ("--subject-prefix", getattr(args, "subject_prefix", None)))
               if v is not None and getattr(args, "publish", None) is None]
    if getattr(args, "metrics_hold", None) is not None and getattr(args, "metrics_port",
                                                                    None) is None:
        orphans.append("--metrics-hold")
    if orphans:
        needs = ", ".join(sorted({"--metrics-port" if o == "--metrics-hold" else "--publish"
                                  for o in orphans}))
        raise ValueError(f"{', '.join(orphans)} {'needs' if len(orphans) == 1 else 'need'} "
                         f"{needs}")


def _hold(seconds: float) -> None:
    """Sleep ``seconds`` (inf: until interrupted). time.sleep() alone raised OverflowError for
    inf or a hold beyond time_t, after the replay had run."""
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 3600.0))


class ExtraMissing(ImportError, ValueError):
    """An option whose optional dependency is not installed (the message names the extra).
    A ``ValueError`` as before, and an ``ImportError`` so that the command line gives it the
    exit status of every other missing extra (2)."""


class ReplayHooks(NoCopy):
    """Per-chunk consumers of one replay: Prometheus metrics and/or a NATS publisher. Also
    puts the replay's message rate on the progress bar, if there is one."""

    _no_copy = ("it holds a metrics server and a NATS publisher of this process",
                "Make new hooks in the other process")

    def __init__(self, *, metrics_port=None, metrics_hold=0.0, publish=None,
                 publish_kinds=("trade", "tob", "l2"), stream="MATCHCORE", prefix="mc",
                 keep_sinks=False, bar=None, out=None):
        from matchcore._core import _flag_arg
        keep_sinks = _flag_arg(keep_sinks, "keep_sinks")   # before a server is started
        if not metrics_hold >= 0:      # NaN too: it skipped the hold silently
            raise ValueError(f"--metrics-hold must be >= 0, got {metrics_hold}")
        if metrics_port is not None and not 0 <= metrics_port <= 65535:
            raise ValueError(f"--metrics-port must be in 0..65535, got {metrics_port}")
        self.out = sys.stdout if out is None else out    # looked up now: tests swap stdout
        self.bar = bar
        self.metrics = self.server = self.publisher = self.bridge = None
        self.metrics_hold = metrics_hold
        self.replay_options = {}
        self._t0 = time.perf_counter()
        if metrics_port is not None:
            from matchcore.io.metrics import ReplayMetrics, serve_metrics

            try:
                self.metrics = ReplayMetrics()
            except ImportError as e:       # the message names the extra to install
                raise ExtraMissing(f"--metrics-port: {e}") from None
            try:
                self.server = serve_metrics(metrics_port, registry=self.metrics.registry)
            except OSError as e:      # a port in use: say which option asked for it
                err = OSError(f"--metrics-port {metrics_port}: {e}")
                err.errno = e.errno
                raise err from None
            print(f"metrics: {self.server.url}", file=out, flush=True)
        if publish is not None:
            from matchcore.io.nats import (NatsPublisher, ReplayPublisher, StreamSetupError,
                                           display_url)

            # once, for the publisher's stream check and the bridge (a generator is used up)
            publish_kinds = tuple(publish_kinds)
            try:
                self.publisher = NatsPublisher(publish, stream=stream, prefix=prefix,
                                               connect_timeout=3.0, kinds=publish_kinds)
            except ImportError as e:
                self.close()
                raise ExtraMissing(f"--publish: {e}") from None
            except (ConnectionError, StreamSetupError, ValueError) as e:
                self.close()
                raise ValueError(f"--publish: {e}") from None
            try:
                self.bridge = ReplayPublisher(self.publisher, kinds=publish_kinds,
                                              keep=keep_sinks)
            except BaseException:
                # bad kinds: the metrics server and the publisher above are running
                self.close()
                raise
            # the kinds as the bridge took them (a generator given here is used up by now)
            if "l2" in self.bridge.kinds:
                self.replay_options["record_l2"] = True
            from matchcore._cliutil import shown_name

            # the stream name as subscribe's "cannot read NAME" shows it, and the prefix too:
            # ones JetStream takes may hold characters that are not printable
            print(f"publishing {','.join(self.bridge.kinds)} to {display_url(publish)} (stream "
                  f"{shown_name(stream)}, subjects {shown_name(prefix)}.KIND.SYMBOL)", file=out,
                  flush=True)

    @classmethod
    def from_args(cls, args, bar=None):
        given = getattr(args, "publish_kinds", None)
        # a kind named twice once, in the order given ("publishing tob,tob ...")
        kinds = tuple(dict.fromkeys(k.strip() for k in (given or "").split(",") if k.strip()))
        if given is not None and not kinds:
            # it published every kind, as if --publish-kinds were not given
            raise ValueError(f"--publish-kinds {given!r} names nothing (choose from trade, tob, "
                             f"l2; leave it out to publish every kind)")
        bad = set(kinds) - {"trade", "tob", "l2"}
        if bad:
            raise ValueError(f"--publish-kinds: unknown {', '.join(sorted(bad))} "
                             f"(choose from trade, tob, l2)")
        refuse_orphan_options(args)
        hold = args.metrics_hold
        return cls(metrics_port=args.metrics_port, metrics_hold=0.0 if hold is None else hold,
                   publish=args.publish, publish_kinds=kinds or ("trade", "tob", "l2"),
                   stream="MATCHCORE" if args.stream is None else args.stream,
                   prefix="mc" if args.subject_prefix is None else args.subject_prefix,
                   # --out and --plot need the whole replay's sinks, which the
                   # publisher drains chunk by chunk
                   keep_sinks=bool(getattr(args, "out", None) or getattr(args, "plot", None)),
                   bar=bar)

    @property
    def drains_sinks(self) -> bool:
        """Whether the hooks read the replay's top-of-book and trade sinks (the publisher,
        chunk by chunk): the replay must record them. The metrics read its counters alone."""
        return self.bridge is not None

    def on_chunk(self, r) -> None:
        """After every ``feed()`` buffer: copy counters, publish the drained sinks, show msg/s."""
        if self.metrics is not None:
            self.metrics.update(r)
        if self.bridge is not None:
            self.bridge(r)
        if self.bar is not None and not self.bar.disable:
            from matchcore._cliutil import rate_text

            dt = time.perf_counter() - self._t0
            n = r.stats["messages"]
            self.bar.set_postfix_str(f"{n:,} msgs, {rate_text(n / dt)}" if dt > 0 else "",
                                     refresh=False)

    def sinks(self, r) -> dict:
        """The top-of-book, trade and L2 records of the whole replay, also when the publisher
        drained them chunk by chunk."""
        if self.bridge is not None and self.bridge.keep:
            return self.bridge.kept()
        return {"tob": r.tob(), "trades": r.trades(), "l2": r.l2()}

    def finish(self, r, hold: bool = True) -> int:
        """After the replay: flush and report the publisher, mark the metrics final and keep
        serving them ``metrics_hold`` seconds (not with ``hold=False``: a command that ends in
        an error after the replay still reports what it published), then stop everything.
        Returns the command's exit status: 1 when a batch handed to the publisher was not
        delivered (dropped, refused or never sent) or not confirmed (no acknowledgement), else
        0."""
        try:
            return self._finish(r, hold)
        finally:                # also when Ctrl-C ends the --metrics-hold wait
            self.close()

    def _finish(self, r, hold: bool = True) -> int:
        out = self.out
        status = 0
        if self.bridge is not None:
            from matchcore.io.nats import subject_token

            st = self.publisher.close()
            self._print_published(st)
            from matchcore._cliutil import shown_name
            from matchcore.io import book_label

            again = st["streams_made_again"]
            if again:
                # "published: N of N batches" alone read as a stream holding the whole day,
                # and whatever it held before: a subscriber finds neither
                print(f"note: stream {shown_name(self.publisher.stream)} was made again "
                      f"{again:,} time{'s' if again != 1 else ''} during the replay (deleted, "
                      f"or lost by a broker restarted without its store): what it held before "
                      f"is gone; {st['resent']:,} batches / {st['records_resent']:,} records "
                      f"sent again", file=out, flush=True)
            # names from the file escaped, as the replay summary and its other notes show them
            for name, locs in self.bridge.shared().items():
                # not an error: every book is published, on the name's subjects
                print(f"note: symbol {shown_name(name)} is carried by locates "
                      f"{', '.join(map(str, locs))}: their books share the subjects "
                      f"{shown_name(self.publisher.prefix)}.*.{subject_token(name)} (one seq "
                      f"sequence, "
                      f"the batch header's locate tells them apart); subscribe shows them as "
                      f"{', '.join(shown_name(book_label(name, L)) for L in locs)}", file=out,
                      flush=True)
            for L, (was, now) in self.bridge.renamed(r.symbols).items():
                print(f"note: locate {L} was renamed {shown_name(was)} -> {shown_name(now)} "
                      f"during the replay: its book was published on the subjects of "
                      f"{shown_name(was)} ({shown_name(self.publisher.prefix)}.*."
                      f"{subject_token(was)})",
                      file=out, flush=True)
            lost = st["dropped"] + st["undelivered"]
            unconfirmed = st["unconfirmed"]
            if lost or unconfirmed:
                status = 1
                what = []
                if lost:
                    what.append(f"{lost:,} of {self.bridge.batches:,} batches were not "
                                f"delivered to NATS")
                if unconfirmed:
                    what.append(f"{unconfirmed:,} of {self.bridge.batches:,} batches were not "
                                f"confirmed by NATS (no acknowledgement: they may have been "
                                f"stored)")
                print(f"matchcore replay: error: {'; '.join(what)}"
                      + (f" (last error: {st['last_error']})" if st["last_error"] else ""),
                      file=sys.stderr, flush=True)
        if self.metrics is not None:
            self.metrics.update(r, final=True)
            if hold and self.metrics_hold > 0:
                more = ("until interrupted" if self.metrics_hold == float("inf")
                        else f"for {self.metrics_hold:g} s more")
                print(f"metrics: serving {self.server.url} {more}", file=out, flush=True)
                _hold(self.metrics_hold)
        return status

    def _print_published(self, st) -> None:
        rec = self.bridge.records
        print(f"published: {st['published']:,} of {self.bridge.batches:,} batches "
              f"({st['records_published']:,} records: trade {rec['trade']:,}, tob "
              f"{rec['tob']:,}, l2 {rec['l2']:,} handed over); dropped (queue full) "
              f"{st['dropped']:,} batches / {st['records_dropped']:,} records; undelivered "
              f"(refused or not sent) {st['undelivered']:,} / {st['records_undelivered']:,}; "
              f"unconfirmed (no ack in {self.publisher.ack_timeout:g} s, may be stored) "
              f"{st['unconfirmed']:,} / {st['records_unconfirmed']:,}; broker "
              f"disconnects {st['disconnects']}, reconnects {st['reconnects']}"
              + (f"; last error: {st['last_error']}" if st["last_error"] else ""),
              file=self.out, flush=True)

    def interrupted(self) -> None:
        """Close everything after a replay stopped by Ctrl-C or SIGTERM, saying what the
        publisher delivered of the batches handed to it: the stream holds part of the replay,
        and what the close's flush gave up is lost (a subscriber sees no gap at a tail)."""
        try:
            if self.bridge is not None and self.publisher is not None:
                from matchcore._signals import held

                # a second Ctrl-C cut the close short (its flush takes up to 5 s): nothing
                # was said of what the stream got, and the publisher's exit hook closed it
                # again, where a third ended in a traceback. Held until it has reported.
                held(lambda: self._print_published(self.publisher.close(timeout=5)))
        finally:
            self.close()

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close(timeout=5)
        if self.server is not None:
            self.server.close()
            self.server = None
