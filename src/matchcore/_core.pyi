"""Types of the compiled order book (``_core.pyx``): the enums, the event and command dtypes,
the exceptions and :class:`OrderBook`.

Integer arguments accept anything with ``__index__`` (``int``, numpy integers, ``IntEnum``
members such as :class:`Side`), as the runtime does; a ``float`` or a ``str`` is refused.
"""
from enum import IntEnum
from typing import Any, Final, Self, SupportsIndex

import numpy as np
from _typeshed import ReadableBuffer
from numpy.typing import NDArray
from typing_extensions import disjoint_base

class Side(IntEnum):
    BUY = 0
    SELL = 1

class TIF(IntEnum):
    GTC = 0
    IOC = 1
    FOK = 2

class STP(IntEnum):
    NONE = 0
    CANCEL_RESTING = 1
    CANCEL_TAKER = 2
    CANCEL_BOTH = 3

class EventKind(IntEnum):
    ACCEPTED = 0
    FILL = 1
    CANCELLED = 2
    EXPIRED = 3
    REJECTED = 4
    MODIFIED = 5

class CommandKind(IntEnum):
    SUBMIT = 0
    MARKET = 1
    CANCEL = 2
    MODIFY = 3

class Reason(IntEnum):
    NONE = 0
    INVALID_QTY = 1
    INVALID_PRICE = 2
    INVALID_SIDE = 3
    INVALID_TIF = 4
    DUPLICATE_ORDER_ID = 5
    ORDER_NOT_FOUND = 6
    POST_ONLY_WOULD_CROSS = 7
    INVALID_COMMAND = 8
    UNKNOWN_SYMBOL = 9
    PRICE_NOT_ON_TICK = 10
    PRICE_OUTSIDE_BAND = 11
    QTY_ABOVE_MAX = 12
    NOTIONAL_ABOVE_MAX = 13
    CANCEL_REQUESTED = 20
    SELF_TRADE = 21
    IOC_REMAINDER = 22
    MARKET_REMAINDER = 23
    FOK_NOT_FILLABLE = 24

Reject = Reason

class OrderRejected(ValueError):
    reason: Reason
    order_id: int | None
    def __init__(
        self, reason: SupportsIndex, order_id: int | None = None, message: str | None = None
    ) -> None: ...

class SnapshotError(ValueError):
    code: int
    def __init__(self, code: int, message: str) -> None: ...

class BusyError(RuntimeError): ...
class ReadOnlyBookError(RuntimeError): ...

EVENT_DTYPE: Final[np.dtype[np.void]]
COMMAND_DTYPE: Final[np.dtype[np.void]]
STRUCT_SIZES: Final[dict[str, int]]

@disjoint_base
class OrderBook:
    def __new__(
        cls,
        stp: SupportsIndex = STP.CANCEL_RESTING,
        *,
        record_events: bool = True,
        capacity: SupportsIndex = 1024,
    ) -> Self: ...
    # a subclass's __init__ passes OrderBook's arguments on with super().__init__(...)
    def __init__(
        self,
        stp: SupportsIndex = STP.CANCEL_RESTING,
        *,
        record_events: bool = True,
        capacity: SupportsIndex = 1024,
    ) -> None: ...
    @property
    def stp(self) -> STP: ...
    @property
    def busy(self) -> bool: ...
    @property
    def record_events(self) -> bool: ...
    def __len__(self) -> int: ...
    # ---- order entry ----
    def submit(
        self,
        order_id: SupportsIndex,
        side: SupportsIndex,
        price: SupportsIndex,
        qty: SupportsIndex,
        tif: SupportsIndex = 0,
        *,
        owner: SupportsIndex = 0,
        post_only: bool = False,
        ts_ns: SupportsIndex = 0,
    ) -> int: ...
    def submit_market(
        self,
        order_id: SupportsIndex,
        side: SupportsIndex,
        qty: SupportsIndex,
        *,
        owner: SupportsIndex = 0,
        ts_ns: SupportsIndex = 0,
    ) -> int: ...
    def cancel(
        self, order_id: SupportsIndex, *, owner: SupportsIndex = 0, ts_ns: SupportsIndex = 0
    ) -> int: ...
    def modify(
        self,
        order_id: SupportsIndex,
        qty: SupportsIndex,
        price: SupportsIndex | None = None,
        *,
        owner: SupportsIndex = 0,
        ts_ns: SupportsIndex = 0,
    ) -> bool: ...
    def place(
        self,
        order_id: SupportsIndex,
        side: SupportsIndex,
        price: SupportsIndex,
        qty: SupportsIndex,
        *,
        owner: SupportsIndex = 0,
        ts_ns: SupportsIndex = 0,
    ) -> None: ...
    def reduce(
        self,
        order_id: SupportsIndex,
        qty: SupportsIndex,
        *,
        execution: bool = False,
        ts_ns: SupportsIndex = 0,
    ) -> int: ...
    def process(
        self, commands: NDArray[np.void], out: NDArray[np.void] | None = None
    ) -> NDArray[np.void]: ...
    def events(self, owner: SupportsIndex | None = None) -> NDArray[np.void]: ...
    # ---- queries ----
    def best_bid(self) -> tuple[int, int] | None: ...
    def best_ask(self) -> tuple[int, int] | None: ...
    def depth(self, n: SupportsIndex = 10) -> tuple[NDArray[np.int64], NDArray[np.int64]]: ...
    def depth_orders(
        self, n: SupportsIndex = 10
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]: ...
    def depth_into(
        self, bids_out: NDArray[np.int64], asks_out: NDArray[np.int64]
    ) -> tuple[int, int]: ...
    def get(self, order_id: SupportsIndex) -> tuple[int, int, int] | None: ...
    def queue_position(self, order_id: SupportsIndex) -> int: ...
    def level(self, side: SupportsIndex, price: SupportsIndex) -> list[tuple[int, int]]: ...
    def level_count(self, side: SupportsIndex) -> int: ...
    def state_hash(self) -> int: ...
    def clear(self) -> None: ...
    def check_invariants(self, *, allow_crossed: bool = False) -> None: ...
    # ---- copies, snapshots, pickling ----
    def copy(self) -> Self: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: dict[int, Any]) -> Self: ...
    def snapshot(self) -> bytes: ...
    def restore(self, data: ReadableBuffer) -> None: ...
    @classmethod
    def from_snapshot(cls, data: ReadableBuffer, *, record_events: bool = True) -> Self: ...
    # ---- embedding ----
    @property
    def handle(self) -> int: ...
    @property
    def address(self) -> int: ...
    @property
    def raw_address(self) -> int: ...
