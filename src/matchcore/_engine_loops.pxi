# Part of matchcore._engine (included by _engine.pyx, one C unit): the batch loops (simple and
# deep, into the caller's array, journaled, recovery's replay), lookups, the state hash, event
# draining, and the busy and hold state of an engine.

# How many commands ahead mc_engine_process asks for the id-index lines of a command (as
# mc_process does for one book): the engine's own line for the id and the line of the book its
# symbol names. A fresh block of ids lands on lines of both tables not touched since they were
# made (a book's index is sized for its capacity), and without this the engine waited on both.
# The symbol's slot found for that is kept for when the command runs (RING > AHEAD, a power of 2).
# 8 rather than 4 (as PREFETCH_AHEAD): the touch flows ran 5-10% faster at 1k and 1M orders.
cdef enum:
    ENGINE_PREFETCH_AHEAD = 8
    ENGINE_RING = DEEP_RING       # > DEEP_AHEAD_INDEX: the deep loop's stages read it too

cdef inline int32_t _engine_look_ahead(mc_engine* e, const mc_command* c) noexcept nogil:
    cdef int32_t k
    if c.symbol == e.last_symbol:
        k = e.last_slot
    else:
        k = _map_find(&e.sym_index, c.symbol)
        e.last_symbol = c.symbol
        e.last_slot = k
    if _routed(e):
        _map_prefetch(&e.oid_index, c.order_id)
    if k >= 0:
        _map_prefetch(&e.books[k].index, c.order_id)
    return k

cdef inline void _engine_prime(mc_engine* e, const mc_command* cmds, int64_t n,
                               int32_t* ring) noexcept nogil:
    # the look-ahead of a batch's first commands, before the first of them runs
    cdef int64_t i
    for i in range(ENGINE_PREFETCH_AHEAD if ENGINE_PREFETCH_AHEAD < n else n):
        ring[i] = _engine_look_ahead(e, &cmds[i])

cdef inline void _engine_deep_prime(mc_engine* e, const mc_command* cmds, int64_t lo, int64_t n,
                                    int32_t* ring, int32_t* found) noexcept nogil:
    # The start of a deep run at command lo: the books of the commands up to DEEP_AHEAD_INDEX
    # ahead (a simple loop before filled the ring only to lo + ENGINE_PREFETCH_AHEAD - 1, and
    # from here on the deep loop fills it DEEP_AHEAD_INDEX ahead instead), and no order
    # known yet (those found before belong to commands of an earlier deep run: a guess made
    # for another book could lie outside this one's pool).
    cdef int64_t j
    cdef int k
    for k in range(ENGINE_RING):
        found[k] = -1
    for j in range(lo + ENGINE_PREFETCH_AHEAD,
                   lo + DEEP_AHEAD_INDEX if lo + DEEP_AHEAD_INDEX < n else n):
        ring[j & (ENGINE_RING - 1)] = _engine_look_ahead(e, &cmds[j])

cdef inline void _engine_ahead_deep(mc_engine* e, const mc_command* cmds, int64_t i, int64_t n,
                                    int32_t* ring, int32_t* found) noexcept nogil:
    # The deep loop's stages for the commands after command i (see mc_process's deep loop):
    # DEEP_AHEAD_INDEX ahead the id's index lines (the command's book, found then, kept in
    # ring), DEEP_AHEAD_ORDER ahead the order, DEEP_AHEAD_LEVEL ahead its level, neighbours
    # and a reprice's new level.
    cdef int32_t k
    cdef int64_t j = i + DEEP_AHEAD_INDEX
    if j < n:
        ring[j & (ENGINE_RING - 1)] = _engine_look_ahead(e, &cmds[j])
    j = i + DEEP_AHEAD_ORDER
    if j < n:
        k = ring[j & (ENGINE_RING - 1)]
        found[j & (ENGINE_RING - 1)] = mc_ahead_order(e.books[k], &cmds[j]) if k >= 0 else -1
    j = i + DEEP_AHEAD_LEVEL
    if j < n:
        k = ring[j & (ENGINE_RING - 1)]
        if k >= 0:
            mc_ahead_level(e.books[k], &cmds[j], found[j & (ENGINE_RING - 1)])

cdef inline int64_t _engine_run(mc_engine* e, const mc_command* cmds, int64_t lo, int64_t hi,
                                int64_t n, int32_t* ring) noexcept nogil:
    # Apply commands lo..hi-1 of the batch cmds[0:n], looking ahead across the whole batch;
    # returns hi, or the command that ran out of memory.
    # A book keeps the engine's event buffer from one command to the next (e.lazy, see
    # _take_back) and gives it back before this returns.
    cdef int64_t i
    e.lazy = 1
    for i in range(lo, hi):
        if i + ENGINE_PREFETCH_AHEAD < n:
            ring[(i + ENGINE_PREFETCH_AHEAD) & (ENGINE_RING - 1)] = _engine_look_ahead(
                e, &cmds[i + ENGINE_PREFETCH_AHEAD])
        if _engine_apply(e, &cmds[i], ring[i & (ENGINE_RING - 1)]) == -MC_ERR_NOMEM:
            hi = i
            break
    _settle(e)
    e.lazy = 0
    return hi

cdef int64_t _engine_run_deep(mc_engine* e, const mc_command* cmds, int64_t lo, int64_t hi,
                              int64_t n, int32_t* ring, int32_t* found) noexcept nogil:
    # _engine_run that also looks ahead through the books (_engine_ahead_deep). Its own
    # function: a flag in _engine_run cost that loop about 8% on the touch workloads.
    cdef int64_t i
    _engine_deep_prime(e, cmds, lo, n, ring, found)
    e.lazy = 1
    for i in range(lo, hi):
        _engine_ahead_deep(e, cmds, i, n, ring, found)
        if _engine_apply(e, &cmds[i], ring[i & (ENGINE_RING - 1)]) == -MC_ERR_NOMEM:
            hi = i
            break
    _settle(e)
    e.lazy = 0
    return hi

cdef int64_t _engine_orders(const mc_engine* e) noexcept nogil:
    cdef int64_t t = 0
    cdef int32_t k
    for k in range(e.n_books):
        t += e.books[k].n_orders
    return t

cdef inline int64_t _engine_part(mc_engine* e, const mc_command* cmds, int64_t lo, int64_t hi,
                                 int64_t n, int32_t* ring, int32_t* found,
                                 bint big) noexcept nogil:
    # _engine_run of one part of a batch: on big books (_engine_big) in the loop mc_deep_mode
    # chooses, timed when it asks
    if not big:
        return _engine_run(e, cmds, lo, hi, n, ring)
    cdef int mode = mc_deep_mode(&e.deep)
    cdef int64_t t0 = mc_tsc() if mode & 2 else 0
    cdef int64_t r
    if mode & 1:
        r = _engine_run_deep(e, cmds, lo, hi, n, ring, found)
    else:
        r = _engine_run(e, cmds, lo, hi, n, ring)
    if mode & 2:
        mc_deep_timed(&e.deep, mode, mc_tsc() - t0)
    return r

cdef inline bint _engine_big(const mc_engine* e, int64_t n) noexcept nogil:
    return n >= DEEP_MIN_BATCH and _engine_orders(e) >= DEEP_ORDERS

cdef int64_t mc_engine_process(mc_engine* e, const mc_command* cmds, int64_t n) noexcept nogil:
    """Apply n commands in order; returns how many were applied (n unless memory ran out)."""
    cdef int32_t ring[ENGINE_RING]
    cdef int32_t found[ENGINE_RING]
    cdef int64_t i = 0, m, done
    cdef bint big = _engine_big(e, n)
    _engine_prime(e, cmds, n, ring)
    if not big:
        return _engine_run(e, cmds, 0, n, n, ring)
    while i < n:
        m = DEEP_CHUNK if n - i > DEEP_CHUNK else n - i
        done = _engine_part(e, cmds, i, i + m, n, ring, found, 1) - i
        i += done
        if done < m:
            break
    return i


# Engine.process(out=...) lends the caller's array to the engine as its event buffer, so the
# books write the events where the caller reads them. An operation that may write more events
# than the array has room left for (an order's bound is one per resting order) runs with the rest
# of its block of commands in the engine's own buffer instead; at the block's end those events
# are moved into the caller's array if they fit, and the array is written again. A block whose
# events do not fit leaves them, and all later ones, in the engine's own buffer. Blocks are short
# so that a deep book, whose bound never fits, moves its events while they are still in the
# first-level cache and the engine's own buffer stays small instead of growing with the batch.
cdef enum:
    OUT_BLOCK = 128

cdef void _detour_end(mc_engine* e, mc_event* dst, int64_t cap) noexcept nogil:
    # the end of a block that went to the engine's own buffer (ev_borrowed == 2)
    cdef int64_t k = e.n_ev - e.ev_home_n
    e.ev_home = e.ev
    e.ev_home_cap = e.ev_cap
    if e.ev_dst_n + k <= cap:
        memcpy(dst + e.ev_dst_n, e.ev + e.ev_home_n, k * sizeof(mc_event))
        e.ev_dst_n += k
        e.ev = dst
        e.n_ev = e.ev_dst_n
        e.ev_cap = cap
        e.ev_borrowed = 1
    else:
        e.ev_borrowed = 0

cdef int64_t _engine_process_into(mc_engine* e, const mc_command* cmds, int64_t n, mc_event* dst,
                                  int64_t cap, int64_t start, int64_t* copied) noexcept nogil:
    # mc_engine_process writing the events into dst[0:cap] (see above); the engine's own
    # buffer holds `start` pending events. *copied: how many are in dst; the events that did
    # not fit are in the engine's buffer from `start` on. Returns how many commands were
    # applied (n unless memory ran out).
    cdef int64_t i = 0, m, done
    cdef int32_t ring[ENGINE_RING]
    cdef int32_t found[ENGINE_RING]
    cdef bint big = _engine_big(e, n)
    e.ev_home = e.ev
    e.ev_home_n = start
    e.ev_home_cap = e.ev_cap
    e.ev_dst_n = 0
    e.ev = dst
    e.n_ev = 0
    e.ev_cap = cap
    e.ev_borrowed = 1
    _engine_prime(e, cmds, n, ring)
    while i < n:
        m = OUT_BLOCK if n - i > OUT_BLOCK else n - i
        done = _engine_part(e, cmds, i, i + m, n, ring, found, big) - i
        if e.ev_borrowed == 2:
            _detour_end(e, dst, cap)
        i += done
        if done < m:
            break
    if e.ev_borrowed == 1:
        e.ev_dst_n = e.n_ev
        e.ev = e.ev_home
        e.n_ev = start
        e.ev_cap = e.ev_home_cap
        e.ev_borrowed = 0
    e.ev_home = NULL
    copied[0] = e.ev_dst_n
    return i


cdef int mc_engine_get(const mc_engine* e, uint64_t oid, uint32_t* symbol, int* side,
                       int64_t* price, int64_t* qty) noexcept nogil:
    """1 and (symbol, side, price, open qty) of a resting order, or 0."""
    cdef int32_t k = _resting_slot(e, oid)
    if k < 0:
        return 0
    symbol[0] = e.symbols[k]
    return mc_get(e.books[k], oid, side, price, qty)


cdef int64_t mc_engine_count(const mc_engine* e) noexcept nogil:
    cdef int64_t n = 0
    cdef int32_t k
    for k in range(e.n_books):
        n += mc_count(e.books[k])
    return n


cdef inline uint64_t _hmix(uint64_t h, uint64_t v) noexcept nogil:
    h = (h ^ v) * <uint64_t>0x100000001b3
    return h ^ (h >> 29)


cdef uint64_t mc_engine_state_hash(const mc_engine* e) noexcept nogil:
    """Hash over every symbol (in the order added), its limits and its book's state hash (every
    level and order in queue order), and the symbol names."""
    cdef uint64_t h = <uint64_t>1469598103934665603
    cdef int32_t k
    cdef const mc_symbol_cfg* c
    for k in range(e.n_books):
        h = _hmix(h, e.symbols[k])
        c = &e.cfg[k]
        h = _hmix(h, <uint64_t>c.tick)
        h = _hmix(h, <uint64_t>c.min_price)
        h = _hmix(h, <uint64_t>c.max_price)
        h = _hmix(h, <uint64_t>c.ref_price)
        h = _hmix(h, <uint64_t>c.band)
        h = _hmix(h, <uint64_t>c.max_qty)
        h = _hmix(h, <uint64_t>c.max_notional)
        h = _hmix(h, mc_state_hash(e.books[k]))
    return _hmix(h, e.names_hash)


cdef int mc_engine_reindex(mc_engine* e) noexcept nogil:
    """Rebuild the order-id routing from the books (after books were restored in place from
    snapshots): every resting order maps to its book's slot. 0, or -1 on memory exhaustion
    (routing unchanged), -2 if an order id rests in two books (routing unchanged). An engine of
    one book keeps no routing (_routed): its index is emptied."""
    cdef mc_map fresh
    if not _routed(e):
        if _map_init(&fresh, 256) < 0:
            return -1
        free(e.oid_index.tab)
        e.oid_index = fresh
        return 0
    return _route_all(e)


cdef int _route_all(mc_engine* e) noexcept nogil:
    # mc_engine_reindex's rebuild, over every book (also with one: mc_engine_add_book)
    cdef int64_t total = mc_engine_count(e)
    cdef mc_map fresh
    cdef int32_t k, i, idx
    cdef int s
    cdef const mc_book* b
    if _map_init(&fresh, _routing_want(e, (total + 1) * 4)) < 0:
        return -1
    for k in range(e.n_books):
        b = e.books[k]
        for s in range(2):
            for i in range(b.side[s].n):
                idx = b.levels[b.side[s].lv[i]].head
                while idx >= 0:
                    if _map_find(&fresh, b.orders[idx].oid) >= 0:
                        free(fresh.tab)
                        return -2
                    _map_upsert(&fresh, b.orders[idx].oid, k)
                    idx = b.orders[idx].next
    free(e.oid_index.tab)
    e.oid_index = fresh
    return 0


cdef int64_t _apply_journaled(mc_engine* e, mc_journal* jc, mc_journal* jt,
                              const mc_command* c) noexcept nogil:
    # One command through the engine, then its record (with the outcome, which replay checks)
    # and its fills into the journals' buffers. A command that ran out of memory changed
    # nothing and is not journaled. An I/O failure leaves jc.err / jt.err set.
    # The command is read once, into this copy, which is both applied and journaled: the
    # caller's array is read without the GIL, and another thread writing into it between the
    # two reads made the record another command than the one applied (recovery then stopped
    # at it: "replay diverged", the journal unrecoverable from there).
    cdef mc_command cmd = c[0]
    cdef int64_t start = e.n_ev
    cdef int64_t r = mc_engine_apply(e, &cmd)
    if r == -MC_ERR_NOMEM:
        return r
    cdef uint64_t seq = jc.next_seq
    # no record, no fills: a fill in the trade journal always has its command on file
    if mc_journal_command(jc, &cmd, r) == 0 and jt != NULL:
        mc_journal_fills(jt, seq, &e.ev[start], e.n_ev - start, jc, -1)
    return r


cdef inline uint64_t _writes_seen(const mc_journal* jc, const mc_journal* jt) noexcept nogil:
    # the seqs last handed to write(2) by either journal: a change means a chunk made a write
    cdef uint64_t w = 0
    if jc != NULL:
        w += jc.written_seq
    if jt != NULL:
        w += jt.written_seq
    return w


cdef int64_t _journaled_run(mc_engine* e, mc_journal* jc, mc_journal* jt,
                            const mc_command* cmds, const uint64_t* seqs, const int64_t* results,
                            int64_t lo, int64_t hi, int64_t n, uint64_t trades_from,
                            int32_t* ring, int32_t* found, bint deep,
                            int64_t* got, int64_t* fills, const int64_t* tss) noexcept nogil:
    # Commands lo..hi-1 of cmds[0:n], looking ahead across the whole batch (through the books
    # too when deep, as _engine_run_deep). jc != NULL: journal each one (_apply_journaled);
    # else recovery: check each outcome against results[i], write the fills of seqs from
    # trades_from on into jt, each with its command record's journal time tss[i] (jt NULL: count them in *fills when fills != NULL, what a writer
    # would have written), drop the events. Returns hi, or the first command that ran out
    # of memory, failed to journal or (recovery) came out differently (its outcome in *got:
    # -MC_ERR_NOMEM, never journaled, when memory ran out). One function with a
    # flag, where the unjournaled loops have two: a journaled command costs several times an
    # unjournaled one, and the flag's branch is lost in it.
    cdef int64_t i, k, start, r
    if deep:
        _engine_deep_prime(e, cmds, lo, n, ring, found)
    for i in range(lo, hi):
        if deep:
            _engine_ahead_deep(e, cmds, i, n, ring, found)
        elif i + ENGINE_PREFETCH_AHEAD < n:
            ring[(i + ENGINE_PREFETCH_AHEAD) & (ENGINE_RING - 1)] = _engine_look_ahead(
                e, &cmds[i + ENGINE_PREFETCH_AHEAD])
        if jc != NULL:
            if _apply_journaled(e, jc, jt, &cmds[i]) == -MC_ERR_NOMEM or jc.err != 0:
                return i
            continue
        start = e.n_ev
        r = mc_engine_apply(e, &cmds[i])
        if r != results[i]:
            e.n_ev = start
            got[0] = r
            return i
        if seqs[i] >= trades_from:
            if jt != NULL:
                mc_journal_fills(jt, seqs[i], &e.ev[start], e.n_ev - start, NULL, tss[i])
            elif fills != NULL:
                for k in range(start, e.n_ev):
                    if e.ev[k].kind == MC_EV_FILL:
                        fills[0] += 1
        e.n_ev = start
    return hi


cdef int64_t _journaled_loop(mc_engine* e, mc_journal* jc, mc_journal* jt,
                             const mc_command* cmds, const uint64_t* seqs, const int64_t* results,
                             int64_t n, uint64_t trades_from, int64_t* got,
                             int64_t* fills, const int64_t* tss) noexcept nogil:
    # _journaled_run over a batch: on big books (_engine_big) in chunks, each in the loop
    # mc_deep_mode chooses, as mc_engine_process does. Whether the books are big is asked again
    # every DEEP_CHUNK * DEEP_EPOCH commands until they are: recovery replays a whole journal
    # segment in one call, starting from a snapshot's books or from none. A timed chunk in
    # which a journal handed its buffer to write(2) (a copy of up to a megabyte into the page
    # cache, worth many chunks of commands) would decide the trial for the other loop: the
    # next chunk runs in the same loop instead, up to twice before such a chunk counts.
    cdef int32_t ring[ENGINE_RING]
    cdef int32_t found[ENGINE_RING]
    cdef int64_t i = 0, m, r, t0
    cdef uint64_t w0
    cdef int mode, retimed = 0
    _engine_prime(e, cmds, n, ring)
    while i < n and not _engine_big(e, n - i):
        m = DEEP_CHUNK * DEEP_EPOCH if n - i > DEEP_CHUNK * DEEP_EPOCH else n - i
        r = _journaled_run(e, jc, jt, cmds, seqs, results, i, i + m, n, trades_from, ring,
                           found, 0, got, fills, tss)
        if r < i + m:
            return r
        i = r
    while i < n:
        m = DEEP_CHUNK if n - i > DEEP_CHUNK else n - i
        mode = mc_deep_mode(&e.deep)
        w0 = _writes_seen(jc, jt)
        t0 = mc_tsc() if mode & 2 else 0
        r = _journaled_run(e, jc, jt, cmds, seqs, results, i, i + m, n, trades_from, ring,
                           found, mode & 1, got, fills, tss)
        if mode & 2:
            t0 = mc_tsc() - t0
            if _writes_seen(jc, jt) == w0 or retimed == 2:
                mc_deep_timed(&e.deep, mode, t0)
                retimed = 0
            else:
                retimed += 1
        if r < i + m:
            return r
        i = r
    return i


cdef int64_t _process_journaled(mc_engine* e, mc_journal* jc, mc_journal* jt,
                                const mc_command* cmds, int64_t n) noexcept nogil:
    return _journaled_loop(e, jc, jt, cmds, NULL, NULL, n, 0, NULL, NULL, NULL)


cdef int64_t _replay(mc_engine* e, mc_journal* jt, const mc_command* cmds, const uint64_t* seqs,
                     const int64_t* results, int64_t n, uint64_t trades_from,
                     int64_t* got, int64_t* fills, const int64_t* tss) noexcept nogil:
    # Recovery: apply journaled commands, check each outcome against the recorded one, and
    # write the fills of commands the trade journal does not hold yet (jt NULL: count them
    # in *fills, when not NULL); a fill written carries its command record's journal time,
    # tss[i], not the recovery's clock. Returns how many were
    # applied; fewer than n means command n's outcome differed, the engine's in *got
    # (-MC_ERR_NOMEM: memory ran out, and that command changed nothing).
    return _journaled_loop(e, NULL, jt, cmds, seqs, results, n, trades_from, got, fills, tss)


cdef int64_t mc_engine_pending_events(const mc_engine* e) noexcept nogil:
    return e.n_ev


cdef int64_t mc_engine_drain_events(mc_engine* e, mc_event* out, int64_t cap) noexcept nogil:
    """Move up to `cap` pending events (oldest first) into out; the rest stay pending."""
    cdef int64_t k = e.n_ev if e.n_ev < cap else cap
    if k <= 0:
        return 0
    memcpy(out, e.ev, k * sizeof(mc_event))
    if k < e.n_ev:
        memmove(e.ev, &e.ev[k], (e.n_ev - k) * sizeof(mc_event))
    e.n_ev -= k
    return k


cdef int64_t mc_engine_drain_events_owner(mc_engine* e, uint64_t owner, mc_event* out,
                                          int64_t cap) noexcept nogil:
    """Move up to `cap` of `owner`'s pending events into out, dropping the others before them;
    events after the last one that fitted stay pending. Returns the count written."""
    cdef int64_t i = 0, k = 0
    while i < e.n_ev:
        if _ev_of(&e.ev[i], owner):
            if k == cap:
                break
            out[k] = e.ev[i]
            k += 1
        i += 1
    if i < e.n_ev:
        memmove(e.ev, &e.ev[i], (e.n_ev - i) * sizeof(mc_event))
    e.n_ev -= i
    return k


cdef int mc_engine_busy_enter(mc_engine* e, uint8_t what) except -1:
    # The books see it through their host byte (MC_GUARD_HOSTED); a book busy on its own makes
    # the engine busy too (mc_busy_enter). Inside this thread's hold: nothing to mark.
    if e.busy:
        return _engine_busy_slow(e)
    e.busy = what
    return 0


cdef void mc_engine_busy_leave(mc_engine* e) noexcept:
    if e.busy != MC_BUSY_HELD:      # a hold is released by its owner (mc_engine_unhold)
        e.busy = 0


cdef int _engine_busy_slow(const mc_engine* e) except -1:
    if e.busy == MC_BUSY_HELD and mc_held_by_me(&e.busy):
        return 1
    return mc_raise_busy("Engine", e.busy, &e.busy)


cdef inline int _check_busy(const mc_engine* e) except -1:
    # every Engine method that reads or writes the engine or its books, first
    if e.busy:
        return _engine_busy_slow(e)
    return 0


cdef int mc_engine_hold(mc_engine* e, str call=None) except -1:
    # A read in several steps (pickle, copy, snapshot file, check_invariants) holds the engine
    # and so its books (their host byte) until mc_engine_unhold: another thread's call raises
    # BusyError, this thread's go on. 1: this thread held it already (release nothing).
    # call: what the refusal names (None: such a read)
    if e.busy:
        return _engine_busy_slow(e)
    e.busy = MC_BUSY_HELD
    try:
        mc_hold_register(&e.busy, call)
    except BaseException:
        e.busy = 0
        raise
    return 0


cdef void mc_engine_unhold(mc_engine* e, int nested) noexcept:
    if not nested:
        mc_hold_unregister(&e.busy)
        e.busy = 0
