/* test_bpe.c — the BPE tokenizer's pre-tokenizer and encoder.
 *
 * Encoding is held to a naive reference encoder written here (rescan every
 * pair each step, binary search over sorted merges, no cache) on thousands
 * of random byte strings: the cache and both merge paths must give exactly
 * its result. Training is tested in test_bpe_train.c, the file format in
 * test_bpe_json.c.
 */
#include "bpe_testlib.h"
#include "support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Chunks of s, joined by '|' (s must not contain '|'). */
static char *chunks(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1), *o = out;
    for (size_t i = 0; i < n;) {
        size_t e = rw_bpe__chunk_end((const unsigned char *)s, n, i);
        cr_assert(e > i && e <= n);
        if (i)
            *o++ = '|';
        memcpy(o, s + i, e - i);
        o += e - i;
        i = e;
    }
    *o = '\0';
    return out;
}

/* ---- the pre-tokenizer ------------------------------------------------ */

static void expect_chunks(const char *s, const char *want)
{
    char *got = chunks(s);
    cr_expect_str_eq(got, want, "chunks of \"%s\"", s);
    free(got);
}

Test(bpe, chunks_follow_the_gpt2_pattern)
{
    expect_chunks("Hello world", "Hello| world");
    expect_chunks("I'm sure they'll've done't", "I|'m| sure| they|'ll|'ve| done|'t");
    expect_chunks("'s'S 're", "'s|'|S| '|re");
    expect_chunks("a  \n\nb", "a|  \n|\n|b");
    expect_chunks("  x", " | x");
    expect_chunks("x   ", "x|   ");
    expect_chunks("abc123 456def", "abc|123| 456|def");
    expect_chunks("wait!!! ?? ok.", "wait|!!!| ??| ok|.");
    expect_chunks("a\tb", "a|\t|b");
    expect_chunks("x''s", "x|''|s");
    expect_chunks("caf\xc3\xa9 na\xc3\xafve \xe2\x80\x99quoted", "caf\xc3\xa9| na\xc3\xafve| "
                                                                 "\xe2\x80\x99quoted");
    expect_chunks("\n\nHuman: hi", "\n|\n|Human|:| hi"); /* GPT-2 gives "\n", "\n" too */
    expect_chunks(" ", " ");
    expect_chunks("'", "'");
}

Test(bpe, chunks_handle_nul_and_stray_bytes)
{
    const unsigned char s[] = {'a', 0, 0, 0xff, 'b', ' ', 0x80};
    size_t n = sizeof s, i = 0;
    size_t want[] = {1, 3, 5, 7}; /* "a" | NUL NUL | 0xff "b" | " " 0x80 */
    for (size_t k = 0; k < 4; k++) {
        i = rw_bpe__chunk_end(s, n, i);
        cr_assert_eq(i, want[k], "chunk %zu ends at %zu", k, i);
    }
}

/* ---- encoding --------------------------------------------------------- */

/* A naive encoder: per chunk, merge the lowest-ranked pair (leftmost on a
 * tie) until none is left, finding ranks by binary search over a sorted
 * copy of the merges — no hash map, no cache, no heap. */
typedef struct ref_rank {
    int32_t l, r;
    uint32_t rank;
} ref_rank_t;

static int cmp_ref_rank(const void *a, const void *b)
{
    const ref_rank_t *x = a, *y = b;
    if (x->l != y->l)
        return x->l < y->l ? -1 : 1;
    return x->r < y->r ? -1 : x->r > y->r;
}

static ref_rank_t *ref_ranks(const rw_bpe_t *b)
{
    ref_rank_t *t = malloc((b->nmerges + 1) * sizeof *t);
    for (size_t r = 0; r < b->nmerges; r++)
        t[r] = (ref_rank_t){b->merges[r].left, b->merges[r].right, (uint32_t)r};
    qsort(t, b->nmerges, sizeof *t, cmp_ref_rank);
    return t;
}

static uint32_t ref_rank_of(const rw_bpe_t *b, const ref_rank_t *t, int32_t l, int32_t r)
{
    ref_rank_t key = {l, r, 0};
    const ref_rank_t *hit = bsearch(&key, t, b->nmerges, sizeof *t, cmp_ref_rank);
    return hit ? hit->rank : UINT32_MAX;
}

static size_t ref_encode(const rw_bpe_t *b, const ref_rank_t *t, const unsigned char *s, size_t len,
                         int32_t *out)
{
    size_t nout = 0;
    for (size_t i = 0; i < len;) {
        size_t e = rw_bpe__chunk_end(s, len, i), n = e - i;
        int32_t *w = out + nout;
        for (size_t k = 0; k < n; k++)
            w[k] = b->byte_id[s[i + k]];
        for (;;) {
            uint32_t best = UINT32_MAX;
            size_t at = 0;
            for (size_t k = 0; k + 1 < n; k++) {
                uint32_t r = ref_rank_of(b, t, w[k], w[k + 1]);
                if (r < best) {
                    best = r;
                    at = k;
                }
            }
            if (best == UINT32_MAX)
                break;
            w[at] = b->merges[best].result;
            memmove(w + at + 1, w + at + 2, (n - at - 2) * sizeof *w);
            n--;
        }
        nout += n;
        i = e;
    }
    return nout;
}

/* Encodes s twice (cold, then through the warm cache) and compares both
 * with the reference encoder. */
static void expect_same_as_reference(rw_bpe_t *b, const ref_rank_t *t, const unsigned char *s,
                                     size_t len)
{
    int32_t *want = malloc((len + 1) * sizeof *want);
    size_t nwant = ref_encode(b, t, s, len, want);
    for (int pass = 0; pass < 2; pass++) {
        size_t n;
        int32_t *got = encode(b, s, len, &n);
        cr_assert_eq(n, nwant, "pass %d: encode gave %zu ids, the reference %zu", pass, n, nwant);
        cr_assert(n == 0 || memcmp(got, want, n * sizeof *got) == 0,
                  "pass %d: encode differs from the reference", pass);
        free(got);
    }
    free(want);
}

Test(bpe, random_bytes_round_trip_and_match_the_reference)
{
    rw_bpe_t *b = random_tokenizer();
    ref_rank_t *t = ref_ranks(b);
    unsigned char *buf = malloc(3000);
    for (int i = 0; i < 3000; i++) {
        size_t n = random_bytes(buf, 1000);
        assert_round_trip(b, buf, n);
        expect_same_as_reference(b, t, buf, n);
    }
    /* Long single chunks take the heap path. */
    memset(buf, ' ', 3000);
    expect_same_as_reference(b, t, buf, 3000);
    for (size_t k = 0; k < 3000; k++)
        buf[k] = (unsigned char)"ab\xc3\xa9"[k % 4];
    expect_same_as_reference(b, t, buf, 3000);
    assert_round_trip(b, buf, 3000);
    memset(buf, 0, 3000);
    expect_same_as_reference(b, t, buf, 3000);
    assert_round_trip(b, buf, 3000);
    free(buf);
    free(t);
    rw_bpe_destroy(&b);
}

Test(bpe, real_text_round_trips_and_compresses)
{
    const char *docs[] = {english(), english() + 40, english() + 100};
    rw_bpe_t *b = train_docs(docs, 3, 1000, 2);
    assert_round_trip(b, english(), strlen(english()));
    size_t n;
    int32_t *ids = encode(b, english(), strlen(english()), &n);
    cr_expect_lt(n, strlen(english()) / 2, "a tokenizer trained on the text should halve it");
    free(ids);
    rw_bpe_destroy(&b);
}

Test(bpe, specials_are_never_produced_and_decode_to_their_text)
{
    const char *docs[] = {"<|sep|> <|pad|><|cls|> <|sep|><|sep|>"};
    rw_bpe_t *b = train_docs(docs, 1, 1000, 0);
    const char *text = "prompt<|sep|>response<|pad|>";
    size_t n;
    int32_t *ids = encode(b, text, strlen(text), &n);
    for (size_t i = 0; i < n; i++)
        cr_assert_geq(ids[i], RW_BPE_NSPECIAL);
    free(ids);
    assert_round_trip(b, text, strlen(text));

    int32_t sp[] = {RW_BPE_CLS, RW_BPE_SEP, RW_BPE_PAD};
    char *out;
    size_t len;
    cr_assert_eq(rw_bpe_decode(b, sp, 3, &out, &len), 0);
    cr_expect_str_eq(out, "<|cls|><|sep|><|pad|>");
    free(out);
    int32_t bad[] = {5, (int32_t)rw_bpe_vocab_size(b)};
    cr_expect_eq(rw_bpe_decode(b, bad, 2, &out, &len), RW_EINVAL);
    cr_expect_null(out);
    bad[1] = -1;
    cr_expect_eq(rw_bpe_decode(b, bad, 2, &out, &len), RW_EINVAL);
    cr_expect_null(rw_bpe_token(b, -1, NULL));
    rw_bpe_destroy(&b);
}

Test(bpe, encode_appends_to_the_callers_buffer)
{
    const char *docs[] = {english()};
    rw_bpe_t *b = train_docs(docs, 1, 1000, 2);
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    cr_assert_eq(rw_bpe_encode(b, "", 0, &ids, &n, &cap), 0);
    cr_assert_eq(rw_bpe_encode(b, NULL, 0, &ids, &n, &cap), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(rw_bpe_encode(b, "Human", 5, &ids, &n, &cap), 0);
    size_t first = n;
    cr_assert_eq(rw_bpe_encode(b, "Human", 5, &ids, &n, &cap), 0);
    cr_assert_eq(n, 2 * first);
    cr_assert(memcmp(ids, ids + first, first * sizeof *ids) == 0);
    cr_expect_eq(rw_bpe_encode(b, NULL, 3, &ids, &n, &cap), RW_EINVAL);
    cr_expect_eq(rw_bpe_encode(NULL, "x", 1, &ids, &n, &cap), RW_EINVAL);
    free(ids);
    rw_bpe_destroy(&b);
}
