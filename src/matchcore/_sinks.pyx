# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Sink records shared by the compiled replay loops (ITCH 5.0 and Databento DBN): the numpy dtypes
mirroring the C records of ``_sinks.pxd`` (checked at import) and the copy of a record buffer
out to numpy. Both loops' ``tob()``, ``trades()`` and ``snapshots()`` return these dtypes, so
every consumer (plots, NATS publishing, Dask merging) reads either feed's sinks the same way.
"""

from libc.string cimport memcpy
cimport numpy as cnp
import numpy as np

from matchcore._core cimport mc_i64_arg, mc_capacity_arg

cnp.import_array()

TOB_DTYPE = np.dtype([("ts", "i8"), ("bid", "i8"), ("bid_qty", "i8"), ("ask", "i8"),
                      ("ask_qty", "i8"), ("locate", "u2")], align=True)
TRADE_DTYPE = np.dtype([("ts", "i8"), ("ref", "u8"), ("match_number", "u8"), ("price", "i8"),
                        ("shares", "i8"), ("locate", "u2"), ("kind", "S1"), ("side", "S1"),
                        ("flag", "S1")], align=True)
if TOB_DTYPE.itemsize != sizeof(tob_rec) or TRADE_DTYPE.itemsize != sizeof(trade_rec):
    raise ImportError("matchcore._sinks: sink record dtypes do not match the C structs")


# The deepest snapshot record numpy can describe: 16 bytes of ts and locate, then 6 int64
# columns per level, within a C int of bytes.
MAX_SNAPSHOT_DEPTH = (0x7FFFFFFF - 16) // 48


def _snapshot_memory_limit() -> int:
    """Bytes the depth snapshots of one replay may take: a quarter of the machine's physical
    memory. They are held twice at the end (the sink and the array ``snapshots()`` copies out,
    which ``--out`` writes), beside the books and the other sinks; a sink grown past what the
    machine has was granted by the kernel (overcommit) and then killed it when touched."""
    import os

    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):    # no such query here: no limit of ours
        return 0
    # sysconf gives -1 for a value the system does not know: a negative limit refused every
    # depth and dropped every snapshot record
    return pages * size // 4 if pages > 0 and size > 0 else 0


def snapshot_record_bytes(depth: int) -> int:
    """Bytes of one depth snapshot record of ``depth`` levels: ts and locate, then price, qty
    and orders of both sides per level. O(1).

    >>> snapshot_record_bytes(10)
    496
    """
    return 16 + 48 * depth


cdef int sk_replay_options(sk_options* o, object snapshot_every, object snapshot_every_ns,
                           object snapshot_depth, object book_capacity, object until_ns,
                           str unit) except -1:
    # The options of both replayers, checked when one is made: integers as the books take them,
    # each named when refused (C int64 parameters truncated a float), snapshots every ``unit``
    # or every ns but not both, at least one level deep and given only with one of them, and a
    # book capacity a book can have
    # (refused before the feed makes its first book, not then).
    o.every = mc_i64_arg(snapshot_every, "snapshot_every")
    o.every_ns = mc_i64_arg(snapshot_every_ns, "snapshot_every_ns")
    # None: the default, 10 (told apart from a value given, which needs a cadence)
    o.depth = 10 if snapshot_depth is None else mc_i64_arg(snapshot_depth, "snapshot_depth")
    o.capacity = mc_capacity_arg(book_capacity, "book_capacity")
    o.until_ns = -1
    if until_ns is not None:
        # the loops take a negative stop time for none: -5 replayed everything, where every
        # message is later than it
        o.until_ns = mc_i64_arg(until_ns, "until_ns")
        if o.until_ns < 0:
            raise ValueError(f"until_ns must be >= 0 (None: no stop time), got {o.until_ns}")
    if o.every < 0 or o.every_ns < 0:
        raise ValueError("snapshot_every and snapshot_every_ns must be >= 0")
    if o.every and o.every_ns:
        raise ValueError(f"give snapshot_every ({unit}) or snapshot_every_ns (time), not both")
    if o.depth < 1:
        raise ValueError("snapshot_depth must be >= 1")
    if o.depth > MAX_SNAPSHOT_DEPTH:
        # numpy refuses a record beyond 2**31 - 1 bytes, and the scratch buffer of that many
        # levels failed first with a bare MemoryError, or an OverflowError not naming the option
        raise ValueError(f"snapshot_depth must be at most {MAX_SNAPSHOT_DEPTH:,} (a snapshot "
                         f"record of 48 bytes a level must fit in 2**31 - 1 bytes), "
                         f"got {o.depth}")
    o.snap_limit = _snapshot_memory_limit()
    if o.snap_limit and snapshot_record_bytes(o.depth) > o.snap_limit:
        # the first snapshot taken would grow the sink past what the machine can hold
        raise ValueError(f"snapshot_depth={o.depth:,} needs {snapshot_record_bytes(o.depth):,} "
                         f"bytes a snapshot record (16 + 48 a level), more than the "
                         f"{o.snap_limit:,} bytes snapshots may take on this machine (a quarter "
                         f"of its memory: they are held twice, in the sink and in the array "
                         f"snapshots() returns)")
    if snapshot_depth is not None and not o.every and not o.every_ns:
        # the depth of snapshots never taken: accepted, it was ignored
        raise ValueError(f"snapshot_depth={o.depth} needs snapshot_every or snapshot_every_ns: "
                         f"without a cadence no snapshot is taken")
    return 0


cdef bint sk_many_books(dict books, OrderBook ob) except -1:
    # Called when a replay has added ``ob`` to ``books``; True from SK_MANY_BOOKS books on.
    # With few books, every book stays in cache between its messages; with many, hardly any
    # line of a book survives the other books' messages, and two things change:
    # - the replay loop looks further ahead (lookahead_deep in the ITCH loop, lookahead in the
    #   DBN loop), which costs more than it hides while the books fit in cache. Alternating
    #   runs of generated 2M-message ITCH days (about 120 resting orders a book), deep against
    #   the two-message lookahead, CPU time: 0.76x with 8 books, 0.91x with 128, 0.93x with
    #   256, 1.15x with 500, 1.3-1.4x with 5,000; DBN, 1M records, with against without:
    #   0.5-0.7x with 8 instruments, 1.1-1.3x with 500, 1.3-1.6x with 5,000;
    # - the books' id indexes grow lean (mc_book.lean_index: load <= 1/2 rather than 1/16),
    #   so that more books fit in cache: 500 symbols 33 -> 19 MB, 5,000 symbols 187 -> 137 MB;
    #   the lean index alone took 500 symbols from 8.4-9.1 to 10.3-11.2 M msg/s (alternating
    #   runs on a busy machine). With 8 books the roomy index is faster (29.4-30.3
    #   against 25.9-26.0 M msg/s, best of 5, fewer probes), so it stays below the count, and
    #   the books made before it is reached switch when they next grow.
    cdef Py_ssize_t n = len(books)
    if n < SK_MANY_BOOKS:
        return False
    if n == SK_MANY_BOOKS:
        for b in books.values():
            (<OrderBook>b)._b.lean_index = 1
    ob._b.lean_index = 1
    return True


def snapshot_dtype(depth):
    """Record of one depth snapshot: every level column has ``depth`` entries, best first,
    zero-filled beyond the last level. ``depth`` is an integer in 1..``MAX_SNAPSHOT_DEPTH``
    (``TypeError`` / ``ValueError`` otherwise), as ``snapshot_depth`` is. O(1).

    >>> snapshot_dtype(5)["bid_price"].shape
    (5,)
    """
    # numpy wraps a record past 2**31 - 1 bytes round to a negative itemsize (50,000,000
    # levels gave -1,894,967,280) without a word, and a C int parameter took 5.0 as 5
    cdef int64_t d = mc_i64_arg(depth, "depth")
    if not 1 <= d <= MAX_SNAPSHOT_DEPTH:
        raise ValueError(f"depth must be in 1..{MAX_SNAPSHOT_DEPTH:,} (a snapshot record of 16 "
                         f"+ 48 bytes a level must fit in 2**31 - 1 bytes), got {d}")
    depth = d
    return np.dtype([("ts", "i8"), ("locate", "i8"),
                     ("bid_price", "i8", (depth,)), ("bid_qty", "i8", (depth,)),
                     ("bid_orders", "i8", (depth,)), ("ask_price", "i8", (depth,)),
                     ("ask_qty", "i8", (depth,)), ("ask_orders", "i8", (depth,))])


cdef object sk_records(rbuf* b, dtype, bint clear):
    """The records of b as a new numpy array of ``dtype`` (one copy); ``clear`` empties b."""
    cdef cnp.ndarray out = np.empty(b.n, dtype=dtype)
    if b.n:
        memcpy(cnp.PyArray_DATA(out), b.data, b.n * b.item)
    if clear:
        b.n = 0
    return out
