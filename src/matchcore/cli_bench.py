"""``matchcore bench``: latency and throughput measured inside the compiled loop.

    matchcore bench [WORKLOAD ...] [--messages N] [--rate R] [--seed S] [--json OUT]
                    [--plot DIR] [--quick] [--clock auto|tsc|monotonic] [--subtract-overhead]

WORKLOAD is any of the generated workloads (standard, market_maker, deep_book, sweep, wide_book,
stale_cancel, market_heavy, itch) and the sections core (per-call and process() figures against
their targets), rates (open-loop rate sweep), scaling (cost against resting orders and price
levels), depth (the touch workloads at 1k, 100k and 1M resting orders) and baselines (other books
in the same run). No WORKLOAD runs everything. ``--quick`` runs everything small, in well under a minute.
"""
from __future__ import annotations

import datetime as _dt
import math
import numbers
import operator
import os
import sys
import time
from pathlib import Path

from matchcore._cliutil import (check_output_file, decimal, int64, integer, naming_output, refuse_dangling_link,
                               refuse_directory_at, refuse_unnumbered_messages,
                               refuse_unwritable_directory, made_by, write_text)

WORKLOADS = ("standard", "market_maker", "deep_book", "sweep", "wide_book", "stale_cancel",
             "market_heavy", "itch")
SECTIONS = ("core", "rates", "scaling", "depth", "baselines")


def add_parser(p, name):
    p.add_argument("targets", nargs="*", metavar="WORKLOAD",
                   help=f"any of {', '.join(WORKLOADS + SECTIONS)} (default: all)")
    p.add_argument("--messages", type=int64, default=None,
                   help="flow commands per workload (default 1,000,000; 100,000 with --quick); "
                        "the sections take at most that many, within their own sizes")
    p.add_argument("--rate", type=decimal, default=None,
                   help="open-loop rate in messages/s (default: a quarter of the measured capacity)")
    p.add_argument("--seed", type=integer, default=1, help="workload seed (default 1)")
    p.add_argument("--json", metavar="OUT",
                   help="write every figure as JSON to OUT ('-' for stdout; the report then "
                        "goes to stderr)")
    p.add_argument("--plot", metavar="DIR", help="write PNG charts into DIR")
    p.add_argument("--quick", action="store_true", help="small sizes: finishes in well under a minute")
    p.add_argument("--clock", default=None, choices=("auto", "tsc", "monotonic"),
                   help="clock for per-message timing (default auto: TSC when invariant)")
    p.add_argument("--subtract-overhead", action="store_true",
                   help="show the report's percentiles with the clock pair's median cost "
                        "subtracted (the --plot charts show the raw measurements)")
    p.add_argument("--save-workloads", metavar="DIR",
                   help="also write each generated workload to DIR (.npz, and native .mccmd files)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


class _NoBar:
    def update(self, n=1):
        pass

    def set_description(self, s):
        pass

    def close(self):
        pass


def _bar(total, desc, disable):
    # a bar only on a terminal: in a pipe, a file or CI its redraws are noise in the output
    if disable or not sys.stderr.isatty():
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return _NoBar()
    return tqdm(total=total, desc=desc, unit="step", leave=False, file=sys.stderr)


#: How :func:`run_bench`'s refusals name its arguments: by its keywords. The command checks the
#: same values first, with :data:`_OPTIONS`, naming its options.
_KEYWORDS = {"messages": "messages", "rate": "rate", "seed": "seed", "save_dir": "save_dir"}
_OPTIONS = {"messages": "--messages", "rate": "--rate", "seed": "--seed",
            "save_dir": "--save-workloads"}


def _generated(chosen) -> list:
    """The workloads generated with the run's count of flow commands: those chosen, and the
    standard mix of the rate sweep, the baselines and core (the other sections take at most a
    million)."""
    generated = [t for t in chosen if t in WORKLOADS and t != "itch"]
    if any(t in chosen for t in ("rates", "baselines", "core")):
        generated.append("standard")
    return generated


def _plan(targets, quick, messages, names=_KEYWORDS):
    if isinstance(targets, str):
        # iterated, "standard" was the targets "s", "t", "a", ...: "unknown workload(s) s, t"
        raise TypeError(f"targets is a list of workload and section names, not a single name "
                        f"({targets!r}): write [{targets!r}]")
    # (None and a number failed as "'NoneType' object is not iterable", naming nothing)
    what = "targets must be a list of workload and section names, got"
    try:
        targets = list(targets)
    except TypeError:
        raise TypeError(f"{what} {type(targets).__name__} {targets!r}") from None
    for t in targets:
        if not isinstance(t, str):
            raise TypeError(f"{what} {type(t).__name__} {t!r} among them")
    # each target once, in the order given (a repeated one was measured again, minutes at full
    # size, and the JSON kept only the last figures)
    chosen = list(dict.fromkeys(targets)) or list(WORKLOADS + SECTIONS)
    bad = [t for t in chosen if t not in WORKLOADS + SECTIONS]
    if bad:
        raise ValueError(f"unknown workload(s) {', '.join(bad)}; "
                         f"choose from {', '.join(WORKLOADS + SECTIONS)}")
    n = messages if messages is not None else (100_000 if quick else 1_000_000)
    try:
        if isinstance(n, bool):         # True ran one message
            raise TypeError
        n = operator.index(n)
    except TypeError:
        # (the generator's refusal named its own parameter, n)
        raise TypeError(f"messages must be an integer, got {type(n).__name__} {n!r}") from None
    if n <= 0:
        raise ValueError(f"{names['messages']} must be > 0, got {n}")
    refuse_unnumbered_messages(n, _generated(chosen), names["messages"])
    if "itch" in chosen:
        from matchcore.bench import itch_workload

        # (too few messages for the generated day failed after every workload was measured)
        if itch_workload.unavailable_reason() is None:
            itch_workload.check_messages(n, name=names["messages"])
    return chosen, n


#: Bytes a generated workload's run holds at once for each flow command, at the least: the
#: command (48) and the one event it writes at least (64), which the throughput run keeps.
BYTES_PER_COMMAND = 48 + 64


def _check_generated_memory(n: int, name: str, what: str = "the generated workloads",
                            per_command: int = BYTES_PER_COMMAND,
                            held: str = "each command and the event it writes") -> None:
    # MemoryError, as the itch workload's check, when the generated workloads' arrays cannot
    # fit in this machine's memory: the largest count the order ids take failed in numpy's
    # words once the machine and the clock had been measured ("array is too big; `arr.size *
    # arr.dtype.itemsize` is larger than the maximum possible size"), and a count whose
    # arrays the system lends lazily but cannot back (10**9: 48 GB of commands) was generated
    # until the machine ran out of memory
    from matchcore.bench.itch_workload import _physical_memory, _size

    need, total = n * per_command, _physical_memory()
    if total and need > total:
        raise MemoryError(f"{name} {n:,}: {what} would need at least "
                          f"{_size(need)} of memory ({held} are held at once), more than "
                          f"this machine's {_size(total)}")


# The longest open-loop schedule the timing loop accepts is 2**62 clock ticks; at up to 10
# ticks per ns (a 10 GHz TSC) that is this many seconds (about 14 years).
_MAX_SCHEDULE_S = 2**62 / 10 / 1e9
# The highest open-loop rate: one message a nanosecond.
_MAX_RATE = 1e9


def _check_values(rate, seed, messages=None, names=_KEYWORDS) -> None:
    # (True was taken as 1 message/s: minutes of an open loop nobody asked for)
    if rate is not None and (isinstance(rate, (str, bytes, bool)) or
                             not isinstance(rate, numbers.Real)):
        # math.isfinite said "must be real number, not str", naming nothing
        raise TypeError(f"rate must be a number of messages/s, got {type(rate).__name__} "
                        f"{rate!r}")
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"{names['rate']} must be a finite number of messages/s > 0, "
                         f"got {rate}")
    if rate is not None and rate > _MAX_RATE:
        # arrivals closer than 1 ns (the schedule's unit): --rate 1e30 was taken
        raise ValueError(f"{names['rate']} {rate:g}: arrivals less than 1 ns apart: at most "
                         f"{_MAX_RATE:g} messages/s")
    # the open loop refused such a schedule only after the first workload had been generated
    # and measured
    if rate is not None and messages is not None and (messages - 1) / rate > _MAX_SCHEDULE_S:
        raise ValueError(f"{names['rate']} {rate:g}: the open loop over {messages:,} messages "
                         f"would last {(messages - 1) / rate:.3g} s, beyond what the clock "
                         f"counts: raise the rate")
    # the ITCH workload's generator takes a 64-bit seed; one range for every workload
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        # "1" failed the range check in Python's words, True ran as seed 1, 1.5 was refused by
        # the generator after the machine and the clock had been measured
        raise TypeError(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed < 2**64:
        raise ValueError(f"{names['seed']} must be in [0, 2**64), got {seed}")


def _check_workload_options(chosen, rate, save_dir, names=_KEYWORDS) -> None:
    # Only the generated workloads' open loop takes --rate (the rate sweep runs at fractions of
    # the capacity) and only they are saved: with none of them chosen both were accepted and
    # ignored, --save-workloads leaving an empty directory.
    if any(t in WORKLOADS and t != "itch" for t in chosen):
        return
    given = [names[k] for k, v in (("rate", rate), ("save_dir", save_dir)) if v is not None]
    if given:
        names = ", ".join(w for w in WORKLOADS if w != "itch")
        raise ValueError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to "
                         f"the generated workloads ({names}), and none is chosen")


#: The sections whose figures come from the per-message clock: the generated workloads (closed
#: and open loop), the rate sweep, scaling and core (its per-size percentiles).
_TIMED = tuple(w for w in WORKLOADS if w != "itch") + ("rates", "scaling", "core")


def _check_clock_options(chosen, clock, subtract) -> None:
    # itch, depth and baselines read no per-message clock: --clock and --subtract-overhead
    # were accepted and ignored with only them chosen (the report said "subtracted below")
    if any(t in _TIMED for t in chosen):
        return
    given = [o for o, v in (("--clock", clock is not None),
                            ("--subtract-overhead", subtract)) if v]
    if given:
        raise ValueError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to "
                         f"the sections timed per message ({', '.join(_TIMED)}), and none is "
                         f"chosen")


#: The sections :func:`matchcore.bench.plots.plot_all` draws charts of: the generated workloads
#: (latency percentiles), the rate sweep and scaling.
_CHARTED = tuple(w for w in WORKLOADS if w != "itch") + ("rates", "scaling")


def _check_plot_option(chosen, plot) -> None:
    # itch, core, depth and baselines have no chart: with only them chosen --plot was accepted
    # and ignored, leaving an empty directory and exit status 0
    if plot is None or any(t in _CHARTED for t in chosen):
        return
    raise ValueError(f"--plot applies to the sections with charts ({', '.join(_CHARTED)}), "
                     f"and none is chosen")


def _check_dir(option, path, shown=None) -> None:
    """Make sure ``path`` is, or can be made, a directory this process can write into. Nothing
    is made here (the run makes it when it writes there): made by the check, it stayed when
    another option was refused next, or the run interrupted. ``shown``: the value the message
    names (default ``path``)."""
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise ValueError(f"{option} {path}: exists and is not a directory" if shown is None
                         else f"{option} {shown}: {d} is not a directory")
    if shown is None:
        refuse_dangling_link(option, path)
    shown = path if shown is None else shown
    # the directory, or the nearest of its parents that exists: where the first one is made
    base = next((a for a in (d, *d.parents) if a.exists()), Path("."))
    if not base.is_dir():
        raise ValueError(f"{option} {shown}: {base} is not a directory")
    refuse_unwritable_directory(option, shown, base)


def _check_file(option, path, made=()) -> None:
    """Make sure the file ``path`` can be written: its directory exists, or is one of
    ``made``, the directories other outputs make (checked as those outputs). A missing one
    is refused, as every command's file outputs refuse it (it was made, with its parents)."""
    check_output_file(option, path, made=made)
    p = Path(path)
    if not p.parent.is_dir():
        return                  # a directory another output makes
    if not p.exists():
        # a new file: its directory takes one (checked above). Made here and unlinked, a
        # symlink's target was left empty and the link itself removed
        return
    if not p.is_file():
        # a FIFO or a device (/dev/stdout) is opened once, to write the result: opened here,
        # a FIFO's reader took the close for the end of an empty stream, and the result then
        # waited for a reader that never came
        return
    try:
        with open(p, "a"):
            pass
    except OSError as e:
        raise ValueError(f"{option} {path}: cannot write ({e.strerror or e})") from None


def _workload_file(name: str, n: int, seed: int) -> str:
    """The name --save-workloads gives a workload's files (before .npz, .setup.mccmd and
    .flow.mccmd)."""
    return f"{name}_{n}_{seed}"


def _saved_files(chosen, n: int, seed: int) -> list[str]:
    """The names of the files --save-workloads writes for the ``chosen`` targets."""
    return [_workload_file(t, n, seed) + ext for t in chosen if t in WORKLOADS and t != "itch"
            for ext in (".npz", ".setup.mccmd", ".flow.mccmd")]


def run_bench(targets=(), *, messages=None, rate=None, seed=1, quick=False, clock="auto",
              save_dir=None, progress=True) -> dict:
    """Run the selected benchmarks; returns the result dict (what ``--json`` writes).

    >>> res = run_bench(["standard"], messages=2000, quick=True, progress=False)
    >>> sorted(res["workloads"]["standard"]["closed"])[:3]
    ['hdr', 'max', 'mean']
    """
    return _run_bench(targets, messages, rate, seed, quick, clock, save_dir, progress, _KEYWORDS)


def _run_bench(targets, messages, rate, seed, quick, clock, save_dir, progress, names) -> dict:
    # run_bench, its refusals naming its arguments as ``names`` (the command: its options)
    from matchcore import workloads as W
    from matchcore._core import _flag_arg
    from matchcore.bench import harness
    from matchcore.bench.machine import machine_info

    # the flags as bools before anything runs (the result dict records quick, as JSON)
    quick = _flag_arg(quick, "quick")
    progress = _flag_arg(progress, "progress")
    chosen, n = _plan(targets, quick, messages, names)
    if _generated(chosen):
        _check_generated_memory(n, names["messages"])
    _check_values(rate, seed, n, names)
    seed = int(seed)            # a numpy integer recorded as a plain int
    # a plain float, as the command's: a Fraction (a real number) was recorded as is, and the
    # result could not be written as JSON once the run was over
    rate = None if rate is None else float(rate)
    if save_dir is not None and not isinstance(save_dir, (str, os.PathLike)):
        # (save_dir=5 failed once the first workload had been generated and measured)
        raise TypeError(f"{names['save_dir']} must be a path (str or os.PathLike), got "
                        f"{type(save_dir).__name__} {save_dir!r}")
    if isinstance(save_dir, str) and not save_dir.strip():
        # "" is Path("."): the workloads were written into the current directory (the
        # command refuses --save-workloads "" the same way)
        raise ValueError(f"{names['save_dir']}: an empty path")
    _check_workload_options(chosen, rate, save_dir, names)
    if save_dir is not None:
        # (a regular file there failed in mkdir's words once the first workload had been
        # generated and measured)
        _check_dir(names["save_dir"], os.fspath(save_dir))
        # a directory at one of its file names: found once the workload had been generated
        refuse_directory_at(names["save_dir"], os.fspath(save_dir),
                            _saved_files(chosen, n, seed))
    from matchcore._timing import resolve_clock

    resolve_clock(clock)        # a wrong clock refused before the machine is measured
    started = time.perf_counter()
    res = {"schema": 1, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "command": {"targets": chosen, "messages": n, "rate": rate, "seed": seed,
                       "quick": quick, "clock": clock},
           "machine": machine_info()}
    res["clock"] = harness.clock_info(clock)
    clk = res["clock"]["clock"]
    overhead = res["clock"]["overhead_ns"]
    wl_names = [w for w in chosen if w in WORKLOADS and w != "itch"]
    from matchcore.bench.core import DEPTH_SIZES, TOUCH_WORKLOADS, core_progress_steps

    n_depth = len(DEPTH_SIZES) * len(TOUCH_WORKLOADS)
    steps = len(wl_names) + ("itch" in chosen) + n_depth * ("depth" in chosen)
    # (core counted 4 steps where it takes 6: the bar ended at 15/13)
    if "core" in chosen:
        steps += core_progress_steps(depth=True if "depth" in chosen else None)
    steps += 9 * ("rates" in chosen) + 4 * ("baselines" in chosen)
    n_scale_r = (1_000, 10_000, 100_000, 1_000_000)
    n_scale_l = (10, 100, 1_000, 10_000) if quick else (10, 100, 1_000, 10_000, 100_000)
    steps += ("scaling" in chosen) * (2 * len(n_scale_r) + len(n_scale_l))
    bar = _bar(steps, "bench", not progress)

    res["workloads"] = {}
    std = None
    for name in wl_names:
        bar.set_description(f"generate {name}")
        params = {}
        if name == "deep_book" and quick:
            params["resting"] = 1_000_000
        w = W.generate(name, n, seed=seed, **params)
        if save_dir is not None:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
            with naming_output(names["save_dir"], save_dir):
                w.save(Path(save_dir) / f"{_workload_file(name, n, seed)}.npz")
                try:
                    w.save_native(Path(save_dir) / _workload_file(name, n, seed))
                except ImportError:
                    pass
        bar.set_description(f"measure {name}")
        r = harness.measure_workload(w.setup, w.flow, clock=clk, overhead_ns=overhead, rate=rate)
        r["params"] = w.params
        r["generator_stats"] = w.stats
        res["workloads"][name] = r
        if name == "standard":
            std = w
        bar.update(1)

    if "itch" in chosen:
        from matchcore.bench import itch_workload

        bar.set_description("itch replay")
        why = itch_workload.unavailable_reason()
        if why is None:
            res["itch"] = itch_workload._run_itch(n, seed=seed, name=names["messages"])
        else:
            res["itch"] = {"skipped": why}
            print(f"matchcore bench: itch workload skipped: {why}", file=sys.stderr)
        bar.update(1)

    if std is None and any(s in chosen for s in ("rates", "baselines")):
        std = W.generate("standard", n, seed=seed)

    if "rates" in chosen:
        bar.set_description("rate sweep")
        m = min(n, 50_000 if quick else 200_000)
        base = harness.build_book(std.setup, std.flow[:m])
        cap = harness.throughput(base, std.flow[:m], reps=2)["median_chunk"]["msgs_per_s"]
        pts = harness.rate_sweep(base, std.flow[:m], cap, clock=clk, overhead_ns=overhead,
                                 progress=bar)
        res["rate_sweep"] = {"workload": "standard", "messages": m, "capacity_per_s": cap,
                             "points": pts}

    if "scaling" in chosen:
        m = min(n, 50_000 if quick else 200_000)
        sc = {"messages": m, "resting": [], "levels": [],
              "notes": {"touch": "1,000 active orders over 750 levels carry the flow; the other "
                                 "orders rest 100 a level beyond them (never touched)",
                        "spread": "every resting order is active: cancels and reprices pick "
                                  "among all of them, over 750 levels",
                        "levels": "all orders active, spread over the given number of levels"}}
        for variant in ("touch", "spread"):
            for resting in n_scale_r:
                bar.set_description(f"scaling {variant} {resting:,}")
                s, f = W.deep_book(m, seed=seed, resting=resting, spread=(variant == "spread"))
                pt = harness.scaling_point(s, f, clk, overhead)
                sc["resting"].append({"variant": variant, "param": resting, **pt})
                bar.update(1)
        lv_resting = 20_000 if quick else 200_000
        for levels in n_scale_l:
            bar.set_description(f"scaling levels {levels:,}")
            s, f = W.standard_mix(m, seed=seed, resting=lv_resting, levels=levels)
            pt = harness.scaling_point(s, f, clk, overhead)
            sc["levels"].append({"variant": f"{lv_resting:,} resting", "param": levels, **pt})
            bar.update(1)
        res["scaling"] = sc

    if "depth" in chosen:
        from matchcore.bench.core import run_depth

        bar.set_description("depth")
        res["depth"] = run_depth(messages=min(n, 50_000 if quick else 300_000), seed=seed,
                                 clock=clk, overhead_ns=overhead, reps=1 if quick else 3,
                                 progress=bar)

    if "baselines" in chosen:
        from matchcore.bench.baselines import run_baselines
        from matchcore.bench.core import reference_messages

        bar.set_description("baselines")
        m = reference_messages(n, quick)
        base = harness.build_book(std.setup, std.flow)
        reps = 2 if quick else 3
        mc_ns = harness.throughput(base, std.flow, reps=reps)["process_chunked"]["ns_per_msg"]
        res["baselines"] = {"messages": m, "matchcore_ns_per_msg": mc_ns,
                            "results": run_baselines(std.setup, std.flow[:m], mc_ns, progress=bar,
                                                     reps=reps)}

    if "core" in chosen:
        from matchcore.bench.core import run_core

        bar.set_description("core")
        # the depth table and the reference model's ratio are part of the core targets: each
        # measured once when both sections run, so that the report gives one figure, not two
        ref = res.get("baselines", {}).get("results", {}).get("reference")
        res["core"] = run_core(messages=n, seed=seed, quick=quick, clock=clk,
                               overhead_ns=overhead, depth=res.get("depth"),
                               reference=ref if ref and "skipped" not in ref else None,
                               progress=bar)
    bar.close()
    res["elapsed_s"] = time.perf_counter() - started
    return res


def run(args) -> int:
    try:
        return _run(args)
    except BrokenPipeError:          # stdout's reader left: matchcore.__main__ ends quietly
        raise
    except ImportError as e:         # an optional extra missing: named in the message
        from matchcore._cliutil import extra_missing

        return extra_missing("bench", e)
    except (OSError, ValueError) as e:
        print(f"matchcore bench: error: {e}", file=sys.stderr)
        return 1


def _run(args) -> int:
    from matchcore.bench.report import format_report, json_text, write_json

    # every option is checked before the first workload: a bad one found after minutes of
    # measuring would throw those minutes away
    for option, value in (("--json", args.json), ("--plot", args.plot),
                          ("--save-workloads", args.save_workloads)):
        if value is not None and not value.strip():
            # a script's --json "$OUT" with OUT unset: taken for "not given", the run wrote
            # nothing (or the workloads into the current directory) and exited 0
            raise ValueError(f"{option}: an empty path")
    chosen, n = _plan(args.targets, args.quick, args.messages, _OPTIONS)
    _check_values(args.rate, args.seed, n, _OPTIONS)
    _check_workload_options(chosen, args.rate, args.save_workloads, _OPTIONS)
    _check_clock_options(chosen, args.clock, args.subtract_overhead)
    _check_plot_option(chosen, args.plot)
    # '-' is stdout, as for journal/recover --json (it wrote a file named "-")
    to_stdout = args.json == "-"
    if args.json and not to_stdout:
        _check_file("--json", args.json,
                    made=[d for d in (args.plot, args.save_workloads) if d])
    for option, d in (("--plot", args.plot), ("--save-workloads", args.save_workloads)):
        if d:
            _check_dir(option, d)
    # a directory where one of their files goes was found only when it was written: after the
    # whole run (--plot), or after the workloads before it (--save-workloads)
    generated = [t for t in chosen if t in WORKLOADS and t != "itch"]
    if args.plot:
        charts = ((["latency_percentiles.png"] if generated else [])
                  + (["rate_sweep.png"] if "rates" in chosen else [])
                  + (["scaling_resting.png", "scaling_levels.png"] if "scaling" in chosen
                     else []))
        refuse_directory_at("--plot", args.plot, charts)
    if args.save_workloads:
        refuse_directory_at("--save-workloads", args.save_workloads,
                            _saved_files(chosen, n, args.seed))
    if args.plot:
        from matchcore.bench.plots import _plt

        _plt()      # a missing extra said before the run, not in a traceback after it
    res = _run_bench(args.targets, args.messages, args.rate, args.seed, args.quick,
                     args.clock or "auto", args.save_workloads, not args.no_progress, _OPTIONS)
    report = sys.stderr if to_stdout else sys.stdout    # stdout holds only the JSON then
    print(format_report(res, net=args.subtract_overhead), file=report)
    print(f"\n({res['elapsed_s']:.1f} s; figures from a shared machine drift between runs: "
          f"compare ratios measured in the same run)", file=report)
    if to_stdout:
        # (whole, or BrokenPipeError: a pipe's reader may leave while it waits for room)
        with naming_output("--json", "- (stdout)"):
            write_text(sys.stdout, json_text(res))
            sys.stdout.flush()
    elif args.json:
        parent = Path(args.json).parent
        if args.plot and not parent.exists() and made_by(parent, [args.plot]):
            # the directory --plot makes (or a parent of it), whose charts are written after
            # the JSON
            parent.mkdir(parents=True, exist_ok=True)
        with naming_output("--json", args.json):
            written = write_json(res, args.json)
        print(f"wrote {written}")
    if args.plot:
        from matchcore.bench.plots import plot_all

        with naming_output("--plot", args.plot):
            paths = plot_all(res, args.plot)
        for p in paths:
            print(f"wrote {p}", file=report)
    return 0
