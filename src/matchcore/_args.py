"""Checks of the Python modules' arguments that several of them share."""
from __future__ import annotations


def check_callable(value, name: str, takes: str) -> None:
    """Refuse (TypeError) a ``value`` for the hook ``name`` that is neither None nor callable,
    before any work: taken, it raised "'int' object is not callable" part way through (after
    the first chunk, task or gap). ``takes``: its arguments, for the message. O(1)."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable({takes}) or None, got "
                        f"{type(value).__name__} {value!r}")


def refuse_masked(commands, what: str, done: str = "run") -> None:
    """Refuse (TypeError) a numpy masked array with a masked entry as a batch of commands:
    ``np.asarray`` drops the mask, and the masked commands were ``done`` with the others,
    silently. One with nothing masked is taken as its data. ``what`` names the caller. O(1)
    for anything but a masked array."""
    import numpy as np

    m = np.ma.getmask(commands)
    # flatten_mask: a structured array's mask has a flag per field (np.ma.is_masked fails on it)
    if m is not np.ma.nomask and np.ma.flatten_mask(m).any():
        raise TypeError(f"{what} got a masked array with masked commands, which would be "
                        f"{done} as well (the mask is not read): pass the commands as a plain "
                        f"array")
