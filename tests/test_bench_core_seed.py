"""The core section's result says which seed its flows were generated with: it is what
``benchmarks/bench_core.py --json`` writes, with no command line beside it."""
from __future__ import annotations

import json

import numpy as np

import matchcore.bench.core as core
from matchcore.bench.report import json_text


def test_run_core_result_records_its_seed():
    # two runs with different --seed wrote results that could not be told apart, and neither
    # could be run again on the same flows from its file
    d = core.run_depth(messages=2_000, sizes=(1_000, 2_000), names=("stale_cancel",), reps=1,
                       seed=7)
    got = core.run_core(messages=2_000, quick=True, sizes=(1_000, 2_000), depth=d,
                        reference={"skipped": "not timed here"}, scaling_passes=1,
                        seed=np.int64(7))
    assert got["seed"] == 7 and type(got["seed"]) is int
    assert json.loads(json_text({"core": got}))["core"]["seed"] == 7
