/* corpus.h — the text a job's shared tokenizer is trained on.
 *
 * Every model of a job reads the same BPE tokens, so the tokenizer is
 * trained once, on the train split only (eval text stays unseen): each
 * pair's prompt once and both of its replies.
 */
#ifndef RW_CORPUS_H
#define RW_CORPUS_H

#include "bpe.h"
#include "pair.h"

/* Trains a tokenizer on ds's train pairs (all pairs if none is marked
 * train). opts may be NULL for RW_BPE_TRAIN_OPTS_DEFAULT. Returns 0 with
 * *out owned by the caller, RW_EEMPTY for an empty dataset, or what
 * rw_bpe_train_feed returns. */
int rw_corpus_train_bpe(const rw_dataset_t *ds, const rw_bpe_train_opts_t *opts, rw_bpe_t **out);

#endif
