"""Numba access to the compiled book and engine: call them from ``@njit`` code at compiled speed.

Importing this module (and only this module) imports Numba. It registers every function of the
C table (include/matchcore.h) with LLVM under the name ``matchcore_<field>`` and defines Numba
intrinsics that call those symbols by name, so compiled code holds no process-specific address
and ``@njit(cache=True)`` works across processes (the symbols are registered again when this
module is imported, before cached code is loaded). No object mode, no jitclass.

Pass the ``OrderBook`` (or ``Engine``) itself: it is a Numba type (:data:`book_type`,
:data:`engine_type`) that unboxes to the object's checked handle, and Numba holds the object
for the whole call, so the book cannot be freed while compiled code uses it:

>>> import numba, matchcore as mc
>>> from matchcore import numba_ext as mcn
>>> @numba.njit  # in a module file: @numba.njit(cache=True)
... def buy_then_sell(book):
...     mcn.submit(book, 1, mc.Side.BUY, 100, 5, mc.TIF.GTC, 0, 0)
...     return mcn.submit(book, 2, mc.Side.SELL, 100, 3, mc.TIF.GTC, 0, 0)
>>> buy_then_sell(mc.OrderBook())
3

The int handle (``book.handle``, also ``book.address``) works too, e.g. kept in an array of
books; it does not keep the book alive, but every call validates it first: once the book is
gone, calls return ``-MC_ERR_HANDLE`` (-101; ``state_hash`` 0) instead of touching freed
memory. A book handle given where an engine is expected (or the reverse) is refused the same
way; passing an ``OrderBook`` where an ``Engine`` is expected is a typing error.

Every intrinsic has the C signature of its table field (``matchcore.h``), with the parameter
names declared there: arguments go by position or by those names (``owner=``, ``post_only=``).
Integer arguments (any Numba integer type, a bool, an IntEnum member) are converted to the C
parameter's type when the value fits it; a value that does not fit is never wrapped into another
value:

- a signed parameter (``side``, ``tif``, ``post_only``, ``stp``: C int; ``price``, ``qty``,
  ``ts_ns``, counts, ``capacity``: int64) gets -1, so the call gives what C gives for an
  invalid value: ``-MC_R_INVALID_SIDE`` / ``_TIF`` / ``_PRICE`` / ``_QTY`` with its REJECTED
  event, ``book_new`` the handle 0, a count 0 items (``drain_events_owner_raw`` /
  ``engine_drain_events_owner_raw``: ``-MC_R_INVALID_COMMAND``, nothing taken, as C answers a
  negative count there); ``post_only`` stays non-zero (post-only),
  ``ts_ns`` becomes -1;
- an unsigned parameter (order id, owner: uint64; symbol: uint32) has no invalid value, so the C
  function is not called: the result is ``-MC_R_INVALID_COMMAND`` (-8; found = -8 for
  :func:`get` / :func:`engine_get`, the handle 0 for ``engine_book``), and nothing changes.

Out of range means, e.g., a negative int64 order id, a side of 2**32, a uint64 price above
2**63 - 1. Handle arguments are 64-bit patterns, passed as they are. Pointer arguments take an
int address or a C-contiguous numpy array (its data pointer is passed). Where a count goes with
an array (``depth``, ``depth_orders``, ``process_raw``, the ``drain_events*_raw`` functions,
``snapshot_write``, ``snapshot_restore``), the count is clamped to what the array holds, so
an array cannot be overrun (``apply`` given an array shorter than one command returns
-MC_R_INVALID_COMMAND); with a raw int address the size is the caller's responsibility.
An array that C writes into (``depth``, ``depth_orders``, :func:`depth_into`, the
``drain_events*`` functions, ``snapshot_write``) must be writable: a read-only one (e.g.
``np.frombuffer`` of a ``bytes`` object, a read-only ``np.memmap``) is a typing error, and the
arrays of ``depth`` / ``depth_orders`` / :func:`depth_into` must be int64, as the values C writes.
The array helpers take arrays of their records only: :func:`process` / :func:`engine_process`
a ``COMMAND_DTYPE`` array, the ``drain_events*`` helpers an ``EVENT_DTYPE`` one (another dtype
is a typing error; the ``*_raw`` functions take any pointer). An array of commands, events or
int64 values (the ``process*``, ``apply``, ``depth*`` and ``drain_events*`` functions) must be
at an 8-byte aligned address, as C reads and writes int64 fields there; Numba's types do not
say whether it is, so each call tests the address and raises ``ValueError`` for an unaligned
one ("at an 8-byte aligned address", as Python's ``depth_into`` says) before C runs.
:func:`best`, :func:`get` and :func:`engine_get` return tuples instead of writing through
pointers.
"""
from __future__ import annotations

import numpy as np

try:
    import llvmlite.binding as _llvm
    from llvmlite import ir
    from numba import njit, types
    from numba.core import cgutils
    from numba.core.datamodel import models
    from numba.core.errors import TypingError
    from numba.core.typing import signature
    from numba.core.typing.typeof import Purpose
    from numba.np.numpy_support import from_dtype
    from numba.extending import NativeValue, intrinsic, register_model, typeof_impl, unbox
except ModuleNotFoundError as e:
    if (e.name or "").partition(".")[0] not in ("numba", "llvmlite"):
        raise
    raise ImportError("matchcore.numba_ext needs numba: pip install 'matchcore[numba]'") from e

from matchcore._capi import c_api_addresses
from matchcore._core import COMMAND_DTYPE, EVENT_DTYPE, OrderBook
from matchcore._engine import Engine
from matchcore.native import Recorder

__all__ = [
    "ADDRESSES", "EVENT_DTYPE", "COMMAND_DTYPE", "ERR_HANDLE", "ERR_BUSY", "ERR_READONLY",
    "BookType", "EngineType",
    "book_type", "engine_type", "depth_into", "drain_events", "drain_events_owner",
    "engine_drain_events", "engine_drain_events_owner", "process", "engine_process", "best",
    "get", "engine_get", "event_buffer", "command_buffer",
]

#: What a call with a freed, foreign or garbage handle returns, negated (MC_ERR_HANDLE).
ERR_HANDLE = 101
#: What a call returns, negated, while a Python call that released the GIL runs on the book or
#: engine in another thread (MC_ERR_BUSY; Python raises BusyError there).
ERR_BUSY = 102
#: What order entry on a book of an Engine returns, negated (MC_ERR_READONLY; Python raises
#: ReadOnlyBookError): orders go through the engine, which also sets their clock
#: (``set_time`` on such a book is refused; ``engine_set_time``). Also ``snapshot_restore``
#: on a feed replayer's book.
ERR_READONLY = 103


# ---- OrderBook / Engine as Numba types: unboxed to their checked handle ----

class BookType(types.Type):
    """Numba type of a ``matchcore.OrderBook`` argument: its value is the book's handle."""

    def __init__(self):
        super().__init__(name="matchcore.OrderBook")


class EngineType(types.Type):
    """Numba type of a ``matchcore.Engine`` argument: its value is the engine's handle."""

    def __init__(self):
        super().__init__(name="matchcore.Engine")


book_type = BookType()
engine_type = EngineType()


def _not_a_constant(val, c):
    # A global or closure variable, or a default argument value, is frozen into the compiled
    # code as a constant: a book's handle frozen there would outlive the book, and with
    # cache=True name whatever book gets the same handle in a later process. Refused while
    # typing, with the way that works.
    if c.purpose == Purpose.constant:
        kind = type(val).__name__
        raise ValueError(
            f"a matchcore {kind} cannot be used as a global or closure variable or a default "
            f"argument value of compiled code (its handle would be frozen into it): pass the "
            f"{kind} as an argument of the @njit function in each call")


@typeof_impl.register(OrderBook)
def _typeof_book(val, c):
    _not_a_constant(val, c)
    return book_type


@typeof_impl.register(Engine)
def _typeof_engine(val, c):
    _not_a_constant(val, c)
    return engine_type


@typeof_impl.register(Recorder)
def _typeof_recorder(val, c):
    # A Recorder stands in for its book in Python, so it is what a user hands to compiled code
    # next; Numba's own refusal ("non-precise type pyobject") said nothing of why. Compiled
    # code reaches a book through the C table only, which no record would follow. ValueError
    # is Numba's way to say "no Numba type": the typing error then carries these words, and
    # object mode (forceobj=True), which calls the Recorder's methods, still takes it.
    raise ValueError("a matchcore.native.Recorder cannot be passed to compiled code: orders "
                    "entered there would bypass its journal. Enter them through its methods "
                    "(rec.submit, rec.process, ...); its book (rec.book) answers queries from "
                    "compiled code, and takes orders there once the Recorder is closed")


@register_model(BookType)
@register_model(EngineType)
class _HandleModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.IntType(64))


def _unbox_handle(typ, obj, c):
    # The handle is read from the object's ``handle`` property; the dispatcher holds the object
    # (the call's argument) until the compiled function returns.
    builder = c.builder
    attr = c.pyapi.object_getattr_string(obj, "handle")
    res = cgutils.alloca_once_value(builder, ir.Constant(ir.IntType(64), 0))
    with builder.if_then(cgutils.is_not_null(builder, attr), likely=True):
        builder.store(c.pyapi.long_as_ulonglong(attr), res)
        c.pyapi.decref(attr)
    return NativeValue(builder.load(res), is_error=c.pyapi.c_api_error())


unbox(BookType)(_unbox_handle)
unbox(EngineType)(_unbox_handle)

#: {table field: function address} of this process; the symbol of field f is "matchcore_" + f.
ADDRESSES = c_api_addresses()
for _name, _addr in ADDRESSES.items():
    _llvm.add_symbol("matchcore_" + _name, _addr)

# Argument kinds: b = book (OrderBook or its int handle), e = engine (Engine or its int handle),
# p = pointer (int address or array), i = C int, i64, u64, u32.
_NB = {"i": types.int32, "i64": types.int64, "u64": types.uint64, "u32": types.uint32,
       "p": types.intp, "b": types.uint64, "e": types.uint64}
_LL = {"i": ir.IntType(32), "i64": ir.IntType(64), "u64": ir.IntType(64), "u32": ir.IntType(32),
       "p": ir.IntType(8).as_pointer(), "b": ir.IntType(64), "e": ir.IntType(64)}

# field: (return kind, argument kinds) -- the C signatures of include/matchcore.h
_SIGS = {
    "book_new": ("b", ("i", "i64")),
    "book_free": ("i", ("b",)),
    "book_copy": ("b", ("b",)),
    "book_clear": ("i", ("b",)),
    "book_valid": ("i", ("b",)),
    "engine_valid": ("i", ("e",)),
    "set_time": ("i", ("b", "i64")),
    "submit": ("i64", ("b", "u64", "i", "i64", "i64", "i", "u64", "i")),
    "market": ("i64", ("b", "u64", "i", "i64", "u64")),
    "cancel": ("i64", ("b", "u64")),
    "modify": ("i64", ("b", "u64", "i64", "i64")),
    "apply": ("i64", ("b", "p")),
    "process_raw": ("i64", ("b", "p", "i64")),
    "depth": ("i64", ("b", "i", "i64", "p")),
    "depth_orders": ("i64", ("b", "i", "i64", "p")),
    "queue_position": ("i64", ("b", "u64")),
    "count": ("i64", ("b",)),
    "level_count": ("i64", ("b", "i")),
    "state_hash": ("u64", ("b",)),
    "pending_events": ("i64", ("b",)),
    "drain_events_raw": ("i64", ("b", "p", "i64")),
    "drain_events_owner_raw": ("i64", ("b", "u64", "p", "i64")),
    "clear_events": ("i", ("b",)),
    "snapshot_size": ("i64", ("b",)),
    "snapshot_write": ("i64", ("b", "p", "i64")),
    "snapshot_restore": ("i", ("b", "p", "i64")),
    "engine_set_time": ("i", ("e", "i64")),
    "engine_submit": ("i64", ("e", "u32", "u64", "i", "i64", "i64", "i", "u64", "i")),
    "engine_market": ("i64", ("e", "u32", "u64", "i", "i64", "u64")),
    "engine_cancel": ("i64", ("e", "u32", "u64")),
    "engine_modify": ("i64", ("e", "u32", "u64", "i64", "i64")),
    "engine_process_raw": ("i64", ("e", "p", "i64")),
    "engine_book": ("b", ("e", "u32")),
    "engine_count": ("i64", ("e",)),
    "engine_state_hash": ("u64", ("e",)),
    "engine_pending_events": ("i64", ("e",)),
    "engine_drain_events_raw": ("i64", ("e", "p", "i64")),
    "engine_drain_events_owner_raw": ("i64", ("e", "u64", "p", "i64")),
    "cancel_by": ("i64", ("b", "u64", "u64")),
    "modify_by": ("i64", ("b", "u64", "i64", "i64", "u64")),
    "engine_cancel_by": ("i64", ("e", "u32", "u64", "u64")),
    "engine_modify_by": ("i64", ("e", "u32", "u64", "i64", "i64", "u64")),
}

# field: (array argument, count argument, bytes per counted item): when the array argument is a
# numpy array, the count passed to C is clamped to what the array holds (count None: one record
# is read; an array shorter than that gives -MC_R_INVALID_COMMAND without a call).
_R_INVALID_COMMAND = 8
_BOUNDS = {
    "apply": (1, None, 48),
    "process_raw": (1, 2, 48),
    "depth": (3, 2, 16),
    "depth_orders": (3, 2, 24),
    "drain_events_raw": (1, 2, 64),
    "drain_events_owner_raw": (2, 3, 64),
    "snapshot_write": (1, 2, 1),
    "snapshot_restore": (1, 2, 1),
    "engine_process_raw": (1, 2, 48),
    "engine_drain_events_raw": (1, 2, 64),
    "engine_drain_events_owner_raw": (2, 3, 64),
}


# C function: (index of the array argument the function writes into, element type it writes
# or None for records/bytes). A read-only array there (np.frombuffer of a bytes object, a
# read-only np.memmap, ...) is a typing error: C would write into memory that must not change
# (or is mapped read-only: the process dies with SIGSEGV).
_WRITES = {
    "matchcore_depth": (3, types.int64),
    "matchcore_depth_orders": (3, types.int64),
    "matchcore_drain_events": (1, None),
    "matchcore_drain_events_owner": (2, None),
    "matchcore_snapshot_write": (1, None),
    "matchcore_engine_drain_events": (1, None),
    "matchcore_engine_drain_events_owner": (2, None),
}


# C function: its parameter names in matchcore.h, for the typing errors ("argument 3 (price)":
# counted from 0, the handle first, as the intrinsics take them).
_PARAM_NAMES = {
    "matchcore_book_new": ("stp", "capacity"),
    "matchcore_book_free": ("b",),
    "matchcore_book_copy": ("b",),
    "matchcore_book_clear": ("b",),
    "matchcore_book_valid": ("handle",),
    "matchcore_engine_valid": ("handle",),
    "matchcore_set_time": ("b", "ts_ns"),
    "matchcore_submit": ("b", "order_id", "side", "price", "qty", "tif", "owner", "post_only"),
    "matchcore_market": ("b", "order_id", "side", "qty", "owner"),
    "matchcore_cancel": ("b", "order_id"),
    "matchcore_modify": ("b", "order_id", "qty", "price"),
    "matchcore_apply": ("b", "cmd"),
    "matchcore_process": ("b", "cmds", "n"),
    "matchcore_best": ("b", "side", "price", "qty"),
    "matchcore_depth": ("b", "side", "n", "out"),
    "matchcore_depth_orders": ("b", "side", "n", "out"),
    "matchcore_get": ("b", "order_id", "side", "price", "qty"),
    "matchcore_queue_position": ("b", "order_id"),
    "matchcore_count": ("b",),
    "matchcore_level_count": ("b", "side"),
    "matchcore_state_hash": ("b",),
    "matchcore_pending_events": ("b",),
    "matchcore_drain_events": ("b", "out", "cap"),
    "matchcore_drain_events_owner": ("b", "owner", "out", "cap"),
    "matchcore_clear_events": ("b",),
    "matchcore_snapshot_size": ("b",),
    "matchcore_snapshot_write": ("b", "out", "cap"),
    "matchcore_snapshot_restore": ("b", "data", "n"),
    "matchcore_engine_set_time": ("e", "ts_ns"),
    "matchcore_engine_submit": (
        "e", "symbol", "order_id", "side", "price", "qty", "tif", "owner", "post_only"),
    "matchcore_engine_market": ("e", "symbol", "order_id", "side", "qty", "owner"),
    "matchcore_engine_cancel": ("e", "symbol", "order_id"),
    "matchcore_engine_modify": ("e", "symbol", "order_id", "qty", "price"),
    "matchcore_engine_process": ("e", "cmds", "n"),
    "matchcore_engine_book": ("e", "symbol"),
    "matchcore_engine_get": ("e", "order_id", "symbol", "side", "price", "qty"),
    "matchcore_engine_count": ("e",),
    "matchcore_engine_state_hash": ("e",),
    "matchcore_engine_pending_events": ("e",),
    "matchcore_engine_drain_events": ("e", "out", "cap"),
    "matchcore_engine_drain_events_owner": ("e", "owner", "out", "cap"),
    "matchcore_cancel_by": ("b", "order_id", "owner"),
    "matchcore_modify_by": ("b", "order_id", "qty", "price", "owner"),
    "matchcore_engine_cancel_by": ("e", "symbol", "order_id", "owner"),
    "matchcore_engine_modify_by": ("e", "symbol", "order_id", "qty", "price", "owner"),
}


def _symbol(pyname: str) -> str:
    return "matchcore_" + pyname.replace("_raw", "")


_HANDLE_TYPES = {"b": (BookType, "an OrderBook or a book handle"),
                 "e": (EngineType, "an Engine or an engine handle")}


def _arg(cname, i):
    """'3 (price)': argument i of C function cname, counted from 0, with its name."""
    return f"{i} ({_PARAM_NAMES[cname][i]})"


def _check_arg(cname, i, kind, ty):
    if kind in _HANDLE_TYPES:
        cls, what = _HANDLE_TYPES[kind]
        if isinstance(ty, cls) or isinstance(ty, (types.Integer, types.IntEnumMember)):
            return
        raise TypingError(f"{cname}: argument {_arg(cname, i)} must be {what} (int), got {ty}")
    ok = (isinstance(ty, (types.Integer, types.Boolean, types.IntEnumMember)) or
          (kind == "p" and isinstance(ty, (types.Array, types.CPointer, types.RawPointer))))
    if not ok:
        raise TypingError(f"{cname}: argument {_arg(cname, i)} must be an integer"
                          + (" address or a numpy array" if kind == "p" else "") + f", got {ty}")
    if isinstance(ty, types.Array) and ty.layout != "C":
        raise TypingError(f"{cname}: argument {_arg(cname, i)} must be a C-contiguous array, "
                          f"got {ty}")
    out = _WRITES.get(cname)
    if out is not None and out[0] == i and isinstance(ty, types.Array):
        if not ty.mutable:
            raise TypingError(f"{cname}: argument {_arg(cname, i)} is written to and must be a "
                              f"writable array, got a read-only {ty}")
        if out[1] is not None and ty.dtype != out[1]:
            raise TypingError(f"{cname}: argument {_arg(cname, i)} must be an {out[1]} array "
                              f"(C writes {out[1]} values), got {ty}")


def _int_range(ty):
    if isinstance(ty, types.Boolean):
        return 0, 1
    return ((-(1 << (ty.bitwidth - 1)), (1 << (ty.bitwidth - 1)) - 1) if ty.signed
            else (0, (1 << ty.bitwidth) - 1))


def _fits(builder, ty, val, lo, hi):
    """i1: val (of integer type ty) lies in [lo, hi], or None when every value of ty does."""
    src_lo, src_hi = _int_range(ty)
    if lo <= src_lo and hi >= src_hi:
        return None
    ok = None
    cmp = builder.icmp_signed if ty.signed else builder.icmp_unsigned
    if lo > src_lo:
        ok = cmp(">=", val, ir.Constant(val.type, lo))
    if hi < src_hi:
        below = cmp("<=", val, ir.Constant(val.type, hi))
        ok = below if ok is None else builder.and_(ok, below)
    return ok


def _lower_arg(context, builder, kind, ty, val):
    """(the C argument, i1 "the value fits" or None). An integer that does not fit its C
    parameter is never wrapped into another value: a signed parameter (side, tif, stp,
    post_only, price, qty, ts_ns, a count) gets -1, which the C function refuses as it refuses
    any invalid value (a count of -1 is 0, or refused by drain_events_owner); for an unsigned
    one (order id, owner, symbol) the flag is returned and the caller does not call C at all."""
    if kind in _HANDLE_TYPES:
        if isinstance(ty, (BookType, EngineType)):
            return val, None
        return context.cast(builder, val, ty, types.uint64), None
    if kind != "p":
        target = _NB[kind]
        if isinstance(ty, types.IntEnumMember):
            val, ty = context.cast(builder, val, ty, ty.dtype), ty.dtype
        out = context.cast(builder, val, ty, target)
        ok = _fits(builder, ty, val, *_int_range(target))
        if ok is None or not target.signed:
            return out, ok
        return builder.select(ok, out, ir.Constant(out.type, -1)), None
    i8p = _LL["p"]
    if isinstance(ty, types.Array):
        return builder.bitcast(context.make_array(ty)(context, builder, val).data, i8p), None
    if isinstance(ty, (types.CPointer, types.RawPointer)):
        return builder.bitcast(val, i8p), None
    return builder.inttoptr(context.cast(builder, val, ty, types.intp), i8p), None


def _lower_args(context, builder, kinds, argtys, args):
    """The C arguments, and an i1 that is false when an unsigned one did not fit (or None)."""
    vals, ok = [], None
    for k, t, v in zip(kinds, argtys, args):
        c, fits = _lower_arg(context, builder, k, t, v)
        vals.append(c)
        if fits is not None:
            ok = fits if ok is None else builder.and_(ok, fits)
    return vals, ok


def _guarded(builder, ok, ret_type, refused, call):
    """call() when ok is None or true, else the constant refused (no C call)."""
    if ok is None:
        return call()
    out = cgutils.alloca_once(builder, ret_type)
    with builder.if_else(ok, likely=True) as (then, otherwise):
        with then:
            builder.store(call(), out)
        with otherwise:
            builder.store(refused, out)
    return builder.load(out)


def _call(builder, cname, ret, kinds, vals):
    fnty = ir.FunctionType(_LL[ret], [_LL[k] for k in kinds])
    fn = cgutils.get_or_insert_function(builder.module, fnty, cname)
    return builder.call(fn, vals)


def _clamp_count(context, builder, arrty, arrval, count, unit):
    """min(count, bytes the array holds // unit): the C function cannot write past the array."""
    arr = context.make_array(arrty)(context, builder, arrval)
    nbytes = builder.mul(arr.nitems, arr.itemsize)
    cap = builder.sdiv(nbytes, ir.Constant(nbytes.type, unit))
    cap = builder.sext(cap, count.type) if cap.type.width < count.type.width else cap
    return builder.select(builder.icmp_signed("<", count, cap), count, cap)


def _refuse_unaligned(context, builder, arrty, arrval, message):
    """Raise ValueError(message) when the array's data is not at an 8-byte aligned address.
    Numba's type of a record array does not say whether it is aligned (a packed dtype is
    aligned anywhere for numpy), and C reads and writes int64 fields there: one test of the
    address per call, as Python's depth_into() and process(out=) make."""
    arr = context.make_array(arrty)(context, builder, arrval)
    low = builder.and_(builder.ptrtoint(arr.data, ir.IntType(64)), ir.Constant(ir.IntType(64), 7))
    with builder.if_then(builder.icmp_unsigned("!=", low, ir.Constant(low.type, 0)),
                         likely=False):
        context.call_conv.return_user_exc(builder, ValueError, (message,))


def _typer(cname, ret, kinds, argtys, bounds=None, who=None):
    for i, (k, t) in enumerate(zip(kinds, argtys)):
        _check_arg(cname, i, k, t)

    def codegen(context, builder, sig, args):
        vals, ok = _lower_args(context, builder, kinds, sig.args, args)
        if bounds is not None and isinstance(sig.args[bounds[0]], types.Array):
            a, n, unit = bounds
            if unit % 8 == 0:
                # records and int64 values (not snapshot bytes): C needs them aligned
                _refuse_unaligned(
                    context, builder, sig.args[a], args[a],
                    f"{who or cname + ': argument ' + _arg(cname, a) + ' needs an array'} at "
                    f"an 8-byte aligned address, got an unaligned array")
            if n is None:
                # one record read from the array: an array too short for it is refused
                arr = context.make_array(sig.args[a])(context, builder, args[a])
                nbytes = builder.mul(arr.nitems, arr.itemsize)
                long_enough = builder.icmp_signed(">=", nbytes, ir.Constant(nbytes.type, unit))
                ok = long_enough if ok is None else builder.and_(ok, long_enough)
            else:
                vals[n] = _clamp_count(context, builder, sig.args[a], args[a], vals[n], unit)
        # refused: -MC_R_INVALID_COMMAND, or the handle / hash 0 of the unsigned results
        refused = ir.Constant(_LL[ret], 0 if ret in ("b", "e", "u64") else -_R_INVALID_COMMAND)
        return _guarded(builder, ok, _LL[ret], refused,
                        lambda: _call(builder, cname, ret, kinds, vals))

    return signature(_NB[ret], *argtys), codegen


def _define(pyname, ret, kinds, who=None):
    # who: the array helper that calls it, named with its array in the message of an
    # unaligned array ("depth_into() needs out")
    # The parameters carry the header's names: Numba reports a missing argument by its name
    # (named a5, a6, a7 they told nothing), and a call may pass them as keywords (owner=,
    # post_only=), as the Python methods take them.
    names = _PARAM_NAMES[_symbol(pyname)]
    params = ", ".join(names)
    src = (f"def {pyname}(typingctx, {params}):\n"
           f"    return _typer({_symbol(pyname)!r}, {ret!r}, {tuple(kinds)!r}, ({params},),\n"
           f"                  {_BOUNDS.get(pyname)!r}, {who!r})\n")
    ns = {"_typer": _typer}
    exec(src, ns)
    fn = intrinsic(ns[pyname])
    fn.__doc__ = (f"Calls C ``{_symbol(pyname)}({params})``; see the "
                  f"``{pyname.replace('_raw', '')}`` field of mc_api_v2 in matchcore.h.")
    return fn


for _pyname, (_ret, _kinds) in _SIGS.items():
    globals()[_pyname] = _define(_pyname, _ret, _kinds)
    __all__.append(_pyname)


def _out_tuple(cname, fixed_kinds, out_kinds):
    """An intrinsic that passes stack slots for the C out-parameters and returns
    (C result, *out values)."""

    def make(argtys):
        for i, (k, t) in enumerate(zip(fixed_kinds, argtys)):
            _check_arg(cname, i, k, t)
        rty = types.Tuple([types.int32] + [_NB[k] for k in out_kinds])

        def codegen(context, builder, sig, args):
            vals, ok = _lower_args(context, builder, fixed_kinds, sig.args, args)
            slots = [cgutils.alloca_once_value(builder, ir.Constant(_LL[k], 0))
                     for k in out_kinds]
            fnty = ir.FunctionType(ir.IntType(32), [_LL[k] for k in fixed_kinds]
                                   + [_LL[k].as_pointer() for k in out_kinds])
            fn = cgutils.get_or_insert_function(builder.module, fnty, cname)
            found = _guarded(builder, ok, ir.IntType(32),
                             ir.Constant(ir.IntType(32), -_R_INVALID_COMMAND),
                             lambda: builder.call(fn, vals + slots))
            items = [found] + [builder.load(s) for s in slots]
            return context.make_tuple(builder, rty, items)

        return signature(rty, *argtys), codegen

    return make


_best = _out_tuple("matchcore_best", ("b", "i"), ("i64", "i64"))
_get = _out_tuple("matchcore_get", ("b", "u64"), ("i", "i64", "i64"))
_engine_get = _out_tuple("matchcore_engine_get", ("e", "u64"), ("u32", "i", "i64", "i64"))


@intrinsic
def best(typingctx, book, side):
    """(found, price, level qty) of a side's best level; found is 1, 0 when the side is empty,
    -MC_R_INVALID_SIDE (-3) for a side other than 0 / 1, or -ERR_HANDLE for a dead handle."""
    return _best((book, side))


@intrinsic
def get(typingctx, book, order_id):
    """(found, side, price, open qty) of a resting order; found is 1, 0 if it is not resting,
    or -ERR_HANDLE for a dead handle."""
    return _get((book, order_id))


@intrinsic
def engine_get(typingctx, engine, order_id):
    """(found, symbol, side, price, open qty) of an order resting in any of the engine's books
    (found as for :func:`get`)."""
    return _engine_get((engine, order_id))


# ---- array helpers: the size passed to C is the array's own ----

def _records_check(dtype, name, what):
    # An intrinsic that refuses, while typing, an array whose records are not `dtype`: C reads
    # and writes the array as those records, so the bytes of an int64 or float64 array were
    # applied to the book as commands (orders with made-up ids, prices and quantities), or
    # events were written over values of another type. OrderBook.process() refuses them too.
    # The records' layout is compared, not the Numba type: a dtype declared with align=True
    # (the same fields at the same offsets, equal to `dtype` for numpy and process()) is
    # another Record type only by its aligned flag.
    # It returns the records' count, -1 for an array that is not 1-D, so that the helpers
    # read no attribute of the argument themselves: Numba types `x.ndim` / `x.shape` of a
    # single record (`cmds[0]`) while the refusal above is pending, and that failed with a
    # bare `KeyError: 'ndim'` from inside Numba instead of this typing error.
    record = from_dtype(dtype)

    def layout(rec):
        return (rec.size, [(k, f.type, f.offset) for k, f in rec.fields.items()])

    def check(typingctx, arr):
        if (not isinstance(arr, types.Array) or not isinstance(arr.dtype, types.Record)
                or layout(arr.dtype) != layout(record)):
            raise TypingError(f"{what} needs an array of matchcore.{name}, got {arr}")

        def codegen(context, builder, sig, args):
            if sig.args[0].ndim != 1:
                return context.get_constant(types.intp, -1)
            ary = context.make_array(sig.args[0])(context, builder, args[0])
            return cgutils.unpack_tuple(builder, ary.shape)[0]

        return signature(types.intp, arr), codegen

    return intrinsic(check)


# the intrinsics the array helpers below call, refusing an unaligned array in their words
_depth_of = _define("depth", *_SIGS["depth"], who="depth_into() needs out")
_drain_of = _define("drain_events_raw", *_SIGS["drain_events_raw"],
                    who="drain_events() needs out")
_drain_owner_of = _define("drain_events_owner_raw", *_SIGS["drain_events_owner_raw"],
                          who="drain_events_owner() needs out")
_process_of = _define("process_raw", *_SIGS["process_raw"], who="process() needs commands")
_engine_drain_of = _define("engine_drain_events_raw", *_SIGS["engine_drain_events_raw"],
                           who="engine_drain_events() needs out")
_engine_drain_owner_of = _define("engine_drain_events_owner_raw",
                                 *_SIGS["engine_drain_events_owner_raw"],
                                 who="engine_drain_events_owner() needs out")
_engine_process_of = _define("engine_process_raw", *_SIGS["engine_process_raw"],
                             who="engine_process() needs commands")

_commands_process = _records_check(COMMAND_DTYPE, "COMMAND_DTYPE", "process()")
_commands_engine_process = _records_check(COMMAND_DTYPE, "COMMAND_DTYPE", "engine_process()")
_events_drain = _records_check(EVENT_DTYPE, "EVENT_DTYPE", "drain_events()")
_events_drain_owner = _records_check(EVENT_DTYPE, "EVENT_DTYPE", "drain_events_owner()")
_events_engine_drain = _records_check(EVENT_DTYPE, "EVENT_DTYPE", "engine_drain_events()")
_events_engine_drain_owner = _records_check(EVENT_DTYPE, "EVENT_DTYPE",
                                            "engine_drain_events_owner()")


@intrinsic
def _depth_rows(typingctx, out):
    # The rows of depth_into's out, -1 when it is not of shape (k, 2). Checked while typing
    # before any attribute of it is read: out.ndim of None, an int or a record (evbuf[0]) failed
    # with Numba's "Unknown attribute 'ndim'" from inside this module instead of these words.
    if not isinstance(out, types.Array):
        raise TypingError(f"depth_into() needs an int64 array of shape (k, 2), got {out}")

    def codegen(context, builder, sig, args):
        if sig.args[0].ndim != 2:
            return context.get_constant(types.intp, -1)
        shape = cgutils.unpack_tuple(
            builder, context.make_array(sig.args[0])(context, builder, args[0]).shape)
        two = builder.icmp_signed("==", shape[1], ir.Constant(shape[1].type, 2))
        return builder.select(two, shape[0], ir.Constant(shape[0].type, -1))

    return signature(types.intp, out), codegen


@njit(cache=True)
def depth_into(book, side, out):
    """Write up to out.shape[0] levels of one side, best first, into an int64 array of shape
    (k, 2) [price, qty]; returns the count written (-ERR_HANDLE for a dead handle). No
    allocation."""
    k = _depth_rows(out)
    if k < 0:
        raise ValueError("depth_into needs an int64 array of shape (k, 2)")
    return _depth_of(book, side, k, out)


@njit(cache=True)
def drain_events(book, out):
    """Move up to len(out) pending events into a 1-D EVENT_DTYPE array; returns the count.
    Events that do not fit stay pending."""
    n = _events_drain(out)
    if n < 0:
        raise ValueError("drain_events() needs a 1-D array of events")
    return _drain_of(book, out, n)


@njit(cache=True)
def drain_events_owner(book, owner, out):
    """Move up to len(out) of owner's pending events (own orders, fills as maker) into out,
    dropping the other events before them; returns the count."""
    n = _events_drain_owner(out)
    if n < 0:
        raise ValueError("drain_events_owner() needs a 1-D array of events")
    return _drain_owner_of(book, owner, out, n)


@njit(cache=True)
def process(book, commands):
    """Apply a 1-D array of COMMAND_DTYPE records; returns how many were applied."""
    n = _commands_process(commands)
    if n < 0:
        raise ValueError("process() needs a 1-D array of commands")
    return _process_of(book, commands, n)


@njit(cache=True)
def engine_drain_events(engine, out):
    """Engine version of :func:`drain_events`."""
    n = _events_engine_drain(out)
    if n < 0:
        raise ValueError("engine_drain_events() needs a 1-D array of events")
    return _engine_drain_of(engine, out, n)


@njit(cache=True)
def engine_drain_events_owner(engine, owner, out):
    """Engine version of :func:`drain_events_owner`."""
    n = _events_engine_drain_owner(out)
    if n < 0:
        raise ValueError("engine_drain_events_owner() needs a 1-D array of events")
    return _engine_drain_owner_of(engine, owner, out, n)


@njit(cache=True)
def engine_process(engine, commands):
    """Engine version of :func:`process`."""
    n = _commands_engine_process(commands)
    if n < 0:
        raise ValueError("engine_process() needs a 1-D array of commands")
    return _engine_process_of(engine, commands, n)


def event_buffer(n: int) -> np.ndarray:
    """An empty EVENT_DTYPE array of n records, for the drain helpers (allocate once, reuse)."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def command_buffer(n: int) -> np.ndarray:
    """A zeroed COMMAND_DTYPE array of n records."""
    return np.zeros(n, dtype=COMMAND_DTYPE)
