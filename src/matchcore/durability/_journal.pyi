"""Types of the compiled journal layer (``durability/_journal.pyx``): record layouts, the
writer, the scanner and the decoders."""
from os import PathLike
from typing import Any, Final, NoReturn, Self

import numpy as np
from _typeshed import ReadableBuffer
from numpy.typing import NDArray
from typing_extensions import disjoint_base

VERSION: Final[int]
SEG_HEADER: Final[int]
SEG_LIMIT: Final[int]
SEG_POLICY: Final[int]
SEG_TRADES: Final[int]
SEG_TRADES_ON: Final[int]
REC_HEADER: Final[int]
MAX_RECORD: Final[int]
MAX_NAME: Final[int]
MAX_DIR_BYTES: Final[int]
KIND_COMMANDS: Final[int]
KIND_TRADES: Final[int]
REC_COMMAND: Final[int]
REC_ADD_SYMBOL: Final[int]
REC_SET_LIMITS: Final[int]
REC_SET_REF_PRICE: Final[int]
REC_TRADE: Final[int]
POLICIES: Final[dict[str, int]]
RECORD_TYPES: Final[dict[int, str]]
DAMAGE: Final[dict[int, str]]
LIMIT_NAMES: Final[tuple[str, ...]]
SEGMENT_SUFFIX: Final[dict[int, str]]
SEGMENT_PREFIX: Final[dict[int, str]]
COMMAND_DTYPE: Final[np.dtype[np.void]]
RECORD_INDEX_DTYPE: Final[np.dtype[np.void]]
TRADE_RECORD_DTYPE: Final[np.dtype[np.void]]
TRADE_DTYPE: Final[np.dtype[np.void]]

def crc32c(data: ReadableBuffer, start: int = 0) -> int: ...
def crc32c_implementation() -> str: ...
def check_dir_length(path: str | PathLike[str]) -> None: ...
def check_buffer_bytes(buffer_bytes: int, writers: int = 1) -> None: ...

@disjoint_base
class JournalWriter:
    def __new__(
        cls,
        path: str | PathLike[str],
        kind: int,
        stp: int,
        fsync: str = "batch",
        *,
        segment_bytes: int = ...,
        batch_records: int = 4096,
        batch_us: int = 2000,
        buffer_bytes: int = ...,
        next_seq: int = 1,
        append_size: int = -1,
        lock_fd: int = -1,
        last_crc: int = -1,
        base_hash: int | None = None,
        trades: bool | None = None,
        replace: bool = False,
    ) -> Self: ...
    @property
    def path(self) -> str: ...
    def check(self) -> None: ...
    def commit(self) -> None: ...
    def sync(self) -> int: ...
    def close(self) -> None: ...
    @property
    def last_crc(self) -> int | None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def failed(self) -> bool: ...
    @property
    def os_errno(self) -> int | None: ...
    @property
    def next_seq(self) -> int: ...
    @property
    def written_seq(self) -> int: ...
    @property
    def durable_seq(self) -> int: ...
    @property
    def fsyncs(self) -> int: ...
    @property
    def policy(self) -> str: ...
    @property
    def segments_created(self) -> int: ...
    @property
    def segment_bytes(self) -> int: ...
    def __reduce__(self) -> NoReturn: ...

def read_segment_header(data: ReadableBuffer) -> tuple[int, int, int, int]: ...
def segment_base_hash(data: ReadableBuffer) -> int | None: ...
def segment_limit(data: ReadableBuffer) -> int | None: ...
def segment_policy(data: ReadableBuffer) -> str | None: ...
def segment_trades(data: ReadableBuffer) -> bool | None: ...
def scan_segment(
    data: ReadableBuffer, kind: int, first_seq: int
) -> tuple[NDArray[np.void], int, int, bool]: ...
def segment_has_valid_record(data: ReadableBuffer, kind: int) -> bool: ...
def extract_commands(
    data: ReadableBuffer, offsets: NDArray[np.int64],
    out: tuple[NDArray[np.void], NDArray[np.uint64], NDArray[np.int64]] | None = None,
) -> tuple[NDArray[np.void], NDArray[np.uint64], NDArray[np.int64]]: ...
def decode_config(data: ReadableBuffer, offset: int) -> tuple[str, int, dict[str, Any]]: ...
def trade_records(data: ReadableBuffer, start: int, end: int) -> NDArray[np.void]: ...
