"""Helpers shared by the command-line modules: output files that appear complete or not at all."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path, mode: str = "w", **open_kw):
    """Open ``path`` for writing through a temporary file beside it, renamed over ``path`` only
    when the ``with`` block completes: a command interrupted (Ctrl-C, SIGTERM, a full disk)
    while writing leaves the old file or none, never a half-written one presented as complete.

    A path that exists and is not a plain file (``/dev/stdout``, a FIFO, a symlink) is written
    in place: renaming over it would replace the device or the link itself."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        with open(path, mode, **open_kw) as f:
            yield f
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, mode, **open_kw) as f:
            yield f
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def save_npy(path, array) -> None:
    """``np.save(path, array)`` through :func:`atomic_output`."""
    import numpy as np

    with atomic_output(path, "wb") as f:
        np.save(f, array)


def write_json(path, obj, **dumps_kw) -> None:
    """``obj`` as JSON to ``path`` through :func:`atomic_output`."""
    text = json.dumps(obj, **dumps_kw)
    with atomic_output(path) as f:
        f.write(text)
