/* test_model.c — configuration, layout and the forward pass's invariants:
 * padding, batch neighbours and thread count do not change a score. */
#include "engine.h"
#include "err.h"
#include "lora.h"
#include "model.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixture.h"

Test(model, config_json_round_trip_and_validation)
{
    rw_model_config_t c, d;
    fx_tiny_config(&c);
    c.n_experts = 4;
    c.pooling = RW_POOL_LAST;
    c.head = RW_HEAD_CLASSIFIER;
    c.n_classes = 5;
    char *j = rw_model_config_to_json(&c);
    cr_assert_eq(rw_model_config_from_json(j, &d), 0, "%s", j);
    cr_assert_eq(memcmp(&c, &d, sizeof c), 0);
    free(j);
    cr_assert_eq(rw_model_config_from_json("{\"d_model\": 10, \"n_heads\": 3}", &d), RW_EINVAL);
    cr_assert_eq(rw_model_config_from_json("{\"pooling\": \"max\"}", &d), RW_EPARSE);
    cr_assert_eq(rw_model_config_from_json("[1]", &d), RW_EPARSE);
    cr_assert_eq(rw_model_config_from_json("{\"vocab\": \"big\"}", &d), RW_EPARSE);
    c.top_k = 5;
    cr_assert_eq(rw_model_config_validate(&c), RW_EINVAL);
    /* every field in range, the whole far too big: refused before any
     * allocation (86e9 parameters would die out of memory in a worker) */
    rw_model_config_default(&c);
    c.d_model = 8192, c.n_layers = 64, c.n_heads = 1, c.d_ff = 65536, c.max_len = 8192;
    cr_assert_eq(rw_model_config_validate(&c), RW_EINVAL);
    rw_model_config_default(&c); /* the reference shape, 3.2e6, is fine */
    cr_assert_eq(rw_model_config_validate(&c), 0);
    c.d_model = 2048, c.n_heads = 16, c.d_ff = 8192; /* 4 layers: about 2.2e8 */
    cr_assert_eq(rw_model_config_validate(&c), 0);
}

/* rewire train says these up front, in its options' words */
Test(model, an_invalid_configuration_says_the_rule_it_breaks)
{
    rw_model_config_t c;
    fx_tiny_config(&c);
    char why[256];
    c.d_model = 33;
    cr_assert_eq(rw_model_config_check(&c, why, sizeof why), RW_EINVAL);
    cr_assert_str_eq(why, "d_model (33) must be a multiple of n_heads (2)");
    fx_tiny_config(&c);
    c.n_experts = 70;
    cr_assert_eq(rw_model_config_check(&c, why, sizeof why), RW_EINVAL);
    cr_assert(strstr(why, "n_experts (70)"), "%s", why);
    rw_model_config_default(&c);
    c.d_model = 8192, c.n_layers = 64;
    cr_assert_eq(rw_model_config_check(&c, why, sizeof why), RW_EINVAL);
    cr_assert(strstr(why, "parameters, over the limit"), "%s", why);
    fx_tiny_config(&c);
    cr_assert_eq(rw_model_config_check(&c, why, sizeof why), 0);
    /* an adapter's rank is bounded by its base's width */
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 9;
    cr_assert_eq(rw_lora_config_check(&lc, &c, why, sizeof why), RW_EINVAL);
    cr_assert_str_eq(why, "rank (9) must be from 1 to the base's d_model (8)");
    /* an alpha a float cannot hold is refused as it is read, not cast */
    rw_lora_config_default(&lc);
    cr_assert_eq(rw_lora_config_from_json("{\"alpha\": 1e300}", &lc), RW_EPARSE);
    cr_assert_eq(rw_lora_config_from_json("{\"alpha\": -1e39}", &lc), RW_EPARSE);
    cr_assert_eq(rw_lora_config_from_json("{\"alpha\": 32}", &lc), 0);
    cr_assert_float_eq(lc.alpha, 32.0f, 0.0f);
}

Test(model, layout_is_one_block_in_order)
{
    rw_model_config_t c;
    fx_tiny_config(&c);
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, &c), 0);
    size_t off = 0;
    for (size_t i = 0; i < m->layout.n_tensors; i++) {
        cr_assert_eq(m->layout.t[i].offset, off);
        off += m->layout.t[i].n;
    }
    cr_assert_eq(off, m->layout.n_floats);
    cr_assert_eq(m->p.qkvw, m->mem + rw_model_tensor(m, "qkv_w")->offset);
    cr_assert_null(m->p.gatew); /* dense: no gate */
    cr_assert_eq(rw_model_tensor(m, "fc_w")->shape[2], 16);
    rw_model_destroy(&m);
    cr_assert_null(m);
    rw_model_destroy(NULL);
}

/* Scores of sequence 0 of b alone, in a batch with others, and with 1 or 2
 * threads must agree: padding and neighbours are masked out. */
static void expect_invariant(rw_model_config_t *c)
{
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, c), 0);
    fx_scramble(m->mem, &m->layout, 3, 0.2f);
    rw_batch_t b, one;
    rw_batch_init(&b, 8, (size_t)c->max_len);
    rw_batch_init(&one, 8, (size_t)c->max_len);
    fx_random_pairs(&b, 4, c->vocab, 2, 21);
    /* the same first sequence alone: its length is the batch's T */
    size_t len = (size_t)b.lens[0];
    one.B = 1;
    one.T = len;
    memcpy(one.ids, b.ids, len * sizeof *one.ids);
    one.lens[0] = (int32_t)len;
    one.labels[0] = b.labels[0];
    float out1[8], out2[8], solo;
    for (int threads = 1; threads <= 2; threads++) {
        rw_engine_t *e;
        cr_assert_eq(rw_engine_new(&e, m, NULL, 8, (size_t)c->max_len, threads, 0), 0);
        cr_assert_eq(rw_engine_forward(e, &b, threads == 1 ? out1 : out2), 0);
        cr_assert_eq(rw_engine_forward(e, &one, &solo), 0);
        cr_assert_float_eq(solo, out1[0], 1e-5, "alone %g, in a batch %g", solo, out1[0]);
        rw_engine_destroy(&e);
    }
    for (int i = 0; i < 8; i++)
        cr_assert_float_eq(out1[i], out2[i], 1e-5, "threads change score %d", i);
    rw_batch_fini(&b);
    rw_batch_fini(&one);
    rw_model_destroy(&m);
}

Test(model, scores_ignore_padding_neighbours_and_threads)
{
    rw_model_config_t c;
    fx_tiny_config(&c);
    expect_invariant(&c);
    c.pooling = RW_POOL_LAST;
    c.n_experts = 3;
    expect_invariant(&c);
}

Test(model, engine_rejects_bad_batches)
{
    rw_model_config_t c;
    fx_tiny_config(&c);
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, &c), 0);
    rw_engine_t *e;
    cr_assert_eq(rw_engine_new(&e, m, NULL, 2, (size_t)c.max_len, 1, 0), 0);
    rw_batch_t b;
    rw_batch_init(&b, 4, (size_t)c.max_len);
    float out[4];
    cr_assert_eq(rw_engine_forward(e, &b, out), RW_EINVAL); /* empty */
    fx_random_pairs(&b, 2, c.vocab, 1, 1);
    cr_assert_eq(rw_engine_forward(e, &b, out), RW_EINVAL); /* 4 > 2 sequences */
    fx_random_pairs(&b, 1, c.vocab, 1, 1);
    b.ids[1] = c.vocab; /* outside the vocabulary */
    cr_assert_eq(rw_engine_forward(e, &b, out), RW_EINVAL);
    rw_engine_destroy(&e);
    rw_batch_fini(&b);
    cr_assert_eq(rw_engine_new(&e, m, NULL, 2, (size_t)c.max_len + 1, 1, 0), RW_EINVAL);
    rw_model_destroy(&m);
}

Test(model, fresh_adapter_leaves_the_base_function_unchanged)
{
    rw_model_config_t c;
    fx_tiny_config(&c);
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, &c), 0);
    rw_model_init(m, 9);
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    rw_lora_t *lo;
    cr_assert_eq(rw_lora_new(&lo, m, &lc), 0);
    rw_lora_init(lo, m, 10);
    rw_batch_t b;
    rw_batch_init(&b, 8, (size_t)c.max_len);
    fx_random_pairs(&b, 4, c.vocab, 1, 2);
    float base[8], adapted[8];
    rw_engine_t *e;
    cr_assert_eq(rw_engine_new(&e, m, NULL, 8, (size_t)c.max_len, 2, 0), 0);
    cr_assert_eq(rw_engine_forward(e, &b, base), 0);
    cr_assert_eq(rw_engine_set_lora(e, lo), 0);
    cr_assert_eq(rw_engine_forward(e, &b, adapted), 0);
    for (int i = 0; i < 8; i++)
        cr_assert_float_eq(base[i], adapted[i], 1e-6);
    rw_engine_destroy(&e);
    rw_batch_fini(&b);
    rw_lora_destroy(&lo);
    rw_model_destroy(&m);
}

Test(model, moe_merged_from_identical_experts_computes_the_dense_model)
{
    rw_model_config_t c;
    fx_tiny_config(&c);
    rw_model_t *dense, *other, *moe;
    cr_assert_eq(rw_model_new(&dense, &c), 0);
    fx_scramble(dense->mem, &dense->layout, 4, 0.2f);
    cr_assert_eq(rw_model_new(&other, &c), 0);
    rw_model_copy(other, dense);
    const rw_model_t *experts[3] = {dense, other, dense};
    cr_assert_eq(rw_model_moe_merge(&moe, experts, 3, 2, RW_GATE_TOKEN, 9, NULL), 0);
    cr_assert_eq(moe->cfg.n_experts, 3);
    rw_batch_t b;
    rw_batch_init(&b, 8, (size_t)c.max_len);
    fx_random_pairs(&b, 4, c.vocab, 1, 5);
    float want[8], got[8];
    rw_engine_t *e;
    cr_assert_eq(rw_engine_new(&e, dense, NULL, 8, (size_t)c.max_len, 1, 0), 0);
    cr_assert_eq(rw_engine_forward(e, &b, want), 0);
    rw_engine_destroy(&e);
    cr_assert_eq(rw_engine_new(&e, moe, NULL, 8, (size_t)c.max_len, 1, 0), 0);
    cr_assert_eq(rw_engine_forward(e, &b, got), 0);
    rw_engine_destroy(&e);
    for (int i = 0; i < 8; i++) /* any routing mixes identical experts */
        cr_assert_float_eq(got[i], want[i], 1e-5, "%d: moe %g, dense %g", i, got[i], want[i]);
    /* expert 1 of layer 1 is model 1's layer-1 feed-forward */
    other->p.fcw[rw_model_tensor(other, "fc_w")->n / 2] = 7.0f;
    rw_model_destroy(&moe);
    cr_assert_eq(rw_model_moe_merge(&moe, experts, 3, 2, RW_GATE_TOKEN, 9, NULL), 0);
    size_t per = rw_model_tensor(dense, "fc_w")->n / 2;
    cr_assert_eq(moe->p.fcw[(1 * 3 + 1) * per], 7.0f);
    rw_model_destroy(&moe);
    cr_assert_eq(rw_model_moe_merge(&moe, experts, 1, 2, RW_GATE_TOKEN, 9, NULL), RW_EINVAL);
    cr_assert_null(moe);
    /* with a shared model, every non-expert weight is the shared model's, bit for bit */
    rw_model_t *seed;
    cr_assert_eq(rw_model_new(&seed, &c), 0);
    fx_scramble(seed->mem, &seed->layout, 11, 0.3f);
    cr_assert_eq(rw_model_moe_merge(&moe, experts, 3, 2, RW_GATE_TOKEN, 9, seed), 0);
    for (size_t i = 0; i < moe->layout.n_tensors; i++) {
        const rw_tensor_t *t = &moe->layout.t[i];
        if (t->n == 0 || t->gate || strncmp(t->name, "fc", 2) == 0)
            continue;
        const rw_tensor_t *st = rw_model_tensor(seed, t->name);
        cr_assert_eq(memcmp(moe->mem + t->offset, seed->mem + st->offset, t->n * sizeof(float)), 0,
                     "%s is not the shared model's", t->name);
    }
    cr_assert_eq(moe->p.fcw[(1 * 3 + 1) * per], 7.0f, "experts still come from the experts");
    rw_model_destroy(&moe);
    /* gates on the prompt's ids, from experts of a token-gate configuration:
     * the merge lays gate_w out for what the gates read, (L, E, V) */
    cr_assert_eq(rw_model_moe_merge(&moe, experts, 3, 2, RW_GATE_PROMPT, 9, seed), 0);
    cr_assert_eq(moe->cfg.gate_input, RW_GATE_PROMPT);
    const rw_tensor_t *gw = rw_model_tensor(moe, "gate_w");
    cr_assert(gw->shape[0] == (size_t)c.n_layers && gw->shape[1] == 3 &&
              gw->shape[2] == (size_t)c.vocab);
    rw_model_destroy(&moe);
    rw_model_destroy(&seed);
    rw_batch_fini(&b);
    rw_model_destroy(&other);
    rw_model_destroy(&dense);
}
