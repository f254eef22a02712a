/* The few atomic operations the journal's group-commit thread shares with the writing thread. */
#ifndef MC_ATOMIC_H
#define MC_ATOMIC_H
#include <stdint.h>

static inline uint64_t mc_load_u64(const uint64_t* p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void mc_store_u64(uint64_t* p, uint64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* *p = max(*p, v) */
static inline void mc_max_u64(uint64_t* p, uint64_t v) {
    uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, 1, __ATOMIC_RELEASE,
                                                   __ATOMIC_RELAXED)) {
    }
}

static inline int mc_load_int(const int* p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void mc_store_int(int* p, int v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
#endif
