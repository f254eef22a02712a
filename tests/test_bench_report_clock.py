"""The clock line of the ``matchcore bench`` report: it says the clock pair's cost is included
in (or subtracted from) the figures below only when some figure below is timed per message."""
from __future__ import annotations

from matchcore.bench.report import format_report
from matchcore.cli_bench import run_bench


def _clock_line(text):
    return next(x for x in text.splitlines() if x.startswith("clock: "))


def test_bench_report_no_per_message_figure_clock_not_said_included():
    # `bench itch` (or depth, baselines) said "a back-to-back read pair costs 20 ns:
    # included below" above figures that no per-message clock pair took part in
    res = run_bench(["itch"], messages=2000, quick=True, progress=False)
    line = _clock_line(format_report(res))
    assert "included below" not in line and "subtracted below" not in line
    assert line.endswith("no figure below is timed per message")


def test_bench_report_per_message_figures_clock_said_included_or_subtracted():
    res = run_bench(["standard"], messages=2000, quick=True, progress=False)
    assert _clock_line(format_report(res)).endswith("included below")
    assert _clock_line(format_report(res, net=True)).endswith("subtracted below")
