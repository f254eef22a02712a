"""Types of the compiled multi-symbol :class:`Engine` (``_engine.pyx``)."""
from os import PathLike
from typing import Any, Self, SupportsIndex

import numpy as np
from numpy.typing import NDArray
from typing_extensions import TypedDict, Unpack, disjoint_base

from matchcore._core import COMMAND_DTYPE as COMMAND_DTYPE
from matchcore._core import EVENT_DTYPE as EVENT_DTYPE
from matchcore._core import OrderBook, STP
from matchcore.durability._journal import JournalWriter
from matchcore.durability.recovery import RecoveryReport

# a symbol given by its integer id or by the name it was added with
_Symbol = SupportsIndex | str
_Path = str | PathLike[str]

# the price and size limits of a symbol (add_symbol, set_limits): each one optional
class _Limits(TypedDict, total=False):
    tick: SupportsIndex
    min_price: SupportsIndex
    max_price: SupportsIndex
    ref_price: SupportsIndex
    band: SupportsIndex
    max_qty: SupportsIndex
    max_notional: SupportsIndex

@disjoint_base
class Engine:
    # the journal options (segment_bytes, batch_records, batch_us, buffer_bytes, trades) need
    # journal=DIR
    def __new__(
        cls,
        stp: SupportsIndex = STP.CANCEL_RESTING,
        *,
        record_events: bool = True,
        journal: _Path | None = None,
        fsync: str | None = None,
        segment_bytes: int = ...,
        batch_records: int = ...,
        batch_us: int = ...,
        buffer_bytes: int = ...,
        trades: bool = ...,
    ) -> Self: ...
    # a subclass's __init__ passes Engine's arguments on with super().__init__(...)
    def __init__(
        self,
        stp: SupportsIndex = STP.CANCEL_RESTING,
        *,
        record_events: bool = True,
        journal: _Path | None = None,
        fsync: str | None = None,
        segment_bytes: int = ...,
        batch_records: int = ...,
        batch_us: int = ...,
        buffer_bytes: int = ...,
        trades: bool = ...,
    ) -> None: ...
    @property
    def record_events(self) -> bool: ...
    recovery_report: RecoveryReport | None
    # ---- symbols ----
    def add_symbol(
        self,
        symbol: SupportsIndex,
        name: str | None = None,
        *,
        capacity: SupportsIndex = 1024,
        **limits: Unpack[_Limits],
    ) -> OrderBook: ...
    def set_limits(
        self,
        symbol: _Symbol,
        **limits: Unpack[_Limits],
    ) -> None: ...
    def limits(self, symbol: _Symbol) -> dict[str, int]: ...
    def set_reference_price(self, symbol: _Symbol, price: SupportsIndex) -> None: ...
    def symbol_id(self, symbol: _Symbol) -> int: ...
    @property
    def symbols(self) -> dict[int, str | None]: ...
    def book(self, symbol: _Symbol) -> OrderBook: ...
    # ---- order entry ----
    def submit(
        self,
        symbol: _Symbol,
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
        symbol: _Symbol,
        order_id: SupportsIndex,
        side: SupportsIndex,
        qty: SupportsIndex,
        *,
        owner: SupportsIndex = 0,
        ts_ns: SupportsIndex = 0,
    ) -> int: ...
    def cancel(
        self,
        order_id: SupportsIndex,
        *,
        symbol: _Symbol = 0,
        owner: SupportsIndex = 0,
        ts_ns: SupportsIndex = 0,
    ) -> int: ...
    def modify(
        self,
        order_id: SupportsIndex,
        qty: SupportsIndex,
        price: SupportsIndex | None = None,
        *,
        symbol: _Symbol = 0,
        owner: SupportsIndex = 0,
        ts_ns: SupportsIndex = 0,
    ) -> bool: ...
    def process(
        self, commands: NDArray[np.void], out: NDArray[np.void] | None = None
    ) -> NDArray[np.void]: ...
    def events(self, owner: SupportsIndex | None = None) -> NDArray[np.void]: ...
    # ---- durability ----
    @property
    def journal(self) -> JournalWriter | None: ...
    @property
    def trade_journal(self) -> JournalWriter | None: ...
    @property
    def journal_seq(self) -> int: ...
    @property
    def durable_seq(self) -> int: ...
    def sync(self) -> int: ...
    def close(self) -> None: ...
    def snapshot(self, path: _Path | None = None) -> str: ...
    @classmethod
    def recover(
        cls,
        path: _Path,
        *,
        fsync: str | None = ...,
        snapshot: bool = ...,
        readonly: bool = ...,
        trades: bool | None = ...,
        record_events: bool = ...,
        segment_bytes: int = ...,
        batch_records: int = ...,
        batch_us: int = ...,
        buffer_bytes: int = ...,
    ) -> Self: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: dict[int, Any]) -> Self: ...
    # ---- queries ----
    def get(self, order_id: SupportsIndex) -> tuple[int, int, int, int] | None: ...
    def best_bid(self, symbol: _Symbol) -> tuple[int, int] | None: ...
    def best_ask(self, symbol: _Symbol) -> tuple[int, int] | None: ...
    def depth(
        self, symbol: _Symbol, n: SupportsIndex = 10
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]: ...
    def depth_orders(
        self, symbol: _Symbol, n: SupportsIndex = 10
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]: ...
    def level(
        self, symbol: _Symbol, side: SupportsIndex, price: SupportsIndex
    ) -> list[tuple[int, int]]: ...
    def level_count(self, symbol: _Symbol, side: SupportsIndex) -> int: ...
    def depth_into(
        self, symbol: _Symbol, bids_out: NDArray[np.int64], asks_out: NDArray[np.int64]
    ) -> tuple[int, int]: ...
    def queue_position(self, order_id: SupportsIndex) -> int: ...
    def __len__(self) -> int: ...
    @property
    def stp(self) -> STP: ...
    @property
    def busy(self) -> bool: ...
    def state_hash(self) -> int: ...
    @property
    def handle(self) -> int: ...
    @property
    def address(self) -> int: ...
    @property
    def raw_address(self) -> int: ...
    def check_invariants(self, *, allow_crossed: bool = False) -> None: ...
