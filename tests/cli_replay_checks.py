"""Helpers shared by the ``matchcore replay`` / ``book`` test files: the shared data files, the
generated day, running the dispatcher in-process, the ``--dump-book`` check, and ITCH bytes with
stock names set or a stock directory message made."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import matchcore.itch as itch
from matchcore.__main__ import main

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
AAPL = DATA / "itch" / "aapl-20191230-0935.itch50"
RITCH = DATA / "itch" / "ritch-ex20101224-zero-prefix.itch50"
HEAD = DATA / "itch" / "nasdaq-head-4096B-truncated.itch50"
LOBSTER = DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"


def assert_dump_is_book(csv_path, book, locate):
    """The --dump-book CSV holds one locate's rows, one per level of that book."""
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    bids, asks = book.depth_orders(1 << 20)
    assert {row["locate"] for row in rows} == {str(locate)} and len(rows) == len(bids) + len(asks)

def shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared market data not found at {path} (expected ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    path = tmp_path_factory.mktemp("itch") / "day.itch"
    itch.generate(path, messages=30_000, symbols=6, seed=31)
    return path


def copies(path: Path, n: int) -> list[str]:
    """``path`` and ``n - 1`` copies of it beside it (made once): ``n`` distinct files of one
    content, for a replay of several files (one file named twice is refused)."""
    out = [str(path)]
    for k in range(2, n + 1):
        other = path.with_name(f"{path.stem}-copy{k}{path.suffix}")
        if not other.exists():
            other.write_bytes(path.read_bytes())
        out.append(str(other))
    return out


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def with_names(data: bytes, names: dict) -> bytes:
    """``data`` with the stock field of every message of each locate of ``names`` set to its
    name there."""
    from matchcore.itch.layouts import LAYOUTS

    at = {t.encode(): next((f.offset for f in lay.fields if f.name == "stock"), None)
          for t, lay in LAYOUTS.items()}
    out = bytearray(data)
    pos = 0
    while pos < len(out):
        m = pos + 2
        off = at.get(bytes(out[m:m + 1]))
        loc = int.from_bytes(out[m + 1:m + 3], "big")
        if off is not None and loc in names:
            out[m + off:m + off + 8] = names[loc].ljust(8).encode()
        pos = m + int.from_bytes(out[pos:m], "big")
    return bytes(out)


def spaced_name_day(tmp_path):
    """A generated day (3 symbols) whose locate 2 is named " AAPL" beside locate 1's AAPL: two
    books of one name once surrounding spaces are stripped. Its path."""
    import matchcore.itch as itch

    path = tmp_path / "space.itch"
    path.write_bytes(with_names(itch.generate(None, messages=10_000, symbols=3, seed=4),
                                {2: " AAPL"}))
    return path


def stock_directory(loc: int, name: str) -> bytes:
    """An ITCH stock directory message ('R') naming locate ``loc`` ``name``, length-prefixed."""
    import struct

    body = (b"R" + struct.pack(">HH", loc, 0) + bytes(6) + name.ljust(8).encode() + b"QN"
            + struct.pack(">I", 100) + b"NC  PNN1N" + struct.pack(">I", 0) + b"N")
    return struct.pack(">H", len(body)) + body


def record_titles(monkeypatch) -> list:
    """Every plot title set from here on, as (text, whether matplotlib parses it as math)."""
    from matplotlib.axes import Axes
    titles = []
    set_title = Axes.set_title

    def record(self, label, *a, **kw):
        text = set_title(self, label, *a, **kw)
        titles.append((label, text.get_parse_math()))
        return text

    monkeypatch.setattr(Axes, "set_title", record)
    return titles
