/* train.c — losses, the training step and the training loop; see train.h. */
#include "train.h"

#include "jsontext.h"

#include "alloc.h"
#include "engine_impl.h"
#include "err.h"
#include "log.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct rw_trainer {
    rw_train_config_t cfg;
    rw_model_t *model;
    rw_lora_t *lora;
    rw_engine_t *engine;
    const rw_layout_t *layout; /* of the trained block */
    float *params;             /* the trained block (model's or adapter's) */
    unsigned char trainable[RW_LAYOUT_MAX_TENSORS];
    float *m, *v; /* AdamW moments, one block */
    long updates, skipped;
    rw_batch_t batch; /* for rw_trainer_run */
    /* the update in flight, shared with the team jobs */
    double partial[256];
    float lr, gscale;
};

void rw_train_config_default(rw_train_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    rw_adamw_config_default(&cfg->opt);
    cfg->grad_clip = 1.0f;
    cfg->lb_coef = 0.01f;
    cfg->gate_coef = 0.0f;
    cfg->part = RW_TRAIN_ALL;
    cfg->threads = 0;
    cfg->max_batch = 32;
    cfg->max_len = 0;
}

char *rw_train_config_to_json(const rw_train_config_t *c)
{
    static const char *const decays[] = {"cosine", "linear", "constant"};
    json_t *o = json_pack(
        "{s:f, s:f, s:I, s:I, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:s, s:i, s:I, s:I}", "lr",
        (double)c->opt.lr, "min_lr", (double)c->opt.min_lr, "warmup_steps",
        (json_int_t)c->opt.warmup_steps, "total_steps", (json_int_t)c->opt.total_steps, "decay",
        decays[c->opt.decay], "beta1", (double)c->opt.beta1, "beta2", (double)c->opt.beta2, "eps",
        (double)c->opt.eps, "weight_decay", (double)c->opt.weight_decay, "grad_clip",
        (double)c->grad_clip, "lb_coef", (double)c->lb_coef, "gate_coef", (double)c->gate_coef,
        "part",
        c->part == RW_TRAIN_GATES ? "gates"
        : c->part == RW_TRAIN_FFN ? "ffn"
                                  : "all",
        "threads", c->threads, "max_batch", (json_int_t)c->max_batch, "max_len",
        (json_int_t)c->max_len);
    return rw_json_text(o);
}

static int get_num(json_t *o, const char *key, double *v)
{
    json_t *x = json_object_get(o, key);
    if (!x)
        return 0;
    if (!json_is_number(x))
        return RW_EPARSE;
    *v = json_number_value(x);
    return 1;
}

int rw_train_config_from_json(const char *text, rw_train_config_t *c)
{
    rw_train_config_default(c);
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return RW_EPARSE;
    }
    struct {
        const char *key;
        float *f;
        long *l;
        int *i;
        size_t *z;
    } fields[] = {
        {"lr", &c->opt.lr, NULL, NULL, NULL},
        {"min_lr", &c->opt.min_lr, NULL, NULL, NULL},
        {"warmup_steps", NULL, &c->opt.warmup_steps, NULL, NULL},
        {"total_steps", NULL, &c->opt.total_steps, NULL, NULL},
        {"beta1", &c->opt.beta1, NULL, NULL, NULL},
        {"beta2", &c->opt.beta2, NULL, NULL, NULL},
        {"eps", &c->opt.eps, NULL, NULL, NULL},
        {"weight_decay", &c->opt.weight_decay, NULL, NULL, NULL},
        {"grad_clip", &c->grad_clip, NULL, NULL, NULL},
        {"lb_coef", &c->lb_coef, NULL, NULL, NULL},
        {"gate_coef", &c->gate_coef, NULL, NULL, NULL},
        {"threads", NULL, NULL, &c->threads, NULL},
        {"max_batch", NULL, NULL, NULL, &c->max_batch},
        {"max_len", NULL, NULL, NULL, &c->max_len},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0] && rc >= 0; i++) {
        double v;
        rc = get_num(o, fields[i].key, &v);
        /* the casts below are defined only in range: a whole-number field
         * past an int (threads 3e9) or any field not finite is refused */
        double lim = fields[i].i ? 2147483647.0 : fields[i].f ? 3.4e38 : 9.0e15;
        if (rc == 1 && !(v >= -lim && v <= lim)) {
            RW_ERROR("train", "invalid configuration: %s %g is out of range", fields[i].key, v);
            rc = RW_EINVAL;
            break;
        }
        if (rc == 1 && fields[i].f)
            *fields[i].f = (float)v;
        else if (rc == 1 && fields[i].l)
            *fields[i].l = (long)v;
        else if (rc == 1 && fields[i].i)
            *fields[i].i = (int)v;
        else if (rc == 1 && fields[i].z)
            *fields[i].z = v < 0 ? 0 : (size_t)v;
    }
    const char *decay = json_string_value(json_object_get(o, "decay"));
    const char *part = json_string_value(json_object_get(o, "part"));
    if (decay)
        c->opt.decay = strcmp(decay, "linear") == 0     ? RW_DECAY_LINEAR
                       : strcmp(decay, "constant") == 0 ? RW_DECAY_CONSTANT
                                                        : RW_DECAY_COSINE;
    if (part)
        c->part = strcmp(part, "gates") == 0 ? RW_TRAIN_GATES
                  : strcmp(part, "ffn") == 0 ? RW_TRAIN_FFN
                                             : RW_TRAIN_ALL;
    json_decref(o);
    if (rc >= 0 && (c->max_batch < 2 || c->max_batch > 65536 || c->threads < 0 ||
                    c->threads > 256 || !(c->opt.lr >= 0.0f) || c->opt.warmup_steps < 0)) {
        RW_ERROR("train",
                 "invalid configuration: max_batch %zu (2..65536), threads %d (0..256), "
                 "lr %g, warmup_steps %ld",
                 c->max_batch, c->threads, (double)c->opt.lr, c->opt.warmup_steps);
        return RW_EINVAL;
    }
    return rc < 0 ? rc : 0;
}

static int check_config(const rw_train_config_t *c, const rw_model_t *model, const rw_lora_t *lo)
{
    if (c->max_batch < 1 || c->max_len > (size_t)model->cfg.max_len || !(c->opt.lr >= 0.0f) ||
        !(c->grad_clip >= 0.0f) || c->opt.beta1 < 0.0f || c->opt.beta1 >= 1.0f ||
        c->opt.beta2 < 0.0f || c->opt.beta2 >= 1.0f || !(c->opt.eps > 0.0f) ||
        c->opt.warmup_steps < 0) {
        RW_ERROR("train", "invalid training configuration");
        return RW_EINVAL;
    }
    if (c->part == RW_TRAIN_GATES && (!model->cfg.n_experts || lo)) {
        RW_ERROR("train", "training the gates alone needs an MoE model and no adapter");
        return RW_EINVAL;
    }
    if (c->part == RW_TRAIN_FFN && lo) {
        RW_ERROR("train", "an adapter trains its own weights, not the feed-forward blocks");
        return RW_EINVAL;
    }
    return 0;
}

int rw_trainer_new(rw_trainer_t **tr_p, rw_model_t *model, rw_lora_t *lora,
                   const rw_train_config_t *cfg)
{
    *tr_p = NULL;
    int rc = check_config(cfg, model, lora);
    if (rc < 0)
        return rc;
    rw_trainer_t *tr = rw_new(rw_trainer_t);
    tr->cfg = *cfg;
    size_t max_T = cfg->max_len ? cfg->max_len : (size_t)model->cfg.max_len;
    rc = rw_engine_new(&tr->engine, model, lora, cfg->max_batch, max_T, cfg->threads, 1);
    if (rc < 0)
        goto fail_engine;
    tr->model = model;
    tr->lora = lora;
    tr->layout = lora ? &lora->layout : &model->layout;
    tr->params = lora ? lora->mem : model->mem;
    for (size_t i = 0; i < tr->layout->n_tensors; i++) {
        const rw_tensor_t *t = &tr->layout->t[i];
        int ffn = strncmp(t->name, "fc", 2) == 0;
        tr->trainable[i] =
            t->n > 0 && (cfg->part == RW_TRAIN_ALL || (cfg->part == RW_TRAIN_GATES && t->gate) ||
                         (cfg->part == RW_TRAIN_FFN && ffn));
    }
    tr->engine->gates_only = cfg->part == RW_TRAIN_GATES;
    tr->m = calloc(tr->layout->n_floats, sizeof(float));
    tr->v = calloc(tr->layout->n_floats, sizeof(float));
    if (!tr->m || !tr->v) {
        rc = RW_ENOMEM;
        goto fail_moments;
    }
    rw_batch_init(&tr->batch, cfg->max_batch, max_T);
    *tr_p = tr;
    return 0;

fail_moments:
    free(tr->m);
    free(tr->v);
    rw_engine_destroy(&tr->engine);
fail_engine:
    free(tr);
    return rc;
}

size_t rw_trainer_bytes(const rw_model_config_t *model, const rw_lora_config_t *lora,
                        const rw_train_config_t *cfg)
{
    size_t max_T = cfg->max_len ? cfg->max_len : (size_t)model->max_len;
    size_t engine = rw_engine_bytes(model, lora, cfg->max_batch, max_T, cfg->threads, 1);
    if (engine == SIZE_MAX)
        return SIZE_MAX;
    rw_layout_t layout;
    if (lora)
        rw_lora_layout(lora, model, &layout);
    else
        rw_model_layout(model, &layout);
    /* the engine holds max_batch * max_T rows, so the batch's ids fit too */
    size_t own = (2 * layout.n_floats + cfg->max_batch * (max_T + 2)) * sizeof(float);
    return engine > SIZE_MAX - own ? SIZE_MAX : engine + own;
}

void rw_trainer_destroy(rw_trainer_t **tr_p)
{
    rw_trainer_t *tr = tr_p ? *tr_p : NULL;
    if (!tr)
        return;
    rw_engine_destroy(&tr->engine);
    free(tr->m);
    free(tr->v);
    rw_batch_fini(&tr->batch);
    free(tr);
    *tr_p = NULL;
}

/* Bradley-Terry over pairs (2i, 2i+1): loss, accuracy, margin, dlogits. */
static void pairwise_loss(const float *r, float *dr, size_t B, rw_step_stats_t *st)
{
    size_t P = B / 2;
    double loss = 0.0, hits = 0.0, margin = 0.0;
    for (size_t i = 0; i < P; i++) {
        double d = (double)r[2 * i] - (double)r[2 * i + 1];
        /* -log sigmoid(d) = softplus(-d), computed without overflow */
        loss += d > 0 ? log1p(exp(-d)) : -d + log1p(exp(d));
        double s = 1.0 / (1.0 + exp(d)); /* sigmoid(-d) */
        dr[2 * i] = (float)(-s / (double)P);
        dr[2 * i + 1] = (float)(s / (double)P);
        hits += d > 0;
        margin += d;
    }
    st->n = P;
    st->main_loss = loss / (double)P;
    st->accuracy = hits / (double)P;
    st->margin = margin / (double)P;
}

/* Cross-entropy of logits (B,O) against labels: loss, accuracy, dlogits. */
static void class_loss(const float *x, float *dx, const int32_t *labels, size_t B, size_t O,
                       rw_step_stats_t *st)
{
    double loss = 0.0, hits = 0.0;
    for (size_t b = 0; b < B; b++) {
        const float *xb = x + b * O;
        size_t arg = 0;
        for (size_t j = 1; j < O; j++)
            arg = xb[j] > xb[arg] ? j : arg;
        double sum = 0.0;
        for (size_t j = 0; j < O; j++)
            sum += exp((double)xb[j] - (double)xb[arg]);
        size_t y = (size_t)labels[b];
        loss += log(sum) - ((double)xb[y] - (double)xb[arg]);
        for (size_t j = 0; j < O; j++) {
            double p = exp((double)xb[j] - (double)xb[arg]) / sum;
            dx[b * O + j] = (float)((p - (j == y ? 1.0 : 0.0)) / (double)B);
        }
        hits += arg == y;
    }
    st->n = B;
    st->main_loss = loss / (double)B;
    st->accuracy = hits / (double)B;
}

/* The MoE losses from the forward statistics, and their gradient scales. */
static void moe_losses(rw_trainer_t *tr, rw_step_stats_t *st)
{
    rw_engine_t *e = tr->engine;
    size_t L = (size_t)e->cfg.n_layers, E = (size_t)e->cfg.n_experts, K = e->K;
    int gates = tr->cfg.part == RW_TRAIN_GATES;
    float lb_coef = gates ? 0.0f : tr->cfg.lb_coef, gce_coef = gates ? 1.0f : tr->cfg.gate_coef;
    double s[RW_MOE_STATS(64)], lb = 0.0, gce = 0.0, hits = 0.0, nlab = 0.0;
    e->gce_scale = 0.0f;
    for (size_t l = 0; l < L; l++) {
        rw__engine_moe_stats(e, l, s);
        double nv = s[RW_MS_NVALID], *cnt = s + 4, *psum = s + 4 + E, lb_l = 0.0;
        for (size_t x = 0; x < E; x++) {
            double f = nv > 0 ? cnt[x] / (nv * (double)K) : 0.0;
            lb_l += (double)E * f * (nv > 0 ? psum[x] / nv : 0.0);
            e->lb_scale[l * E + x] =
                nv > 0 ? (float)(lb_coef * (double)E * f / ((double)L * nv)) : 0.0f;
        }
        lb += lb_l / (double)L;
        if (s[RW_MS_NLAB] > 0) {
            gce += s[RW_MS_GCE] / s[RW_MS_NLAB] / (double)L;
            e->gce_scale = (float)(gce_coef / ((double)L * s[RW_MS_NLAB]));
        }
        hits += s[RW_MS_GHIT];
        nlab += s[RW_MS_NLAB];
    }
    st->lb_loss = lb;
    st->gate_loss = gce;
    if (gates) {
        st->accuracy = nlab > 0 ? hits / nlab : 0.0;
        st->loss = gce;
    } else {
        st->loss += (double)lb_coef * lb + (double)gce_coef * gce;
    }
}

static int check_labels(const rw_trainer_t *tr, const rw_batch_t *b)
{
    int O = rw_engine_outputs(tr->engine);
    int classify = (tr->lora ? tr->lora->cfg.head : tr->model->cfg.head) == RW_HEAD_CLASSIFIER;
    if (tr->cfg.part == RW_TRAIN_GATES) {
        for (size_t i = 0; i < b->B; i++)
            if (b->labels[i] >= 0 && b->labels[i] < tr->model->cfg.n_experts)
                return 0;
        return RW_EINVAL; /* nothing to learn from */
    }
    if (!classify)
        return b->B % 2 == 0 ? 0 : RW_EINVAL;
    for (size_t i = 0; i < b->B; i++)
        if (b->labels[i] < 0 || b->labels[i] >= O)
            return RW_EINVAL;
    return 0;
}

/* Forward pass and the losses; leaves dlogits and the MoE scales set. */
static int forward_loss(rw_trainer_t *tr, const rw_batch_t *batch, rw_step_stats_t *st)
{
    rw_engine_t *e = tr->engine;
    memset(st, 0, sizeof *st);
    int rc = check_labels(tr, batch);
    if (rc < 0)
        return rc;
    rc = rw__engine_run_forward(e, batch);
    if (rc < 0)
        return rc;
    size_t B = batch->B, O = (size_t)e->outputs;
    if (tr->cfg.part == RW_TRAIN_GATES) {
        memset(e->d.dlogits, 0, B * O * sizeof(float));
        st->n = B;
    } else if (O == 1 && (tr->lora ? tr->lora->cfg.head : tr->model->cfg.head) == RW_HEAD_REWARD) {
        pairwise_loss(e->a.logits, e->d.dlogits, B, st);
    } else {
        class_loss(e->a.logits, e->d.dlogits, batch->labels, B, O, st);
    }
    st->loss = st->main_loss;
    if (e->cfg.n_experts)
        moe_losses(tr, st);
    return 0;
}

int rw_trainer_loss(rw_trainer_t *tr, const rw_batch_t *batch, rw_step_stats_t *st)
{
    rw_step_stats_t local;
    int old = rw__engine_blas_enter(tr->engine);
    int rc = forward_loss(tr, batch, st ? st : &local);
    rw__engine_blas_leave(old);
    return rc;
}

static void sumsq_range(void *ctx, int tid, const float *g, size_t lo, size_t hi)
{
    rw_trainer_t *tr = ctx;
    tr->partial[tid] = rw_optim_sumsq(tr->layout, tr->trainable, g, lo, hi, tr->partial[tid]);
}

static int gradient(rw_trainer_t *tr, const rw_batch_t *batch, rw_step_stats_t *st)
{
    int rc = forward_loss(tr, batch, st);
    if (rc < 0)
        return rc;
    int n = tr->engine->nthreads;
    memset(tr->partial, 0, (size_t)n * sizeof tr->partial[0]);
    rw__engine_run_backward(tr->engine, sumsq_range, tr);
    double s = 0.0;
    for (int t = 0; t < n; t++)
        s += tr->partial[t];
    st->grad_norm = sqrt(s);
    return 0;
}

int rw_trainer_gradient(rw_trainer_t *tr, const rw_batch_t *batch, rw_step_stats_t *st)
{
    rw_step_stats_t local;
    int old = rw__engine_blas_enter(tr->engine);
    int rc = gradient(tr, batch, st ? st : &local);
    rw__engine_blas_leave(old);
    return rc;
}

static void adamw_job(void *ctx, int tid, int n)
{
    rw_trainer_t *tr = ctx;
    size_t lo, hi;
    rw_team_range(tr->layout->n_floats, n, tid, &lo, &hi);
    rw_adamw_update(&tr->cfg.opt, tr->layout, tr->trainable, tr->params,
                    rw__engine_grads(tr->engine), tr->m, tr->v, lo, hi, tr->lr, tr->gscale,
                    tr->updates + 1);
}

int rw_trainer_step(rw_trainer_t *tr, const rw_batch_t *batch, rw_step_stats_t *st)
{
    rw_step_stats_t local;
    if (!st)
        st = &local;
    double t0 = rw_now_s();
    int old = rw__engine_blas_enter(tr->engine);
    int rc = gradient(tr, batch, st);
    if (rc < 0)
        goto done;
    st->lr = rw_adamw_lr(&tr->cfg.opt, tr->updates);
    if (!isfinite(st->loss) || !isfinite(st->grad_norm)) {
        st->skipped = 1;
        tr->skipped++;
        RW_WARN("train", "step %ld skipped: non-finite loss %g or gradient norm %g; no update",
                tr->updates + tr->skipped, st->loss, st->grad_norm);
    } else {
        float clip = tr->cfg.grad_clip;
        tr->gscale = clip > 0.0f && st->grad_norm > clip ? (float)(clip / st->grad_norm) : 1.0f;
        tr->lr = (float)st->lr;
        rw_team_run(tr->engine->team, adamw_job, tr);
        tr->updates++;
    }
    st->step = tr->updates;
    st->seconds = rw_now_s() - t0;
    st->pairs_per_s = st->seconds > 0 ? (double)st->n / st->seconds : 0.0;
    st->gflops =
        st->seconds > 0 ? rw_trainer_step_flops(tr, batch->B, batch->T) / st->seconds * 1e-9 : 0.0;
done:
    rw__engine_blas_leave(old);
    return rc;
}

char *rw_step_stats_format(const rw_step_stats_t *st, char *buf, size_t n)
{
    int k = snprintf(buf, n,
                     "step %ld  loss %.4f  acc %.3f  margin %.3f  grad %.3f  lr %.2e  "
                     "%.1f pairs/s  %.1f GFLOP/s",
                     st->step, st->loss, st->accuracy, st->margin, st->grad_norm, st->lr,
                     st->pairs_per_s, st->gflops);
    if (k >= 0 && (size_t)k < n && (st->lb_loss > 0 || st->gate_loss > 0))
        k += snprintf(buf + k, n - (size_t)k, "  lb %.4f  gate %.4f", st->lb_loss, st->gate_loss);
    if (k >= 0 && (size_t)k < n && st->skipped)
        snprintf(buf + k, n - (size_t)k, "  SKIPPED (non-finite)");
    return buf;
}

int rw_trainer_run(rw_trainer_t *tr, long n_steps, rw_next_batch_fn next, rw_on_step_fn on_step,
                   void *ctx)
{
    for (long i = 0; i < n_steps; i++) {
        rw_batch_clear(&tr->batch);
        int rc = next(ctx, tr->updates + tr->skipped, &tr->batch);
        if (rc < 0)
            return rc;
        rw_step_stats_t st;
        rc = rw_trainer_step(tr, &tr->batch, &st);
        if (rc < 0)
            return rc;
        if (!on_step) {
            char line[256];
            RW_INFO("train", "%s", rw_step_stats_format(&st, line, sizeof line));
        } else if ((rc = on_step(ctx, &st)) != 0) {
            return rc;
        }
    }
    return 0;
}

const rw_layout_t *rw_trainer_layout(const rw_trainer_t *tr)
{
    return tr->layout;
}

float *rw_trainer_params(rw_trainer_t *tr)
{
    return tr->params;
}

const float *rw_trainer_grads(rw_trainer_t *tr)
{
    return rw__engine_grads(tr->engine);
}

int rw_trainer_trainable(const rw_trainer_t *tr, size_t i)
{
    return i < tr->layout->n_tensors && tr->trainable[i];
}

float *rw_trainer_moment(rw_trainer_t *tr, int which)
{
    return which == 1 ? tr->m : tr->v;
}

long rw_trainer_updates(const rw_trainer_t *tr)
{
    return tr->updates;
}

long rw_trainer_skipped(const rw_trainer_t *tr)
{
    return tr->skipped;
}

void rw_trainer_set_counts(rw_trainer_t *tr, long updates, long skipped)
{
    tr->updates = updates;
    tr->skipped = skipped;
}

const rw_train_config_t *rw_trainer_config(const rw_trainer_t *tr)
{
    return &tr->cfg;
}

rw_model_t *rw_trainer_model(const rw_trainer_t *tr)
{
    return tr->model;
}

rw_lora_t *rw_trainer_lora(const rw_trainer_t *tr)
{
    return tr->lora;
}

rw_engine_t *rw_trainer_engine(rw_trainer_t *tr)
{
    return tr->engine;
}

double rw_trainer_step_flops(const rw_trainer_t *tr, size_t B, size_t T)
{
    double fwd = rw_model_flops_forward(&tr->model->cfg, B, T);
    if (!tr->lora && tr->cfg.part != RW_TRAIN_GATES)
        return 3.0 * fwd; /* backward: input and weight gradients, 2x forward */
    double extra = 0.0;
    if (tr->lora) {
        size_t r = (size_t)tr->lora->cfg.rank, L = (size_t)tr->model->cfg.n_layers;
        for (int i = 0; i < RW_LORA_NTARGETS; i++)
            if (tr->lora->cfg.targets >> i & 1) {
                size_t in, out;
                rw_lora_target_dims(&tr->model->cfg, i, &in, &out);
                extra += 3.0 * 2.0 * (double)(B * T * L * r * (in + out));
            }
        if (tr->lora->cfg.targets & RW_LORA_EMB) /* one (C, r) product a token */
            extra += 3.0 * 2.0 * (double)(B * T * r * (size_t)tr->model->cfg.d_model);
    }
    return 2.0 * fwd + extra; /* frozen weights: no weight gradients */
}
