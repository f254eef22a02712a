# cython: language_level=3
# The one hash map of the compiled code: uint64 key -> int32 value, open addressing with linear
# probing and backward-shift deletion. Defined inline here so that every module using it (the
# book's id and price indexes, the engine's symbol and order-id indexes) compiles the same code.

from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t
from libc.stdlib cimport free
from libc.string cimport memcpy
from posix.stdlib cimport posix_memalign

# Open-addressing map uint64 -> int32 (linear probing in Robin Hood order, backward-shift
# deletion, value -1 = empty).
# `home` is the key's home slot, kept so that a deletion's backward shift does not hash every
# entry it passes again (tables have at most 2**32 slots).
cdef extern from *:
    """
    #include <stdint.h>
    typedef struct { uint64_t key; int32_t val; uint32_t home; } mc_map_entry_t;

    /* Robin Hood order: along a run, entries sit in the order of their home slots (an entry is
       never further from its home than the entry after it is from that one's, plus one). Then
       a deletion stops at the first entry at its home, not at the end of the run, which on ids
       hashed in blocks (_home) is nearly always the very next slot. A key of home h belongs in
       front of the first entry in [h, e) whose home lies after h; the entries from there to
       the empty slot e move up one, and the freed slot is returned. Kept out of line: it runs
       only when a key's home is taken, and inlined it made its callers (the queue link among
       them) too big for gcc to inline in turn. */
    static __attribute__((noinline)) uint64_t
    mc_map_make_room(mc_map_entry_t* t, uint64_t mask, uint64_t e, uint64_t h) {
        uint64_t i = h, d = 0, j = e;
        while (i != e && ((i - t[i].home) & mask) >= d) {
            i = (i + 1) & mask;
            d += 1;
        }
        while (j != i) {
            t[j] = t[(j - 1) & mask];
            j = (j - 1) & mask;
        }
        return i;
    }
    """
    ctypedef struct mc_map_entry "mc_map_entry_t":
        uint64_t key
        int32_t val
        uint32_t home

cdef struct mc_map:
    mc_map_entry* tab
    uint64_t mask
    int32_t shift
    int64_t n


cdef extern from *:
    """
    #define MC_GOLDEN 0x9E3779B97F4A7C15ULL
    #include <stdint.h>
    #include <stddef.h>
    #include <sys/mman.h>
    /* Ask for transparent huge pages on a large table or pool: a book of 1M orders spreads its
       id index and order pool over ~100 MiB, and with 4 KiB pages nearly every random access
       is also a TLB miss (a page walk, nested under virtualisation). A hint only: without THP
       (or on a system without madvise) nothing changes. */
    static inline void mc_hugepage_hint(void* p, size_t n) {
    #ifdef MADV_HUGEPAGE
        if (p == NULL || n < ((size_t)4 << 20)) return;
        uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
        uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)4095;
        if (e > a) madvise((void*)a, e - a, MADV_HUGEPAGE);
    #else
        (void)p; (void)n;
    #endif
    }
    """
    uint64_t GOLDEN "MC_GOLDEN"
    uint64_t _map_make_room "mc_map_make_room"(mc_map_entry* t, uint64_t mask, uint64_t e,
                                               uint64_t h) noexcept nogil
    void mc_hugepage_hint(void* p, size_t n) noexcept nogil

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #  define mc_prefetch(p) __builtin_prefetch(p)
    #else
    #  define mc_prefetch(p) ((void)0)
    #endif
    """
    # a hint only: it never faults, even on memory a growth has since freed
    void _prefetch "mc_prefetch"(const void* p) noexcept nogil

# ----------------------------------------------------------------------------------------------
# id index: open addressing, linear probing, Fibonacci hashing, backward-shift deletion
# ----------------------------------------------------------------------------------------------

cdef inline uint64_t _home(const mc_map* m, uint64_t key) noexcept nogil:
    # Fibonacci hashing of blocks of 4 consecutive keys: the keys of a block share one 64-byte
    # line (sequential ids, the usual case, then cost one cache miss per 4 orders, not per order),
    # while blocks spread over the table so mixed or patterned ids do not pile into one run.
    return ((((key >> 2) * GOLDEN) >> (m.shift + 2)) << 2) | (key & 3)


cdef inline void _map_prefetch(const mc_map* m, uint64_t key) noexcept nogil:
    # Ask for the line a lookup of key starts on (a hint: nothing waits for it).
    _prefetch(&m.tab[_home(m, key)])


cdef inline void* _alloc_aligned(size_t nbytes) noexcept nogil:
    # 64-byte aligned (a cache line: a block of 4 map entries, an order, a level, an event);
    # 4 MiB and more 2 MiB aligned, so that it can be backed by huge pages. NULL if out of memory.
    cdef void* p = NULL
    if posix_memalign(&p, (2 << 20) if nbytes >= (4 << 20) else 64, nbytes if nbytes > 0 else 1) != 0:
        return NULL
    mc_hugepage_hint(p, nbytes)
    return p


cdef inline mc_map_entry* _map_alloc(uint64_t cap) noexcept nogil:
    return <mc_map_entry*>_alloc_aligned(cap * sizeof(mc_map_entry))


cdef inline int _map_init(mc_map* m, int64_t want) noexcept nogil:
    cdef int64_t cap = 16
    cdef int bits = 4
    while cap < want * 2:
        cap <<= 1
        bits += 1
    m.tab = _map_alloc(cap)
    if m.tab == NULL:
        return -1
    cdef int64_t i
    for i in range(cap):
        m.tab[i].val = -1
    m.mask = <uint64_t>(cap - 1)
    m.shift = 64 - bits
    m.n = 0
    return 0


cdef inline int32_t _map_find(const mc_map* m, uint64_t key) noexcept nogil:
    cdef uint64_t i = _home(m, key)
    cdef const mc_map_entry* e
    while True:
        e = &m.tab[i]
        if e.val < 0:
            return -1
        if e.key == key:
            return e.val
        i = (i + 1) & m.mask


cdef inline uint64_t _map_probe_from(const mc_map* m, uint64_t key, uint64_t h) noexcept nogil:
    # Position of key, or of the empty slot where key would be stored (the table has room),
    # probing from its home slot h = _home(m, key).
    cdef uint64_t i = h
    while m.tab[i].val >= 0 and m.tab[i].key != key:
        i = (i + 1) & m.mask
    return i


cdef inline uint64_t _map_probe(const mc_map* m, uint64_t key) noexcept nogil:
    return _map_probe_from(m, key, _home(m, key))


cdef inline void _map_fill(mc_map* m, uint64_t i, uint64_t h, uint64_t key, int32_t val) noexcept nogil:
    # Store a new key; i is the empty slot that a probe from its home h ended on.
    if i != h:
        # the key's home is taken: it goes in front of the first entry whose home lies after
        # h (Robin Hood order, see mc_map_make_room)
        i = _map_make_room(m.tab, m.mask, i, h)
    m.tab[i].key = key
    m.tab[i].val = val
    m.tab[i].home = <uint32_t>h
    m.n += 1


cdef inline void _map_put(mc_map* m, uint64_t key, int32_t val) noexcept nogil:
    # The key must be absent and the table must have room (see _ensure).
    cdef uint64_t h = _home(m, key)
    cdef uint64_t i = h
    while m.tab[i].val >= 0:
        i = (i + 1) & m.mask
    _map_fill(m, i, h, key, val)


cdef inline void _map_upsert(mc_map* m, uint64_t key, int32_t val) noexcept nogil:
    # Insert, or overwrite the value of a present key; the table must have room for one more.
    cdef uint64_t h = _home(m, key)
    cdef uint64_t i = _map_probe_from(m, key, h)
    if m.tab[i].val < 0:
        _map_fill(m, i, h, key, val)
    else:
        m.tab[i].val = val


cdef inline void _map_set(mc_map* m, uint64_t key, int32_t val) noexcept nogil:
    cdef uint64_t i = _home(m, key)
    while m.tab[i].key != key or m.tab[i].val < 0:
        i = (i + 1) & m.mask
    m.tab[i].val = val


cdef inline void _map_erase_at(mc_map* m, uint64_t i) noexcept nogil:
    # Remove the entry at slot i (found by _map_probe, table unchanged since).
    # Backward shift: the entries after it that are away from their homes move down one, so
    # lookups never need tombstones. In Robin Hood order (mc_map_make_room) the first entry that
    # is at its home, or an empty slot, ends the shift.
    cdef uint64_t mask = m.mask
    cdef mc_map_entry* t = m.tab
    cdef uint64_t j = (i + 1) & mask
    # one branch for both tests (& does not short-circuit): whether the next slot is empty
    # or holds an entry at its home is a coin toss on some tables, and either way ends the
    # shift, so only the rare "displaced entry" outcome should be a taken branch
    while (t[j].val >= 0) & (t[j].home != <uint32_t>j):
        t[i] = t[j]
        i = j
        j = (j + 1) & mask
    t[i].val = -1
    m.n -= 1


cdef inline void _map_erase(mc_map* m, uint64_t key) noexcept nogil:
    cdef uint64_t i = _map_probe(m, key)
    if m.tab[i].val >= 0:
        _map_erase_at(m, i)


cdef inline void _map_clear(mc_map* m) noexcept nogil:
    cdef uint64_t i
    for i in range(m.mask + 1):
        m.tab[i].val = -1
    m.n = 0


cdef inline int _map_grow(mc_map* m) noexcept nogil:
    cdef mc_map old = m[0]
    cdef uint64_t cap = (old.mask + 1) * 2
    cdef uint64_t i
    m.tab = _map_alloc(cap)
    if m.tab == NULL:
        m[0] = old
        return -1
    for i in range(cap):
        m.tab[i].val = -1
    m.mask = cap - 1
    m.shift = old.shift - 1
    m.n = 0
    for i in range(old.mask + 1):
        if old.tab[i].val >= 0:
            _map_put(m, old.tab[i].key, old.tab[i].val)
    free(old.tab)
    return 0


cdef inline mc_map_entry* _map_dup(const mc_map* m) noexcept nogil:
    cdef mc_map_entry* t = _map_alloc(m.mask + 1)
    if t != NULL:
        memcpy(t, m.tab, (m.mask + 1) * sizeof(mc_map_entry))
    return t


cdef inline int _check_map(const mc_map* m, str what) except -1:
    # For check_invariants (raises AssertionError naming the first fault): the structure every
    # lookup and deletion relies on, whatever the map holds. The counter equals the occupied
    # entries, each entry records its key's home slot, and entries are in Robin Hood order
    # (mc_map_make_room), which deletions rely on to stop early: an entry away from its home
    # follows an entry at most one slot nearer its own.
    cdef uint64_t i, dist, pslot
    cdef int64_t cnt = 0
    for i in range(m.mask + 1):
        if m.tab[i].val < 0:
            continue
        cnt += 1
        if m.tab[i].home != _home(m, m.tab[i].key):
            raise AssertionError(f"{what} entry {m.tab[i].key} records a wrong home slot")
        dist = (i - m.tab[i].home) & m.mask
        pslot = (i - 1) & m.mask
        if dist > 0 and (m.tab[pslot].val < 0 or dist > (
                ((pslot - m.tab[pslot].home) & m.mask) + 1)):
            raise AssertionError(f"{what} entry {m.tab[i].key} is out of Robin Hood order")
    if cnt != m.n:
        raise AssertionError(f"{what} counter {m.n} != occupied entries {cnt}")
    return 0
