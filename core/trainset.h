/* trainset.h — a dataset's pairs as token ids, and the batches training reads.
 *
 * Training and evaluation see a dataset through the shared tokenizer: every
 * pair of the chosen split (and domains) is tokenized once, its prompt once
 * for both replies, into one id block the pairs point into. Each pair keeps
 * its domain as an index into the set's domain list, and the set also holds
 * one classifier example per pair (the prompt alone, labelled with its
 * domain) for a router.
 *
 * Batches come from a shuffled order of the pairs that depends only on
 * (seed, epoch), so step s always gets the same batch — a resumed run reads
 * exactly what the uninterrupted one would — and nothing is allocated per
 * step. An epoch is floor(n / per_step) batches (at least one); the pairs
 * its shuffle leaves at the end wait for another epoch's order.
 */
#ifndef RW_TRAINSET_H
#define RW_TRAINSET_H

#include "batch.h"
#include "bpe.h"
#include "pair.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { RW_SEL_TRAIN = 0, RW_SEL_EVAL = 1, RW_SEL_ALL = 2 } rw_select_t;

typedef struct rw_trainset_opts {
    rw_select_t split;
    /* Keep only the pairs of these domains, indexed in this order; NULL (or
     * n_domains 0): every domain of the dataset, indexed in sorted order
     * over all its splits, so the train and eval sets of one dataset agree. */
    const char *const *domains;
    size_t n_domains;
    /* 1: a named domain with no pair in the dataset is no error (a router's
     * class the data lacks); it just gets no pairs. */
    int missing_ok;
    /* Keep only the ids a sequence of max_len tokens can use (a prompt's
     * last max_len - 3, a reply's first max_len - 3: what batch.h keeps);
     * 0 keeps every id. */
    size_t max_len;
} rw_trainset_opts_t;

typedef struct rw_trainset {
    rw_tok_pair_t *pairs;      /* owned array of n; its ids point into ids */
    rw_tok_example_t *prompts; /* owned array of n: pair i's prompt, no reply, label its domain */
    size_t n;
    char **domains;     /* owned names, n_domains of them */
    size_t *per_domain; /* owned: pairs of each domain in the set */
    size_t n_domains;
    int32_t *ids; /* owned: every token of the set */
    size_t n_ids;
    /* the shuffled order of the last epoch asked for */
    size_t *order;
    long order_epoch;
    uint64_t order_seed;
} rw_trainset_t;

/* init/fini pair; fini frees everything and is safe on a zeroed struct. */
void rw_trainset_init(rw_trainset_t *ts);
void rw_trainset_fini(rw_trainset_t *ts);

/* Tokenizes the selected pairs of ds (borrowed; ts keeps no pointer into
 * it) with bpe (its encode cache is written: one thread at a time) into ts,
 * which must be freshly initialized. opts may be NULL (train split, every
 * domain, every id). Returns 0 (also when nothing matched: ts->n is 0),
 * RW_ENOTFOUND (a named domain has no pair in ds, in any split, and
 * missing_ok is 0; logged),
 * RW_EINVAL (NULL arguments, a domain named twice) or an encode error. */
int rw_trainset_build(rw_trainset_t *ts, const rw_dataset_t *ds, rw_bpe_t *bpe,
                      const rw_trainset_opts_t *opts);

/* Batches in one epoch of per_step items: max(1, n / per_step); 0 for an
 * empty set or per_step 0. */
long rw_trainset_steps_per_epoch(const rw_trainset_t *ts, size_t per_step);

/* What a batch holds. */
typedef enum { RW_BATCH_PAIRS = 0, RW_BATCH_PROMPTS = 1 } rw_batch_kind_t;

/* Clears b and fills it with batch number step of the shuffled stream: up
 * to per_step pairs (two sequences each) or prompts of epoch step /
 * steps_per_epoch, in the order seed and that epoch give. Returns the
 * number of items, or RW_EINVAL (empty set, per_step 0, step < 0) or
 * RW_ETOOBIG (b too small). */
int rw_trainset_batch(rw_trainset_t *ts, uint64_t seed, long step, size_t per_step,
                      rw_batch_kind_t kind, rw_batch_t *b);

/* Sets aside about one in every `every` items (every >= 2) as a validation
 * slice: the pairs whose prompt's ids hash into it, so the pairs of one
 * prompt stay together, chosen apart from the train/eval split's hash.
 * They move, in their order, to ts->pairs[ts->n .. ts->n + k) (ts->prompts
 * likewise) behind the items that stay, ts->n and ts->per_domain shrink to
 * what stays, and k is returned. When fewer than min would be held out, or
 * none would stay, nothing moves and 0 is returned. Call it before the
 * first batch. */
size_t rw_trainset_hold_out(rw_trainset_t *ts, unsigned every, size_t min);
/* The index of domain name in ts, or -1. */
int rw_trainset_domain(const rw_trainset_t *ts, const char *name);
/* A hash of what training on ts reads: its domain names and, in order,
 * each of its n pairs' domain and token ids. Sets built from the same
 * pairs with the same tokenizer and options have the same fingerprint on
 * any machine; a pair added, dropped, changed or moved changes it. */
uint64_t rw_trainset_fingerprint(const rw_trainset_t *ts);

#endif
