"""The source distribution holds what a build from it needs and nothing a build makes; the
installed package carries what a user's own compiled code needs.

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

needs_checkout = pytest.mark.skipif(not (ROOT / "setup.py").exists() or not SRC.is_dir(),
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


@needs_checkout
def test_sdist_manifest_has_every_build_source():
    files = _sdist_files()
    needed = [p for p in _tracked(".pyx", ".pxi", ".pxd", ".h") if p.startswith("src/")]
    assert any(p.endswith("_core.pyx") for p in needed)
    assert any(p.endswith("_core_orders.pxi") for p in needed)
    assert [p for p in needed if p not in files] == []
    for p in ("README.md", "pyproject.toml", "setup.py", "src/matchcore/include/mc_pyint.h",
              "src/matchcore/include/matchcore.h", "examples/c_market_maker.c",
              "tests/conftest.py"):
        assert p in files, p


@needs_checkout
def test_sdist_and_wheel_ship_the_type_stubs_and_py_typed():
    # PEP 561: without py.typed a type checker ignores the package; without the .pyi stubs the
    # compiled modules (OrderBook, Engine, ...) are Any to it
    stubs = [p for p in _tracked(".pyi") if p.startswith("src/")]
    assert "src/matchcore/_core.pyi" in stubs and "src/matchcore/_engine.pyi" in stubs
    for pyx in _tracked(".pyx"):
        assert pyx[: -len(".pyx")] + ".pyi" in stubs, f"{pyx} has no .pyi stub"
    files = _sdist_files()
    assert [p for p in stubs + ["src/matchcore/py.typed"] if p not in files] == []
    # the wheel: package data of pyproject.toml, patterns relative to src/matchcore
    import tomllib
    from fnmatch import fnmatch

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["matchcore"]
    for p in stubs + ["src/matchcore/py.typed"]:
        rel = p[len("src/matchcore/"):]
        assert any(fnmatch(rel, pat) and ("/" in rel) == ("/" in pat) for pat in patterns), p


@needs_checkout
def test_sdist_manifest_leaves_out_generated_files():
    files = _sdist_files()
    generated = [f for f in files if f.startswith("src/") and f.endswith((".c", ".so", ".o",
                                                                          ".html", ".pyc"))
                 and not f.startswith("src/matchcore/include/")]
    assert generated == []


@needs_checkout
def test_setup_without_pyx_sources_refuses_to_build(tmp_path):
    # a tree without the .pyx files must not quietly install a package without its core
    (tmp_path / "src" / "matchcore").mkdir(parents=True)
    (tmp_path / "setup.py").write_text((ROOT / "setup.py").read_text())
    out = subprocess.run([sys.executable, "setup.py", "--name"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "no .pyx sources" in out.stderr


USER_PYX = """
# cython: language_level=3
from matchcore._core cimport mc_book

def resting(addr):
    cdef mc_book* b = <mc_book*><size_t>addr
    return b.n_orders
"""

USER_SETUP = """
from setuptools import setup, Extension
from Cython.Build import cythonize
import matchcore._capi
setup(ext_modules=cythonize([Extension("userbook", ["userbook.pyx"],
                                       include_dirs=[matchcore._capi.get_include()])],
                            quiet=True))
"""


def test_user_cython_module_cimports_the_installed_core(tmp_path):
    # README (Handles): code compiled against the core's structs cimports matchcore._core with
    # include_dirs=[matchcore._capi.get_include()]; the installed .pxd and headers suffice
    pytest.importorskip("Cython", reason="Cython not installed: no user module to compile")
    import shutil

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on PATH")
    (tmp_path / "userbook.pyx").write_text(USER_PYX)
    (tmp_path / "setup.py").write_text(USER_SETUP)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__import__("matchcore").__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    code = ("import matchcore as mc, userbook\n"
            "b = mc.OrderBook(); b.submit(1, 0, 100, 5); b.submit(2, 1, 101, 5)\n"
            "print(userbook.resting(b.raw_address))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["2"]
