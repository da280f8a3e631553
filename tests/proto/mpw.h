/* mpw.h — a MessagePack writer for tests: any bytes, valid or not.
 *
 * Tests build malformed messages byte by byte (a string where a number
 * goes, a header claiming four billion elements) that the encoder would
 * never produce. Header-only; the buffer grows (mpw_free releases it).
 */
#ifndef RW_TEST_MPW_H
#define RW_TEST_MPW_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct mpw {
    uint8_t *b;
    size_t n, cap;
} mpw_t;

static inline void mpw_reserve(mpw_t *w, size_t more)
{
    if (w->n + more <= w->cap)
        return;
    while (w->n + more > w->cap)
        w->cap = w->cap ? w->cap * 2 : 4096;
    w->b = realloc(w->b, w->cap);
}
static inline void mpw_free(mpw_t *w)
{
    free(w->b);
    memset(w, 0, sizeof *w);
}
static inline void mpw_byte(mpw_t *w, uint8_t x)
{
    mpw_reserve(w, 1);
    w->b[w->n++] = x;
}
static inline void mpw_be(mpw_t *w, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        mpw_byte(w, (uint8_t)(v >> (8 * i)));
}
static inline void mpw_raw(mpw_t *w, const void *p, size_t n)
{
    mpw_reserve(w, n);
    if (n)
        memcpy(w->b + w->n, p, n);
    w->n += n;
}
static inline void mpw_uint(mpw_t *w, uint64_t v)
{
    if (v < 128)
        mpw_byte(w, (uint8_t)v);
    else
        mpw_byte(w, 0xcf), mpw_be(w, v, 8);
}
static inline void mpw_int(mpw_t *w, int64_t v)
{
    mpw_byte(w, 0xd3), mpw_be(w, (uint64_t)v, 8);
}
static inline void mpw_double(mpw_t *w, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    mpw_byte(w, 0xcb), mpw_be(w, u, 8);
}
static inline void mpw_strn(mpw_t *w, const char *s, size_t n)
{
    mpw_byte(w, 0xdb), mpw_be(w, n, 4), mpw_raw(w, s, n);
}
static inline void mpw_str(mpw_t *w, const char *s)
{
    mpw_strn(w, s, strlen(s));
}
static inline void mpw_bin(mpw_t *w, const void *p, size_t n)
{
    mpw_byte(w, 0xc6), mpw_be(w, n, 4), mpw_raw(w, p, n);
}
static inline void mpw_array(mpw_t *w, uint32_t n)
{
    mpw_byte(w, 0xdd), mpw_be(w, n, 4);
}
static inline void mpw_map(mpw_t *w, uint32_t n)
{
    mpw_byte(w, 0xdf), mpw_be(w, n, 4);
}
/* [version, type, {...}] with room for nfields key/value pairs after it. */
static inline void mpw_envelope(mpw_t *w, uint64_t version, uint64_t type, uint32_t nfields)
{
    w->n = 0;
    mpw_array(w, 3);
    mpw_uint(w, version);
    mpw_uint(w, type);
    mpw_map(w, nfields);
}

#endif
