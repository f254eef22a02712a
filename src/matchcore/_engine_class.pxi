# Part of matchcore._engine (included by _engine.pyx, one C unit): the Engine class.

# ==============================================================================================
# Python face
# ==============================================================================================

cdef object _raise(int64_t code, uint64_t oid):
    if code == -MC_ERR_NOMEM:
        raise MemoryError("matchcore: out of memory; the engine is unchanged")
    raise OrderRejected(-code, oid)


cdef object _events_array(const mc_event* src, int64_t n):
    cdef cnp.ndarray out = np.empty(n, dtype=EVENT_DTYPE)
    if n > 0:
        memcpy(cnp.PyArray_DATA(out), src, n * sizeof(mc_event))
    return out


# The defaults of tif, owner and ts_ns (and an explicit 0) are the interpreter's cached 0: a
# pointer compare reads them (as in _core).
cdef object _ZERO = 0


# Bound by _Params so that a wrong argument names Engine, not __cinit__ (as _BOOK_PARAMS in
# _core); the docstring's first line is the same list. Other keywords are journal options.
_ENGINE_PARAMS = _Params("Engine", (("stp", STP.CANCEL_RESTING),),
                         (("record_events", True), ("journal", None), ("fsync", None)),
                         var_keyword=True)


# no tp_clear: __dealloc__ needs self._books to unhook the books from the engine's busy byte
@cython.no_gc_clear
cdef class Engine:
    """Engine(stp=STP.CANCEL_RESTING, *, record_events=True, journal=None, fsync=None, **journal_options)
--

    Several order books, one per integer symbol id, behind one order-id space.

    Orders name their symbol; cancels and modifies find the book by order id. An id that rests
    in any book is a duplicate in every book. Each symbol has optional limits checked before
    its book sees an order (rejects: ``PRICE_NOT_ON_TICK``, ``PRICE_OUTSIDE_BAND``,
    ``QTY_ABOVE_MAX``, ``NOTIONAL_ABOVE_MAX``; an unknown symbol: ``UNKNOWN_SYMBOL``). Events
    carry the symbol. The per-call methods, :meth:`process` and the C/Numba entry points run the
    same compiled functions. O(1) routing per operation.

    Durability (:mod:`matchcore.durability`): ``Engine(journal=DIR, fsync="batch")`` appends
    every inbound command (accepted or rejected, with its seq, a wall-clock timestamp and its
    outcome) and every config change to a CRC-checked, segmented journal before the call
    returns, and every fill to a trade journal; ``fsync`` is ``"always"`` (each call returns
    after fdatasync), ``"batch"`` (group commit by a syncer thread every ``batch_us`` µs or
    ``batch_records`` records; :meth:`sync` forces it) or ``"never"`` (write(2) only: survives a
    process crash, not a power loss). Options: ``segment_bytes`` (default 64 MiB),
    ``batch_records`` (4096), ``batch_us`` (2000), ``buffer_bytes`` (1 MiB), ``trades`` (True).
    :meth:`snapshot` and :meth:`recover` complete it.

    >>> eng = Engine()
    >>> _ = eng.add_symbol(1, "AAA", tick=5)
    >>> eng.submit(1, 10, 0, 100, 3)
    0
    >>> eng.submit("AAA", 11, 1, 100, 1)
    1
    >>> eng.get(10)
    (1, 0, 100, 2)
    """
    cdef mc_engine* _e
    cdef list _books
    cdef dict _by_id
    cdef dict _by_name
    cdef dict _names
    cdef int _stp
    cdef readonly bint record_events
    cdef dict _capacity
    # durability (matchcore.durability): the command journal and the trade capture journal
    cdef JournalWriter _jc
    cdef JournalWriter _jt
    cdef mc_journal* _jcp
    cdef mc_journal* _jtp
    cdef public object recovery_report
    # A second reference to self._books that tp_traverse does not report: the cyclic GC then
    # sees the list as referenced from outside and never clears it, so that __dealloc__ still
    # finds every book to unhook (a list emptied first, when the engine is in a reference
    # cycle, left a book held elsewhere pointing at the freed engine's busy byte).
    cdef PyObject* _books_hold
    # weak references to the engine (weakref.ref, WeakValueDictionary): as for Python objects
    cdef object __weakref__
    # Engine(...) itself: set by __cinit__ for the __init__ call of the same construction (as
    # OrderBook._init_due: MC_INIT_TAKEN or MC_INIT_BARE); a later __init__ call sets the
    # engine up anew as a subclass's does
    cdef uint8_t _init_due

    def __cinit__(self, *args, **kwargs):
        # A subclass's arguments are its own __init__'s (which may take others): it is made
        # here with Engine's defaults and set up by Engine.__init__ with the arguments the
        # subclass passes on (or that it is called with, if it is inherited).
        if type(self) is Engine:
            stp, record_events, journal, fsync, journal_options = _ENGINE_PARAMS.bind(args, kwargs)
        else:
            stp, record_events, journal, fsync, journal_options = _ENGINE_PARAMS.bind((), {})
        self._setup(stp, record_events, journal, fsync, journal_options)
        if type(self) is Engine:
            self._init_due = MC_INIT_TAKEN if args or kwargs else MC_INIT_BARE

    # (no signature embedded: the class's docstring starts with the constructor's own)
    @cython.embedsignature(False)
    def __init__(self, *args, **kwargs):
        # Engine(...) itself took its arguments in __cinit__. A second call (eng.__init__(...))
        # was ignored, bad arguments and all: it is set up anew as a subclass's is.
        cdef uint8_t due = self._init_due
        if due:
            self._init_due = 0
            if due == MC_INIT_TAKEN or not (args or kwargs):
                return
        stp, record_events, journal, fsync, journal_options = _ENGINE_PARAMS.bind(args, kwargs)
        self._setup(stp, record_events, journal, fsync, journal_options)

    cdef int _setup(self, stp, record_events, journal, fsync, dict journal_options) except -1:
        # The constructor's arguments checked, then applied: to the engine made here, or (a
        # subclass's Engine.__init__) to the default one its __cinit__ made, if still unused.
        cdef int mode = mc_stp_arg(stp)
        cdef bint recording = mc_bool_arg(record_events, "record_events")
        if journal_options:
            # the journal writer's own parameters (next_seq, new, ...) are no options: passed
            # on, they made a journal that recovery refuses
            from matchcore.durability.journal import check_journal_option_names
            check_journal_option_names(journal_options)
        if journal is None and (journal_options or fsync is not None):
            raise TypeError(f"journal options {sorted(journal_options) or ['fsync']} need "
                            f"journal=DIR")
        if self._e != NULL:
            _check_busy(self._e)
            if (self._books or self._jc is not None or self._e.now_ns != 0
                    or self._e.n_ev != 0 or self.recovery_report is not None):
                raise ValueError(f"{type(self).__name__}.__init__(): the engine is already in "
                                 f"use (symbols, journal, events or clock): setting it up "
                                 f"anew would drop them")
        else:
            self._e = mc_engine_new()
            if self._e == NULL:
                raise MemoryError()
            self._e.handle = mc_handle_new(self._e, MC_H_ENGINE, 0)
            if self._e.handle == 0:
                mc_engine_free(self._e)
                self._e = NULL
                raise MemoryError("matchcore: no handle left for a new engine")
            self._books = []
            Py_INCREF(self._books)
            self._books_hold = <PyObject*>self._books
            self._by_id = {}
            self._by_name = {}
            self._names = {}
            self._capacity = {}
            self._jcp = NULL
            self._jtp = NULL
        if journal is not None:
            from matchcore.durability.journal import open_writers
            # the journal starts from this empty engine: its first segment says so
            jc, jt = open_writers(journal, mode, "batch" if fsync is None else fsync, new=True,
                                  base_hash=mc_engine_state_hash(self._e), **journal_options)
        # An engine that records no events writes none, whoever calls it (Python, C, Numba).
        self._e.emit = 1 if recording else 0
        self._stp = mode
        self.record_events = recording
        if journal is not None:
            self._attach_journal(jc, jt)
        return 0

    def __dealloc__(self):
        # a writer may outlive its engine (eng.journal kept): it no longer points at its byte
        if self._jc is not None:
            self._jc.host_busy = NULL
        if self._jt is not None:
            self._jt.host_busy = NULL
        if self._e != NULL:
            # The handle dies first: every C/Numba call with it is refused from here on. The
            # books are the OrderBook objects in self._books: they are released with them (a
            # book still referenced elsewhere, e.g. eng.book(s), lives on as a standalone book).
            mc_handle_release(self._e.handle)
            if self._books is not None:
                for book in self._books:
                    mc_book_host((<OrderBook>book)._b, NULL)
        mc_engine_free(self._e)
        self._e = NULL
        Py_XDECREF(self._books_hold)
        self._books_hold = NULL

    # ---- symbols ----

    def add_symbol(self, symbol, name=None, *, capacity=1024, **limits):
        """Add a book for integer symbol id ``symbol`` (in [0, 2**32)), optionally named (a
        ``str``, ``TypeError`` otherwise; unique, at most 4096 bytes in UTF-8, ``ValueError`` for
        one that cannot be encoded, e.g. a lone surrogate); returns
        the :class:`OrderBook`, for queries: its own order entry raises
        :class:`~matchcore.ReadOnlyBookError` (orders go through the engine). ``limits`` as in
        :meth:`set_limits`, checked the same way (merged into no limits): an ``add_symbol`` that
        raises adds no symbol. O(capacity): the new book's pools and id index are set up for
        it; the second symbol also routes the first one's resting orders, O(those orders).

        >>> eng = Engine(); book = eng.add_symbol(7, "XYZ", max_qty=100); len(book)
        0
        """
        return self._add_symbol(symbol, name, capacity, limits, True)

    def _add_symbol(self, symbol, name, capacity, dict limits, bint consistent):
        # add_symbol. Recovery and snapshot loading pass consistent=False: a journal or snapshot
        # holds limits the engine once accepted, perhaps contradictory ones (earlier versions
        # took them), and they are restored as written; the type and range checks still apply.
        # Everything is checked before the engine changes: a call that raises leaves no symbol
        # behind and nothing to journal, so recovery replays exactly what the engine did.
        cdef uint32_t sym = _symbol_id(symbol)
        cdef int64_t cap = mc_capacity_arg(capacity, "capacity")
        limits = _check_limits(limits)
        if consistent:
            _check_limit_set(sym, dict(_NO_LIMITS, **limits))
        if sym in self._by_id:
            raise ValueError(f"symbol {sym} already exists")
        name = _symbol_name(name)
        if name is not None and name in self._by_name:
            raise ValueError(f"symbol name {name!r} already exists")
        cdef OrderBook book
        # Held (another thread's call raises BusyError) from the change to its journal record:
        # the record is appended without the GIL, and a command journaled meanwhile by another
        # thread wrote into the same buffer (a sequence break that recovery refuses), or came
        # between the change and its record (replayed against the engine before the change).
        cdef int nested = mc_engine_hold(self._e, "add_symbol()")
        try:
            self._check_journal()
            # A book writes events when its engine does (record_events, or trade capture).
            book = _OrderBook(self._stp, record_events=self._e.emit != 0, capacity=cap)
            self._register(sym, name, cap, limits, book)
            if self._jc is not None:
                # the engine's own limits, not a subclass's view of them through limits():
                # an override returning another type raised here, after the symbol was added
                # and before its record, and the engine took orders the journal cannot replay
                lim = self._limits_at(self._slot(sym))
                self._jc._append_config(2, sym, [lim[x] for x in _LIMIT_NAMES], capacity=cap,
                                        name=name)
        finally:
            mc_engine_unhold(self._e, nested)
        return book

    cdef _register(self, uint32_t sym, name, int64_t capacity, dict limits, OrderBook book,
                   bint route=True):
        # add_symbol's and unpickling's one way of making a book the engine's: routed, named,
        # hosted (the book is busy while its engine is, and the engine while it is), limited.
        # route=False: the caller calls _reindex() once every book is in (see _adopt)
        cdef int32_t k = mc_engine_add_book(self._e, sym, book._b, route)
        if k == -2:
            # (a bare MemoryError() said nothing; mc_engine_add_book leaves the engine as it was)
            routing = (f" (a second symbol routes the first one's "
                       f"{mc_engine_count(self._e):,} resting orders by id)"
                       if self._e.n_books == 1 and route else "")
            raise MemoryError(f"matchcore: out of memory adding symbol {sym}{routing}; the "
                              f"symbol was not added")
        mc_book_host(book._b, &self._e.busy)
        book._b.engine_owned = 1
        self._books.append(book)
        self._by_id[sym] = book
        self._capacity[sym] = capacity
        if name is not None:
            self._by_name[name] = sym
            self._names[sym] = name
            self._e.names_hash += _name_hash(sym, name)
        self._apply_limits(k, limits)

    cdef _apply_limits(self, int32_t k, dict limits):
        cdef mc_symbol_cfg* c = &self._e.cfg[k]
        if "tick" in limits: c.tick = limits["tick"]
        if "min_price" in limits: c.min_price = limits["min_price"]
        if "max_price" in limits: c.max_price = limits["max_price"]
        if "ref_price" in limits: c.ref_price = limits["ref_price"]
        if "band" in limits: c.band = limits["band"]
        if "max_qty" in limits: c.max_qty = limits["max_qty"]
        if "max_notional" in limits: c.max_notional = limits["max_notional"]
        c.on = _cfg_on(c)

    def set_limits(self, symbol, **limits):
        """Set a symbol's limits (only those given; 0 disables one, ``tick=1`` accepts every
        price). Prices in ticks.

        ``tick``: prices must be multiples of it; ``min_price``/``max_price``: absolute band;
        ``ref_price`` and ``band``: prices outside ``ref_price +- band`` are refused (move the
        band with :meth:`set_reference_price`; the band is inactive while either is 0);
        ``max_qty``: largest order qty; ``max_notional``: largest ``price * qty`` of a limit
        order. Checked in this order, after the basic field checks of the book (qty, price,
        side, TIF) and before the duplicate-id check. Market orders are checked against
        ``max_qty`` only. A modify is checked when it re-enters the order (new price or larger
        qty); shrinking in place always passes. O(1).

        Each value is an integer (``TypeError`` otherwise) in [0, 2**63) (``ValueError`` below,
        ``OverflowError`` above; ``tick`` >= 1). The limits that result, the given ones merged
        into the symbol's others, must accept some limit order: ``ValueError`` for
        ``min_price`` above ``max_price``, a band outside them, no multiple of ``tick`` within
        them, or a ``max_notional`` below the lowest price they accept. Limits that already
        accept no order (recovered from a journal written before this check) do not block a
        change that leaves the reason as it is (``max_qty``, say). A call that raises changes
        nothing and journals nothing.

        >>> eng = Engine(); _ = eng.add_symbol(1, min_price=90)
        >>> eng.set_limits(1, max_price=80)
        Traceback (most recent call last):
        ...
        ValueError: symbol 1: min_price 90 > max_price 80: no price is accepted
        """
        self._set_limits(symbol, limits, True)

    def _set_limits(self, symbol, dict limits, bint consistent):
        # set_limits; recovery passes consistent=False (see _add_symbol)
        cdef int32_t k = self._slot(symbol)
        limits = _check_limits(limits)      # all of them before any is applied
        if consistent:
            now = self._limits_at(k)
            _check_limit_change(self._e.symbols[k], now, dict(now, **limits))
        cdef uint32_t mask = 0
        cdef int nested = mc_engine_hold(self._e, "set_limits()")  # see _add_symbol
        try:
            self._check_journal()
            self._apply_limits(k, limits)
            if self._jc is not None:
                for i, key in enumerate(_LIMIT_NAMES):
                    if key in limits:
                        mask |= 1u << i
                self._jc._append_config(3, self._e.symbols[k],
                                        [limits.get(x, 0) for x in _LIMIT_NAMES], mask=mask)
        finally:
            mc_engine_unhold(self._e, nested)

    def limits(self, symbol):
        """A symbol's limits as a dict (0 = disabled, ``tick`` 1 = any price). O(1).

        >>> eng = Engine(); _ = eng.add_symbol(1, tick=5); eng.limits(1)["tick"]
        5
        """
        return self._limits_at(self._slot(symbol))

    cdef dict _limits_at(self, int32_t k):
        cdef mc_symbol_cfg c = self._e.cfg[k]
        return {"tick": c.tick, "min_price": c.min_price, "max_price": c.max_price,
                "ref_price": c.ref_price, "band": c.band, "max_qty": c.max_qty,
                "max_notional": c.max_notional}

    def set_reference_price(self, symbol, price):
        """Move the centre of a symbol's price band (e.g. to the last trade); 0 makes the band
        inactive. Checked as ``set_limits(symbol, ref_price=price)`` is: a centre whose band
        accepts no price (outside ``min_price``/``max_price``, no multiple of ``tick``) raises
        ``ValueError`` and changes nothing. O(1).

        >>> eng = Engine(); _ = eng.add_symbol(1, ref_price=100, band=5)
        >>> eng.set_reference_price(1, 200); eng.limits(1)["ref_price"]
        200
        """
        self._set_reference_price(symbol, price, True)

    def _set_reference_price(self, symbol, price, bint consistent):
        # set_reference_price; recovery passes consistent=False (see _add_symbol)
        cdef int64_t p = mc_i64_arg(price, "price")
        if p < 0:
            raise ValueError(f"reference price must be >= 0 (0 disables the band), got {p}")
        cdef int32_t k = self._slot(symbol)
        if consistent:
            now = self._limits_at(k)
            _check_limit_change(self._e.symbols[k], now, dict(now, ref_price=p))
        cdef int nested = mc_engine_hold(self._e, "set_reference_price()")  # see _add_symbol
        try:
            self._check_journal()
            self._e.cfg[k].ref_price = p
            self._e.cfg[k].on = _cfg_on(&self._e.cfg[k])
            if self._jc is not None:
                self._jc._append_config(4, self._e.symbols[k], price=p)
        finally:
            mc_engine_unhold(self._e, nested)

    def symbol_id(self, symbol):
        """The integer id of a symbol given by name or id (KeyError if unknown). O(1).

        >>> eng = Engine(); _ = eng.add_symbol(4, "AAA"); eng.symbol_id("AAA"), eng.symbol_id(4)
        (4, 4)
        """
        cdef uint32_t sym = self._resolve(symbol)
        if sym not in self._by_id:
            # the words of _slot (limits, set_limits, ...): one message for an unknown symbol
            raise KeyError(f"unknown symbol {symbol!r}")
        return sym

    @property
    def symbols(self):
        """{symbol id: name or None} in the order the symbols were added. O(symbols).

        >>> eng = Engine(); _ = eng.add_symbol(4, "AAA"); _ = eng.add_symbol(2); eng.symbols
        {4: 'AAA', 2: None}
        """
        _check_busy(self._e)
        return {int(self._e.symbols[k]): self._names.get(self._e.symbols[k])
                for k in range(self._e.n_books)}

    def book(self, symbol):
        """The :class:`OrderBook` of a symbol (by id or name): for queries (depth, level,
        queue_position, snapshot, ...). Enter orders through the engine only. KeyError for
        an unknown symbol. O(1).

        >>> eng = Engine(); _ = eng.add_symbol(1, "AAA"); eng.book("AAA") is eng.book(1)
        True
        """
        return self._by_id[self.symbol_id(symbol)]

    cdef uint32_t _resolve(self, symbol) except? 0xFFFFFFFF:
        if isinstance(symbol, str):
            try:
                return self._by_name[symbol]
            except KeyError:
                raise KeyError(f"unknown symbol name {symbol!r}") from None
        return _symbol_id(symbol, True)

    cdef int32_t _slot(self, symbol) except -1:
        cdef uint32_t sym = self._resolve(symbol)
        _check_busy(self._e)
        cdef int32_t k = mc_engine_slot(self._e, sym)
        if k < 0:
            raise KeyError(f"unknown symbol {symbol!r}")
        return k

    cdef uint32_t _order_symbol(self, symbol, uint64_t oid) except? 0xFFFFFFFF:
        # A name that is not registered cannot be turned into an id for the event; refuse it
        # like an unknown id, without touching the engine.
        if isinstance(symbol, str) and symbol not in self._by_name:
            raise OrderRejected(MC_R_UNKNOWN_SYMBOL, oid, f"unknown symbol name {symbol!r}")
        return self._resolve(symbol)

    # ---- order entry ----

    def submit(self, symbol, order_id, side, price, qty, tif=MC_GTC, *, owner=0,
               post_only=False, ts_ns=0):
        """Limit order on ``symbol`` (id or name); returns the qty executed now (lots).

        Same semantics and exceptions as :meth:`OrderBook.submit`, plus the symbol's limits and
        ``UNKNOWN_SYMBOL``; a duplicate is an id resting in any symbol. O(1) + O(fills).

        >>> eng = Engine(); _ = eng.add_symbol(1, max_qty=10); eng.submit(1, 5, 0, 100, 11)
        Traceback (most recent call last):
        ...
        matchcore._core.OrderRejected: order 5 rejected: QTY_ABOVE_MAX
        """
        # the flag first, where a bint parameter was converted (the order of the errors)
        cdef int c_post = mc_flag_of(post_only, "post_only")
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int c_side = _cint_of(side, _cint_side)
        cdef int64_t c_price = _i64_of(price, _i64_price)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef int c_tif = 0 if tif is _ZERO else _cint_of(tif, _cint_tif)
        cdef uint64_t c_owner = 0 if owner is _ZERO else _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        cdef uint32_t sym = _entry_symbol(self, symbol, oid)
        cdef mc_engine* e = self._e
        _check_busy(e)
        if not self.record_events:
            e.n_ev = 0
        cdef int64_t was_ns = e.now_ns
        e.now_ns = c_ts
        cdef int64_t r
        if self._jcp != NULL:
            r = self._call_journaled(c_ts, oid, c_price, c_qty, c_owner, sym, MC_CMD_SUBMIT,
                                     c_side, c_tif, c_post)
        else:
            r = mc_engine_submit(e, sym, oid, c_side, c_price, c_qty, c_tif, c_owner, c_post)
        if r >= 0:
            return mc_small_int(r)
        e.now_ns = was_ns       # refused: no clock moves (see _engine_apply)
        if r == -MC_R_POST_ONLY_WOULD_CROSS:
            return 0
        _raise(r, oid)

    def submit_market(self, symbol, order_id, side, qty, *, owner=0, ts_ns=0):
        """Market order on ``symbol``; returns the qty executed, the remainder expires.
        O(1) + O(fills).

        >>> eng = Engine(); _ = eng.add_symbol(1); eng.submit(1, 5, 1, 101, 4)
        0
        >>> eng.submit_market(1, 6, 0, 9)
        4
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int c_side = _cint_of(side, _cint_side)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef uint64_t c_owner = 0 if owner is _ZERO else _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        cdef uint32_t sym = _entry_symbol(self, symbol, oid)
        cdef mc_engine* e = self._e
        _check_busy(e)
        if not self.record_events:
            e.n_ev = 0
        cdef int64_t was_ns = e.now_ns
        e.now_ns = c_ts
        cdef int64_t r
        if self._jcp != NULL:
            r = self._call_journaled(c_ts, oid, 0, c_qty, c_owner, sym, MC_CMD_MARKET, c_side,
                                     0, 0)
        else:
            r = mc_engine_market(e, sym, oid, c_side, c_qty, c_owner)
        if r >= 0:
            return mc_small_int(r)
        e.now_ns = was_ns       # refused: no clock moves (see _engine_apply)
        _raise(r, oid)

    def cancel(self, order_id, *, symbol=0, owner=0, ts_ns=0):
        """Cancel a resting order in whichever symbol it rests; returns its open qty, 0 if it
        rests nowhere (``symbol`` and ``owner``, the sender, are then echoed in the REJECTED
        event). O(1).

        >>> eng = Engine(); _ = eng.add_symbol(1); eng.submit(1, 5, 0, 99, 4)
        0
        >>> eng.cancel(5), eng.cancel(5)
        (4, 0)
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef uint64_t c_owner = 0 if owner is _ZERO else _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        cdef uint32_t sym = _entry_symbol(self, symbol, oid)
        cdef mc_engine* e = self._e
        _check_busy(e)
        if not self.record_events:
            e.n_ev = 0
        cdef int64_t was_ns = e.now_ns
        e.now_ns = c_ts
        cdef int64_t r
        if self._jcp != NULL:
            r = self._call_journaled(c_ts, oid, 0, 0, c_owner, sym, MC_CMD_CANCEL, 0, 0, 0)
        else:
            r = mc_engine_cancel_by(e, sym, oid, c_owner)
        if r >= 0:
            return mc_small_int(r)
        e.now_ns = was_ns       # refused: no clock moves (see _engine_apply)
        if r == -MC_R_ORDER_NOT_FOUND:
            return 0
        _raise(r, oid)

    def modify(self, order_id, qty, price=None, *, symbol=0, owner=0, ts_ns=0):
        """Modify a resting order wherever it rests (see :meth:`OrderBook.modify`); returns
        False if it rests nowhere or a post-only reprice would cross; raises
        :class:`OrderRejected` for bad qty/price or a broken limit. O(1) + O(fills).

        >>> eng = Engine(); _ = eng.add_symbol(1); eng.submit(1, 5, 0, 99, 4)
        0
        >>> eng.modify(5, 2), eng.get(5), eng.modify(6, 2)
        (True, (1, 0, 99, 2), False)
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef int64_t p = 0 if price is None else _i64_of(price, _i64_price)
        cdef uint64_t c_owner = 0 if owner is _ZERO else _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        cdef uint32_t sym = _entry_symbol(self, symbol, oid)
        cdef mc_engine* e = self._e
        _check_busy(e)
        if not self.record_events:
            e.n_ev = 0
        cdef int64_t was_ns = e.now_ns
        e.now_ns = c_ts
        cdef int64_t r
        if self._jcp != NULL:
            r = self._call_journaled(c_ts, oid, p, c_qty, c_owner, sym, MC_CMD_MODIFY, 0, 0, 0)
        else:
            r = mc_engine_modify_by(e, sym, oid, c_qty, p, c_owner)
        if r >= 0:
            return True
        e.now_ns = was_ns       # refused: no clock moves (see _engine_apply)
        if r == -MC_R_ORDER_NOT_FOUND or r == -MC_R_POST_ONLY_WOULD_CROSS:
            return False
        _raise(r, oid)

    def process(self, commands, out=None):
        """Apply :data:`COMMAND_DTYPE` records (``symbol`` field used) in compiled code, without
        the GIL; returns exactly this batch's events. Bad commands give REJECTED events.
        Pending :meth:`events` are kept. O(n + fills).

        ``out``: a caller-owned, writeable, 1-D C-contiguous aligned :data:`EVENT_DTYPE` array
        sharing no memory with ``commands``, reused across calls, as for
        :meth:`OrderBook.process`: when the batch's k events fit they are written to
        ``out[:k]`` and that view is returned; when they do not, a new array with all k events
        is returned (``len(result) > len(out)``: grow the buffer) and what ``out`` then holds is
        unspecified. A bad ``out`` raises before any command is applied. Memory running out
        part way raises MemoryError with the count of commands applied (they stay applied) in
        its message and its ``applied`` attribute, and their events in its ``events``
        attribute.

        >>> import numpy as np; eng = Engine(); _ = eng.add_symbol(1)
        >>> cmds = np.zeros(2, COMMAND_DTYPE); cmds["symbol"] = 1; cmds["order_id"] = [1, 2]
        >>> cmds["side"] = [0, 1]; cmds["price"] = 100; cmds["qty"] = [5, 3]
        >>> len(eng.process(cmds)), eng.best_bid(1)
        (3, (100, 2))
        """
        cdef cnp.ndarray arr = _commands_array(commands, "process()")
        cdef cnp.ndarray dst = _out_buffer(out, arr, commands)
        cdef mc_engine* e = self._e
        cdef int64_t n = arr.shape[0]
        cdef int64_t start = -1, done, k
        cdef bint lost = False
        cdef const mc_command* cmds = <const mc_command*>cnp.PyArray_DATA(arr)
        cdef mc_journal* jc = self._jcp
        cdef mc_journal* jt = self._jtp
        cdef uint8_t emit
        if jc != NULL:
            # busy first, as every call of the engine: the journals are another thread's to
            # write while its call runs (a segment roll then has no segment open)
            _check_busy(e)
            self._check_journal()
        cdef int64_t copied = 0, cap = -1
        cdef mc_event* dp = NULL
        cdef cnp.ndarray whole
        # A large batch without out= gets its result array made up front (or reused, see
        # mc_result_block) and written as out= is; the result is a view of its events. The
        # engine's own buffer then does not grow with the batch either. (A small batch's events
        # are copied once, at their size.)
        cdef bint fresh = dst is None and n >= 2048 and jc == NULL
        if fresh:
            try:
                dst = mc_result_block(2 * n + 64)
            except MemoryError:
                # then room for one event a command (see OrderBook.process): the events that
                # find the block full go on in the engine's own buffer, as with out=
                try:
                    dst = mc_result_block(n + 64)
                except MemoryError:
                    raise mc_oom_before(n) from None
        if dst is not None:
            dp = <mc_event*>cnp.PyArray_DATA(dst)
            cap = dst.shape[0]
        # The engine and its books are busy until the events are out: the batch runs without
        # the GIL, and a call from another thread meanwhile raises BusyError.
        mc_engine_busy_enter(e, MC_BUSY_ENGINE)
        try:
            start = e.n_ev
            emit = e.emit
            mc_engine_set_emit(e, 1)    # the batch's events are returned even when none are recorded
            if jc == NULL and dp != NULL:
                with nogil:
                    done = _engine_process_into(e, cmds, n, dp, cap, start, &copied)
            elif jc == NULL:
                with nogil:
                    done = mc_engine_process(e, cmds, n)
            else:
                with nogil:
                    done = _process_journaled(e, jc, jt, cmds, n)
                    mc_journal_commit_call(jc, jt)
            mc_engine_set_emit(e, emit)
            if jc != NULL and (jc.err != 0 or (jt != NULL and jt.err != 0)):
                e.n_ev = start
                self._check_journal()
            k = e.n_ev - start
            try:
                if copied > 0 or (dp != NULL and k == 0):
                    # the events were written into dst (with out=: no new array, none of its
                    # first-touch page faults); those that did not fit are still here
                    if k == 0:
                        res = dst[:copied]
                    else:
                        whole = np.empty(copied + k, dtype=EVENT_DTYPE)
                        memcpy(cnp.PyArray_DATA(whole), dp, copied * sizeof(mc_event))
                        memcpy(<mc_event*>cnp.PyArray_DATA(whole) + copied, &e.ev[start],
                               k * sizeof(mc_event))
                        res = whole
                elif dst is not None and k <= cap:
                    if k > 0:
                        memcpy(dp, &e.ev[start], k * sizeof(mc_event))
                    res = dst[:k]
                else:
                    res = _events_array(&e.ev[start], k)
            except MemoryError:
                # the commands ran but no memory is left for the array of their events: the
                # exception says how many ran, and none of their events stays pending
                lost = True
        finally:
            if start >= 0:
                e.n_ev = start
            mc_engine_busy_leave(e)
        if lost:
            exc = MemoryError(f"matchcore: out of memory after {done} of {n} commands (applied; "
                              "no memory was left for their events, which are lost)")
            exc.applied = done      # for a caller that must account for them (a journal)
            raise exc
        if done < n:
            # the applied commands' events are made: with the exception, or their fills
            # would be lost with it (none of them stays pending)
            exc = MemoryError(f"matchcore: out of memory after {done} of {n} commands")
            exc.applied = done
            exc.events = res
            raise exc
        return res

    cdef int64_t _call_journaled(self, int64_t ts, uint64_t oid, int64_t price, int64_t qty,
                                 uint64_t owner, uint32_t sym, int kind, int side, int tif,
                                 int post_only) except? -0x7FFFFFFFFFFFFFFF:
        # A per-call command as a command record, so that the journal holds exactly what
        # process() would be given. Sides and TIFs beyond a byte are invalid either way and
        # become 255 (rejected for the same reason).
        self._check_journal()
        cdef mc_command c
        c.ts_ns = ts
        c.order_id = oid
        c.price = price
        c.qty = qty
        c.owner = owner
        c.symbol = sym
        c.kind = <uint8_t>kind
        c.side = <uint8_t>mc_side_byte(side)
        c.tif = <uint8_t>tif if 0 <= tif <= 255 else 255
        c.post_only = 1 if post_only else 0
        cdef mc_engine* e = self._e
        cdef mc_journal* jc = self._jcp
        cdef mc_journal* jt = self._jtp
        cdef uint8_t was = e.busy   # (this thread's hold, if any, stays)
        cdef int64_t r
        # Applied and journaled without the GIL, as a batch is: appending the records may write
        # (a full buffer, the fills of a large sweep) or roll to a new segment (fsyncs of the
        # file and its directory), which held every other thread up for as long; and a write
        # blocked on a pipe or a slow disk that another thread of this process drains hung
        # them both. No other thread's call may come in meanwhile.
        e.busy = MC_BUSY_JOURNAL
        with nogil:
            r = _apply_journaled(e, jc, jt, &c)
            if r != -MC_ERR_NOMEM:
                mc_journal_commit_call(jc, jt)
        e.busy = was
        self._check_journal()
        return r

    cdef int _check_journal(self) except -1:
        if self._jc is not None:
            self._jc._check()
            if self._jt is not None:
                self._jt._check()
        return 0

    # ---- durability hooks (matchcore.durability) ----

    def _attach_journal(self, JournalWriter commands, JournalWriter trades=None):
        """Journal every following command into ``commands`` (and fills into ``trades``)."""
        _check_busy(self._e)
        # A journaled engine is driven through its Python methods only (handle and address
        # refuse), but refusing to give the number out is no guard: handles are issued in
        # sequence, and a C or Numba caller given the next one entered orders that no record
        # held (recovery then lost them). The handle dies here, as a freed engine's does.
        if self._e.handle != 0:
            mc_handle_release(self._e.handle)
            self._e.handle = 0
        self._jc = commands
        self._jcp = commands._j
        self._jt = trades
        self._jtp = trades._j if trades is not None else NULL
        # their own sync(), commit() and close() are calls on this engine (see _enter)
        commands.host_busy = &self._e.busy
        if trades is not None:
            trades.host_busy = &self._e.busy
        if trades is not None:
            # Trade capture reads the fills from the events, so the books write them even with
            # record_events=False (the per-call methods still drop them after each call).
            mc_engine_set_emit(self._e, 1)

    def _set_record_events(self, bint on):
        """Recovery: ``record_events`` is not journaled, so the caller of recover() names it
        (once the journal, if any, is attached)."""
        _check_busy(self._e)
        self.record_events = on
        # trade capture reads fills from the events (see _attach_journal)
        cdef bint emit = on or self._jt is not None
        mc_engine_set_emit(self._e, 1 if emit else 0)
        # the books become those add_symbol makes on an engine with these settings: made while
        # the replay recorded events, they said record_events=True, and a copy of one, or the
        # book once the engine was gone, wrote events
        cdef OrderBook book
        for book in self._books:
            book.record_events = emit
            if emit:
                book._b.guard &= ~MC_GUARD_NO_EVENTS
            else:
                book._b.guard |= MC_GUARD_NO_EVENTS

    def _restore_book(self, symbol, data):
        """Replace a symbol's book with a snapshot's state (OrderBook.restore), as loading an
        engine snapshot does: the book's own order entry is closed to everyone else (it would
        bypass the routing), and the restored orders are not routed until :meth:`_reindex`."""
        cdef OrderBook book = self._by_id[self.symbol_id(symbol)]
        book._b.engine_owned = 0
        try:
            mc_book_restore(book, data)
        finally:
            book._b.engine_owned = 1

    def _reindex(self):
        """Rebuild the order-id routing from the books (after in-place book restores)."""
        _check_busy(self._e)
        cdef int rc = mc_engine_reindex(self._e)
        if rc == -2:
            oid, first, second = _id_in_two_books(self._e)
            raise ValueError(f"order id {oid} rests in two books, of symbols {first} and "
                             f"{second}")
        if rc < 0:
            raise MemoryError(f"matchcore: out of memory routing the {mc_engine_count(self._e):,} "
                              f"resting orders of {self._e.n_books} symbols by id")

    def _capacity_of(self, symbol):
        return self._capacity.get(self.symbol_id(symbol), 0)

    def _set_capacity(self, symbol, int64_t capacity):
        self._capacity[self.symbol_id(symbol)] = capacity

    def _replay(self, commands, seqs, results, journal_ts, uint64_t trades_from=0,
                JournalWriter trades=None, int64_t[::1] fills=None):
        """Recovery: apply journaled commands, checking each outcome against the recorded one;
        fills of commands with seq >= ``trades_from`` go to ``trades``, each with the journal
        time of its command's record (``journal_ts``, int64 ns, one per command) (without it, with
        ``fills``, their count is added to ``fills[0]``: what read-only recovery reports that a
        writer would write). Returns (the count applied, the engine's outcome of the next
        command): fewer than given means that command's outcome differed from the recorded one,
        and the second item is what the engine gave (the recovery's error names both); else it
        is None. Events are dropped.
        Memory running out raises ``MemoryError`` (saying at which command): that is no
        divergence of the journal, and the commands before it stay applied."""
        cdef cnp.ndarray arr = np.ascontiguousarray(commands)
        cdef cnp.ndarray s = np.ascontiguousarray(seqs, dtype=np.uint64)
        cdef cnp.ndarray r = np.ascontiguousarray(results, dtype=np.int64)
        cdef cnp.ndarray ts = np.ascontiguousarray(journal_ts, dtype=np.int64)
        if (arr.dtype != COMMAND_DTYPE or s.shape[0] != arr.shape[0] or r.shape[0] != arr.shape[0]
                or ts.shape[0] != arr.shape[0]):
            raise TypeError("_replay needs COMMAND_DTYPE commands and as many seqs, results "
                            "and journal times")
        cdef mc_journal* jt = trades._j if trades is not None else NULL
        cdef int64_t n = arr.shape[0], done, got = 0
        cdef int64_t* nf = &fills[0] if fills is not None and fills.shape[0] > 0 else NULL
        mc_engine_busy_enter(self._e, MC_BUSY_ENGINE)
        try:
            with nogil:
                done = _replay(self._e, jt, <const mc_command*>cnp.PyArray_DATA(arr),
                               <const uint64_t*>cnp.PyArray_DATA(s),
                               <const int64_t*>cnp.PyArray_DATA(r), n, trades_from, &got, nf,
                               <const int64_t*>cnp.PyArray_DATA(ts))
                if jt != NULL:
                    mc_journal_commit(jt)
        finally:
            mc_engine_busy_leave(self._e)
        if trades is not None:
            trades._check()
        if done < n and got == -MC_ERR_NOMEM:
            # (a command that ran out of memory is never journaled: no recorded outcome is this)
            raise MemoryError(f"matchcore: out of memory replaying the journal at seq "
                              f"{int(s[done])}, after {done} of {n} commands")
        return done, (got if done < n else None)

    @property
    def journal(self):
        """The command :class:`~matchcore.durability.JournalWriter` (None without a journal).
        O(1).

        >>> Engine().journal is None
        True
        """
        return self._jc

    @property
    def trade_journal(self):
        """The trade capture :class:`~matchcore.durability.JournalWriter` (or None). O(1).

        >>> Engine().trade_journal is None
        True
        """
        return self._jt

    @property
    def journal_seq(self):
        """Seq of the last journaled command (0 without a journal or before the first). O(1).

        >>> import tempfile; eng = Engine(journal=tempfile.mkdtemp(), fsync="never")
        >>> _ = eng.add_symbol(1); eng.submit(1, 5, 0, 99, 4); eng.journal_seq
        0
        2
        """
        return self._jcp.next_seq - 1 if self._jcp != NULL else 0

    @property
    def durable_seq(self):
        """Seq of the last command known to be on stable storage (fsynced); 0 without a
        journal. Under ``fsync="always"`` this equals :attr:`journal_seq` after every call
        returns. O(1).

        >>> import tempfile; eng = Engine(journal=tempfile.mkdtemp(), fsync="always")
        >>> _ = eng.add_symbol(1); eng.durable_seq == eng.journal_seq == 1
        True
        """
        return self._jcp.durable_seq if self._jcp != NULL else 0

    def sync(self):
        """Make everything journaled so far durable (write + fdatasync of the command and
        trade journals, whatever the policy); returns the durable seq. O(buffered bytes) + one
        or two fsyncs.

        >>> import tempfile; eng = Engine(journal=tempfile.mkdtemp(), fsync="never")
        >>> _ = eng.add_symbol(1); eng.sync()
        1
        """
        if self._jc is None:
            raise ValueError("this engine has no journal")
        # the journals are written and synced without the GIL: no other thread's call may append
        mc_engine_busy_enter(self._e, MC_BUSY_JOURNAL)
        try:
            if self._jt is not None:
                self._jt._sync()
            return self._jc._sync()
        finally:
            mc_engine_busy_leave(self._e)

    def close(self):
        """Write, fsync (unless ``fsync="never"``) and close the journals; the engine then
        refuses further commands that would need journaling. No-op without a journal.
        Both journals are closed and the directory's LOCK released even when one of them
        fails (the first error is raised afterwards), so ``Engine.recover(DIR)`` can follow.
        O(buffered bytes) + the fsyncs.

        >>> import tempfile; d = tempfile.mkdtemp(); eng = Engine(journal=d); _ = eng.add_symbol(1)
        >>> eng.close(); Engine.recover(d).symbols
        {1: None}
        """
        first = None
        mc_engine_busy_enter(self._e, MC_BUSY_JOURNAL)
        try:
            for writer in (self._jt, self._jc):     # the trade journal fsyncs unless "never"
                if writer is None:
                    continue
                try:
                    (<JournalWriter>writer)._close()
                except BaseException as exc:
                    if first is None:
                        first = exc
        finally:
            mc_engine_busy_leave(self._e)
        if first is not None:
            raise first

    def snapshot(self, path=None):
        """Write a snapshot file of every symbol's book, limits, name and the journal position
        into directory ``path`` (default: the journal directory); returns its path. The
        journals are fsynced first, so a snapshot never names a position that is not durable.
        After :meth:`close` it is written from the books as they stand (into the journal
        directory under its LOCK); a journal closed under ``fsync="never"`` or after an I/O
        failure raises JournalError. Atomic (written to a temporary file, fsynced, renamed).
        O(orders + levels).
        See :func:`matchcore.durability.write_snapshot`.

        >>> import os, tempfile; eng = Engine(journal=tempfile.mkdtemp()); _ = eng.add_symbol(1)
        >>> os.path.basename(eng.snapshot())
        'snapshot-00000000000000000001.mcs'
        """
        from matchcore.durability.snapshot import write_snapshot
        if path is None:
            if self._jc is None:
                raise ValueError("snapshot() needs a directory when the engine has no journal")
            path = self._jc.path
        return write_snapshot(self, path)

    @classmethod
    def recover(cls, path, **options):
        """The engine rebuilt from directory ``path``: the newest valid snapshot, then the
        journal tail replayed; it keeps journaling into ``path``. ``options``: ``fsync``
        (default None: the journal's own policy, as its newest command segment records it;
        ``"batch"`` for segments of versions that recorded none), ``trades`` (default None:
        the journal's own trade capture, likewise; on for segments of versions that recorded
        none), ``record_events`` (not
        journaled: give it again, default True) and the journal options of the constructor,
        ``snapshot=False`` to replay the whole journal.
        The report (snapshot used, records replayed, damage cut) is in
        :attr:`recovery_report`. See :func:`matchcore.durability.recover`.

        Called on a subclass, the engine is of that class, made without calling ``__init__``
        (``cls.__new__(cls)``, with no arguments: the journal holds neither the subclass's
        attributes nor what its ``__getnewargs__`` would give). O(journal bytes) to scan and
        check every record, O(journal tail + snapshot) to rebuild; memory: one segment's plus
        the engine's.

        >>> import tempfile; d = tempfile.mkdtemp(); eng = Engine(journal=d); _ = eng.add_symbol(1)
        >>> eng.submit(1, 5, 0, 99, 4); eng.close()
        0
        >>> Engine.recover(d).get(5)
        (1, 0, 99, 4)
        """
        from matchcore.durability.recovery import _recover_as
        return _recover_as(cls, path, **options)

    # ---- copies and pickling ----

    def __reduce__(self):
        """Pickle support (every protocol; ``copy.deepcopy`` takes the same, in memory): the STP mode,
        ``record_events``, the clock, every symbol (id, name, capacity, limits, its
        :class:`OrderBook`, which pickles as its snapshot with its pending events) and the
        engine's pending events. The order-id routing is rebuilt from the books. The books are
        pickled as objects, so a book held beside its engine (``(eng, eng.book(1))``) comes
        back as the new engine's book. An engine with a journal is refused (TypeError).
        All of it is read at once, under the engine's hold: a call from another thread
        meanwhile raises :class:`~matchcore.BusyError`."""
        return _engine_reduce(self)

    def __copy__(self):
        # An engine owns its books: a shallow copy sharing them would route orders into books
        # that another engine also routes. copy.copy is a full copy, as for OrderBook.
        import copy
        return copy.deepcopy(self)

    def __deepcopy__(self, memo):
        # As the pickle, read under the hold as one state. A book copied earlier in the same
        # deepcopy (``copy.deepcopy((eng.book(1), eng))``) is that copy here too, brought to the
        # state read now.
        return _engine_deepcopy(self, memo)

    def _holding(self, call=None):
        """A context manager holding the engine for a read in several steps: meanwhile a call
        from another thread raises :class:`~matchcore.BusyError`, this thread's go on. For the
        readers written in Python (``durability.snapshot``), and ``EngineMetrics.process()``.
        ``call``: what holds it, as those refusals name it (None: such a read)."""
        cdef _EngineHold h = _EngineHold.__new__(_EngineHold)
        h.eng = self
        h.nested = []
        h.call = call
        return h

    def events(self, owner=None):
        """Events since the previous call (per-call API), all symbols, as :data:`EVENT_DTYPE`;
        with ``owner=w`` only w's (own orders and fills as maker; filtered in compiled code,
        the other pending events are dropped). O(pending events).

        >>> eng = Engine(); _ = eng.add_symbol(1); eng.submit(1, 5, 0, 99, 4)
        0
        >>> len(eng.events()), len(eng.events())
        (1, 0)
        """
        cdef mc_engine* e = self._e
        cdef int64_t k
        cdef uint64_t w = 0 if owner is None else _u64_of(owner, _u64_owner)
        # held while the result array is made (its allocation may run other threads' code)
        mc_engine_busy_enter(e, MC_BUSY_QUERY)
        try:
            if not self.record_events:
                e.n_ev = 0
            if owner is None:
                out = _events_array(e.ev, e.n_ev)
            else:
                k = mc_filter_events_owner(e.ev, e.n_ev, w, NULL)
                out = np.empty(k, dtype=EVENT_DTYPE)
                mc_filter_events_owner(e.ev, e.n_ev, w, <mc_event*>cnp.PyArray_DATA(out))
            e.n_ev = 0
        finally:
            mc_engine_busy_leave(e)
        return out

    # ---- queries ----

    def get(self, order_id):
        """(symbol, side, price, open_qty) of a resting order, or None. O(1).

        >>> eng = Engine(); _ = eng.add_symbol(3); eng.submit(3, 5, 1, 101, 4); eng.get(5)
        0
        (3, 1, 101, 4)
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef uint32_t sym
        cdef int side
        cdef int64_t price, qty
        _check_busy(self._e)
        if mc_engine_get(self._e, oid, &sym, &side, &price, &qty):
            return (sym, side, price, qty)
        return None

    def best_bid(self, symbol):
        """(price, qty) of a symbol's best bid, or None. O(1).

        >>> eng = Engine(); _ = eng.add_symbol(1, "AAA"); eng.submit("AAA", 5, 0, 99, 4)
        0
        >>> eng.best_bid(1), eng.best_bid("AAA")
        ((99, 4), (99, 4))
        """
        return self.book(symbol).best_bid()

    def best_ask(self, symbol):
        """(price, qty) of a symbol's best ask, or None. O(1).

        >>> eng = Engine(); _ = eng.add_symbol(1); eng.submit(1, 5, 1, 101, 4); eng.best_ask(1)
        0
        (101, 4)
        """
        return self.book(symbol).best_ask()

    def depth(self, symbol, n=10):
        """A symbol's top n levels per side (see :meth:`OrderBook.depth`). O(n).

        >>> eng = Engine(); _ = eng.add_symbol(1); eng.submit(1, 5, 0, 99, 4)
        0
        >>> [side.tolist() for side in eng.depth(1)]
        [[[99, 4]], []]
        """
        return self.book(symbol).depth(n)

    def depth_orders(self, symbol, n=10):
        """A symbol's top n levels per side with order counts (see
        :meth:`OrderBook.depth_orders`). O(n).

        >>> eng = Engine(); _ = eng.add_symbol(1); eng.submit(1, 5, 0, 99, 4)
        0
        >>> eng.depth_orders(1, 1)[0].tolist()
        [[99, 4, 1]]
        """
        return self.book(symbol).depth_orders(n)

    def level(self, symbol, side, price):
        """A symbol's orders at one price level in time priority (see :meth:`OrderBook.level`).
        O(orders at the level).

        >>> eng = Engine(); _ = eng.add_symbol(1); eng.submit(1, 5, 0, 99, 4); eng.level(1, 0, 99)
        0
        [(5, 4)]
        """
        return self.book(symbol).level(side, price)

    def level_count(self, symbol, side):
        """Number of price levels on one side of a symbol's book. O(1).

        >>> eng = Engine(); _ = eng.add_symbol(1); eng.submit(1, 5, 0, 99, 4); eng.level_count(1, 0)
        0
        1
        """
        return self.book(symbol).level_count(side)

    def depth_into(self, symbol, bids_out, asks_out):
        """A symbol's depth into caller arrays (see :meth:`OrderBook.depth_into`). O(rows).

        >>> import numpy as np; eng = Engine(); _ = eng.add_symbol(1); eng.submit(1, 5, 0, 99, 4)
        0
        >>> bids, asks = np.zeros((3, 2), np.int64), np.zeros((3, 2), np.int64)
        >>> eng.depth_into(1, bids, asks)
        (1, 0)
        """
        return self.book(symbol).depth_into(bids_out, asks_out)

    def queue_position(self, order_id):
        """Open qty ahead of a resting order at its level (KeyError if it rests nowhere).
        O(orders ahead).

        >>> eng = Engine(); _ = eng.add_symbol(1)
        >>> eng.submit(1, 5, 0, 99, 4), eng.submit(1, 6, 0, 99, 1), eng.queue_position(6)
        (0, 0, 4)
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        _check_busy(self._e)
        cdef int32_t k = _resting_slot(self._e, oid)
        if k < 0:
            raise KeyError(oid)
        # the id as read here, which found the book: read again, it could name another order
        return self._books[k].queue_position(oid)

    def __len__(self):
        _check_busy(self._e)
        return mc_engine_count(self._e)

    def __repr__(self):
        _check_busy(self._e)
        return f"<Engine symbols={self._e.n_books} orders={mc_engine_count(self._e)}>"

    @property
    def stp(self):
        """The self-trade prevention mode of every book (:class:`STP`). O(1).

        >>> Engine(STP.NONE).stp
        <STP.NONE: 0>
        """
        return STP(self._stp)

    @property
    def busy(self):
        """True while a call that releases the GIL runs on this engine or one of its books in
        some thread (:meth:`process`, a journal write or sync, ...):
        any other call on the engine meanwhile raises :class:`~matchcore.BusyError`. O(1).

        >>> Engine().busy
        False
        """
        return self._e.busy != 0

    def state_hash(self):
        """64-bit deterministic hash over every symbol (id, name, limits) and its book (every
        level and every order in queue order with id, open qty, owner, post-only; STP mode).
        Equal hashes: the engines behave the same from here on, given the same :attr:`stp`: the
        engine's own mode is hashed through its books only, so engines without symbols hash
        equal whatever their modes (journals record the mode apart, in each segment header).
        O(orders + levels).

        >>> a, b = Engine(), Engine(); _ = a.add_symbol(1); _ = b.add_symbol(1)
        >>> same = a.state_hash() == b.state_hash(); a.submit(1, 5, 0, 99, 4)
        0
        >>> same, a.state_hash() == b.state_hash()
        (True, False)
        """
        _check_busy(self._e)
        return mc_engine_state_hash(self._e)

    @property
    def handle(self):
        """The engine's checked handle (a positive int) for the C function table and Numba.

        Validated on every table call: once this Engine is gone, calls with it return
        ``-MC_ERR_HANDLE`` and never touch freed memory. The books' handles (``engine_book``,
        ``eng.book(s).handle``) live as long as their OrderBook objects: with the engine, or
        longer if Python still holds ``eng.book(s)`` (then a standalone book). O(1).

        >>> Engine().handle > 0
        True
        """
        return self._handle()

    @property
    def address(self):
        """Same as :attr:`handle` (the name older code passes to the C table and Numba). O(1).

        >>> eng = Engine(); eng.address == eng.handle
        True
        """
        return self._handle()

    def _handle(self):
        """Same as :attr:`handle`."""
        _check_busy(self._e)
        if self._jc is not None:
            raise ValueError("a journaled Engine is driven through its Python methods and "
                             "process() only: the C function table and Numba would bypass "
                             "the journal")
        return self._e.handle

    @property
    def raw_address(self):
        """The ``mc_engine*`` as an int: a borrowed pointer, owning nothing, checked by nothing,
        valid while this Engine is alive; no table function takes it (they take :attr:`handle`).
        O(1).

        >>> eng = Engine(); eng.raw_address != eng.handle
        True
        """
        return <size_t>self._e

    def check_invariants(self, *, allow_crossed=False):
        """Every book's invariants (:meth:`OrderBook.check_invariants`, with the same
        ``allow_crossed``: an engine holding books built with ``place`` or restored from
        exchange data may hold locked or crossed ones), plus: no id rests in two books, the
        id routing finds every resting order in its own book and names no book beyond the
        engine's, each symbol is routed to its own book, which writes that symbol into its
        events, and the routing tables are in the order their lookups and erasures rely on.
        Raises ``AssertionError`` naming the first violation. O(orders + index size). Holds
        the engine while it reads: a call from another thread meanwhile raises
        :class:`~matchcore.BusyError`.

        >>> eng = Engine(); _ = eng.add_symbol(1); eng.check_invariants(allow_crossed=True)
        """
        cdef bint crossed_ok = mc_bool_arg(allow_crossed, "allow_crossed")
        cdef int32_t k
        # the books are read one after the other: held, no other thread's call comes between
        # them (and makes an order seem to rest in two books, or in none)
        cdef int nested = mc_engine_hold(self._e)
        cdef mc_engine* e = self._e
        cdef uint64_t i
        try:
            _check_map(&e.sym_index, "symbol index")
            if e.sym_index.n != e.n_books:
                raise AssertionError(f"symbol index holds {e.sym_index.n} symbols for "
                                     f"{e.n_books} books")
            for k in range(e.n_books):
                if _map_find(&e.sym_index, e.symbols[k]) != k:
                    raise AssertionError(f"symbol {e.symbols[k]} is not routed to its book")
                if e.books[k].symbol != e.symbols[k]:
                    raise AssertionError(f"the book of symbol {e.symbols[k]} writes symbol "
                                         f"{e.books[k].symbol} into its events")
            # its entries may be stale (the book is asked before one is believed), never
            # pointing past the engine's books
            _check_map(&e.oid_index, "id routing index")
            for i in range(e.oid_index.mask + 1):
                if e.oid_index.tab[i].val >= e.n_books:
                    raise AssertionError(f"id routing index sends order {e.oid_index.tab[i].key} "
                                         f"to book slot {e.oid_index.tab[i].val} of "
                                         f"{e.n_books}")
            seen = {}
            for k in range(self._e.n_books):
                book = self._books[k]
                book.check_invariants(allow_crossed=crossed_ok)
                sym = self._e.symbols[k]
                # Exact level totals: a total beyond int64 is legal, and depth() refuses it.
                for side, rows in enumerate(book._depth_exact(1 << 62)):
                    for price, _, _ in rows:
                        for oid, _ in book.level(side, price):
                            if oid in seen:
                                raise AssertionError(f"order {oid} rests in symbols "
                                                     f"{seen[oid]} and {sym}")
                            seen[oid] = sym
                            if _resting_slot(self._e, oid) != k:
                                raise AssertionError(f"order {oid} resting in symbol {sym} is "
                                                     f"not routed to it")
        finally:
            mc_engine_unhold(self._e, nested)


cdef tuple _id_in_two_books(const mc_engine* e):
    # What mc_engine_reindex's -2 found: the first order id resting in two books, and the
    # symbols of both, walked as it walks them (the refusal named neither, of a hand-made
    # pickle or snapshot that could list thousands of orders)
    cdef dict seen = {}
    cdef int32_t k, i, idx
    cdef int s
    cdef const mc_book* b
    for k in range(e.n_books):
        b = e.books[k]
        for s in range(2):
            for i in range(b.side[s].n):
                idx = b.levels[b.side[s].lv[i]].head
                while idx >= 0:
                    oid = b.orders[idx].oid
                    if oid in seen:
                        return oid, seen[oid], e.symbols[k]
                    seen[oid] = e.symbols[k]
                    idx = b.orders[idx].next
    return None, None, None


cdef uint64_t _name_hash(uint32_t sym, str name) except? 0:
    # Summed over the symbols, so the total does not depend on the order names were added.
    cdef uint64_t h = <uint64_t>14695981039346656037ULL
    for byte in sym.to_bytes(4, "little") + name.encode("utf-8"):
        h = (h ^ <uint64_t>byte) * <uint64_t>1099511628211ULL
    return h ^ (h >> 31)


cdef inline uint32_t _entry_symbol(Engine eng, symbol, uint64_t oid) except? 0xFFFFFFFF:
    # The symbol of a per-call order entry. A plain int in [0, 2**32), what a simulator passes on
    # every call, is read inline; anything else (a name, a numpy integer, an IntEnum, an id out
    # of range) goes through Engine._order_symbol, whose int() and Python comparisons cost a
    # per-call submit about 45 instructions more.
    # (the bound as a shift: a literal 0xFFFFFFFF is a Python int to Cython, and the compare
    # made an int object and a Python comparison on every call)
    if _int_small(symbol) and (<uint64_t>_int_value(symbol) >> 32) == 0:
        return <uint32_t>_int_value(symbol)
    return eng._order_symbol(symbol, oid)


cdef object _symbol_name(name):
    # A symbol's name as add_symbol takes it, and unpickling (a hand-made pickle): None, or a
    # str of at most 4096 bytes in UTF-8 (what a journal or snapshot file records; a longer
    # one was written and then refused by load_snapshot). A name is looked up as the str it
    # is: str(b"X") stored "b'X'" and str(1) "1", names no later call could give (b"X" and 1
    # are refused or mean a symbol id).
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"symbol name must be a str or None, got {type(name).__name__} {name!r}")
    # the text itself as a plain str: str() of a subclass calls its __str__, which a
    # (str, Enum) member answers with "Cls.MEMBER", a name no lookup with it could find
    name = str.__str__(name)
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        # a lone surrogate ("A\udc80"): no journal, snapshot or feed could record the name
        raise ValueError(f"symbol name {name!r} cannot be encoded as UTF-8 ({exc.reason} at "
                         f"index {exc.start}): names must be encodable as UTF-8") from None
    if len(encoded) > 4096:
        raise ValueError("symbol name longer than 4096 bytes (UTF-8)")
    return name


cdef uint32_t _symbol_id(symbol, bint named=False) except? 0xFFFFFFFF:
    # named: where a str name is taken too (looked up before this): a symbol of another type
    # is refused in words that say so, not as if only an integer were taken
    if isinstance(symbol, str):
        raise TypeError("use add_symbol(id, name) to name a symbol")
    cdef object s
    try:
        s = mc_int_arg(symbol, "symbol")
    except TypeError:
        if not named:
            raise
        raise TypeError(f"symbol must be an integer id or a str name, got "
                        f"{type(symbol).__name__} {symbol!r}") from None
    if s < 0 or s > 0xFFFFFFFF:
        raise ValueError(f"symbol id must be in [0, 2**32), got {symbol!r}")
    return <uint32_t>s
