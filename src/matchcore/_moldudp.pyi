"""Types of the compiled MoldUDP64 framing helpers (``_moldudp.pyx``); :mod:`matchcore.moldudp`
is the public face."""
from typing import Final

import numpy as np
from _typeshed import ReadableBuffer
from numpy.typing import NDArray

FRAMES_OK: Final[int]
FRAMES_TRUNCATED: Final[int]
FRAMES_ZERO_LENGTH: Final[int]

def frame_offsets(buf: ReadableBuffer) -> tuple[NDArray[np.int64], int, int]: ...
def frame_itch(
    buf: ReadableBuffer,
) -> tuple[NDArray[np.int64], NDArray[np.int64], int, int, int]: ...
def block_end(buf: ReadableBuffer, start: int, count: int) -> int: ...
def plan_packets(
    offsets: NDArray[np.int64], max_bytes: int, max_messages: int,
    ends: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]: ...
