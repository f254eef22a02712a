"""Types of the compiled ITCH 5.0 decoder (``itch/_decode.pyx``); :func:`matchcore.itch.decode`
is the public face."""
from typing import Any

import numpy as np
from _typeshed import ReadableBuffer
from numpy.typing import NDArray

def struct_sizes() -> dict[str, int]: ...
def decode_chunk(
    buf: ReadableBuffer,
    infer_lengths: bool = False,
    base: int = 0,
    resync: bool = False,
    final: bool = True,
) -> tuple[dict[str, NDArray[np.void]], dict[str, Any], int]: ...
