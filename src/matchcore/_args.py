"""Checks of the Python modules' arguments that several of them share."""
from __future__ import annotations


def check_callable(value, name: str, takes: str) -> None:
    """Refuse (TypeError) a ``value`` for the hook ``name`` that is neither None nor callable,
    before any work: taken, it raised "'int' object is not callable" part way through (after
    the first chunk, task or gap). ``takes``: its arguments, for the message. O(1)."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable({takes}) or None, got "
                        f"{type(value).__name__} {value!r}")
