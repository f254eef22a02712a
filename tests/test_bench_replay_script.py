"""benchmarks/bench_replay.py's printed figures, its timings stood in for."""
from __future__ import annotations

import pytest

from bench_checks import load_script


@pytest.mark.parametrize("ref_s, compiled_s, shown", [
    (1.0, 2.7, "0.37x"),        # the compiled replay the slower (a few messages: its set-up)
    (1.0, 0.5, "2.00x"),
    (1.0, 1 / 150, "150x"),
])
def test_bench_replay_compiled_over_reference_ratio_below_ten_keeps_its_decimals(
        monkeypatch, capsys, ref_s, compiled_s, shown):
    # the ratio was printed with no decimal: 0.37 read "0x", as if the compiled replay
    # had taken no time or the reference forever
    mod = load_script("bench_replay")

    def timed(fn, repeat):
        s = ref_s if getattr(fn, "__name__", "") == "ref" else compiled_s
        return [s], [s]

    monkeypatch.setattr(mod, "timed", timed)
    assert mod.main(["--messages", "2000", "--symbols", "2", "--repeat", "1",
                     "--reference-messages", "100", "--skip-memory"]) in (0, None)
    line = next(ln for ln in capsys.readouterr().out.splitlines()
                if "compiled / pure Python" in ln)
    assert line.endswith(f": {shown}"), line


def test_bench_replay_small_input_size_reads_in_kb_not_0_0_mb(monkeypatch, capsys):
    # a small day's size read "0.0 MB", as if the input held nothing
    mod = load_script("bench_replay")
    monkeypatch.setattr(mod, "timed", lambda fn, repeat: ([1.0], [1.0]))
    mod.main(["--messages", "500", "--symbols", "1", "--repeat", "1",
              "--reference-messages", "10", "--skip-memory"])
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("input:"))
    assert " 0.0 MB" not in line and " KB (generated" in line, line
