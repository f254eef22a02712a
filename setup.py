"""Build script: compiles every .pyx under src/matchcore into an extension module.

Extensions are discovered, not listed, so a new compiled module needs no edit here.
Set MATCHCORE_NATIVE=1 to add -march=native (faster local builds, not portable).
Set MATCHCORE_ASAN=1 to build the extensions with AddressSanitizer (-fsanitize=address, for
the opt-in memory-safety run of the embedding tests; see README "Embedding"). Such a build needs
libasan preloaded into Python: LD_PRELOAD=$(cc -print-file-name=libasan.so).
"""
import os
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

extensions = []
for pyx in sorted((SRC / "matchcore").rglob("*.pyx")):
    rel = pyx.relative_to(SRC).with_suffix("")
    extensions.append(
        Extension(
            ".".join(rel.parts),
            [str(pyx.relative_to(ROOT))],
            include_dirs=[np.get_include(), str(SRC / "matchcore" / "include")],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
    )

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
