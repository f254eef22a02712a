"""Print the benchmarks/RESULTS.md row for a `matchcore bench --json` result.

    python benchmarks/results_row.py out.json "what changed"

A run unlike the one the columns describe (--quick, another --messages or --seed, a clock other
than the TSC) has that said after the change: "(run with --quick, 100,000 messages)".
"""
from __future__ import annotations

import json
import sys


def _max_us(ns: float) -> str:
    # a max below 10 us keeps a decimal (it printed "0us" for a max under 500 ns)
    return f"{ns / 1e3:,.1f}us" if ns < 10_000 else f"{ns / 1e3:,.0f}us"


#: What the columns are defined by (the header of benchmarks/RESULTS.md): `matchcore bench`
#: at its default sizes and seed, timed with the TSC.
FULL_MESSAGES = 1_000_000


def _unlike_the_columns(res: dict) -> list[str]:
    """How the run differs from the run the columns describe, in words (none for such a run).
    A --quick or smaller run's figures (100,000 messages, a 5,000-message reference model)
    made a row that read as the full run's."""
    cmd = res.get("command") or {}
    said = []
    if cmd.get("quick"):
        said.append("--quick")
    messages = cmd.get("messages")
    if messages is not None and messages != FULL_MESSAGES:
        said.append(f"{messages:,} messages")
    if cmd.get("seed", 1) != 1:
        said.append(f"seed {cmd['seed']}")
    clock = (res.get("clock") or {}).get("clock")
    if clock is not None and clock != "tsc":
        said.append(f"{clock} clock")
    return said


def row(res: dict, change: str) -> str:
    if "date" not in res or "machine" not in res:
        raise ValueError("not a `matchcore bench --json` result (no date or machine): "
                         "benchmarks/bench_core.py's JSON holds the core section only")
    m = res["machine"]
    git = m.get("git") or {}
    # "+": uncommitted changes; "?": whether there were any is unknown (git status failed)
    dirty = git.get("dirty")
    commit = (git.get("commit") or "?")[:7] + ("+" if dirty else "?" if dirty is None and
                                                git.get("commit") else "")
    # (unknown: machine_info() could not read it; "0.0" passed for a quiet machine)
    load = m.get("load_average")
    std = (res.get("workloads") or {}).get("standard")
    core = res.get("core") or {}
    # one cell of a Markdown table row: a '|' opened another column, a line break ended the row
    change = " ".join(change.splitlines()).replace("|", "\\|")
    unlike = _unlike_the_columns(res)
    if unlike:
        change = (f"{change} " if change else "") + f"(run with {', '.join(unlike)})"
    cells = [res["date"][:10], commit,
             f"{m['cpu']}, {m['cores_usable']} cores, load "
             + (f"{load[0]:.1f}" if load else "?"), change]
    if std:
        c = std["closed"]
        cells.append(f"{c['p50']:.0f} / {c['p99']:.0f} / {c['p99.9']:.0f} / {_max_us(c['max'])}")
        cells.append(f"{std['throughput']['median_chunk']['msgs_per_s'] / 1e6:.1f}")
    else:
        cells += ["-", "-"]
    if core:
        cells.append(f"{core['process']['process_chunked']['msgs_per_s'] / 1e6:.1f}")
        pc = core["per_call"]
        cells.append(" / ".join(f"{pc[op]['vs_noop4']:.2f}" for op in
                                ("submit", "cancel", "modify", "marketable")))
        cells.append(f"{core['vs_targets']['deep_vs_small']:.2f}")
        ref = core["vs_targets"]["vs_reference"]
        cells.append(f"{ref:.0f}x" if ref else "-")
    else:
        cells += ["-"] * 4
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 3:
        # (an IndexError traceback)
        print('usage: python benchmarks/results_row.py RESULT.json ["what changed"]',
              file=sys.stderr)
        sys.exit(2)
    # a file that cannot be read or is not JSON: one line, not a traceback
    try:
        with open(sys.argv[1]) as f:
            res = json.load(f)
    except OSError as e:
        sys.exit(f"results_row: {sys.argv[1]}: {e.strerror or e}")
    except ValueError as e:
        sys.exit(f"results_row: {sys.argv[1]}: not JSON ({e})")
    try:
        print(row(res, sys.argv[2] if len(sys.argv) > 2 else ""))
    except ValueError as e:
        sys.exit(f"results_row: {e}")
