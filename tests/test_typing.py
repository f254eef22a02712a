"""The type stubs of the compiled modules, checked with the reference tools.

* ``mypy.stubtest`` compares every .pyi with the module it describes, imported: names,
  parameter names, kinds (positional / keyword-only) and defaults, properties, constants.
  Cython constructors (``__cinit__``) are not introspected by stubtest, so the constructors are
  checked here: their text signatures against the stubs, and calls as their stubs say.
* ``mypy --strict`` on a user script built from the README's examples (tests/typing/usage_ok.py)
  gives no error, and the script runs; on a script of misuses (tests/typing/usage_errors.py) it
  gives exactly the errors marked there: the stubs are precise, not ``Any``.
"""
from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy not installed (it is in the test extra)")

import matchcore  # noqa: E402

HERE = Path(__file__).resolve().parent
TYPING = HERE / "typing"
PKG = Path(matchcore.__file__).resolve().parent


def _compiled_modules() -> list[str]:
    """matchcore's compiled modules, from the .pyx sources beside the package (a source
    checkout or an editable install), else from the extension files."""
    found = sorted(PKG.rglob("*.pyx")) or sorted(PKG.rglob("*.so")) + sorted(PKG.rglob("*.pyd"))
    mods = set()
    for f in found:
        rel = f.relative_to(PKG.parent).with_name(f.name.split(".")[0])
        mods.add(".".join(rel.parts))
    return sorted(mods)


@pytest.fixture(scope="module")
def mypy_env(tmp_path_factory):
    """A working directory and a cache shared by this module's mypy runs (the second run reuses
    what the first learnt of numpy and matchcore)."""
    work = tmp_path_factory.mktemp("mypy")
    config = work / "mypy.ini"
    config.write_text(f"[mypy]\ncache_dir = {work / 'cache'}\n")
    return work, config


def _mypy(work: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config),
                           "--no-color-output", "--no-error-summary", *args],
                          cwd=work, capture_output=True, text=True, timeout=600)


def test_stubtest_every_compiled_module_matches_its_stub(mypy_env):
    work, config = mypy_env
    mods = _compiled_modules()
    assert "matchcore._core" in mods and "matchcore.itch._replay" in mods
    out = subprocess.run([sys.executable, "-m", "mypy.stubtest", "--mypy-config-file",
                          str(config), "--allowlist", str(TYPING / "stubtest_allowlist.txt"),
                          *mods], cwd=work, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def _stub_constructor(stub: Path, cls: str) -> ast.arguments:
    tree = ast.parse(stub.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    new = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
    return new.args


@pytest.mark.parametrize("module, cls", [
    ("matchcore._core", "OrderBook"),
    ("matchcore._engine", "Engine"),
    ("matchcore.itch._replay", "Replayer"),
    ("matchcore.feeds._dbn", "DbnReplayer"),
])
def test_constructor_stub_matches_runtime(module, cls):
    # stubtest does not see a cdef class's __cinit__: compare its text signature with the stub,
    # and call it the ways its stub allows and one way it does not (a positional too many)
    import importlib

    target = getattr(importlib.import_module(module), cls)
    args = _stub_constructor(PKG.parent / (module.replace(".", "/") + ".pyi"), cls)
    positional = [a.arg for a in args.args[1:]]
    defaults = dict(zip(positional[len(positional) - len(args.defaults):], args.defaults))
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d})
    literal = {}
    for name, node in defaults.items():
        if isinstance(node, ast.Attribute):         # an enum member: STP.CANCEL_RESTING
            literal[name] = eval(ast.unparse(node), vars(importlib.import_module(module)))
        elif not (isinstance(node, ast.Constant) and node.value is Ellipsis):
            literal[name] = ast.literal_eval(node)
    assert set(defaults) == set(positional) | {a.arg for a in args.kwonlyargs}, \
        "a test constructor needs defaults for every parameter"
    # the runtime's text signature (inspect, help) says what the stub says
    params = list(inspect.signature(target).parameters.values())
    runtime = [(p.name, p.kind.name) for p in params if p.kind is not p.VAR_KEYWORD]
    stub = [(a.arg, "POSITIONAL_OR_KEYWORD") for a in args.args[1:]] + \
        [(a.arg, "KEYWORD_ONLY") for a in args.kwonlyargs]
    # a runtime **kwargs (the Engine's journal options) is spelt out, keyword-only, in the stub
    spelt_out = any(p.kind is p.VAR_KEYWORD for p in params)
    assert (stub[:len(runtime)] if spelt_out else stub) == runtime
    assert all(kind == "KEYWORD_ONLY" for _, kind in stub[len(runtime):])
    shown = {p.name: p.default for p in params}
    assert {n: shown[n] for n in literal if n in shown} == \
        {n: v for n, v in literal.items() if n in shown}
    target(**literal)                                   # every named parameter exists
    values = [literal[p] for p in positional]           # and these may come by position
    target(*values)
    with pytest.raises(TypeError, match="positional"):
        target(*values, values[-1] if values else 0)


def test_mypy_strict_accepts_the_documented_usage(mypy_env):
    work, config = mypy_env
    out = _mypy(work, config, "--strict", str(TYPING / "usage_ok.py"))
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_documented_usage_script_runs(tmp_path):
    # what the stubs promise there is what the runtime does
    out = subprocess.run([sys.executable, str(TYPING / "usage_ok.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.strip().endswith("ok")


def test_mypy_strict_reports_each_misuse(mypy_env):
    work, config = mypy_env
    script = TYPING / "usage_errors.py"
    expected = {}
    for i, line in enumerate(script.read_text().splitlines(), 1):
        m = re.search(r"# E: ([a-z-]+)\s*$", line)
        if m:
            expected[i] = m.group(1)
    assert len(expected) >= 15
    out = _mypy(work, config, "--strict", "--show-error-codes", str(script))
    got: dict[int, set[str]] = {}
    for line in out.stdout.splitlines():
        m = re.match(r".*usage_errors\.py:(\d+): error: .*\[([a-z-]+)\]$", line)
        if m:
            # older mypy releases file "Too many positional arguments" under misc
            code = "call-arg" if m.group(2) == "misc" else m.group(2)
            got.setdefault(int(m.group(1)), set()).add(code)
    assert got == {i: {code} for i, code in expected.items()}, out.stdout[-6000:]
    # the messages name what is wrong (the stubs carry the runtime's names and kinds)
    for fragment in ('Argument 1 to "submit" of "OrderBook" has incompatible type "str"',
                     'Argument 3 to "submit" of "OrderBook" has incompatible type "float"',
                     'Too many positional arguments for "cancel" of "OrderBook"',
                     'Unexpected keyword argument "ts" for "modify" of "OrderBook"',
                     'Value of type "tuple[int, int] | None" is not indexable',
                     'Module has no attribute "Orderbook"',
                     'Unexpected keyword argument "tickk" for "add_symbol" of "Engine"',
                     'Too many positional arguments for "cancel" of "Engine"'):
        assert fragment in out.stdout, fragment


def _stub_enums() -> list[tuple[str, str, dict[str, int]]]:
    """(module, class, {member: value}) of every IntEnum class in the compiled modules' stubs."""
    found = []
    for mod in _compiled_modules():
        stub = PKG.parent / (mod.replace(".", "/") + ".pyi")
        if not stub.exists():
            continue
        for node in ast.parse(stub.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and b.id == "IntEnum" for b in node.bases):
                members = {t.targets[0].id: ast.literal_eval(t.value) for t in node.body
                           if isinstance(t, ast.Assign)}
                found.append((mod, node.name, members))
    return found


def test_stub_intenum_values_match_runtime():
    # stubtest does not compare enum member values, and a type checker takes them from the
    # stub (mc.Reason.SELF_TRADE.value is revealed as the stub's literal)
    import importlib

    enums = _stub_enums()
    assert {name for _, name, _ in enums} >= {"Side", "TIF", "STP", "EventKind", "CommandKind",
                                              "Reason"}
    for mod, name, members in enums:
        runtime = getattr(importlib.import_module(mod), name)
        assert members == {m.name: int(m.value) for m in runtime}, f"{mod}.{name}"
