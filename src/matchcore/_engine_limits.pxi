# Part of matchcore._engine (included by _engine.pyx, one C unit): a symbol's limits, each
# checked alone and as a set that must accept some limit order.

_LIMIT_NAMES = ("tick", "min_price", "max_price", "ref_price", "band", "max_qty", "max_notional")


cdef dict _check_limits(dict limits):
    # The limits as plain ints, every one checked: the caller applies them only after this.
    unknown = set(limits) - set(_LIMIT_NAMES)
    if unknown:
        raise TypeError(f"unknown limit(s) {sorted(unknown)}; known: {list(_LIMIT_NAMES)}")
    cdef dict out = {}
    for key, value in limits.items():
        v = mc_int_arg(value, key)
        if key == "tick" and v < 1:
            raise ValueError(f"limit tick must be >= 1 (1 accepts every price), got {v}")
        if v < 0:
            raise ValueError(f"limit {key} must be >= 0 (0 disables it), got {v}")
        if v > 0x7FFFFFFFFFFFFFFF:
            raise OverflowError(f"limit {key} must be below 2**63 (int64), got {v}")
        out[key] = v
    return out


# The limits of a new symbol: none (what mc_engine_add_book sets)
_NO_LIMITS = {"tick": 1, "min_price": 0, "max_price": 0, "ref_price": 0, "band": 0, "max_qty": 0,
              "max_notional": 0}


cdef _check_limit_set(uint32_t sym, dict lim):
    # All seven limits of a symbol (a merged set), each valid alone (_check_limits): refused,
    # naming the limits in conflict, when together they accept no limit order, which is a
    # mistake (a typo, a band moved off the market), never a way to configure anything. A limit
    # order is accepted at a multiple of tick in [1, 2**63) within [min_price, max_price] and
    # ref_price +- band (each where enabled), and qty 1 at that price within max_notional.
    cdef object lo = 1, hi = 0x7FFFFFFFFFFFFFFF
    cdef str lo_by = "the lowest price", hi_by = "the highest price"
    mn, mx, ref, band = lim["min_price"], lim["max_price"], lim["ref_price"], lim["band"]
    if mn > 0 and mx > 0 and mn > mx:
        raise ValueError(f"symbol {sym}: min_price {mn} > max_price {mx}: no price is accepted")
    if mn > 0:
        lo, lo_by = mn, "min_price"
    if mx > 0:
        hi, hi_by = mx, "max_price"
    if ref > 0 and band > 0:
        if ref - band > hi or ref + band < lo:
            edges = (max(1, ref - band), min(ref + band, 0x7FFFFFFFFFFFFFFF))
            raise ValueError(f"symbol {sym}: the band ref_price {ref} +- band {band} = "
                             f"[{edges[0]}, {edges[1]}] lies outside [{lo}, {hi}] "
                             f"({lo_by}, {hi_by}): no price is accepted")
        if ref - band > lo:
            lo, lo_by = ref - band, "ref_price - band"
        if ref + band < hi:
            hi, hi_by = ref + band, "ref_price + band"
    notional = lim["max_notional"]
    if 0 < notional < hi:
        if notional < lo:
            raise ValueError(f"symbol {sym}: max_notional {notional} < {lo}, the lowest price "
                             f"accepted ({lo_by}): every limit order (qty >= 1) is refused")
        hi, hi_by = notional, "max_notional at qty 1"
    tick = lim["tick"]
    if tick > 1 and (lo + tick - 1) // tick * tick > hi:
        raise ValueError(f"symbol {sym}: no multiple of tick {tick} in the prices accepted, "
                         f"[{lo}, {hi}] ({lo_by}, {hi_by}): no price is accepted")


cdef object _limit_set_problem(uint32_t sym, dict lim):
    # _check_limit_set's refusal as a message, or None
    try:
        _check_limit_set(sym, lim)
    except ValueError as exc:
        return str(exc)
    return None


cdef int _check_limit_change(uint32_t sym, dict now, dict merged) except -1:
    # The limits a change leaves must accept some limit order. A symbol whose limits already
    # accept none (an older engine journaled such limits, and recovery restores them as
    # written) may still change a limit that leaves that reason as it is (max_qty, say); a
    # change that causes the contradiction, or alters it, is refused as on any symbol.
    problem = _limit_set_problem(sym, merged)
    if problem is not None and problem != _limit_set_problem(sym, now):
        raise ValueError(problem)
    return 0
