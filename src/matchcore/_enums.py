"""Enums, event/command dtypes and the rejection exception.

They are defined next to the C structs in the compiled core (one definition, the numpy dtypes
derived from the compiler's own field offsets) and re-exported here for pure-Python modules.
"""
from matchcore._core import (  # noqa: F401
    COMMAND_DTYPE,
    EVENT_DTYPE,
    STRUCT_SIZES,
    CommandKind,
    EventKind,
    OrderRejected,
    Reason,
    Reject,
    Side,
    STP,
    TIF,
)

__all__ = [
    "COMMAND_DTYPE", "EVENT_DTYPE", "STRUCT_SIZES", "CommandKind", "EventKind", "OrderRejected",
    "Reason", "Reject", "Side", "STP", "TIF",
]
