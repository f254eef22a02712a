"""``matchcore replay`` keeps the top-of-book and trade sinks only for the outputs that take
them (``--out``, ``--plot``, ``--publish``): a summary, ``--dump-book`` or ``--metrics-port``
of a day runs in memory that does not grow with the day."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import matchcore.itch as itch

# the peak of this process's own memory: VmHWM (ru_maxrss keeps the forking parent's peak
# across exec, the test runner's, which may be above the child's)
_PEAK = ("import sys\n"
         "from matchcore.__main__ import main\n"
         "code = main(sys.argv[1:])\n"
         "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')]\n"
         "print(hwm[0].split()[1], file=sys.stderr)\n"
         "sys.exit(code)\n")


def _peak_kib(*argv) -> int:
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs Linux's /proc/self/status (VmHWM) for a process's own peak memory")
    p = subprocess.run([sys.executable, "-c", _PEAK, *argv, "--no-progress"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return int(p.stderr.split()[-1])


def test_cli_replay_dump_book_memory_does_not_grow_with_the_day(tmp_path):
    # the sinks of every top-of-book change and trade were kept for outputs nobody asked for:
    # about 53 bytes a message, 140 MB more for 2.7 M more messages (gigabytes for a real day)
    small, large = tmp_path / "small.itch", tmp_path / "large.itch"
    itch.generate(small, messages=300_000, symbols=8, seed=1)
    itch.generate(large, messages=3_000_000, symbols=8, seed=1)
    grew = (_peak_kib("replay", str(large), "--dump-book", str(tmp_path / "l.csv"))
            - _peak_kib("replay", str(small), "--dump-book", str(tmp_path / "s.csv")))
    assert grew < 40_000


def test_cli_replay_metrics_port_memory_does_not_grow_with_the_day(tmp_path):
    # --metrics-port kept every top-of-book change and trade too, though the metrics read the
    # replay's counters alone: 250 MB more for a 5 M-message day (gigabytes for a real one)
    pytest.importorskip("prometheus_client")
    small, large = tmp_path / "small.itch", tmp_path / "large.itch"
    itch.generate(small, messages=300_000, symbols=8, seed=1)
    itch.generate(large, messages=3_000_000, symbols=8, seed=1)
    grew = (_peak_kib("replay", str(large), "--metrics-port", "0")
            - _peak_kib("replay", str(small), "--metrics-port", "0"))
    assert grew < 40_000


def test_cli_replay_dbn_summary_memory_does_not_grow_with_the_file(tmp_path):
    pytest.importorskip("databento_dbn")
    from matchcore.feeds.dbn_gen import generate_mbo

    small, large = tmp_path / "small.dbn", tmp_path / "large.dbn"
    generate_mbo(small, records=100_000, instruments=3, seed=1)
    generate_mbo(large, records=1_500_000, instruments=3, seed=1)
    assert _peak_kib("replay", str(large)) - _peak_kib("replay", str(small)) < 30_000


def test_cli_replay_out_still_writes_the_sinks(capsys, tmp_path):
    import numpy as np

    from matchcore.__main__ import main

    day = itch.generate(tmp_path / "d.itch", messages=20_000, symbols=3, seed=2)
    assert main(["replay", str(day), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    r = itch.replay_file(day)
    assert np.array_equal(np.load(tmp_path / "o" / "tob.npy"), r.tob())
    assert np.array_equal(np.load(tmp_path / "o" / "trades.npy"), r.trades())
