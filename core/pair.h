/* pair.h — preference pairs and the dataset that holds them.
 *
 * A pair is (prompt, chosen, rejected) in one domain: `chosen` is the reply
 * people preferred. All strings are NUL-terminated, valid UTF-8, and owned
 * by the pair. A dataset is a growable array of pairs; the normalized file
 * form is JSON Lines, one {"prompt","chosen","rejected","domain","split"}
 * object a line.
 */
#ifndef RW_PAIR_H
#define RW_PAIR_H

#include <stddef.h>
#include <stdint.h>

typedef enum { RW_SPLIT_TRAIN = 0, RW_SPLIT_EVAL = 1 } rw_split_t;

typedef struct rw_pair {
    char *prompt, *chosen, *rejected, *domain; /* owned */
    size_t prompt_len, chosen_len, rejected_len;
    rw_split_t split;
} rw_pair_t;

typedef struct rw_dataset {
    rw_pair_t *pairs; /* owned, n used of cap */
    size_t n, cap;
} rw_dataset_t;

/* init/fini pair: fini frees the strings; both safe on a zeroed struct. */
void rw_dataset_init(rw_dataset_t *ds);
void rw_dataset_fini(rw_dataset_t *ds);
/* Appends copies of the strings; returns the new pair. */
rw_pair_t *rw_dataset_add(rw_dataset_t *ds, const char *prompt, size_t prompt_len,
                          const char *chosen, size_t chosen_len, const char *rejected,
                          size_t rejected_len, const char *domain);
/* Takes ownership of *p's strings (and zeroes *p). */
void rw_dataset_push(rw_dataset_t *ds, rw_pair_t *p);
void rw_pair_fini(rw_pair_t *p);

/* Hash identifying a pair's content (domain, prompt, chosen, rejected); the
 * key for duplicate detection and the train/eval split. */
uint64_t rw_pair_hash(const rw_pair_t *p);
/* 1 if a and b have the same domain, prompt, chosen and rejected (the
 * split is not compared), else 0. */
int rw_pair_equal(const rw_pair_t *a, const rw_pair_t *b);
/* The split a pair gets when eval_fraction of each domain is held out:
 * stable — it depends only on the pair itself, so adding records or
 * domains never moves an existing pair. */
rw_split_t rw_pair_split(const rw_pair_t *p, double eval_fraction);

/* Sets every pair's split with rw_pair_split(p, eval_fraction). */
void rw_dataset_assign_splits(rw_dataset_t *ds, double eval_fraction);

/* Sorted, distinct domain names of ds (pointers into the pairs, valid while
 * ds is); returns how many, *out owned by the caller (free). */
size_t rw_dataset_domains(const rw_dataset_t *ds, const char ***out);

#endif
