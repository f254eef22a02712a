"""Build script: compiles every .pyx under src/matchcore into an extension module.

Extensions are discovered, not listed, so a new compiled module needs no edit here.
Set MATCHCORE_NATIVE=1 to add -march=native (faster local builds, not portable).
Set MATCHCORE_ASAN=1 to build the extensions with AddressSanitizer (-fsanitize=address, for
the opt-in memory-safety run of the embedding tests; see README "Embedding"). Such a build needs
libasan preloaded into Python: LD_PRELOAD=$(cc -print-file-name=libasan.so).
"""
import os
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = Path(__file__).parent
SRC = ROOT / "src"

compile_args = ["-O3", "-fno-strict-aliasing"]
link_args = []
if os.environ.get("MATCHCORE_NATIVE") == "1":
    compile_args.append("-march=native")
if os.environ.get("MATCHCORE_ASAN") == "1":
    compile_args += ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"]
    link_args.append("-fsanitize=address")


def _compiler_is_gcc() -> bool:
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    try:
        out = subprocess.run(cc[:1] + ["--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "clang" not in out.lower() and ("gcc" in out.lower() or "free software" in out.lower())


# The book's per-call methods (submit, modify) inline the whole order path into the method so
# that a Python call pays no second call and register save. gcc's default inline budget stops
# short of that in a module this size; this raises it for the book's module alone (callgrind,
# per call: submit 508 -> 466 instructions, modify 381 -> 355; the book's process() loop 1-4%
# fewer). The engine's module is unchanged by it and keeps the defaults. These are gcc's knobs;
# another compiler (clang on macOS) builds with its own defaults.
MODULE_ARGS = {}
if _compiler_is_gcc():
    MODULE_ARGS["matchcore._core"] = ["--param", "max-inline-insns-single=600",
                                      "--param", "inline-unit-growth=100"]

extensions = []
for pyx in sorted((SRC / "matchcore").rglob("*.pyx")):
    rel = pyx.relative_to(SRC).with_suffix("")
    name = ".".join(rel.parts)
    extensions.append(
        Extension(
            name,
            [str(pyx.relative_to(ROOT))],
            include_dirs=[np.get_include(), str(SRC / "matchcore" / "include")],
            extra_compile_args=compile_args + MODULE_ARGS.get(name, []),
            extra_link_args=link_args,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
    )

if not extensions:
    # an sdist made without the .pyx sources would otherwise install a package with no compiled
    # module, and fail only at "import matchcore"
    raise SystemExit(f"setup.py: no .pyx sources under {SRC / 'matchcore'}: this source tree "
                     f"cannot build matchcore's compiled modules")

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
        annotate=os.environ.get("MATCHCORE_ANNOTATE") == "1",
    ),
)
