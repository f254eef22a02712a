"""Arguments of the Prometheus side (``serve_metrics``, ``ReplayMetrics``, ``EngineMetrics``)
refused at the call that takes them, naming them, not at the first scrape."""
from __future__ import annotations

import pytest

import matchcore as mc

pytest.importorskip("prometheus_client", reason="needs the metrics extra")
from matchcore.io.metrics import EngineMetrics, ReplayMetrics, serve_metrics  # noqa: E402


@pytest.mark.parametrize("registry", [5, "reg"])
def test_serve_metrics_registry_not_a_registry_refused_at_the_call(registry):
    # taken: the server ran, and every scrape failed with HTTP 500 and a traceback of the
    # server thread on stderr ("'int' object has no attribute 'collect'")
    with pytest.raises(TypeError) as exc:
        serve_metrics(0, registry=registry)
    assert str(exc.value) == (f"registry must be a prometheus_client CollectorRegistry, got "
                              f"{type(registry).__name__} {registry!r}")


@pytest.mark.parametrize("make", [lambda reg: ReplayMetrics(registry=reg),
                                  lambda reg: EngineMetrics(mc.OrderBook(), registry=reg)],
                         ids=["ReplayMetrics", "EngineMetrics"])
@pytest.mark.parametrize("registry", [5, "reg"])
def test_metrics_registry_not_a_registry_refused_naming_it(make, registry):
    # "'int' object has no attribute 'register'" named neither the argument nor what it takes
    with pytest.raises(TypeError) as exc:
        make(registry)
    assert str(exc.value) == (f"registry must be a prometheus_client CollectorRegistry, got "
                              f"{type(registry).__name__} {registry!r}")


@pytest.mark.parametrize("addr", ["", " "])
def test_serve_metrics_empty_address_refused_naming_addr_and_every_interface(addr):
    # refused by the name lookup in its words ("Name or service not known") beside a URL with
    # no host, http://:0/metrics, where Python's own servers take "" for every interface
    with pytest.raises(ValueError) as exc:
        serve_metrics(0, addr=addr)
    assert str(exc.value) == (f"metrics addr {addr!r} names no host: give a host name or IP "
                              f"address ('0.0.0.0' or '::' to serve on every interface)")


@pytest.mark.parametrize("addr", ["127.0.0.1:9108", "http://127.0.0.1", "127.0.0.1/metrics",
                                  " 127.0.0.1", "127.0.0.1\n", "[127.0.0.1]", "[::1"])
def test_serve_metrics_address_with_port_scheme_or_blanks_refused_naming_addr(addr):
    # each went to the name lookup and came back as an OSError beside a URL built from it,
    # "cannot serve metrics at http://[127.0.0.1:9108]:0/metrics: Name or service not known"
    with pytest.raises(ValueError) as exc:
        serve_metrics(0, addr=addr)
    assert str(exc.value).startswith(f"metrics addr {addr!r} is not a host name or IP address")


def test_serve_metrics_bracketed_ipv6_address_taken_as_the_url_writes_it():
    import socket
    import urllib.request

    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    # "[::1]" is how the server's own url writes the address: it was refused by the lookup
    try:
        srv = serve_metrics(0, addr="[::1]", registry=ReplayMetrics().registry)
    except OSError as e:
        pytest.skip(f"no IPv6 loopback: {e}")
    with srv:
        assert srv.host == "::1"
        assert srv.url == f"http://[::1]:{srv.port}/metrics"
        assert urllib.request.urlopen(srv.url, timeout=5).status == 200
