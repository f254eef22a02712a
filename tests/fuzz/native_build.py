"""A coverage-instrumented (and sanitized) build of the compiled modules, for fuzzing them.

The normal build gives libFuzzer no view into the compiled decoders, so their branches cannot
guide it. This builds a private copy of the package with clang's ``-fsanitize=fuzzer-no-link``
(edge counters and comparison tracing for libFuzzer) plus AddressSanitizer or UBSan, under
``build/fuzz-native-<sanitizer>/`` (never over the normal in-place build). The runner puts that
copy first on ``PYTHONPATH`` and preloads atheris's sanitizer runtime with libFuzzer linked in
(``asan_with_fuzzer.so`` / ``ubsan_with_fuzzer.so``, shipped in the atheris wheel), as atheris
documents for native extensions.

Needs clang (Debian/Ubuntu: ``apt-get install clang``). Rebuilt when a .pyx/.pxd/.h/.py of the
package is newer than the build.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SANITIZERS = {"address": "asan_with_fuzzer.so", "undefined": "ubsan_with_fuzzer.so",
              "none": "asan_with_fuzzer.so"}   # no sanitizer: still libFuzzer from the preload


def clang() -> str | None:
    """Path of a clang able to build with -fsanitize=fuzzer-no-link, or None."""
    for name in ("clang", *(f"clang-{v}" for v in range(20, 13, -1))):
        path = shutil.which(name)
        if path:
            return path
    return None


def build_dir(sanitizer: str) -> Path:
    return ROOT / "build" / f"fuzz-native-{sanitizer}"


def _sources() -> list[Path]:
    src = ROOT / "src" / "matchcore"
    return [p for p in src.rglob("*") if p.suffix in (".pyx", ".pxd", ".h", ".py")]


def _stale(dest: Path) -> bool:
    built = list((dest / "src" / "matchcore").rglob("*.so"))
    if not built:
        return True
    newest_src = max(p.stat().st_mtime for p in _sources())
    return min(p.stat().st_mtime for p in built) < newest_src


def build(sanitizer: str = "address", *, quiet: bool = True) -> Path:
    """Build (if stale) and return the directory to put first on PYTHONPATH."""
    if sanitizer not in SANITIZERS:
        raise ValueError(f"sanitizer must be one of {sorted(SANITIZERS)}")
    cc = clang()
    if cc is None:
        raise RuntimeError("the instrumented build needs clang (apt-get install clang)")
    dest = build_dir(sanitizer)
    if not _stale(dest):
        return dest / "src"
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "src").mkdir(parents=True)
    shutil.copytree(ROOT / "src" / "matchcore", dest / "src" / "matchcore",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__", "*.html"))
    shutil.copy2(ROOT / "setup.py", dest / "setup.py")
    flags = "-fsanitize=fuzzer-no-link" + ("" if sanitizer == "none" else f",{sanitizer}")
    flags += " -g -fno-omit-frame-pointer"
    env = dict(os.environ, CC=cc, LDSHARED=f"{cc} -shared", CFLAGS=flags, LDFLAGS=flags)
    subprocess.run([sys.executable, "setup.py", "build_ext", "--build-lib", "src"], cwd=dest, env=env,
                   check=True, stdout=subprocess.DEVNULL if quiet else None)
    return dest / "src"


def preload(sanitizer: str) -> str:
    """The sanitizer runtime with libFuzzer inside, shipped by atheris, to LD_PRELOAD."""
    import atheris

    path = Path(atheris.path()) / SANITIZERS[sanitizer]
    if not path.exists():
        raise RuntimeError(f"{path} is missing: this atheris install has no sanitizer runtime "
                           "for native extension fuzzing")
    return str(path)


def child_env(sanitizer: str) -> dict:
    """Environment for a fuzzing child process that loads the instrumented build."""
    pkg = build(sanitizer)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(pkg), str(ROOT)] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["LD_PRELOAD"] = preload(sanitizer)
    env["MATCHCORE_FUZZ_NATIVE"] = str(pkg)
    # Python's own allocations are not leaks worth reporting; a failed huge allocation should
    # come back as NULL (MemoryError), which the code under test must handle
    env["ASAN_OPTIONS"] = ("detect_leaks=0:allocator_may_return_null=1:abort_on_error=0:"
                          "quarantine_size_mb=64")
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env
