"""Text tables and JSON for benchmark results."""
from __future__ import annotations

import json
import math
from pathlib import Path

from matchcore._core import _flag_arg
from matchcore.bench.harness import PCT_NAMES


def _ns(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:,.1f}ms"
    if v >= 1e4:
        return f"{v / 1e3:,.1f}us"
    return f"{v:,.0f}"


def _rate(per_s: float) -> str:
    """A rate in messages/s: in millions from 0.1M/s up, else as it is (a --rate of 2,500 read
    "0.00M/s")."""
    if per_s >= 1e5:
        return f"{per_s / 1e6:.2f}M/s"
    return f"{per_s:,.0f}/s" if per_s >= 10 else f"{per_s:.3g}/s"


def _table(headers, rows) -> str:
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _pick(s: dict, net: bool) -> dict:
    if not net:
        return s
    d = dict(s)
    d.update(s["net"])
    return d


def _pick_point(p: dict, net: bool) -> dict:
    # a scaling point: results written before it carried "net" have only the raw figures
    return _pick(p, net) if "net" in p else p


def format_report(res: dict, net: bool = False) -> str:
    """The human-readable summary of a result dict from :func:`matchcore.cli_bench.run_bench`."""
    net = _flag_arg(net, "net")
    out = []
    m = res["machine"]
    c = res["clock"]
    git = m.get("git") or {}
    dirty = git.get("dirty")
    state = (" (dirty)" if dirty else
             " (dirty: unknown)" if dirty is None and git.get("commit") else "")
    # (None: machine_info() could not read the load average; it read "load ;")
    load = ", ".join(f"{x:.2f}" for x in (m.get("load_average") or [])) or "?"
    out.append(f"machine: {m['cpu']}, {m['cores_usable']} usable cores, Python {m['python']}, "
               f"load {load}; commit {(git.get('commit') or '?')[:10]}{state}")
    # the tick alone read as 0.39 ns resolution where the readings advance 10 ns at a time
    step = f", readings advance in steps of {c['step_ns']:.0f} ns" if "step_ns" in c else ""
    # itch, depth and baselines alone read no per-message clock: "included below" was said
    # above figures no clock pair took part in
    timed = any(res.get(k) for k in ("workloads", "rate_sweep", "scaling", "core"))
    out.append(f"clock: {c['clock']} (resolution {c['resolution_ns']:.2f} ns{step}), a "
               f"back-to-back read pair costs {c['overhead_ns']:.0f} ns (p99 {c['overhead_p99_ns']:.0f}): "
               + ("no figure below is timed per message" if not timed
                  else "subtracted below" if net else "included below"))
    wl = res.get("workloads") or {}
    if wl:
        rows = []
        for name, r in wl.items():
            if "skipped" in r:
                continue
            s = _pick(r["closed"], net)
            t = r["throughput"]
            rows.append([name, f"{r['resting_start']:,}", *(_ns(s[k]) for k in PCT_NAMES),
                         _ns(s["max"]), f"{t['median_chunk']['msgs_per_s'] / 1e6:.1f}",
                         f"{t['emit']['msgs_per_s'] / 1e6:.1f}",
                         f"{t['process_chunked']['msgs_per_s'] / 1e6:.1f}"])
        # the chunk as measured: 32k messages, or an eighth of a shorter flow (not below 1,024)
        chunks = sorted({r["throughput"]["median_chunk"]["chunk"] for r in wl.values()
                         if "skipped" not in r})
        out.append("\nclosed loop: service time per message, ns (inside the compiled loop); "
                   f"throughput M msg/s: median {'/'.join(f'{c:,}' for c in chunks)}-message "
                   "chunk, whole run in one compiled call, process() in calls of up to 64k messages")
        out.append(_table(["workload", "resting", *PCT_NAMES, "max", "chunk M/s", "run M/s",
                           "process() M/s"], rows))
        rows = []
        for name, r in wl.items():
            if "skipped" in r:
                continue
            o = r["open"]
            s = _pick(o["latency"], net)
            rows.append([name, _rate(o['rate_per_s']), *(_ns(s[k]) for k in PCT_NAMES),
                         _ns(s["max"])])
        out.append("\nopen loop: latency from scheduled arrival, ns")
        out.append(_table(["workload", "rate", *PCT_NAMES, "max"], rows))
        for name, r in wl.items():
            if "skipped" in r:
                out.append(f"\n{name}: skipped: {r['skipped']}")
    if res.get("itch"):
        r = res["itch"]
        if "skipped" in r:
            out.append(f"\nitch: skipped: {r['skipped']}")
        else:
            s = r["slice_ns_per_msg"]
            n = _count(r['messages'], 'generated message')
            out.append(f"\nITCH replay (decode + book building, {n}, "
                       f"{r['symbols']} symbols): {r['replay_msgs_per_s'] / 1e6:.1f} M msg/s "
                       f"({r['replay_ns_per_msg']:.0f} ns/msg); per-message mean over "
                       f"{_bytes(r['slice_bytes'])} slices p50 {_ns(s['p50'])} p99 {_ns(s['p99'])}")
    if res.get("rate_sweep"):
        rs = res["rate_sweep"]
        rows = [[f"{r['fraction']:.2f}", f"{r['rate_per_s'] / 1e6:.2f}",
                 *(_ns(_pick(r["latency"], net)[k]) for k in ("p50", "p99", "p99.9")),
                 _ns(_pick(r["latency"], net)["max"])] for r in rs["points"]]
        n = _count(rs['messages'], 'message')
        out.append(f"\nrate sweep ({rs['workload']}, {n} each, capacity "
                   f"{rs['capacity_per_s'] / 1e6:.1f} M msg/s): open-loop latency, ns")
        out.append(_table(["x capacity", "M msg/s", "p50", "p99", "p99.9", "max"], rows))
    if res.get("scaling"):
        sc = res["scaling"]
        for key, title in (("resting", "resting orders"), ("levels", "price levels")):
            rows = []
            for r in sc.get(key, []):
                q = _pick_point(r, net)
                rows.append([r["variant"], f"{r['param']:,}", f"{r['resting']:,}", f"{r['levels']:,}",
                             f"{r['ns_per_msg']:.0f}", _ns(q["p50"]), _ns(q["p99"]), _ns(q["p99.9"])])
            if rows:
                n = _count(sc['messages'], 'standard-mix message')
                out.append(f"\nscaling with {title} ({n} each)")
                # the parameter asked for, then the book it built (occupied levels: fewer
                # than asked when orders miss some prices); both were headed by the same word
                out.append(_table(["variant", key, "resting at start", "levels at start",
                                   "ns/msg", "p50", "p99", "p99.9"], rows))
    if res.get("baselines"):
        b = res["baselines"]
        rows = []
        for name, r in b["results"].items():
            if "skipped" in r:
                rows.append([r["label"], "-", "-", r["skipped"]])
            else:
                rows.append([r["label"], f"{r['ns_per_msg']:,.0f}", f"{r['msgs_per_s'] / 1e6:.3f}",
                             _slower(r["slower_than_matchcore"])])
        n = _count(b['messages'], 'message')
        out.append(f"\nbaselines (standard mix, {n}; matchcore process() in "
                   f"calls of up to 64k messages {b['matchcore_ns_per_msg']:.0f} ns/msg)")
        out.append(_table(["book", "ns/msg", "M msg/s", "vs matchcore"], rows))
    if res.get("depth") and not res.get("core"):     # else the core table shows it
        out.append("\n" + format_depth(res["depth"]))
    if res.get("core"):
        out.append("\n" + format_core(res["core"], net=net))
    return "\n".join(out)


def format_depth(depth: dict) -> str:
    """The touch workloads' per-message cost at each book size, with the deep/small ratio."""
    sizes = depth["sizes"]
    rows = []
    for name, d in depth["workloads"].items():
        pts = d["points"]
        rows.append([name, *(f"{pts[str(z)]['ns_per_msg']:.1f}" for z in sizes),
                     f"{d['ratio']:.2f}",
                     *(f"{pts[str(z)]['process_out_ns_per_msg']:.1f}" for z in (sizes[0], sizes[-1])),
                     f"{d['process_out_ratio']:.2f}", f"{d['small_process_out_msgs_per_s'] / 1e6:.1f}"])
    head = ["workload", *(f"{z:,} ns/msg" for z in sizes), f"{sizes[-1]:,}/{sizes[0]:,}",
            f"process(out) {sizes[0]:,}", f"process(out) {sizes[-1]:,}", "ratio",
            f"process(out) M/s at {sizes[0]:,}"]
    n = _count(depth['messages'], 'message')
    return (f"touch workloads by resting orders ({n} each; ns/msg of "
            f"the compiled loop: median {depth.get('chunk', 32768):,}-message chunk, best of "
            f"{_count(depth.get('reps', 1), 'pass', 'passes')}; process(out=): median call; "
            f"ratios: median of the passes' own):\n"
            + _table(head, rows))


def format_engine(eng: dict) -> str:
    """Engine.process(out=) against OrderBook.process(out=) on the same flows."""
    rows = []
    for name, w in eng["workloads"].items():
        row = [name, f"{w['book_ns_per_msg']:.1f}", f"{w['engine_ns_per_msg']:.1f}",
               f"{w['engine_vs_book']:.2f}"]
        if "routed_ns_per_msg" in w:                 # results written before it was measured
            row += [f"{w['routed_ns_per_msg']:.1f}", f"{w['routed_vs_book']:.2f}"]
        rows.append(row)
    head = ["workload", "OrderBook ns/msg", "Engine ns/msg", "Engine / OrderBook"]
    if rows and len(rows[0]) > 4:
        head += ["Engine, 2 symbols ns/msg", "2 symbols / OrderBook"]
    return (f"the multi-symbol Engine (the book as its one symbol; beside it, with a second "
            f"symbol the flow never names, so that ids are routed across books) against one "
            f"OrderBook, {_count(eng['messages'], 'message')} at {eng['resting']:,} resting "
            f"orders, "
            f"process(out=) in {eng['chunk']:,}-message calls, median call, best of "
            f"{eng['reps']}:\n" + _table(head, rows))


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and its noun, singular for 1: "1 message", "2,000 messages"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _bytes(n: int) -> str:
    """A size in bytes in words: "1 byte", "600 bytes", then KiB, MiB, ... with one decimal
    where the count is not whole ("1.5 KiB", "64 KiB"). A small run's sizes read "0 KiB
    slices" and "its fresh 0 MiB event array" when divided down to a unit they did not fill."""
    if n < 1024:
        return _count(int(n), "byte")
    v = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        v /= 1024
        if v < 1024:
            break
    return f"{v:,.0f} {unit}" if v == int(v) or v >= 100 else f"{v:,.1f} {unit}"


def _slower(ratio: float) -> str:
    """A baseline's cost over matchcore's, in words: below 1 it is the faster one (a handful of
    messages, where process() is mostly its start-up), not "0.4x slower"."""
    if ratio and ratio < 1:
        return f"{1 / ratio:,.1f}x faster"
    return f"{ratio:,.1f}x slower"


def format_core(core: dict, net: bool = False) -> str:
    """The core benchmark table with the targets (``net``: percentiles with the clock pair's
    overhead subtracted)."""
    net = _flag_arg(net, "net")
    pc = core["per_call"]
    out = [f"core: per call from Python (ns/call, best of {pc['reps']} per block, {pc['n']:,} "
           f"calls, book of ~{pc.get('resting', 1000):,} orders, record_events=True; floor = "
           f"empty call into the extension with the method's own signature; process() ns/cmd "
           f"= the same commands, a process(out=) call per block)"]
    rows = [["_noop()", f"{pc['noop']['ns_per_call']:.1f}", "-", "-", "-", "-", "-"],
            ["_noop4(id, side, price, qty)", f"{pc['noop4']['ns_per_call']:.1f}", "1.00", "-",
             "-", "-", "-"]]
    for name, what in (("noop_submit", "submit's"), ("noop_cancel", "cancel's"),
                       ("noop_modify", "modify's")):
        if name in pc:
            rows.append([f"_{name} ({what} signature)", f"{pc[name]['ns_per_call']:.1f}",
                         f"{pc[name]['ns_per_call'] / pc['noop4']['ns_per_call']:.2f}", "1.00",
                         "-", "-", "-"])
    for op in ("submit", "cancel", "modify", "marketable", "best_bid", "depth10"):
        if op not in pc:
            continue
        target = "<= 1.5" if op in ("submit", "cancel", "modify") else ""
        same = pc[op].get("vs_same_signature")
        # (a JSON file of a run before the compiled figures has none of them)
        c_ns, both = pc[op].get("compiled_ns_per_cmd"), pc[op].get("vs_empty_plus_compiled")
        rows.append([op, f"{pc[op]['ns_per_call']:.1f}", f"{pc[op]['vs_noop4']:.2f}",
                     f"{same:.2f}" if same is not None else "", target,
                     f"{c_ns:.1f}" if c_ns is not None else "",
                     f"{both:.2f}" if both is not None else ""])
    out.append(_table(["call", "ns/call", "x noop4", "x same-signature empty call", "target",
                       "process() ns/cmd", "x (empty call + process() ns/cmd)"], rows))
    pr = core["process"]
    p, pc_, e = pr["process"], pr["process_chunked"], pr["emit"]
    po = pr.get("process_out", pc_)
    # each figure with its own call size (the out= figure was labelled with the 64k calls of
    # the new-array figure, though its calls are 8k messages)
    out.append(f"process() on the standard mix ({_count(pr['n'], 'message')}, warm): "
               f"{po['msgs_per_s'] / 1e6:.1f} M msg/s in {po['chunk']:,}-message calls with out= "
               f"({po['ns_per_msg']:.1f} ns/msg, median call), {pc_['msgs_per_s'] / 1e6:.1f} M "
               f"msg/s making a new array per call in {pc_['chunk']:,}-message calls, "
               f"{p['msgs_per_s'] / 1e6:.1f} M msg/s as one call "
               f"(its fresh {_bytes(pr['events'] * 64)} event array is page-faulted in); "
               f"compiled loop alone {e['msgs_per_s'] / 1e6:.1f} M msg/s, median "
               f"{pr['median_chunk']['chunk']:,}-message chunk "
               f"{pr['median_chunk']['msgs_per_s'] / 1e6:.1f} M msg/s; target >= 25 M msg/s")
    rows = [[f"{int(k):,}", f"{v['ns_per_msg']:.1f}", _ns(_pick_point(v, net)["p50"]),
             _ns(_pick_point(v, net)["p99"])] for k, v in core["resting"].items()]
    npass = len(next(iter(core["resting"].values())).get("ns_per_msg_passes", [0]))
    out.append("standard mix by resting orders (active near the touch, the rest deeper; "
               f"ns/msg of the median chunk, best of {npass} pass{'es' if npass > 1 else ''}):")
    out.append(_table(["resting", "ns/msg", "p50", "p99"], rows))
    if core.get("depth"):
        out.append(format_depth(core["depth"]))
    if core.get("engine"):
        out.append(format_engine(core["engine"]))
    vt = core["vs_targets"]
    ref = core["reference"]
    ref_txt = (f"{ref['ns_per_msg']:,.0f} ns/msg = {vt['vs_reference']:.0f}x slower"
               if vt["vs_reference"] else ref.get("skipped", "-"))
    lo, hi = vt["deep_vs_small_sizes"]
    out.append(f"standard mix {hi:,} vs {lo:,} resting: {vt['deep_vs_small']:.2f}x (target <= 1.5); "
               f"reference model: {ref_txt} (target >= 50x)")
    if not core.get("comparable_with_targets", True):
        table = core.get("table_messages", 1_000_000)
        out.append(f"note: {_count(core['messages'], 'message')}"
                   f"{' with --quick sizes' if core.get('quick') else ''}, where the README's "
                   f"table was run with {table:,} at full size: the ratios are not comparable "
                   f"with the table's targets")
    out.append("targets met: " + ", ".join(_verdict(k, v, core) for k, v in core["met"].items()))
    return "\n".join(out)


def _verdict(key: str, met: bool, core: dict) -> str:
    """``key yes``, or ``key NO`` with the parts that miss the target: deep_vs_small's NO came
    from a touch workload's ratio beside a standard mix line that read as met."""
    if met:
        return f"{key} yes"
    from matchcore.bench.core import TARGETS, target_misses

    try:
        misses = target_misses(core["vs_targets"]).get(key, [])
    except KeyError:            # results written before a figure was measured
        misses = []
    t = TARGETS.get(key)
    said = []
    for part, v in misses:
        if v is None:
            said.append(f"{part} not timed")
        elif key.endswith("msgs_per_s"):
            said.append(f"{part} {_past(v / 1e6, t / 1e6, 1)} M msg/s < {t / 1e6:g} M")
        elif key == "vs_reference":
            said.append(f"{part} {_past(v, t, 0)}x < {t:g}x")
        else:
            said.append(f"{part} {_past(v, t, 2)}x > {t:g}")
    return f"{key} NO" + (f" ({', '.join(said)})" if said else "")


def _past(v: float, target: float, digits: int) -> str:
    """``v`` with ``digits`` decimals, or more when that rounds it onto the target it misses:
    1.501 read "1.50x > 1.5" beside a NO."""
    for d in range(digits, digits + 5):
        shown = f"{v:.{d}f}"
        if float(shown) != target:
            return shown
    return shown


def _clean(o):
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items() if not str(k).startswith("_")}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    if hasattr(o, "item"):
        return _clean(o.item())
    return o


def json_text(res: dict) -> str:
    """A result dict as JSON text (NaN/inf as null, private keys dropped), newline-ended."""
    return json.dumps(_clean(res), indent=1, sort_keys=False) + "\n"


def write_json(res: dict, path) -> Path:
    """Write a result dict as JSON (NaN/inf as null, private keys dropped). A missing
    directory is refused (``FileNotFoundError``), as ``matchcore bench --json`` refuses it:
    made here, a mistyped path put the figures somewhere new. A name ending with a separator
    (``res/``) names a directory, and is refused as ``open()`` refuses it
    (``IsADirectoryError``): through ``Path`` the slash was dropped, and a file ``res``
    written."""
    import errno

    from matchcore._cliutil import atomic_output, names_a_directory

    if names_a_directory(path):
        raise IsADirectoryError(errno.EISDIR, "a name ending with a separator names a "
                                "directory", path)
    path = Path(path)
    if not path.parent.exists():
        raise FileNotFoundError(errno.ENOENT, f"no directory {path.parent}", str(path))
    text = json_text(res)
    with atomic_output(path) as f:      # a run interrupted while writing leaves no half file
        f.write(text)
    return path
