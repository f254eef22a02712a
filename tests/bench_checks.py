"""Helpers shared by the tests of the benchmark scripts in ``benchmarks/``."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def load_script(name):
    """``benchmarks/<name>.py`` as a module (its ``main(argv)`` not run)."""
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    spec = importlib.util.spec_from_file_location(name, root / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def refused_before_work(monkeypatch, capsys, script, first_work, argv):
    """benchmarks/<script>.py's main(argv) with its first piece of work (``first_work``, an
    attribute of the module, dotted for one of its modules') made to fail the test: a usage
    error (exit 2) before it; returns stderr."""
    mod = load_script(script)

    def work(*args, **kwargs):
        raise AssertionError(f"{first_work} ran: the work started")

    owner, _, attr = first_work.rpartition(".")
    monkeypatch.setattr(getattr(mod, owner) if owner else mod, attr, work)
    with pytest.raises(SystemExit) as exc:
        mod.main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err
