"""EngineMetrics symbol labels: the label of a symbol given by symbols= follows the rule of an
Engine's symbol names."""
from __future__ import annotations

import enum

import numpy as np
import pytest

import matchcore as mc

prom = pytest.importorskip("prometheus_client",
                           reason="prometheus_client not installed: pip install 'matchcore[metrics]'")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from matchcore.io.metrics import EngineMetrics  # noqa: E402


def fills_exported(m) -> dict:
    """{labels: value} of the fills_total samples ``m``'s registry exports."""
    text = prom.generate_latest(m.registry).decode()
    return {frozenset(s.labels.items()): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name == "matchcore_fills_total"}


def test_engine_metrics_symbols_empty_name_labelled_by_id_as_an_engine_symbol_named_empty():
    # symbols={1: ""} labelled symbol 1 "", which Prometheus reads as no symbol label at all,
    # where an engine's symbol named "" is labelled by its id
    ev = np.zeros(2, dtype=mc.EVENT_DTYPE)
    ev["kind"] = mc.EventKind.FILL
    ev["symbol"] = [1, 1]
    ev["qty"] = [3, 4]
    eng = mc.Engine()
    eng.add_symbol(1, "")
    named_empty = EngineMetrics(eng)
    given_empty = EngineMetrics(mc.OrderBook(), symbols={1: ""})
    for m in (named_empty, given_empty):
        m.observe(ev)
        assert m.snapshot()["fills"] == {"1": (2, 7)}
        assert fills_exported(m) == {frozenset({("symbol", "1")}): 2}


@pytest.mark.parametrize("key", [-1, 2**32, np.int64(-5)])
def test_engine_metrics_symbols_id_outside_uint32_refused_nothing_registered(key):
    # an id no event can carry (events' symbol is uint32, Engine.add_symbol's range) was taken:
    # its name never labelled anything, and its fills series was exported at 0 for good
    reg = prom.CollectorRegistry()
    with pytest.raises(ValueError, match=r"symbols: symbol id -?\d+ is outside \[0, 2\*\*32\)"):
        EngineMetrics(mc.OrderBook(), reg, symbols={0: "A", key: "X"})
    assert list(reg.collect()) == []
    EngineMetrics(mc.OrderBook(), reg, symbols={0: "A", 2**32 - 1: "X"})


class _Ticker(str, enum.Enum):
    AAPL = "AAPL"


def test_engine_metrics_symbols_name_of_a_str_subclass_labelled_by_its_text():
    # str() of a (str, Enum) member is "_Ticker.AAPL": the fills were exported under that
    # label, where an Engine's symbol added with the same name is labelled "AAPL"
    ev = np.zeros(1, dtype=mc.EVENT_DTYPE)
    ev["kind"] = mc.EventKind.FILL
    ev["symbol"] = 1
    ev["qty"] = 3
    m = EngineMetrics(mc.OrderBook(), symbols={1: _Ticker.AAPL, 2: np.str_("MSFT")})
    m.observe(ev)
    assert m.snapshot()["fills"] == {"AAPL": (1, 3)}
    assert fills_exported(m) == {frozenset({("symbol", "AAPL")}): 1,
                                 frozenset({("symbol", "MSFT")}): 0}


@pytest.mark.parametrize("name", [b"AAPL", 5, 1.5])
def test_engine_metrics_symbols_name_not_a_str_refused_nothing_registered(name):
    # a name as bytes (an ITCH stock field, say) was exported as the label "b'AAPL'", and any
    # other object as its repr: refused as Engine.add_symbol refuses such a name
    reg = prom.CollectorRegistry()
    with pytest.raises(TypeError, match=r"symbols: the name of symbol 1 must be a str or None"):
        EngineMetrics(mc.OrderBook(), reg, symbols={0: "A", 1: name})
    assert list(reg.collect()) == []


def test_engine_metrics_symbols_name_not_utf8_encodable_refused_scrapes_unharmed():
    # a name holding a lone surrogate (bytes decoded with errors="surrogateescape") was taken,
    # and every scrape of the registry failed from then on (UnicodeEncodeError in
    # generate_latest, HTTP 500), the other collectors' metrics with it: refused as
    # Engine.add_symbol refuses such a name
    reg = prom.CollectorRegistry()
    with pytest.raises(ValueError, match=r"symbols: the name of symbol 1, .* cannot be encoded "
                                         r"as UTF-8"):
        EngineMetrics(mc.OrderBook(), reg, symbols={0: "A", 1: b"B\xff".decode(
            "utf-8", "surrogateescape")})
    assert list(reg.collect()) == []
    EngineMetrics(mc.OrderBook(), reg, symbols={0: "A", 1: "B\u00ff"})
    assert 'symbol="B\u00ff"' in prom.generate_latest(reg).decode()


class _Locate(int, enum.Enum):
    AAPL = 1


def test_engine_metrics_symbols_id_of_an_int_subclass_labelled_as_the_events_id():
    # An unnamed symbol's label is its id: for an id given as an (int, Enum) member that was
    # str(id), "_Locate.AAPL", exported at 0 from the start and never counted, while the fills
    # of symbol 1 appeared under "1" beside it
    ev = np.zeros(1, dtype=mc.EVENT_DTYPE)
    ev["kind"] = mc.EventKind.FILL
    ev["symbol"] = 1
    ev["qty"] = 3
    m = EngineMetrics(mc.OrderBook(), symbols={_Locate.AAPL: None, np.uint16(2): None})
    assert fills_exported(m) == {frozenset({("symbol", "1")}): 0,
                                 frozenset({("symbol", "2")}): 0}
    m.observe(ev)
    assert fills_exported(m) == {frozenset({("symbol", "1")}): 1,
                                 frozenset({("symbol", "2")}): 0}
