/* stats.h — what a dataset holds: pairs per domain and token lengths.
 *
 * The numbers one looks at before training: how many pairs each domain has
 * in train and eval, and how long prompts and replies are in tokens (which
 * decides the model's max length and how much of each prompt is cut).
 */
#ifndef RW_STATS_H
#define RW_STATS_H

#include "bpe.h"
#include "pair.h"

#include <jansson.h>
#include <stdio.h>

/* Percentiles of one length distribution, in tokens. */
typedef struct rw_len_summary {
    size_t p50, p90, p99, max;
    double mean;
} rw_len_summary_t;

typedef struct rw_domain_stats {
    char *name; /* owned */
    size_t pairs, train, eval;
    rw_len_summary_t prompt, response, joined; /* joined: prompt + reply + 3 specials */
} rw_domain_stats_t;

typedef struct rw_stats {
    rw_domain_stats_t *domains; /* owned, ndomains of them, sorted by name */
    size_t ndomains;
    rw_domain_stats_t all; /* every domain together (name "all") */
    size_t vocab_size;
} rw_stats_t;

/* Computes the statistics of ds with tokenizer bpe (whose chunk cache it
 * warms). Returns 0; RW_EEMPTY if ds has no pairs. */
int rw_stats_compute(const rw_dataset_t *ds, rw_bpe_t *bpe, rw_stats_t *out);
void rw_stats_fini(rw_stats_t *st);
/* A table for people. */
void rw_stats_print(const rw_stats_t *st, FILE *f);
/* The same as a new JSON object (caller owns the reference). */
json_t *rw_stats_json(const rw_stats_t *st);

#endif
