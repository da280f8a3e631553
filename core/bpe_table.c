/* bpe_table.c — the two hash tables behind the BPE tokenizer and trainer.
 *
 * Both are open addressing with linear probing over a power-of-two array,
 * grown to stay at most half full, and never delete (the tokenizer builds
 * them once; the trainer only adds). The pair map hashes its 64-bit key by
 * Fibonacci multiplication; the string map uses rw_hash and keeps a copy of
 * every key in one arena. Lookups never depend on iteration order, and
 * nothing iterates these tables, so they cannot make results vary.
 */
#include "bpe_impl.h"

#include "alloc.h"
#include "hash.h"

#include <stdlib.h>
#include <string.h>

static size_t slots_for(size_t expect, unsigned *log2_out)
{
    size_t slots = 16;
    unsigned lg = 4;
    while (slots < expect * 2) {
        slots *= 2;
        lg++;
    }
    if (log2_out)
        *log2_out = lg;
    return slots;
}

void rw_bpe__pairmap_init(rw_bpe__pairmap_t *m, size_t expect)
{
    unsigned lg;
    size_t slots = slots_for(expect, &lg);
    m->keys = rw_malloc(rw_array_size(slots, sizeof *m->keys));
    memset(m->keys, 0xff, slots * sizeof *m->keys);
    m->vals = rw_malloc(rw_array_size(slots, sizeof *m->vals));
    m->mask = slots - 1;
    m->shift = 64 - lg;
    m->n = 0;
}

void rw_bpe__pairmap_fini(rw_bpe__pairmap_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static void pairmap_grow(rw_bpe__pairmap_t *m)
{
    rw_bpe__pairmap_t big;
    rw_bpe__pairmap_init(&big, (m->mask + 1));
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->keys[i] == UINT64_MAX)
            continue;
        size_t j = (size_t)((m->keys[i] * 0x9E3779B97F4A7C15ULL) >> big.shift);
        while (big.keys[j] != UINT64_MAX)
            j = (j + 1) & big.mask;
        big.keys[j] = m->keys[i];
        big.vals[j] = m->vals[i];
    }
    big.n = m->n;
    rw_bpe__pairmap_fini(m);
    *m = big;
}

uint32_t *rw_bpe__pairmap_put(rw_bpe__pairmap_t *m, uint64_t key, uint32_t fresh, int *found)
{
    if ((m->n + 1) * 2 > m->mask + 1)
        pairmap_grow(m);
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> m->shift);
    for (;; i = (i + 1) & m->mask) {
        if (m->keys[i] == key) {
            *found = 1;
            return &m->vals[i];
        }
        if (m->keys[i] == UINT64_MAX)
            break;
    }
    m->keys[i] = key;
    m->vals[i] = fresh;
    m->n++;
    *found = 0;
    return &m->vals[i];
}

void rw_bpe__strmap_init(rw_bpe__strmap_t *m, size_t expect)
{
    size_t slots = slots_for(expect, NULL);
    m->slots = rw_malloc(rw_array_size(slots, sizeof *m->slots));
    for (size_t i = 0; i < slots; i++)
        m->slots[i].val = RW_BPE__NONE;
    m->mask = slots - 1;
    m->n = 0;
    m->arena = NULL;
    m->arena_n = m->arena_cap = 0;
}

void rw_bpe__strmap_fini(rw_bpe__strmap_t *m)
{
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

static size_t strmap_find(const rw_bpe__strmap_t *m, const void *key, size_t len, uint64_t h)
{
    size_t i = (size_t)h & m->mask;
    for (;; i = (i + 1) & m->mask) {
        const rw_bpe__strmap_slot_t *s = &m->slots[i];
        if (s->val == RW_BPE__NONE)
            return i;
        if (s->hash == h && s->len == len && memcmp(m->arena + s->off, key, len) == 0)
            return i;
    }
}

uint32_t rw_bpe__strmap_get(const rw_bpe__strmap_t *m, const void *key, size_t len)
{
    return m->slots[strmap_find(m, key, len, rw_hash(key, len))].val;
}

static void strmap_grow(rw_bpe__strmap_t *m)
{
    size_t slots = (m->mask + 1) * 2;
    rw_bpe__strmap_slot_t *big = rw_malloc(rw_array_size(slots, sizeof *big));
    for (size_t i = 0; i < slots; i++)
        big[i].val = RW_BPE__NONE;
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->slots[i].val == RW_BPE__NONE)
            continue;
        size_t j = (size_t)m->slots[i].hash & (slots - 1);
        while (big[j].val != RW_BPE__NONE)
            j = (j + 1) & (slots - 1);
        big[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = big;
    m->mask = slots - 1;
}

uint32_t *rw_bpe__strmap_put(rw_bpe__strmap_t *m, const void *key, size_t len, uint32_t fresh,
                             int *found)
{
    if ((m->n + 1) * 2 > m->mask + 1)
        strmap_grow(m);
    uint64_t h = rw_hash(key, len);
    rw_bpe__strmap_slot_t *s = &m->slots[strmap_find(m, key, len, h)];
    if (s->val != RW_BPE__NONE) {
        *found = 1;
        return &s->val;
    }
    rw_grow(&m->arena, &m->arena_cap, m->arena_n + len);
    if (len)
        memcpy(m->arena + m->arena_n, key, len);
    s->hash = h;
    s->off = m->arena_n;
    s->len = len;
    s->val = fresh;
    m->arena_n += len;
    m->n++;
    *found = 0;
    return &s->val;
}
