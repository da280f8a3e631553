/* test_checkpoint.c — checkpoints round-trip bit for bit, resuming equals not
 * stopping, adapters live apart from their base, and an independent numpy
 * forward pass (tests/core/model_ref.py) reproduces rewire's outputs. */
#include "checkpoint.h"
#include "engine.h"
#include "err.h"
#include "lora.h"
#include "model.h"
#include "safetensors.h"
#include "train.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixture.h"
#include "support.h"

static int next_batch(void *ctx, long step, rw_batch_t *b)
{
    const rw_model_config_t *cfg = ctx;
    fx_random_pairs(b, 4, cfg->vocab, 2, 100 + (uint64_t)step);
    return 0;
}

static void train_config(rw_train_config_t *tc)
{
    rw_train_config_default(tc);
    tc->opt.lr = 1e-2f;
    tc->opt.warmup_steps = 3;
    tc->opt.total_steps = 10;
    tc->threads = 2;
    tc->max_batch = 8;
}

static rw_model_t *fresh_model(const rw_model_config_t *cfg)
{
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, cfg), 0);
    rw_model_init(m, 77);
    return m;
}

Test(checkpoint, model_round_trips_bit_for_bit_with_metadata)
{
    char *dir = rwt_tmpdir();
    const char *path = rwt_path(dir, "m.safetensors");
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    cfg.n_experts = 3;
    cfg.pooling = RW_POOL_LAST;
    rw_model_t *m = fresh_model(&cfg), *back;
    cr_assert_eq(rw_checkpoint_save(path, m, NULL, "{\"bpe\":1}", "run 7"), 0);
    rw_ckpt_info_t info;
    cr_assert_eq(rw_checkpoint_load(path, &back, &info), 0);
    cr_assert_eq(memcmp(&back->cfg, &m->cfg, sizeof cfg), 0);
    cr_assert_eq(memcmp(back->mem, m->mem, m->layout.n_floats * sizeof(float)), 0);
    cr_assert_str_eq(info.tokenizer, "{\"bpe\":1}");
    cr_assert_str_eq(info.extra, "run 7");
    cr_assert_eq(info.has_training, 0);
    rw_ckpt_info_fini(&info);
    /* an adapter file is not a model */
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.targets = RW_LORA_Q;
    rw_lora_t *lo;
    cr_assert_eq(rw_lora_new(&lo, m, &lc), 0);
    cr_assert_eq(rw_lora_save(path, lo, NULL, NULL), 0);
    rw_model_t *none;
    cr_assert_eq(rw_checkpoint_load(path, &none, NULL), RW_EFORMAT);
    cr_assert_null(none);
    rw_lora_destroy(&lo);
    rw_model_destroy(&back);
    rw_model_destroy(&m);
    rwt_rmdir(dir);
    free(dir);
}

/* Trains cfg's model (an adapter too if lc) for 10 steps, stopping after 5
 * to save and reload everything if `stop`; returns the trained block. */
static float *run(const rw_model_config_t *cfg, const rw_lora_config_t *lc, int stop,
                  const char *dir, size_t *n)
{
    const char *path = rwt_path(dir, "ckpt.safetensors");
    const char *base_path = rwt_path(dir, "base.safetensors");
    rw_model_t *m = fresh_model(cfg);
    rw_lora_t *lo = NULL;
    if (lc) {
        cr_assert_eq(rw_lora_new(&lo, m, lc), 0);
        rw_lora_init(lo, m, 78);
    }
    rw_train_config_t tc;
    train_config(&tc);
    rw_trainer_t *tr;
    cr_assert_eq(rw_trainer_new(&tr, m, lo, &tc), 0);
    rw_model_config_t ctx = *cfg;
    cr_assert_eq(rw_trainer_run(tr, stop ? 5 : 10, next_batch, NULL, &ctx), 0);
    if (stop) {
        if (lo) {
            cr_assert_eq(rw_checkpoint_save(base_path, m, NULL, NULL, NULL), 0);
            cr_assert_eq(rw_lora_save(path, lo, tr, NULL), 0);
        } else {
            cr_assert_eq(rw_checkpoint_save(path, m, tr, NULL, NULL), 0);
        }
        rw_trainer_destroy(&tr);
        rw_lora_destroy(&lo);
        rw_model_destroy(&m);
        /* a new process would start here */
        rw_ckpt_info_t info;
        if (lc) {
            cr_assert_eq(rw_checkpoint_load(base_path, &m, NULL), 0);
            cr_assert_eq(rw_lora_load(path, m, &lo, &info), 0);
        } else {
            cr_assert_eq(rw_checkpoint_load(path, &m, &info), 0);
        }
        cr_assert_eq(info.has_training, 1);
        cr_assert_eq(info.updates, 5);
        cr_assert_eq(rw_trainer_new(&tr, m, lo, &info.train), 0);
        cr_assert_eq(rw_checkpoint_restore_trainer(path, tr), 0);
        cr_assert_eq(rw_trainer_updates(tr), 5);
        rw_ckpt_info_fini(&info);
        cr_assert_eq(rw_trainer_run(tr, 5, next_batch, NULL, &ctx), 0);
    }
    *n = rw_trainer_layout(tr)->n_floats;
    float *out = malloc(*n * sizeof *out);
    memcpy(out, rw_trainer_params(tr), *n * sizeof *out);
    rw_trainer_destroy(&tr);
    rw_lora_destroy(&lo);
    rw_model_destroy(&m);
    return out;
}

static void expect_resume_equivalent(const rw_model_config_t *cfg, const rw_lora_config_t *lc,
                                     const char *what)
{
    char *dir = rwt_tmpdir();
    size_t n1, n2;
    float *straight = run(cfg, lc, 0, dir, &n1), *resumed = run(cfg, lc, 1, dir, &n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(straight, resumed, n1 * sizeof(float)), 0,
                 "%s: resumed run ends with other weights", what);
    free(straight);
    free(resumed);
    rwt_rmdir(dir);
    free(dir);
}

/* A model with a NaN or an infinity in any tensor is refused when loaded:
 * it would score nothing (a reward of NaN) without a word. */
Test(checkpoint, a_non_finite_weight_is_refused)
{
    char *dir = rwt_tmpdir();
    const char *path = rwt_path(dir, "m.safetensors");
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    rw_model_t *m = fresh_model(&cfg), *back = NULL;
    float bad[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        float keep = m->p.headb[0];
        m->p.headb[0] = bad[i];
        cr_assert_eq(rw_checkpoint_save(path, m, NULL, NULL, NULL), 0);
        cr_assert_eq(rw_checkpoint_load(path, &back, NULL), RW_ENUMERIC, "case %d", i);
        cr_assert_null(back);
        m->p.headb[0] = keep;
    }
    cr_assert_eq(rw_checkpoint_save(path, m, NULL, NULL, NULL), 0);
    cr_assert_eq(rw_checkpoint_load(path, &back, NULL), 0);
    rw_model_destroy(&back);
    rw_model_destroy(&m);
    rwt_rmdir(dir);
    free(dir);
}

Test(checkpoint, resuming_mid_run_ends_with_the_same_weights)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    expect_resume_equivalent(&cfg, NULL, "dense");
    cfg.n_experts = 3;
    expect_resume_equivalent(&cfg, NULL, "moe");
    cfg.n_experts = 0;
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 2;
    expect_resume_equivalent(&cfg, &lc, "lora");
    lc.targets |= RW_LORA_EMB;
    expect_resume_equivalent(&cfg, &lc, "lora+emb");
}

Test(checkpoint, adapter_is_saved_apart_and_refuses_another_base)
{
    char *dir = rwt_tmpdir();
    const char *path = rwt_path(dir, "a.safetensors");
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    rw_model_t *m = fresh_model(&cfg);
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 3;
    lc.targets = RW_LORA_V | RW_LORA_FF2 | RW_LORA_EMB;
    lc.head = RW_HEAD_CLASSIFIER;
    lc.n_classes = 4;
    rw_lora_t *lo, *back;
    cr_assert_eq(rw_lora_new(&lo, m, &lc), 0);
    rw_lora_init(lo, m, 5);
    fx_scramble(lo->mem, &lo->layout, 6, 0.1f);
    cr_assert_eq(rw_lora_save(path, lo, NULL, "router"), 0);
    /* the file holds the adapter's tensors only */
    rw_st_t *st;
    cr_assert_eq(rw_st_read(&st, path), 0);
    cr_assert_eq(rw_st_count(st), 3 * 2 + 2);
    cr_assert_null(rw_st_get(st, "wte"));
    cr_assert_not_null(rw_st_get(st, "lora_ff2_b"));
    cr_assert_not_null(rw_st_get(st, "lora_emb_a"));
    rw_st_destroy(&st);
    rw_ckpt_info_t info;
    cr_assert_eq(rw_lora_load(path, m, &back, &info), 0);
    cr_assert_eq(memcmp(&back->cfg, &lo->cfg, sizeof lc), 0);
    cr_assert_eq(memcmp(back->mem, lo->mem, lo->layout.n_floats * sizeof(float)), 0);
    cr_assert_str_eq(info.extra, "router");
    rw_ckpt_info_fini(&info);
    rw_lora_destroy(&back);
    /* another base: same configuration, other weights */
    m->mem[0] += 1.0f;
    cr_assert_eq(rw_lora_load(path, m, &back, NULL), RW_ECHECKSUM);
    cr_assert_null(back);
    /* another configuration */
    rw_model_config_t other = cfg;
    other.d_ff = 32;
    rw_model_t *m2 = fresh_model(&other);
    cr_assert_eq(rw_lora_load(path, m2, &back, NULL), RW_EINVAL);
    rw_model_destroy(&m2);
    rw_lora_destroy(&lo);
    rw_model_destroy(&m);
    rwt_rmdir(dir);
    free(dir);
}

/* Writes the valid ids of b and the outputs out (B,O) as model_ref.py's input. */
static void write_inputs(const char *path, const rw_batch_t *b, const float *out, int O)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"ids\": [");
    for (size_t i = 0; i < b->B; i++) {
        fprintf(f, "%s[", i ? ", " : "");
        for (int t = 0; t < b->lens[i]; t++)
            fprintf(f, "%s%d", t ? ", " : "", b->ids[i * b->ld + (size_t)t]);
        fprintf(f, "]");
    }
    fprintf(f, "], \"outputs\": [");
    for (size_t i = 0; i < b->B; i++) {
        fprintf(f, "%s[", i ? ", " : "");
        for (int j = 0; j < O; j++)
            fprintf(f, "%s%.9g", j ? ", " : "", out[i * (size_t)O + (size_t)j]);
        fprintf(f, "]");
    }
    fprintf(f, "]}\n");
    cr_assert_eq(fclose(f), 0);
}

/* rewire's outputs for a few pairs of cfg's model (and adapter lc) against
 * model_ref.py's numpy forward pass. */
static void expect_numpy_agrees(const rw_model_config_t *cfg, const rw_lora_config_t *lc,
                                const char *what)
{
    char *dir = rwt_tmpdir();
    char model_path[1024], lora_path[1024], in_path[1024], cmd[4096];
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", dir);
    snprintf(lora_path, sizeof lora_path, "%s/lora.safetensors", dir);
    snprintf(in_path, sizeof in_path, "%s/inputs.json", dir);
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, cfg), 0);
    fx_scramble(m->mem, &m->layout, 31, 0.15f);
    rw_lora_t *lo = NULL;
    if (lc) {
        cr_assert_eq(rw_lora_new(&lo, m, lc), 0);
        fx_scramble(lo->mem, &lo->layout, 32, 0.15f);
        cr_assert_eq(rw_lora_save(lora_path, lo, NULL, NULL), 0);
    }
    cr_assert_eq(rw_checkpoint_save(model_path, m, NULL, "", NULL), 0);
    rw_batch_t b;
    rw_batch_init(&b, 8, (size_t)cfg->max_len);
    fx_random_pairs(&b, 4, cfg->vocab, 2, 33);
    rw_engine_t *e;
    cr_assert_eq(rw_engine_new(&e, m, lo, 8, (size_t)cfg->max_len, 2, 0), 0);
    int O = rw_engine_outputs(e);
    float *out = malloc(8 * (size_t)O * sizeof *out);
    cr_assert_eq(rw_engine_forward(e, &b, out), 0);
    write_inputs(in_path, &b, out, O);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/core/model_ref.py %s %s %s", RW_SOURCE_DIR,
             model_path, in_path, lc ? lora_path : "");
    char *sout = NULL, *serr = NULL;
    int status = rwt_run(cmd, &sout, &serr);
    cr_log_info("%s: numpy says %s", what, sout ? sout : "");
    cr_assert_eq(status, 0, "%s: numpy forward disagrees (exit %d):\n%s\n%s", what, status,
                 sout ? sout : "", serr ? serr : "");
    cr_assert(strstr(sout, "max_abs_diff"));
    free(sout);
    free(serr);
    free(out);
    rw_engine_destroy(&e);
    rw_batch_fini(&b);
    rw_lora_destroy(&lo);
    rw_model_destroy(&m);
    rwt_rmdir(dir);
    free(dir);
}

static void ref_config(rw_model_config_t *cfg)
{
    rw_model_config_default(cfg);
    cfg->vocab = 50;
    cfg->max_len = 16;
    cfg->d_model = 16;
    cfg->n_layers = 2;
    cfg->n_heads = 4;
    cfg->d_ff = 32;
}

Test(checkpoint, numpy_forward_reproduces_rewards_dense)
{
    rw_model_config_t cfg;
    ref_config(&cfg);
    expect_numpy_agrees(&cfg, NULL, "dense/mean");
}

Test(checkpoint, numpy_forward_reproduces_rewards_moe)
{
    rw_model_config_t cfg;
    ref_config(&cfg);
    cfg.n_experts = 4;
    cfg.pooling = RW_POOL_LAST;
    expect_numpy_agrees(&cfg, NULL, "moe/last");
}

Test(checkpoint, numpy_forward_reproduces_rewards_moe_sequence_gates)
{
    rw_model_config_t cfg;
    ref_config(&cfg);
    cfg.n_experts = 3;
    cfg.gate_input = RW_GATE_PROMPT;
    expect_numpy_agrees(&cfg, NULL, "moe/prompt-gate");
}

Test(checkpoint, numpy_forward_reproduces_lora_router_logits)
{
    rw_model_config_t cfg;
    ref_config(&cfg);
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 4;
    lc.head = RW_HEAD_CLASSIFIER;
    lc.n_classes = 3;
    expect_numpy_agrees(&cfg, &lc, "lora/classifier");
}

Test(checkpoint, numpy_forward_reproduces_lora_rewards_with_the_token_embedding)
{
    rw_model_config_t cfg;
    ref_config(&cfg);
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 4;
    lc.targets |= RW_LORA_EMB;
    expect_numpy_agrees(&cfg, &lc, "lora/reward/emb");
}

/* A file cut or changed anywhere (header bytes above all: lengths, shapes,
 * offsets, the configuration in the metadata) is refused with an error or
 * read as what it now says; never a crash, a hang or a read out of bounds
 * (the sanitizer build runs this too). */
Test(checkpoint, mangled_files_are_refused_never_trusted, .timeout = 60)
{
    char *dir = rwt_tmpdir();
    const char *good = rwt_path(dir, "good.safetensors");
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    cfg.n_experts = 2;
    rw_model_t *m = fresh_model(&cfg);
    cr_assert_eq(rw_checkpoint_save(good, m, NULL, "{\"bpe\":1}", "run 7"), 0);
    rw_model_destroy(&m);
    size_t n;
    unsigned char *raw = (unsigned char *)rwt_read_file(good, &n), *buf = malloc(n);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = hn << 8 | raw[i];
    cr_assert_lt(hn, n);
    const char *path = rwt_path(dir, "mangled.safetensors");
    uint64_t s = 12345;
    int refused = 0, read = 0;
    for (int it = 0; it < 1500; it++) {
        memcpy(buf, raw, n);
        size_t len = n;
        uint64_t r = rwt_mangle(buf, 0, &s, NULL, 0);
        int kind = (int)(r % 4), count = 1 + (int)(r / 4 % 4);
        /* mostly the length and the JSON header; sometimes the data */
        r = rwt_mangle(buf, kind == 3 ? n : 8 + hn, &s, kind == 1 ? "0123456789\"{}[],:-.eE" : NULL,
                       count);
        if (kind == 2)
            len = (size_t)(r % n); /* cut short too */
        rwt_write_file(path, (const char *)buf, len);
        rw_model_t *back = NULL;
        rw_ckpt_info_t info;
        memset(&info, 0, sizeof info);
        int rc = rw_checkpoint_load(path, &back, &info);
        cr_assert(rc <= 0, "iteration %d: %d", it, rc);
        if (rc == 0) {
            read++;
            rw_model_destroy(&back);
        } else {
            refused++;
            cr_assert_null(back, "iteration %d: a refused file left a model", it);
        }
        rw_ckpt_info_fini(&info);
    }
    cr_assert_gt(refused, 1000, "only %d of 1500 refused", refused);
    free(raw);
    free(buf);
    rwt_rmdir(dir);
    free(dir);
}
