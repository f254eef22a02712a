"""Every ```python block of the README runs as written: each in a fresh interpreter, in a
directory holding the files the README's commands make before it (``day.itch`` and the other
inputs below), so that an example a reader copies does not fail on a name or file it never
defined. A block without an import continues the block before it and runs after it.

The only edits made to a block: fixed ports (the metrics server's, the MoldUDP64 example's, the
NATS server's) become free ones, so that the run does not depend on what else the machine
listens on. The real LOBSTER sample comes from ``../shared/data``; without it that one block is
skipped, and a block that needs an optional extra is skipped when the extra is missing."""
from __future__ import annotations

import gzip
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LOBSTER = ROOT.parent / "shared" / "data" / "lobster"
LOBSTER_STEM = "AAPL_2012-06-21_34200000_57600000_{}_10.csv"


def _blocks() -> list[tuple[int, str]]:
    """(line of the block's first code line, code) for each ```python block, continuations
    joined to the block they continue."""
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            code = "\n".join(lines[i + 1:j])
            if blocks and not re.search(r"^\s*(import|from)\s", code, re.M):
                code = blocks[-1][1] + "\n" + code
            blocks.append((i + 2, code))
            i = j
        i += 1
    return blocks


BLOCKS = _blocks()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args, cwd):
    subprocess.run([sys.executable, "-m", "matchcore", *args], cwd=cwd, check=True,
                   capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The inputs the README's commands make before its examples use them."""
    d = tmp_path_factory.mktemp("readme")
    _cli("gen-itch", "day.itch", cwd=d)
    with open(d / "day.itch", "rb") as src, gzip.open(d / "day.itch.gz", "wb", 1) as dst:
        shutil.copyfileobj(src, dst)
    for i in range(2):
        _cli("gen-itch", f"day{i}.itch", "--messages", "200000", "--symbols", "4", "--seed",
             str(i), cwd=d)
    try:
        from matchcore.feeds.dbn_gen import generate_mbo
        generate_mbo(str(d / "mbo.dbn.zst"), records=200_000, instruments=4)
    except ImportError:
        pass                        # the block that needs it is skipped below
    for kind in ("message", "orderbook"):
        src = LOBSTER / LOBSTER_STEM.format(kind)
        if src.exists():
            (d / src.name).symlink_to(src)
    return d


def test_readme_has_the_examples_this_file_runs():
    # a README rewritten without code blocks would make the test below pass vacuously
    assert len(BLOCKS) >= 15
    assert all("import" in code for _, code in BLOCKS)


@pytest.mark.parametrize("line,code", BLOCKS, ids=[f"line{ln}" for ln, _ in BLOCKS])
def test_readme_python_block_runs(line, code, workdir):
    if "lobster" in code and not (workdir / LOBSTER_STEM.format("message")).exists():
        pytest.skip(f"the LOBSTER sample is not in {LOBSTER} (../shared/data)")
    if "mbo.dbn.zst" in code and not (workdir / "mbo.dbn.zst").exists():
        pytest.skip("the DBN extra is not installed: pip install 'matchcore[dbn]'")
    code = code.replace("9108", str(_free_port()))
    for port in ("26400", "26401"):
        code = code.replace(port, str(_free_port()))
    server = None
    if "nats://" in code:
        pytest.importorskip("nats", reason="nats-py not installed: pip install 'matchcore[nats]'")
        from matchcore.io.nats import NatsServer, nats_server_path
        try:
            nats_server_path()
        except FileNotFoundError as e:
            pytest.skip(str(e))
        server = NatsServer().start()
        code = code.replace("nats://127.0.0.1:4222", server.url)
    script = workdir / f"readme_line{line}.py"     # a script, as a reader would save it
    script.write_text(code + "\n", encoding="utf-8")
    try:
        p = subprocess.run([sys.executable, script.name], cwd=workdir, capture_output=True,
                           text=True, timeout=600)
    finally:
        if server is not None:
            server.close()
    assert p.returncode == 0, f"README block at line {line} failed:\n{code}\n---\n{p.stderr}"
    if 'scheduler="local"' in code:
        # spawned workers import the script: a line printed more than once ran in them too
        lines = p.stdout.splitlines()
        assert len(lines) == len(set(lines)), f"README block at line {line} ran in the " \
            f"workers as well (its output repeats):\n{p.stdout}"
