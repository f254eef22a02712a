"""check_invariants() must really detect corruption, not just return.

ReferenceBook: its private structures are plain Python, so each test damages one thing and checks
that the first violation is named. Compiled OrderBook: its state is reachable only through the
``address`` handle (the ``mc_book*``); a ctypes mirror of the stable prefix of ``mc_book`` (up to
its ladders) and of ``mc_order`` / ``mc_level`` (layouts from ``_core.pxd``, sizes checked against
STRUCT_SIZES, the mirror checked against the public API before any write) lets a test damage one
field, see the check fail, restore it and see the check pass again. Both books also pass the
check on every state of a seeded session.
"""
from __future__ import annotations

import ctypes
import random

import pytest

from matchcore import OrderBook, ReferenceBook, SnapshotError
from matchcore._enums import STP, STRUCT_SIZES, TIF, OrderRejected
from matchcore.reference import _Order

BUY, SELL = 0, 1


def _populated(book):
    """Two bid levels and two ask levels, several orders each (ids: bids 1-4, asks 11-14)."""
    book.submit(1, BUY, 100, 5, owner=1)
    book.submit(2, BUY, 100, 3, owner=2)
    book.submit(3, BUY, 100, 4)
    book.submit(4, BUY, 98, 7)
    book.submit(11, SELL, 102, 2)
    book.submit(12, SELL, 102, 6)
    book.submit(13, SELL, 103, 1)
    book.submit(14, SELL, 105, 9)
    book.check_invariants()
    return book


# ------------------------------------------------------------------ both books, valid states


@pytest.mark.parametrize("stp", list(STP))
def test_check_invariants_passes_after_every_command_of_session(book_cls, stp):
    rng = random.Random(1234 + int(stp))
    book = book_cls(stp=stp)
    live: list[int] = []
    for i in range(4000):
        r = rng.random()
        side = rng.randrange(2)
        price = rng.randrange(95, 106)
        try:
            if r < 0.55:
                book.submit(i, side, price, rng.randrange(1, 20), rng.choice((0, 0, 0, 1, 2)),
                            owner=rng.randrange(3), post_only=rng.random() < 0.1)
                live.append(i)
            elif r < 0.62:
                book.submit_market(i, side, rng.randrange(1, 30), owner=rng.randrange(3))
            elif r < 0.82 and live:
                book.cancel(live.pop(rng.randrange(len(live))))
            elif live:
                book.modify(rng.choice(live), rng.randrange(1, 20),
                            rng.choice((None, price)))
        except OrderRejected:
            pass
        book.check_invariants()
    assert len(book.events()) > 4000


# ------------------------------------------------------------------ ReferenceBook corruption


@pytest.fixture
def ref():
    return _populated(ReferenceBook())


def _expect_violation(book, *fragments):
    with pytest.raises(AssertionError) as info:
        book.check_invariants()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_reference_check_detects_empty_level(ref):
    ref._sides[BUY][97] = type(ref._sides[BUY][100])()
    _expect_violation(ref, "empty level", "97")


def test_reference_check_detects_non_positive_qty(ref):
    ref._orders[2].qty = 0
    _expect_violation(ref, "order 2", "open qty 0")


def test_reference_check_detects_order_at_wrong_price_level(ref):
    ref._orders[12].price = 104
    _expect_violation(ref, "order 12", "104")


def test_reference_check_detects_order_missing_from_index(ref):
    del ref._orders[13]
    _expect_violation(ref, "order 13", "not indexed")


def test_reference_check_detects_index_entry_without_level(ref):
    ref._orders[99] = _Order(99, BUY, 100, 1, 0, False)
    _expect_violation(ref, "[99]")


def test_reference_check_detects_crossed_book(ref):
    o = _Order(50, BUY, 102, 1, 0, False)
    ref._sides[BUY][102] = type(ref._sides[BUY][100])({50: o})
    ref._orders[50] = o
    _expect_violation(ref, "crossed", "102")


def test_reference_check_detects_order_in_two_levels(ref):
    o = ref._orders[4]
    ref._sides[BUY][97] = type(ref._sides[BUY][100])({4: o})
    _expect_violation(ref, "order 4")


def test_reference_check_detects_level_key_mismatch(ref):
    level = ref._sides[SELL][103]
    level[77] = level.pop(13)
    _expect_violation(ref, "13", "77")


# ------------------------------------------------------------------ compiled book corruption


class _Order_c(ctypes.Structure):
    _fields_ = [("oid", ctypes.c_uint64), ("price", ctypes.c_int64), ("qty", ctypes.c_int64),
                ("owner", ctypes.c_uint64), ("seq", ctypes.c_uint64), ("prev", ctypes.c_int32),
                ("next", ctypes.c_int32), ("level", ctypes.c_int32), ("side", ctypes.c_uint8),
                ("post_only", ctypes.c_uint8), ("live", ctypes.c_uint8),
                ("_pad", ctypes.c_uint8 * 9)]


class _Level_c(ctypes.Structure):
    # The level total is a 16-byte-aligned __int128 in C; ctypes has no such type, so it is
    # mirrored as its two little-endian halves.
    _fields_ = [("price", ctypes.c_int64), ("_pad", ctypes.c_int64),
                ("qty_lo", ctypes.c_uint64), ("qty_hi", ctypes.c_int64),
                ("count", ctypes.c_int32), ("head", ctypes.c_int32), ("tail", ctypes.c_int32),
                ("next_free", ctypes.c_int32), ("_pad2", ctypes.c_int64 * 2)]

    @property
    def qty(self):
        return (self.qty_hi << 64) | self.qty_lo

    @qty.setter
    def qty(self, value):
        self.qty_lo = value & (2**64 - 1)
        self.qty_hi = value >> 64


class _BookPrefix_c(ctypes.Structure):
    """The first fields of mc_book (the rest is not touched)."""
    _fields_ = [("orders", ctypes.POINTER(_Order_c)), ("orders_cap", ctypes.c_int32),
                ("free_order", ctypes.c_int32), ("n_orders", ctypes.c_int64),
                ("levels", ctypes.POINTER(_Level_c)), ("levels_cap", ctypes.c_int32),
                ("free_level", ctypes.c_int32)]


class CompiledView:
    """Typed access to a live OrderBook's C state, validated against its public API."""

    def __init__(self, book: OrderBook):
        assert ctypes.sizeof(_Order_c) == STRUCT_SIZES["order"], "mc_order layout changed"
        assert ctypes.sizeof(_Level_c) == STRUCT_SIZES["level"], "mc_level layout changed"
        self.book = book
        self.b = _BookPrefix_c.from_address(book.raw_address)
        assert self.b.n_orders == len(book), "mc_book prefix layout changed (n_orders)"
        assert 0 <= self.b.n_orders <= self.b.orders_cap, "mc_book prefix layout changed (cap)"
        self.slots = {}
        for i in range(self.b.orders_cap):
            o = self.b.orders[i]
            if o.live:
                self.slots[o.oid] = i
        assert len(self.slots) == len(book), "live order slots do not match len(book)"
        for oid, i in self.slots.items():
            o = self.b.orders[i]
            assert book.get(oid) == (o.side, o.price, o.qty), f"mc_order mirror wrong for {oid}"
            lv = self.b.levels[o.level]
            assert lv.price == o.price, "mc_level mirror wrong"

    def order(self, oid) -> _Order_c:
        return self.b.orders[self.slots[oid]]

    def level_of(self, oid) -> _Level_c:
        return self.b.levels[self.order(oid).level]


@pytest.fixture
def compiled():
    book = _populated(OrderBook())
    return book, CompiledView(book)


def _damage_then_restore(book, obj, field, value, *fragments):
    """Set obj.field = value, expect check_invariants to fail naming fragments, then restore."""
    original = getattr(obj, field)
    setattr(obj, field, value)
    try:
        message = _expect_violation(book, *fragments)
    finally:
        setattr(obj, field, original)
    book.check_invariants()  # restored: passes again
    return message


def test_compiled_check_detects_non_positive_order_qty(compiled):
    book, view = compiled
    _damage_then_restore(book, view.order(2), "qty", 0, "order 2 has non-positive open qty 0")


def test_compiled_check_detects_level_qty_not_sum_of_orders(compiled):
    book, view = compiled
    lv = view.level_of(12)
    _damage_then_restore(book, lv, "qty", lv.qty + 7,
                         f"level side 1 price 102: qty {lv.qty + 7} != sum of orders {lv.qty}")


def test_compiled_check_detects_level_count_mismatch(compiled):
    book, view = compiled
    lv = view.level_of(1)
    _damage_then_restore(book, lv, "count", lv.count + 1,
                         f"level side 0 price 100: count {lv.count + 1} != orders in queue "
                         f"{lv.count}")


def test_compiled_check_detects_order_price_not_its_level(compiled):
    book, view = compiled
    _damage_then_restore(book, view.order(13), "price", 104,
                         "order 13 is queued at side 1 price 103 but says side 1 price 104")


def test_compiled_check_detects_order_side_not_its_ladder(compiled):
    book, view = compiled
    _damage_then_restore(book, view.order(4), "side", SELL,
                         "order 4 is queued at side 0 price 98 but says side 1 price 98")


def test_compiled_check_detects_fifo_sequence_violation(compiled):
    book, view = compiled
    head, second = view.order(1), view.order(2)
    _damage_then_restore(book, second, "seq", head.seq - 1 if head.seq else 0, "FIFO")


def test_compiled_check_detects_arrival_number_not_below_the_next(compiled):
    # The last order of its level, numbered at or past the book's next arrival number: FIFO
    # along its queue still holds, but the next order to join the level would queue behind it
    # with a smaller number, and the book's own snapshot is refused by from_snapshot().
    book, view = compiled
    assert book.level(BUY, 100)[-1][0] == 3
    original = view.order(3).seq
    view.order(3).seq = 2**62
    try:
        with pytest.raises(SnapshotError):
            OrderBook.from_snapshot(book.snapshot())
    finally:
        view.order(3).seq = original
    _damage_then_restore(book, view.order(3), "seq", 2**62, "order 3", "arrival number")


def test_compiled_check_detects_post_only_flag_other_than_0_or_1(compiled):
    # the flag is a byte the book writes as 0 or 1; any other value passed the check, yet the
    # book's own snapshot is refused by from_snapshot() for it
    book, view = compiled
    original = view.order(12).post_only
    view.order(12).post_only = 2
    try:
        with pytest.raises(SnapshotError):
            OrderBook.from_snapshot(book.snapshot())
    finally:
        view.order(12).post_only = original
    _damage_then_restore(book, view.order(12), "post_only", 2, "order 12", "post-only flag")


def test_compiled_check_detects_dead_slot_in_queue(compiled):
    book, view = compiled
    _damage_then_restore(book, view.order(3), "live", 0, "dead order slot",
                         "linked at side 0 price 100")


def test_compiled_check_detects_order_count_mismatch(compiled):
    book, view = compiled
    n = view.b.n_orders
    _damage_then_restore(book, view.b, "n_orders", n + 1, f"{n + 1} orders counted but {n} queued")


def test_compiled_check_detects_broken_back_link(compiled):
    book, view = compiled
    o = view.order(3)
    _damage_then_restore(book, o, "prev", -1, "broken back link at order 3")


def test_compiled_view_tracks_state_after_trading(compiled):
    """The mirror reads the same state the public API reports after fills and modifies."""
    book, _ = compiled
    book.submit(20, BUY, 102, 5, TIF.IOC)
    book.modify(4, 2)
    view = CompiledView(book)
    assert view.order(12).qty == book.get(12)[2] == 3
    assert view.order(4).qty == 2
    assert view.level_of(12).qty == book.best_ask()[1]


def test_check_invariants_crossed_book_passes_only_when_allowed(book_cls):
    # The same keyword on both books. The reference model has no place(): its crossed state
    # is made through _rest, which rests an order without matching as place() does.
    book = _populated(book_cls())
    if isinstance(book, ReferenceBook):
        book._rest(_Order(30, BUY, 103, 1, 0, False))
    else:
        book.place(30, BUY, 103, 1)
    with pytest.raises(AssertionError, match="crossed: best bid 103 >= best ask 102"):
        book.check_invariants()
    book.check_invariants(allow_crossed=True)
    book.cancel(30)
    book.check_invariants()


def test_compiled_check_detects_crossed_book_made_by_replay_place():
    """place() rests without matching (replay mode), so it can cross the book for real."""
    book = _populated(OrderBook())
    book.place(30, BUY, 103, 1)  # above the best ask 102
    _expect_violation(book, "crossed", "103", "102")
    book.check_invariants(allow_crossed=True)
    book.cancel(30)
    book.check_invariants()


# ------------------------------------------------------------------ compiled ladder corruption


class _Map_c(ctypes.Structure):
    _fields_ = [("tab", ctypes.c_void_p), ("mask", ctypes.c_uint64), ("shift", ctypes.c_int32),
                ("n", ctypes.c_int64)]


class _Ladder_c(ctypes.Structure):
    _fields_ = [("keys", ctypes.POINTER(ctypes.c_int64)), ("lv", ctypes.POINTER(ctypes.c_int32)),
                ("n", ctypes.c_int32), ("cap", ctypes.c_int32), ("empties", ctypes.c_int32),
                ("head", ctypes.c_int32), ("gaps", ctypes.c_int32), ("map", _Map_c)]


class _BookLadders_c(ctypes.Structure):
    """mc_book up to its two ladders."""
    _fields_ = _BookPrefix_c._fields_ + [("side", _Ladder_c * 2)]


def _gapped():
    """A bid ladder of 4,000 levels created in random price order: most were created more than
    MC_LADDER_NEAR entries from both ends, so the ladder holds gaps (checked through the mirror,
    itself checked against the public API)."""
    book = OrderBook()
    rng = random.Random(17)
    for i, off in enumerate(rng.sample(range(40_000), 4_000)):
        book.submit(i + 1, BUY, 1_000_000 - off, 1)
    book.submit(10**6, SELL, 2_000_000, 1)
    book.check_invariants()
    view = _BookLadders_c.from_address(book.raw_address)
    L = view.side[BUY]
    assert L.n - L.empties - L.gaps == book.level_count(BUY), "mc_ladder mirror wrong"
    assert L.keys[L.n - 1] == book.best_bid()[0], "mc_ladder mirror wrong"
    assert L.gaps > 100
    gaps = [i for i in range(L.n) if L.lv[i] == -1]
    assert len(gaps) == L.gaps
    return book, view, L, gaps


def _damage_entry_then_restore(book, array, i, value, *fragments):
    """_damage_then_restore for array[i] (a ladder's keys or lv)."""
    original = array[i]
    array[i] = value
    try:
        _expect_violation(book, *fragments)
    finally:
        array[i] = original
    book.check_invariants()


def test_compiled_check_detects_nonempty_gap_level():
    # every gap points at levels[-1]; with orders counted there, each gap read as a level of
    # price 0 (depth() showed them) while the check passed
    book, view, _, _ = _gapped()
    sentinel = _Level_c.from_address(ctypes.addressof(view.levels.contents)
                                     - ctypes.sizeof(_Level_c))
    assert (sentinel.count, sentinel.qty, sentinel.head, sentinel.tail) == (0, 0, -1, -1)
    _damage_then_restore(book, sentinel, "count", 1, "levels[-1]", "count 1")
    _damage_then_restore(book, sentinel, "qty", 5, "levels[-1]", "qty 5")
    _damage_then_restore(book, sentinel, "head", 0, "levels[-1]", "head 0")


def test_compiled_check_detects_gap_with_wrong_key():
    book, _, L, gaps = _gapped()
    i = gaps[len(gaps) // 2]
    _damage_entry_then_restore(book, L.keys, i, L.keys[i] - 1, "gap at position", str(i))


def test_compiled_check_detects_gap_counter_mismatch():
    book, _, L, _ = _gapped()
    _damage_then_restore(book, L, "gaps", L.gaps + 1, "gaps, counter says")


def test_compiled_check_detects_ladder_entry_outside_level_pool():
    book, view, L, _ = _gapped()
    i = L.n // 2
    while L.lv[i] == -1:
        i += 1
    _damage_entry_then_restore(book, L.lv, i, view.levels_cap, "outside the pool", str(i))
    _damage_entry_then_restore(book, L.lv, i, -2, "outside the pool", str(i))


def test_compiled_check_detects_level_pool_leak_and_live_level_on_free_list(compiled):
    # "free lists and counters agree": the level pool's free list as the order pool's. A level
    # slot lost from it (a leak) or a level of the ladders on it (the next new price would take
    # a live level) passed the check.
    book, view = compiled
    b = view.b
    assert b.free_level >= 0
    _damage_then_restore(book, b, "free_level", -1, "level pool leak")
    live = view.level_of(1)
    free = b.levels[b.free_level]
    assert live.count > 0 and free.count == -1
    original = free.next_free
    free.next_free = view.order(1).level
    try:
        _expect_violation(book, "live level slot", str(view.order(1).level), "free list")
    finally:
        free.next_free = original
    book.check_invariants()


_FREE_LIST_DAMAGE = r'''
import sys
sys.path.insert(0, sys.argv[1])
from test_invariants import CompiledView, _populated
from matchcore import OrderBook
book = _populated(OrderBook())
view = CompiledView(book)
b = view.b
free = b.free_order
assert free >= 0
b.orders[free].next = free if sys.argv[2] == "cycle" else b.orders_cap + 5
try:
    book.check_invariants()
except AssertionError as e:
    print("violation:", e)
else:
    print("passed")
'''


@pytest.mark.parametrize("damage", ["cycle", "outside"])
def test_compiled_check_of_a_damaged_order_free_list_reports_it(damage, tmp_path):
    # A free order slot linked to itself, or past the pool, made the walk of the order free
    # list spin forever or read past the pool; the walk is bounded as the level free list's is.
    # In a child: the unbounded walk holds the GIL and cannot be interrupted.
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "damage.py"
    script.write_text(_FREE_LIST_DAMAGE)
    proc = subprocess.run([sys.executable, str(script), str(Path(__file__).parent), damage],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("violation:"), out
    assert ("order pool leak" if damage == "cycle" else "outside the pool") in out, out


class _MapEntry_c(ctypes.Structure):
    _fields_ = [("key", ctypes.c_uint64), ("val", ctypes.c_int32), ("home", ctypes.c_uint32)]


def _price_map(book, side):
    """The entries of one side's price map (price -> level slot), through the mirror, checked
    against the book's levels."""
    view = _BookLadders_c.from_address(book.raw_address)
    m = view.side[side].map
    tab = (_MapEntry_c * (m.mask + 1)).from_address(m.tab)
    used = [e for e in tab if e.val >= 0]
    assert len(used) == m.n == book.level_count(side), "mc_map mirror wrong"
    assert sorted(e.key for e in used) == sorted(p for p, _ in book.depth(100)[side].tolist())
    return view.side[side].map, tab


@pytest.mark.parametrize("side", [BUY, SELL])
def test_compiled_check_detects_price_map_entry_with_wrong_home(compiled, side):
    # Each level was looked up through its price map, but the map's own order went unchecked:
    # an entry recording another home slot is moved to a wrong place by the next deletion's
    # backward shift, and its level is then not found (a new one is made at the same price).
    book, _ = compiled
    m, tab = _price_map(book, side)
    e = next(e for e in tab if e.val >= 0)
    _damage_then_restore(book, e, "home", (e.home + 1) & m.mask, f"side {side} price map",
                         "wrong home slot")


def test_compiled_check_detects_stale_price_map_entry(compiled):
    # An entry left for a price no level of the ladder holds (its counter as it was): a later
    # order at that price would join a level that holds another price.
    book, _ = compiled
    m, tab = _price_map(book, BUY)

    def home(key):              # _home in _map.pxd
        return ((((key >> 2) * 0x9E3779B97F4A7C15) % 2**64 >> (m.shift + 2)) << 2) | (key & 3)

    # a price no level holds, whose home slot (and the one before it) is empty: an entry there
    # is in order, only stale
    price = next(p for p in range(90, 200) if tab[home(p)].val < 0
                 and tab[(home(p) - 1) & m.mask].val < 0)
    i = home(price)
    live = next(e for e in tab if e.val >= 0)
    tab[i].key, tab[i].home = price, i
    _damage_then_restore(book, tab[i], "val", live.val, "side 0 price map", "counter")
    tab[i].key = tab[i].home = 0
    book.check_invariants()


def test_compiled_check_detects_id_index_entry_out_of_robin_hood_order(compiled):
    # the id index's order, which the check took for it alone, is checked by the same code
    book, view = compiled

    class _BookIndex_c(ctypes.Structure):
        _fields_ = _BookLadders_c._fields_ + [("index", _Map_c)]

    index = _BookIndex_c.from_address(book.raw_address).index
    tab = (_MapEntry_c * (index.mask + 1)).from_address(index.tab)
    assert sorted(e.key for e in tab if e.val >= 0) == sorted(view.slots), "id index mirror wrong"
    e = next(e for e in tab if e.val >= 0)
    _damage_then_restore(book, e, "home", (e.home + 1) & index.mask, "id index entry",
                         "wrong home slot")


# ------------------------------------------------------------------ engine routing corruption


class _BookSymbol_c(ctypes.Structure):
    """mc_book up to its symbol field."""
    _fields_ = _BookLadders_c._fields_ + [
        ("index", _Map_c), ("ev", ctypes.c_void_p), ("n_ev", ctypes.c_int64),
        ("ev_cap", ctypes.c_int64), ("seq", ctypes.c_uint64), ("now_ns", ctypes.c_int64),
        ("symbol", ctypes.c_uint32)]


class _Engine_c(ctypes.Structure):
    """The first fields of mc_engine (_engine.pxd)."""
    _fields_ = [("books", ctypes.POINTER(ctypes.c_void_p)), ("cfg", ctypes.c_void_p),
                ("symbols", ctypes.POINTER(ctypes.c_uint32)), ("n_books", ctypes.c_int32),
                ("cap", ctypes.c_int32), ("sym_index", _Map_c), ("oid_index", _Map_c)]


def _routed_engine():
    """Three symbols with orders resting in each, through the mirror (checked against the
    public API): the engine's table of books, symbols and both routing tables."""
    from matchcore import Engine

    eng = Engine()
    for sym in (7, 8, 9):
        eng.add_symbol(sym)
        for i in range(4):
            eng.submit(sym, sym * 10 + i, i % 2, 100 - 3 + 6 * (i % 2), 1 + i)
    eng.events()
    eng.check_invariants()
    view = _Engine_c.from_address(eng.raw_address)
    assert view.n_books == 3 and [view.symbols[k] for k in range(3)] == [7, 8, 9], \
        "mc_engine mirror wrong"
    books = [_BookSymbol_c.from_address(view.books[k]) for k in range(3)]
    assert [b.n_orders for b in books] == [4, 4, 4], "mc_engine mirror wrong"
    assert [b.symbol for b in books] == [7, 8, 9], "mc_book mirror wrong (symbol)"
    sym_tab = (_MapEntry_c * (view.sym_index.mask + 1)).from_address(view.sym_index.tab)
    oid_tab = (_MapEntry_c * (view.oid_index.mask + 1)).from_address(view.oid_index.tab)
    assert sorted((e.key, e.val) for e in sym_tab if e.val >= 0) == [(7, 0), (8, 1), (9, 2)]
    assert sorted((e.key, e.val) for e in oid_tab if e.val >= 0) == [
        (sym * 10 + i, k) for k, sym in enumerate((7, 8, 9)) for i in range(4)], \
        "id routing mirror wrong"
    return eng, view, books, sym_tab, oid_tab


def test_engine_check_detects_a_book_writing_another_symbol_into_its_events():
    # a book stamping the wrong symbol routed orders right and labelled their events wrong
    eng, _, books, _, _ = _routed_engine()
    _damage_then_restore(eng, books[1], "symbol", 9, "book of symbol 8", "writes symbol 9")


def test_engine_check_detects_a_symbol_not_routed_to_its_book():
    eng, view, _, sym_tab, _ = _routed_engine()
    # empty entries keep whatever bytes the allocator returned (a freed table's keys among
    # them): only an occupied entry is symbol 8's
    e = next(e for e in sym_tab if e.key == 8 and e.val >= 0)
    _damage_then_restore(eng, e, "val", 2, "symbol 8 is not routed to its book")
    _damage_then_restore(eng, e, "home", e.home ^ 1, "symbol index entry 8",
                         "wrong home slot")
    _damage_then_restore(eng, view.sym_index, "n", 4, "symbol index")


def test_engine_check_detects_id_routing_table_faults():
    # stale entries are allowed (the book is asked first), a slot past the books or a table
    # out of its probe order is not
    eng, view, _, _, oid_tab = _routed_engine()
    e = next(e for e in oid_tab if e.key == 81 and e.val >= 0)
    _damage_then_restore(eng, e, "val", 3, "id routing index sends order 81 to book slot 3")
    _damage_then_restore(eng, e, "home", (e.home + 1) & view.oid_index.mask,
                         "id routing index entry 81", "wrong home slot")
    _damage_then_restore(eng, view.oid_index, "n", view.oid_index.n - 1,
                         "id routing index counter")
