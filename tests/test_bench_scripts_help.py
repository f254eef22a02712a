"""The benchmark scripts' ``--help``: what the script measures, said whole."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench_checks import load_script

SCRIPTS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "benchmarks").glob(
    "bench_*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_help_describes_with_the_whole_first_paragraph(capsys, script):
    # the description was the docstring's first line: "... with Prometheus metrics off and on,
    # the compiled" ended mid-sentence in five of the scripts' --help
    mod = load_script(script)
    first = " ".join(ast.get_docstring(ast.parse(Path(mod.__file__).read_text()))
                     .split("\n\n")[0].split())
    with pytest.raises(SystemExit) as exc:
        mod.main(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    assert first in " ".join(out.split())
