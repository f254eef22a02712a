"""Types of the compiled Databento DBN MBO replayer (``feeds/_dbn.pyx``)."""
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, Self

import numpy as np
from _typeshed import ReadableBuffer
from numpy.typing import NDArray
from typing_extensions import disjoint_base

from matchcore._core import OrderBook
from matchcore._sinks import TOB_DTYPE as TOB_DTYPE
from matchcore._sinks import TRADE_DTYPE as TRADE_DTYPE
from matchcore._sinks import snapshot_dtype as snapshot_dtype

@disjoint_base
class DbnReplayer:
    def __new__(
        cls,
        names: Mapping[int, str] | None = None,
        symbols: Iterable[str | int] | None = None,
        *,
        ts_out: bool = False,
        snapshot_every: int = 0,
        snapshot_every_ns: int = 0,
        snapshot_depth: int | None = None,
        until_ns: int | None = None,
        record_tob: bool = True,
        record_trades: bool = True,
        tob_on_last: bool = True,
        partition: tuple[int, int] | None = None,
        max_books: int = 65535,
        book_capacity: int = 64,
    ) -> Self: ...
    # a subclass's __init__ passes DbnReplayer's arguments on with super().__init__(...)
    def __init__(
        self,
        names: Mapping[int, str] | None = None,
        symbols: Iterable[str | int] | None = None,
        *,
        ts_out: bool = False,
        snapshot_every: int = 0,
        snapshot_every_ns: int = 0,
        snapshot_depth: int | None = None,
        until_ns: int | None = None,
        record_tob: bool = True,
        record_trades: bool = True,
        tob_on_last: bool = True,
        partition: tuple[int, int] | None = None,
        max_books: int = 65535,
        book_capacity: int = 64,
    ) -> None: ...
    @property
    def done(self) -> bool: ...
    # the parsed metadata header (databento_dbn.Metadata), when read from a file
    metadata: Any
    def feed(self, buf: ReadableBuffer) -> int: ...
    def finish(
        self, tail: ReadableBuffer = b"", stream_error: object = None
    ) -> dict[str, Any]: ...
    @property
    def finished(self) -> bool: ...
    @property
    def bytes_consumed(self) -> int: ...
    @property
    def books(self) -> dict[int, OrderBook]: ...
    @property
    def instruments(self) -> dict[int, int]: ...
    @property
    def publishers(self) -> dict[int, int]: ...
    @property
    def symbols(self) -> dict[int, str]: ...
    @property
    def first_names(self) -> dict[int, str]: ...
    def book(self, symbol: str | int, publisher: int | None = None) -> OrderBook: ...
    @property
    def stats(self) -> dict[str, Any]: ...
    def tob(self, clear: bool = False) -> NDArray[np.void]: ...
    def trades(self, clear: bool = False) -> NDArray[np.void]: ...
    def snapshots(self, clear: bool = False) -> NDArray[np.void]: ...
    def __reduce__(self) -> NoReturn: ...
