/* bpe.c — the BPE tokenizer object: construction, encode and decode.
 *
 * Encoding cuts the text into chunks (bpe_chunk.c) and turns each chunk into
 * ids by applying merges lowest rank first, leftmost first among equal
 * ranks — the order Hugging Face's BPE model uses. Short chunks keep an
 * array of pair ranks and rescan it after each merge (quadratic, but with no
 * hash lookups beyond the two new neighbours); long ones (long runs of
 * letters or spaces) use a linked list and a min-heap so a megabyte chunk
 * costs n log n, not n^2. Chunks up to RW_BPE__CACHE_KEY bytes go through a
 * direct-mapped cache of chunk -> ids: real text repeats its words, so most
 * chunks are one hash and one memcmp.
 */
#include "bpe_impl.h"

#include "alloc.h"
#include "err.h"
#include "hash.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Chunks longer than this use the heap merge (see the file comment). */
#define SMALL_CHUNK 64

static const char *const special_text[RW_BPE_NSPECIAL] = {"<|pad|>", "<|cls|>", "<|sep|>"};

const char *rw_bpe__special_text(int id)
{
    return id >= 0 && id < RW_BPE_NSPECIAL ? special_text[id] : NULL;
}

int rw_bpe__errf(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void rw_bpe_destroy(rw_bpe_t **bpe_p)
{
    if (!bpe_p || !*bpe_p)
        return;
    rw_bpe_t *b = *bpe_p;
    free(b->tok_off);
    free(b->tok_bytes);
    free(b->merges);
    rw_bpe__pairmap_fini(&b->ranks);
    free(b->cache);
    free(b->sym);
    free(b->prev);
    free(b->next);
    free(b->rank);
    free(b->heap);
    free(b);
    *bpe_p = NULL;
}

static size_t tok_len(const rw_bpe_t *b, int32_t id)
{
    return b->tok_off[id + 1] - b->tok_off[id];
}

/* Specials at 0..2 and exactly one token per byte; fills b->byte_id. */
static int check_tokens(rw_bpe_t *b, char *err, size_t errlen)
{
    if (b->nvocab < RW_BPE_BASE_VOCAB || b->nvocab > RW_BPE_MAX_VOCAB)
        return rw_bpe__errf(RW_EPARSE, err, errlen,
                            "vocabulary has %zu tokens; a byte-level one has %d to %d", b->nvocab,
                            RW_BPE_BASE_VOCAB, RW_BPE_MAX_VOCAB);
    for (int id = 0; id < RW_BPE_NSPECIAL; id++) {
        size_t n = strlen(special_text[id]);
        if (tok_len(b, id) != n || memcmp(b->tok_bytes + b->tok_off[id], special_text[id], n))
            return rw_bpe__errf(RW_EPARSE, err, errlen, "id %d must be the special token %s", id,
                                special_text[id]);
    }
    for (int c = 0; c < 256; c++)
        b->byte_id[c] = -1;
    for (size_t id = RW_BPE_NSPECIAL; id < b->nvocab; id++) {
        size_t n = tok_len(b, (int32_t)id);
        if (n == 0)
            return rw_bpe__errf(RW_EPARSE, err, errlen, "token id %zu is empty", id);
        if (n != 1)
            continue;
        unsigned char c = b->tok_bytes[b->tok_off[id]];
        if (b->byte_id[c] >= 0)
            return rw_bpe__errf(RW_EPARSE, err, errlen, "ids %d and %zu are both byte 0x%02x",
                                b->byte_id[c], id, c);
        b->byte_id[c] = (int32_t)id;
    }
    for (int c = 0; c < 256; c++)
        if (b->byte_id[c] < 0)
            return rw_bpe__errf(RW_EPARSE, err, errlen, "no token for byte 0x%02x", c);
    return 0;
}

/* Every merge joins two ordinary tokens into the token of their bytes, and
 * no pair is merged twice; fills b->ranks. */
static int check_merges(rw_bpe_t *b, char *err, size_t errlen)
{
    rw_bpe__pairmap_init(&b->ranks, b->nmerges);
    for (size_t r = 0; r < b->nmerges; r++) {
        const rw_bpe__merge_t *m = &b->merges[r];
        int32_t lo = RW_BPE_NSPECIAL, hi = (int32_t)b->nvocab;
        if (m->left < lo || m->left >= hi || m->right < lo || m->right >= hi || m->result < lo ||
            m->result >= hi)
            return rw_bpe__errf(RW_EPARSE, err, errlen,
                                "merge %zu (%d %d -> %d) uses an id out of range or a special", r,
                                m->left, m->right, m->result);
        size_t nl = tok_len(b, m->left), nr = tok_len(b, m->right);
        const unsigned char *res = b->tok_bytes + b->tok_off[m->result];
        if (tok_len(b, m->result) != nl + nr ||
            memcmp(res, b->tok_bytes + b->tok_off[m->left], nl) ||
            memcmp(res + nl, b->tok_bytes + b->tok_off[m->right], nr))
            return rw_bpe__errf(RW_EPARSE, err, errlen,
                                "merge %zu: token %d is not tokens %d and %d joined", r, m->result,
                                m->left, m->right);
        int found;
        uint32_t *v = rw_bpe__pairmap_put(&b->ranks, rw_bpe__pair_key(m->left, m->right),
                                          (uint32_t)r, &found);
        if (found)
            return rw_bpe__errf(RW_EPARSE, err, errlen, "merge %zu repeats merge %u (%d %d)", r, *v,
                                m->left, m->right);
    }
    return 0;
}

int rw_bpe__new(size_t nvocab, size_t *tok_off, unsigned char *tok_bytes, size_t nmerges,
                rw_bpe__merge_t *merges, rw_bpe_t **out, char *err, size_t errlen)
{
    rw_bpe_t *b = rw_new(rw_bpe_t);
    b->nvocab = nvocab;
    b->tok_off = tok_off;
    b->tok_bytes = tok_bytes;
    b->nmerges = nmerges;
    b->merges = merges;
    int rc = check_tokens(b, err, errlen);
    if (rc < 0)
        goto fail;
    rc = check_merges(b, err, errlen);
    if (rc < 0)
        goto fail;
    *out = b;
    return 0;
fail:
    rw_bpe_destroy(&b);
    *out = NULL;
    return rc;
}

size_t rw_bpe_vocab_size(const rw_bpe_t *bpe)
{
    return bpe->nvocab;
}

size_t rw_bpe_merge_count(const rw_bpe_t *bpe)
{
    return bpe->nmerges;
}

const char *rw_bpe_token(const rw_bpe_t *bpe, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= bpe->nvocab)
        return NULL;
    if (len)
        *len = tok_len(bpe, id);
    return (const char *)bpe->tok_bytes + bpe->tok_off[id];
}

static uint32_t rank_of(const rw_bpe_t *b, int32_t left, int32_t right)
{
    return rw_bpe__pairmap_get(&b->ranks, rw_bpe__pair_key(left, right));
}

static void ensure_scratch(rw_bpe_t *b, size_t n)
{
    if (n <= b->scratch_cap)
        return;
    size_t cap = b->scratch_cap ? b->scratch_cap : 64;
    while (cap < n)
        cap *= 2;
    b->sym = rw_realloc(b->sym, rw_array_size(cap, sizeof *b->sym));
    b->prev = rw_realloc(b->prev, rw_array_size(cap, sizeof *b->prev));
    b->next = rw_realloc(b->next, rw_array_size(cap, sizeof *b->next));
    b->rank = rw_realloc(b->rank, rw_array_size(cap, sizeof *b->rank));
    b->scratch_cap = cap;
}

/* Merges b->sym[0..n) in place; returns the new length. */
static size_t merge_small(rw_bpe_t *b, size_t n)
{
    int32_t *sym = b->sym;
    uint32_t *rk = b->rank;
    for (size_t k = 0; k + 1 < n; k++)
        rk[k] = rank_of(b, sym[k], sym[k + 1]);
    while (n > 1) {
        uint32_t best = RW_BPE__NONE;
        size_t at = 0;
        for (size_t k = 0; k + 1 < n; k++)
            if (rk[k] < best) {
                best = rk[k];
                at = k;
            }
        if (best == RW_BPE__NONE)
            break;
        sym[at] = b->merges[best].result;
        memmove(sym + at + 1, sym + at + 2, (n - at - 2) * sizeof *sym);
        if (at + 3 < n) /* rk holds n - 1 pair ranks */
            memmove(rk + at + 1, rk + at + 2, (n - at - 3) * sizeof *rk);
        n--;
        rk[at] = at + 1 < n ? rank_of(b, sym[at], sym[at + 1]) : RW_BPE__NONE;
        if (at > 0)
            rk[at - 1] = rank_of(b, sym[at - 1], sym[at]);
    }
    return n;
}

/* Min-heap of (rank << 32 | position): lowest rank, then leftmost. */
static void heap_push(rw_bpe_t *b, size_t *nh, uint64_t v)
{
    rw_grow(&b->heap, &b->heap_cap, *nh + 1);
    size_t i = (*nh)++;
    while (i > 0 && b->heap[(i - 1) / 2] > v) {
        b->heap[i] = b->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    b->heap[i] = v;
}

static uint64_t heap_pop(rw_bpe_t *b, size_t *nh)
{
    uint64_t top = b->heap[0], last = b->heap[--*nh];
    size_t i = 0, n = *nh;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && b->heap[c + 1] < b->heap[c])
            c++;
        if (b->heap[c] >= last)
            break;
        b->heap[i] = b->heap[c];
        i = c;
    }
    b->heap[i] = last;
    return top;
}

static void push_pair(rw_bpe_t *b, size_t *nh, int32_t pos)
{
    uint32_t r = rank_of(b, b->sym[pos], b->sym[b->next[pos]]);
    if (r != RW_BPE__NONE)
        heap_push(b, nh, (uint64_t)r << 32 | (uint32_t)pos);
}

/* The same result as merge_small for long chunks. Heap entries go stale as
 * their symbols merge away; an entry counts only if its left symbol is
 * alive, has a right neighbour, and the pair there still has its rank. */
static size_t merge_long(rw_bpe_t *b, size_t n)
{
    int32_t *sym = b->sym, *prev = b->prev, *next = b->next;
    size_t nh = 0;
    for (size_t k = 0; k < n; k++) {
        prev[k] = (int32_t)k - 1;
        next[k] = k + 1 < n ? (int32_t)k + 1 : -1;
    }
    for (size_t k = 0; k + 1 < n; k++)
        push_pair(b, &nh, (int32_t)k);
    while (nh) {
        uint64_t top = heap_pop(b, &nh);
        uint32_t r = (uint32_t)(top >> 32);
        int32_t p = (int32_t)(uint32_t)top, q = next[p];
        if (sym[p] < 0 || q < 0 || rank_of(b, sym[p], sym[q]) != r)
            continue;
        sym[p] = b->merges[r].result;
        sym[q] = -1;
        next[p] = next[q];
        if (next[q] >= 0)
            prev[next[q]] = p;
        if (prev[p] >= 0)
            push_pair(b, &nh, prev[p]);
        if (next[p] >= 0)
            push_pair(b, &nh, p);
    }
    size_t m = 0;
    for (int32_t k = 0; k >= 0; k = next[k])
        sym[m++] = sym[k];
    return m;
}

/* Appends the ids of one chunk. */
static void encode_chunk(rw_bpe_t *b, const unsigned char *s, size_t n, int32_t **ids, size_t *nids,
                         size_t *cap)
{
    rw_grow(ids, cap, *nids + n);
    int32_t *out = *ids + *nids;
    if (n == 1) {
        out[0] = b->byte_id[s[0]];
        *nids += 1;
        return;
    }
    rw_bpe__cache_slot_t *slot = NULL;
    uint64_t h = 0;
    if (n <= RW_BPE__CACHE_KEY) {
        h = rw_hash(s, n);
        slot = &b->cache[h & (RW_BPE__CACHE_SLOTS - 1)];
        if (slot->len == n && slot->hash == h && memcmp(slot->key, s, n) == 0) {
            for (size_t k = 0; k < slot->nids; k++)
                out[k] = slot->ids[k];
            *nids += slot->nids;
            return;
        }
    }
    ensure_scratch(b, n);
    for (size_t k = 0; k < n; k++)
        b->sym[k] = b->byte_id[s[k]];
    size_t m = n <= SMALL_CHUNK ? merge_small(b, n) : merge_long(b, n);
    memcpy(out, b->sym, m * sizeof *out);
    *nids += m;
    if (slot) {
        slot->hash = h;
        slot->len = (uint8_t)n;
        slot->nids = (uint8_t)m;
        memcpy(slot->key, s, n);
        for (size_t k = 0; k < m; k++)
            slot->ids[k] = (uint16_t)b->sym[k];
    }
}

int rw_bpe_encode(rw_bpe_t *bpe, const char *text, size_t len, int32_t **ids, size_t *n,
                  size_t *cap)
{
    if (!bpe || (!text && len) || !ids || !n || !cap)
        return RW_EINVAL;
    if (len > RW_BPE_MAX_TEXT) /* chunk positions are int32 */
        return RW_ETOOBIG;
    if (!bpe->cache)
        bpe->cache = rw_new_array(rw_bpe__cache_slot_t, RW_BPE__CACHE_SLOTS);
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t e = rw_bpe__chunk_end(s, len, i);
        encode_chunk(bpe, s + i, e - i, ids, n, cap);
        i = e;
    }
    return 0;
}

int rw_bpe_decode(const rw_bpe_t *bpe, const int32_t *ids, size_t n, char **out, size_t *outlen)
{
    if (out)
        *out = NULL;
    if (!bpe || (!ids && n) || !out || !outlen)
        return RW_EINVAL;
    size_t total = 0;
    for (size_t k = 0; k < n; k++) {
        if (ids[k] < 0 || (size_t)ids[k] >= bpe->nvocab)
            return RW_EINVAL;
        total += tok_len(bpe, ids[k]);
    }
    char *buf = rw_malloc(total + 1);
    size_t at = 0;
    for (size_t k = 0; k < n; k++) {
        size_t len = tok_len(bpe, ids[k]);
        memcpy(buf + at, bpe->tok_bytes + bpe->tok_off[ids[k]], len);
        at += len;
    }
    buf[at] = '\0';
    *out = buf;
    *outlen = at;
    return 0;
}
