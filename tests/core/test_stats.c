/* test_stats.c — per-domain counts and token-length percentiles. */
#include "stats.h"

#include "corpus.h"
#include "err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static void add(rw_dataset_t *ds, const char *dom, const char *prompt, const char *c, const char *r,
                rw_split_t split)
{
    rw_pair_t *p = rw_dataset_add(ds, prompt, strlen(prompt), c, strlen(c), r, strlen(r), dom);
    p->split = split;
}

Test(stats, counts_and_percentiles_per_domain)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    char buf[512];
    /* domain "a": prompts of 1..100 single-letter words "x x x ..." */
    for (int i = 1; i <= 100; i++) {
        size_t n = 0;
        for (int w = 0; w < i; w++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, w ? " x" : "x");
        add(&ds, "a", buf, "yes", "no", i % 10 == 0 ? RW_SPLIT_EVAL : RW_SPLIT_TRAIN);
    }
    add(&ds, "b", "q", "long answer here", "short", RW_SPLIT_TRAIN);
    rw_bpe_train_opts_t o = {.vocab_size = 1000, .min_frequency = 1000000}; /* bytes only */
    rw_bpe_t *bpe;
    cr_assert_eq(rw_corpus_train_bpe(&ds, &o, &bpe), 0);
    rw_stats_t st;
    cr_assert_eq(rw_stats_compute(&ds, bpe, &st), 0);
    cr_assert_eq(st.ndomains, 2);
    cr_assert_str_eq(st.domains[0].name, "a");
    cr_assert_eq(st.domains[0].pairs, 100);
    cr_assert_eq(st.domains[0].eval, 10);
    cr_assert_eq(st.domains[0].train, 90);
    /* with bytes only, a prompt of i words has 2i-1 tokens: nearest-rank p50 is i=50 */
    cr_assert_eq(st.domains[0].prompt.p50, 99);
    cr_assert_eq(st.domains[0].prompt.p90, 179);
    cr_assert_eq(st.domains[0].prompt.max, 199);
    cr_assert_eq(st.domains[0].response.max, 3); /* "yes" */
    cr_assert_eq(st.domains[1].response.max, 16);
    cr_assert_eq(st.all.pairs, 101);
    cr_assert_eq(st.all.joined.max, 199 + 3 + 3);
    json_t *j = rw_stats_json(&st);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "all"), "pairs")), 101);
    json_decref(j);
    rw_stats_fini(&st);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
}

Test(stats, empty_dataset_is_an_error)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_bpe_t *bpe = NULL;
    cr_assert_eq(rw_corpus_train_bpe(&ds, NULL, &bpe), RW_EEMPTY);
    cr_assert_null(bpe);
}
