/* test_train.c — training: a trivially learnable set is learned in seconds,
 * runs are bit-reproducible, poisoned steps are skipped, the schedule holds,
 * and evaluation reports per-domain accuracy and margins. */
#include "err.h"
#include "eval.h"
#include "lora.h"
#include "model.h"
#include "optim.h"
#include "train.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model_fixture.h"

#define MARK 5 /* the token that makes a reply the chosen one */

/* Pair i of a synthetic set: the chosen reply contains MARK, the rejected
 * one does not; the rest is random. Arrays are owned by the set. */
typedef struct synth {
    rw_tok_pair_t *pairs;
    int32_t *ids;
    size_t n;
} synth_t;

static void synth_make(synth_t *s, size_t n, int vocab, uint64_t seed)
{
    rw_rng_t r;
    rw_rng_seed(&r, seed);
    s->n = n;
    s->pairs = calloc(n, sizeof *s->pairs);
    s->ids = calloc(n * 24, sizeof *s->ids);
    for (size_t i = 0; i < n; i++) {
        int32_t *pr = s->ids + i * 24, *ch = pr + 8, *rj = pr + 16;
        size_t np = 2 + rw_rng_below(&r, 5), nc = 2 + rw_rng_below(&r, 6);
        size_t nr = 2 + rw_rng_below(&r, 6);
        for (size_t j = 0; j < 8; j++) {
            pr[j] = MARK + 1 + (int32_t)rw_rng_below(&r, (uint64_t)vocab - MARK - 1);
            ch[j] = MARK + 1 + (int32_t)rw_rng_below(&r, (uint64_t)vocab - MARK - 1);
            rj[j] = MARK + 1 + (int32_t)rw_rng_below(&r, (uint64_t)vocab - MARK - 1);
        }
        ch[rw_rng_below(&r, nc)] = MARK;
        s->pairs[i] = (rw_tok_pair_t){pr, ch, rj, np, nc, nr, (int32_t)(i % 2)};
    }
}

static void synth_free(synth_t *s)
{
    free(s->pairs);
    free(s->ids);
}

typedef struct feed {
    const synth_t *set;
    size_t per_step; /* pairs */
    double first_loss, last_loss, first_acc, last_acc;
    long steps;
} feed_t;

static int next_batch(void *ctx, long step, rw_batch_t *b)
{
    feed_t *f = ctx;
    size_t start = ((size_t)step * f->per_step) % (f->set->n - f->per_step + 1);
    return rw_batch_from_pairs(b, f->set->pairs + start, f->per_step);
}

static int on_step(void *ctx, const rw_step_stats_t *st)
{
    feed_t *f = ctx;
    if (f->steps++ == 0) {
        f->first_loss = st->loss;
        f->first_acc = st->accuracy;
    }
    f->last_loss = st->loss;
    f->last_acc = st->accuracy;
    cr_assert(!st->skipped && isfinite(st->loss));
    return 0;
}

static void small_config(rw_model_config_t *cfg)
{
    rw_model_config_default(cfg);
    cfg->vocab = 64;
    cfg->max_len = 20;
    cfg->d_model = 32;
    cfg->n_layers = 2;
    cfg->n_heads = 2;
    cfg->d_ff = 64;
}

static void small_train_config(rw_train_config_t *tc, long steps)
{
    rw_train_config_default(tc);
    tc->opt.lr = 3e-3f;
    tc->opt.min_lr = 3e-4f;
    tc->opt.warmup_steps = 10;
    tc->opt.total_steps = steps;
    tc->threads = 2;
    tc->max_batch = 32;
}

Test(train, learns_a_trivial_set_to_95_percent_in_seconds)
{
    rw_model_config_t cfg;
    small_config(&cfg);
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, &cfg), 0);
    rw_model_init(m, 1);
    synth_t train, held;
    synth_make(&train, 2000, cfg.vocab, 2);
    synth_make(&held, 400, cfg.vocab, 3);
    rw_train_config_t tc;
    small_train_config(&tc, 150);
    rw_trainer_t *tr;
    cr_assert_eq(rw_trainer_new(&tr, m, NULL, &tc), 0);
    feed_t f = {&train, 16, 0, 0, 0, 0, 0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(rw_trainer_run(tr, 150, next_batch, on_step, &f), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    rw_engine_t *e;
    cr_assert_eq(rw_engine_new(&e, m, NULL, 64, (size_t)cfg.max_len, 2, 0), 0);
    rw_eval_stats_t all, dom[2];
    cr_assert_eq(rw_eval_pairs(e, held.pairs, held.n, &all, dom, 2), 0);
    cr_log_info("150 steps in %.2f s; held-out accuracy %.3f, margin %.2f (domains %.3f, %.3f)",
                secs, all.accuracy, all.mean_margin, dom[0].accuracy, dom[1].accuracy);
    cr_assert_eq(all.n, held.n);
    cr_assert_eq(dom[0].n + dom[1].n, held.n);
    cr_assert_geq(all.accuracy, 0.95, "held-out accuracy %.3f", all.accuracy);
    cr_assert_gt(all.mean_margin, 0.0);
    cr_assert_lt(secs, 10.0, "took %.1f s", secs);
    rw_engine_destroy(&e);
    rw_trainer_destroy(&tr);
    synth_free(&train);
    synth_free(&held);
    rw_model_destroy(&m);
}

Test(train, lora_adapter_and_router_learn_on_a_frozen_base)
{
    rw_model_config_t cfg;
    small_config(&cfg);
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, &cfg), 0);
    rw_model_init(m, 11);
    float *base = malloc(m->layout.n_floats * sizeof *base);
    memcpy(base, m->mem, m->layout.n_floats * sizeof *base);
    synth_t train, held;
    synth_make(&train, 2000, cfg.vocab, 12);
    synth_make(&held, 400, cfg.vocab, 13);
    /* a reward adapter */
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 4;
    rw_lora_t *lo;
    cr_assert_eq(rw_lora_new(&lo, m, &lc), 0);
    rw_lora_init(lo, m, 14);
    rw_train_config_t tc;
    small_train_config(&tc, 150);
    rw_trainer_t *tr;
    cr_assert_eq(rw_trainer_new(&tr, m, lo, &tc), 0);
    feed_t f = {&train, 16, 0, 0, 0, 0, 0};
    cr_assert_eq(rw_trainer_run(tr, 150, next_batch, on_step, &f), 0);
    rw_trainer_destroy(&tr);
    rw_engine_t *e;
    cr_assert_eq(rw_engine_new(&e, m, lo, 64, (size_t)cfg.max_len, 2, 0), 0);
    rw_eval_stats_t all;
    cr_assert_eq(rw_eval_pairs(e, held.pairs, held.n, &all, NULL, 0), 0);
    cr_log_info("reward adapter: held-out accuracy %.3f", all.accuracy);
    cr_assert_geq(all.accuracy, 0.9);
    /* a router adapter: which domain (set by the first prompt token) */
    rw_lora_config_t rc;
    rw_lora_config_default(&rc);
    rc.rank = 4;
    rc.head = RW_HEAD_CLASSIFIER;
    rc.n_classes = 2;
    rw_lora_t *router;
    cr_assert_eq(rw_lora_new(&router, m, &rc), 0);
    rw_lora_init(router, m, 15);
    size_t n = 512;
    rw_tok_example_t *ex = calloc(n, sizeof *ex);
    for (size_t i = 0; i < n; i++) {
        const rw_tok_pair_t *p = &train.pairs[i];
        int32_t *pr = (int32_t *)p->prompt;
        pr[0] = 6 + p->domain; /* the domain's marker */
        ex[i] = (rw_tok_example_t){p->prompt, p->chosen, p->n_prompt, p->n_chosen, p->domain};
    }
    rw_train_config_t rtc;
    small_train_config(&rtc, 60);
    cr_assert_eq(rw_trainer_new(&tr, m, router, &rtc), 0);
    rw_batch_t b;
    rw_batch_init(&b, 32, (size_t)cfg.max_len);
    for (long s = 0; s < 60; s++) {
        cr_assert_eq(rw_batch_from_examples(&b, ex + (size_t)(s * 32) % (n - 32), 32), 0);
        cr_assert_eq(rw_trainer_step(tr, &b, NULL), 0);
    }
    rw_trainer_destroy(&tr);
    cr_assert_eq(rw_engine_set_lora(e, router), 0);
    rw_eval_stats_t racc, per[2];
    cr_assert_eq(rw_eval_classify(e, ex + n / 2, n / 2, &racc, per, 2), 0);
    cr_log_info("router adapter: accuracy %.3f (%.3f, %.3f)", racc.accuracy, per[0].accuracy,
                per[1].accuracy);
    cr_assert_geq(racc.accuracy, 0.95);
    cr_assert_eq(memcmp(base, m->mem, m->layout.n_floats * sizeof *base), 0, "base changed");
    rw_batch_fini(&b);
    free(ex);
    rw_engine_destroy(&e);
    rw_lora_destroy(&router);
    rw_lora_destroy(&lo);
    synth_free(&train);
    synth_free(&held);
    free(base);
    rw_model_destroy(&m);
}

/* Trains a fresh model (and adapter, if lora_rank > 0) from seed for a few
 * steps; returns the trained block (caller frees). */
static float *train_copy(const rw_model_config_t *cfg, int lora_rank, int threads, size_t *n)
{
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, cfg), 0);
    rw_model_init(m, 42);
    rw_lora_t *lo = NULL;
    if (lora_rank) {
        rw_lora_config_t lc;
        rw_lora_config_default(&lc);
        lc.rank = lora_rank;
        lc.targets = RW_LORA_Q | RW_LORA_V | RW_LORA_O;
        cr_assert_eq(rw_lora_new(&lo, m, &lc), 0);
        rw_lora_init(lo, m, 43);
    }
    synth_t set;
    synth_make(&set, 200, cfg->vocab, 4);
    rw_train_config_t tc;
    small_train_config(&tc, 12);
    tc.threads = threads;
    tc.lb_coef = 0.05f;
    rw_trainer_t *tr;
    cr_assert_eq(rw_trainer_new(&tr, m, lo, &tc), 0);
    feed_t f = {&set, 12, 0, 0, 0, 0, 0};
    cr_assert_eq(rw_trainer_run(tr, 12, next_batch, on_step, &f), 0);
    *n = rw_trainer_layout(tr)->n_floats;
    float *out = malloc(*n * sizeof *out);
    memcpy(out, rw_trainer_params(tr), *n * sizeof *out);
    rw_trainer_destroy(&tr);
    synth_free(&set);
    rw_lora_destroy(&lo);
    rw_model_destroy(&m);
    return out;
}

static void expect_reproducible(const rw_model_config_t *cfg, int lora_rank, const char *what)
{
    for (int threads = 1; threads <= 2; threads++) {
        size_t n1, n2;
        float *a = train_copy(cfg, lora_rank, threads, &n1);
        float *b = train_copy(cfg, lora_rank, threads, &n2);
        cr_assert_eq(n1, n2);
        cr_assert_eq(memcmp(a, b, n1 * sizeof *a), 0, "%s, %d threads: weights differ", what,
                     threads);
        free(a);
        free(b);
    }
}

Test(train, same_seed_and_threads_give_bit_identical_weights)
{
    rw_model_config_t cfg;
    small_config(&cfg);
    expect_reproducible(&cfg, 0, "dense");
    cfg.n_experts = 3;
    expect_reproducible(&cfg, 0, "moe");
    cfg.n_experts = 0;
    expect_reproducible(&cfg, 4, "lora");
}

Test(train, non_finite_loss_skips_the_step_and_changes_nothing)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, &cfg), 0);
    rw_model_init(m, 3);
    rw_batch_t b;
    rw_batch_init(&b, 8, (size_t)cfg.max_len);
    fx_random_pairs(&b, 4, cfg.vocab, 1, 8);
    rw_train_config_t tc;
    small_train_config(&tc, 10);
    rw_trainer_t *tr;
    cr_assert_eq(rw_trainer_new(&tr, m, NULL, &tc), 0);
    m->p.wte[(size_t)b.ids[1] * (size_t)cfg.d_model] = NAN; /* poison one used embedding */
    float *before = malloc(m->layout.n_floats * sizeof *before);
    memcpy(before, m->mem, m->layout.n_floats * sizeof *before);
    rw_step_stats_t st;
    cr_assert_eq(rw_trainer_step(tr, &b, &st), 0);
    cr_assert_eq(st.skipped, 1);
    cr_assert(!isfinite(st.loss));
    char line[256];
    cr_assert(strstr(rw_step_stats_format(&st, line, sizeof line), "SKIPPED"), "%s", line);
    cr_assert_eq(rw_trainer_updates(tr), 0);
    cr_assert_eq(rw_trainer_skipped(tr), 1);
    cr_assert_eq(memcmp(before, m->mem, m->layout.n_floats * sizeof *before), 0);
    for (size_t i = 0; i < m->layout.n_floats; i++) /* the moments stay clean too */
        cr_assert(rw_trainer_moment(tr, 1)[i] == 0.0f && rw_trainer_moment(tr, 2)[i] == 0.0f);
    m->p.wte[(size_t)b.ids[1] * (size_t)cfg.d_model] = 0.0f;
    cr_assert_eq(rw_trainer_step(tr, &b, &st), 0);
    cr_assert_eq(st.skipped, 0);
    cr_assert_eq(rw_trainer_updates(tr), 1);
    for (size_t i = 0; i < m->layout.n_floats; i++)
        cr_assert(isfinite(m->mem[i]));
    free(before);
    rw_trainer_destroy(&tr);
    rw_batch_fini(&b);
    rw_model_destroy(&m);
}

Test(train, schedule_warms_up_then_decays)
{
    rw_adamw_config_t c;
    rw_adamw_config_default(&c);
    c.lr = 1.0f;
    c.min_lr = 0.1f;
    c.warmup_steps = 10;
    c.total_steps = 110;
    cr_assert_float_eq(rw_adamw_lr(&c, 0), 0.1f, 1e-6);
    cr_assert_float_eq(rw_adamw_lr(&c, 9), 1.0f, 1e-6);
    cr_assert_float_eq(rw_adamw_lr(&c, 10), 1.0f, 1e-6);
    cr_assert_float_eq(rw_adamw_lr(&c, 60), 0.55f, 1e-5);
    cr_assert_float_eq(rw_adamw_lr(&c, 110), 0.1f, 1e-6);
    cr_assert_float_eq(rw_adamw_lr(&c, 500), 0.1f, 1e-6);
    c.decay = RW_DECAY_LINEAR;
    cr_assert_float_eq(rw_adamw_lr(&c, 35), 0.775f, 1e-5);
    c.decay = RW_DECAY_CONSTANT;
    cr_assert_float_eq(rw_adamw_lr(&c, 100), 1.0f, 1e-6);
}

Test(train, clipping_bounds_the_update_and_decay_spares_norms)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, &cfg), 0);
    rw_model_init(m, 3);
    rw_batch_t b;
    rw_batch_init(&b, 8, (size_t)cfg.max_len);
    fx_random_pairs(&b, 4, cfg.vocab, 1, 8);
    rw_train_config_t tc;
    small_train_config(&tc, 10);
    tc.grad_clip = 1e-6f;
    tc.opt.weight_decay = 0.5f;
    rw_trainer_t *tr;
    cr_assert_eq(rw_trainer_new(&tr, m, NULL, &tc), 0);
    rw_step_stats_t st;
    cr_assert_eq(rw_trainer_step(tr, &b, &st), 0);
    cr_assert_gt(st.grad_norm, 1e-6);
    /* the clipped gradient is what Adam's first moment saw: norm (1-beta1) * clip */
    const rw_layout_t *lay = rw_trainer_layout(tr);
    double s = 0.0;
    for (size_t i = 0; i < lay->n_floats; i++)
        s += (double)rw_trainer_moment(tr, 1)[i] * rw_trainer_moment(tr, 1)[i];
    cr_assert_float_eq(sqrt(s), 0.1 * 1e-6, 1e-9);
    cr_assert(!rw_model_tensor(m, "ln1_w")->decay && !rw_model_tensor(m, "qkv_b")->decay);
    cr_assert(rw_model_tensor(m, "qkv_w")->decay && rw_model_tensor(m, "wte")->decay);
    rw_trainer_destroy(&tr);
    rw_batch_fini(&b);
    rw_model_destroy(&m);
}

Test(train, gates_alone_learn_domain_routing)
{
    rw_model_config_t cfg;
    small_config(&cfg);
    cfg.n_experts = 2;
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, &cfg), 0);
    rw_model_init(m, 5);
    /* domain d's texts are made of tokens from its own half of the vocabulary */
    synth_t set;
    synth_make(&set, 256, cfg.vocab, 6);
    for (size_t i = 0; i < set.n * 24; i++)
        set.ids[i] = 6 + (set.ids[i] % 29) + 29 * set.pairs[i / 24].domain;
    rw_train_config_t tc;
    small_train_config(&tc, 60);
    tc.part = RW_TRAIN_GATES;
    tc.opt.lr = 1e-2f;
    rw_trainer_t *tr;
    cr_assert_eq(rw_trainer_new(&tr, m, NULL, &tc), 0);
    float *before = malloc(m->layout.n_floats * sizeof *before);
    memcpy(before, m->mem, m->layout.n_floats * sizeof *before);
    feed_t f = {&set, 16, 0, 0, 0, 0, 0};
    cr_assert_eq(rw_trainer_run(tr, 60, next_batch, on_step, &f), 0);
    /* cls/sep and position embeddings carry no domain, so a linear gate on
     * frozen random features tops out near 0.75 here; it must get well clear
     * of chance and its loss must fall */
    cr_log_info("gate top-1 accuracy %.3f -> %.3f, loss %.3f -> %.3f", f.first_acc, f.last_acc,
                f.first_loss, f.last_loss);
    cr_assert_gt(f.last_acc, 0.62);
    cr_assert_lt(f.last_loss, f.first_loss - 0.05);
    const rw_tensor_t *gate = rw_model_tensor(m, "gate_w");
    for (size_t i = 0; i < m->layout.n_floats; i++)
        if (i < gate->offset || i >= gate->offset + gate->n)
            cr_assert_eq(before[i], m->mem[i], "a non-gate weight moved");
    free(before);
    rw_trainer_destroy(&tr);
    synth_free(&set);
    rw_model_destroy(&m);
}

Test(train, ffn_alone_learns_and_nothing_else_moves)
{
    rw_model_config_t cfg;
    small_config(&cfg);
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, &cfg), 0);
    rw_model_init(m, 5);
    synth_t set;
    synth_make(&set, 256, cfg.vocab, 6);
    rw_train_config_t tc;
    small_train_config(&tc, 60);
    tc.part = RW_TRAIN_FFN;
    rw_trainer_t *tr;
    cr_assert_eq(rw_trainer_new(&tr, m, NULL, &tc), 0);
    float *before = malloc(m->layout.n_floats * sizeof *before);
    memcpy(before, m->mem, m->layout.n_floats * sizeof *before);
    feed_t f = {&set, 16, 0, 0, 0, 0, 0};
    cr_assert_eq(rw_trainer_run(tr, 60, next_batch, on_step, &f), 0);
    cr_log_info("ffn-only: accuracy %.3f -> %.3f, loss %.3f -> %.3f", f.first_acc, f.last_acc,
                f.first_loss, f.last_loss);
    cr_assert_lt(f.last_loss, f.first_loss - 0.05, "the feed-forward blocks learn");
    size_t moved = 0;
    for (size_t t = 0; t < m->layout.n_tensors; t++) {
        const rw_tensor_t *x = &m->layout.t[t];
        int ffn = strncmp(x->name, "fc", 2) == 0;
        for (size_t i = x->offset; i < x->offset + x->n; i++) {
            if (!ffn)
                cr_assert_eq(before[i], m->mem[i], "%s moved", x->name);
            moved += ffn && before[i] != m->mem[i];
        }
    }
    cr_assert_gt(moved, 0);
    free(before);
    rw_trainer_destroy(&tr);
    synth_free(&set);
    rw_model_destroy(&m);
}

/* A configuration read back (a checkpoint's, for --resume) round-trips;
 * numbers no field can hold are refused instead of cast (threads 3e9 was
 * read as -2147483648), and so are values out of their range. */
Test(train, config_json_round_trips_and_refuses_what_cannot_be_held)
{
    rw_train_config_t c, back;
    rw_train_config_default(&c);
    c.threads = 2, c.max_batch = 64, c.opt.lr = 3e-4f, c.opt.warmup_steps = 7;
    char *s = rw_train_config_to_json(&c);
    cr_assert_not_null(s);
    rw_train_config_default(&back);
    cr_assert_eq(rw_train_config_from_json(s, &back), 0, "%s", s);
    cr_assert_eq(back.threads, 2);
    cr_assert_eq(back.max_batch, 64);
    cr_assert_eq(back.opt.warmup_steps, 7);
    cr_assert_float_eq(back.opt.lr, 3e-4f, 1e-9f);
    free(s);
    const char *bad[] = {"{\"threads\":3e9}", "{\"warmup_steps\":1e300}", "{\"total_steps\":-1e19}",
                         "{\"lr\":1e39}",     "{\"max_batch\":1}",        "{\"threads\":-1}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rw_train_config_default(&back);
        cr_assert_eq(rw_train_config_from_json(bad[i], &back), RW_EINVAL, "%s", bad[i]);
    }
}
