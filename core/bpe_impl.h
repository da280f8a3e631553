/* bpe_impl.h — the inside of the BPE tokenizer, shared by its .c files.
 *
 * Not a public header: only core/bpe*.c and the tokenizer's own tests
 * include it. Names carry the internal prefix rw_bpe__. It holds the
 * tokenizer struct, the pre-tokenizer, the two hash tables the encoder,
 * trainer and loader use (pair -> value, bytes -> value), and the one
 * constructor every path (training, loading) goes through, which checks the
 * vocabulary and merges it is given.
 */
#ifndef RW_BPE_IMPL_H
#define RW_BPE_IMPL_H

#include "bpe.h"

#include <stddef.h>
#include <stdint.h>

#define RW_BPE__NONE UINT32_MAX

/* One merge: tokens left and right next to each other become result. */
typedef struct rw_bpe__merge {
    int32_t left, right, result;
} rw_bpe__merge_t;

/* Open-addressing map from a pair key (left << 32 | right) to a uint32. */
typedef struct rw_bpe__pairmap {
    uint64_t *keys; /* owned; UINT64_MAX marks a free slot */
    uint32_t *vals; /* owned */
    size_t mask, n;
    unsigned shift; /* 64 - log2(slots) */
} rw_bpe__pairmap_t;

/* Open-addressing map from a byte string to a uint32. Keys are copied into
 * arena back to back in insertion order, which the trainer relies on. */
typedef struct rw_bpe__strmap_slot {
    uint64_t hash;
    size_t off, len;
    uint32_t val; /* RW_BPE__NONE marks a free slot */
} rw_bpe__strmap_slot_t;

typedef struct rw_bpe__strmap {
    rw_bpe__strmap_slot_t *slots; /* owned */
    size_t mask, n;
    unsigned char *arena; /* owned */
    size_t arena_n, arena_cap;
} rw_bpe__strmap_t;

/* One slot of the direct-mapped chunk -> ids cache of rw_bpe_encode. */
#define RW_BPE__CACHE_KEY   24
#define RW_BPE__CACHE_SLOTS (1u << 15)
typedef struct rw_bpe__cache_slot {
    uint64_t hash;
    uint8_t len, nids; /* len 0: empty */
    uint16_t ids[RW_BPE__CACHE_KEY];
    unsigned char key[RW_BPE__CACHE_KEY];
} rw_bpe__cache_slot_t;

struct rw_bpe {
    size_t nvocab;
    size_t *tok_off;          /* owned; nvocab + 1 offsets into tok_bytes */
    unsigned char *tok_bytes; /* owned */
    size_t nmerges;
    rw_bpe__merge_t *merges; /* owned; rank order */
    int32_t byte_id[256];
    rw_bpe__pairmap_t ranks; /* (left, right) -> rank */

    rw_bpe__cache_slot_t *cache; /* owned; allocated on first encode */
    /* Scratch for merging one chunk, grown as needed (owned). */
    int32_t *sym, *prev, *next;
    uint32_t *rank;
    uint64_t *heap;
    size_t scratch_cap, heap_cap;
};

static inline uint64_t rw_bpe__pair_key(int32_t left, int32_t right)
{
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

/* pairmap: init for about `expect` keys; get returns RW_BPE__NONE if key is
 * absent; put returns the value slot of key, inserting `fresh` (and setting
 * *found to 0) if it was absent. Pointers from put last until the next put. */
void rw_bpe__pairmap_init(rw_bpe__pairmap_t *m, size_t expect);
void rw_bpe__pairmap_fini(rw_bpe__pairmap_t *m);
uint32_t *rw_bpe__pairmap_put(rw_bpe__pairmap_t *m, uint64_t key, uint32_t fresh, int *found);

static inline uint32_t rw_bpe__pairmap_get(const rw_bpe__pairmap_t *m, uint64_t key)
{
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> m->shift);
    for (;; i = (i + 1) & m->mask) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == UINT64_MAX)
            return RW_BPE__NONE;
    }
}

/* strmap: the same contract over byte strings; fresh must not be
 * RW_BPE__NONE. */
void rw_bpe__strmap_init(rw_bpe__strmap_t *m, size_t expect);
void rw_bpe__strmap_fini(rw_bpe__strmap_t *m);
uint32_t rw_bpe__strmap_get(const rw_bpe__strmap_t *m, const void *key, size_t len);
uint32_t *rw_bpe__strmap_put(rw_bpe__strmap_t *m, const void *key, size_t len, uint32_t fresh,
                             int *found);

/* The pre-tokenizer: end of the chunk that starts at s[i] (i < n), always
 * > i. Chunks tile the text: start at 0, continue at each end. */
size_t rw_bpe__chunk_end(const unsigned char *s, size_t n, size_t i);

/* The text of special id (0..2). */
const char *rw_bpe__special_text(int id);

/* Builds a tokenizer from nvocab tokens (token i is tok_bytes[tok_off[i] ..
 * tok_off[i+1])) and nmerges merges in rank order. Takes ownership of
 * tok_off, tok_bytes and merges, even on error. Checks: 259..65536 tokens,
 * ids 0..2 are the specials, exactly one token per single byte, merges
 * refer to non-special ids in range, each result is its parts' bytes, no
 * pair merged twice. Returns 0 with *out set, or RW_EPARSE with a message in
 * err (which may be NULL). */
int rw_bpe__new(size_t nvocab, size_t *tok_off, unsigned char *tok_bytes, size_t nmerges,
                rw_bpe__merge_t *merges, rw_bpe_t **out, char *err, size_t errlen);

/* snprintf into err (if err and errlen); returns code, for `return errf(..)`. */
int rw_bpe__errf(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
