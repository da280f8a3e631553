/* pair.c — the in-memory dataset of preference pairs; see pair.h. */
#include "pair.h"

#include "alloc.h"
#include "hash.h"

#include <stdlib.h>
#include <string.h>

void rw_dataset_init(rw_dataset_t *ds)
{
    memset(ds, 0, sizeof *ds);
}

void rw_pair_fini(rw_pair_t *p)
{
    free(p->prompt);
    free(p->chosen);
    free(p->rejected);
    free(p->domain);
    memset(p, 0, sizeof *p);
}

void rw_dataset_fini(rw_dataset_t *ds)
{
    for (size_t i = 0; i < ds->n; i++)
        rw_pair_fini(&ds->pairs[i]);
    free(ds->pairs);
    memset(ds, 0, sizeof *ds);
}

void rw_dataset_push(rw_dataset_t *ds, rw_pair_t *p)
{
    rw_grow(&ds->pairs, &ds->cap, ds->n + 1);
    ds->pairs[ds->n++] = *p;
    memset(p, 0, sizeof *p);
}

rw_pair_t *rw_dataset_add(rw_dataset_t *ds, const char *prompt, size_t prompt_len,
                          const char *chosen, size_t chosen_len, const char *rejected,
                          size_t rejected_len, const char *domain)
{
    rw_pair_t p = {
        .prompt = rw_strndup(prompt, prompt_len),
        .chosen = rw_strndup(chosen, chosen_len),
        .rejected = rw_strndup(rejected, rejected_len),
        .domain = rw_strdup(domain),
        .prompt_len = prompt_len,
        .chosen_len = chosen_len,
        .rejected_len = rejected_len,
        .split = RW_SPLIT_TRAIN,
    };
    rw_dataset_push(ds, &p);
    return &ds->pairs[ds->n - 1];
}

uint64_t rw_pair_hash(const rw_pair_t *p)
{
    /* each field with its length first, so ("ab","c") and ("a","bc") differ */
    const char *f[4] = {p->domain, p->prompt, p->chosen, p->rejected};
    size_t n[4] = {strlen(p->domain), p->prompt_len, p->chosen_len, p->rejected_len};
    uint64_t h = RW_HASH_SEED;
    for (int i = 0; i < 4; i++) {
        unsigned char len[8]; /* little-endian, so the value is the same on every machine */
        for (int b = 0; b < 8; b++)
            len[b] = (unsigned char)((uint64_t)n[i] >> (8 * b));
        h = rw_hash_update(h, len, sizeof len);
        h = rw_hash_update(h, f[i], n[i]);
    }
    return rw_hash_final(h);
}

int rw_pair_equal(const rw_pair_t *a, const rw_pair_t *b)
{
    return a->prompt_len == b->prompt_len && a->chosen_len == b->chosen_len &&
           a->rejected_len == b->rejected_len && strcmp(a->domain, b->domain) == 0 &&
           memcmp(a->prompt, b->prompt, a->prompt_len) == 0 &&
           memcmp(a->chosen, b->chosen, a->chosen_len) == 0 &&
           memcmp(a->rejected, b->rejected, a->rejected_len) == 0;
}

rw_split_t rw_pair_split(const rw_pair_t *p, double eval_fraction)
{
    return rw_hash_unit(rw_pair_hash(p)) < eval_fraction ? RW_SPLIT_EVAL : RW_SPLIT_TRAIN;
}

void rw_dataset_assign_splits(rw_dataset_t *ds, double eval_fraction)
{
    for (size_t i = 0; i < ds->n; i++)
        ds->pairs[i].split = rw_pair_split(&ds->pairs[i], eval_fraction);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t rw_dataset_domains(const rw_dataset_t *ds, const char ***out)
{
    const char **names = rw_new_array(const char *, ds->n ? ds->n : 1);
    for (size_t i = 0; i < ds->n; i++)
        names[i] = ds->pairs[i].domain;
    qsort(names, ds->n, sizeof *names, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (k == 0 || strcmp(names[k - 1], names[i]) != 0)
            names[k++] = names[i];
    *out = names;
    return k;
}
