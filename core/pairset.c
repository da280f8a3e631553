/* pairset.c — the duplicate-detection set of pairset.h.
 *
 * Linear probing over a power-of-two table kept at most half full; a slot
 * holds the full 64-bit hash (so most mismatches cost no string compare)
 * and index + 1 (0 marks an empty slot).
 */
#include "pairset.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>

struct rw_pairset_slot {
    uint64_t hash;
    size_t index1; /* index + 1; 0 when empty */
};

void rw_pairset_init(rw_pairset_t *s, const rw_dataset_t *ds)
{
    memset(s, 0, sizeof *s);
    s->ds = ds;
}

void rw_pairset_fini(rw_pairset_t *s)
{
    free(s->slots);
    memset(s, 0, sizeof *s);
}

size_t rw_pairset_find(const rw_pairset_t *s, const rw_pair_t *p, uint64_t h)
{
    if (s->n == 0)
        return SIZE_MAX;
    size_t mask = s->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const struct rw_pairset_slot *slot = &s->slots[i];
        if (slot->index1 == 0)
            return SIZE_MAX;
        if (slot->hash == h && rw_pair_equal(&s->ds->pairs[slot->index1 - 1], p))
            return slot->index1 - 1;
    }
}

static void pairset_put(struct rw_pairset_slot *slots, size_t cap, uint64_t h, size_t index1)
{
    size_t mask = cap - 1;
    size_t i = (size_t)h & mask;
    while (slots[i].index1 != 0)
        i = (i + 1) & mask;
    slots[i].hash = h;
    slots[i].index1 = index1;
}

void rw_pairset_add(rw_pairset_t *s, size_t index, uint64_t h)
{
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct rw_pairset_slot *slots = rw_new_array(struct rw_pairset_slot, cap);
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i].index1)
                pairset_put(slots, cap, s->slots[i].hash, s->slots[i].index1);
        free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    pairset_put(s->slots, s->cap, h, index + 1);
    s->n++;
}
