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


class _Parsed(Exception):
    """Raised in place of parsing: the script's parser has been kept."""


def _parser_of(monkeypatch, script):
    # the parser a script's main() builds, kept when it is asked to parse
    import argparse

    mod = load_script(script)
    kept = []

    def keep(self, *args, **kwargs):
        kept.append(self)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", keep)
    with pytest.raises(_Parsed):
        mod.main([])
    return kept[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_help_says_what_each_option_is_and_its_default(monkeypatch, script):
    # "--seed SEED", "--repeat REPEAT", "--workers WORKERS" ... were listed with no word on
    # what they are or what is used when they are not given: the defaults were only in the
    # scripts' source
    import argparse

    parser = _parser_of(monkeypatch, script)
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, (argparse._HelpAction, argparse._StoreTrueAction)):
            assert action.help, action.option_strings
            continue
        option = action.option_strings[0]
        assert action.help, f"{script} {option}: no help"
        d = action.default
        if d is None:
            if action.dest != "json":       # not given: nothing written
                assert "default" in action.help, f"{script} {option}: {action.help!r}"
            continue
        shown = f"{d:,}" if isinstance(d, int) else str(d)
        assert "default" in action.help and shown in action.help, (
            f"{script} {option}: default {d!r} not in {action.help!r}")
