"""Journaling cost, side by side in one run: the Engine with no journal and with fsync policies
``never``, ``batch`` (group commit) and ``always``.

Seeded standard mix (:func:`matchcore.workloads.standard_mix`) through one symbol of an Engine:

* ``process()`` in batches of ``--batch`` commands: throughput (commands/s; median of
  ``--reps`` passes, the four modes interleaved within each pass so that machine load drifts
  over all of them alike) and the latency of one batch call (p50/p90/p99/max): the time until a
  batch's commands are acknowledged;
* the per-call methods (``submit``/``cancel``/``modify``): p50/p90/p99/max latency of one
  acknowledged command, timed around the call only.

Every mode starts from a fresh engine with the workload's setup applied, and warms up on the
first tenth of the flow (at most 20,000 commands) before the timed part. Journals are written to a
temporary directory on the file system given by ``--dir`` (default: the system temp dir).

    PYTHONPATH=src python benchmarks/bench_durability.py [--quick] [--json OUT]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

MODES = ("none", "never", "batch", "always")
_RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", None)     # Linux only


def _engine(mode, root, setup, **jopts):
    import matchcore as mc
    if mode == "none":
        eng = mc.Engine(record_events=False)
    else:
        d = tempfile.mkdtemp(prefix=f"j-{mode}-", dir=root)
        eng = mc.Engine(journal=d, fsync=mode, record_events=False, **jopts)
    eng.add_symbol(0, capacity=len(setup) + 1024)
    eng.process(setup)
    return eng


def _cleanup(eng):
    if eng.journal is not None:
        path = eng.journal.path
        eng.close()
        shutil.rmtree(path, ignore_errors=True)


def batch_pass(mode, root, setup, flow, warmup, batch, **jopts):
    """One pass of process() over the flow; (seconds for the timed commands, per-batch ns)."""
    import numpy as np
    eng = _engine(mode, root, setup, **jopts)
    for i in range(0, warmup, batch):
        eng.process(flow[i:min(i + batch, warmup)])
    timed = flow[warmup:]
    starts = range(0, len(timed), batch)
    lat = np.empty(len(starts), dtype=np.int64)
    chunks = [timed[i:i + batch] for i in starts]
    clock = time.perf_counter_ns
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    th0 = resource.getrusage(_RUSAGE_THREAD) if _RUSAGE_THREAD is not None else None
    t_all = clock()
    for k, chunk in enumerate(chunks):
        t0 = clock()
        eng.process(chunk)
        lat[k] = clock() - t0
    total = (clock() - t_all) / 1e9
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    th1 = resource.getrusage(_RUSAGE_THREAD) if _RUSAGE_THREAD is not None else None
    # CPU time of this process (all threads, the syncer's included): on a shared machine it
    # moves much less than wall time when other processes take the cores
    info = {"cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
            "sys_s": ru1.ru_stime - ru0.ru_stime}
    if th0 is not None:
        # the writing thread's context switches: involuntary ones are preemptions (a syncer or
        # kernel thread, another process taking its core), voluntary ones mean it blocked
        info |= {"writer_preempted": th1.ru_nivcsw - th0.ru_nivcsw,
                 "writer_blocked": th1.ru_nvcsw - th0.ru_nvcsw}
    if eng.journal is not None:
        info |= {"fsyncs": eng.journal.fsyncs, "journal_seq": eng.journal_seq, "durable_seq_at_end": eng.durable_seq,
                "journal_bytes": _dir_bytes(eng.journal.path)}
    _cleanup(eng)
    return total, lat, info


def per_call_pass(mode, root, setup, flow, warmup, n, **jopts):
    """Per-call methods over flow[warmup:warmup+n]; per-command latencies (ns)."""
    import numpy as np
    import matchcore as mc
    eng = _engine(mode, root, setup, **jopts)
    rows = flow[:warmup + n].tolist()
    lat = np.empty(n, dtype=np.int64)
    clock = time.perf_counter_ns
    submit, cancel, modify = eng.submit, eng.cancel, eng.modify
    for i, (ts, oid, price, qty, owner, sym, kind, side, tif, post) in enumerate(rows):
        # the dispatch is outside the timed region: only the acknowledged call is measured
        try:
            if kind == 0:
                t0 = clock()
                submit(sym, oid, side, price, qty, tif, owner=owner, ts_ns=ts)
            elif kind == 2:
                t0 = clock()
                cancel(oid, symbol=sym, ts_ns=ts)
            else:
                t0 = clock()
                modify(oid, qty, price or None, symbol=sym, ts_ns=ts)
        except mc.OrderRejected:
            pass
        t1 = clock()
        if i >= warmup:
            lat[i - warmup] = t1 - t0
    _cleanup(eng)
    return lat


def _dir_bytes(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def _pcts(lat):
    from matchcore.bench.harness import percentiles
    p50, p90, p99 = percentiles(lat, (50, 90, 99))
    return {"p50_ns": p50, "p90_ns": p90, "p99_ns": p99, "max_ns": float(max(lat))}


def _fs_of(path):
    try:
        out = subprocess.run(["df", "-T", path], capture_output=True, text=True, check=True)
        dev, fstype = out.stdout.splitlines()[1].split()[:2]
        return f"{fstype} on {dev}"
    except (OSError, subprocess.CalledProcessError, IndexError, ValueError):
        return "unknown"


def run(messages, seed, batch, reps, per_call_n, per_call_always_n, root, jopts):
    from matchcore.workloads import standard_mix
    setup, flow = standard_mix(messages, seed=seed)
    warmup = min(len(flow) // 10, 20_000)
    res = {"messages": messages, "timed": len(flow) - warmup, "batch": batch, "reps": reps,
           "seed": seed, "journal_options": jopts, "modes": {m: {} for m in MODES}}
    secs = {m: [] for m in MODES}
    cpus = {m: [] for m in MODES}
    lats = {m: [] for m in MODES}
    for rep in range(reps):
        for mode in MODES:
            t, lat, info = batch_pass(mode, root, setup, flow, warmup, batch, **jopts)
            secs[mode].append(t)
            cpus[mode].append(info.pop("cpu_s"))
            lats[mode].append(lat)
            res["modes"][mode].update(info)
    for mode in MODES:
        import numpy as np
        t = statistics.median(secs[mode])
        r = res["modes"][mode]
        r["throughput_cmd_s"] = res["timed"] / t
        r["throughput_all_reps"] = [res["timed"] / s for s in secs[mode]]
        r["cpu_ns_per_cmd"] = statistics.median(cpus[mode]) / res["timed"] * 1e9
        r["wall_ns_per_cmd"] = t / res["timed"] * 1e9
        r["batch_call"] = _pcts(np.concatenate(lats[mode]))
        if "journal_bytes" in r:
            r["journal_bytes_per_cmd"] = r["journal_bytes"] / (len(setup) + len(flow))
    base = res["modes"]["none"]["throughput_cmd_s"]
    base_cpu = res["modes"]["none"]["cpu_ns_per_cmd"]
    for mode in MODES:
        res["modes"][mode]["vs_none"] = res["modes"][mode]["throughput_cmd_s"] / base
        res["modes"][mode]["cpu_vs_none"] = base_cpu / res["modes"][mode]["cpu_ns_per_cmd"]
    for mode in MODES:
        n = per_call_always_n if mode == "always" else per_call_n
        lat = per_call_pass(mode, root, setup, flow, warmup, min(n, len(flow) - warmup), **jopts)
        res["modes"][mode]["per_call"] = {"n": len(lat), **_pcts(lat)}
    return res


def format_result(res) -> str:
    lines = [f"{res['timed']:,} timed commands of the standard mix, process() batches of "
             f"{res['batch']}, median of {res['reps']} pass{'' if res['reps'] == 1 else 'es'}; "
             f"per-call: one command per call; "
             f"preempt: the writing thread's involuntary context switches (last pass)",
             f"{'mode':<8}{'cmd/s':>12}{'vs none':>9}{'CPU ns/cmd':>11}{'vs none':>9}"
             f"{'batch p50':>12}{'batch p99':>12}{'call p50':>11}{'call p99':>11}{'call max':>11}"
             f"{'preempt':>9}"]
    for mode, r in res["modes"].items():
        b, c = r["batch_call"], r["per_call"]
        lines.append(f"{mode:<8}{r['throughput_cmd_s']:>12,.0f}{r['vs_none']:>8.0%} "
                     f"{r['cpu_ns_per_cmd']:>10.0f}{r['cpu_vs_none']:>8.0%} "
                     f"{b['p50_ns'] / 1e3:>9.1f} us{b['p99_ns'] / 1e3:>9.1f} us"
                     f"{c['p50_ns'] / 1e3:>8.1f} us{c['p99_ns'] / 1e3:>8.1f} us"
                     f"{c['max_ns'] / 1e3:>8.1f} us{r.get('writer_preempted', '-'):>9}")
    return "\n".join(lines)


def main(argv=None) -> int:
    from matchcore.bench.script_args import (at_least_one, at_least_zero, check_directory,
                                             check_json_output, check_workload_size, integer)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    # sizes: None until given, then the full or the --quick default (--quick replaced sizes
    # given on the command line too)
    p.add_argument("--messages", type=at_least_one, default=None,
                   help="commands of the standard mix (default 500,000; 60,000 with --quick)")
    p.add_argument("--seed", type=at_least_zero, default=1,
                   help="seed of the standard mix (default 1)")
    p.add_argument("--batch", type=at_least_one, default=1024,
                   help="commands per process() call (default 1,024)")
    p.add_argument("--reps", type=at_least_one, default=None,
                   help="passes over the modes, the median taken (default 3; 1 with --quick)")
    p.add_argument("--per-call", type=at_least_one, default=None,
                   help="per-call commands timed (never/batch/none); default 100,000, 10,000 "
                        "with --quick")
    p.add_argument("--per-call-always", type=at_least_one, default=None,
                   help="per-call commands timed under fsync='always' (one fsync each); "
                        "default 10,000, 1,000 with --quick")
    p.add_argument("--batch-records", type=integer, default=4096,
                   help="group commit: fsync once this many records wait (default 4,096)")
    p.add_argument("--batch-us", type=integer, default=2000,
                   help="group commit: fsync at least this often, in microseconds "
                        "(default 2,000)")
    p.add_argument("--dir", default=None, help="where the journals go (default: temp dir)")
    p.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON to OUT")
    a = p.parse_args(argv)
    check_json_output(p, a.json)
    check_directory(p, "--dir", a.dir)
    from matchcore.durability.journal import check_journal_options

    for option in ("batch_records", "batch_us"):
        # the journal's refusal came as a traceback, once the first journaled engine was made
        try:
            check_journal_options(writers=False, **{option: getattr(a, option)})
        except ValueError as e:
            p.error(f"argument --{option.replace('_', '-')}: {e}")
    sizes = {"messages": (500_000, 60_000), "reps": (3, 1), "per_call": (100_000, 10_000),
             "per_call_always": (10_000, 1_000)}
    for name, (full, quick) in sizes.items():
        if getattr(a, name) is None:
            setattr(a, name, quick if a.quick else full)
    check_workload_size(p, "--messages", a.messages)
    from matchcore.bench.machine import machine_info
    root = tempfile.mkdtemp(prefix="mc-bench-durability-", dir=a.dir)
    m = machine_info()
    try:
        load0 = os.getloadavg()
        res = run(a.messages, a.seed, a.batch, a.reps, a.per_call, a.per_call_always, root,
                  {"batch_records": a.batch_records, "batch_us": a.batch_us})
        load1 = os.getloadavg()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    res["machine"] = m
    res["filesystem"] = _fs_of(os.path.dirname(root))
    res["load"] = {"start": load0, "end": load1}
    print(f"machine: {m['cpu']}, {m['cores_usable']} usable cores, Python {m['python']}, "
          f"commit {(m['git'].get('commit') or '?')[:10]}; journals on {res['filesystem']}; "
          f"load {load0[0]:.1f} -> {load1[0]:.1f}")
    print(f"group commit: fsync per {a.batch_records} records or {a.batch_us} us")
    print(format_result(res))
    if a.json:
        # whole or not at all: a run failing while writing (a full disk) leaves the old file
        from matchcore._cliutil import write_json

        write_json(a.json, res, "--json", indent=2, default=str)
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
