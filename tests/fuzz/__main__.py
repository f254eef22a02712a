"""Runner: ``python -m tests.fuzz`` (from the repository root, in the project's venv).

    python -m tests.fuzz --list                       # targets and their contracts
    python -m tests.fuzz itch --seconds 600           # one target for 10 minutes
    python -m tests.fuzz all --seconds 300            # every target, 5 minutes each, summary table
    python -m tests.fuzz snapshot --runs 20000        # a fixed number of executions
    python -m tests.fuzz itch --replay crash-1234...  # re-run saved inputs, no atheris needed
    python -m tests.fuzz itch --seconds 60 -- -use_value_profile=1   # extra libFuzzer flags
    python -m tests.fuzz all --seconds 300 --native   # compiled code instrumented, with ASan

Each target runs in its own process (atheris takes the process over and exits when done). Its
corpus starts from the target's seed builder in a temporary directory removed afterwards;
``--corpus DIR`` keeps the corpus (seeds plus every input that found new coverage) across runs. A failing input is written to ``--artifacts``
(default ``fuzz-artifacts/``) as ``crash-<sha1>``; the process then exits non-zero.

Coverage feedback comes from the instrumented Python layers (``matchcore``'s readers and the
targets' checks, which branch on what the decoder reported). The normal build of the compiled
modules gives libFuzzer no view inside them; ``--native [address|undefined|none]`` runs on a
clang build with edge counters, comparison tracing and a sanitizer (``native_build.py``), so the
compiled decoders' own branches guide the mutations and an out-of-bounds access is caught where
it happens. It needs clang.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)


def _targets():
    from tests.fuzz import targets

    return targets.TARGETS


def write_seeds(target, corpus: Path) -> int:
    """Write the target's seed inputs into ``corpus`` (named by content); returns how many."""
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = target.seeds()
    for s in seeds:
        (corpus / f"seed-{hashlib.sha1(s).hexdigest()[:16]}").write_bytes(s)
    return len(seeds)


def _fuzz_in_process(name: str, args, extra: list[str]) -> None:
    """Set up atheris over one target and hand the process to libFuzzer (does not return)."""
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: pip install -e '.[fuzz]' (wheels for Linux x86-64)")
    # instrument the package's Python readers and the targets' checks before anything imports them
    with atheris.instrument_imports(include=["matchcore", "tests.fuzz.targets"]):
        import matchcore.itch  # noqa: F401
        import matchcore.moldudp  # noqa: F401
        import matchcore.native  # noqa: F401
        import matchcore.durability.journal  # noqa: F401
        import matchcore.durability.recovery  # noqa: F401
        import matchcore.durability.snapshot  # noqa: F401
        import matchcore.durability.trades  # noqa: F401
        from tests.fuzz import targets
    native = os.environ.get("MATCHCORE_FUZZ_NATIVE")
    if native and not matchcore._core.__file__.startswith(native):
        sys.exit(f"--native: loaded {matchcore._core.__file__}, not the build in {native}")
    target = targets.TARGETS[name]
    corpus = Path(args.corpus) if args.corpus else Path(tempfile.mkdtemp(prefix=f"mc-fuzz-{name}-"))
    n = write_seeds(target, corpus)
    artifacts = Path(args.artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [f"tests.fuzz:{name}", str(corpus), f"-artifact_prefix={artifacts}/",
            f"-max_len={args.max_len or target.max_len}", f"-seed={args.seed}",
            f"-timeout={args.timeout}", "-print_final_stats=1", "-detect_leaks=0", "-len_control=0"]
    if args.runs is not None:
        argv.append(f"-runs={args.runs}")
    if args.seconds is not None:
        argv.append(f"-max_total_time={args.seconds}")
    argv += extra
    build = f"instrumented build {native}" if native else "normal build (Python coverage only)"
    print(f"fuzz {name}: {n} seeds in {corpus}; artifacts in {artifacts}/; {build}",
          file=sys.stderr, flush=True)
    atheris.Setup(argv, target.fn)
    atheris.Fuzz()


def _replay(name: str, files: list[str]) -> int:
    target = _targets()[name]
    bad = 0
    for f in files:
        data = Path(f).read_bytes()
        try:
            target.fn(data)
        except BaseException:   # report every kind of failure, then go on with the next file
            bad += 1
            print(f"{f}: FAILED ({len(data)} bytes)", flush=True)
            traceback.print_exc()
        else:
            print(f"{f}: ok ({len(data)} bytes)", flush=True)
    return 1 if bad else 0


def run_target(name: str, args, extra: list[str]) -> dict:
    """Fuzz one target in a child process; returns its exit status and libFuzzer's final stats."""
    cmd = [sys.executable, "-m", "tests.fuzz", name, "--_child", "--seed", str(args.seed),
           "--artifacts", args.artifacts, "--timeout", str(args.timeout)]
    if args.seconds is not None:
        cmd += ["--seconds", str(args.seconds)]
    if args.runs is not None:
        cmd += ["--runs", str(args.runs)]
    if args.max_len:
        cmd += ["--max-len", str(args.max_len)]
    env = dict(os.environ)
    if args.native:
        from tests.fuzz import native_build

        env = native_build.child_env(args.native)
    from tests.fuzz.targets import fast_tmp_parent

    # the child's scratch files (and its corpus unless --corpus keeps one) live in a directory
    # removed here, after libFuzzer has ended the child
    with tempfile.TemporaryDirectory(prefix=f"mc-fuzz-{name}-", dir=fast_tmp_parent()) as work:
        env["MATCHCORE_FUZZ_TMP"] = work
        cmd += ["--corpus", str(Path(args.corpus) / name if args.corpus else Path(work) / "corpus")]
        if extra:
            cmd += ["--"] + extra
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", env=env)
    out = proc.stdout
    stats = {k: int(v) for k, v in _STAT.findall(out)}
    return {"target": name, "returncode": proc.returncode, "output": out,
            "elapsed_s": time.perf_counter() - t0, **stats}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("targets", nargs="*", help="target names, or 'all'")
    p.add_argument("--list", action="store_true", help="list the targets and their contracts")
    p.add_argument("--seconds", type=int, help="time budget per target (libFuzzer -max_total_time)")
    p.add_argument("--runs", type=int, help="executions per target (libFuzzer -runs)")
    p.add_argument("--corpus", help="keep the corpus here (a subdirectory per target for 'all')")
    p.add_argument("--artifacts", default="fuzz-artifacts", help="where failing inputs are written")
    p.add_argument("--seed", type=int, default=1, help="libFuzzer random seed (default 1)")
    p.add_argument("--max-len", type=int, default=0, help="largest input in bytes (per target default)")
    p.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    p.add_argument("--native", nargs="?", const="address", choices=("address", "undefined", "none"),
                   help="fuzz a clang build of the compiled modules with coverage and this "
                        "sanitizer (default address); needs clang")
    p.add_argument("--replay", nargs="+", metavar="FILE", help="run saved inputs through the target")
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.artifacts = str(Path(args.artifacts).resolve())

    if args._child:
        # before anything imports matchcore or the targets: they must load instrumented
        _fuzz_in_process(args.targets[0], args, extra)
        return 0  # not reached: libFuzzer exits the process
    if args.list:
        for t in _targets().values():
            print(f"{t.name:10} max_len {t.max_len}: {t.contract}")
        return 0
    names = list(_targets()) if args.targets == ["all"] else args.targets
    unknown = [n for n in names if n not in _targets()]
    if not names or unknown:
        p.error(f"unknown target(s) {unknown}; choose from {', '.join(_targets())} or 'all'"
                if unknown else "name a target (or 'all'; --list shows them)")
    if args.replay:
        if len(names) != 1:
            p.error("--replay takes exactly one target")
        if args.native and not os.environ.get("MATCHCORE_FUZZ_NATIVE"):
            # re-run in a process that loads the instrumented build under its sanitizer
            from tests.fuzz import native_build

            cmd = [sys.executable, "-m", "tests.fuzz", names[0], "--native", args.native,
                   "--replay", *[str(Path(f).resolve()) for f in args.replay]]
            return subprocess.run(cmd, cwd=ROOT, env=native_build.child_env(args.native)).returncode
        return _replay(names[0], args.replay)
    if args.seconds is None and args.runs is None:
        p.error("give --seconds N or --runs N")
    results = []
    for name in names:
        print(f"== {name} ==", flush=True)
        r = run_target(name, args, extra)
        sys.stdout.write(r["output"][-4000:] if r["returncode"] == 0 else r["output"])
        results.append(r)
    print("\ntarget     result   execs      exec/s   new units  seconds")
    for r in results:
        verdict = "ok" if r["returncode"] == 0 else f"FAIL({r['returncode']})"
        print(f"{r['target']:10} {verdict:8} {r.get('number_of_executed_units', 0):>9,} "
              f"{r.get('average_exec_per_sec', 0):>9,} {r.get('new_units_added', 0):>10,} "
              f"{r['elapsed_s']:>8.1f}")
    return 0 if all(r["returncode"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
