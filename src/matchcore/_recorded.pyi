"""Types of the Recorder's compiled call-and-record step (``_recorded.pyx``)."""
from typing import Any, Callable

def recorded(call: Callable[..., Any], args: tuple, kwargs: dict, buf: bytearray,
             pack: Callable[..., bytes] | None, fields: tuple) -> Any: ...
