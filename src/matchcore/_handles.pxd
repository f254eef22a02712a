# cython: language_level=3
# The handle registry: the checked handles that the C function table and Numba take instead of
# raw pointers. A handle is (key << 32) | slot, key = (generation << 2) | kind. A call validates
# it with a bounds check and one compare against the registry before the pointer is used, and
# freeing an object bumps its slot's generation, so a handle of a freed (or never issued, or
# foreign) object is refused without touching the object's memory. The registry's slots live in
# chunks that are never moved or freed, so validation never reads freed memory either.

from libc.stdint cimport uint64_t, uint32_t, int32_t, int64_t

cdef enum:
    MC_H_BOOK = 1
    MC_H_ENGINE = 2
    MC_H_CHUNK_BITS = 12                       # 4,096 slots (64 KiB) per chunk
    MC_H_CHUNK = 4096
    MC_H_CHUNKS = 4096                         # at most 16,777,216 live handles
    MC_H_MAX_GEN = 0x1FFFFFFF                  # key < 2**31: handles are positive int64 values

cdef struct mc_hslot:
    void* ptr            # the live object, NULL when the slot is free
    uint32_t key         # (generation << 2) | kind while live; kind bits 0 while free
    int32_t aux          # live: 1 if the C caller owns the object (book_free may free it)
                         # free: next free slot (-1 = none)

cdef mc_hslot** mc_handle_dir() noexcept nogil
cdef uint64_t mc_handle_new(void* ptr, uint32_t kind, int c_owned) noexcept nogil
cdef int mc_handle_release(uint64_t h) noexcept nogil
cdef int mc_handle_set(uint64_t h, void* ptr) noexcept nogil
cdef int mc_handle_c_owned(uint64_t h) noexcept nogil
cdef int64_t mc_handle_live() noexcept nogil


cdef inline mc_hslot* mc_handle_slot(mc_hslot** dir, uint64_t h, uint32_t kind) noexcept nogil:
    """The live slot of handle h of the given kind, or NULL (freed, foreign, garbage)."""
    cdef uint32_t idx = <uint32_t>h
    cdef uint32_t key = <uint32_t>(h >> 32)
    if (key & 3) != kind or (idx >> MC_H_CHUNK_BITS) >= MC_H_CHUNKS:
        return NULL
    cdef mc_hslot* chunk = dir[idx >> MC_H_CHUNK_BITS]
    if chunk == NULL:
        return NULL
    cdef mc_hslot* s = &chunk[idx & (MC_H_CHUNK - 1)]
    if s.key != key:
        return NULL
    return s


cdef inline void* mc_handle_get(mc_hslot** dir, uint64_t h, uint32_t kind) noexcept nogil:
    """The object behind handle h of the given kind, or NULL. Two dependent loads and two
    compares; never dereferences the object."""
    cdef mc_hslot* s = mc_handle_slot(dir, h, kind)
    return s.ptr if s != NULL else NULL
