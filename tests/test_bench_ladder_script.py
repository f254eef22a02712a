"""benchmarks/bench_ladder.py's table, its measurements stood in for (the real ones build books
of up to 1M levels)."""
from __future__ import annotations

from bench_checks import load_script


def _ladder_output(monkeypatch, capsys, argv):
    mod = load_script("bench_ladder")
    built = []

    def build_cost(n, order, seed=1):
        built.append((n, order))
        return 123.0

    monkeypatch.setattr(mod, "build_cost", build_cost)
    monkeypatch.setattr(mod, "depth_after_mass_cancel", lambda e: (1.0, 0.5, 0.5))
    assert mod.main(argv) == 0
    return capsys.readouterr().out, built


def test_bench_ladder_sizes_above_max_random_say_skipped_not_nan(monkeypatch, capsys):
    # a size above --max-random printed "nan" in the random column, as if it had been
    # measured and come out as no number
    out, built = _ladder_output(monkeypatch, capsys, ["--max-random", "10000"])
    assert "nan" not in out.lower()
    build_table = out.split("\n\n")[0]           # the depth(2) table follows it
    rows = {line.split()[0]: line.split()[1:] for line in build_table.splitlines()
            if line.strip() and line.split()[0].replace(",", "").isdigit()}
    assert rows["10,000"] == ["123", "123", "123"]
    for size in ("100,000", "200,000", "1,000,000"):
        assert rows[size] == ["123", "123", "skipped"]
    assert "above --max-random 10,000" in out
    assert not [n for n, order in built if order == "random" and n > 10_000]


def test_bench_ladder_every_size_measured_no_skip_note(monkeypatch, capsys):
    out, built = _ladder_output(monkeypatch, capsys, [])
    assert "skipped" not in out and "nan" not in out.lower()
    assert sorted(n for n, order in built if order == "random") == [
        1_000, 10_000, 100_000, 200_000, 1_000_000]
