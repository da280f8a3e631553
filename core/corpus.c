/* corpus.c — feeds a dataset's train text to the BPE trainer; see corpus.h. */
#include "corpus.h"

#include "err.h"

typedef struct feed {
    const rw_dataset_t *ds;
    size_t pair, field;
    int all; /* no train pairs: use every pair */
} feed_t;

static int next_doc(void *ctx, const char **doc, size_t *len)
{
    feed_t *f = ctx;
    for (; f->pair < f->ds->n; f->pair++, f->field = 0) {
        const rw_pair_t *p = &f->ds->pairs[f->pair];
        if (!f->all && p->split != RW_SPLIT_TRAIN)
            continue;
        switch (f->field++) {
        case 0:
            *doc = p->prompt, *len = p->prompt_len;
            return 1;
        case 1:
            *doc = p->chosen, *len = p->chosen_len;
            return 1;
        case 2:
            *doc = p->rejected, *len = p->rejected_len;
            return 1;
        default:
            break;
        }
    }
    return 0;
}

int rw_corpus_train_bpe(const rw_dataset_t *ds, const rw_bpe_train_opts_t *opts, rw_bpe_t **out)
{
    *out = NULL;
    if (ds->n == 0)
        return RW_EEMPTY;
    feed_t f = {.ds = ds, .all = 1};
    for (size_t i = 0; i < ds->n && f.all; i++)
        if (ds->pairs[i].split == RW_SPLIT_TRAIN)
            f.all = 0;
    return rw_bpe_train_feed(next_doc, &f, opts, out);
}
