"""The source distribution holds what a build from it needs and nothing a build makes.

`pip install matchcore-*.tar.gz` compiles the package from the sdist: setup.py finds the
extensions by globbing the .pyx files, so an sdist without them used to install a package with
no compiled module (``import matchcore`` then failed with ``No module named matchcore._core``).
These tests apply MANIFEST.in the way setuptools' sdist does (its default file list, which after
cythonize() names the generated .c of every extension, then the template), without building.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "MANIFEST.in"
SRC = ROOT / "src" / "matchcore"

pytestmark = pytest.mark.skipif(not (ROOT / "setup.py").exists() or not SRC.is_dir(),
                                reason="needs a source checkout (setup.py and src/matchcore)")


def _tracked(*suffixes: str) -> list[str]:
    """Source files of the checkout with these suffixes, relative to the root (build
    directories, virtualenvs and caches left out)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel = Path(dirpath).relative_to(ROOT)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in
                       ("build", "dist", "__pycache__") and not d.endswith(".egg-info")
                       and not (Path(dirpath) / d / "pyvenv.cfg").exists()]
        out += [(rel / f).as_posix() for f in filenames if f.endswith(suffixes)]
    return sorted(out)


def _sdist_files() -> set[str]:
    """The sdist's file list: setuptools' defaults (package modules, README, setup.py, the
    extensions' sources as cythonize() leaves them: .c files), then MANIFEST.in."""
    from setuptools._distutils.filelist import FileList

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        fl = FileList()
        fl.findall()
        pyx = _tracked(".pyx")
        # package data of pyproject.toml (.pxd, include/*.h) is added by setuptools as well
        fl.files = (["README.md", "setup.py", "pyproject.toml"] + _tracked(".py", ".pxd", ".h")
                    + [p[: -len(".pyx")] + ".c" for p in pyx])
        fl.files = [f for f in fl.files if f.startswith("src/") or "/" not in f]
        template = MANIFEST.read_text() if MANIFEST.exists() else ""
        for line in template.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                fl.process_template_line(line)
    finally:
        os.chdir(cwd)
    return set(fl.files)


def test_sdist_manifest_has_every_build_source():
    files = _sdist_files()
    needed = [p for p in _tracked(".pyx", ".pxd", ".h") if p.startswith("src/")]
    assert any(p.endswith("_core.pyx") for p in needed)
    assert [p for p in needed if p not in files] == []
    for p in ("README.md", "pyproject.toml", "setup.py", "src/matchcore/include/mc_pyint.h",
              "src/matchcore/include/matchcore.h", "examples/c_market_maker.c",
              "tests/conftest.py"):
        assert p in files, p


def test_sdist_manifest_leaves_out_generated_files():
    files = _sdist_files()
    generated = [f for f in files if f.startswith("src/") and f.endswith((".c", ".so", ".o",
                                                                          ".html", ".pyc"))
                 and not f.startswith("src/matchcore/include/")]
    assert generated == []


def test_setup_without_pyx_sources_refuses_to_build(tmp_path):
    # a tree without the .pyx files must not quietly install a package without its core
    (tmp_path / "src" / "matchcore").mkdir(parents=True)
    (tmp_path / "setup.py").write_text((ROOT / "setup.py").read_text())
    out = subprocess.run([sys.executable, "setup.py", "--name"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "no .pyx sources" in out.stderr
