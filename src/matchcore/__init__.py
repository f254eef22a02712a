"""matchcore: a low-latency limit order book and matching engine with a compiled core."""
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
from matchcore._core import OrderBook

__version__ = "0.1.0"


def __getattr__(name):
    # The reference model pulls in sortedcontainers; load it only when asked for.
    if name == "ReferenceBook":
        from matchcore.reference import ReferenceBook
        return ReferenceBook
    raise AttributeError(f"module 'matchcore' has no attribute {name!r}")


__all__ = [
    "COMMAND_DTYPE", "EVENT_DTYPE", "CommandKind", "EventKind", "OrderBook", "OrderRejected",
    "Reason", "ReferenceBook", "Reject", "Side", "STP", "TIF",
]
