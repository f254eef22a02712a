# Part of matchcore._core (included by _core.pyx, one C unit): the Python face's pieces. Enums,
# dtypes, exceptions, argument readers, the busy and hold state, and the arrays process() returns.

# ==============================================================================================
# Python face
# ==============================================================================================

class Side(IntEnum):
    BUY = MC_BUY
    SELL = MC_SELL


class TIF(IntEnum):
    GTC = MC_GTC
    IOC = MC_IOC
    FOK = MC_FOK


class STP(IntEnum):
    NONE = MC_STP_NONE
    CANCEL_RESTING = MC_STP_CANCEL_RESTING
    CANCEL_TAKER = MC_STP_CANCEL_TAKER
    CANCEL_BOTH = MC_STP_CANCEL_BOTH


class EventKind(IntEnum):
    ACCEPTED = MC_EV_ACCEPTED
    FILL = MC_EV_FILL
    CANCELLED = MC_EV_CANCELLED
    EXPIRED = MC_EV_EXPIRED
    REJECTED = MC_EV_REJECTED
    MODIFIED = MC_EV_MODIFIED


class CommandKind(IntEnum):
    SUBMIT = MC_CMD_SUBMIT
    MARKET = MC_CMD_MARKET
    CANCEL = MC_CMD_CANCEL
    MODIFY = MC_CMD_MODIFY


class Reason(IntEnum):
    """Why an order was rejected (REJECTED) or ended (CANCELLED / EXPIRED)."""
    NONE = MC_R_NONE
    INVALID_QTY = MC_R_INVALID_QTY
    INVALID_PRICE = MC_R_INVALID_PRICE
    INVALID_SIDE = MC_R_INVALID_SIDE
    INVALID_TIF = MC_R_INVALID_TIF
    DUPLICATE_ORDER_ID = MC_R_DUPLICATE_ORDER_ID
    ORDER_NOT_FOUND = MC_R_ORDER_NOT_FOUND
    POST_ONLY_WOULD_CROSS = MC_R_POST_ONLY_WOULD_CROSS
    INVALID_COMMAND = MC_R_INVALID_COMMAND
    UNKNOWN_SYMBOL = MC_R_UNKNOWN_SYMBOL
    PRICE_NOT_ON_TICK = MC_R_PRICE_NOT_ON_TICK
    PRICE_OUTSIDE_BAND = MC_R_PRICE_OUTSIDE_BAND
    QTY_ABOVE_MAX = MC_R_QTY_ABOVE_MAX
    NOTIONAL_ABOVE_MAX = MC_R_NOTIONAL_ABOVE_MAX
    CANCEL_REQUESTED = MC_R_CANCEL_REQUESTED
    SELF_TRADE = MC_R_SELF_TRADE
    IOC_REMAINDER = MC_R_IOC_REMAINDER
    MARKET_REMAINDER = MC_R_MARKET_REMAINDER
    FOK_NOT_FILLABLE = MC_R_FOK_NOT_FILLABLE


Reject = Reason


class OrderRejected(ValueError):
    """An order or request the book refused; nothing in the book changed.

    ``reason`` is a :class:`Reason`, ``order_id`` the id that was refused.
    """

    def __init__(self, reason, order_id=None, message=None):
        self.reason = Reason(reason)
        self.order_id = order_id
        if message is None:
            message = f"order {order_id} rejected: {self.reason.name}"
        super().__init__(message)

    def __reduce__(self):
        # args holds only the message: rebuilt from it, __init__ would read it as the reason.
        # An exception raised in a worker process crosses back pickled.
        return (type(self), (self.reason, self.order_id, self.args[0] if self.args else None),
                self.__dict__ or None)


cdef mc_event _ev0
cdef mc_command _cmd0

def _layout_dtype(fields, size_t itemsize):
    return np.dtype({"names": [f[0] for f in fields], "formats": [f[1] for f in fields],
                     "offsets": [f[2] for f in fields], "itemsize": itemsize})

# Derived from the C structs (offsets taken from the compiler), so the layouts are defined once.
EVENT_DTYPE = _layout_dtype([
    ("ts_ns", "<i8", <size_t>&_ev0.ts_ns - <size_t>&_ev0),
    ("order_id", "<u8", <size_t>&_ev0.order_id - <size_t>&_ev0),
    ("maker_id", "<u8", <size_t>&_ev0.maker_id - <size_t>&_ev0),
    ("price", "<i8", <size_t>&_ev0.price - <size_t>&_ev0),
    ("qty", "<i8", <size_t>&_ev0.qty - <size_t>&_ev0),
    ("owner", "<u8", <size_t>&_ev0.owner - <size_t>&_ev0),
    ("maker_owner", "<u8", <size_t>&_ev0.maker_owner - <size_t>&_ev0),
    ("symbol", "<u4", <size_t>&_ev0.symbol - <size_t>&_ev0),
    ("kind", "u1", <size_t>&_ev0.kind - <size_t>&_ev0),
    ("side", "u1", <size_t>&_ev0.side - <size_t>&_ev0),
    ("reason", "u1", <size_t>&_ev0.reason - <size_t>&_ev0),
    ("_pad", "u1", <size_t>&_ev0._pad - <size_t>&_ev0),
], sizeof(mc_event))

COMMAND_DTYPE = _layout_dtype([
    ("ts_ns", "<i8", <size_t>&_cmd0.ts_ns - <size_t>&_cmd0),
    ("order_id", "<u8", <size_t>&_cmd0.order_id - <size_t>&_cmd0),
    ("price", "<i8", <size_t>&_cmd0.price - <size_t>&_cmd0),
    ("qty", "<i8", <size_t>&_cmd0.qty - <size_t>&_cmd0),
    ("owner", "<u8", <size_t>&_cmd0.owner - <size_t>&_cmd0),
    ("symbol", "<u4", <size_t>&_cmd0.symbol - <size_t>&_cmd0),
    ("kind", "u1", <size_t>&_cmd0.kind - <size_t>&_cmd0),
    ("side", "u1", <size_t>&_cmd0.side - <size_t>&_cmd0),
    ("tif", "u1", <size_t>&_cmd0.tif - <size_t>&_cmd0),
    ("post_only", "u1", <size_t>&_cmd0.post_only - <size_t>&_cmd0),
], sizeof(mc_command))

STRUCT_SIZES = {"event": sizeof(mc_event), "command": sizeof(mc_command),
                "order": sizeof(mc_order), "level": sizeof(mc_level)}


# The general paths of _i64_of/_u64_of/_cint_of (_core.pxd), out of line: any object with
# __index__ (an int beyond two digits, an IntEnum member, a numpy integer); a float or a str
# raises TypeError and an out-of-range value OverflowError, before the book is touched. Each
# names its argument in its errors (the message the reference model gives): one per argument of
# the per-call methods. Only the general path, so the common small int costs nothing more; an
# exact int beyond two digits (a ts_ns since the epoch) is converted without raising and
# re-raising.
cdef extern from "Python.h":
    long long _as_ll_ovf "PyLong_AsLongLongAndOverflow"(object o, int* overflow)
    unsigned long long _as_ull "PyLong_AsUnsignedLongLong"(object o)
    void* _err_occurred "PyErr_Occurred"()
    void _err_clear "PyErr_Clear"()


cdef int64_t _i64_named(object x, str name) except? -1:
    cdef int ovf = 0
    cdef long long v
    if PyLong_CheckExact(x):
        v = _as_ll_ovf(x, &ovf)
        if ovf != 0:
            raise OverflowError(f"{name}={x} is outside the int64 range")
        return v
    if _int_sub_small(x):
        return _int_value(x)
    return _i64_named(mc_int_arg(x, name), name)     # __index__ gives an exact int


cdef uint64_t _u64_named(object x, str name) except? 0xFFFFFFFFFFFFFFFF:
    cdef unsigned long long v
    if PyLong_CheckExact(x):
        v = _as_ull(x)
        if v == <unsigned long long>-1 and _err_occurred() != NULL:
            _err_clear()
            raise OverflowError(f"{name}={x} is outside the uint64 range [0, 2**64)")
        return v
    if _int_sub_small(x) and _int_value(x) >= 0:
        return <uint64_t>_int_value(x)
    return _u64_named(mc_int_arg(x, name), name)


cdef int _cint_named(object x, str name) except? -1:
    cdef int ovf = 0
    cdef long long v
    if not PyLong_CheckExact(x):
        if _int_sub_small(x):
            v = _int_value(x)
        else:
            return _cint_named(mc_int_arg(x, name), name)
    else:
        v = _as_ll_ovf(x, &ovf)
    if ovf != 0 or v < -2147483648 or v > 2147483647:
        raise OverflowError(f"{name}={x} is outside the C int range")
    return <int>v


cdef uint64_t _u64_order_id(object x) except? 0xFFFFFFFFFFFFFFFF:
    return _u64_named(x, "order_id")


cdef uint64_t _u64_owner(object x) except? 0xFFFFFFFFFFFFFFFF:
    return _u64_named(x, "owner")


cdef int64_t _i64_price(object x) except? -1:
    return _i64_named(x, "price")


cdef int64_t _i64_qty(object x) except? -1:
    return _i64_named(x, "qty")


cdef int64_t _i64_ts_ns(object x) except? -1:
    return _i64_named(x, "ts_ns")


cdef int _cint_side(object x) except? -1:
    return _cint_named(x, "side")


cdef int _cint_tif(object x) except? -1:
    return _cint_named(x, "tif")


cdef object mc_int_arg(object x, str name):
    # The integer arguments outside the per-call paths (a mode, a capacity, a limit, a symbol
    # id, a reference price) take the carriers the order methods take (anything with
    # __index__); int() would truncate a float and parse a str or bytes.
    try:
        return PyNumber_Index(x)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(x).__name__} {x!r}") from None


cdef int64_t mc_i64_arg(object x, str name) except? -1:
    return _i64_named(x, name)


# The most orders a book holds: its pools double from 64 slots while they stay within int32
# indices (0x7FFFFFF0), so 64 << 24 = 2**30 is the last size they reach.
_MAX_CAPACITY = 1 << 30


cdef int64_t mc_capacity_arg(object capacity, str name) except? -1:
    # A capacity (orders preallocated): an integer in [0, 2**30]. Above that no book can hold
    # the orders, and the allocation failed with a bare MemoryError after trying.
    cdef int64_t cap = mc_i64_arg(capacity, name)
    if cap < 0 or cap > _MAX_CAPACITY:
        raise ValueError(f"{name} must be in [0, 2**30] (a book holds at most 2**30 orders), "
                         f"got {cap}")
    return cap


cdef int mc_bool_arg(object x, str name) except -1:
    # A flag (post_only, record_events, clear, ...): True or False, a numpy bool, or an integer
    # (anything with __index__) equal to 0 or 1. Anything else, another integer included,
    # raises TypeError naming the flag. A bint parameter took any object through a truth test,
    # so post_only="no" placed a post-only order and None or [] quietly chose for the caller.
    if x is True:
        return 1
    if x is False:
        return 0
    return _bool_arg_slow(x, name)


cdef object _NP_BOOL = np.bool_     # final: no subclass, so a type compare finds it


cdef int _bool_arg_slow(object x, str name) except -1:
    # the common carriers first and without a lookup (a plain int 0/1, as tolist() gives from a
    # post_only column; a numpy bool), then anything with __index__
    cdef object v = x
    if type(x) is not int:
        if type(x) is _NP_BOOL:
            return 1 if x else 0
        try:
            v = PyNumber_Index(x)
        except TypeError:
            v = None
    if v is not None:
        if v == 0:
            return 0
        if v == 1:
            return 1
    raise TypeError(f"{name} must be True or False, got {x!r}")


def _flag_arg(x, str name):
    """``x`` as a bool under the rule of every flag of the API (see ``mc_bool_arg``), else the
    same TypeError: for the pure-Python functions that take a flag."""
    return mc_bool_arg(x, name) == 1


cdef int mc_stp_arg(object stp) except -1:
    cdef object mode = mc_int_arg(stp, "stp")
    if mode < MC_STP_NONE or mode > MC_STP_CANCEL_BOTH:
        raise ValueError(f"unknown self-trade prevention mode {stp!r}")
    return <int>mode


cdef object _py_i128(mc_i128 v):
    if v >= <mc_i128>INT64_MIN and v <= <mc_i128>0x7FFFFFFFFFFFFFFF:
        return <int64_t>v
    return (int(<int64_t>(v >> 64)) << 64) + int(<uint64_t>v)


cdef int _check_side_exact(mc_book* b, int s, Py_ssize_t n) except -1:
    # The top n levels of side s fit int64 arrays: a level total beyond int64 is refused, never
    # written saturated (the C function table documents its saturation; Python refuses). Hidden
    # entries passed are packed as by depth (_ladder_walked), so the walk that follows is short.
    cdef int32_t i = b.side[s].n - 1
    cdef Py_ssize_t k = 0
    cdef int64_t passed = 0
    cdef const mc_level* l
    while i >= 0 and k < n:
        l = &b.levels[b.side[s].lv[i]]
        i -= 1
        if l.count == 0:
            passed += l != &b.levels[MC_GAP]
            continue
        k += 1
        if l.qty > <mc_i128>0x7FFFFFFFFFFFFFFF:
            raise OverflowError(f"level {l.price} holds {_py_i128(l.qty)} lots, beyond int64: "
                                f"use best_bid()/best_ask()/level() for exact totals")
    _ladder_walked(b, s, passed, i + 1 if k == n else 0)
    return 0


cdef int _check_depth_exact(mc_book* b, Py_ssize_t n) except -1:
    # depth() hands out int64 arrays: a level total beyond int64 is refused, never wrapped.
    _check_side_exact(b, MC_BUY, n)
    _check_side_exact(b, MC_SELL, n)
    return 0


cdef object _raise(int64_t code, uint64_t oid):
    if code == -MC_ERR_NOMEM:
        raise MemoryError("matchcore: out of memory; the book is unchanged")
    raise OrderRejected(-code, oid)


class SnapshotError(ValueError):
    """A snapshot that cannot be restored (wrong magic, unknown version, truncated, checksum
    mismatch or inconsistent content); the target book is unchanged. ``code`` is the C error."""

    def __init__(self, code, message):
        self.code = code
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.code, self.args[0] if self.args else ""), self.__dict__ or None)


_SNAPSHOT_ERRORS = {
    MC_SNAP_E_MAGIC: "not a matchcore book snapshot (bad magic)",
    MC_SNAP_E_VERSION: "unsupported snapshot format version",
    MC_SNAP_E_TRUNCATED: "snapshot is truncated",
    MC_SNAP_E_CHECKSUM: "snapshot checksum mismatch (corrupted data)",
    MC_SNAP_E_CORRUPT: "snapshot content is inconsistent",
    MC_SNAP_E_NOMEM: "out of memory while restoring a snapshot",
}


class BusyError(RuntimeError):
    """A call on an :class:`OrderBook` or :class:`Engine` that another thread is using right now.

    The calls that run long in compiled code (``process()``, ``restore()``, a feed replay, a
    timed loop) release the GIL, so that other threads and other books go on meanwhile; the book
    (and its engine) is busy until the call returns, and any call on it from another thread
    raises this, having changed nothing. One book (or engine) is used by one thread at a time.
    """


class ReadOnlyBookError(RuntimeError):
    """Order entry on an :class:`OrderBook` that belongs to an :class:`Engine` (``eng.book(s)``).

    The engine routes every order id to its book, checks the symbol's limits and journals the
    command; an order entered on the book itself would skip all three (a later id could then
    rest twice across books, and recovery would not see it). So the book's ``submit``,
    ``submit_market``, ``cancel``, ``modify``, ``place``, ``reduce``, ``process``, ``clear`` and
    ``restore`` raise this, having changed nothing; its queries work as on any book. Enter the
    order through the engine (``eng.submit(symbol, ...)``). A book the engine no longer holds
    (the engine is gone, the book still referenced) takes orders again. A feed replayer's book
    (``r.book(s)``) takes orders, but its ``restore`` raises this too: the replay goes on
    building that book; restore into a standalone book (``OrderBook.from_snapshot(data)``).
    """


_BUSY_CALLS = {
    MC_BUSY_PROCESS: "process()",
    MC_BUSY_RESTORE: "restore()",
    MC_BUSY_ENGINE: "Engine.process()",
    MC_BUSY_REPLAY: "a feed replay",
    MC_BUSY_TIMED: "a timed loop (matchcore._timing)",
    MC_BUSY_JOURNAL: "a journal write",
    MC_BUSY_QUERY: "a query (events(), depth(), level(), ...)",
    MC_BUSY_HELD: "a read in several steps (a pickle, copy, snapshot file or invariants check)",
}


cdef int mc_raise_busy(str who, uint8_t what, const uint8_t* busy=NULL) except -1:
    # Out of line: the methods only test a byte and branch here. busy: the byte `what` was
    # read from, whose hold (MC_BUSY_HELD) says which call holds it
    call = _BUSY_CALLS.get(what & MC_BUSY_MASK, "a call")
    if what == MC_BUSY_HELD and busy != NULL:
        call = mc_held_call(busy)
    if what & MC_BUSY_VIA_BOOK:
        where = "one of its books"
    else:
        where = "it"
        if what == MC_BUSY_ENGINE:
            call = "process()"
    one = "book" if who == "OrderBook" else "engine" if who == "Engine" else "replayer"
    raise BusyError(f"{who} is busy: {call} is running on {where} in another thread; one "
                    f"{one} is used by one thread at a time")


cdef int mc_raise_engine_book(const mc_book* b) except -1:
    raise ReadOnlyBookError(
        f"this OrderBook (symbol {b.symbol}) belongs to an Engine: enter orders through the "
        f"engine (eng.submit({b.symbol}, ...), eng.cancel(...), eng.process(...)), which routes, "
        f"checks limits and journals them; the book itself answers queries only")


cdef int mc_raise_feed_view_restore(const mc_book* b) except -1:
    raise ReadOnlyBookError(
        f"this OrderBook (symbol {b.symbol}) belongs to a feed replayer: restore() would replace "
        f"the book the replay goes on building, its symbol id and id index with it; restore "
        f"into a standalone OrderBook (OrderBook.from_snapshot(data))")


cdef int mc_entry_slow(mc_book* b) except -1:
    if b.engine_owned:
        return mc_raise_engine_book(b)
    return mc_guard_slow(b)


cdef int mc_raise_finished(str who, str what) except -1:
    # finish() framed the last bytes knowing that nothing follows them and reported the cut:
    # bytes fed after it would be applied behind that report
    raise ValueError(f"{who}.{what}() after finish(): the stream has ended (its truncation, "
                     f"if any, is reported in stats); replay another stream with a new {who}")


cdef int mc_raise_feed_stopped(str who, Py_ssize_t pos) except -1:
    raise BusyError(f"{who} is busy: a call runs on one of its books in another thread; "
                    f"feed() stopped after {pos} bytes of this buffer (stats"
                    f"['bytes_consumed'] counts them); one replayer and its books are used "
                    f"by one thread at a time")


cdef int mc_busy_slow(const mc_book* b) except -1:
    if b.guard & MC_BUSY_MASK:
        return mc_raise_busy("OrderBook", b.guard & MC_BUSY_MASK)
    cdef uint8_t host = b.host_busy[0] if b.host_busy != NULL else 0
    if host:
        if host == MC_BUSY_HELD and mc_held_by_me(b.host_busy):
            return 1
        # busy as a part of its Engine (or replayer): name what runs there
        call = mc_held_call(b.host_busy) if host == MC_BUSY_HELD else \
            _BUSY_CALLS.get(host & MC_BUSY_MASK, "a call")
        # (only a feed replayer sets MC_BUSY_REPLAY on its own; the other codes are an Engine's)
        where = ("another book of its Engine or replayer" if host & MC_BUSY_VIA_BOOK
                 else "its replayer" if host == MC_BUSY_REPLAY else "its Engine")
        if host == MC_BUSY_ENGINE:
            call = "process()"
        raise BusyError(f"OrderBook is busy: {call} is running on {where} in another thread; "
                        f"one book is used by one thread at a time")
    return 0


cdef int mc_guard_slow(mc_book* b) except -1:
    if b.guard & (MC_BUSY_MASK | MC_GUARD_HOSTED):
        mc_busy_slow(b)
    if b.guard & MC_GUARD_NO_EVENTS:
        b.n_ev = 0
    return 0


cdef int mc_busy_enter(mc_book* b, uint8_t what) except -1:
    if b.guard & (MC_BUSY_MASK | MC_GUARD_HOSTED):
        # (an Engine's book is hosted: a standalone book tests one byte, as before)
        if b.engine_owned and what != MC_BUSY_QUERY and what != MC_BUSY_HELD:
            # a call that changes the book (process, restore, a replay or timed loop of its own)
            mc_raise_engine_book(b)
        if mc_busy_slow(b) == 1:
            return 0            # inside this thread's hold: it covers the call
    if b.host_busy != NULL:
        b.host_busy[0] = what | MC_BUSY_VIA_BOOK
    b.guard |= what
    return 0


cdef void mc_busy_leave(mc_book* b) noexcept:
    if b.host_busy != NULL and b.host_busy[0] == MC_BUSY_HELD:
        return                  # mc_busy_enter marked nothing; the hold's owner releases it
    b.guard &= MC_GUARD_HOSTED | MC_GUARD_NO_EVENTS
    if b.host_busy != NULL:
        b.host_busy[0] = 0
    else:
        # Standalone, it writes events as record_events says. Its feed replayer may have been
        # freed while the call ran (in another thread), leaving it standalone then, and the
        # call has put back the setting it found, the replayer's (none written): the book
        # said record_events=True and wrote no event again.
        b.emit = 0 if b.guard & MC_GUARD_NO_EVENTS else 1


# The threads holding an engine (MC_BUSY_HELD, matchcore._engine's mc_engine_hold), by the
# address of its busy byte, with the call that holds it: looked up only when a call finds the
# byte set, never on the per-call path.
cdef dict _HOLDERS = {}


cdef int mc_hold_register(const uint8_t* busy, str call=None) except -1:
    # call: what another thread's refusal names (a hold is not always a read: a configuration
    # change holds the engine through its journal record, EngineMetrics.process() through its
    # batch, and both were refused as "a pickle, copy, snapshot file or invariants check")
    _HOLDERS[<size_t>busy] = (PyThread_get_thread_ident(),
                              _BUSY_CALLS[MC_BUSY_HELD] if call is None else call)
    return 0


cdef void mc_hold_unregister(const uint8_t* busy) noexcept:
    _HOLDERS.pop(<size_t>busy, None)


cdef int mc_held_by_me(const uint8_t* busy) except -1:
    held = _HOLDERS.get(<size_t>busy)
    return held is not None and held[0] == PyThread_get_thread_ident()


cdef str mc_held_call(const uint8_t* busy):
    held = _HOLDERS.get(<size_t>busy)
    return _BUSY_CALLS[MC_BUSY_HELD] if held is None else held[1]


cdef void mc_book_host(mc_book* b, uint8_t* host_busy) noexcept:
    b.host_busy = host_busy
    if host_busy != NULL:
        b.guard |= MC_GUARD_HOSTED
    else:
        b.guard &= ~MC_GUARD_HOSTED
        b.engine_owned = 0
        # standalone again: it writes events as its record_events says (a feed replayer
        # switched them off while the book was its own)
        b.emit = 0 if b.guard & MC_GUARD_NO_EVENTS else 1


cdef tuple mc_book_pickle_args(OrderBook book):
    # one step in compiled code: no other thread's call can come between the parts
    cdef mc_book* b = book._b
    cdef int64_t size = mc_snapshot_size(b)
    cdef int64_t n_ev = b.n_ev if book.record_events else 0
    try:
        snap = PyBytes_FromStringAndSize(NULL, size)
        mc_snapshot_write(b, <uint8_t*>PyBytes_AS_STRING(snap), size)
        events = PyBytes_FromStringAndSize(<char*>b.ev, n_ev * sizeof(mc_event))
    except MemoryError:
        # (CPython's bare MemoryError named neither the book's state nor its size)
        pending = (f" and its {n_ev:,} pending events {n_ev * <int64_t>sizeof(mc_event):,} more"
                   if n_ev else "")
        raise MemoryError(f"matchcore: out of memory pickling an OrderBook: its state takes "
                          f"{size:,} bytes{pending}; the book is unchanged") from None
    return (_PICKLE_FORMAT, snap, book.record_events, b.orders_cap, events, None)


cdef class _Params:
    """The parameters of a compiled class's constructor, bound as Python binds a function's.

    A ``__cinit__`` that parses its own arguments names itself in its errors ("__cinit__() got
    an unexpected keyword argument"), which tells nothing of the class called; one taking
    ``*args, **kwargs`` and binding them here names the class (OrderBook, Engine, Replayer,
    DbnReplayer). ``positional``: ``(name, default)`` pairs that may come by position or
    keyword; ``keyword``: keyword-only ones; ``var_keyword``: other keywords are collected in a
    dict (the last value :meth:`bind` returns) instead of refused. Every parameter has a
    default. The class's docstring starts with the same list as its text signature (for
    ``inspect.signature`` and ``help``); the tests hold the two equal. Compiled: a
    constructor's binding costs a fraction of its allocation.
    """
    cdef readonly str name
    cdef Py_ssize_t _npos
    cdef tuple _names
    cdef tuple _defaults
    cdef dict _index
    cdef bint _var_keyword

    def __init__(self, str name, positional=(), keyword=(), bint var_keyword=False):
        pairs = tuple(positional) + tuple(keyword)
        self.name = name
        self._npos = len(positional)
        self._names = tuple(p for p, _ in pairs)
        self._defaults = tuple(d for _, d in pairs)
        self._index = {p: i for i, p in enumerate(self._names)}
        self._var_keyword = var_keyword

    def bind(self, tuple args, dict kwargs):
        """The values of the parameters in their order (then the dict of other keywords, with
        ``var_keyword``), from a call's ``args`` and ``kwargs``: TypeError in Python's words,
        naming the class. O(arguments)."""
        cdef Py_ssize_t n = len(args)
        if n > self._npos:
            raise TypeError(f"{self.name}() takes from 0 to {self._npos} positional "
                            f"arguments but {n} were given")
        cdef list values = list(args)
        values.extend(self._defaults[n:])
        cdef dict extra = {} if self._var_keyword else None
        if kwargs:
            for key, value in kwargs.items():
                i = self._index.get(key)
                if i is None:
                    if not self._var_keyword:
                        raise TypeError(f"{self.name}() got an unexpected keyword argument "
                                        f"{key!r}")
                    extra[key] = value
                elif <Py_ssize_t>i < n:
                    raise TypeError(f"{self.name}() got multiple values for argument {key!r}")
                else:
                    values[<Py_ssize_t>i] = value
        if self._var_keyword:
            values.append(extra)
        return values

    def parameters(self):
        """``(name, kind, default)`` of each parameter, kind as :class:`inspect.Parameter`
        names it (``VAR_KEYWORD`` last, default None, with ``var_keyword``)."""
        out = [(p, "POSITIONAL_OR_KEYWORD" if i < self._npos else "KEYWORD_ONLY",
                self._defaults[i]) for i, p in enumerate(self._names)]
        if self._var_keyword:
            out.append((None, "VAR_KEYWORD", None))
        return out


cdef class _HeldState:
    """The state an Engine's pickle read for one of its books (``_book_from_pickle``'s
    arguments). It pickles as that tuple; the book refers to it weakly, so the state lives only
    as long as the engine's pickle arguments do."""
    cdef readonly tuple args
    cdef object __weakref__

    def __reduce__(self):
        return tuple, (self.args,)


cdef object mc_book_held_state(OrderBook book, tuple args):
    cdef _HeldState held = _HeldState.__new__(_HeldState)
    held.args = args
    book._pickled = weakref.ref(held)
    return held


cdef int mc_book_copy_into(OrderBook dst, OrderBook src) except -1:
    if dst._b.guard & (MC_BUSY_MASK | MC_GUARD_HOSTED):
        # an engine's or replayer's slot (or a running call) points at dst's struct
        raise ValueError("the OrderBook to copy into already belongs to an engine or replayer, "
                         "or is in use")
    cdef mc_book* nb = mc_book_copy(src._b)
    if nb == NULL:
        # the pools and id index are copied whole: the capacity, not the resting orders,
        # sizes the copy (a bare MemoryError() said neither)
        raise MemoryError(f"matchcore: out of memory copying an OrderBook of order capacity "
                          f"{src._b.orders_cap:,} ({src._b.n_orders:,} resting orders, "
                          f"{src._b.n_ev:,} pending events); the book is unchanged")
    nb.handle = dst._b.handle
    mc_handle_set(nb.handle, nb)
    mc_book_free(dst._b)
    dst._b = nb
    # a plain book writes events when it records them: a feed replayer's books record
    # none whatever record_events says (emit = 0), their copy (as their pickle) is plain
    nb.emit = 1 if src.record_events else 0
    # mc_book_copy (also the C table's book_copy) keeps the events the caller has not read yet
    return 0


def _subclass_new(cls, new_args, str what):
    # cls.__new__ as pickle calls it: with the (args, kwargs) of _subclass_new_args, or none.
    # new_args from a pickle may be anything: refused before __new__ runs. (The Engine's
    # copies and pickles call it too; ``what`` names the class in the refusal.)
    if new_args is None:
        return cls.__new__(cls)
    if (not isinstance(new_args, tuple) or len(new_args) != 2
            or not isinstance(new_args[0], tuple) or not isinstance(new_args[1], dict)):
        raise TypeError(f"pickled {what}: the arguments of {cls.__name__}.__new__ are not "
                        f"(args, kwargs): {new_args!r}")
    return cls.__new__(cls, *new_args[0], **new_args[1])


cdef OrderBook mc_subclass_new(cls, new_args):
    return _subclass_new(cls, new_args, "OrderBook")


cdef OrderBook mc_book_twin(OrderBook book, new_args=None):
    # copy() without a subclass's attributes: the same class, state and pending events.
    # new_args: the (args, kwargs) for a subclass's __new__ (_subclass_new_args), or None
    mc_check_busy(book._b)
    cls = type(book)
    cdef OrderBook c
    if cls is OrderBook:
        c = OrderBook.__new__(OrderBook, book._b.stp, record_events=book.record_events,
                              capacity=0)
    else:
        # as pickle makes one (_book_of_class): a subclass's __new__ may take arguments of
        # its own, and refused OrderBook's; its default book is replaced below
        c = mc_subclass_new(cls, new_args)
        c.record_events = book.record_events
    c._init_due = 0             # no __init__ call follows (see OrderBook.__init__)
    mc_check_busy(book._b)      # again: making c may have run other threads' code
    mc_book_copy_into(c, book)
    return c


cdef int mc_book_restore(OrderBook book, object data) except -1:
    # OrderBook.restore() past the feed replayer check; also an Engine's restore of its own book
    cdef const uint8_t[::1] view = _snapshot_view(data)
    cdef int rc
    mc_busy_enter(book._b, MC_BUSY_RESTORE)
    try:
        with nogil:
            rc = mc_snapshot_restore(book._b, &view[0] if view.shape[0] > 0 else NULL,
                                     view.shape[0])
    finally:
        mc_busy_leave(book._b)
    if rc < 0:
        _raise_snapshot(rc, view)
    return 0


cdef object _raise_snapshot(int rc, const uint8_t[::1] data=None):
    # ``data``: the bytes refused, for the refusals whose details the code does not tell
    if -rc == MC_SNAP_E_NOMEM:
        raise MemoryError(_SNAPSHOT_ERRORS[MC_SNAP_E_NOMEM])
    cdef int64_t n = data.shape[0] if data is not None else 0
    cdef uint64_t size
    if -rc == MC_SNAP_E_VERSION and n >= 12:
        # a newer matchcore's snapshot or a damaged field: the number found tells which
        raise SnapshotError(-rc, f"{_SNAPSHOT_ERRORS[MC_SNAP_E_VERSION]} "
                                 f"{_get32(&data[0] + 8)} (this matchcore reads version "
                                 f"{MC_SNAP_VERSION})")
    if -rc == MC_SNAP_E_TRUNCATED and data is not None:
        # how much came, and how much the snapshot is when its header tells: a file cut short
        # by a full disk and one read short look alike otherwise
        if n >= SNAP_HEADER + 8:
            size = _get64(&data[0] + 16)
            if <uint64_t>n < size:
                raise SnapshotError(-rc, f"{_SNAPSHOT_ERRORS[MC_SNAP_E_TRUNCATED]}: its header "
                                         f"says {size} bytes, {n} given")
        else:
            raise SnapshotError(-rc, f"{_SNAPSHOT_ERRORS[MC_SNAP_E_TRUNCATED]}: {n} "
                                     f"byte{'s' if n != 1 else ''}, fewer than the "
                                     f"{SNAP_HEADER + 8} of its header and checksum")
    if -rc == MC_SNAP_E_CORRUPT and n >= SNAP_HEADER + 8:
        # the header (its magic and version passed) gives the snapshot's size: more bytes
        # than that is the first content check, named rather than called inconsistent
        size = _get64(&data[0] + 16)
        if _get32(&data[0] + 12) == SNAP_HEADER and <uint64_t>n > size:
            extra = <uint64_t>n - size
            raise SnapshotError(-rc, f"{extra} byte{'s' if extra != 1 else ''} after the "
                                     f"snapshot's content (its header says {size} bytes, "
                                     f"{n} given)")
    if -rc == MC_SNAP_E_MAGIC and n >= 8:
        # another of the project's files (an engine's snapshot-*.mcs above all): say which,
        # and what reads it
        from matchcore._magic import own_file_hint
        raise SnapshotError(-rc, _SNAPSHOT_ERRORS[MC_SNAP_E_MAGIC]
                                 + own_file_hint(bytes([data[i] for i in range(8)]),
                                                 "book_snapshot"))
    raise SnapshotError(-rc, _SNAPSHOT_ERRORS.get(-rc, f"snapshot error {-rc}"))


cdef object _snapshot_view(data):
    if isinstance(data, str):
        raise TypeError("a snapshot is bytes, not str")
    try:
        view = memoryview(data)
    except TypeError:
        # memoryview's own message named neither the snapshot nor what it was given
        raise TypeError(f"a snapshot is bytes, not {type(data).__name__}") from None
    if not view.c_contiguous:
        # memoryview's cast refused it in its own words ("casts are restricted to C-contiguous
        # views"), naming neither the snapshot nor what to do
        raise TypeError(f"a snapshot is contiguous bytes: this {type(data).__name__} is a "
                        f"strided view (copy it first, e.g. bytes(data))")
    return view.cast("B")


cdef object _owner_events_array(const mc_event* src, int64_t n, uint64_t owner):
    cdef int64_t k = mc_filter_events_owner(src, n, owner, NULL)
    cdef cnp.ndarray out = np.empty(k, dtype=EVENT_DTYPE)
    if k > 0:
        mc_filter_events_owner(src, n, owner, <mc_event*>cnp.PyArray_DATA(out))
    return out


cdef object _commands_array(object commands, str what):
    # A batch of commands checked before any runs (OrderBook, Engine, the timed loops): a 1-D
    # COMMAND_DTYPE array. The loops read shape[0] records from its buffer, so an array of
    # another shape would run only that many of its records (and ascontiguousarray would make a
    # 0-d array or a np.void scalar 1-D: the shape is checked before any conversion). A strided
    # or unaligned array is copied into an aligned contiguous one, which the C loops can read.
    # an exact ndarray of the exact dtype (the common case) is checked by pointer, not by calls
    if type(commands) is not cnp.ndarray:
        refuse_masked(commands, what)
    cdef cnp.ndarray arr = commands if type(commands) is cnp.ndarray else np.asarray(commands)
    if <object>cnp.PyArray_DESCR(arr) is not COMMAND_DTYPE and arr.dtype != COMMAND_DTYPE:
        raise TypeError(f"{what} needs an array of matchcore.COMMAND_DTYPE, got {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{what} needs a 1-D array of commands, got shape {(<object>arr).shape}")
    # numpy calls a COMMAND_DTYPE array aligned at any address (the dtype is not an aligned
    # struct), so the data pointer is checked against the 8 bytes of the int64 fields.
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or (<size_t>cnp.PyArray_DATA(arr)) & 7:
        try:
            arr = np.array(arr, order="C", copy=True)
        except MemoryError:
            raise mc_oom_before(arr.shape[0]) from None
    return arr


cdef object mc_oom_before(int64_t n):
    # memory ran out before a batch's first command (its aligned copy, its result array): the
    # MemoryError a batch raises, with the count applied, as when it runs out part way
    exc = MemoryError(f"matchcore: out of memory after 0 of {n} commands")
    exc.applied = 0
    return exc


cdef object _depth_out(object arr, str name):
    # depth_into()'s arrays checked one by one, with the argument named, before either is
    # written (a typed memoryview parameter answered "a bytes-like object is required" or
    # "Buffer dtype mismatch", and ValueError for a wrong dtype)
    if not isinstance(arr, cnp.ndarray):
        raise TypeError(f"depth_into() needs {name} as a numpy int64 array of shape (k, 2), "
                        f"got {type(arr).__name__}")
    cdef cnp.ndarray a = <cnp.ndarray>arr
    if a.dtype != _INT64:
        raise TypeError(f"depth_into() needs {name} as a numpy int64 array of shape (k, 2), "
                        f"got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"depth_into() needs {name} of shape (k, 2), got shape "
                         f"{tuple(arr.shape)}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a) or (<size_t>cnp.PyArray_DATA(a)) & 7:
        raise ValueError(f"depth_into() needs {name} C-contiguous at an 8-byte aligned "
                         f"address (np.ascontiguousarray makes one), got a strided or "
                         f"unaligned array")
    if not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"depth_into() needs {name} writeable, got a read-only array")
    return a


cdef object _INT64 = np.dtype(np.int64)


cdef tuple _depth_write(mc_book* b, int64_t[:, ::1] bids_out, int64_t[:, ::1] asks_out):
    # depth_into() on arrays _depth_out has checked
    cdef int64_t nb = 0, na = 0
    cdef const int64_t* b0
    cdef const int64_t* a0
    if bids_out.shape[0] > 0 and asks_out.shape[0] > 0:
        # one array (or two views of one) for both sides: the asks overwrote the bids
        b0 = &bids_out[0, 0]
        a0 = &asks_out[0, 0]
        if b0 < a0 + 2 * asks_out.shape[0] and a0 < b0 + 2 * bids_out.shape[0]:
            raise ValueError("depth_into() needs two separate arrays: bids_out and "
                             "asks_out share memory, so the asks would overwrite the bids")
    # as depth(): a level total beyond int64 raises OverflowError, before anything is
    # written (it was written as 2**63 - 1, a wrong total that looked like a real one)
    _check_side_exact(b, MC_BUY, bids_out.shape[0])
    _check_side_exact(b, MC_SELL, asks_out.shape[0])
    if bids_out.shape[0] > 0:
        nb = mc_depth(b, MC_BUY, bids_out.shape[0], &bids_out[0, 0])
    if asks_out.shape[0] > 0:
        na = mc_depth(b, MC_SELL, asks_out.shape[0], &asks_out[0, 0])
    return nb, na


cdef object _out_buffer(object out, object commands, object given):
    # process(out=...)'s buffer checked before any command runs (OrderBook and Engine): the
    # array itself, or None without one. `commands` is _commands_array's result, `given` the
    # caller's object it was made from.
    if out is None:
        return None
    # each refusal says what was given (one message for a list and an int64 array, or for a
    # 2-D array and a strided view, left the caller to guess which rule it broke)
    if not isinstance(out, cnp.ndarray):
        raise TypeError(f"process(out=...) needs a numpy array of matchcore.EVENT_DTYPE, got "
                        f"{type(out).__name__}")
    if (<object>cnp.PyArray_DESCR(<cnp.ndarray>out) is not EVENT_DTYPE
            and (<cnp.ndarray>out).dtype != EVENT_DTYPE):
        raise TypeError(f"process(out=...) needs a numpy array of matchcore.EVENT_DTYPE, got "
                        f"an array of dtype {(<cnp.ndarray>out).dtype}")
    cdef cnp.ndarray dst = <cnp.ndarray>out
    if dst.ndim != 1:
        raise ValueError(f"process(out=...) needs a 1-D C-contiguous array at an 8-byte aligned "
                         f"address, got shape {tuple(out.shape)}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(dst) or (<size_t>cnp.PyArray_DATA(dst)) & 7:
        raise ValueError("process(out=...) needs a 1-D C-contiguous array at an 8-byte aligned "
                         "address, got a strided or unaligned array")
    if not cnp.PyArray_ISWRITEABLE(dst):
        raise ValueError("process(out=...) needs a writeable array, got a read-only one")
    # Events written into the commands' own memory would overwrite commands not yet run. Both
    # are contiguous, so overlapping byte ranges are shared memory (compared here rather than
    # with np.may_share_memory, a few hundred ns per batch).
    cdef cnp.ndarray cmds = <cnp.ndarray>commands
    cdef size_t d0 = <size_t>cnp.PyArray_DATA(dst), c0 = <size_t>cnp.PyArray_DATA(cmds)
    cdef size_t dn = <size_t>cnp.PyArray_NBYTES(dst), cn = <size_t>cnp.PyArray_NBYTES(cmds)
    if dn > 0 and cn > 0 and d0 < c0 + cn and c0 < d0 + dn:
        raise ValueError("process(out=...) must not share memory with the commands")
    if commands is not given and dn > 0 and np.may_share_memory(dst, np.asarray(given)):
        # a strided or unaligned batch runs from a copy, but events written over the caller's
        # array would still overwrite the caller's commands (the reference model refuses it)
        raise ValueError("process(out=...) must not share memory with the commands")
    return dst


# A large batch without out= writes its events straight into the array it returns, which is
# therefore made before the batch. A new array's pages are faulted in as the events land, and
# the kernel zeroes each one: about 10 ns an event on this machine, and a first call can stall
# for tens of ms while the kernel compacts memory for numpy's huge-page request. The last few
# such arrays are kept here; one whose results are all gone (only this list refers to it) is
# written again by the next batch it fits, so a loop of process() calls runs on mapped pages.
# Bounded: at most _RESULT_KEEP arrays and _RESULT_KEEP_BYTES bytes are held for reuse.
cdef list _RESULTS = []
cdef int _RESULT_KEEP = 2
cdef int64_t _RESULT_KEEP_BYTES = 128 << 20


cdef object mc_result_block(int64_t n):
    """An EVENT_DTYPE array of n events or more (at most 2n), contents undefined, for a batch's
    events; the result handed out is a view of its first k (see _RESULTS)."""
    cdef Py_ssize_t i, best = -1, spare = -1, count = len(_RESULTS)
    cdef int64_t size, best_size = 0, held = 0
    cdef PyObject* p
    cdef bint in_use
    cdef cnp.ndarray arr
    for i in range(count):
        p = PyList_GET_ITEM(_RESULTS, i)
        in_use = p.ob_refcnt != 1      # a result still refers to it (read before a reference here)
        arr = <cnp.ndarray><object>p
        size = arr.shape[0]
        arr = None
        held += size * <int64_t>sizeof(mc_event)
        if in_use:
            continue
        spare = i
        if n <= size <= 2 * n and (best < 0 or size < best_size):
            best, best_size = i, size
    if best >= 0:
        return _RESULTS[best]
    blk = np.empty(n, dtype=EVENT_DTYPE)
    cdef int64_t nbytes = n * <int64_t>sizeof(mc_event)
    if spare >= 0:
        # a free array that does not fit: this one takes its place
        arr = <cnp.ndarray>_RESULTS[spare]
        held -= arr.shape[0] * <int64_t>sizeof(mc_event)
        arr = None
        if held + nbytes <= _RESULT_KEEP_BYTES:
            _RESULTS[spare] = blk
    elif count < _RESULT_KEEP and held + nbytes <= _RESULT_KEEP_BYTES:
        _RESULTS.append(blk)
    return blk


def _result_blocks():
    """The arrays kept for reuse by process() (for tests)."""
    return list(_RESULTS)


cdef object _events_array(const mc_event* src, int64_t n):
    cdef cnp.ndarray out = np.empty(n, dtype=EVENT_DTYPE)
    if n > 0:
        memcpy(cnp.PyArray_DATA(out), src, n * sizeof(mc_event))
    return out


# The ints 0..1023 made once: a per-call method returns executed or cancelled lots, nearly always
# small, and handing out one of these is a few instructions where PyLong_FromLong is a call.
cdef tuple _SMALL_INTS = tuple(range(1024))


# The defaults of tif, owner and ts_ns (and an explicit 0) are the interpreter's cached 0: a
# pointer compare reads them.
cdef object _ZERO = 0


cdef inline object _lots(int64_t r):
    if <uint64_t>r < 1024:
        return <object>PyTuple_GET_ITEM(_SMALL_INTS, r)
    return r


cdef object mc_small_int(int64_t r):
    """_lots for other modules (the Engine's per-call methods)."""
    return _lots(r)
