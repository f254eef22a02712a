"""``matchcore.cli_bench.run_bench``: its keyword arguments are checked before any work, and
the result records them as plain JSON values."""
from __future__ import annotations

import numpy as np
import pytest

from matchcore.bench.report import json_text
from matchcore.cli_bench import run_bench


@pytest.mark.parametrize("seed, words", [("1", "seed must be an integer, got str '1'"),
                                         (True, "seed must be an integer, got bool True"),
                                         (1.5, "seed must be an integer, got float 1.5")])
def test_run_bench_seed_not_an_integer_refused_before_work(monkeypatch, seed, words):
    # "1" was refused as "'<=' not supported between instances of 'int' and 'str'", naming
    # nothing; True ran as seed 1 and was recorded as true; 1.5 was refused by the generator,
    # after the machine and the clock had been measured
    import matchcore.bench.machine as machine

    def machine_info():
        raise AssertionError("machine_info ran: the work started")

    monkeypatch.setattr(machine, "machine_info", machine_info)
    with pytest.raises(TypeError) as exc:
        run_bench(["standard"], messages=2000, quick=True, progress=False, seed=seed)
    assert str(exc.value) == words


def test_run_bench_numpy_seed_recorded_as_int():
    res = run_bench(["standard"], messages=2000, quick=True, progress=False, seed=np.int64(3))
    assert type(res["command"]["seed"]) is int and res["command"]["seed"] == 3
    assert '"seed": 3' in json_text(res)


def test_run_bench_rate_bool_refused_before_work(monkeypatch):
    # rate=True ran the open loop at 1 message/s: 2,000 messages took over half an hour
    import matchcore.bench.machine as machine

    def machine_info():
        raise AssertionError("machine_info ran: the work started")

    monkeypatch.setattr(machine, "machine_info", machine_info)
    with pytest.raises(TypeError) as exc:
        run_bench(["standard"], messages=2000, quick=True, progress=False, rate=True)
    assert str(exc.value) == "rate must be a number of messages/s, got bool True"
