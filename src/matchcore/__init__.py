"""matchcore: a low-latency limit order book and matching engine with a compiled core.

``import matchcore`` loads only the compiled core; feeds (``matchcore.itch``, ``.lobster``,
``.moldudp``, ``.native``), the benchmark harness and the Numba bridge load on first use.
"""
import importlib
from typing import TYPE_CHECKING

from matchcore._enums import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    CommandKind,
    EventKind,
    OrderRejected,
    Reason,
    Reject,
    Side,
    STP,
    TIF,
)
from matchcore._core import BusyError, OrderBook, ReadOnlyBookError, SnapshotError
from matchcore._engine import Engine
from matchcore._capi import c_api_addresses, c_api_capsule, get_include

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("itch", "lobster", "moldudp", "native", "workloads", "bench", "numba_ext",
                    "reference", "durability")


if TYPE_CHECKING:
    # What __getattr__ loads on first use, spelled out for type checkers (never run): they see
    # the real types, and a misspelt attribute is an error rather than Any.
    from matchcore import bench as bench
    from matchcore import durability as durability
    from matchcore import itch as itch
    from matchcore import lobster as lobster
    from matchcore import moldudp as moldudp
    from matchcore import native as native
    from matchcore import numba_ext as numba_ext
    from matchcore import reference as reference
    from matchcore import workloads as workloads
    from matchcore.reference import ReferenceBook as ReferenceBook
else:
    def __getattr__(name):
        # The reference model pulls in sortedcontainers, the feeds and the harness more; load
        # them only when asked for, so that importing the package stays fast.
        if name == "ReferenceBook":
            from matchcore.reference import ReferenceBook
            return ReferenceBook
        if name in _LAZY_SUBMODULES:
            return importlib.import_module(f"matchcore.{name}")
        raise AttributeError(f"module 'matchcore' has no attribute {name!r}")


__all__ = [
    "BusyError", "COMMAND_DTYPE", "EVENT_DTYPE", "CommandKind", "Engine", "EventKind", "OrderBook",
    "OrderRejected", "ReadOnlyBookError", "Reason", "ReferenceBook", "Reject", "STP", "Side",
    "SnapshotError", "TIF",
    "c_api_addresses", "c_api_capsule", "get_include",
]
