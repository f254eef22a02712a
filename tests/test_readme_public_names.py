"""The README is where a user looks for what the package offers: every public name of
``matchcore`` and of its durability, io and DBN packages is named there."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

MODULES = ["matchcore", "matchcore.durability", "matchcore.io", "matchcore.feeds.dbn"]


@pytest.mark.parametrize("module", MODULES)
def test_readme_names_every_public_name_of(module):
    if module == "matchcore.feeds.dbn":
        pytest.importorskip("databento_dbn", reason="the DBN extra: pip install 'matchcore[dbn]'")
    names = importlib.import_module(module).__all__
    text = README.read_text(encoding="utf-8")
    missing = [n for n in names
               if not re.search(r"(?<![\w])" + re.escape(n) + r"(?![\w])", text)]
    assert len(names) > 1
    assert missing == []


@pytest.mark.parametrize("module", ["matchcore.itch", "matchcore.lobster", "matchcore.native",
                                    "matchcore.moldudp", "matchcore.cluster.dask"])
def test_readme_names_every_public_function_and_class_of(module):
    # the readers and packet builders a user calls beside the replays (itch.open_stream,
    # lobster.read_messages, moldudp.build_framed_packet, ...); constants and dtypes aside
    if module == "matchcore.cluster.dask":
        pytest.importorskip("distributed", reason="the Dask extra: pip install 'matchcore[dask]'")
    mod = importlib.import_module(module)
    names = [n for n in mod.__all__ if callable(getattr(mod, n))
             and not isinstance(getattr(mod, n), np.dtype) and not n.isupper()]
    text = README.read_text(encoding="utf-8")
    missing = [n for n in names
               if not re.search(r"(?<![\w])" + re.escape(n) + r"(?![\w])", text)]
    assert len(names) > 3
    assert missing == []


@pytest.mark.parametrize("enum", ["Reason", "EventKind", "CommandKind", "STP", "TIF", "Side"])
def test_readme_names_every_member_of(enum):
    # an event's reason a user meets (a plain cancel's) must be one the manual explains
    import matchcore as mc

    members = [m.name for m in getattr(mc, enum)]
    text = README.read_text(encoding="utf-8")
    missing = [n for n in members
               if not re.search(r"(?<![\w])" + re.escape(n) + r"(?![\w])", text)]
    assert len(members) > 1
    assert missing == []


def test_readme_source_map_names_every_module_of_the_package():
    # the map is where a reader looks for the code of a command or a format: the replay
    # commands' module, the LOBSTER and MoldUDP64 loops were in it nowhere
    text = README.read_text(encoding="utf-8")
    table = text[text.index("### Source map"):]
    table = table[:table.index("\n\n", table.index("| path |"))]
    pkg = Path(__file__).resolve().parents[1] / "src" / "matchcore"
    parts = [p.name + "/" if p.is_dir() else p.name for p in sorted(pkg.iterdir())
             if p.suffix in ("", ".py", ".pyx", ".pxd", ".pxi")
             and p.name not in ("__init__.py", "__pycache__", "py.typed")
             and not p.name.endswith(".egg-info")]
    assert len(parts) > 20
    assert [n for n in parts if n not in table] == []


def test_readme_source_map_names_every_file_of_a_package_it_lists_by_file():
    # a subpackage the map names file by file (cluster/dask.py, include/matchcore.h) had files
    # it named nowhere: the byte-order, clock, CRC-32C, atomics, spin-lock and int-reading
    # headers the compiled modules include, and the Dask workers' log filter
    text = README.read_text(encoding="utf-8")
    table = text[text.index("### Source map"):]
    table = table[:table.index("\n\n", table.index("| path |"))]
    pkg = Path(__file__).resolve().parents[1] / "src" / "matchcore"
    by_file = [d for d in sorted(pkg.iterdir()) if d.is_dir() and d.name != "__pycache__"
               and not re.search(r"`(src/matchcore/)?" + re.escape(d.name) + r"/`", table)]
    assert [d.name for d in by_file] != []
    missing = [f"{d.name}/{f.name}" for d in by_file for f in sorted(d.iterdir())
               if f.suffix in (".py", ".pyx", ".pxd", ".pxi", ".h") and f.name != "__init__.py"
               and not re.search(r"(?<![\w.])" + re.escape(f.name) + r"(?![\w])", table)]
    assert missing == []
