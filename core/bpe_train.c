/* bpe_train.c — learning BPE merges from a corpus.
 *
 * The corpus is reduced to its distinct chunks ("words") with their counts.
 * Every adjacent pair of symbols has a count (summed over words, times each
 * word's count) and an index of the words it occurs in. A max-heap orders
 * pairs by (count desc, left id asc, right id asc) with lazy invalidation:
 * when a pair's count drops its heap entry is left alone and fixed when it
 * reaches the top; when it rises a new entry is pushed. So every pair always
 * has an entry at least as large as its count, and the top entry whose count
 * is current is the best pair. Merging a pair visits only the words in its
 * index and adjusts the counts of the pairs around each occurrence — no
 * recount per merge.
 *
 * Every merge makes a new token, never the bytes of an older one (which
 * tokenizer.json could not hold: it maps token strings to ids). Why: merges
 * rewrite words left to right and tokens never split, so a stretch of a
 * word that no token crosses is segmented exactly as the stretch alone
 * would be. When (A, B) is merged into T, every such stretch spelling T is
 * [A, B] and becomes T; any later stretch spelling T was such a stretch
 * then, so no later pair (C, D) can spell T — and no merged pair returns.
 * Hugging Face's trainer guards against the case; the naive reference
 * trainer in the tests checks it on random corpora instead.
 */
#include "bpe_impl.h"

#include "alloc.h"
#include "err.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

typedef struct word {
    size_t off;     /* symbols at t->syms[off .. off + len) */
    uint32_t len;   /* shrinks as merges apply */
    uint32_t stamp; /* merge step that last visited it */
    int64_t freq;
} word_t;

typedef struct pair {
    uint64_t key;
    int64_t count;
    uint32_t *where; /* owned; words holding the pair, maybe stale or repeated */
    uint32_t nwhere, capwhere;
    uint32_t stamp; /* merge step that last raised the count */
} pair_t;

typedef struct heap_ent {
    int64_t count;
    int32_t left, right;
} heap_ent_t;

typedef struct trainer {
    size_t vocab_size;
    int64_t min_freq;
    /* chunk bytes -> word index, and per-word count and length */
    rw_bpe__strmap_t chunks;
    int64_t *chunk_freq;
    size_t *chunk_len, nchunks, chunk_cap, chunk_len_cap;
    word_t *words;
    size_t nwords;
    int32_t *syms; /* owned */
    pair_t *pairs;
    size_t npairs, pairs_cap;
    rw_bpe__pairmap_t pair_index; /* key -> index into pairs */
    heap_ent_t *heap;
    size_t nheap, heap_cap;
    uint32_t *touched; /* pairs raised in this step */
    size_t ntouched, touched_cap;
    uint32_t step;
    /* the vocabulary and merges so far */
    size_t *tok_off;
    size_t nvocab, tok_off_cap;
    unsigned char *tok_bytes;
    size_t ntok_bytes, tok_bytes_cap;
    rw_bpe__merge_t *merges;
    size_t nmerges, merges_cap;
} trainer_t;

static void trainer_fini(trainer_t *t)
{
    rw_bpe__strmap_fini(&t->chunks);
    free(t->chunk_freq);
    free(t->chunk_len);
    free(t->words);
    free(t->syms);
    for (size_t i = 0; i < t->npairs; i++)
        free(t->pairs[i].where);
    free(t->pairs);
    rw_bpe__pairmap_fini(&t->pair_index);
    free(t->heap);
    free(t->touched);
    free(t->tok_off);
    free(t->tok_bytes);
    free(t->merges);
}

static void add_token(trainer_t *t, const void *bytes, size_t len)
{
    rw_grow(&t->tok_off, &t->tok_off_cap, t->nvocab + 2);
    rw_grow(&t->tok_bytes, &t->tok_bytes_cap, t->ntok_bytes + len);
    memcpy(t->tok_bytes + t->ntok_bytes, bytes, len);
    t->ntok_bytes += len;
    t->nvocab++;
    t->tok_off[t->nvocab] = t->ntok_bytes;
}

/* Specials, then the 256 bytes. */
static void trainer_init(trainer_t *t, const rw_bpe_train_opts_t *o)
{
    memset(t, 0, sizeof *t);
    t->vocab_size = o->vocab_size;
    t->min_freq = o->min_frequency > 1 ? (int64_t)o->min_frequency : 1;
    rw_bpe__strmap_init(&t->chunks, 1 << 16);
    rw_bpe__pairmap_init(&t->pair_index, 1 << 16);
    rw_grow(&t->tok_off, &t->tok_off_cap, 1);
    t->tok_off[0] = 0;
    for (int id = 0; id < RW_BPE_NSPECIAL; id++) {
        const char *s = rw_bpe__special_text(id);
        add_token(t, s, strlen(s));
    }
    for (int c = 0; c < 256; c++) {
        unsigned char b = (unsigned char)c;
        add_token(t, &b, 1);
    }
}

static void add_doc(trainer_t *t, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t e = rw_bpe__chunk_end(s, n, i);
        int found;
        uint32_t w = *rw_bpe__strmap_put(&t->chunks, s + i, e - i, (uint32_t)t->nchunks, &found);
        if (!found) {
            rw_grow(&t->chunk_freq, &t->chunk_cap, t->nchunks + 1);
            rw_grow(&t->chunk_len, &t->chunk_len_cap, t->nchunks + 1);
            t->chunk_freq[t->nchunks] = 0;
            t->chunk_len[t->nchunks] = e - i;
            t->nchunks++;
        }
        t->chunk_freq[w]++;
        i = e;
    }
}

static uint32_t pair_find(trainer_t *t, int32_t left, int32_t right)
{
    int found;
    uint32_t *v = rw_bpe__pairmap_put(&t->pair_index, rw_bpe__pair_key(left, right),
                                      (uint32_t)t->npairs, &found);
    if (!found) {
        rw_grow(&t->pairs, &t->pairs_cap, t->npairs + 1);
        pair_t *p = &t->pairs[t->npairs++];
        memset(p, 0, sizeof *p);
        p->key = rw_bpe__pair_key(left, right);
        p->stamp = UINT32_MAX;
    }
    return *v;
}

/* Adds delta to the pair's count; a rise also records word w and marks the
 * pair for a heap push at the end of the step. */
static void pair_add(trainer_t *t, int32_t left, int32_t right, int64_t delta, uint32_t w)
{
    uint32_t pi = pair_find(t, left, right); /* may move t->pairs */
    pair_t *p = &t->pairs[pi];
    p->count += delta;
    if (delta <= 0)
        return;
    if (!p->nwhere || p->where[p->nwhere - 1] != w) {
        rw_grow(&p->where, &p->capwhere, p->nwhere + 1);
        p->where[p->nwhere++] = w;
    }
    if (p->stamp != t->step) {
        p->stamp = t->step;
        rw_grow(&t->touched, &t->touched_cap, t->ntouched + 1);
        t->touched[t->ntouched++] = (uint32_t)(p - t->pairs);
    }
}

/* Turns the distinct chunks into words of byte ids and counts their pairs.
 * Single-byte chunks hold no pair and are dropped. */
static void build_words(trainer_t *t)
{
    t->words = rw_new_array(word_t, t->nchunks);
    t->syms = rw_malloc(rw_array_size(t->chunks.arena_n + 1, sizeof *t->syms));
    const unsigned char *bytes = t->chunks.arena;
    size_t at = 0, nsyms = 0;
    for (size_t c = 0; c < t->nchunks; at += t->chunk_len[c], c++) {
        if (t->chunk_len[c] < 2)
            continue;
        word_t *w = &t->words[t->nwords];
        w->off = nsyms;
        w->len = (uint32_t)t->chunk_len[c];
        w->freq = t->chunk_freq[c];
        w->stamp = UINT32_MAX;
        for (size_t k = 0; k < w->len; k++)
            t->syms[nsyms++] = RW_BPE_BYTE0 + bytes[at + k];
        for (size_t k = 0; k + 1 < w->len; k++)
            pair_add(t, t->syms[w->off + k], t->syms[w->off + k + 1], w->freq, (uint32_t)t->nwords);
        t->nwords++;
    }
    rw_bpe__strmap_fini(&t->chunks);
}

/* a ranks above b: more frequent, then the smaller (left, right). */
static int heap_above(const heap_ent_t *a, const heap_ent_t *b)
{
    if (a->count != b->count)
        return a->count > b->count;
    if (a->left != b->left)
        return a->left < b->left;
    return a->right < b->right;
}

static void heap_push(trainer_t *t, const pair_t *p)
{
    heap_ent_t e = {p->count, (int32_t)(p->key >> 32), (int32_t)(uint32_t)p->key};
    rw_grow(&t->heap, &t->heap_cap, t->nheap + 1);
    size_t i = t->nheap++;
    while (i > 0 && heap_above(&e, &t->heap[(i - 1) / 2])) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = e;
}

static heap_ent_t heap_pop(trainer_t *t)
{
    heap_ent_t top = t->heap[0], last = t->heap[--t->nheap];
    size_t i = 0, n = t->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && heap_above(&t->heap[c + 1], &t->heap[c]))
            c++;
        if (!heap_above(&t->heap[c], &last))
            break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n)
        t->heap[i] = last;
    return top;
}

/* Pushes every pair raised in this step (whose count is still positive). */
static void push_touched(trainer_t *t)
{
    for (size_t i = 0; i < t->ntouched; i++) {
        const pair_t *p = &t->pairs[t->touched[i]];
        if (p->count > 0)
            heap_push(t, p);
    }
    t->ntouched = 0;
}

/* Replaces each occurrence of (a, b) in word w by x, left to right, and
 * moves the counts of the pairs around it: (prev, a) and (b, next) go,
 * (prev, x) and (x, next) come. prev is read from the rewritten prefix, so
 * back-to-back occurrences ("abab") hand the pair between them correctly. */
static void merge_word(trainer_t *t, uint32_t w, int32_t a, int32_t b, int32_t x)
{
    word_t *wd = &t->words[w];
    int32_t *s = t->syms + wd->off;
    int64_t f = wd->freq;
    size_t out = 0, n = wd->len;
    for (size_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            if (out > 0) {
                pair_add(t, s[out - 1], a, -f, w);
                pair_add(t, s[out - 1], x, f, w);
            }
            if (i + 2 < n) {
                pair_add(t, b, s[i + 2], -f, w);
                pair_add(t, x, s[i + 2], f, w);
            }
            pair_add(t, a, b, -f, w);
            s[out++] = x;
            i += 2;
        } else {
            s[out++] = s[i++];
        }
    }
    wd->len = (uint32_t)out;
}

/* Appends the token a + b; returns its id. */
static int32_t new_token(trainer_t *t, int32_t a, int32_t b)
{
    size_t na = t->tok_off[a + 1] - t->tok_off[a], nb = t->tok_off[b + 1] - t->tok_off[b];
    rw_grow(&t->tok_bytes, &t->tok_bytes_cap, t->ntok_bytes + na + nb);
    /* The parts are in the same buffer: copy only after it has grown. */
    unsigned char *dst = t->tok_bytes + t->ntok_bytes;
    memcpy(dst, t->tok_bytes + t->tok_off[a], na);
    memcpy(dst + na, t->tok_bytes + t->tok_off[b], nb);
    rw_grow(&t->tok_off, &t->tok_off_cap, t->nvocab + 2);
    t->ntok_bytes += na + nb;
    t->nvocab++;
    t->tok_off[t->nvocab] = t->ntok_bytes;
    return (int32_t)t->nvocab - 1;
}

/* Merges pair pi everywhere into a new token. */
static void apply_merge(trainer_t *t, uint32_t pi)
{
    pair_t *p = &t->pairs[pi];
    int32_t a = (int32_t)(p->key >> 32), b = (int32_t)(uint32_t)p->key;
    int32_t x = new_token(t, a, b);
    rw_grow(&t->merges, &t->merges_cap, t->nmerges + 1);
    t->merges[t->nmerges++] = (rw_bpe__merge_t){a, b, x};
    /* The word list is taken out first: merge_word grows other pairs'
     * lists and may move t->pairs. */
    uint32_t *where = p->where, nwhere = p->nwhere;
    p->where = NULL;
    p->nwhere = p->capwhere = 0;
    t->step++;
    for (uint32_t k = 0; k < nwhere; k++) {
        uint32_t w = where[k];
        if (t->words[w].stamp == t->step)
            continue;
        t->words[w].stamp = t->step;
        merge_word(t, w, a, b, x);
    }
    free(where);
    push_touched(t);
}

static void train_loop(trainer_t *t)
{
    t->step = 0;
    push_touched(t); /* every pair counted by build_words */
    while (t->nvocab < t->vocab_size && t->nheap) {
        heap_ent_t e = heap_pop(t);
        uint32_t pi = rw_bpe__pairmap_get(&t->pair_index, rw_bpe__pair_key(e.left, e.right));
        pair_t *p = &t->pairs[pi];
        if (p->count != e.count) {
            /* Stale. A lower count is re-queued; a higher one has its own entry. */
            if (p->count > 0 && p->count < e.count)
                heap_push(t, p);
            continue;
        }
        if (p->count < t->min_freq)
            break;
        apply_merge(t, pi);
    }
}

static int check_opts(const rw_bpe_train_opts_t *o)
{
    if (o->vocab_size < RW_BPE_MIN_VOCAB || o->vocab_size > RW_BPE_MAX_VOCAB) {
        RW_DEBUG("bpe", "vocab_size %zu is outside %d..%d", o->vocab_size, RW_BPE_MIN_VOCAB,
                 RW_BPE_MAX_VOCAB);
        return RW_EINVAL;
    }
    return 0;
}

int rw_bpe_train_feed(rw_bpe_doc_fn next, void *ctx, const rw_bpe_train_opts_t *opts,
                      rw_bpe_t **out)
{
    if (out)
        *out = NULL;
    rw_bpe_train_opts_t o = opts ? *opts : RW_BPE_TRAIN_OPTS_DEFAULT;
    if (!next || !out || check_opts(&o) < 0)
        return RW_EINVAL;
    trainer_t t;
    trainer_init(&t, &o);
    int rc;
    const char *doc;
    size_t len;
    while ((rc = next(ctx, &doc, &len)) > 0) {
        if (len > RW_BPE_MAX_TEXT) { /* word lengths are uint32 */
            rc = RW_ETOOBIG;
            goto done;
        }
        if (!doc && len) {
            rc = RW_EINVAL;
            goto done;
        }
        add_doc(&t, (const unsigned char *)doc, len);
    }
    if (rc < 0)
        goto done;
    build_words(&t);
    train_loop(&t);
    RW_DEBUG("bpe", "trained %zu tokens with %zu merges from %zu distinct chunks", t.nvocab,
             t.nmerges, t.nwords);
    char err[256];
    rc = rw_bpe__new(t.nvocab, t.tok_off, t.tok_bytes, t.nmerges, t.merges, out, err, sizeof err);
    t.tok_off = NULL;
    t.tok_bytes = NULL;
    t.merges = NULL;
    if (rc < 0) /* a trainer bug, not a user error */
        RW_ERROR("bpe", "trained tokenizer failed its checks: %s", err);
done:
    trainer_fini(&t);
    return rc;
}

typedef struct doc_array {
    const char *const *docs;
    const size_t *lens;
    size_t n, next;
} doc_array_t;

static int next_in_array(void *ctx, const char **doc, size_t *len)
{
    doc_array_t *a = ctx;
    if (a->next == a->n)
        return 0;
    *doc = a->docs[a->next];
    *len = a->lens[a->next];
    a->next++;
    return 1;
}

int rw_bpe_train(const char *const *docs, const size_t *lens, size_t ndocs,
                 const rw_bpe_train_opts_t *opts, rw_bpe_t **out)
{
    if (out)
        *out = NULL;
    if (ndocs && (!docs || !lens))
        return RW_EINVAL;
    doc_array_t a = {docs, lens, ndocs, 0};
    return rw_bpe_train_feed(next_in_array, &a, opts, out);
}
