# cython: language_level=3
"""The process-wide handle registry of books and engines (see _handles.pxd for the design).

Every OrderBook and Engine registers itself when it is made and releases its handle before its
memory is freed; books made through the C table (book_new, book_copy) are registered as owned by
the C caller. The registry's memory is never freed: it costs 64 KiB per 4,096 handles ever live
at the same time.
"""

from libc.stdint cimport uint64_t, uint32_t, int32_t, int64_t
from libc.stdlib cimport calloc

cdef extern from "mc_spin.h":
    void mc_spin_lock(volatile char* l) noexcept nogil
    void mc_spin_unlock(volatile char* l) noexcept nogil

cdef mc_hslot* _dir[MC_H_CHUNKS]
cdef volatile char _lock = 0
cdef int32_t _free_head = -1      # free slot list (released slots with generations left)
cdef int64_t _next_unused = 0     # slots [0, _next_unused) have been handed out at least once
cdef int64_t _live = 0


cdef mc_hslot** mc_handle_dir() noexcept nogil:
    """The chunk directory (a static array: its address never changes)."""
    return _dir


cdef uint64_t mc_handle_new(void* ptr, uint32_t kind, int c_owned) noexcept nogil:
    """Register a live object; returns its handle, or 0 when memory is exhausted."""
    global _free_head, _next_unused, _live
    cdef int64_t idx
    cdef mc_hslot* s
    cdef mc_hslot* chunk
    mc_spin_lock(&_lock)
    if _free_head >= 0:
        idx = _free_head
        s = &_dir[idx >> MC_H_CHUNK_BITS][idx & (MC_H_CHUNK - 1)]
        _free_head = s.aux
    else:
        idx = _next_unused
        if (idx >> MC_H_CHUNK_BITS) >= MC_H_CHUNKS:
            mc_spin_unlock(&_lock)
            return 0
        if _dir[idx >> MC_H_CHUNK_BITS] == NULL:
            # calloc: key 0 (generation 0, kind bits 0) matches no handle
            chunk = <mc_hslot*>calloc(MC_H_CHUNK, sizeof(mc_hslot))
            if chunk == NULL:
                mc_spin_unlock(&_lock)
                return 0
            _dir[idx >> MC_H_CHUNK_BITS] = chunk
        _next_unused += 1
        s = &_dir[idx >> MC_H_CHUNK_BITS][idx & (MC_H_CHUNK - 1)]
    s.ptr = ptr
    s.aux = 1 if c_owned else 0
    s.key = (s.key & ~(<uint32_t>3)) | kind
    _live += 1
    cdef uint64_t h = (<uint64_t>s.key << 32) | <uint64_t>idx
    mc_spin_unlock(&_lock)
    return h


cdef int mc_handle_release(uint64_t h) noexcept nogil:
    """Invalidate a handle (its slot's generation moves on); 0, or -1 if h was not live. A slot
    whose generation is used up is retired, never reissued, so no old handle can match again."""
    global _free_head, _live
    mc_spin_lock(&_lock)
    cdef mc_hslot* s = mc_handle_slot(_dir, h, <uint32_t>((h >> 32) & 3))
    if s == NULL or (s.key & 3) == 0:
        mc_spin_unlock(&_lock)
        return -1
    cdef uint32_t gen = s.key >> 2
    s.ptr = NULL
    _live -= 1
    if gen >= MC_H_MAX_GEN:
        s.key = <uint32_t>0xFFFFFFFC       # kind bits 0: matches nothing, and never leaves this state
    else:
        s.key = (gen + 1) << 2
        s.aux = _free_head
        _free_head = <int32_t><uint32_t>h
    mc_spin_unlock(&_lock)
    return 0


cdef int mc_handle_set(uint64_t h, void* ptr) noexcept nogil:
    """Point a live handle at another object of the same kind (a book's state replaced by a
    copy); 0, or -1 if h is not live."""
    mc_spin_lock(&_lock)
    cdef mc_hslot* s = mc_handle_slot(_dir, h, <uint32_t>((h >> 32) & 3))
    if s == NULL or (s.key & 3) == 0:
        mc_spin_unlock(&_lock)
        return -1
    s.ptr = ptr
    mc_spin_unlock(&_lock)
    return 0


cdef int mc_handle_c_owned(uint64_t h) noexcept nogil:
    """1 if h is live and its object belongs to the C caller (made by book_new / book_copy)."""
    cdef mc_hslot* s = mc_handle_slot(_dir, h, <uint32_t>((h >> 32) & 3))
    return 1 if s != NULL and (s.key & 3) != 0 and s.aux == 1 else 0


cdef int64_t mc_handle_live() noexcept nogil:
    return _live


def live_handles():
    """How many books and engines are registered now (tests use it to check that every handle
    is released). O(1).

    >>> live_handles() >= 0
    True
    """
    return mc_handle_live()
