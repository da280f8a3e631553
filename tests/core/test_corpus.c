/* test_corpus.c — the shared tokenizer learns from train text only. */
#include "corpus.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static rw_bpe_t *train(rw_dataset_t *ds)
{
    rw_bpe_train_opts_t o = {.vocab_size = 1000, .min_frequency = 2};
    rw_bpe_t *bpe = NULL;
    cr_assert_eq(rw_corpus_train_bpe(ds, &o, &bpe), 0);
    return bpe;
}

static size_t ntokens(rw_bpe_t *bpe, const char *s)
{
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    rw_bpe_encode(bpe, s, strlen(s), &ids, &n, &cap);
    free(ids);
    return n;
}

Test(corpus, eval_text_is_not_learned)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    for (int i = 0; i < 50; i++) {
        rw_dataset_add(&ds, "common prompt", 13, "trainword", 9, "other", 5, "d");
        rw_pair_t *e = rw_dataset_add(&ds, "zyxwvu", 6, "qqqjjj", 6, "kkkvvv", 6, "d");
        e->split = RW_SPLIT_EVAL;
    }
    rw_bpe_t *bpe = train(&ds);
    cr_assert_eq(ntokens(bpe, "trainword"), 1, "train text becomes one token");
    cr_assert_gt(ntokens(bpe, "zyxwvu"), 1, "eval text must not be learned");
    rw_bpe_destroy(&bpe);
    /* with no train pair at all, every pair is used */
    for (size_t i = 0; i < ds.n; i++)
        ds.pairs[i].split = RW_SPLIT_EVAL;
    bpe = train(&ds);
    cr_assert_eq(ntokens(bpe, "zyxwvu"), 1);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
}
