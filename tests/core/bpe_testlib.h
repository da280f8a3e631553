/* bpe_testlib.h — helpers the BPE tokenizer's test programs share.
 *
 * A header of static inline functions (the test build links each test_*.c
 * with tests/support.c only): a deterministic random generator, training
 * and encoding shorthands that assert success, and generators of random
 * corpora and byte strings.
 */
#ifndef RW_TEST_BPE_TESTLIB_H
#define RW_TEST_BPE_TESTLIB_H

#include "bpe.h"
#include "bpe_impl.h"
#include "err.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static inline uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static inline size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

static inline rw_bpe_t *train_docs(const char *const *docs, size_t n, size_t vocab, uint64_t minf)
{
    size_t *lens = malloc((n ? n : 1) * sizeof *lens);
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(docs[i]);
    rw_bpe_train_opts_t o = {.vocab_size = vocab, .min_frequency = minf};
    rw_bpe_t *b = NULL;
    int rc = rw_bpe_train(docs, lens, n, &o, &b);
    free(lens);
    cr_assert_eq(rc, 0, "train: %s", rw_strerror(rc));
    return b;
}

static inline int32_t *encode(rw_bpe_t *b, const void *s, size_t len, size_t *n)
{
    int32_t *ids = NULL;
    size_t cap = 0;
    *n = 0;
    cr_assert_eq(rw_bpe_encode(b, s, len, &ids, n, &cap), 0);
    return ids;
}

static inline void assert_round_trip(rw_bpe_t *b, const void *s, size_t len)
{
    size_t n;
    int32_t *ids = encode(b, s, len, &n);
    for (size_t i = 0; i < n; i++)
        cr_assert(ids[i] >= RW_BPE_NSPECIAL && (size_t)ids[i] < rw_bpe_vocab_size(b));
    char *out;
    size_t outlen;
    cr_assert_eq(rw_bpe_decode(b, ids, n, &out, &outlen), 0);
    cr_assert_eq(outlen, len, "round trip changed the length (%zu -> %zu)", len, outlen);
    cr_assert(memcmp(out, s, len) == 0, "round trip changed the bytes");
    free(out);
    free(ids);
}

/* Random lowercase words joined by spaces: a corpus with enough distinct
 * pairs to fill any small vocabulary. Caller frees. */
static inline char *random_words(size_t nwords, size_t alphabet)
{
    char *s = malloc(nwords * 12 + 1), *o = s;
    for (size_t w = 0; w < nwords; w++) {
        if (w)
            *o++ = ' ';
        size_t len = 1 + rnd_below(10);
        for (size_t k = 0; k < len; k++)
            *o++ = (char)('a' + rnd_below(alphabet));
    }
    *o = '\0';
    return s;
}

/* Random bytes in several moods: uniform, text-like with NULs and stray
 * high bytes, long whitespace runs, long letter runs (the heap path). */
static inline size_t random_bytes(unsigned char *buf, size_t max)
{
    static const char pick[] = "aaabbcdeeeefhilmnoorsttu   \n\n\t'.,!?-0123456789\"";
    size_t n = rnd_below(max + 1), mood = rnd_below(4);
    for (size_t i = 0; i < n; i++) {
        size_t r = rnd_below(100);
        if (mood == 0 || r < 3)
            buf[i] = (unsigned char)rnd();
        else if (r < 6)
            buf[i] = 0;
        else if (r < 9 && i + 1 < n) {
            buf[i++] = 0xC3; /* é */
            buf[i] = 0xA9;
        } else
            buf[i] = (unsigned char)pick[rnd_below(sizeof pick - 1)];
        if (mood == 2 && r == 99) /* a whitespace run */
            for (size_t k = rnd_below(400); k && i + 1 < n; k--)
                buf[++i] = rnd() & 1 ? ' ' : '\n';
        if (mood == 3 && r == 99) /* a long letter run */
            for (size_t k = rnd_below(600); k && i + 1 < n; k--)
                buf[++i] = (unsigned char)"ab\xc3\xa9"[rnd_below(4)];
    }
    return n;
}

/* A tokenizer trained on text-like random bytes, so merges involve NUL,
 * high bytes, spaces and runs. */
static inline rw_bpe_t *random_tokenizer(void)
{
    enum { NDOCS = 300, MAX = 2000 };
    char *docs[NDOCS];
    size_t lens[NDOCS];
    for (size_t d = 0; d < NDOCS; d++) {
        docs[d] = malloc(MAX);
        lens[d] = random_bytes((unsigned char *)docs[d], MAX);
    }
    rw_bpe_train_opts_t o = {.vocab_size = 3000, .min_frequency = 2};
    rw_bpe_t *b = NULL;
    cr_assert_eq(rw_bpe_train((const char *const *)docs, lens, NDOCS, &o, &b), 0);
    for (size_t d = 0; d < NDOCS; d++)
        free(docs[d]);
    cr_assert_gt(rw_bpe_vocab_size(b), 1000);
    return b;
}

/* A short transcript in the HH format, with non-ASCII text and odd spacing. */
static inline const char *english(void)
{
    return "\n\nHuman: What's the best way to keep basil alive indoors? I've tried twice.\n\n"
           "Assistant: Basil likes light: give it 6-8 hours of sun a day, water it when the top "
           "inch of soil is dry, and pinch off the flowers so it keeps growing leaves. It doesn't "
           "like cold drafts — keep it above 10\xc2\xb0"
           "C. Na\xc3\xafve gardeners over-water; don't!\n\n"
           "Human: \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x8c\xbf thanks   so much\t\t\n";
}

/* A tokenizer trained to exhaustion on a few short texts (about 450 tokens). */
static inline rw_bpe_t *small_tokenizer(void)
{
    const char *docs[] = {english(), "aaab aaab aab ab", "<|sep|> hello hello world"};
    return train_docs(docs, 3, 1000, 0);
}

#endif
