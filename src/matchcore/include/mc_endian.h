/* Big-endian (network order) readers and writers for wire formats, in one place.
 * memcpy + byte swap compiles to a single load and bswap on every current compiler and never
 * makes an unaligned access undefined behaviour. */
#ifndef MC_ENDIAN_H
#define MC_ENDIAN_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#  define MC_BSWAP16(x) __builtin_bswap16(x)
#  define MC_BSWAP32(x) __builtin_bswap32(x)
#  define MC_BSWAP64(x) __builtin_bswap64(x)
#else
#  define MC_BSWAP16(x) ((uint16_t)((((x) & 0xFFu) << 8) | ((x) >> 8)))
#  define MC_BSWAP32(x) ((((x) & 0xFFu) << 24) | (((x) & 0xFF00u) << 8) | \
                         (((x) >> 8) & 0xFF00u) | ((x) >> 24))
#  define MC_BSWAP64(x) (((uint64_t)MC_BSWAP32((uint32_t)(x)) << 32) | \
                         MC_BSWAP32((uint32_t)((x) >> 32)))
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#  define MC_FROM_BE16(x) (x)
#  define MC_FROM_BE32(x) (x)
#  define MC_FROM_BE64(x) (x)
#else
#  define MC_FROM_BE16(x) MC_BSWAP16(x)
#  define MC_FROM_BE32(x) MC_BSWAP32(x)
#  define MC_FROM_BE64(x) MC_BSWAP64(x)
#endif

static inline uint16_t mc_be16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return MC_FROM_BE16(v); }
static inline uint32_t mc_be32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return MC_FROM_BE32(v); }
static inline uint64_t mc_be64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return MC_FROM_BE64(v); }

/* 6-byte ITCH timestamp: 2 high bytes then 4 low bytes. */
static inline uint64_t mc_be48(const uint8_t *p) {
    return ((uint64_t)mc_be16(p) << 32) | mc_be32(p + 2);
}

static inline void mc_put_be16(uint8_t *p, uint16_t v) { v = MC_FROM_BE16(v); memcpy(p, &v, 2); }
static inline void mc_put_be32(uint8_t *p, uint32_t v) { v = MC_FROM_BE32(v); memcpy(p, &v, 4); }
static inline void mc_put_be64(uint8_t *p, uint64_t v) { v = MC_FROM_BE64(v); memcpy(p, &v, 8); }
static inline void mc_put_be48(uint8_t *p, uint64_t v) {
    mc_put_be16(p, (uint16_t)(v >> 32));
    mc_put_be32(p + 2, (uint32_t)v);
}

/* Little-endian readers (Databento DBN and other little-endian formats). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#  define MC_FROM_LE16(x) MC_BSWAP16(x)
#  define MC_FROM_LE32(x) MC_BSWAP32(x)
#  define MC_FROM_LE64(x) MC_BSWAP64(x)
#else
#  define MC_FROM_LE16(x) (x)
#  define MC_FROM_LE32(x) (x)
#  define MC_FROM_LE64(x) (x)
#endif

static inline uint16_t mc_le16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return MC_FROM_LE16(v); }
static inline uint32_t mc_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return MC_FROM_LE32(v); }
static inline uint64_t mc_le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return MC_FROM_LE64(v); }

#endif
