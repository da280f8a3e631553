/* test_msg_fuzz.c — random and mutated bytes never crash the decoder.
 *
 * Random byte strings mostly die in the first header, so most inputs here
 * are valid messages of every type with a few bytes flipped, inserted,
 * dropped or spliced from another message: they get deep into the field
 * decoding. Whatever decodes must also pass msg_check and encode again. The
 * seed is fixed (RW_FUZZ_SEED overrides it) so a failure can be replayed;
 * run the ASan build to catch reads past a buffer.
 */
#include "msg.h"

#include "err.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mpw.h"
#include "proto/samples.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void seed(void)
{
    const char *s = getenv("RW_FUZZ_SEED");
    rng_state = s ? strtoull(s, NULL, 0) : 0x5eed5eed12345678ULL;
    if (!rng_state)
        rng_state = 1;
}

/* Decodes n bytes copied into a buffer of exactly n (so ASan sees an
 * overread); a success must survive msg_check and encode again. Returns
 * the decoder's code. */
static int try_decode(const uint8_t *b, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, b, n);
    msg_t m;
    char why[MSG_WHY_MAX];
    int rc = msg_decode(&m, copy, n, why);
    cr_assert(rc <= 0);
    if (rc == 0) {
        cr_assert_eq(msg_check(&m, why), 0, "decoded but invalid: %s", why);
        uint8_t *again = malloc(MSG_MAX_BYTES);
        size_t len;
        cr_assert_eq(msg_encode(&m, again, MSG_MAX_BYTES, &len, why), 0, "%s", why);
        free(again);
    } else {
        cr_assert_null(m.hold_);
        cr_assert(strlen(why) > 0, "every refusal says why");
    }
    msg_fini(&m);
    free(copy);
    return rc;
}

Test(msg_fuzz, random_bytes)
{
    seed();
    uint8_t buf[512];
    size_t refused = 0;
    for (int i = 0; i < 10000; i++) {
        size_t n = rnd() % sizeof buf;
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)rnd();
        if (i % 2 && n >= 3) { /* a plausible start: [1, type, ...] */
            buf[0] = 0x93, buf[1] = 0x01, buf[2] = (uint8_t)(rnd() % 26);
        }
        refused += try_decode(buf, n) < 0;
    }
    cr_assert_gt(refused, 9900);
}

/* The min and full sample of every type, encoded. */
static size_t corpus(uint8_t **bufs, size_t *lens, size_t max)
{
    size_t n = 0;
    for (int c = 0; c < MSG_CODE_LIMIT; c++) {
        if (!msg_desc((msg_type_t)c))
            continue;
        for (int full = 0; full <= 1 && n < max; full++) {
            msg_t m;
            sample_fill(&m, (msg_type_t)c, full);
            bufs[n] = malloc(MSG_MAX_BYTES);
            cr_assert_eq(msg_encode(&m, bufs[n], MSG_MAX_BYTES, &lens[n], NULL), 0);
            bufs[n] = realloc(bufs[n], lens[n]);
            n++;
            sample_free();
        }
    }
    return n;
}

/* One random change to b (length *n, capacity cap). */
static void mutate(uint8_t *b, size_t *n, size_t cap, const uint8_t *other, size_t other_n)
{
    static const uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x90, 0xc0, 0xc1, 0xc2, 0xcc,
                                          0xcf, 0xd3, 0xdb, 0xdc, 0xdd, 0xdf, 0xff};
    size_t at = *n ? rnd() % *n : 0;
    switch (rnd() % 6) {
    case 0: /* flip a bit */
        if (*n)
            b[at] ^= (uint8_t)(1u << (rnd() % 8));
        break;
    case 1: /* a header byte somewhere */
        if (*n)
            b[at] = interesting[rnd() % sizeof interesting];
        break;
    case 2: /* drop bytes */
        if (*n) {
            size_t k = 1 + rnd() % 8;
            k = k > *n - at ? *n - at : k;
            memmove(b + at, b + at + k, *n - at - k);
            *n -= k;
        }
        break;
    case 3: /* insert bytes */
        if (*n + 8 <= cap) {
            memmove(b + at + 8, b + at, *n - at);
            for (int i = 0; i < 8; i++)
                b[at + i] = (uint8_t)rnd();
            *n += 8;
        }
        break;
    case 4: /* cut */
        *n = at;
        break;
    default: /* splice in a piece of another message */
        if (other_n) {
            size_t from = rnd() % other_n, k = 1 + rnd() % 32;
            k = k > other_n - from ? other_n - from : k;
            if (at + k <= cap) {
                memcpy(b + at, other + from, k);
                *n = at + k > *n ? at + k : *n;
            }
        }
        break;
    }
}

Test(msg_fuzz, mutated_messages)
{
    seed();
    uint8_t *bufs[64];
    size_t lens[64];
    size_t nc = corpus(bufs, lens, 64);
    uint8_t *b = malloc(MSG_MAX_BYTES + 64);
    size_t decoded = 0;
    for (int i = 0; i < 10000; i++) {
        size_t pick = rnd() % nc, other = rnd() % nc;
        size_t n = lens[pick];
        if (n > 200000) /* the megabyte ones: a few only, they are slow to copy */
            pick = rnd() % 2, n = lens[pick];
        memcpy(b, bufs[pick], n);
        int muts = 1 + (int)(rnd() % 3);
        for (int k = 0; k < muts; k++)
            mutate(b, &n, MSG_MAX_BYTES + 64, bufs[other], lens[other]);
        decoded += try_decode(b, n) == 0;
    }
    cr_log_info("mutations that still decode: %zu of 10000", decoded);
    for (size_t i = 0; i < nc; i++)
        free(bufs[i]);
    free(b);
}
