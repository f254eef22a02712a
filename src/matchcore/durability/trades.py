"""Trade capture: every fill of a journaled engine, in its own journal (``trades-*.mct``).

Each fill is one record: trade seq, the taker command's seq, the engine's timestamp, symbol,
taker and maker order ids, price (ticks), qty (lots), the taker's side and both owners, plus a
flag on a command's last fill (recovery keeps only complete commands and rewrites the rest from
the command journal). :func:`read_trades` gives them as one numpy array.
"""
from __future__ import annotations

import numpy as np

from matchcore._core import _flag_arg
from matchcore.durability import _journal as _j
from matchcore.durability.journal import KIND_TRADES, scan_journal

TRADE_DTYPE = _j.TRADE_DTYPE


def read_trades(path, *, allow_torn_tail: bool = True) -> np.ndarray:
    """Every valid trade record in directory ``path`` as a :data:`TRADE_DTYPE` array (fields
    ``seq, cmd_seq, ts_ns, journal_ts_ns, symbol, taker_side, last, taker_id, maker_id, price,
    qty, taker_owner, maker_owner``), in seq order. A torn tail is left out (or raises
    :class:`JournalError` with ``allow_torn_tail=False``); corruption, and a ``path`` that is
    not a directory, raise :class:`JournalError`. O(trades).

    >>> import tempfile, matchcore as mc
    >>> d = tempfile.mkdtemp(); eng = mc.Engine(journal=d); _ = eng.add_symbol(1)
    >>> eng.submit(1, 1, 0, 100, 5, owner=7); eng.submit(1, 2, 1, 100, 2, owner=8)
    0
    2
    >>> t = read_trades(d); (int(t["maker_id"][0]), int(t["qty"][0]), int(t["cmd_seq"][0]))
    (1, 2, 3)
    """
    from matchcore.durability.errors import JournalError
    from matchcore.durability.journal import refuse_bytes_dir, require_directory
    allow_torn_tail = _flag_arg(allow_torn_tail, "allow_torn_tail")
    # bytes (a path, or a segment's data) as recovery refuses them, not a TypeError from
    # inside the scan
    refuse_bytes_dir(path)
    # as read_journal and recovery ("no journal directory X", "X is not a directory"): not a
    # FileNotFoundError/NotADirectoryError from inside the scan
    require_directory(path)
    scan = scan_journal(path, KIND_TRADES)
    scan.raise_if_corrupt()
    if scan.tail is not None and not allow_torn_tail:
        seg, off, why = scan.tail
        raise JournalError(f"trade journal torn in {seg} at offset {off}: {why}", seg, off)
    parts = [_j.trade_records(s.data, _j.SEG_HEADER, s.end) for s in scan.segments if s.records]
    recs = np.concatenate(parts) if parts else np.zeros(0, _j.TRADE_RECORD_DTYPE)
    out = np.zeros(len(recs), TRADE_DTYPE)
    for name in TRADE_DTYPE.names:
        if name == "_pad":
            continue
        out[name] = recs[name]
    return out
