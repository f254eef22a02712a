"""Micro-benchmarks (pytest-benchmark), outside the default test run (testpaths = tests).

    pytest benchmarks                       # time them
    pytest benchmarks --benchmark-disable   # run each once (CI: they must not rot)
"""
from __future__ import annotations

import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parent.parent / "src"
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))
