/* checksum.c — XXH64 (Yann Collet's xxHash, 64-bit), streaming; see checksum.h.
 *
 * Four lanes eat 32-byte stripes; what is left over (under 32 bytes) waits
 * in buf for the next update or is folded in by final. Words are read
 * little-endian with memcpy, so any alignment and host order work.
 */
#include "checksum.h"

#include <string.h>

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t read64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint32_t read32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline uint64_t round64(uint64_t acc, uint64_t input)
{
    acc += input * P2;
    acc = rotl(acc, 31);
    return acc * P1;
}

static inline uint64_t merge64(uint64_t acc, uint64_t v)
{
    acc ^= round64(0, v);
    return acc * P1 + P4;
}

/* Consumes whole stripes of p[0..n); returns the bytes consumed. */
static size_t checksum_stripes(uint64_t v[4], const uint8_t *p, size_t n)
{
    uint64_t a = v[0], b = v[1], c = v[2], d = v[3];
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = round64(a, read64(p + i));
        b = round64(b, read64(p + i + 8));
        c = round64(c, read64(p + i + 16));
        d = round64(d, read64(p + i + 24));
    }
    v[0] = a, v[1] = b, v[2] = c, v[3] = d;
    return i;
}

void proto_checksum_init(proto_checksum_t *c)
{
    memset(c, 0, sizeof *c);
    c->v[0] = P1 + P2;
    c->v[1] = P2;
    c->v[2] = 0;
    c->v[3] = (uint64_t)0 - P1;
}

void proto_checksum_update(proto_checksum_t *c, const void *data, size_t n)
{
    const uint8_t *p = data;
    c->total += n;
    if (c->buf_len + n < 32) {
        if (n)
            memcpy(c->buf + c->buf_len, p, n);
        c->buf_len += n;
        return;
    }
    if (c->buf_len) {
        size_t fill = 32 - c->buf_len;
        memcpy(c->buf + c->buf_len, p, fill);
        checksum_stripes(c->v, c->buf, 32);
        p += fill;
        n -= fill;
        c->buf_len = 0;
    }
    size_t done = checksum_stripes(c->v, p, n);
    c->buf_len = n - done;
    if (c->buf_len)
        memcpy(c->buf, p + done, c->buf_len);
}

uint64_t proto_checksum_final(const proto_checksum_t *c)
{
    uint64_t h;
    if (c->total >= 32) {
        h = rotl(c->v[0], 1) + rotl(c->v[1], 7) + rotl(c->v[2], 12) + rotl(c->v[3], 18);
        for (int i = 0; i < 4; i++)
            h = merge64(h, c->v[i]);
    } else {
        h = P5; /* + the seed, 0 */
    }
    h += c->total;
    const uint8_t *p = c->buf;
    size_t n = c->buf_len;
    for (; n >= 8; p += 8, n -= 8) {
        h ^= round64(0, read64(p));
        h = rotl(h, 27) * P1 + P4;
    }
    if (n >= 4) {
        h ^= (uint64_t)read32(p) * P1;
        h = rotl(h, 23) * P2 + P3;
        p += 4;
        n -= 4;
    }
    for (; n > 0; p++, n--) {
        h ^= (uint64_t)*p * P5;
        h = rotl(h, 11) * P1;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

uint64_t proto_checksum(const void *p, size_t n)
{
    proto_checksum_t c;
    proto_checksum_init(&c);
    proto_checksum_update(&c, p, n);
    return proto_checksum_final(&c);
}
