"""Core benchmarks of the compiled book (also `matchcore bench core`).

Per-call ns/op from Python for submit, cancel, modify and a marketable order beside the empty
call into the same extension; process() throughput on the standard mix (warm); per-message cost
with 1k, 100k and 1M resting orders; the reference model per message in the same run; and the
ratio of each to its target.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_core.py [--quick] [--json OUT]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


def main(argv=None) -> int:
    from matchcore.bench import harness
    from matchcore.bench.core import run_core
    from matchcore.bench.machine import machine_info
    from matchcore.bench.report import format_core, write_json
    from matchcore.bench.script_args import (at_least_one, at_least_zero, check_json_output,
                                             check_workload_size)

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    # as `matchcore bench core`: 1,000,000 messages, 100,000 with --quick unless given
    p.add_argument("--messages", type=at_least_one, default=None,
                   help="flow commands (default 1,000,000; 100,000 with --quick)")
    p.add_argument("--seed", type=at_least_zero, default=1,
                   help="seed of the generated flows (default 1)")
    p.add_argument("--quick", action="store_true", help="small sizes, as `matchcore bench core "
                   "--quick`")
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON to OUT")
    a = p.parse_args(argv)
    check_json_output(p, a.json)
    if a.messages is None:
        a.messages = 100_000 if a.quick else 1_000_000
    check_workload_size(p, "--messages", a.messages)
    clock = harness.clock_info()
    res = {"machine": machine_info(), "clock": clock,
           "core": run_core(messages=a.messages, seed=a.seed, quick=a.quick,
                            clock=clock["clock"], overhead_ns=clock["overhead_ns"])}
    m = res["machine"]
    print(f"machine: {m['cpu']}, {m['cores_usable']} usable cores, Python {m['python']}, "
          f"commit {(m['git'].get('commit') or '?')[:10]}")
    print(format_core(res["core"]))
    if a.json:
        print(f"wrote {write_json(res, a.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
