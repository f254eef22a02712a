"""Types of the sink record dtypes shared by the ITCH and DBN replays (``_sinks.pyx``)."""
from typing import Final

import numpy as np

TOB_DTYPE: Final[np.dtype[np.void]]
TRADE_DTYPE: Final[np.dtype[np.void]]
MAX_SNAPSHOT_DEPTH: Final[int]

def snapshot_dtype(depth: int) -> np.dtype[np.void]: ...
def snapshot_record_bytes(depth: int) -> int: ...
def _snapshot_memory_limit() -> int: ...
