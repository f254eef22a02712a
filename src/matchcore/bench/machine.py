"""What a benchmark ran on: CPU, cores, Python, compiler flags, commit, load."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> dict:
    """``{"commit": sha, "dirty": bool}`` of the checkout the package was imported from, if any
    (``None`` for both when this file is not tracked by a git repository: an installed copy;
    ``dirty`` ``None``, unknown, when ``git status`` itself fails)."""
    here = Path(__file__).resolve()
    none = {"commit": None, "dirty": None}
    try:
        # A copy installed into a virtualenv that sits inside another project's repository
        # reported that project's commit: the file itself must be tracked where it is.
        tracked = subprocess.run(["git", "-C", str(here.parent), "ls-files", "--error-unmatch",
                                  "--", here.name], capture_output=True, text=True, timeout=5)
        if tracked.returncode != 0:
            return none
        root = subprocess.run(["git", "-C", str(here.parent), "rev-parse", "--show-toplevel"],
                              capture_output=True, text=True, timeout=5).stdout.strip()
        sha = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if not root or sha.returncode != 0:
            return none
        # --no-optional-locks: status refreshed the index and wrote it back under its lock, in
        # the user's checkout (their git command at the same moment failed on index.lock)
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(root), "status",
                                "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        # a status that failed (a damaged index) printed nothing: unknown, not clean
        known = dirty.returncode == 0
        return {"commit": sha.stdout.strip(),
                "dirty": bool(dirty.stdout.strip()) if known else None}
    except (OSError, subprocess.SubprocessError):
        return none


def machine_info() -> dict:
    """Everything about the machine a result depends on, as plain JSON-able values.

    >>> sorted(machine_info())[:3]
    ['build_flags', 'compiler', 'cores_logical']
    """
    import numpy as np

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    try:
        load = list(os.getloadavg())
    except OSError:  # pragma: no cover
        load = None
    try:
        import numba  # noqa: F401  (version only; the generators import it anyway)
        numba_version = numba.__version__
    except ImportError:  # pragma: no cover
        numba_version = None
    import matchcore

    return {
        "cpu": cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": usable,
        "load_average": load,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "numba": numba_version,
        "matchcore": matchcore.__version__,
        "compiler": sysconfig.get_config_var("CC"),
        "build_flags": {
            "CFLAGS": sysconfig.get_config_var("CFLAGS"),
            "OPT": sysconfig.get_config_var("OPT"),
            # setup.py adds these to every extension; MATCHCORE_NATIVE=1 at build time adds
            # -march=native (it cannot be read back from the built module)
            "extension_extra": "-O3 -fno-strict-aliasing",
            "MATCHCORE_NATIVE_env": os.environ.get("MATCHCORE_NATIVE"),
        },
        "git": git_commit(),
    }
