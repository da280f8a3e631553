/* pairset.h — which pairs of a dataset are already there, by content.
 *
 * An open-addressing hash set of indexes into one dataset, keyed by
 * rw_pair_hash(); a hash match is confirmed by comparing the pairs in full,
 * so two different pairs that collide are never taken for duplicates. The
 * set stores indexes rather than pointers because the dataset's array moves
 * as it grows.
 */
#ifndef RW_PAIRSET_H
#define RW_PAIRSET_H

#include "pair.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rw_pairset {
    const rw_dataset_t *ds;        /* borrowed; must outlive the set */
    struct rw_pairset_slot *slots; /* owned */
    size_t cap, n;
} rw_pairset_t;

/* init/fini pair; fini is safe on a zeroed struct. The set starts empty:
 * add the pairs that should count (rw_pairset_add). */
void rw_pairset_init(rw_pairset_t *s, const rw_dataset_t *ds);
void rw_pairset_fini(rw_pairset_t *s);
/* Index in the dataset of a pair equal to p (hash h = rw_pair_hash(p)), or
 * SIZE_MAX if the set has none. p need not be in the dataset. */
size_t rw_pairset_find(const rw_pairset_t *s, const rw_pair_t *p, uint64_t h);
/* Adds ds->pairs[index], whose hash is h. */
void rw_pairset_add(rw_pairset_t *s, size_t index, uint64_t h);

#endif
