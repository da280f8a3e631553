/* test_bpe.c — the byte-level BPE tokenizer: pre-tokenizer, training,
 * encoding, the tokenizer.json codec, and a run on the real HH data.
 *
 * Training and encoding are also checked against naive reference versions
 * written here (recount every pair each merge; rescan every pair each step)
 * on many random inputs: the fast paths must give exactly their results.
 */
#include "bpe.h"
#include "bpe_impl.h"
#include "err.h"
#include "support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

static rw_bpe_t *train_docs(const char *const *docs, size_t n, size_t vocab, uint64_t minf)
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

static int32_t *encode(rw_bpe_t *b, const void *s, size_t len, size_t *n)
{
    int32_t *ids = NULL;
    size_t cap = 0;
    *n = 0;
    cr_assert_eq(rw_bpe_encode(b, s, len, &ids, n, &cap), 0);
    return ids;
}

static void assert_round_trip(rw_bpe_t *b, const void *s, size_t len)
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

/* ---- training --------------------------------------------------------- */

static void expect_merge(const rw_bpe_t *b, size_t r, int32_t left, int32_t right, int32_t result)
{
    cr_assert_lt(r, b->nmerges);
    const rw_bpe__merge_t *m = &b->merges[r];
    cr_expect(m->left == left && m->right == right && m->result == result,
              "merge %zu is %d %d -> %d, expected %d %d -> %d", r, m->left, m->right, m->result,
              left, right, result);
}

/* Worked by hand. Chunks "aaab", " aaab", " aab", " ab" (a = 100, b = 101,
 * space = 35). Counts: (a,a) 5, (a,b) 4, (sp,a) 3 -> merge a a (259).
 * Then (a,b) 3 -> 260. Then (aa,ab) and (sp,aa) both 2: the tie goes to the
 * smaller left id, sp aa (261). Then four pairs of count 1, in (left, right)
 * order: (35,260) (259,260) (261,101) (261,260). */
Test(bpe, tiny_corpus_gives_the_merges_worked_by_hand)
{
    const char *docs[] = {"aaab aaab aab ab"};
    rw_bpe_t *b = train_docs(docs, 1, 1000, 0);
    cr_assert_eq(rw_bpe_merge_count(b), 7);
    cr_assert_eq(rw_bpe_vocab_size(b), 266);
    expect_merge(b, 0, 100, 100, 259);
    expect_merge(b, 1, 100, 101, 260);
    expect_merge(b, 2, 35, 259, 261);
    expect_merge(b, 3, 35, 260, 262);
    expect_merge(b, 4, 259, 260, 263);
    expect_merge(b, 5, 261, 101, 264);
    expect_merge(b, 6, 261, 260, 265);
    size_t len;
    const char *t = rw_bpe_token(b, 265, &len);
    cr_assert(len == 5 && memcmp(t, " aaab", 5) == 0);

    char *json = rw_bpe_to_json(b);
    json_t *root = json_loads(json, 0, NULL);
    json_t *merges = json_object_get(json_object_get(root, "model"), "merges");
    /* U+0120 "Ġ" (bytes c4 a0) spells the space byte. */
    const char *want[] = {"a a",
                          "a b",
                          "\xc4\xa0 aa",
                          "\xc4\xa0 ab",
                          "aa ab",
                          "\xc4\xa0"
                          "aa b",
                          "\xc4\xa0"
                          "aa ab"};
    cr_assert_eq(json_array_size(merges), 7);
    for (size_t i = 0; i < 7; i++)
        cr_expect_str_eq(json_string_value(json_array_get(merges, i)), want[i]);
    json_decref(root);
    free(json);
    rw_bpe_destroy(&b);
    cr_assert_null(b);

    /* With the default minimum frequency of 2, training stops after merge 2. */
    b = train_docs(docs, 1, 1000, 2);
    cr_assert_eq(rw_bpe_merge_count(b), 3);
    cr_assert_eq(rw_bpe_vocab_size(b), 262);
    rw_bpe_destroy(&b);
}

/* Random lowercase words joined by spaces: a corpus with enough distinct
 * pairs to fill any small vocabulary. Caller frees. */
static char *random_words(size_t nwords, size_t alphabet)
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

Test(bpe, vocab_size_stops_training_and_smaller_is_a_prefix)
{
    char *corpus = random_words(20000, 26);
    const char *docs[] = {corpus};
    rw_bpe_t *small = train_docs(docs, 1, 1000, 0), *big = train_docs(docs, 1, 1500, 0);
    cr_assert_eq(rw_bpe_vocab_size(small), 1000);
    cr_assert_eq(rw_bpe_vocab_size(big), 1500);
    cr_assert_leq(small->nmerges, big->nmerges);
    cr_assert(memcmp(small->merges, big->merges, small->nmerges * sizeof *small->merges) == 0);
    rw_bpe_destroy(&small);
    rw_bpe_destroy(&big);
    free(corpus);
}

Test(bpe, vocab_size_limits)
{
    const char *docs[] = {"some text"};
    size_t lens[] = {9};
    rw_bpe_t *b = (rw_bpe_t *)1;
    rw_bpe_train_opts_t o = {.vocab_size = RW_BPE_MIN_VOCAB - 1};
    cr_expect_eq(rw_bpe_train(docs, lens, 1, &o, &b), RW_EINVAL);
    cr_expect_null(b);
    o.vocab_size = RW_BPE_MAX_VOCAB + 1;
    cr_expect_eq(rw_bpe_train(docs, lens, 1, &o, &b), RW_EINVAL);
    o.vocab_size = 0;
    cr_expect_eq(rw_bpe_train(docs, lens, 1, &o, &b), RW_EINVAL);
    o.vocab_size = RW_BPE_MIN_VOCAB;
    cr_expect_eq(rw_bpe_train(docs, lens, 1, &o, &b), 0);
    rw_bpe_destroy(&b);
    o.vocab_size = RW_BPE_MAX_VOCAB;
    cr_expect_eq(rw_bpe_train(docs, lens, 1, &o, &b), 0);
    cr_expect_leq(rw_bpe_vocab_size(b), RW_BPE_MAX_VOCAB);
    rw_bpe_destroy(&b);
    cr_expect_eq(rw_bpe_train(NULL, NULL, 0, NULL, &b), 0, "an empty corpus gives the bytes");
    cr_expect_eq(rw_bpe_vocab_size(b), RW_BPE_BASE_VOCAB);
    rw_bpe_destroy(&b);
    rw_bpe_destroy(&b);
    rw_bpe_destroy(NULL);
}

/* ---- a naive reference trainer ---------------------------------------- */

typedef struct ref_word {
    int32_t *s;
    size_t n;
    int64_t f;
} ref_word_t;

typedef struct ref_pair {
    int32_t l, r;
    int64_t f;
} ref_pair_t;

typedef struct ref_model {
    unsigned char **tok;
    size_t *tok_len, ntok;
    rw_bpe__merge_t *merges;
    size_t nmerges;
} ref_model_t;

static int cmp_ref_pair(const void *a, const void *b)
{
    const ref_pair_t *x = a, *y = b;
    if (x->l != y->l)
        return x->l < y->l ? -1 : 1;
    return x->r < y->r ? -1 : x->r > y->r;
}

/* Distinct chunks of the documents with their counts (quadratic; small input). */
static size_t ref_words(const char *const *docs, size_t ndocs, ref_word_t **out)
{
    ref_word_t *w = NULL;
    size_t n = 0;
    for (size_t d = 0; d < ndocs; d++) {
        const unsigned char *s = (const unsigned char *)docs[d];
        size_t len = strlen(docs[d]);
        for (size_t i = 0; i < len;) {
            size_t e = rw_bpe__chunk_end(s, len, i), k;
            for (k = 0; k < n; k++) {
                if (w[k].n != e - i)
                    continue;
                size_t j = 0;
                while (j < w[k].n && w[k].s[j] == RW_BPE_BYTE0 + s[i + j])
                    j++;
                if (j == w[k].n)
                    break;
            }
            if (k == n) {
                w = realloc(w, (n + 1) * sizeof *w);
                w[n].n = e - i;
                w[n].f = 0;
                w[n].s = malloc(w[n].n * sizeof *w[n].s);
                for (size_t j = 0; j < w[n].n; j++)
                    w[n].s[j] = RW_BPE_BYTE0 + s[i + j];
                n++;
            }
            w[k].f++;
            i = e;
        }
    }
    *out = w;
    return n;
}

static int32_t ref_token(ref_model_t *m, int32_t l, int32_t r)
{
    size_t n = m->tok_len[l] + m->tok_len[r];
    unsigned char *t = malloc(n);
    memcpy(t, m->tok[l], m->tok_len[l]);
    memcpy(t + m->tok_len[l], m->tok[r], m->tok_len[r]);
    for (size_t id = RW_BPE_NSPECIAL; id < m->ntok; id++)
        if (m->tok_len[id] == n && memcmp(m->tok[id], t, n) == 0) {
            free(t);
            return (int32_t)id;
        }
    m->tok = realloc(m->tok, (m->ntok + 1) * sizeof *m->tok);
    m->tok_len = realloc(m->tok_len, (m->ntok + 1) * sizeof *m->tok_len);
    m->tok[m->ntok] = t;
    m->tok_len[m->ntok] = n;
    return (int32_t)m->ntok++;
}

/* The best pair by recounting everything; 0 if there is none. */
static int ref_best(ref_word_t *w, size_t nw, ref_pair_t *best)
{
    size_t np = 0;
    for (size_t k = 0; k < nw; k++)
        np += w[k].n ? w[k].n - 1 : 0;
    ref_pair_t *p = malloc((np + 1) * sizeof *p);
    np = 0;
    for (size_t k = 0; k < nw; k++)
        for (size_t j = 0; j + 1 < w[k].n; j++)
            p[np++] = (ref_pair_t){w[k].s[j], w[k].s[j + 1], w[k].f};
    qsort(p, np, sizeof *p, cmp_ref_pair);
    int found = 0;
    for (size_t i = 0; i < np;) {
        ref_pair_t sum = p[i];
        size_t j = i + 1;
        for (; j < np && p[j].l == sum.l && p[j].r == sum.r; j++)
            sum.f += p[j].f;
        if (!found || sum.f > best->f)
            *best = sum;
        found = 1;
        i = j;
    }
    free(p);
    return found;
}

static void ref_train(const char *const *docs, size_t ndocs, size_t vocab, int64_t minf,
                      ref_model_t *m)
{
    memset(m, 0, sizeof *m);
    for (int id = 0; id < 259; id++) {
        const char *sp = rw_bpe__special_text(id);
        m->tok = realloc(m->tok, (m->ntok + 1) * sizeof *m->tok);
        m->tok_len = realloc(m->tok_len, (m->ntok + 1) * sizeof *m->tok_len);
        m->tok_len[m->ntok] = sp ? strlen(sp) : 1;
        m->tok[m->ntok] = malloc(m->tok_len[m->ntok]);
        if (sp)
            memcpy(m->tok[m->ntok], sp, strlen(sp));
        else
            m->tok[m->ntok][0] = (unsigned char)(id - RW_BPE_BYTE0);
        m->ntok++;
    }
    ref_word_t *w;
    size_t nw = ref_words(docs, ndocs, &w);
    ref_pair_t best;
    while (m->ntok < vocab && ref_best(w, nw, &best) && best.f >= (minf > 1 ? minf : 1)) {
        int32_t x = ref_token(m, best.l, best.r);
        size_t r = 0;
        while (r < m->nmerges && !(m->merges[r].left == best.l && m->merges[r].right == best.r))
            r++;
        if (r == m->nmerges) {
            m->merges = realloc(m->merges, (m->nmerges + 1) * sizeof *m->merges);
            m->merges[m->nmerges++] = (rw_bpe__merge_t){best.l, best.r, x};
        }
        for (size_t k = 0; k < nw; k++) {
            size_t o = 0;
            for (size_t i = 0; i < w[k].n;) {
                if (i + 1 < w[k].n && w[k].s[i] == best.l && w[k].s[i + 1] == best.r) {
                    w[k].s[o++] = x;
                    i += 2;
                } else {
                    w[k].s[o++] = w[k].s[i++];
                }
            }
            w[k].n = o;
        }
    }
    for (size_t k = 0; k < nw; k++)
        free(w[k].s);
    free(w);
}

static void ref_free(ref_model_t *m)
{
    for (size_t i = 0; i < m->ntok; i++)
        free(m->tok[i]);
    free(m->tok);
    free(m->tok_len);
    free(m->merges);
}

/* Random corpora over 2 to 4 letters make long runs and overlapping pairs
 * ("aaaa"). The reference looks for an older token with the bytes of each
 * new one; bpe_train.c argues there never is one, and this checks it. */
Test(bpe, training_matches_the_naive_reference)
{
    for (int round = 0; round < 60; round++) {
        size_t ndocs = 1 + rnd_below(4);
        char *docs[4];
        for (size_t d = 0; d < ndocs; d++)
            docs[d] = random_words(5 + rnd_below(60), 2 + rnd_below(3));
        int64_t minf = (int64_t)rnd_below(3);
        ref_model_t ref;
        ref_train((const char *const *)docs, ndocs, 1000, minf, &ref);
        rw_bpe_t *b = train_docs((const char *const *)docs, ndocs, 1000, (uint64_t)minf);
        cr_assert_eq(rw_bpe_vocab_size(b), ref.ntok, "round %d", round);
        cr_assert_eq(b->nmerges, ref.nmerges, "round %d", round);
        for (size_t r = 0; r < ref.nmerges; r++)
            expect_merge(b, r, ref.merges[r].left, ref.merges[r].right, ref.merges[r].result);
        for (size_t id = 0; id < ref.ntok; id++) {
            size_t len;
            const char *t = rw_bpe_token(b, (int32_t)id, &len);
            cr_assert(len == ref.tok_len[id] && memcmp(t, ref.tok[id], len) == 0);
        }
        cr_assert_eq(b->nmerges, rw_bpe_vocab_size(b) - RW_BPE_BASE_VOCAB,
                     "round %d made a token twice", round);
        rw_bpe_destroy(&b);
        ref_free(&ref);
        for (size_t d = 0; d < ndocs; d++)
            free(docs[d]);
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

/* Random bytes in several moods: uniform, text-like with NULs and stray
 * high bytes, long whitespace runs, long letter runs (the heap path). */
static size_t random_bytes(unsigned char *buf, size_t max)
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
static rw_bpe_t *random_tokenizer(void)
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

static const char english[] =
    "\n\nHuman: What's the best way to keep basil alive indoors? I've tried twice.\n\n"
    "Assistant: Basil likes light: give it 6-8 hours of sun a day, water it when the top "
    "inch of soil is dry, and pinch off the flowers so it keeps growing leaves. It doesn't "
    "like cold drafts — keep it above 10\xc2\xb0"
    "C. Na\xc3\xafve gardeners over-water; don't!\n\n"
    "Human: \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x8c\xbf thanks   so much\t\t\n";

Test(bpe, real_text_round_trips_and_compresses)
{
    const char *docs[] = {english, english + 40, english + 100};
    rw_bpe_t *b = train_docs(docs, 3, 1000, 2);
    assert_round_trip(b, english, strlen(english));
    size_t n;
    int32_t *ids = encode(b, english, strlen(english), &n);
    cr_expect_lt(n, strlen(english) / 2, "a tokenizer trained on the text should halve it");
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
    const char *docs[] = {english};
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

/* ---- tokenizer.json --------------------------------------------------- */

static rw_bpe_t *small_tokenizer(void)
{
    const char *docs[] = {english, "aaab aaab aab ab", "<|sep|> hello hello world"};
    return train_docs(docs, 3, 1000, 0);
}

Test(bpe, json_has_the_hugging_face_layout)
{
    rw_bpe_t *b = small_tokenizer();
    char *json = rw_bpe_to_json(b);
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    cr_assert_not_null(root, "%s", je.text);
    cr_expect_str_eq(json_string_value(json_object_get(root, "version")), "1.0");
    cr_expect(json_is_null(json_object_get(root, "truncation")));
    json_t *added = json_object_get(root, "added_tokens");
    cr_assert_eq(json_array_size(added), 3);
    json_t *sep = json_array_get(added, 2);
    cr_expect_eq(json_integer_value(json_object_get(sep, "id")), RW_BPE_SEP);
    cr_expect_str_eq(json_string_value(json_object_get(sep, "content")), "<|sep|>");
    cr_expect(json_is_true(json_object_get(sep, "special")));
    json_t *pre = json_object_get(root, "pre_tokenizer");
    cr_expect_str_eq(json_string_value(json_object_get(pre, "type")), "ByteLevel");
    cr_expect(json_is_false(json_object_get(pre, "add_prefix_space")));
    json_t *dec = json_object_get(root, "decoder");
    cr_expect(json_is_true(json_object_get(dec, "add_prefix_space")));
    json_t *model = json_object_get(root, "model");
    cr_expect_str_eq(json_string_value(json_object_get(model, "type")), "BPE");
    cr_expect(json_is_null(json_object_get(model, "unk_token")));
    cr_expect(json_is_false(json_object_get(model, "byte_fallback")));
    json_t *vocab = json_object_get(model, "vocab");
    cr_expect_eq(json_object_size(vocab), rw_bpe_vocab_size(b));
    cr_expect_eq(json_integer_value(json_object_get(vocab, "<|pad|>")), 0);
    cr_expect_eq(json_integer_value(json_object_get(vocab, "!")), RW_BPE_BYTE0 + '!');
    cr_expect_eq(json_integer_value(json_object_get(vocab, "\xc4\xa0")), RW_BPE_BYTE0 + ' ');
    cr_expect_eq(json_integer_value(json_object_get(vocab, "\xc4\x80")), RW_BPE_BYTE0 + 0);
    cr_expect_eq(json_integer_value(json_object_get(vocab, "\xc3\xbf")), RW_BPE_BYTE0 + 0xff);
    cr_expect_eq(json_integer_value(json_object_get(vocab, "\xc5\x83")), RW_BPE_BYTE0 + 0xad);
    cr_expect_eq(json_array_size(json_object_get(model, "merges")), rw_bpe_merge_count(b));
    json_decref(root);
    free(json);
    rw_bpe_destroy(&b);
}

static char *train_json(void)
{
    rw_bpe_t *b = random_tokenizer();
    char *json = rw_bpe_to_json(b);
    rw_bpe_destroy(&b);
    return json;
}

Test(bpe, training_twice_gives_identical_json)
{
    uint64_t seed = rng_state;
    char *a = train_json();
    rng_state = seed;
    char *b = train_json();
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
}

Test(bpe, save_and_load_keep_json_and_encodings)
{
    rw_bpe_t *b = random_tokenizer();
    char *dir = rwt_tmpdir();
    const char *path = rwt_path(dir, "tokenizer.json");
    cr_assert_eq(rw_bpe_save(b, path), 0);
    rw_bpe_t *c = NULL;
    char err[256];
    cr_assert_eq(rw_bpe_load(path, &c, err, sizeof err), 0, "%s", err);
    char *ja = rw_bpe_to_json(b), *jc = rw_bpe_to_json(c);
    cr_assert_str_eq(ja, jc);
    size_t n;
    char *file = rwt_read_file(path, &n);
    cr_assert(n == strlen(ja) && memcmp(file, ja, n) == 0, "the file is rw_bpe_to_json");
    unsigned char *buf = malloc(2000);
    for (int i = 0; i < 300; i++) {
        size_t len = random_bytes(buf, 2000), na, nc;
        int32_t *ia = encode(b, buf, len, &na), *ic = encode(c, buf, len, &nc);
        cr_assert(na == nc && (na == 0 || memcmp(ia, ic, na * sizeof *ia) == 0));
        free(ia);
        free(ic);
    }
    /* The in-memory form gives the same tokenizer as well. */
    rw_bpe_t *d = NULL;
    cr_assert_eq(rw_bpe_from_json(ja, strlen(ja), &d, err, sizeof err), 0, "%s", err);
    char *jd = rw_bpe_to_json(d);
    cr_assert_str_eq(ja, jd);
    free(jd);
    rw_bpe_destroy(&d);
    free(buf);
    free(file);
    free(ja);
    free(jc);
    rw_bpe_destroy(&b);
    rw_bpe_destroy(&c);
    cr_expect_eq(rw_bpe_load(rwt_path(dir, "absent.json"), &c, err, sizeof err), -ENOENT);
    cr_expect(strstr(err, "absent.json") != NULL, "%s", err);
    cr_expect_null(c);
    rwt_rmdir(dir);
    free(dir);
}

/* ---- malformed tokenizer.json ----------------------------------------- */

typedef void (*json_edit_fn)(json_t *root);

/* Edits a good tokenizer.json and expects the loader to reject it with a
 * message containing want; also through a file, prefixed with its path. */
static void expect_rejected(json_edit_fn edit, const char *want)
{
    rw_bpe_t *b = small_tokenizer();
    char *good = rw_bpe_to_json(b);
    rw_bpe_destroy(&b);
    json_t *root = json_loads(good, 0, NULL);
    edit(root);
    char *bad = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    char err[512] = "";
    rw_bpe_t *out = (rw_bpe_t *)1;
    cr_assert_eq(rw_bpe_from_json(bad, strlen(bad), &out, err, sizeof err), RW_EPARSE,
                 "accepted (want: %s)", want);
    cr_expect_null(out);
    cr_expect(strstr(err, want) != NULL, "message \"%s\" lacks \"%s\"", err, want);

    char *dir = rwt_tmpdir();
    const char *path = rwt_path(dir, "bad.json");
    cr_assert_eq(rwt_write_file(path, bad, strlen(bad)), 0);
    cr_assert_eq(rw_bpe_load(path, &out, err, sizeof err), RW_EPARSE);
    cr_expect(strncmp(err, path, strlen(path)) == 0 && strstr(err, want), "%s", err);
    rwt_rmdir(dir);
    free(dir);
    free(bad);
    free(good);
}

static json_t *model_of(json_t *root)
{
    return json_object_get(root, "model");
}

static void edit_unknown_merge_token(json_t *root)
{
    json_array_set_new(json_object_get(model_of(root), "merges"), 1, json_string("a zzzzq"));
}

static void edit_duplicate_id(json_t *root)
{
    json_t *vocab = json_object_get(model_of(root), "vocab");
    json_object_set_new(vocab, "!", json_integer(RW_BPE_BYTE0 + 'a'));
}

static void edit_missing_special(json_t *root)
{
    json_array_remove(json_object_get(root, "added_tokens"), 2);
}

static void edit_special_not_in_vocab(json_t *root)
{
    json_t *vocab = json_object_get(model_of(root), "vocab");
    json_object_del(vocab, "<|cls|>");
    json_object_set_new(vocab, "<|CLS|>", json_integer(RW_BPE_CLS));
}

static void edit_not_byte_level(json_t *root)
{
    json_t *vocab = json_object_get(model_of(root), "vocab");
    json_object_del(vocab, "\xc4\xa0");
    json_object_set_new(vocab, " ", json_integer(RW_BPE_BYTE0 + ' '));
}

static void edit_id_out_of_range(json_t *root)
{
    json_t *vocab = json_object_get(model_of(root), "vocab");
    json_object_set_new(vocab, "a", json_integer(100000));
}

static void edit_merge_not_a_pair(json_t *root)
{
    json_array_set_new(json_object_get(model_of(root), "merges"), 0, json_string("a b c"));
}

static void edit_merge_result_unknown(json_t *root)
{
    /* "~" and "~" are tokens, "~~" is not. */
    json_array_append_new(json_object_get(model_of(root), "merges"), json_string("~ ~"));
}

static void edit_duplicate_merge(json_t *root)
{
    json_t *merges = json_object_get(model_of(root), "merges");
    json_array_append(merges, json_array_get(merges, 0));
}

static void edit_model_type(json_t *root)
{
    json_object_set_new(model_of(root), "type", json_string("WordPiece"));
}

static void edit_pre_tokenizer(json_t *root)
{
    json_object_set_new(root, "pre_tokenizer", json_null());
}

static void edit_vocab_type(json_t *root)
{
    json_object_set_new(model_of(root), "vocab", json_array());
}

Test(bpe, malformed_json_is_rejected_with_a_message)
{
    expect_rejected(edit_unknown_merge_token, "refers to unknown token \"zzzzq\"");
    expect_rejected(edit_duplicate_id, "is used by both");
    expect_rejected(edit_missing_special, "special token <|sep|> (id 2) missing");
    expect_rejected(edit_special_not_in_vocab, "\"<|cls|>\" (id 1) is not in model.vocab");
    expect_rejected(edit_not_byte_level, "is not a byte-level token");
    expect_rejected(edit_id_out_of_range, "out of range");
    expect_rejected(edit_merge_not_a_pair, "not two tokens separated by one space");
    expect_rejected(edit_merge_result_unknown, "not in the vocab");
    expect_rejected(edit_duplicate_merge, "repeats merge 0");
    expect_rejected(edit_model_type, "model must be");
    expect_rejected(edit_pre_tokenizer, "pre_tokenizer must be");
    expect_rejected(edit_vocab_type, "model.vocab must be an object");
}

Test(bpe, truncated_and_broken_json_are_rejected)
{
    rw_bpe_t *b = small_tokenizer();
    char *good = rw_bpe_to_json(b);
    rw_bpe_destroy(&b);
    char err[512];
    rw_bpe_t *out = NULL;
    size_t n = strlen(good);
    size_t cuts[] = {0, 1, n / 3, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        cr_assert_eq(rw_bpe_from_json(good, cuts[i], &out, err, sizeof err), RW_EPARSE);
        cr_expect(strstr(err, "not valid JSON") != NULL, "%s", err);
    }
    const char *docs[] = {"[]", "{}", "{\"model\": {\"type\": \"BPE\"}}", "null", "\"x\""};
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        cr_assert_eq(rw_bpe_from_json(docs[i], strlen(docs[i]), &out, err, sizeof err), RW_EPARSE,
                     "%s", docs[i]);
        cr_expect(err[0], "no message for %s", docs[i]);
    }
    /* A duplicate key is an error, not "last one wins". */
    char *dup = malloc(n + 32);
    snprintf(dup, n + 32, "{\"version\":\"1.0\",%s", good + 1);
    cr_expect_eq(rw_bpe_from_json(dup, strlen(dup), &out, err, sizeof err), RW_EPARSE);
    cr_expect(strstr(err, "duplicate") != NULL, "%s", err);
    /* The error buffer is optional. */
    cr_expect_eq(rw_bpe_from_json("{", 1, &out, NULL, 0), RW_EPARSE);
    cr_expect_eq(rw_bpe_from_json(NULL, 0, &out, err, sizeof err), RW_EINVAL);
    free(dup);
    free(good);
}

/* ---- the real HH-RLHF data -------------------------------------------- */

typedef struct corpus {
    char **docs;
    size_t *lens, n, cap;
} corpus_t;

/* Whole decompressed file; NULL if unreadable. */
static char *gunzip_file(const char *path, size_t *n)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    int r;
    while ((r = gzread(f, buf + len, (unsigned)(cap - len - 1))) > 0) {
        len += (size_t)r;
        if (cap - len - 1 == 0)
            buf = realloc(buf, cap *= 2);
    }
    gzclose(f);
    buf[len] = '\0';
    *n = len;
    return r < 0 ? (free(buf), NULL) : buf;
}

static void corpus_add(corpus_t *c, const char *s, size_t len)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->docs = realloc(c->docs, c->cap * sizeof *c->docs);
        c->lens = realloc(c->lens, c->cap * sizeof *c->lens);
    }
    c->docs[c->n] = malloc(len + 1);
    memcpy(c->docs[c->n], s, len);
    c->docs[c->n][len] = '\0';
    c->lens[c->n++] = len;
}

/* The "chosen" and "rejected" transcripts of every line of every file. */
static void read_hh(corpus_t *c)
{
    glob_t g;
    cr_assert_eq(glob(RW_SOURCE_DIR "/../shared/data/hh-rlhf/*.jsonl.gz", 0, NULL, &g), 0);
    cr_assert_eq(g.gl_pathc, 4);
    for (size_t f = 0; f < g.gl_pathc; f++) {
        size_t n;
        char *text = gunzip_file(g.gl_pathv[f], &n);
        cr_assert_not_null(text, "cannot read %s", g.gl_pathv[f]);
        for (char *line = text, *end; *line; line = end + (*end != '\0')) {
            end = strchr(line, '\n');
            if (!end)
                end = line + strlen(line);
            if (end == line)
                continue;
            json_error_t je;
            json_t *rec = json_loadb(line, (size_t)(end - line), 0, &je);
            cr_assert_not_null(rec, "%s: %s", g.gl_pathv[f], je.text);
            const char *keys[] = {"chosen", "rejected"};
            for (int k = 0; k < 2; k++) {
                json_t *v = json_object_get(rec, keys[k]);
                cr_assert(json_is_string(v));
                corpus_add(c, json_string_value(v), json_string_length(v));
            }
            json_decref(rec);
        }
        free(text);
    }
    globfree(&g);
}

Test(bpe, hh_rlhf_trains_round_trips_and_compresses, .timeout = 300)
{
    RWT_REQUIRE_SHARED_DATA();
    corpus_t c = {0};
    read_hh(&c);
    cr_assert_gt(c.n, 10000);
    rw_bpe_train_opts_t o = {.vocab_size = 4096, .min_frequency = 2};
    rw_bpe_t *b = NULL;
    cr_assert_eq(rw_bpe_train((const char *const *)c.docs, c.lens, c.n, &o, &b), 0);
    cr_assert_eq(rw_bpe_vocab_size(b), 4096);
    size_t bytes = 0, ntok = 0;
    int32_t *ids = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < c.n; i++) {
        size_t n = 0;
        cr_assert_eq(rw_bpe_encode(b, c.docs[i], c.lens[i], &ids, &n, &cap), 0);
        char *out;
        size_t outlen;
        cr_assert_eq(rw_bpe_decode(b, ids, n, &out, &outlen), 0);
        cr_assert(outlen == c.lens[i] && memcmp(out, c.docs[i], outlen) == 0,
                  "document %zu does not round-trip", i);
        free(out);
        bytes += c.lens[i];
        ntok += n;
    }
    double bpt = (double)bytes / (double)ntok;
    cr_log_info("HH: %zu documents, %zu bytes, %zu tokens, %.2f bytes/token", c.n, bytes, ntok,
                bpt);
    cr_expect_gt(bpt, 3.0, "bytes per token %.2f", bpt);

    /* The trained tokenizer survives its own file format. */
    char *json = rw_bpe_to_json(b);
    rw_bpe_t *again = NULL;
    char err[256];
    cr_assert_eq(rw_bpe_from_json(json, strlen(json), &again, err, sizeof err), 0, "%s", err);
    size_t n1 = 0, n2 = 0;
    int32_t *a1 = encode(b, c.docs[0], c.lens[0], &n1),
            *a2 = encode(again, c.docs[0], c.lens[0], &n2);
    cr_expect(n1 == n2 && memcmp(a1, a2, n1 * sizeof *a1) == 0);
    free(a1);
    free(a2);
    free(json);
    rw_bpe_destroy(&again);
    free(ids);
    rw_bpe_destroy(&b);
    for (size_t i = 0; i < c.n; i++)
        free(c.docs[i]);
    free(c.docs);
    free(c.lens);
}

/* ---- training from a callback ----------------------------------------- */

typedef struct feed {
    char **docs;
    size_t n, next;
    int fail_at; /* return an error at this document, or -1 */
} feed_t;

static int feed_next(void *ctx, const char **doc, size_t *len)
{
    feed_t *f = ctx;
    if ((int)f->next == f->fail_at)
        return RW_EIO;
    if (f->next == f->n)
        return 0;
    *doc = f->docs[f->next];
    *len = strlen(f->docs[f->next++]);
    return 1;
}

Test(bpe, feeding_documents_equals_passing_an_array)
{
    char *docs[20];
    for (size_t i = 0; i < 20; i++)
        docs[i] = random_words(200, 8);
    rw_bpe_t *a = train_docs((const char *const *)docs, 20, 1200, 2), *b = NULL;
    feed_t f = {docs, 20, 0, -1};
    rw_bpe_train_opts_t o = {.vocab_size = 1200, .min_frequency = 2};
    cr_assert_eq(rw_bpe_train_feed(feed_next, &f, &o, &b), 0);
    char *ja = rw_bpe_to_json(a), *jb = rw_bpe_to_json(b);
    cr_expect_str_eq(ja, jb);
    free(ja);
    free(jb);
    rw_bpe_destroy(&a);
    rw_bpe_destroy(&b);

    f = (feed_t){docs, 20, 0, 7};
    b = (rw_bpe_t *)1;
    cr_expect_eq(rw_bpe_train_feed(feed_next, &f, &o, &b), RW_EIO, "the callback's error");
    cr_expect_null(b);
    cr_expect_eq(rw_bpe_train_feed(NULL, &f, &o, &b), RW_EINVAL);
    const char *null_doc[] = {NULL};
    size_t len = 3;
    cr_expect_eq(rw_bpe_train(null_doc, &len, 1, &o, &b), RW_EINVAL);
    for (size_t i = 0; i < 20; i++)
        free(docs[i]);
}
