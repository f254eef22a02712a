"""Types of the compiled LOBSTER replay loop (``_lobster.pyx``); :mod:`matchcore.lobster` is
the public face."""
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from matchcore._core import OrderBook

SEED_BASE: Final[int]
COUNTER_NAMES: Final[tuple[str, ...]]

def seed_id(side: int, price: int) -> int: ...
def replay(
    book: OrderBook,
    kind: NDArray[np.int8],
    ts_ns: NDArray[np.int64],
    oid: NDArray[np.int64],
    size: NDArray[np.int64],
    price: NDArray[np.int64],
    side: NDArray[np.int8],
    ob: NDArray[np.int64] | None,
    levels: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], tuple[NDArray[np.int32], Any] | None]: ...
def transitions(
    ob: NDArray[np.int64],
    kind: NDArray[np.int8],
    size: NDArray[np.int64],
    price: NDArray[np.int64],
    side: NDArray[np.int8],
    levels: int,
) -> NDArray[np.int8]: ...
