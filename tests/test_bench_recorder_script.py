"""benchmarks/bench_recorder.py: what a native.Recorder adds per call, reported, never asserted."""
from __future__ import annotations

import json

import pytest

from bench_checks import load_script, refused_before_work


def test_bench_recorder_reports_both_paths_and_the_journal_holds_every_call(tmp_path, capsys,
                                                                          monkeypatch):
    mod = load_script("bench_recorder")
    out = tmp_path / "rec.json"
    assert mod.main(["--calls", "50", "--rounds", "2", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["calls"] == 50 and res["rounds"] == 2
    for method in ("submit", "cancel"):
        fig = res[method]
        for kind in ("book", "recorder"):
            assert 0 < fig[kind]["best_ns"] <= fig[kind]["median_ns"]
        assert fig["recorder_adds_ns"] == pytest.approx(
            fig["recorder"]["median_ns"] - fig["book"]["median_ns"])
    text = capsys.readouterr().out
    assert text.count("through the Recorder") == 2 and f"wrote {out}" in text
    # the timed Recorder rounds journal what they were sent: every submit and cancel, the
    # book empty at the end
    from matchcore.native import read_commands
    seen = []
    real = mod.one_round

    def keep(calls, recorded):
        made = []
        import matchcore.native as native
        orig = native.Recorder

        class Spy(orig):
            def __init__(self, book, path, **kw):
                made.append((book, path))
                super().__init__(book, path, **kw)

            def close(self):
                super().close()
                seen.append((len(made[-1][0]), len(read_commands(made[-1][1]))))

        monkeypatch.setattr(native, "Recorder", Spy)
        try:
            return real(calls, recorded)
        finally:
            monkeypatch.setattr(native, "Recorder", orig)

    monkeypatch.setattr(mod, "one_round", keep)
    mod.main(["--calls", "30", "--rounds", "1"])
    assert seen == [(0, 60)]


@pytest.mark.parametrize("argv, named", [(["--calls", "0"], "--calls"),
                                         (["--rounds", "-1"], "--rounds"),
                                         (["--calls", "x"], "--calls"),
                                         (["--json", "/nonexistent-dir/x.json"], "--json"),
                                         (["--call", "5"], "--call")])
def test_bench_recorder_bad_arguments_refused_before_any_round(monkeypatch, capsys, argv, named):
    err = refused_before_work(monkeypatch, capsys, "bench_recorder", "one_round", argv)
    assert "error:" in err and named in err
