/* A process-wide spin lock for the handle registry (matchcore._handles): held only for the few
 * instructions that take or return a registry slot, never while a book operation runs. */
#ifndef MC_SPIN_H
#define MC_SPIN_H

#if defined(_MSC_VER)
#include <intrin.h>
#define MC_SPIN_TRY(l) (_InterlockedExchange8((volatile char*)(l), 1) == 0)
#define MC_SPIN_UNLOCK(l) _InterlockedExchange8((volatile char*)(l), 0)
#else
#define MC_SPIN_TRY(l) (!__atomic_test_and_set((l), __ATOMIC_ACQUIRE))
#define MC_SPIN_UNLOCK(l) __atomic_clear((l), __ATOMIC_RELEASE)
#endif

static inline void mc_spin_lock(volatile char* l) {
    while (!MC_SPIN_TRY(l)) {
    }
}

static inline void mc_spin_unlock(volatile char* l) { MC_SPIN_UNLOCK(l); }

#endif /* MC_SPIN_H */
