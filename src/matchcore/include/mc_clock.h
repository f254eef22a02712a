/* Clocks for the latency recorder: CLOCK_MONOTONIC in ns, and the CPU time-stamp counter.
 *
 * The TSC is read with a load fence in front so that the read is not hoisted above the work it
 * is meant to follow; on CPUs without an invariant TSC (or not x86) mc_tsc() falls back to the
 * monotonic clock in ns and MC_HAVE_TSC is 0, so callers still get a valid clock (ticks == ns).
 */
#ifndef MC_CLOCK_H
#define MC_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t mc_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define MC_HAVE_TSC 1
static inline int64_t mc_tsc(void) {
    _mm_lfence();
    return (int64_t)__rdtsc();
}
static inline void mc_cpu_relax(void) { _mm_pause(); }
#else
#define MC_HAVE_TSC 0
static inline int64_t mc_tsc(void) { return mc_mono_ns(); }
static inline void mc_cpu_relax(void) { }
#endif

#endif
