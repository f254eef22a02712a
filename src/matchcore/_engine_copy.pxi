# Part of matchcore._engine (included by _engine.pyx, one C unit): copies and pickles of an
# Engine, and its hold as a context manager for the readers written in Python.

def _engine_of_class(cls, stp, record_events=True, new_args=None):
    """``cls.__new__`` with Engine's arguments, as copies, unpickling, recovery and snapshot
    loading make an engine (without calling a subclass's ``__init__``): a subclass's
    ``__cinit__`` takes none (they are its ``__init__``'s), its engine is set up here.
    ``new_args``: the ``(args, kwargs)`` a subclass's own ``__new__`` is called with, from its
    ``__getnewargs__`` / ``__getnewargs_ex__`` (``_subclass_new_args``); None: none."""
    cdef Engine eng
    if cls is Engine:
        eng = Engine.__new__(Engine, stp, record_events=record_events)
        eng._init_due = 0           # no __init__ call follows: a later one is a second one
        return eng
    eng = _subclass_new(cls, new_args, "Engine")
    if eng._e != NULL and (eng._books or eng._jc is not None or eng._e.now_ns != 0
                           or eng._e.n_ev != 0 or eng.recovery_report is not None):
        # a __new__ that hands out one engine per key (the original itself, say): set up
        # anew it would lose its state, and _setup's refusal named an __init__ never called
        raise ValueError(f"{cls.__name__}.__new__ returned an engine already in use (symbols, "
                         f"journal, events or clock): a copy, unpickled, recovered or loaded "
                         f"engine must be a new one")
    eng._setup(stp, record_events, None, None, {})
    return eng


cdef object _engine_reduce(Engine eng):
    # Engine.__reduce__
    _check_copyable(eng)
    cls = type(eng)
    # a subclass's __getnewargs__ is its own code: asked before the hold, and checked (as
    # pickle checks it) before anything is read
    new_args = None if cls is Engine else _subclass_new_args(eng)
    cdef mc_engine* e = eng._e
    cdef OrderBook book
    cdef int64_t n_ev
    symbols = []
    # Everything is read under the hold, as one state: no other thread's call comes between
    # two books. The books are pickled as objects too (a book held beside its engine comes
    # back as its book); each gives the pickler the very state read here when it still holds
    # it (OrderBook._pickled, a weak reference: nothing is kept once the pickling is over),
    # which the pickle then stores once.
    cdef int nested = mc_engine_hold(e)
    try:
        for entry in _symbol_entries(eng):
            book = entry[4]
            symbols.append(entry + (mc_book_held_state(book, mc_book_pickle_args(book)),))
        n_ev = e.n_ev if eng.record_events else 0
        try:
            events = PyBytes_FromStringAndSize(<char*>e.ev, n_ev * sizeof(mc_event))
        except MemoryError:
            # (CPython's bare MemoryError said nothing of what ran out)
            raise MemoryError(f"matchcore: out of memory pickling the engine's {n_ev:,} "
                              f"pending events ({n_ev * <int64_t>sizeof(mc_event):,} bytes; "
                              f"events() reads and drops them); the engine is "
                              f"unchanged") from None
        now_ns = e.now_ns
    finally:
        mc_engine_unhold(e, nested)
    args = (_PICKLE_FORMAT, eng._stp, eng.record_events, now_ns, symbols, events,
            eng.recovery_report, None if cls is Engine else cls)
    if new_args is not None:
        # (only then: the pickles of other engines hold what they held before)
        args += (new_args,)
    return _engine_from_pickle, args, None if cls is Engine else _subclass_state(eng)


cdef object _engine_deepcopy(Engine eng, memo):
    # Engine.__deepcopy__
    _check_copyable(eng)
    import copy
    cls = type(eng)
    # the arguments of a subclass's __new__ deeply, as copy.deepcopy takes those of any object
    new_args = None if cls is Engine else _subclass_new_args(eng)
    if new_args is not None:
        new_args = copy.deepcopy(new_args, memo)
    cdef Engine twin = _engine_of_class(cls, eng._stp, eng.record_events, new_args)
    memo[id(eng)] = twin
    cdef mc_engine* e = eng._e
    cdef OrderBook book, dup
    cdef int nested = mc_engine_hold(e)
    try:
        for sym, name, capacity, limits, book in _symbol_entries(eng):
            dup = memo.get(id(book))
            if dup is None:
                dup = _OrderBook(eng._stp, record_events=book.record_events, capacity=0)
                memo[id(book)] = dup
            mc_book_copy_into(dup, book)
            _adopt(twin, sym, name, capacity, dict(zip(_LIMIT_NAMES, limits)), dup)
        twin._reindex()
        twin._e.now_ns = e.now_ns
        if eng.record_events and e.n_ev > 0:
            if _reserve(twin._e, e.n_ev) < 0:
                raise _pending_oom(e.n_ev)
            memcpy(twin._e.ev, e.ev, e.n_ev * sizeof(mc_event))
            twin._e.n_ev = e.n_ev
    finally:
        mc_engine_unhold(e, nested)
    # not the engine's state: copied once it is released
    twin.recovery_report = copy.deepcopy(eng.recovery_report, memo)
    if cls is not Engine:
        _set_subclass_state(twin, copy.deepcopy(_subclass_state(eng), memo))
    return twin


cdef object _pending_oom(int64_t n_ev):
    # a copy's or unpickled engine's room for the original's pending events (a bare
    # MemoryError() said nothing of what ran out)
    return MemoryError(f"matchcore: out of memory for the engine's {n_ev:,} pending events "
                       f"(events() reads and drops them)")


cdef list _symbol_entries(Engine eng):
    # (symbol, name, capacity, limits in _LIMIT_NAMES order, book) per slot: what a copy
    # or pickle of the engine takes of each symbol
    cdef mc_engine* e = eng._e
    cdef int32_t k
    cdef uint32_t sym
    cdef mc_symbol_cfg* c
    out = []
    for k in range(e.n_books):
        sym = e.symbols[k]
        c = &e.cfg[k]
        out.append((sym, eng._names.get(sym), eng._capacity.get(sym, 0),
                    (c.tick, c.min_price, c.max_price, c.ref_price, c.band, c.max_qty,
                     c.max_notional),
                    eng._books[k]))
    return out

cdef int _check_copyable(Engine eng) except -1:
    _check_busy(eng._e)
    if eng._jc is not None and eng._jc.closed:
        # (the words for an open engine were wrong here: close() released the LOCK, and the
        # eng.sync() they offered raises for a closed journal)
        raise TypeError(
            f"cannot pickle or copy an Engine with a journal attached ({eng._jc.path!r}, "
            f"closed): a copy would look journaled, its state tied to that directory. For "
            f"an unjournaled copy of the state its journal holds: "
            f"Engine.recover(DIR, readonly=True); for a durable one: copy the directory, "
            f"Engine.recover(COPY)")
    if eng._jc is not None:
        raise TypeError(
            f"cannot pickle or copy an Engine with a journal attached ({eng._jc.path!r}): "
            f"a copy would either journal nothing while looking durable, or write into the "
            f"same journal directory, which this engine holds LOCKed, and corrupt it. For "
            f"an unjournaled copy of its state: eng.sync(), then "
            f"Engine.recover(DIR, readonly=True) (works while this engine runs); for a "
            f"durable one: eng.close(), copy the directory, Engine.recover(COPY)")
    return 0

cdef _adopt(Engine eng, uint32_t sym, name, int64_t capacity, dict limits, OrderBook book):
    # Unpickling: register an already built book under `sym` (add_symbol without making
    # the book). No journal exists on a new engine, so nothing is journaled. The order-id
    # routing is left to the caller's _reindex() over every book: routed as the second book
    # came in as well, the first book's orders were routed twice, and two routing tables
    # were held at once (an engine that fitted in memory could not be unpickled).
    if sym in eng._by_id:
        raise ValueError(f"pickled Engine: symbol {sym} appears twice")
    if name is not None and name in eng._by_name:
        # (this said "symbol 2 appears twice" of symbols 1 and 2, one name for both)
        raise ValueError(f"pickled Engine: symbols {eng._by_name[name]} and {sym} are both "
                         f"named {name!r}")
    if book._b.stp != eng._stp:
        raise ValueError(f"pickled Engine: the book of symbol {sym} has another STP mode")
    if type(book) is not _OrderBook:
        # a subclass's attributes could refer back to the engine through its books, which
        # the engine holds out of the collector's sight (see _books_hold): a leak
        raise TypeError(f"pickled Engine: symbol {sym} holds {type(book).__name__}, not an "
                        f"OrderBook")
    if book._b.guard & MC_GUARD_HOSTED:
        # one book, one host: a book listed twice would be driven by two slots
        raise ValueError(f"pickled Engine: the book of symbol {sym} already belongs to an "
                         f"engine or replayer")
    eng._register(sym, name, capacity, limits, book, False)


def _engine_from_pickle(fmt, stp, record_events, now_ns, symbols, events, recovery_report,
                        cls=None, new_args=None):
    """Rebuild a pickled :class:`Engine` (``Engine.__reduce__``), of class ``cls`` (a subclass,
    made without calling its ``__init__``, as pickle does; its ``__new__`` called with
    ``new_args``, the ``(args, kwargs)`` its ``__getnewargs__`` gave) when given."""
    _check_pickle_format(fmt, "Engine")
    if cls is None:
        cls = Engine
    elif not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise TypeError(f"pickled Engine: {cls!r} is not an Engine class")
    # (record_events checked by the constructor: a bint parameter took 7 for True)
    cdef Engine eng = _engine_of_class(cls, stp, record_events, new_args)
    cdef mc_engine* e = eng._e
    for entry in symbols:
        # (format 2: and the book's state as the engine's hold read it)
        sym, name, capacity, limits, book = entry[:5]
        # as add_symbol checks it, but for a figure above 2**30 (up to int64): recovery and
        # snapshot loading keep the one a journal or snapshot holds, unallocated (see
        # recovery._apply_config), and copies keep it too; such an engine's pickle could not
        # be read back. The book comes from its own pickle: nothing is allocated for it here.
        if mc_i64_arg(capacity, "capacity") <= _MAX_CAPACITY:
            capacity = mc_capacity_arg(capacity, "capacity")
        name = _symbol_name(name)
        limits = tuple(limits)
        if len(limits) != len(_LIMIT_NAMES):
            # read with zip(), a short tuple dropped its last limits (no limit, unseen)
            raise SnapshotError(MC_SNAP_E_CORRUPT,
                                f"pickled Engine: symbol {sym} holds {len(limits)} limits, not "
                                f"{len(_LIMIT_NAMES)} ({', '.join(_LIMIT_NAMES)})")
        state = entry[5] if len(entry) > 5 else None
        if isinstance(state, _HeldState):
            # (the arguments of a __reduce__ called in this process, not pickled)
            state = state.args
        if not isinstance(book, _OrderBook):
            raise TypeError(f"pickled Engine: symbol {sym} holds {type(book).__name__}, "
                            f"not an OrderBook")
        if state is not None and (<OrderBook>book)._unpickled_from != id(state[1]):
            # the book object was pickled at another moment than its engine (before it, or
            # another thread's call came before the pickler reached it): it takes the state
            # read with the engine's
            mc_book_copy_into(book, _book_from_pickle(*state))
        (<OrderBook>book)._unpickled_from = 0
        _adopt(eng, _symbol_id(sym), name, capacity,
               _check_limits(dict(zip(_LIMIT_NAMES, limits))), book)
    try:
        eng._reindex()
    except ValueError as exc:
        raise ValueError(f"pickled Engine: {exc}") from None
    e.now_ns = mc_i64_arg(now_ns, "now_ns")
    cdef const uint8_t[::1] ev = memoryview(events).cast("B")
    cdef int64_t n_ev = ev.shape[0] // <int64_t>sizeof(mc_event)
    if ev.shape[0] % <int64_t>sizeof(mc_event) != 0:
        raise SnapshotError(MC_SNAP_E_CORRUPT, "pickled Engine: pending events are truncated")
    if n_ev > 0:
        if _reserve(e, n_ev) < 0:
            raise _pending_oom(n_ev)
        memcpy(e.ev, &ev[0], n_ev * sizeof(mc_event))
        e.n_ev = n_ev
    eng.recovery_report = recovery_report
    return eng


cdef class _EngineHold:
    # Engine._holding(): the hold as a context manager, for the readers written in Python. One
    # object may be entered again inside itself: each exit releases what its own enter took
    # (a single flag, overwritten by the inner enter, left the engine held for good), and an
    # exit without an enter releases nothing.
    cdef Engine eng
    cdef list nested
    cdef str call

    def __enter__(self):
        cdef int n = mc_engine_hold(self.eng._e, self.call)
        self.nested.append(n)
        return self.eng

    def __exit__(self, *exc):
        if self.nested:
            mc_engine_unhold(self.eng._e, self.nested.pop())
        return False
