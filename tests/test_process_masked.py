"""A numpy masked array as a batch of commands: ``np.asarray`` drops the mask, so the masked
commands ran (or were written) with the others, silently. One with a masked entry is refused,
changing nothing; one with nothing masked is taken as its data."""
from __future__ import annotations

import numpy as np
import pytest

import matchcore as mc
from matchcore import native
from matchcore._core import COMMAND_DTYPE
from matchcore._engine import Engine
from matchcore.reference import ReferenceBook

MSG = "got a masked array with masked commands, which would be"


def _commands():
    c = np.zeros(4, COMMAND_DTYPE)
    c["kind"] = int(mc.CommandKind.SUBMIT)
    c["order_id"] = [1, 2, 3, 4]
    c["side"] = [0, 1, 0, 1]
    c["price"] = [100, 101, 99, 102]
    c["qty"] = 5
    return c


def _masked(how):
    m = np.ma.masked_array(_commands())
    if how == "record":
        m[1] = np.ma.masked                    # the whole command
    else:
        m.mask["price"][2] = True              # one field of one command
    return m


class _OneSymbolEngine(Engine):
    # the OrderBook calls on symbol 0, and a state to compare for each kind of book
    def __init__(self):
        super().__init__()
        self.add_symbol(0)

    def submit(self, *args):
        return super().submit(0, *args)


def _engine():
    return _OneSymbolEngine()


def _state(book):
    if isinstance(book, ReferenceBook):
        return [book.get(i) for i in range(1, 5)] + [book.get(99)]
    return book.state_hash()


@pytest.mark.parametrize("how", ["record", "field"])
@pytest.mark.parametrize("make", [mc.OrderBook, ReferenceBook, _engine],
                         ids=["OrderBook", "ReferenceBook", "Engine"])
def test_process_masked_commands_refused_nothing_applied(make, how):
    book = make()
    book.submit(99, 0, 90, 1)
    book.events()
    before = _state(book)
    with pytest.raises(TypeError, match=f"^process\\(\\) {MSG} run as well"):
        book.process(_masked(how))
    assert _state(book) == before and len(book) == 1
    assert len(book.events()) == 0


@pytest.mark.parametrize("make", [mc.OrderBook, ReferenceBook, _engine],
                         ids=["OrderBook", "ReferenceBook", "Engine"])
def test_process_masked_array_with_nothing_masked_runs_its_commands(make):
    a, b = make(), make()
    got = a.process(np.ma.masked_array(_commands()))
    expected = b.process(_commands())
    assert got.tolist() == expected.tolist() and _state(a) == _state(b) and len(a) == 4


def test_process_masked_commands_refused_with_out_buffer():
    book = mc.OrderBook()
    buf = np.zeros(16, mc.EVENT_DTYPE)
    with pytest.raises(TypeError, match=MSG):
        book.process(_masked("record"), out=buf)
    assert len(book) == 0 and buf.tobytes() == bytes(buf.nbytes)


@pytest.mark.parametrize("how", ["record", "field"])
def test_write_commands_masked_commands_refused_no_file(tmp_path, how):
    path = tmp_path / "flow.mccmd"
    with pytest.raises(TypeError, match=f"^write_commands\\(\\) {MSG} written as well"):
        native.write_commands(path, _masked(how))
    assert not path.exists() and list(tmp_path.iterdir()) == []
    assert native.write_commands(path, np.ma.masked_array(_commands())) == 4
    assert native.read_commands(path).tolist() == _commands().tolist()
