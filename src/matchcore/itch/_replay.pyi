"""Types of the compiled ITCH 5.0 replayer (``itch/_replay.pyx``)."""
from collections.abc import Callable, Iterable
from typing import Any, Final, NoReturn, Self

import numpy as np
from _typeshed import ReadableBuffer
from numpy.typing import NDArray
from typing_extensions import disjoint_base

from matchcore._core import OrderBook
from matchcore._sinks import TOB_DTYPE as TOB_DTYPE
from matchcore._sinks import TRADE_DTYPE as TRADE_DTYPE
from matchcore._sinks import snapshot_dtype as snapshot_dtype

L2_DTYPE: Final[np.dtype[np.void]]
SYSTEM_EVENT_DTYPE: Final[np.dtype[np.void]]
SYMBOL_STATS_DTYPE: Final[np.dtype[np.void]]

@disjoint_base
class Replayer:
    def __new__(
        cls,
        symbols: Iterable[str | int] | None = None,
        *,
        snapshot_every: int = 0,
        snapshot_every_ns: int = 0,
        snapshot_depth: int | None = None,
        infer_lengths: bool = False,
        callback: Callable[[str, OrderBook, int], object] | None = None,
        callback_symbols: Iterable[str | int] | None = None,
        callback_every: int | None = None,
        callback_on_tob: bool = False,
        until_ns: int | None = None,
        record_tob: bool = True,
        record_trades: bool = True,
        book_capacity: int = 64,
        record_l2: bool = False,
        partition: tuple[int, int] | None = None,
    ) -> Self: ...
    # a subclass's __init__ passes Replayer's arguments on with super().__init__(...)
    def __init__(
        self,
        symbols: Iterable[str | int] | None = None,
        *,
        snapshot_every: int = 0,
        snapshot_every_ns: int = 0,
        snapshot_depth: int | None = None,
        infer_lengths: bool = False,
        callback: Callable[[str, OrderBook, int], object] | None = None,
        callback_symbols: Iterable[str | int] | None = None,
        callback_every: int | None = None,
        callback_on_tob: bool = False,
        until_ns: int | None = None,
        record_tob: bool = True,
        record_trades: bool = True,
        book_capacity: int = 64,
        record_l2: bool = False,
        partition: tuple[int, int] | None = None,
    ) -> None: ...
    @property
    def done(self) -> bool: ...
    def feed(self, buf: ReadableBuffer) -> int: ...
    def finish(
        self, tail: ReadableBuffer = b"", stream_error: object = None
    ) -> dict[str, Any]: ...
    @property
    def finished(self) -> bool: ...
    @property
    def bytes_consumed(self) -> int: ...
    @property
    def sinks(self) -> dict[str, bool]: ...
    @property
    def first_names(self) -> dict[int, str]: ...
    @property
    def books(self) -> dict[int, OrderBook]: ...
    @property
    def symbols(self) -> dict[int, str]: ...
    def book(self, symbol: str | int) -> OrderBook: ...
    @property
    def stats(self) -> dict[str, Any]: ...
    @property
    def trading_state(self) -> dict[int, tuple[str, str, int]]: ...
    @property
    def system_events(self) -> NDArray[np.void]: ...
    def tob(self, clear: bool = False) -> NDArray[np.void]: ...
    def trades(self, clear: bool = False) -> NDArray[np.void]: ...
    def l2(self, clear: bool = False) -> NDArray[np.void]: ...
    def symbol_stats(self) -> NDArray[np.void]: ...
    def snapshots(self, clear: bool = False) -> NDArray[np.void]: ...
    def __reduce__(self) -> NoReturn: ...
