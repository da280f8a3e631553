/* trainset.c — tokenized pairs and their shuffled batches; see trainset.h. */
#include "trainset.h"

#include "alloc.h"
#include "err.h"
#include "hash.h"
#include "log.h"
#include "rng.h"

#include <stdlib.h>
#include <string.h>

void rw_trainset_init(rw_trainset_t *ts)
{
    memset(ts, 0, sizeof *ts);
    ts->order_epoch = -1;
}

void rw_trainset_fini(rw_trainset_t *ts)
{
    for (size_t i = 0; i < ts->n_domains; i++)
        free(ts->domains[i]);
    free(ts->domains);
    free(ts->per_domain);
    free(ts->pairs);
    free(ts->prompts);
    free(ts->ids);
    free(ts->order);
    rw_trainset_init(ts);
}

int rw_trainset_domain(const rw_trainset_t *ts, const char *name)
{
    for (size_t i = 0; i < ts->n_domains; i++)
        if (strcmp(ts->domains[i], name) == 0)
            return (int)i;
    return -1;
}

/* Continues h over v as 8 little-endian bytes, the same on every machine. */
static uint64_t hash_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return rw_hash_update(h, b, sizeof b);
}

/* Continues h over n ids, each as 4 little-endian bytes, after their count. */
static uint64_t hash_ids(uint64_t h, const int32_t *ids, size_t n)
{
    unsigned char b[4 * 256];
    h = hash_u64(h, n);
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < sizeof b && i < n; i++, k += 4)
            for (int j = 0; j < 4; j++)
                b[k + (size_t)j] = (unsigned char)((uint32_t)ids[i] >> (8 * j));
        h = rw_hash_update(h, b, k);
    }
    return h;
}

uint64_t rw_trainset_fingerprint(const rw_trainset_t *ts)
{
    uint64_t h = hash_u64(RW_HASH_SEED, ts->n_domains);
    for (size_t i = 0; i < ts->n_domains; i++)
        h = rw_hash_update(h, ts->domains[i], strlen(ts->domains[i]) + 1);
    h = hash_u64(h, ts->n);
    for (size_t i = 0; i < ts->n; i++) {
        const rw_tok_pair_t *p = &ts->pairs[i];
        h = hash_u64(h, (uint64_t)(int64_t)p->domain);
        h = hash_ids(h, p->prompt, p->n_prompt);
        h = hash_ids(h, p->chosen, p->n_chosen);
        h = hash_ids(h, p->rejected, p->n_rejected);
    }
    return rw_hash_final(h);
}

/* The domain list: the caller's (checked against ds), or ds's own. */
static int set_domains(rw_trainset_t *ts, const rw_dataset_t *ds, const rw_trainset_opts_t *o)
{
    const char **all;
    size_t n_all = rw_dataset_domains(ds, &all);
    int rc = 0;
    if (o->domains && o->n_domains) {
        ts->n_domains = o->n_domains;
        ts->domains = rw_new_array(char *, o->n_domains);
        for (size_t i = 0; i < o->n_domains && rc == 0; i++) {
            int found = 0;
            for (size_t j = 0; j < n_all && !found; j++)
                found = strcmp(all[j], o->domains[i]) == 0;
            if (!found && !o->missing_ok) {
                RW_ERROR("trainset", "no pair of domain '%s' in the data", o->domains[i]);
                rc = RW_ENOTFOUND;
            }
            for (size_t j = 0; j < i && rc == 0; j++)
                if (strcmp(o->domains[j], o->domains[i]) == 0)
                    rc = RW_EINVAL;
            ts->domains[i] = rw_strdup(o->domains[i]);
        }
    } else {
        ts->n_domains = n_all;
        ts->domains = rw_new_array(char *, n_all ? n_all : 1);
        for (size_t i = 0; i < n_all; i++)
            ts->domains[i] = rw_strdup(all[i]);
    }
    ts->per_domain = rw_new_array(size_t, ts->n_domains ? ts->n_domains : 1);
    free(all);
    return rc;
}

/* Appends text's ids to the set's block, keeping only the first (keep_end
 * 0) or last (keep_end 1) `room` of them when room > 0; returns the count
 * through *n. */
static int encode(rw_trainset_t *ts, size_t *cap, rw_bpe_t *bpe, const char *text, size_t len,
                  size_t room, int keep_end, size_t *n)
{
    size_t start = ts->n_ids;
    int rc = rw_bpe_encode(bpe, text, len, &ts->ids, &ts->n_ids, cap);
    if (rc < 0)
        return rc;
    size_t k = ts->n_ids - start;
    if (room && k > room) {
        if (keep_end)
            memmove(ts->ids + start, ts->ids + start + (k - room), room * sizeof *ts->ids);
        ts->n_ids = start + room;
        k = room;
    }
    *n = k;
    return 0;
}

int rw_trainset_build(rw_trainset_t *ts, const rw_dataset_t *ds, rw_bpe_t *bpe,
                      const rw_trainset_opts_t *opts)
{
    if (!ts || !ds || !bpe)
        return RW_EINVAL;
    rw_trainset_opts_t o = {RW_SEL_TRAIN, NULL, 0, 0, 0};
    if (opts)
        o = *opts;
    int rc = set_domains(ts, ds, &o);
    if (rc < 0)
        return rc;
    size_t room = o.max_len > 3 ? o.max_len - 3 : 0, cap = 0;
    /* offsets first: the id block moves while it grows */
    size_t *off = rw_new_array(size_t, rw_array_size(3, ds->n ? ds->n : 1));
    ts->pairs = rw_new_array(rw_tok_pair_t, ds->n ? ds->n : 1);
    for (size_t i = 0; i < ds->n && rc == 0; i++) {
        const rw_pair_t *p = &ds->pairs[i];
        if (o.split != RW_SEL_ALL && (rw_select_t)p->split != o.split)
            continue;
        int d = rw_trainset_domain(ts, p->domain);
        if (d < 0)
            continue;
        rw_tok_pair_t *tp = &ts->pairs[ts->n];
        tp->domain = d;
        off[3 * ts->n + 0] = ts->n_ids;
        rc = encode(ts, &cap, bpe, p->prompt, p->prompt_len, room, 1, &tp->n_prompt);
        off[3 * ts->n + 1] = ts->n_ids;
        if (rc == 0)
            rc = encode(ts, &cap, bpe, p->chosen, p->chosen_len, room, 0, &tp->n_chosen);
        off[3 * ts->n + 2] = ts->n_ids;
        if (rc == 0)
            rc = encode(ts, &cap, bpe, p->rejected, p->rejected_len, room, 0, &tp->n_rejected);
        ts->per_domain[d]++;
        ts->n++;
    }
    ts->prompts = rw_new_array(rw_tok_example_t, ts->n ? ts->n : 1);
    for (size_t i = 0; i < ts->n && rc == 0; i++) {
        rw_tok_pair_t *tp = &ts->pairs[i];
        tp->prompt = ts->ids + off[3 * i + 0];
        tp->chosen = ts->ids + off[3 * i + 1];
        tp->rejected = ts->ids + off[3 * i + 2];
        ts->prompts[i] = (rw_tok_example_t){tp->prompt, NULL, tp->n_prompt, 0, tp->domain};
    }
    ts->order = rw_new_array(size_t, ts->n ? ts->n : 1);
    free(off);
    return rc;
}

/* Whether pair i's prompt falls in the validation slice: its own hash,
 * salted, so that it does not follow the train/eval split's. */
static int held_out(const rw_tok_pair_t *p, unsigned every)
{
    uint64_t h = rw_hash_update(RW_HASH_SEED, "validation", 10);
    h = rw_hash_final(rw_hash_update(h, p->prompt, p->n_prompt * sizeof *p->prompt));
    return h % every == 0;
}

size_t rw_trainset_hold_out(rw_trainset_t *ts, unsigned every, size_t min)
{
    if (every < 2 || ts->n == 0)
        return 0;
    rw_tok_pair_t *pairs = rw_new_array(rw_tok_pair_t, ts->n);
    rw_tok_example_t *prompts = rw_new_array(rw_tok_example_t, ts->n);
    size_t kept = 0, k = 0;
    for (int pass = 0; pass < 2; pass++) /* those that stay, then the slice */
        for (size_t i = 0; i < ts->n; i++)
            if (held_out(&ts->pairs[i], every) == pass) {
                pairs[kept + k] = ts->pairs[i];
                prompts[kept + k] = ts->prompts[i];
                if (pass)
                    k++;
                else
                    kept++;
            }
    if (k < min || kept == 0) { /* too few to judge by, or nothing left to train on */
        free(pairs);
        free(prompts);
        return 0;
    }
    for (size_t i = kept; i < ts->n; i++)
        ts->per_domain[pairs[i].domain]--;
    memcpy(ts->pairs, pairs, ts->n * sizeof *pairs);
    memcpy(ts->prompts, prompts, ts->n * sizeof *prompts);
    free(pairs);
    free(prompts);
    ts->n = kept;
    ts->order_epoch = -1;
    return k;
}

long rw_trainset_steps_per_epoch(const rw_trainset_t *ts, size_t per_step)
{
    if (!ts->n || !per_step)
        return 0;
    size_t k = ts->n / per_step;
    return k ? (long)k : 1;
}

/* Fisher-Yates from the identity, so the order depends on (seed, epoch)
 * alone and any epoch can be asked for first. */
static void shuffle(rw_trainset_t *ts, uint64_t seed, long epoch)
{
    rw_rng_t r;
    rw_rng_seed(&r, seed ^ ((uint64_t)epoch + 1) * 0xd1342543de82ef95ULL);
    (void)rw_rng_u64(&r);
    for (size_t i = 0; i < ts->n; i++)
        ts->order[i] = i;
    for (size_t i = ts->n; i > 1; i--) {
        size_t j = (size_t)rw_rng_below(&r, i);
        size_t t = ts->order[i - 1];
        ts->order[i - 1] = ts->order[j];
        ts->order[j] = t;
    }
    ts->order_epoch = epoch;
    ts->order_seed = seed;
}

int rw_trainset_batch(rw_trainset_t *ts, uint64_t seed, long step, size_t per_step,
                      rw_batch_kind_t kind, rw_batch_t *b)
{
    long spe = rw_trainset_steps_per_epoch(ts, per_step);
    if (spe == 0 || step < 0)
        return RW_EINVAL;
    long epoch = step / spe;
    size_t first = (size_t)(step % spe) * per_step;
    size_t k = ts->n - first < per_step ? ts->n - first : per_step;
    if (k * (kind == RW_BATCH_PAIRS ? 2 : 1) > b->cap_B)
        return RW_ETOOBIG;
    if (ts->order_epoch != epoch || ts->order_seed != seed)
        shuffle(ts, seed, epoch);
    rw_batch_clear(b);
    for (size_t i = 0; i < k; i++) {
        size_t j = ts->order[first + i];
        if (kind == RW_BATCH_PAIRS)
            rw_batch_add_pair(b, &ts->pairs[j]);
        else
            rw_batch_add(b, ts->prompts[j].prompt, ts->prompts[j].n_prompt, NULL, 0,
                         ts->prompts[j].label);
    }
    return (int)k;
}
