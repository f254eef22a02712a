"""Durability for the multi-symbol Engine: command journal, trade capture, snapshots, recovery.

``Engine(journal=DIR, fsync="batch")`` journals every inbound command; ``engine.snapshot()``
writes a snapshot file; ``Engine.recover(DIR)`` rebuilds. The modules, one per concept:

* ``_journal`` (compiled): segment and record layouts, the writer, the scanner, the decoders
* ``journal``: journal directories, damage classification, :func:`read_journal`, ``inspect``
* ``trades``: the trade capture journal as a numpy array (:func:`read_trades`)
* ``snapshot``: engine snapshot files (:func:`write_snapshot`, :func:`load_snapshot`)
* ``recovery``: :func:`recover`

Names load on first use, so ``import matchcore`` does not read any of this.
"""
import importlib
from typing import TYPE_CHECKING

from matchcore.durability.errors import DurabilityError, JournalError, SnapshotFileError

_NAMES = {
    "JournalWriter": "matchcore.durability._journal",
    "TRADE_DTYPE": "matchcore.durability._journal",
    "read_journal": "matchcore.durability.journal",
    "scan_journal": "matchcore.durability.journal",
    "inspect": "matchcore.durability.journal",
    "read_trades": "matchcore.durability.trades",
    "write_snapshot": "matchcore.durability.snapshot",
    "load_snapshot": "matchcore.durability.snapshot",
    "list_snapshots": "matchcore.durability.snapshot",
    "recover": "matchcore.durability.recovery",
    "RecoveryReport": "matchcore.durability.recovery",
}


if TYPE_CHECKING:
    # the names __getattr__ loads on first use, for type checkers (never run)
    from matchcore.durability._journal import TRADE_DTYPE as TRADE_DTYPE
    from matchcore.durability._journal import JournalWriter as JournalWriter
    from matchcore.durability.journal import inspect as inspect
    from matchcore.durability.journal import read_journal as read_journal
    from matchcore.durability.journal import scan_journal as scan_journal
    from matchcore.durability.recovery import RecoveryReport as RecoveryReport
    from matchcore.durability.recovery import recover as recover
    from matchcore.durability.snapshot import list_snapshots as list_snapshots
    from matchcore.durability.snapshot import load_snapshot as load_snapshot
    from matchcore.durability.snapshot import write_snapshot as write_snapshot
    from matchcore.durability.trades import read_trades as read_trades
else:
    def __getattr__(name):
        if name in _NAMES:
            return getattr(importlib.import_module(_NAMES[name]), name)
        raise AttributeError(f"module 'matchcore.durability' has no attribute {name!r}")


__all__ = ["DurabilityError", "JournalError", "SnapshotFileError", *_NAMES]
