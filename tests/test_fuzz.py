"""Coverage-guided fuzzing of the readers of untrusted bytes (targets in tests/fuzz/targets.py).

Default run: each target's seed corpus passes its contract in-process, then atheris fuzzes each
target for a few seconds in a subprocess (the pytest process is never taken over). Opt-in long
runs: MATCHCORE_SOAK=1 (or ``-m soak``) fuzzes each target for MATCHCORE_FUZZ_SECONDS (default
300) seconds, on the clang-instrumented build with ASan when MATCHCORE_FUZZ_NATIVE=1 (or
=undefined / =none for another sanitizer). A failing input is left in the artifacts directory
and named in the failure.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))          # tests.fuzz importable whatever pytest's rootdir mode

from tests.fuzz import targets as fuzz_targets  # noqa: E402
from tests.fuzz.__main__ import _STAT  # noqa: E402

HAVE_ATHERIS = importlib.util.find_spec("atheris") is not None
needs_atheris = pytest.mark.skipif(
    not HAVE_ATHERIS, reason="atheris not installed (pip install -e '.[fuzz]'): fuzz runs skipped")
SOAK = os.environ.get("MATCHCORE_SOAK") == "1"
SHORT_S = 2
SOAK_S = int(os.environ.get("MATCHCORE_FUZZ_SECONDS", "300"))
_NATIVE = os.environ.get("MATCHCORE_FUZZ_NATIVE", "")
SOAK_NATIVE = {"1": "address"}.get(_NATIVE, _NATIVE) or None
NAMES = sorted(fuzz_targets.TARGETS)


def _fuzz(name: str, seconds: int, tmp_path: Path, native: str | None = None) -> dict:
    art = tmp_path / "artifacts"
    cmd = [sys.executable, "-m", "tests.fuzz", name, "--seconds", str(seconds),
           "--artifacts", str(art), "--corpus", str(tmp_path / "corpus"), "--seed", "1"]
    if native:
        cmd += ["--native", native]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace", timeout=seconds * 4 + 120)
    crashes = sorted(art.glob("*")) if art.exists() else []
    return {"rc": proc.returncode, "out": proc.stdout, "crashes": crashes,
            **{k: int(v) for k, v in _STAT.findall(proc.stdout)}}


def _assert_clean(r: dict, name: str) -> None:
    assert r["rc"] == 0 and not r["crashes"], (
        f"fuzz target {name!r} failed (exit {r['rc']}); inputs: {[str(c) for c in r['crashes']]}"
        f"\n{r['out'][-6000:]}")


def test_fuzz_registry_every_target_has_contract_and_small_seeds():
    assert {"itch", "native", "moldudp", "snapshot", "journal", "engine_snapshot"} <= set(NAMES)
    for t in fuzz_targets.TARGETS.values():
        seeds = t.seeds()
        assert t.contract and callable(t.fn) and seeds, t.name
        assert all(isinstance(s, bytes) and 0 < len(s) <= t.max_len for s in seeds), \
            (t.name, [len(s) for s in seeds])


@pytest.mark.parametrize("name", NAMES)
def test_fuzz_seed_corpus_valid_inputs_pass_contract(name):
    t = fuzz_targets.TARGETS[name]
    for seed in t.seeds():
        t.fn(seed)


@needs_atheris
@pytest.mark.parametrize("name", NAMES)
def test_fuzz_short_run_target_no_contract_violation(name, tmp_path):
    r = _fuzz(name, SHORT_S, tmp_path)
    _assert_clean(r, name)
    seeds = len(fuzz_targets.TARGETS[name].seeds())
    assert r.get("number_of_executed_units", 0) > seeds, \
        f"{name}: libFuzzer ran {r.get('number_of_executed_units')} inputs for {seeds} seeds"


@needs_atheris
def test_fuzz_runner_failing_target_exits_nonzero_and_keeps_input(tmp_path):
    # The plumbing itself: a target that raises on one input must fail the run and leave that
    # input behind, otherwise a clean short run above would prove nothing.
    script = textwrap.dedent(f"""
        import sys
        sys.argv = ["x", "planted", "--_child", "--runs", "200",
                    "--artifacts", {str(tmp_path / 'art')!r}, "--corpus", {str(tmp_path / 'c')!r}]
        from tests.fuzz import targets
        from tests.fuzz.__main__ import main
        def planted(data):
            if data.startswith(b"BUG"):
                raise ValueError("planted defect")
        targets.register("planted", planted, lambda: [b"ok", b"BUG!"], contract="test only")
        main()
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "planted defect" in proc.stdout
    crashes = list((tmp_path / "art").glob("crash-*"))
    assert len(crashes) == 1 and crashes[0].read_bytes() == b"BUG!"


@needs_atheris
@pytest.mark.soak
@pytest.mark.parametrize("name", NAMES)
def test_fuzz_soak_run_target_no_contract_violation(name, tmp_path, request):
    if not SOAK and "soak" not in (request.config.option.markexpr or ""):
        pytest.skip("long fuzz runs are opt-in: MATCHCORE_SOAK=1 or -m soak")
    if SOAK_NATIVE:
        from tests.fuzz import native_build

        if native_build.clang() is None:
            pytest.skip("MATCHCORE_FUZZ_NATIVE needs clang for the instrumented build")
    r = _fuzz(name, SOAK_S, tmp_path, SOAK_NATIVE)
    _assert_clean(r, name)
    print(f"{name}: {r.get('number_of_executed_units', 0):,} inputs in {SOAK_S} s, "
          f"{r.get('average_exec_per_sec', 0):,}/s, {r.get('new_units_added', 0)} new units")
