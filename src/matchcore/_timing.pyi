"""Types of the timed loops (``_timing.pyx``): per-message latency measured in compiled code."""
import numpy as np
from numpy.typing import ArrayLike, NDArray

from matchcore._core import OrderBook
from matchcore._engine import Engine

def resolve_clock(clock: str = "auto") -> str: ...
def tsc_ticks_per_ns(duration_s: float = 0.05) -> float: ...
def clock_overhead_samples(n: int = 100000, clock: str = "auto") -> NDArray[np.int64]: ...
def clock_overhead_ns(n: int = 100000, clock: str = "auto") -> float: ...
def process_timed(
    book: OrderBook, commands: NDArray[np.void], clock: str = "auto"
) -> NDArray[np.int64]: ...
def process_open_loop(
    book: OrderBook,
    commands: NDArray[np.void],
    rate: float = 0.0,
    arrivals_ns: ArrayLike | None = None,
    clock: str = "auto",
) -> tuple[NDArray[np.int64], NDArray[np.int64]]: ...
def process_batch_ns(book: OrderBook, commands: NDArray[np.void], emit: bool = True) -> int: ...
def reserve_events(book: OrderBook, n_events: int) -> None: ...
def process_histogram(
    target: OrderBook | Engine,
    commands: NDArray[np.void],
    bounds_ns: ArrayLike,
    counts: NDArray[np.int64],
    clock: str = "auto",
    every: int = 1,
    skip: int = 0,
) -> NDArray[np.void]: ...
