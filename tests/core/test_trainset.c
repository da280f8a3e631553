/* test_trainset.c — tokenized pairs: the split and domains selected, ids
 * that decode back, trimming that changes no model input, and batches that
 * depend only on (seed, step). */
#include "corpus.h"
#include "err.h"
#include "trainset.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 3 domains ("c", "a", "b" in insertion order), 30 pairs each, every
 * fifth pair held out; texts long enough to be cut by a short max_len. */
static void make_data(rw_dataset_t *ds)
{
    rw_dataset_init(ds);
    const char *doms[3] = {"c", "a", "b"};
    char p[256], c[128], r[128];
    for (int i = 0; i < 90; i++) {
        int n = snprintf(p, sizeof p,
                         "prompt %d of domain %s: tell me about the number %d and "
                         "why it matters so much to so many people",
                         i, doms[i % 3], i * 7);
        int nc = snprintf(c, sizeof c, "a good answer about %d, with care and detail", i);
        int nr = snprintf(r, sizeof r, "bad %d", i);
        rw_pair_t *x = rw_dataset_add(ds, p, (size_t)n, c, (size_t)nc, r, (size_t)nr, doms[i % 3]);
        x->split = i % 5 == 4 ? RW_SPLIT_EVAL : RW_SPLIT_TRAIN;
    }
}

static rw_bpe_t *tokenizer(const rw_dataset_t *ds)
{
    rw_bpe_train_opts_t o = {.vocab_size = 1000, .min_frequency = 2};
    rw_bpe_t *bpe = NULL;
    cr_assert_eq(rw_corpus_train_bpe(ds, &o, &bpe), 0);
    return bpe;
}

static char *decode(rw_bpe_t *bpe, const int32_t *ids, size_t n)
{
    char *s;
    size_t len;
    cr_assert_eq(rw_bpe_decode(bpe, ids, n, &s, &len), 0);
    return s;
}

Test(trainset, selects_the_split_and_indexes_domains_in_sorted_order)
{
    rw_dataset_t ds;
    make_data(&ds);
    rw_bpe_t *bpe = tokenizer(&ds);
    rw_trainset_t tr, ev, all;
    rw_trainset_init(&tr);
    rw_trainset_init(&ev);
    rw_trainset_init(&all);
    cr_assert_eq(rw_trainset_build(&tr, &ds, bpe, NULL), 0);
    rw_trainset_opts_t o = {RW_SEL_EVAL, NULL, 0, 0, 0};
    cr_assert_eq(rw_trainset_build(&ev, &ds, bpe, &o), 0);
    o.split = RW_SEL_ALL;
    cr_assert_eq(rw_trainset_build(&all, &ds, bpe, &o), 0);
    cr_assert_eq(tr.n, 72);
    cr_assert_eq(ev.n, 18);
    cr_assert_eq(all.n, 90);
    cr_assert_eq(tr.n_domains, 3);
    cr_assert_str_eq(tr.domains[0], "a");
    cr_assert_str_eq(tr.domains[2], "c");
    cr_assert_eq(tr.per_domain[0] + tr.per_domain[1] + tr.per_domain[2], 72);
    /* ids decode to the pair's text; domains and the router examples agree */
    for (size_t i = 0, k = 0; i < ds.n; i++) {
        const rw_pair_t *p = &ds.pairs[i];
        if (p->split != RW_SPLIT_TRAIN)
            continue;
        const rw_tok_pair_t *t = &tr.pairs[k];
        char *s = decode(bpe, t->prompt, t->n_prompt);
        cr_assert_str_eq(s, p->prompt);
        free(s);
        s = decode(bpe, t->rejected, t->n_rejected);
        cr_assert_str_eq(s, p->rejected);
        free(s);
        cr_assert_str_eq(tr.domains[t->domain], p->domain);
        cr_assert_eq(tr.prompts[k].label, t->domain);
        cr_assert_eq(tr.prompts[k].prompt, t->prompt);
        cr_assert_eq(tr.prompts[k].n_response, 0);
        k++;
    }
    rw_trainset_fini(&tr);
    rw_trainset_fini(&ev);
    rw_trainset_fini(&all);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
}

Test(trainset, keeps_named_domains_in_the_order_given)
{
    rw_dataset_t ds;
    make_data(&ds);
    rw_bpe_t *bpe = tokenizer(&ds);
    const char *want[2] = {"c", "a"};
    rw_trainset_opts_t o = {RW_SEL_TRAIN, want, 2, 0, 0};
    rw_trainset_t ts;
    rw_trainset_init(&ts);
    cr_assert_eq(rw_trainset_build(&ts, &ds, bpe, &o), 0);
    cr_assert_eq(ts.n, 48);
    cr_assert_eq(ts.n_domains, 2);
    cr_assert_eq(rw_trainset_domain(&ts, "c"), 0);
    cr_assert_eq(rw_trainset_domain(&ts, "a"), 1);
    cr_assert_eq(rw_trainset_domain(&ts, "b"), -1);
    for (size_t i = 0; i < ts.n; i++)
        cr_assert(ts.pairs[i].domain == 0 || ts.pairs[i].domain == 1);
    rw_trainset_fini(&ts);
    /* a domain the data lacks is an error, unless missing is fine */
    const char *typo[2] = {"a", "zz"};
    o.domains = typo;
    rw_trainset_init(&ts);
    cr_assert_eq(rw_trainset_build(&ts, &ds, bpe, &o), RW_ENOTFOUND);
    rw_trainset_fini(&ts);
    o.missing_ok = 1;
    rw_trainset_init(&ts);
    cr_assert_eq(rw_trainset_build(&ts, &ds, bpe, &o), 0);
    cr_assert_eq(ts.n, 24);
    cr_assert_eq(ts.per_domain[1], 0);
    rw_trainset_fini(&ts);
    const char *twice[2] = {"a", "a"};
    o.domains = twice;
    rw_trainset_init(&ts);
    cr_assert_eq(rw_trainset_build(&ts, &ds, bpe, &o), RW_EINVAL);
    rw_trainset_fini(&ts);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
}

Test(trainset, trimming_to_max_len_changes_no_model_input)
{
    rw_dataset_t ds;
    make_data(&ds);
    rw_bpe_t *bpe = tokenizer(&ds);
    rw_trainset_t full, cut;
    rw_trainset_init(&full);
    rw_trainset_init(&cut);
    cr_assert_eq(rw_trainset_build(&full, &ds, bpe, NULL), 0);
    rw_trainset_opts_t o = {RW_SEL_TRAIN, NULL, 0, 0, 12};
    cr_assert_eq(rw_trainset_build(&cut, &ds, bpe, &o), 0);
    cr_assert_lt(cut.n_ids, full.n_ids, "a 12-token limit must cut these texts");
    rw_batch_t a, b;
    rw_batch_init(&a, 16, 12);
    rw_batch_init(&b, 16, 12);
    for (long s = 0; s < 9; s++) {
        cr_assert_eq(rw_trainset_batch(&full, 5, s, 8, RW_BATCH_PAIRS, &a), 8);
        cr_assert_eq(rw_trainset_batch(&cut, 5, s, 8, RW_BATCH_PAIRS, &b), 8);
        cr_assert_eq(a.B, b.B);
        cr_assert_eq(memcmp(a.lens, b.lens, a.B * sizeof *a.lens), 0);
        cr_assert_eq(memcmp(a.ids, b.ids, a.B * a.ld * sizeof *a.ids), 0, "step %ld", s);
    }
    rw_batch_fini(&a);
    rw_batch_fini(&b);
    rw_trainset_fini(&full);
    rw_trainset_fini(&cut);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
}

/* A hash of every pair's chosen sequence in b, which identifies the pair here. */
static void pair_keys(const rw_batch_t *b, uint32_t *keys)
{
    for (size_t i = 0; i < b->B / 2; i++) {
        const int32_t *row = b->ids + 2 * i * b->ld;
        uint32_t k = 0;
        for (size_t t = 0; t < (size_t)b->lens[2 * i]; t++)
            k = k * 31u + (uint32_t)row[t];
        keys[i] = k;
    }
}

/* Two sets of the same data's train split, built apart. */
static void build_twice(const rw_dataset_t *ds, rw_bpe_t *bpe, rw_trainset_t *a, rw_trainset_t *b)
{
    rw_trainset_init(a);
    rw_trainset_init(b);
    cr_assert_eq(rw_trainset_build(a, ds, bpe, NULL), 0);
    cr_assert_eq(rw_trainset_build(b, ds, bpe, NULL), 0);
}

Test(trainset, batches_depend_only_on_seed_and_step)
{
    rw_dataset_t ds;
    make_data(&ds);
    rw_bpe_t *bpe = tokenizer(&ds);
    rw_trainset_t ts, again;
    build_twice(&ds, bpe, &ts, &again);
    cr_assert_eq(rw_trainset_steps_per_epoch(&ts, 10), 7); /* 72 pairs: 2 wait */
    cr_assert_eq(rw_trainset_steps_per_epoch(&ts, 100), 1);
    cr_assert_eq(rw_trainset_steps_per_epoch(&ts, 0), 0);
    rw_batch_t a, b;
    rw_batch_init(&a, 20, 64);
    rw_batch_init(&b, 20, 64);
    /* every pair of an epoch appears once in it */
    uint32_t keys[70], k[10];
    for (long s = 0; s < 7; s++) {
        cr_assert_eq(rw_trainset_batch(&ts, 3, s, 10, RW_BATCH_PAIRS, &a), 10);
        pair_keys(&a, keys + 10 * s);
    }
    for (int i = 0; i < 70; i++)
        for (int j = 0; j < i; j++)
            cr_assert_neq(keys[i], keys[j], "a pair twice in one epoch");
    /* a fresh set asked for step 23 first (a resumed run) gets the same batch */
    cr_assert_eq(rw_trainset_batch(&ts, 3, 23, 10, RW_BATCH_PAIRS, &a), 10);
    cr_assert_eq(rw_trainset_batch(&again, 3, 23, 10, RW_BATCH_PAIRS, &b), 10);
    cr_assert_eq(memcmp(a.ids, b.ids, a.B * a.ld * sizeof *a.ids), 0);
    /* epochs and seeds give other orders */
    rw_trainset_batch(&ts, 3, 0, 10, RW_BATCH_PAIRS, &a);
    rw_trainset_batch(&ts, 3, 7, 10, RW_BATCH_PAIRS, &b);
    pair_keys(&a, keys);
    pair_keys(&b, k);
    cr_assert_neq(memcmp(keys, k, sizeof k), 0, "epoch 1 is shuffled anew");
    rw_trainset_batch(&ts, 4, 0, 10, RW_BATCH_PAIRS, &b);
    pair_keys(&b, k);
    cr_assert_neq(memcmp(keys, k, sizeof k), 0, "another seed, another order");
    /* prompts for a router: one sequence each, labelled with the domain */
    cr_assert_eq(rw_trainset_batch(&ts, 3, 0, 20, RW_BATCH_PROMPTS, &a), 20);
    cr_assert_eq(a.B, 20);
    for (size_t i = 0; i < a.B; i++)
        cr_assert(a.labels[i] >= 0 && a.labels[i] < 3);
    /* errors */
    cr_assert_eq(rw_trainset_batch(&ts, 3, 0, 11, RW_BATCH_PAIRS, &a), RW_ETOOBIG);
    cr_assert_eq(rw_trainset_batch(&ts, 3, -1, 10, RW_BATCH_PAIRS, &a), RW_EINVAL);
    cr_assert_eq(rw_trainset_batch(&ts, 3, 0, 0, RW_BATCH_PAIRS, &a), RW_EINVAL);
    rw_batch_fini(&a);
    rw_batch_fini(&b);
    rw_trainset_fini(&ts);
    rw_trainset_fini(&again);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
}

/* The fingerprint of ds's train split as tokenized by bpe (max_len 0: all). */
static uint64_t fingerprint(const rw_dataset_t *ds, rw_bpe_t *bpe, size_t max_len)
{
    rw_trainset_t ts;
    rw_trainset_init(&ts);
    rw_trainset_opts_t o = {RW_SEL_TRAIN, NULL, 0, 0, max_len};
    cr_assert_eq(rw_trainset_build(&ts, ds, bpe, &o), 0);
    uint64_t fp = rw_trainset_fingerprint(&ts);
    rw_trainset_fini(&ts);
    return fp;
}

/* A resumed run refuses other data by this fingerprint: it follows every
 * train pair the run reads, and nothing else. */
Test(trainset, the_fingerprint_follows_what_training_reads)
{
    rw_dataset_t ds;
    make_data(&ds);
    rw_bpe_t *bpe = tokenizer(&ds);
    uint64_t fp = fingerprint(&ds, bpe, 0);
    cr_assert_eq(fingerprint(&ds, bpe, 0), fp, "the same data, the same fingerprint");
    /* a reply changed by one letter */
    ds.pairs[0].rejected[0] = 'B';
    cr_assert_neq(fingerprint(&ds, bpe, 0), fp);
    ds.pairs[0].rejected[0] = 'b';
    /* two train pairs swapped: the same pairs, read in another order */
    rw_pair_t t = ds.pairs[0];
    ds.pairs[0] = ds.pairs[1], ds.pairs[1] = t;
    cr_assert_neq(fingerprint(&ds, bpe, 0), fp);
    ds.pairs[1] = ds.pairs[0], ds.pairs[0] = t;
    /* the last train pair dropped (and the eval pair behind it) */
    cr_assert_eq(ds.pairs[88].split, RW_SPLIT_TRAIN);
    ds.n -= 2;
    cr_assert_neq(fingerprint(&ds, bpe, 0), fp);
    ds.n += 2;
    /* an eval pair changed: training never reads it */
    cr_assert_eq(ds.pairs[4].split, RW_SPLIT_EVAL);
    ds.pairs[4].rejected[0] = 'B';
    cr_assert_eq(fingerprint(&ds, bpe, 0), fp);
    /* nor the start of a long prompt, which a short max_len cuts away */
    uint64_t cut = fingerprint(&ds, bpe, 8);
    ds.pairs[0].prompt[0] = 'P';
    cr_assert_eq(fingerprint(&ds, bpe, 8), cut);
    cr_assert_neq(fingerprint(&ds, bpe, 0), fp);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
}

Test(trainset, a_held_out_slice_keeps_a_prompts_pairs_together_and_counts_right)
{
    /* 120 prompts of two pairs each, in two domains */
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    char p[96], c[64];
    for (int i = 0; i < 240; i++) {
        int n = snprintf(p, sizeof p, "prompt number %d, asked in domain %s", i / 2,
                         i / 2 % 2 ? "a" : "b");
        int nc = snprintf(c, sizeof c, "answer %d", i);
        rw_dataset_add(&ds, p, (size_t)n, c, (size_t)nc, "no", 2, i / 2 % 2 ? "a" : "b");
    }
    rw_bpe_t *bpe = tokenizer(&ds);
    rw_trainset_t ts, again;
    build_twice(&ds, bpe, &ts, &again);
    cr_assert_eq(ts.n, 240);
    size_t k = rw_trainset_hold_out(&ts, 10, 1);
    cr_assert_eq(rw_trainset_hold_out(&again, 10, 1), k, "the slice depends on the data alone");
    cr_assert(k >= 10 && k <= 50 && k % 2 == 0, "%zu held out of 240", k);
    cr_assert_eq(ts.n, 240 - k);
    cr_assert_eq(ts.per_domain[0] + ts.per_domain[1], ts.n);
    /* every item is still there once, its prompt example beside its pair,
     * and a prompt's two pairs on the same side */
    for (size_t i = 0; i < 240; i++) {
        const rw_tok_pair_t *t = &ts.pairs[i];
        cr_assert_eq(ts.prompts[i].prompt, t->prompt);
        cr_assert_eq(ts.prompts[i].label, t->domain);
        char *s = decode(bpe, t->prompt, t->n_prompt);
        int q = atoi(s + strlen("prompt number "));
        free(s);
        for (size_t j = 0; j < 240; j++) {
            if (j == i)
                continue;
            char *u = decode(bpe, ts.pairs[j].prompt, ts.pairs[j].n_prompt);
            if (atoi(u + strlen("prompt number ")) == q)
                cr_assert_eq(i < ts.n, j < ts.n, "prompt %d split across the slice", q);
            free(u);
        }
    }
    /* epochs are over what stays */
    cr_assert_eq(rw_trainset_steps_per_epoch(&ts, 8), (long)(ts.n / 8));
    cr_assert_eq(rw_trainset_hold_out(&ts, 1, 1), 0, "every 1 holds nothing out");
    /* too few to hold out: nothing moves */
    size_t n = again.n, per0 = again.per_domain[0];
    cr_assert_eq(rw_trainset_hold_out(&again, 10, 1000), 0);
    cr_assert_eq(again.n, n);
    cr_assert_eq(again.per_domain[0], per0);
    rw_trainset_fini(&ts);
    rw_trainset_fini(&again);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
}
