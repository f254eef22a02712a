"""``matchcore.bench.plots.plot_all``: the benchmark charts, and the figures they leave."""
from __future__ import annotations

import pytest

RESULT = {"machine": {"cpu": "test cpu"},
          "rate_sweep": {"workload": "standard", "capacity_per_s": 2e6,
                         "points": [{"rate_per_s": r, "latency": {"p50": 100 + i, "p99": 200 + i,
                                                                   "p99.9": 300 + i,
                                                                   "max": 400 + i}}
                                    for i, r in enumerate((1e5, 1e6))]},
          "scaling": {"resting": [{"variant": "batch", "param": p, "ns_per_msg": 50 + p % 7,
                                   "p99": 90} for p in (1000, 10_000)]}}


def test_plot_all_save_fails_every_figure_closed(tmp_path, monkeypatch):
    # a chart whose saving failed (a full disk) stayed open in pyplot: a caller that goes on
    # (a notebook, a loop of runs) kept each such figure's memory
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    import matchcore.replay_plots as replay_plots
    from matchcore.bench.plots import plot_all

    def save_figure(fig, path, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(replay_plots, "save_figure", save_figure)
    plt.close("all")
    with pytest.raises(OSError, match="No space left"):
        plot_all(RESULT, tmp_path)
    assert plt.get_fignums() == []


def test_plot_all_writes_each_chart_and_leaves_no_figure_open(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from matchcore.bench.plots import plot_all

    plt.close("all")
    paths = plot_all(RESULT, tmp_path)
    assert [p.name for p in paths] == ["rate_sweep.png", "scaling_resting.png"]
    assert all(p.stat().st_size > 1000 for p in paths) and plt.get_fignums() == []


def test_bench_subtract_overhead_said_to_leave_charts_raw(capsys):
    # --subtract-overhead changes the printed report, not the --plot charts (drawn from the
    # raw samples, clock pair included): neither the help nor the README said which the
    # charts show
    from pathlib import Path

    from matchcore.__main__ import main

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "the --plot charts show the raw measurements" in help_text
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert ("`--subtract-overhead` changes the printed report only: the `--plot` charts show "
            "the raw measurements") in readme
