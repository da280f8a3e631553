/* test_bpe_train.c — learning BPE merges.
 *
 * The first merges of a tiny corpus are worked out by hand; on random
 * corpora the trainer is held to a naive reference (recount every pair each
 * merge) merge by merge; a callback feeds documents like an array does; and
 * a 4,096 vocabulary is trained on the real HH-RLHF transcripts.
 */
#include "bpe_testlib.h"
#include "support.h"

#include <criterion/criterion.h>
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

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
Test(bpe_train, tiny_corpus_gives_the_merges_worked_by_hand)
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

Test(bpe_train, vocab_size_stops_training_and_smaller_is_a_prefix)
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

Test(bpe_train, vocab_size_limits)
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
Test(bpe_train, training_matches_the_naive_reference)
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

Test(bpe_train, feeding_documents_equals_passing_an_array)
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

Test(bpe_train, hh_rlhf_trains_round_trips_and_compresses, .timeout = 300)
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
