/* test_gradcheck.c — finite differences agree with backprop for every
 * trained tensor of every variant: dense (mean and last-token pooling),
 * classifier, MoE (joint with both gate losses, and gates alone), LoRA
 * (reward and classifier heads, on dense and MoE bases).
 *
 * The model runs in float, so the differences are taken with steps large
 * enough for float rounding (1e-7 relative) to stay far below the signal:
 * per tensor, one directional derivative along a random +-1 direction (all
 * elements at once) and the derivative of the three elements with the
 * largest gradients. A wrong gradient is off by far more than the
 * tolerance; float rounding and the curvature left by the central
 * difference are well inside it.
 */
#include "lora.h"
#include "model.h"
#include "train.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixture.h"

static double loss_at(rw_trainer_t *tr, const rw_batch_t *b)
{
    rw_step_stats_t st;
    cr_assert_eq(rw_trainer_loss(tr, b, &st), 0);
    return st.loss;
}

/* Central difference of the loss along d (n signs; NULL: element `at`
 * alone) with step h; the parameters are restored after. */
static double fd_along(rw_trainer_t *tr, const rw_batch_t *b, float *p, const float *saved,
                       size_t n, const signed char *d, size_t at, float h)
{
    size_t lo = d ? 0 : at, hi = d ? n : at + 1;
    for (size_t i = lo; i < hi; i++)
        p[i] = saved[i] + h * (d ? d[i] : 1);
    double lp = loss_at(tr, b);
    for (size_t i = lo; i < hi; i++)
        p[i] = saved[i] - h * (d ? d[i] : 1);
    double lm = loss_at(tr, b);
    for (size_t i = lo; i < hi; i++)
        p[i] = saved[i];
    return (lp - lm) / (2.0 * (double)h);
}

static int close_enough(double x, double y, double rtol)
{
    return fabs(x - y) <= rtol * fmax(fabs(x), fabs(y)) + 1e-4;
}

/* One finite-difference sample against backprop's an: central differences
 * at steps h and h/2, Richardson-extrapolated to cancel their h^2 error.
 * Top-k routing makes an MoE loss piecewise smooth: where the two steps
 * disagree by far more than curvature explains, the sample straddles a
 * routing switch and proves nothing, so it is counted as unusable rather
 * than failed. Returns 1 if it passed. */
static int sample(rw_trainer_t *tr, const rw_batch_t *b, float *p, const float *saved, size_t n,
                  const signed char *d, size_t at, double an, const char *what, const char *name,
                  int *unusable)
{
    /* a direction moves every element: keep its length near one element's step */
    const float h = d ? 4e-3f / sqrtf((float)n) : 2e-3f;
    double f1 = fd_along(tr, b, p, saved, n, d, at, h);
    double f2 = fd_along(tr, b, p, saved, n, d, at, h / 2);
    if (!close_enough(f1, f2, 5e-2)) {
        (*unusable)++;
        return 0;
    }
    double fd = (4.0 * f2 - f1) / 3.0;
    cr_expect(close_enough(fd, an, 1e-2), "%s: %s[%ld]: finite difference %.7g, backprop %.7g",
              what, name, d ? -1L : (long)at, fd, an);
    return 1;
}

static void check_tensor(rw_trainer_t *tr, const rw_batch_t *b, const rw_tensor_t *t,
                         const float *g, const char *what, int *unusable)
{
    float *p = rw_trainer_params(tr) + t->offset;
    const float *gt = g + t->offset;
    float *saved = malloc(t->n * sizeof *saved);
    memcpy(saved, p, t->n * sizeof *saved);
    signed char *d = malloc(t->n);
    char *used = calloc(t->n, 1);
    rw_rng_t r;
    rw_rng_seed(&r, t->offset + 17);
    /* directional: all elements at once along random signs (a few tries) */
    int passed = 0;
    for (int tries = 0; tries < 4 && !passed; tries++) {
        double an = 0.0;
        for (size_t i = 0; i < t->n; i++) {
            d[i] = (rw_rng_u64(&r) >> 63) ? 1 : -1;
            an += d[i] * (double)gt[i];
        }
        passed = sample(tr, b, p, saved, t->n, d, 0, an, what, t->name, unusable);
    }
    /* single elements, largest gradients first, until three are usable */
    int good = 0;
    for (size_t k = 0; k < t->n && k < 12 && good < 3; k++) {
        size_t best = t->n;
        for (size_t i = 0; i < t->n; i++)
            if (!used[i] && (best == t->n || fabsf(gt[i]) > fabsf(gt[best])))
                best = i;
        used[best] = 1;
        good += sample(tr, b, p, saved, t->n, NULL, best, gt[best], what, t->name, unusable);
    }
    cr_expect(good > 0, "%s: no usable sample for %s", what, t->name);
    cr_log_info("%s: %s: directional %s, %d elements", what, t->name,
                passed ? "checked" : "at switches", good);
    free(used);
    free(d);
    free(saved);
}

/* Checks every trained tensor of tr on b; untrained ones must get zeros. */
static void gradcheck(rw_trainer_t *tr, const rw_batch_t *b, const char *what, int routed)
{
    rw_step_stats_t st;
    cr_assert_eq(rw_trainer_gradient(tr, b, &st), 0);
    cr_assert(isfinite(st.loss) && st.grad_norm > 0, "%s: loss %g norm %g", what, st.loss,
              st.grad_norm);
    const rw_layout_t *lay = rw_trainer_layout(tr);
    float *g = malloc(lay->n_floats * sizeof *g);
    memcpy(g, rw_trainer_grads(tr), lay->n_floats * sizeof *g);
    int checked = 0, unusable = 0;
    for (size_t i = 0; i < lay->n_tensors; i++) {
        const rw_tensor_t *t = &lay->t[i];
        if (!t->n)
            continue;
        if (rw_trainer_trainable(tr, i)) {
            check_tensor(tr, b, t, g, what, &unusable);
            checked++;
        } else {
            for (size_t j = 0; j < t->n; j++)
                cr_expect_eq(g[t->offset + j], 0.0f, "%s: frozen %s has a gradient", what, t->name);
        }
    }
    /* only top-k routing may make a sample unusable */
    if (!routed)
        cr_expect_eq(unusable, 0, "%s: %d samples not smooth in a smooth model", what, unusable);
    cr_log_info("%s: %d tensors checked (%d samples at routing switches), loss %.6f", what, checked,
                unusable, st.loss);
    free(g);
}

static rw_trainer_t *new_trainer(rw_model_t *m, rw_lora_t *lo, rw_train_part_t part, float lb_coef,
                                 float gate_coef)
{
    rw_train_config_t tc;
    rw_train_config_default(&tc);
    tc.threads = 2;
    tc.max_batch = 8;
    tc.part = part;
    tc.lb_coef = lb_coef;
    tc.gate_coef = gate_coef;
    rw_trainer_t *tr;
    cr_assert_eq(rw_trainer_new(&tr, m, lo, &tc), 0);
    return tr;
}

static void check_model(rw_model_config_t *cfg, rw_train_part_t part, float lb, float gce,
                        const char *what)
{
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, cfg), 0);
    fx_scramble(m->mem, &m->layout, 7, 0.3f);
    rw_batch_t b;
    rw_batch_init(&b, 8, (size_t)cfg->max_len);
    fx_random_pairs(&b, 3, cfg->vocab, cfg->head == RW_HEAD_CLASSIFIER ? cfg->n_classes : 3, 11);
    rw_trainer_t *tr = new_trainer(m, NULL, part, lb, gce);
    gradcheck(tr, &b, what, cfg->n_experts > 0);
    rw_trainer_destroy(&tr);
    rw_batch_fini(&b);
    rw_model_destroy(&m);
}

Test(gradcheck, dense_reward_mean_pooling)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    check_model(&cfg, RW_TRAIN_ALL, 0, 0, "dense/mean");
}

Test(gradcheck, dense_reward_last_token_pooling)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    cfg.pooling = RW_POOL_LAST;
    check_model(&cfg, RW_TRAIN_ALL, 0, 0, "dense/last");
}

Test(gradcheck, classifier)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    cfg.head = RW_HEAD_CLASSIFIER;
    cfg.n_classes = 3;
    check_model(&cfg, RW_TRAIN_ALL, 0, 0, "classifier");
}

Test(gradcheck, moe_joint_with_gate_losses)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    cfg.n_experts = 4;
    cfg.top_k = 2;
    check_model(&cfg, RW_TRAIN_ALL, 0.5f, 0.3f, "moe/joint");
}

Test(gradcheck, moe_gates_alone_on_domain_labels)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    cfg.n_experts = 3;
    cfg.top_k = 2;
    check_model(&cfg, RW_TRAIN_GATES, 0, 0, "moe/gates");
}

Test(gradcheck, moe_sequence_gates_joint_with_gate_losses)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    cfg.n_experts = 4;
    cfg.top_k = 2;
    cfg.gate_input = RW_GATE_PROMPT;
    check_model(&cfg, RW_TRAIN_ALL, 0.5f, 0.3f, "moe/prompt-gate/joint");
}

Test(gradcheck, moe_sequence_gates_alone_on_domain_labels)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    cfg.n_experts = 3;
    cfg.top_k = 2;
    cfg.gate_input = RW_GATE_PROMPT;
    check_model(&cfg, RW_TRAIN_GATES, 0, 0, "moe/prompt-gate/gates");
}

static void check_lora(rw_model_config_t *cfg, const rw_lora_config_t *lc, const char *what)
{
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, cfg), 0);
    fx_scramble(m->mem, &m->layout, 7, 0.3f);
    rw_lora_t *lo;
    cr_assert_eq(rw_lora_new(&lo, m, lc), 0);
    fx_scramble(lo->mem, &lo->layout, 9, 0.3f); /* B != 0, so A has a gradient */
    float *before = malloc(m->layout.n_floats * sizeof *before);
    memcpy(before, m->mem, m->layout.n_floats * sizeof *before);
    rw_batch_t b;
    rw_batch_init(&b, 8, (size_t)cfg->max_len);
    fx_random_pairs(&b, 3, cfg->vocab, lc->head == RW_HEAD_CLASSIFIER ? lc->n_classes : 2, 5);
    rw_trainer_t *tr = new_trainer(m, lo, RW_TRAIN_ALL, 0, 0);
    gradcheck(tr, &b, what, cfg->n_experts > 0);
    rw_step_stats_t st;
    cr_assert_eq(rw_trainer_step(tr, &b, &st), 0);
    cr_assert_eq(memcmp(before, m->mem, m->layout.n_floats * sizeof *before), 0,
                 "%s: the frozen base changed", what);
    rw_trainer_destroy(&tr);
    rw_batch_fini(&b);
    free(before);
    rw_lora_destroy(&lo);
    rw_model_destroy(&m);
}

Test(gradcheck, lora_reward_all_targets)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 3;
    lc.alpha = 6.0f;
    check_lora(&cfg, &lc, "lora/reward");
    lc.targets |= RW_LORA_EMB; /* and the token embedding's */
    check_lora(&cfg, &lc, "lora/reward/emb");
}

Test(gradcheck, lora_classifier_on_the_embedding_alone)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 2;
    lc.targets = RW_LORA_EMB;
    lc.head = RW_HEAD_CLASSIFIER;
    lc.n_classes = 3;
    check_lora(&cfg, &lc, "lora/classifier/emb");
}

Test(gradcheck, lora_classifier_on_moe_base)
{
    rw_model_config_t cfg;
    fx_tiny_config(&cfg);
    cfg.n_experts = 3;
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 2;
    lc.targets = RW_LORA_Q | RW_LORA_K | RW_LORA_V | RW_LORA_O;
    lc.head = RW_HEAD_CLASSIFIER;
    lc.n_classes = 3;
    check_lora(&cfg, &lc, "lora/classifier/moe");
}
