# Part of matchcore._core (included by _core.pyx, one C unit): the OrderBook class and its pickling.

# Bound by _Params so that a wrong argument names OrderBook, not __cinit__; the docstring's
# first line is the same list, for inspect.signature and help().
_BOOK_PARAMS = _Params("OrderBook", (("stp", STP.CANCEL_RESTING),),
                       (("record_events", True), ("capacity", 1024)))


cdef int _book_make(OrderBook book, stp, record_events, capacity) except -1:
    # An empty book of these parameters (checked as the constructor checks them) for `book`:
    # made by __cinit__, or remade in place of a subclass's default one by OrderBook.__init__
    # (the handle stays). Only an unused book is remade: the call would drop its state.
    cdef int mode = mc_stp_arg(stp)
    cdef bint recording = mc_bool_arg(record_events, "record_events")
    cdef int64_t cap = mc_capacity_arg(capacity, "capacity")
    cdef mc_book* old = book._b
    if old != NULL:
        mc_check_busy(old)
        if old.guard & MC_GUARD_HOSTED:
            raise ValueError(f"{type(book).__name__}.__init__(): the book belongs to an "
                             f"engine or replayer")
        if old.journaled:
            # the new struct would take another STP mode than the journal's header names, and
            # not carry the Recorder's hold on the C table: the session would no longer be
            # what its journal replays to
            raise ValueError(f"{type(book).__name__}.__init__(): the book is journaled by an "
                             f"open Recorder: making it anew would change it without a "
                             f"record; close() the Recorder first")
        if old.n_orders != 0 or old.n_ev != 0 or old.seq != 0 or old.now_ns != 0:
            raise ValueError(f"{type(book).__name__}.__init__(): the book is already in use "
                             f"(it holds or has held orders, holds events, or its clock was "
                             f"set): making it anew would drop its state")
    cdef mc_book* b = mc_book_new(mode, cap)
    if b == NULL:
        raise MemoryError(f"matchcore: not enough memory for a book of capacity {cap:,} "
                          f"(its orders and id index are allocated up front)")
    if old == NULL:
        b.handle = mc_handle_new(b, MC_H_BOOK, 0)
        if b.handle == 0:
            mc_book_free(b)
            raise MemoryError("matchcore: no handle left for a new book")
    else:
        b.handle = old.handle
        mc_handle_set(b.handle, b)
        mc_book_free(old)
    book._b = b
    book.record_events = recording
    # A book that records no events writes none, whoever calls it (Python, C, Numba).
    b.emit = 1 if recording else 0
    b.guard = 0 if recording else MC_GUARD_NO_EVENTS
    return 0


cdef OrderBook _book_of_class(cls, stp, record_events, capacity, new_args=None):
    # cls.__new__ with OrderBook's arguments, as pickle, copy and from_snapshot make a book:
    # a subclass's __cinit__ takes none (they are its __init__'s), its book is remade.
    # new_args: a subclass's own (args, kwargs) for its __new__ (_subclass_new_args)
    cdef OrderBook book
    if cls is OrderBook:
        book = OrderBook.__new__(OrderBook, stp, record_events=record_events, capacity=capacity)
        book._init_due = 0          # no __init__ call follows: a later one is a second one
        return book
    book = mc_subclass_new(cls, new_args)
    _book_make(book, stp, record_events, capacity)
    return book


cdef class OrderBook:
    """OrderBook(stp=STP.CANCEL_RESTING, *, record_events=True, capacity=1024)
--

    A price-time-priority limit order book and matching engine for one instrument.

    Prices are positive integer ticks, quantities positive integer lots, order ids integers in
    [0, 2**64). Every operation is O(1) in the number of resting orders apart from the levels
    and orders it trades with, and a new price level: a search of O(log levels between it and
    the touch), plus a move of the levels between it and the nearer end of its side's ladder
    (none at the touch or beyond the deepest level, at most 1,024 near either end; further in,
    at most 32 to a gap, the gaps made by spreading, O(log² levels) amortized).

    >>> book = OrderBook()
    >>> book.submit(1, Side.SELL, 101, 5)
    0
    >>> book.submit(2, Side.BUY, 101, 3)
    3
    >>> book.best_ask()
    (101, 2)
    """

    def __cinit__(self, *args, **kwargs):
        # A subclass's arguments are its own __init__'s (which may take others): its book is
        # made here with OrderBook's defaults and remade by OrderBook.__init__ with the
        # arguments the subclass passes on (or that it is called with, if it is inherited).
        if type(self) is OrderBook:
            stp, record_events, capacity = _BOOK_PARAMS.bind(args, kwargs)
        else:
            stp, record_events, capacity = _BOOK_PARAMS.bind((), {})
        _book_make(self, stp, record_events, capacity)
        if type(self) is OrderBook:
            self._init_due = MC_INIT_TAKEN if args or kwargs else MC_INIT_BARE

    # (no signature embedded: the class's docstring starts with the constructor's own)
    @cython.embedsignature(False)
    def __init__(self, *args, **kwargs):
        # OrderBook(...) itself took its arguments in __cinit__. A second call (book.__init__(
        # ...)) was ignored, bad arguments and all: it is set up anew as a subclass's is.
        cdef uint8_t due = self._init_due
        if due:
            self._init_due = 0
            if due == MC_INIT_TAKEN or not (args or kwargs):
                return
        stp, record_events, capacity = _BOOK_PARAMS.bind(args, kwargs)
        _book_make(self, stp, record_events, capacity)

    def __dealloc__(self):
        if self._b != NULL:
            # The handle dies first: from here on every C/Numba call with it is refused.
            mc_handle_release(self._b.handle)
        mc_book_free(self._b)
        self._b = NULL

    @property
    def stp(self):
        """The self-trade prevention mode (:class:`STP`). O(1).

        >>> OrderBook(STP.CANCEL_TAKER).stp
        <STP.CANCEL_TAKER: 2>
        """
        mc_check_busy(self._b)
        return STP(self._b.stp)

    @property
    def busy(self):
        """True while a call that releases the GIL (:meth:`process`, :meth:`restore`, a feed
        replay, a timed loop) or a read in several steps (pickling or copying its Engine, an
        engine snapshot) runs on this book, or on its Engine or replayer, in some thread: any
        other thread's call on it meanwhile raises :class:`BusyError`. O(1).

        >>> OrderBook().busy
        False
        """
        return (self._b.guard & MC_BUSY_MASK) != 0 or (
            self._b.host_busy != NULL and self._b.host_busy[0] != 0)

    def __len__(self):
        mc_check_busy(self._b)
        return self._b.n_orders

    def __repr__(self):
        mc_check_busy(self._b)
        return (f"<OrderBook orders={self._b.n_orders} bid_levels={mc_level_count(self._b, 0)} "
                f"ask_levels={mc_level_count(self._b, 1)} stp={STP(self._b.stp).name}>")

    # ---- order entry ----

    def submit(self, order_id, side, price, qty, tif=MC_GTC, *, owner=0, post_only=False,
               ts_ns=0):
        """Submit a limit order; returns the qty executed immediately (lots).

        GTC rests its remainder, IOC expires it, FOK trades completely or not at all. A post-only
        order that would cross is not placed (returns 0, REJECTED event). Raises
        :class:`OrderRejected` for qty <= 0, price <= 0, an unknown side or TIF, or the id of a
        resting order; the book is then unchanged. O(1) + O(fills).

        >>> book = OrderBook(); book.submit(7, 0, 100, 10)
        0
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
        # read after the arguments: an argument's __index__ may call OrderBook.__init__,
        # which remakes a subclass's unused book and frees the struct read before
        cdef mc_book* b = self._b
        mc_guard_entry(b)
        cdef bint events_on = mc_entry_events_on(b)
        cdef int64_t was_ns = b.now_ns
        b.now_ns = c_ts
        mc_prefetch_next_ids(b, oid)
        cdef int64_t r = _submit(b, oid, c_side, c_price, c_qty, c_tif, c_owner, c_post)
        if events_on:
            b.emit = 0
        if r >= 0:
            return _lots(r)
        b.now_ns = was_ns           # refused: the clock stays (see _apply)
        if r == -MC_R_POST_ONLY_WOULD_CROSS:
            return 0
        _raise(r, oid)

    def submit_market(self, order_id, side, qty, *, owner=0, ts_ns=0):
        """Submit a market order; returns the qty executed. The remainder expires, never rests.
        O(1) + O(fills).

        >>> book = OrderBook(); book.submit(1, 1, 100, 5); book.submit_market(2, 0, 8)
        0
        5
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int c_side = _cint_of(side, _cint_side)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef uint64_t c_owner = 0 if owner is _ZERO else _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        # read after the arguments: an argument's __index__ may call OrderBook.__init__,
        # which remakes a subclass's unused book and frees the struct read before
        cdef mc_book* b = self._b
        mc_guard_entry(b)
        cdef bint events_on = mc_entry_events_on(b)
        cdef int64_t was_ns = b.now_ns
        b.now_ns = c_ts
        mc_prefetch_next_ids(b, oid)
        cdef int64_t r = mc_market(b, oid, c_side, c_qty, c_owner)
        if events_on:
            b.emit = 0
        if r >= 0:
            return _lots(r)
        b.now_ns = was_ns           # refused: the clock stays (see _apply)
        _raise(r, oid)

    def cancel(self, order_id, *, owner=0, ts_ns=0):
        """Cancel a resting order; returns its open qty, or 0 if it is not resting. O(1).
        ``owner``: the sender, put into the REJECTED event of an id that is not resting.

        >>> book = OrderBook(); book.submit(1, 0, 100, 5); book.cancel(1); book.cancel(1)
        0
        5
        0
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef uint64_t c_owner = 0 if owner is _ZERO else _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        # read after the arguments: an argument's __index__ may call OrderBook.__init__,
        # which remakes a subclass's unused book and frees the struct read before
        cdef mc_book* b = self._b
        mc_guard_entry(b)
        cdef bint events_on = mc_entry_events_on(b)
        cdef int64_t was_ns = b.now_ns
        b.now_ns = c_ts
        mc_prefetch_next_ids(b, oid)
        cdef int64_t r = _cancel(b, oid, c_owner)
        if events_on:
            b.emit = 0
        if r >= 0:
            return _lots(r)
        b.now_ns = was_ns           # refused: the clock stays (see _apply)
        if r == -MC_R_ORDER_NOT_FOUND:
            return 0
        _raise(r, oid)

    def modify(self, order_id, qty, price=None, *, owner=0, ts_ns=0):
        """Set a resting order's open qty (and price); returns False if it is not resting.

        Same price and a qty not above the open qty keeps the queue place; a larger qty or a new
        price re-enters the order at the back of its level, and it may trade (at the makers'
        prices). ``price=None`` (or 0) keeps the price. A post-only order that would cross as it
        re-enters (at a new price, or at its own in a book :meth:`place` left crossed) is left
        unchanged (False). A REJECTED event carries the order's owner and side,
        or ``owner`` (the sender) for an id that is not resting. O(1) + O(fills).

        >>> book = OrderBook(); book.submit(1, 0, 100, 5); book.modify(1, 3)
        0
        True
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef int64_t p = 0 if price is None else _i64_of(price, _i64_price)
        cdef uint64_t c_owner = 0 if owner is _ZERO else _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        # read after the arguments: an argument's __index__ may call OrderBook.__init__,
        # which remakes a subclass's unused book and frees the struct read before
        cdef mc_book* b = self._b
        mc_guard_entry(b)
        cdef bint events_on = mc_entry_events_on(b)
        cdef int64_t was_ns = b.now_ns
        b.now_ns = c_ts
        mc_prefetch_next_ids(b, oid)
        cdef int64_t r = _modify(b, oid, c_qty, p, c_owner)
        if events_on:
            b.emit = 0
        if r >= 0:
            return True
        b.now_ns = was_ns           # refused: the clock stays (see _apply)
        if r == -MC_R_ORDER_NOT_FOUND or r == -MC_R_POST_ONLY_WOULD_CROSS:
            return False
        _raise(r, oid)

    # ---- replay mode: apply an exchange's own events, without matching ----

    def place(self, order_id, side, price, qty, *, owner=0, ts_ns=0):
        """Rest an order at the back of its level WITHOUT matching (replay mode: the exchange
        already matched). The book may become crossed or locked, as exchange data can be.
        Raises :class:`OrderRejected` for qty <= 0, price <= 0, an unknown side or a resting id.
        O(1).

        >>> book = OrderBook(); book.place(1, 0, 101, 5); book.place(2, 1, 100, 5); len(book)
        2
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int c_side = _cint_of(side, _cint_side)
        cdef int64_t c_price = _i64_of(price, _i64_price)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef uint64_t c_owner = _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = _i64_of(ts_ns, _i64_ts_ns)
        # read after the arguments: an argument's __index__ may call OrderBook.__init__,
        # which remakes a subclass's unused book and frees the struct read before
        cdef mc_book* b = self._b
        mc_guard_entry(b)
        cdef bint events_on = mc_entry_events_on(b)
        cdef int64_t was_ns = b.now_ns
        b.now_ns = c_ts
        cdef int64_t r = mc_rest(b, oid, c_side, c_price, c_qty, c_owner)
        if events_on:
            b.emit = 0
        if r < 0:
            b.now_ns = was_ns       # refused: the clock stays (see _apply)
            _raise(r, oid)

    def reduce(self, order_id, qty, *, execution=False, ts_ns=0):
        """Take up to ``qty`` off a resting order (an exchange-reported execution when
        ``execution`` is true, else a partial cancel); the order leaves at zero. Returns the qty
        taken (clamped to the open qty), or 0 if the order is not resting. O(1).

        >>> book = OrderBook(); book.place(1, 0, 100, 5); book.reduce(1, 7, execution=True)
        5
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef int c_exec = mc_flag_of(execution, "execution")
        cdef int64_t c_ts = _i64_of(ts_ns, _i64_ts_ns)
        # read after the arguments: an argument's __index__ may call OrderBook.__init__,
        # which remakes a subclass's unused book and frees the struct read before
        cdef mc_book* b = self._b
        mc_guard_entry(b)
        cdef bint events_on = mc_entry_events_on(b)
        cdef int64_t was_ns = b.now_ns
        b.now_ns = c_ts
        cdef int64_t r = mc_reduce(b, oid, c_qty, c_exec)
        if events_on:
            b.emit = 0
        if r >= 0:
            return _lots(r)
        b.now_ns = was_ns           # refused: the clock stays (see _apply)
        if r == -MC_R_ORDER_NOT_FOUND:
            return 0
        _raise(r, oid)

    def process(self, commands, out=None):
        """Apply a batch of :data:`COMMAND_DTYPE` records in compiled code; returns its events.

        Exactly the events the same commands give through the per-call methods, in order; bad
        commands give REJECTED events and the batch goes on. Pending :meth:`events` are kept.
        Runs without the GIL. O(n + fills).

        ``out``: a caller-owned, writeable, 1-D C-contiguous aligned :data:`EVENT_DTYPE` array
        that shares no memory with ``commands``, reused across calls so that no new array (and
        none of its first-touch page faults) is paid per batch. When the batch's k events fit
        (k <= len(out)) they are written to ``out[:k]`` and that view is returned; when they do
        not, a new array with all k events is returned (and what ``out`` then holds is
        unspecified), so no event is ever lost: ``len(result) > len(out)`` tells the caller to
        grow its buffer. A bad ``out`` raises before any command
        is applied. Memory running out part way raises MemoryError with the count of commands
        applied (they stay applied) in its message and its ``applied`` attribute, and their
        events in its ``events`` attribute. Either way the events are written in place as the commands run, without a
        copy afterwards (after a shortfall, only the rest is copied).

        >>> import numpy as np
        >>> cmds = np.zeros(2, dtype=COMMAND_DTYPE); cmds["qty"] = 5; cmds["price"] = 100
        >>> cmds["order_id"] = [1, 2]; cmds["side"] = [0, 1]
        >>> buf = np.empty(1024, dtype=EVENT_DTYPE)
        >>> ev = OrderBook().process(cmds, out=buf); len(ev), np.shares_memory(ev, buf)
        (3, True)
        """
        cdef cnp.ndarray arr = _commands_array(commands, "process()")
        cdef cnp.ndarray dst = _out_buffer(out, arr, commands)
        cdef int64_t dst_cap = -1 if dst is None else dst.shape[0]
        cdef mc_book* b = self._b
        cdef int64_t n = arr.shape[0]
        cdef const mc_command* cmds = <const mc_command*>cnp.PyArray_DATA(arr)
        cdef int64_t start = -1, k, m, tail, done
        cdef uint8_t emit
        cdef mc_event* dp
        cdef bint fresh = dst is None
        cdef bint lost = False
        # Lend the result array (or out=) to the book as its event buffer, so that the events
        # are written where the caller reads them. Not for a small batch: its events go to the
        # book's own buffer and are copied into an array of their exact size. An order needs
        # room for its worst case (mc_ev_bound: one event per lot, at most one per resting order)
        # before it starts; one that finds too little sends the rest of the batch to the book's
        # own buffer, and the two parts are joined at the end.
        cdef bint lend = not fresh or n >= 2048
        if fresh and lend:
            # made first (or reused, see mc_result_block); the result is a view of its events
            try:
                dst = mc_result_block(2 * n + 64)
            except MemoryError:
                # then room for one event a command, what most batches write: a batch whose
                # events fit in memory was refused for the room of twice as many (the events
                # that find the block full go on in the book's own buffer, as with out=)
                try:
                    dst = mc_result_block(n + 64)
                except MemoryError:
                    raise mc_oom_before(n) from None
            dst_cap = dst.shape[0]
        # Busy from here until the event buffer is the book's own again: the batch runs without
        # the GIL, and a call from another thread meanwhile raises BusyError.
        mc_busy_enter(b, MC_BUSY_PROCESS)
        try:
            start = b.n_ev
            emit = b.emit
            b.emit = 1        # the batch's events are returned even when the book records none
            if lend:
                # pending per-call events stay in the book's own buffer
                dp = <mc_event*>cnp.PyArray_DATA(dst)
                b.ev_home = b.ev
                b.ev_home_n = start
                b.ev_home_cap = b.ev_cap
                b.ev_spill = 0
                b.ev = dp
                b.n_ev = 0
                b.ev_cap = dst_cap
                b.ev_borrowed = 1
            # one call site: a second one made the compiler stop inlining the command dispatch
            with nogil:
                done = mc_process(b, cmds, n)
            b.emit = emit
            try:
                if not lend:
                    res = _events_array(&b.ev[start], b.n_ev - start)
                else:
                    if b.ev_borrowed:
                        m = b.n_ev
                        tail = 0
                        b.ev = b.ev_home
                        b.ev_cap = b.ev_home_cap
                        b.ev_borrowed = 0
                    else:
                        # dst ran short: its first ev_spill events, then the rest in the own buffer
                        m = b.ev_spill
                        tail = b.n_ev - start
                    b.ev_home = NULL
                    k = m + tail
                    if k <= dst_cap:
                        if tail > 0:
                            memcpy(&dp[m], &b.ev[start], tail * sizeof(mc_event))
                        res = dst[:k]
                    else:
                        res = np.empty(k, dtype=EVENT_DTYPE)
                        if m > 0:
                            memcpy(cnp.PyArray_DATA(res), dp, m * sizeof(mc_event))
                        if tail > 0:
                            memcpy(<mc_event*>cnp.PyArray_DATA(res) + m, &b.ev[start],
                                   tail * sizeof(mc_event))
            except MemoryError:
                # the commands ran but no memory is left for the array of their events: the
                # exception says how many ran, and none of their events stays pending
                lost = True
        finally:
            if start >= 0:
                b.n_ev = start
            mc_busy_leave(b)
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

    def events(self, owner=None):
        """Every event since the previous call (per-call API), as a :data:`EVENT_DTYPE` array.

        With ``owner=w``, only the events of participant w: those of its own orders (including
        fills where it was the aggressor) and the fills where one of its orders was the maker
        (``maker_owner == w``); the filter runs in compiled code and every other pending event
        is dropped too. Always empty when the book was made with ``record_events=False``, and
        for an Engine's book (``eng.book(s)``), whose events go to the engine's buffer: read
        them with :meth:`Engine.events` (each carries its ``symbol``). O(pending events).

        >>> book = OrderBook(); book.submit(1, 1, 100, 5, owner=7); book.submit(2, 0, 100, 2, owner=8)
        0
        2
        >>> book.events(owner=7)["kind"].tolist()  # ACCEPTED of order 1, then its FILL as maker
        [0, 1]
        """
        cdef uint64_t w = 0 if owner is None else _u64_of(owner, _u64_owner)
        cdef mc_book* b = self._b
        mc_guard_per_call(b)
        # held while the result array is made (its allocation may run other threads' code)
        mc_busy_enter(b, MC_BUSY_QUERY)
        try:
            if owner is None:
                out = _events_array(b.ev, b.n_ev)
            else:
                out = _owner_events_array(b.ev, b.n_ev, w)
            b.n_ev = 0
        finally:
            mc_busy_leave(b)
        return out

    # ---- queries ----

    def best_bid(self):
        """(price, aggregated qty) of the best bid, or None. O(1).

        >>> book = OrderBook(); book.submit(1, 0, 99, 5); book.submit(2, 0, 99, 3); book.best_bid()
        0
        0
        (99, 8)
        """
        mc_check_busy(self._b)
        cdef const mc_ladder* L = &self._b.side[MC_BUY]
        if L.n == 0:
            return None
        cdef const mc_level* l = &self._b.levels[L.lv[L.n - 1]]
        return (l.price, _py_i128(l.qty))

    def best_ask(self):
        """(price, aggregated qty) of the best ask, or None. O(1).

        >>> book = OrderBook(); book.submit(1, 1, 101, 4); book.best_ask(), book.best_bid()
        0
        ((101, 4), None)
        """
        mc_check_busy(self._b)
        cdef const mc_ladder* L = &self._b.side[MC_SELL]
        if L.n == 0:
            return None
        cdef const mc_level* l = &self._b.levels[L.lv[L.n - 1]]
        return (l.price, _py_i128(l.qty))

    def depth(self, n=10):
        """Top n levels per side as int64 arrays of shape (k, 2): price, qty; best first. O(n).

        >>> book = OrderBook(); book.submit(1, 0, 99, 5); book.submit(2, 1, 101, 2)
        0
        0
        >>> bids, asks = book.depth(5); bids.tolist(), asks.tolist()
        ([[99, 5]], [[101, 2]])
        """
        # n named in its errors, in the reference model's words (a bare Py_ssize_t parameter
        # said "'float' object cannot be interpreted as an integer")
        cdef int64_t k = mc_i64_arg(n, "n")
        if k < 0:
            raise ValueError(f"depth(n) needs n >= 0, got {k}")
        cdef cnp.ndarray bids, asks
        mc_busy_enter(self._b, MC_BUSY_QUERY)     # held while the arrays are made
        try:
            bids = np.empty((min(k, mc_level_count(self._b, MC_BUY)), 2), dtype=np.int64)
            asks = np.empty((min(k, mc_level_count(self._b, MC_SELL)), 2), dtype=np.int64)
            mc_depth(self._b, MC_BUY, k, <int64_t*>cnp.PyArray_DATA(bids))
            mc_depth(self._b, MC_SELL, k, <int64_t*>cnp.PyArray_DATA(asks))
            _check_depth_exact(self._b, k)
        finally:
            mc_busy_leave(self._b)
        return bids, asks

    def depth_orders(self, n=10):
        """Like :meth:`depth` with a third column: the number of orders at each level. O(n).

        >>> book = OrderBook(); book.submit(1, 0, 99, 5); book.submit(2, 0, 99, 1)
        0
        0
        >>> book.depth_orders(1)[0].tolist()
        [[99, 6, 2]]
        """
        # n named in its errors, in the reference model's words (a bare Py_ssize_t parameter
        # said "'float' object cannot be interpreted as an integer")
        cdef int64_t k = mc_i64_arg(n, "n")
        if k < 0:
            raise ValueError(f"depth_orders(n) needs n >= 0, got {k}")
        cdef cnp.ndarray bids, asks
        mc_busy_enter(self._b, MC_BUSY_QUERY)     # held while the arrays are made
        try:
            bids = np.empty((min(k, mc_level_count(self._b, MC_BUY)), 3), dtype=np.int64)
            asks = np.empty((min(k, mc_level_count(self._b, MC_SELL)), 3), dtype=np.int64)
            mc_depth_orders(self._b, MC_BUY, k, <int64_t*>cnp.PyArray_DATA(bids))
            mc_depth_orders(self._b, MC_SELL, k, <int64_t*>cnp.PyArray_DATA(asks))
            _check_depth_exact(self._b, k)
        finally:
            mc_busy_leave(self._b)
        return bids, asks

    def _depth_exact(self, Py_ssize_t n=10):
        """Like :meth:`depth_orders`, as two lists of (price, qty, orders) tuples whose qty is
        the exact level total, also beyond int64 where depth() raises: for the library's own
        whole-book walks (an engine's invariants, a CLI book dump). O(n)."""
        cdef int s
        cdef int32_t i
        cdef Py_ssize_t k
        cdef const mc_level* l
        out = ([], [])
        mc_busy_enter(self._b, MC_BUSY_QUERY)     # held while the tuples are made
        try:
            for s in range(2):
                rows = out[s]
                k = 0
                i = self._b.side[s].n - 1
                while i >= 0 and k < n:
                    l = &self._b.levels[self._b.side[s].lv[i]]
                    i -= 1
                    if l.count == 0:
                        continue
                    rows.append((l.price, _py_i128(l.qty), l.count))
                    k += 1
        finally:
            mc_busy_leave(self._b)
        return out

    def get(self, order_id):
        """(side, price, open_qty) of a resting order, or None. O(1).

        >>> book = OrderBook(); book.submit(7, 1, 101, 4); book.get(7), book.get(8)
        0
        ((1, 101, 4), None)
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int s
        cdef int64_t p, q
        mc_check_busy(self._b)      # after the argument's conversion (it may run Python code)
        if mc_get(self._b, oid, &s, &p, &q):
            return (s, p, q)
        return None

    def queue_position(self, order_id):
        """Open qty ahead of a resting order at its price level. Raises KeyError if not resting.
        O(orders ahead).

        >>> book = OrderBook(); book.submit(1, 0, 99, 5); book.submit(2, 0, 99, 3)
        0
        0
        >>> book.queue_position(1), book.queue_position(2)
        (0, 5)
        """
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        mc_check_busy(self._b)
        cdef mc_i128 r = _queue_ahead(self._b, oid)
        if r < 0:
            raise KeyError(oid)
        return _py_i128(r)

    def level(self, side, price):
        """The orders at one price level in time priority: a list of (order_id, open_qty); empty
        when no order rests there. O(orders at the level).

        >>> book = OrderBook(); book.submit(1, 0, 99, 5); book.submit(2, 0, 99, 3)
        0
        0
        >>> book.level(0, 99), book.level(0, 98)
        ([(1, 5), (2, 3)], [])
        """
        # the side first, in the reference model's words and order (a bad side and a bad price
        # together are refused for the side, as ReferenceBook.level does)
        cdef int s = _cint_of(side, _cint_side)
        if s != MC_BUY and s != MC_SELL:
            raise ValueError(f"side must be 0 (BUY) or 1 (SELL), got {s}")
        cdef int64_t p = _i64_of(price, _i64_price)
        out = []
        cdef int32_t lv, idx
        mc_busy_enter(self._b, MC_BUSY_QUERY)     # held while the tuples are made
        try:
            lv = _level_find(self._b, s, p)
            idx = self._b.levels[lv].head if lv >= 0 else -1
            while idx >= 0:
                out.append((self._b.orders[idx].oid, self._b.orders[idx].qty))
                idx = self._b.orders[idx].next
        finally:
            mc_busy_leave(self._b)
        return out

    def level_count(self, side):
        """Number of price levels on a side. O(1).

        >>> book = OrderBook(); book.submit(1, 0, 99, 5); book.submit(2, 0, 98, 5)
        0
        0
        >>> book.level_count(0), book.level_count(1)
        (2, 0)
        """
        cdef int s = _cint_of(side, _cint_side)
        if s != MC_BUY and s != MC_SELL:
            raise ValueError(f"side must be 0 (BUY) or 1 (SELL), got {s}")
        mc_check_busy(self._b)
        return mc_level_count(self._b, s)

    def state_hash(self):
        """A 64-bit hash of what decides the book's future matching (levels and queues in
        order, ids, open qtys, owners, post-only flags, the STP mode; not the clock, pending
        events or symbol id): equal books hash equal. O(orders + levels).

        >>> a, b = OrderBook(), OrderBook(); a.submit(1, 0, 99, 5); b.submit(1, 0, 99, 5, ts_ns=7)
        0
        0
        >>> _ = a.events()                      # b still holds its ACCEPTED event
        >>> a.state_hash() == b.state_hash()    # other clocks and pending events, one hash
        True
        """
        mc_check_busy(self._b)
        return mc_state_hash(self._b)

    def clear(self):
        """Remove every order and pending event (no events are written); the capacity stays.
        O(capacity).

        >>> book = OrderBook(); book.submit(1, 0, 99, 5); book.clear(); len(book), book.best_bid()
        0
        (0, None)
        """
        mc_guard_entry(self._b)
        mc_book_clear(self._b)

    def copy(self):
        """An independent deep copy: same state, capacity and STP mode, the same pending
        (not yet read) events, the same future behaviour; a new :attr:`handle`. Also what
        ``copy.copy`` and ``copy.deepcopy`` do. O(book + capacity + pending events): the pools
        and the id index the capacity sizes are copied whole, however few orders rest.

        >>> book = OrderBook(); book.submit(1, 0, 100, 5); twin = book.copy()
        0
        >>> twin.state_hash() == book.state_hash(), len(twin.events()) == len(book.events()) == 1
        (True, True)
        """
        return _book_copy(self)

    def __copy__(self):
        # not self.copy(): a subclass may give copy() a meaning of its own, or write it as
        # copy.copy(self), which then called itself until RecursionError
        return _book_copy(self)

    def __deepcopy__(self, memo):
        # the book itself holds no Python objects: its twin, then a subclass's attributes
        # deeply (set once: a subclass's __setstate__ runs once); the arguments of its
        # __new__ deeply too, as copy.deepcopy takes those of any object
        new_args = None
        if type(self) is not OrderBook:
            new_args = _subclass_new_args(self)
            if new_args is not None:
                import copy
                new_args = copy.deepcopy(new_args, memo)
        cdef OrderBook c = mc_book_twin(self, new_args)
        memo[id(self)] = c
        if type(self) is not OrderBook:
            import copy
            _set_subclass_state(c, copy.deepcopy(_subclass_state(self), memo))
        return c

    def __reduce__(self):
        """Pickle support (every protocol): the book travels as its :meth:`snapshot` plus what a
        snapshot leaves out (``record_events``, the order capacity, the pending events; a
        subclass and its attributes), so the unpickled book is :meth:`copy`'s twin in another
        process. See ``_book_from_pickle``."""
        cdef tuple args
        # the state and the pending events are read as one (a count of events read before the
        # orders and records after them would mix two moments)
        mc_busy_enter(self._b, MC_BUSY_QUERY)
        try:
            args = mc_book_pickle_args(self)
            # the very objects an Engine's pickle took for this book, if it is still in that
            # state: the pickler then stores them once for both
            if self._pickled is not None:
                held = self._pickled()
                self._pickled = None
                if held is not None and (<_HeldState>held).args[1:5] == args[1:5]:
                    args = (<_HeldState>held).args
        finally:
            mc_busy_leave(self._b)
        cls = type(self)
        if cls is OrderBook:
            return _book_from_pickle, args
        new_args = _subclass_new_args(self)
        if new_args is None:
            return _book_from_pickle, args[:5] + (cls,), _subclass_state(self)
        return _book_from_pickle, args[:5] + (cls, new_args), _subclass_state(self)

    # ---- embedding: raw handle, allocation-free depth, snapshots ----

    @property
    def handle(self):
        """The book's checked handle (a positive int) for the C function table and Numba.

        Every table call validates it against the process-wide registry before touching the
        book: once this OrderBook is gone, calls with the handle return ``-MC_ERR_HANDLE``
        (state_hash: 0) and never touch freed memory. The handle is constant for the book's
        life (also across :meth:`clear` and :meth:`restore`) and never reissued. Do not use one
        book from two threads at once. O(1).

        >>> book = OrderBook(); book.handle > 0
        True
        """
        mc_check_busy(self._b)
        return self._b.handle

    @property
    def address(self):
        """Same as :attr:`handle` (the name older code passes to the C table and Numba). O(1).

        >>> book = OrderBook(); book.address == book.handle
        True
        """
        mc_check_busy(self._b)
        return self._b.handle

    def _handle(self):
        """Same as :attr:`handle`."""
        mc_check_busy(self._b)
        return self._b.handle

    def _journal_entry(self, bint held):
        """Mark (``held=True``) or unmark the book as journaled by a ``native.Recorder``: while
        any Recorder holds it, order entry through the C table and Numba returns
        ``-MC_ERR_READONLY`` (it would reach the book without a record); queries answer. An
        Engine's book is refused (ReadOnlyBookError): its orders enter through the engine, so a
        Recorder of it could record nothing; so is a book an open Recorder holds (ValueError):
        the calls through either would be missing from the other's journal. O(1)."""
        if held:
            if self._b.engine_owned:
                mc_raise_engine_book(self._b)
            if self._b.journaled:
                raise ValueError("this OrderBook is journaled by an open Recorder already: the "
                                 "calls through either Recorder would be missing from the "
                                 "other's journal, and neither would replay to the book's "
                                 "state; close() that Recorder first, or record through it")
            self._b.journaled += 1
        elif self._b.journaled:
            self._b.journaled -= 1

    @property
    def raw_address(self):
        """The ``mc_book*`` itself as an int: a borrowed pointer that owns nothing and is checked
        by nothing. It is valid exactly while this OrderBook is alive (constant across
        :meth:`clear` and :meth:`restore`); no table function accepts it (they take
        :attr:`handle`). For code compiled against the core's own structs (Cython
        ``cimport matchcore._core``), ctypes views in tests, and debugging. O(1).

        >>> book = OrderBook(); book.raw_address != book.handle
        True
        """
        return <size_t>self._b

    def depth_into(self, bids_out, asks_out):
        """Write the top levels into caller-owned int64 arrays of shape (k, 2) [price, qty],
        best first, without allocating; returns (bid levels written, ask levels written).
        Rows past the returned counts are left as they were. A level total beyond int64 raises
        OverflowError, as in :meth:`depth`, and nothing is written. Each array must be a
        writeable C-contiguous numpy int64 array of shape (k, 2) at an 8-byte aligned address:
        anything else raises TypeError (not such an array, another dtype) or ValueError
        (shape, layout, read-only) naming the argument, before anything is written. O(k).

        >>> import numpy as np
        >>> book = OrderBook(); book.submit(1, 0, 100, 5); bids = np.zeros((4, 2), np.int64)
        0
        >>> book.depth_into(bids, np.zeros((4, 2), np.int64))
        (1, 0)
        """
        cdef int64_t[:, ::1] bids = _depth_out(bids_out, "bids_out")
        cdef int64_t[:, ::1] asks = _depth_out(asks_out, "asks_out")
        # after the arguments' conversion, which may run Python code (an array subclass's
        # properties, a garbage collection): another thread may have started a call that
        # releases the GIL on the book meanwhile
        mc_check_busy(self._b)
        return _depth_write(self._b, bids, asks)

    def snapshot(self):
        """The book's full state as bytes (versioned format with a checksum).

        Holds every resting order in queue order with its id, open qty, owner, post-only flag
        and arrival sequence number, plus the STP mode, symbol, clock and next sequence number,
        so a restored book has the same :meth:`state_hash` and gives the same future events.
        Pending events are not included. O(orders + levels).

        >>> book = OrderBook(); book.submit(1, 0, 100, 5)
        0
        >>> OrderBook.from_snapshot(book.snapshot()).state_hash() == book.state_hash()
        True
        """
        cdef int64_t size
        mc_busy_enter(self._b, MC_BUSY_QUERY)     # held while the bytes are made
        try:
            size = mc_snapshot_size(self._b)
            try:
                out = PyBytes_FromStringAndSize(NULL, size)
            except MemoryError:
                raise MemoryError(f"matchcore: out of memory for a snapshot of {size:,} bytes "
                                  f"({self._b.n_orders:,} resting orders); the book is "
                                  f"unchanged") from None
            mc_snapshot_write(self._b, <uint8_t*>PyBytes_AS_STRING(out), size)
        finally:
            mc_busy_leave(self._b)
        return out

    def restore(self, data):
        """Replace this book's whole state with a :meth:`snapshot`'s, in place.

        The handle (:attr:`address`) and the order capacity stay the same (the capacity
        grows if the snapshot holds more orders); pending events are dropped. A damaged,
        truncated or foreign snapshot raises :class:`SnapshotError` and leaves the book
        unchanged; so does :class:`ReadOnlyBookError` on a book of an Engine or of a feed
        replayer. The pools and the id index the kept capacity sizes are set up anew (unlike
        :meth:`from_snapshot`, which keeps none): O(orders + levels + capacity).

        >>> a = OrderBook(); a.submit(1, 0, 99, 5); b = OrderBook(); b.restore(a.snapshot())
        0
        >>> b.get(1), b.state_hash() == a.state_hash()
        ((0, 99, 5), True)
        """
        if mc_feed_view(self._b):
            mc_raise_feed_view_restore(self._b)
        mc_book_restore(self, data)

    @classmethod
    def from_snapshot(cls, data, *, record_events=True):
        """A new book holding a :meth:`snapshot`'s state (see :meth:`restore`). Called on a
        subclass, an instance of it, made as pickle and copy make one (without calling its
        ``__init__``). O(orders + levels).

        >>> a = OrderBook(); a.submit(1, 0, 99, 5); OrderBook.from_snapshot(a.snapshot()).best_bid()
        0
        (99, 5)
        """
        # cls.__new__, not cls(): a subclass's __init__ may take other arguments or have side
        # effects, and the snapshot holds none of its attributes
        cdef OrderBook book = _book_of_class(cls, STP.CANCEL_RESTING, record_events, 0)
        # not book.restore(): a subclass's override would run on an instance its __init__
        # never set up (a new book is no feed replayer's, the one check restore() adds)
        mc_book_restore(book, data)
        return book

    # Empty calls into this extension: the floor a per-call benchmark compares against.
    def _noop(self):
        pass

    def _noop4(self, uint64_t order_id, int side, int64_t price, int64_t qty):
        return 0

    # submit()'s exact signature and nothing else: the floor for "one Python call per order".
    def _noop_submit(self, order_id, side, price, qty, tif=MC_GTC, *, owner=0,
                     post_only=False, ts_ns=0):
        return 0

    def _noop_cancel(self, order_id, *, owner=0, ts_ns=0):
        return 0

    def _noop_modify(self, order_id, qty, price=None, *, owner=0, ts_ns=0):
        return True

    # ---- invariants ----

    def check_invariants(self, *, allow_crossed=False):
        """Verify every structural invariant; raise AssertionError naming the first violation.

        Not crossed (unless ``allow_crossed``: a book rebuilt from exchange data with
        :meth:`place` may be locked or crossed); each ladder strictly sorted with no empty
        (phantom) level on top, its gaps holding their next level's key and pointing at the
        always-empty level; each level's qty and count equal the sum over its queue; queues are
        FIFO (arrival sequence increasing, every number below the book's next one) with
        consistent links; the id index holds exactly the resting orders and each price map
        exactly its ladder's levels (counters, home slots and probe order checked); all quantities
        positive, post-only flags 0 or 1; free lists and counters agree.
        O(orders + levels + index size).

        >>> book = OrderBook(); book.submit(1, 0, 99, 5); book.check_invariants()
        0
        """
        cdef bint crossed_ok = mc_bool_arg(allow_crossed, "allow_crossed")
        mc_check_busy(self._b)
        cdef mc_book* b = self._b
        cdef int s
        cdef int32_t i, idx, prev, lv
        cdef int64_t cnt, empties, gaps, seen = 0
        cdef int64_t prev_key
        cdef int32_t j
        cdef mc_i128 total
        cdef uint64_t last_seq = 0
        cdef mc_level* l
        cdef mc_order* o
        cdef int64_t bp, bq, ap, aq
        if not crossed_ok and mc_best(b, MC_BUY, &bp, &bq) and mc_best(b, MC_SELL, &ap, &aq):
            if bp >= ap:
                raise AssertionError(f"book is crossed: best bid {bp} >= best ask {ap}")
        # levels[MC_GAP], the level every gap points at: readers skip a gap only because this
        # level is empty (a count or qty here showed each gap as a level of price 0)
        l = &b.levels[MC_GAP]
        if l.count != 0 or l.qty != 0 or l.head != -1 or l.tail != -1:
            raise AssertionError(f"the gaps' level (levels[-1]) is not empty: count {l.count}, "
                                 f"qty {_py_i128(l.qty)}, head {l.head}, tail {l.tail}")
        for s in range(2):
            empties = 0
            gaps = 0
            prev_key = INT64_MIN
            for i in range(b.side[s].n):
                lv = b.side[s].lv[i]
                if lv == MC_GAP:
                    # a gap holds the key of the next entry that is not a gap
                    j = i + 1
                    while j < b.side[s].n and b.side[s].lv[j] == MC_GAP:
                        j += 1
                    if j == b.side[s].n:
                        raise AssertionError(f"side {s} ladder ends in a gap")
                    if b.side[s].keys[i] != b.side[s].keys[j]:
                        raise AssertionError(f"side {s} gap at position {i} holds key "
                                             f"{b.side[s].keys[i]}, its next level {b.side[s].keys[j]}")
                    gaps += 1
                    continue
                if lv < 0 or lv >= b.levels_cap:
                    raise AssertionError(f"side {s} ladder entry {i} points at level {lv}, outside "
                                         f"the pool of {b.levels_cap}")
                l = &b.levels[lv]
                if i > 0 and prev_key >= b.side[s].keys[i]:
                    raise AssertionError(f"side {s} ladder not strictly sorted at position {i}")
                prev_key = b.side[s].keys[i]
                if b.side[s].keys[i] != _key(s, l.price):
                    raise AssertionError(f"side {s} ladder key does not match level price {l.price}")
                if _level_find(b, s, l.price) != lv:
                    raise AssertionError(f"side {s} price map does not lead to level {l.price}")
                if l.count < 0:
                    raise AssertionError(f"side {s} ladder holds freed level {lv}")
                if l.count == 0:
                    if i == b.side[s].n - 1:
                        raise AssertionError(f"phantom level: side {s} best price {l.price} "
                                             f"has no orders")
                    if l.head >= 0 or l.tail >= 0 or l.qty != 0:
                        raise AssertionError(f"side {s} empty level {l.price} still holds orders")
                    empties += 1
                    continue
                if l.head < 0:
                    raise AssertionError(f"side {s} level {l.price} counts {l.count} orders "
                                         f"but its queue is empty")
                total = 0
                cnt = 0
                prev = -1
                idx = l.head
                while idx >= 0:
                    o = &b.orders[idx]
                    if not o.live:
                        raise AssertionError(f"dead order slot {idx} linked at side {s} price {l.price}")
                    if o.prev != prev:
                        raise AssertionError(f"broken back link at order {o.oid}")
                    if o.side != s or o.price != l.price or o.level != lv:
                        raise AssertionError(f"order {o.oid} is queued at side {s} price {l.price} "
                                             f"but says side {o.side} price {o.price}")
                    if o.qty <= 0:
                        raise AssertionError(f"order {o.oid} has non-positive open qty {o.qty}")
                    if o.post_only > 1:
                        raise AssertionError(f"order {o.oid} has post-only flag {o.post_only}, "
                                             f"not 0 or 1")
                    if cnt > 0 and o.seq <= last_seq:
                        raise AssertionError(f"FIFO violated at side {s} price {l.price}: "
                                             f"order {o.oid} queued behind a later arrival")
                    # the next order to join its level is numbered b.seq: it must come after
                    if o.seq >= b.seq:
                        raise AssertionError(f"order {o.oid} has arrival number {o.seq}, not "
                                             f"below the book's next one {b.seq}")
                    if _map_find(&b.index, o.oid) != idx:
                        raise AssertionError(f"id index does not map order {o.oid} to its slot")
                    last_seq = o.seq
                    total += o.qty
                    cnt += 1
                    prev = idx
                    idx = o.next
                if prev != l.tail:
                    raise AssertionError(f"level side {s} price {l.price}: tail is not the last order")
                if total != l.qty:
                    raise AssertionError(f"level side {s} price {l.price}: qty {_py_i128(l.qty)} != sum of "
                                         f"orders {_py_i128(total)}")
                if cnt != l.count:
                    raise AssertionError(f"level side {s} price {l.price}: count {l.count} != "
                                         f"orders in queue {cnt}")
                seen += cnt
            if empties != b.side[s].empties:
                raise AssertionError(f"side {s}: {empties} empty levels, counter says "
                                     f"{b.side[s].empties}")
            if gaps != b.side[s].gaps:
                raise AssertionError(f"side {s}: {gaps} gaps, counter says {b.side[s].gaps}")
            if b.side[s].map.n != b.side[s].n - gaps:
                raise AssertionError(f"side {s}: price map holds {b.side[s].map.n} levels, "
                                     f"ladder {b.side[s].n - gaps}")
        if seen != b.n_orders:
            raise AssertionError(f"{b.n_orders} orders counted but {seen} queued")
        if b.index.n != b.n_orders:
            raise AssertionError(f"id index holds {b.index.n} ids for {b.n_orders} resting orders")
        _check_map(&b.index, "id index")
        for i in range(<int32_t>(b.index.mask + 1)):
            if b.index.tab[i].val >= 0:
                o = &b.orders[b.index.tab[i].val]
                if not o.live or o.oid != b.index.tab[i].key:
                    raise AssertionError(f"id index entry {b.index.tab[i].key} points at a "
                                         f"slot that does not hold it")
        # The price maps are the same tables: a level is found, and a deletion's backward shift
        # stops, by the same rules. Each level of the ladder is found through its map (above)
        # and the counter equals the ladder's levels; with the entries counted against it, no
        # stale entry is left beside them either.
        for s in range(2):
            _check_map(&b.side[s].map, f"side {s} price map")
        cnt = 0
        idx = b.free_order
        # bounded by the pool, as the level free list's walk below: a damaged list that loops
        # is reported as a leak rather than walked forever
        while idx >= 0 and cnt <= b.orders_cap:
            if idx >= b.orders_cap:
                raise AssertionError(f"order free list links slot {idx}, outside the pool of "
                                     f"{b.orders_cap}")
            if b.orders[idx].live:
                raise AssertionError(f"live order slot {idx} on the free list")
            cnt += 1
            idx = b.orders[idx].next
        if cnt + b.n_orders != b.orders_cap:
            raise AssertionError(f"order pool leak: {cnt} free + {b.n_orders} live != {b.orders_cap}")
        # the level pool likewise: every slot is either in a ladder (live or kept empty) or on
        # the free list, never both
        cnt = 0
        lv = b.free_level
        while lv >= 0 and cnt <= b.levels_cap:
            if lv >= b.levels_cap or b.levels[lv].count >= 0:
                raise AssertionError(f"live level slot {lv} on the free list")
            cnt += 1
            lv = b.levels[lv].next_free
        seen = (b.side[0].n - b.side[0].gaps) + (b.side[1].n - b.side[1].gaps)
        if cnt + seen != b.levels_cap:
            raise AssertionError(f"level pool leak: {cnt} free + {seen} in the ladders != "
                                 f"{b.levels_cap}")
        # the capacity invariants _ensure relies on (see _grow_orders)
        if 2 * <int64_t>b.orders_cap > <int64_t>(b.index.mask + 1):
            raise AssertionError(f"id index ({b.index.mask + 1} entries) too small for "
                                 f"{b.orders_cap} order slots")
        for s in range(2):
            if (b.side[s].cap < 2 * <int64_t>b.levels_cap
                    or b.side[s].head < 0 or b.side[s].head + b.side[s].n > b.side[s].cap
                    or 2 * <int64_t>b.levels_cap > <int64_t>(b.side[s].map.mask + 1)):
                raise AssertionError(f"side {s}: ladder or price map too small for "
                                     f"{b.levels_cap} level slots")


# ---- pickling ----

cdef OrderBook _book_copy(OrderBook book):
    # copy() and copy.copy: the twin, then a Python subclass's own attributes, as copy.copy
    # takes them (shared, not copied)
    cdef OrderBook c = mc_book_twin(
        book, None if type(book) is OrderBook else _subclass_new_args(book))
    if type(book) is not OrderBook:
        _set_subclass_state(c, _subclass_state(book))
    return c


def _subclass_state(obj):
    """A Python subclass's attributes as pickle takes them: what its own ``__getstate__``
    returns if it defines one, else its ``__dict__``, or ``(__dict__, {slot: value})`` when it
    has ``__slots__`` set; None when there are none."""
    if type(obj).__getstate__ is not object.__getstate__:
        return obj.__getstate__()
    import copyreg
    d = getattr(obj, "__dict__", None) or None
    slots = {}
    for name in copyreg._slotnames(type(obj)):
        if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
            slots[name] = getattr(obj, name)
    return (d, slots) if slots else d


def _subclass_new_args(obj):
    """The arguments a subclass's ``__new__`` takes, as ``(args, kwargs)``, from its own
    ``__getnewargs_ex__`` or ``__getnewargs__`` (the protocol pickle and copy call such a
    ``__new__`` with), checked as pickle checks them; None when it defines neither."""
    cls = type(obj)
    if getattr(cls, "__getnewargs_ex__", None) is not None:
        new_args = obj.__getnewargs_ex__()
        if not isinstance(new_args, tuple):
            raise TypeError(f"__getnewargs_ex__ should return a tuple, not "
                            f"'{type(new_args).__name__}'")
        if len(new_args) != 2:
            raise ValueError(f"__getnewargs_ex__ should return a tuple of length 2, not "
                             f"{len(new_args)}")
        args, kwargs = new_args
        if not isinstance(args, tuple):
            raise TypeError(f"first item of the tuple returned by __getnewargs_ex__ must be "
                            f"a tuple, not '{type(args).__name__}'")
        if not isinstance(kwargs, dict):
            raise TypeError(f"second item of the tuple returned by __getnewargs_ex__ must be "
                            f"a dict, not '{type(kwargs).__name__}'")
        return args, kwargs
    if getattr(cls, "__getnewargs__", None) is not None:
        args = obj.__getnewargs__()
        if not isinstance(args, tuple):
            raise TypeError(f"__getnewargs__ should return a tuple, not "
                            f"'{type(args).__name__}'")
        return args, {}
    return None


def _set_subclass_state(obj, state):
    # what pickle (and copy) do with _subclass_state's value: the subclass's own __setstate__,
    # else its attributes set from it
    if state is None:
        return
    setstate = getattr(obj, "__setstate__", None)
    if setstate is not None:
        setstate(state)
        return
    if isinstance(state, tuple):
        state, slots = state
        for name, value in slots.items():
            setattr(obj, name, value)
    if state:
        obj.__dict__.update(state)

# The pickle of an OrderBook (and, in matchcore._engine, of an Engine) is versioned on its own:
# bump _PICKLE_FORMAT whenever the snapshot format (MC_SNAP_VERSION), the event record or the
# arguments of the reconstructors change, so that a pickle written by another version is refused
# with a message saying so instead of being misread. Format 2: an Engine's symbols carry their
# book's state as read under the engine's hold (format 1's, without it, are read as well).
_PICKLE_FORMAT = 2


def _check_pickle_format(fmt, str what):
    if fmt not in (1, _PICKLE_FORMAT):
        raise SnapshotError(MC_SNAP_E_VERSION,
                            f"this {what} was pickled by a matchcore with pickle format {fmt!r}; "
                            f"this matchcore reads formats 1 and {_PICKLE_FORMAT} only: unpickle "
                            f"it with the matchcore version that wrote it")


def _book_from_pickle(fmt, snapshot, record_events, capacity, events, cls=None, new_args=None):
    """Rebuild a pickled :class:`OrderBook` (``OrderBook.__reduce__``): the snapshot's state,
    grown to the original's order capacity, with its pending events; of class ``cls`` (a
    subclass, made without calling its ``__init__``, as pickle does; its ``__new__`` called
    with ``new_args``, the ``(args, kwargs)`` its ``__getnewargs__`` gave) when given."""
    _check_pickle_format(fmt, "OrderBook")
    if len(snapshot) >= 12 and snapshot[:8] == b"MCSNAPSH":
        version = int.from_bytes(snapshot[8:12], "little")
        if version != MC_SNAP_VERSION:
            raise SnapshotError(MC_SNAP_E_VERSION,
                                f"this OrderBook was pickled with snapshot format {version}; "
                                f"this matchcore reads format {MC_SNAP_VERSION} only")
    if cls is None:
        cls = OrderBook
    elif not (isinstance(cls, type) and issubclass(cls, OrderBook)):
        raise TypeError(f"pickled OrderBook: {cls!r} is not an OrderBook class")
    # checked as the constructor checks them (a bint took 7 for True; a capacity of -5 grew
    # nothing), before anything is made
    cdef int64_t cap = mc_capacity_arg(capacity, "capacity")
    cdef OrderBook book = _book_of_class(cls, STP.CANCEL_RESTING, record_events, 0, new_args)
    mc_book_restore(book, snapshot)      # (not book.restore(): see from_snapshot)
    book._unpickled_from = id(snapshot)
    cdef mc_book* b = book._b
    cdef const uint8_t[::1] ev = _snapshot_view(events)
    cdef int64_t n_ev = ev.shape[0] // <int64_t>sizeof(mc_event)
    if ev.shape[0] % <int64_t>sizeof(mc_event) != 0:
        raise SnapshotError(MC_SNAP_E_CORRUPT, "pickled OrderBook: pending events are truncated")
    # the pools double from 64, so growing by doubling reaches the original's capacity exactly
    while b.orders_cap < cap and b.orders_cap < 0x7FFFFFF0:
        if _grow_orders(b) < 0:
            raise MemoryError(f"matchcore: out of memory unpickling an OrderBook of order "
                              f"capacity {cap:,} (its pools and id index are allocated whole)")
    if n_ev > 0:
        if mc_reserve_events(b, n_ev) < 0:
            raise MemoryError(f"matchcore: out of memory unpickling an OrderBook's {n_ev:,} "
                              f"pending events")
        memcpy(b.ev, &ev[0], n_ev * sizeof(mc_event))
        b.n_ev = n_ev
    return book
