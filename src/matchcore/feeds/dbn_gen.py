"""A seeded market-by-order flow written as a DBN file with the ``databento-dbn`` package's own
encoder (metadata header and records), for tests, examples and the DBN replay benchmark.

The flow exercises every action the replay handles: adds around a drifting mid (quotes left on
the wrong side of a move are cancelled, so books do not cross), partial and full cancels, modifies (price changes, size increases and decreases), trade + fill + cancel triples
for executions (as Databento normalises them), occasional clears, and events of several records
of which only the last carries F_LAST.
"""
from __future__ import annotations

import datetime as _dt
import numbers
import random
from pathlib import Path
from types import SimpleNamespace

__all__ = ["generate_mbo", "mbo_record"]

_TICK = 10_000_000          # 0.01 in DBN's 1e-9 units
_T0 = 1_700_000_000_000_000_000
_MAX_INSTRUMENTS = (1 << 32) - 1001     # ids 1001, 1002... are DBN's uint32 instrument ids
_MAX_CLEAR_RATE = 0.03                  # the events no other action takes (see the flow)


def _dbn():
    try:
        import databento_dbn
    except ImportError as e:
        raise ImportError("writing DBN files needs the 'databento-dbn' package: "
                          "pip install 'matchcore[dbn]'") from e
    return databento_dbn


def mbo_record(instrument_id, ts, order_id, price, size, action, side, *, flags=0x80,
               sequence=0, publisher_id=1, ts_out=False) -> bytes:
    """One MBO record's bytes from the package's encoder (``action``/``side`` as one-letter
    strings; price in 1e-9 units; ts in ns). 56 bytes (64 with ``ts_out``)."""
    from matchcore._core import _flag_arg
    ts_out = _flag_arg(ts_out, "ts_out")
    d = _dbn()
    msg = d.MBOMsg(publisher_id, instrument_id, ts, order_id, price, size, d.Action(action),
                   d.Side(side), ts, flags=flags, sequence=sequence, ts_in_delta=0)
    out = bytes(msg)
    if ts_out:
        # The package's record always has room for ts_out; a ts_out stream carries it.
        out = bytearray(out) + ts.to_bytes(8, "little")
        out[0] = 16
        out = bytes(out)
    return out


def _metadata(names: dict[int, str], ts_out: bool, start: int, end: int,
              version: int | None = None) -> bytes:
    d = _dbn()
    day = _dt.date(2023, 11, 14)
    mappings = [SimpleNamespace(raw_symbol=sym, intervals=[SimpleNamespace(
        start_date=day, end_date=day + _dt.timedelta(days=1), symbol=str(iid))])
        for iid, sym in names.items()]
    meta = d.Metadata(dataset="GLBX.MDP3", start=start, end=end, stype_in=d.SType.RAW_SYMBOL,
                      stype_out=d.SType.INSTRUMENT_ID, schema=d.Schema.MBO,
                      symbols=list(names.values()), mappings=mappings, ts_out=ts_out,
                      **({} if version is None else {"version": version}))
    return bytes(meta.encode())


def generate_mbo(path=None, *, records: int = 10_000, instruments: int = 3, seed: int = 1,
                 ts_out: bool = False, compress: bool | None = None, with_names: bool = True,
                 clear_rate: float = 0.0001, version: int | None = None, publishers: int = 1):
    """Write ``records`` seeded MBO records for ``instruments`` instruments (ids 1001, 1002...,
    symbols SYM0, SYM1... in the metadata mappings unless ``with_names`` is false) as a DBN
    stream. ``path`` None returns the bytes; else the file is written (zstd-compressed when
    ``compress`` or when the name ends in .zst, gzip'd when the name ends in .gz and
    ``compress`` is not given, in any case) and its Path returned.
    ``clear_rate`` is the
    share of events that clear an instrument's book (R), at most 0.03; a value outside, a
    negative ``records`` or ``instruments`` below 1 raise ValueError; ``version`` the DBN version of the
    metadata header, 1 to 3 as the replay reads them (default: the package's current one; the
    MBO record is the same in all; another value raises ValueError, a non-integer TypeError);
    ``publishers`` the venues (publisher ids 1, 2...) that each trade every instrument, with
    books and order ids of their own (so the same order id rests on several venues at once).
    O(records).

    >>> from matchcore.feeds.dbn_gen import generate_mbo   # doctest: +SKIP
    >>> len(generate_mbo(None, records=100)) > 100 * 56      # doctest: +SKIP
    True
    """
    # before anything is generated or written; compress=None (by the name) stays valid
    from matchcore._cliutil import refuse_unusable_name
    from matchcore._core import _flag_arg
    if path is not None:
        # "" wrote "." ("Is a directory: '.'") and "out.dbn/" the file out.dbn, as
        # itch.generate and the readers refuse them
        refuse_unusable_name(path, "path: ")
    ts_out = _flag_arg(ts_out, "ts_out")
    with_names = _flag_arg(with_names, "with_names")
    if compress is not None:
        compress = _flag_arg(compress, "compress")
    for name, value, low, high in (("records", records, 0, None),
                                   ("instruments", instruments, 1, _MAX_INSTRUMENTS),
                                   ("publishers", publishers, 1, 0xFFFF)):
        # 0 instruments failed deep in the flow with "Cannot choose from an empty sequence",
        # and a negative record count wrote a file of no records without a word
        if isinstance(value, bool) or not isinstance(value, int) or value < low or \
                (high is not None and value > high):
            span = f">= {low}" if high is None else f"in {low}..{high:,}"
            raise ValueError(f"{name} must be an integer {span}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        # random.Random takes any hashable: 1.5 or "7" gave a flow no integer seed reproduces
        raise TypeError(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        # random.Random seeds with abs(seed): -1 gave the flow of seed 1
        raise ValueError(f"seed must be >= 0, got {seed}")
    if version is not None:
        # 0 wrote a version 1 file without a word; 7 (the package's DBNError) and -1 (an
        # OverflowError) failed only once every record was made
        what = "version must be None or an integer in 1..3 (the DBN versions the replay reads)"
        if isinstance(version, bool) or not isinstance(version, numbers.Integral):
            raise TypeError(f"{what}, got {type(version).__name__} {version!r}")
        if not 1 <= version <= 3:
            raise ValueError(f"{what}, got {version!r}")
    if not 0.0 <= clear_rate <= _MAX_CLEAR_RATE:
        # clears take the events left after the other actions' shares: a larger rate gave
        # 3% of events, not the share asked for
        raise ValueError(f"clear_rate must be in [0, {_MAX_CLEAR_RATE}], got {clear_rate!r}")
    rng = random.Random(int(seed))
    iids = [1001 + i for i in range(instruments)]
    names = {iid: f"SYM{i}" for i, iid in enumerate(iids)} if with_names else {}
    # a book per (publisher, instrument); one publisher draws as a list of instruments does
    keys = [(pub, iid) for pub in range(1, publishers + 1) for iid in iids]
    mid = {(pub, iid): (100 + 20 * i) * 100 * _TICK for pub in range(1, publishers + 1)
           for i, iid in enumerate(iids)}
    live: dict[tuple, dict[int, list]] = {k: {} for k in keys}     # oid -> [side, price, size]
    next_oid = dict.fromkeys(range(1, publishers + 1), 1)          # each venue's own ids
    seq = 0
    ts = _T0
    out = []
    while len(out) < records:
        pub, iid = key = rng.choice(keys)
        ts += rng.randint(1, 50_000)
        seq += 1
        orders = live[key]
        r = rng.random()
        m = mid[key]
        if rng.random() < 0.01:
            # The mid moves a tick; quotes now on the wrong side of it are pulled, so the book
            # never crosses.
            m = mid[key] = m + rng.choice((-1, 1)) * _TICK
            for oid, (side, price, size) in list(orders.items()):
                if (side == "B" and price >= m) or (side == "A" and price <= m):
                    del orders[oid]
                    out.append(mbo_record(iid, ts, oid, price, size, "C", side, sequence=seq,
                                          publisher_id=pub, ts_out=ts_out))
        if r < 0.42 or not orders:
            side = rng.choice("BA")
            off = int(rng.expovariate(0.35)) * _TICK
            price = m - _TICK - off if side == "B" else m + _TICK + off
            size = rng.randint(1, 50)
            orders[next_oid[pub]] = [side, price, size]
            out.append(mbo_record(iid, ts, next_oid[pub], price, size, "A", side, sequence=seq,
                                  publisher_id=pub, ts_out=ts_out))
            next_oid[pub] += 1
        elif r < 0.66:
            oid = rng.choice(list(orders))
            side, price, size = orders[oid]
            take = size if rng.random() < 0.7 else rng.randint(1, size)
            if take == size:
                del orders[oid]
            else:
                orders[oid][2] -= take
            out.append(mbo_record(iid, ts, oid, price, take, "C", side, sequence=seq,
                                  publisher_id=pub, ts_out=ts_out))
        elif r < 0.84:
            oid = rng.choice(list(orders))
            side, price, size = orders[oid]
            k = rng.random()
            if k < 0.4:
                price = price + rng.choice((-1, 1)) * _TICK
                price = min(price, m - _TICK) if side == "B" else max(price, m + _TICK)
            elif k < 0.7:
                size = size + rng.randint(1, 20)
            elif size > 1:
                size = rng.randint(1, size - 1)
            orders[oid] = [side, price, size]
            out.append(mbo_record(iid, ts, oid, price, size, "M", side, sequence=seq,
                                  publisher_id=pub, ts_out=ts_out))
        elif r < 0.97:
            # An execution as Databento normalises it: T (aggressor), F (resting order), C.
            oid = rng.choice(list(orders))
            side, price, size = orders[oid]
            qty = rng.randint(1, size)
            aggressor = "A" if side == "B" else "B"
            out.append(mbo_record(iid, ts, 0, price, qty, "T", aggressor, flags=0,
                                  sequence=seq, publisher_id=pub, ts_out=ts_out))
            out.append(mbo_record(iid, ts, oid, price, qty, "F", side, flags=0, sequence=seq,
                                  publisher_id=pub, ts_out=ts_out))
            out.append(mbo_record(iid, ts, oid, price, qty, "C", side, sequence=seq,
                                  publisher_id=pub, ts_out=ts_out))
            if qty == size:
                del orders[oid]
            else:
                orders[oid][2] -= qty
        elif r < 0.97 + clear_rate:
            orders.clear()
            out.append(mbo_record(iid, ts, 0, (1 << 63) - 1, 0, "R", "N", sequence=seq,
                                  publisher_id=pub, ts_out=ts_out))
        else:
            out.append(mbo_record(iid, ts, 0, (1 << 63) - 1, 0, "N", "N", sequence=seq,
                                  publisher_id=pub, ts_out=ts_out))
    data = _metadata(names, ts_out, _T0, ts + 1, version) + b"".join(out[:records])
    if path is None:
        return data
    path = Path(path)
    if compress or (compress is None and path.name.lower().endswith(".zst")):
        try:
            import zstandard
        except ImportError as e:
            raise ImportError("writing .dbn.zst needs the 'zstandard' package: "
                              "pip install 'matchcore[dbn]'") from e
        data = zstandard.ZstdCompressor(level=3).compress(data)
    elif compress is None and path.name.lower().endswith(".gz"):
        # a .dbn.gz name held plain bytes, which gunzip and every other tool refuse (as
        # itch.generate writes a .gz name); no time in the header, so the bytes are seeded too
        import gzip

        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
