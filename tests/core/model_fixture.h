/* model_fixture.h — tiny models and batches shared by the model tests. */
#ifndef RW_TEST_MODEL_FIXTURE_H
#define RW_TEST_MODEL_FIXTURE_H

#include "batch.h"
#include "model.h"
#include "rng.h"

#include <string.h>

/* A tiny configuration: V 24, max_len 12, C 8, L 2, NH 2, F 16. */
static inline void fx_tiny_config(rw_model_config_t *cfg)
{
    rw_model_config_default(cfg);
    cfg->vocab = 24;
    cfg->max_len = 12;
    cfg->d_model = 8;
    cfg->n_layers = 2;
    cfg->n_heads = 2;
    cfg->d_ff = 16;
}

/* Random weights far from initialization, so every gradient is large
 * enough to check: weights normal(0, std), norms 1 +- 0.2. */
static inline void fx_scramble(float *mem, const rw_layout_t *lay, uint64_t seed, float std)
{
    rw_rng_t r;
    rw_rng_seed(&r, seed);
    for (size_t i = 0; i < lay->n_tensors; i++) {
        const rw_tensor_t *t = &lay->t[i];
        float *x = mem + t->offset;
        rw_rng_normal(&r, x, t->n, std);
        if (strncmp(t->name, "ln", 2) == 0 && t->name[strlen(t->name) - 1] == 'w')
            for (size_t j = 0; j < t->n; j++)
                x[j] = 1.0f + 0.2f * x[j] / std;
    }
}

/* Fills b with n random pairs (prompt 1..4 tokens, replies 1..5 tokens, so
 * the batch has padding), ids in [3, vocab), domain = i % n_domains. */
static inline void fx_random_pairs(rw_batch_t *b, size_t n, int vocab, int n_domains, uint64_t seed)
{
    rw_rng_t r;
    rw_rng_seed(&r, seed);
    rw_batch_clear(b);
    for (size_t i = 0; i < n; i++) {
        int32_t pr[8], ch[8], rj[8];
        size_t np = 1 + rw_rng_below(&r, 4), nc = 1 + rw_rng_below(&r, 5);
        size_t nr = 1 + rw_rng_below(&r, 5);
        for (size_t j = 0; j < 8; j++) {
            pr[j] = 3 + (int32_t)rw_rng_below(&r, (uint64_t)vocab - 3);
            ch[j] = 3 + (int32_t)rw_rng_below(&r, (uint64_t)vocab - 3);
            rj[j] = 3 + (int32_t)rw_rng_below(&r, (uint64_t)vocab - 3);
        }
        rw_tok_pair_t p = {pr, ch, rj, np, nc, nr, (int32_t)(i % (size_t)n_domains)};
        rw_batch_add_pair(b, &p);
    }
}

#endif
