"""The baselines' figures: warmed up and best of several runs; one reference figure per run."""
from __future__ import annotations

import pytest

from matchcore import workloads
from matchcore.bench import baselines


@pytest.fixture(scope="module")
def small():
    return workloads.standard_mix(200, seed=3, resting=50)


def test_run_baselines_reference_warm_up_untimed_then_best_of_reps(small, monkeypatch):
    setup, flow = small
    timings = iter([10_000_000, 800_000, 400_000, 600_000])    # the first call is the warm-up
    calls = []

    def fake(s, f):
        calls.append(len(f))
        return next(timings)

    label, _, mod = baselines.BASELINES["reference"]
    monkeypatch.setitem(baselines.BASELINES, "reference", (label, fake, mod))
    r = baselines.run_baselines(setup, flow, 10.0, names=("reference",), reps=3)["reference"]
    assert calls == [len(flow)] * 4
    assert r["reps"] == 3
    assert r["ns_per_msg_runs"] == [800_000 / len(flow), 400_000 / len(flow), 600_000 / len(flow)]
    assert r["ns_per_msg"] == 400_000 / len(flow)
    assert r["slower_than_matchcore"] == r["ns_per_msg"] / 10.0


def test_run_baselines_real_reference_reports_every_run(small):
    setup, flow = small
    r = baselines.run_baselines(setup, flow, 10.0, names=("reference",), reps=2)["reference"]
    assert len(r["ns_per_msg_runs"]) == 2 and r["ns_per_msg"] == min(r["ns_per_msg_runs"]) > 0


def test_run_baselines_reps_below_one_refused(small):
    with pytest.raises(ValueError, match="reps"):
        baselines.run_baselines(*small, 10.0, reps=0)


def test_bench_core_reuses_the_baselines_reference_measured_in_the_same_run(monkeypatch):
    from matchcore.bench import core
    from matchcore.cli_bench import run_bench

    seen = {}

    def fake_core(**kw):
        seen.update(kw)
        return {"reference": kw["reference"]}

    monkeypatch.setattr(core, "run_core", fake_core)
    res = run_bench(["baselines", "core"], messages=2000, quick=True, progress=False)
    ref = res["baselines"]["results"]["reference"]
    assert seen["reference"] is ref and res["core"]["reference"] is ref
    assert ref["n"] == core.reference_messages(2000, True) and ref["reps"] == 2


@pytest.mark.parametrize("names", [("refrence",), ("reference", "pyorderbok")])
def test_run_baselines_unknown_name_refused_not_skipped(small, names):
    # a misspelt name was skipped without a word: the result held no entry for it (or none
    # at all), as if the baseline had been asked for and had nothing to say
    setup, flow = small
    bad = [n for n in names if n not in baselines.BASELINES]
    with pytest.raises(ValueError, match=rf"^unknown baseline\(s\) {bad[0]}; choose from "
                                         rf"reference, python_per_call, lightmatchingengine, "
                                         rf"pyorderbook$"):
        baselines.run_baselines(setup, flow, 10.0, names=names, reps=1)


def test_report_baseline_faster_than_matchcore_said_faster_not_a_fraction_slower(monkeypatch):
    # a baseline that beat matchcore's figure (one Python call per command on a handful of
    # messages, where process() is all start-up) was shown as "0.4x slower"
    from matchcore.bench.report import format_report
    from matchcore.cli_bench import run_bench

    label, _, mod = baselines.BASELINES["python_per_call"]
    monkeypatch.setitem(baselines.BASELINES, "python_per_call",
                        (label, lambda s, f: 1, mod))        # 1 ns for the whole flow
    res = run_bench(["baselines"], messages=2000, quick=True, progress=False)
    r = res["baselines"]["results"]["python_per_call"]
    assert r["slower_than_matchcore"] < 1
    row = next(x for x in format_report(res).splitlines() if x.startswith(label))
    assert "slower" not in row
    assert row.endswith(f"{1 / r['slower_than_matchcore']:,.1f}x faster")


@pytest.mark.parametrize("make", [lambda ns: (n for n in ns), iter, dict.fromkeys])
def test_run_baselines_names_as_any_iterable_runs_those_named(small, make):
    # names given as a generator (or any one-pass iterable) was used up by the check of
    # unknown names, and every baseline was then skipped: an empty result, no word said
    setup, flow = small
    res = baselines.run_baselines(setup, flow, 10.0, names=make(["reference"]), reps=1)
    assert list(res) == ["reference"] and res["reference"]["ns_per_msg"] > 0
