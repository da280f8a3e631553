/* engine.c — allocation of the engine's buffers and the team jobs that run
 * the passes; see engine.h. The passes themselves are in forward.c,
 * backward.c and moe.c. */
#include "engine_impl.h"

#include "alloc.h"
#include "blas.h"
#include "err.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* Hands out consecutive pieces of one block; with mem == NULL only counts. */
typedef struct carver {
    float *mem;
    size_t used;
} carver_t;

static float *take(carver_t *c, size_t n)
{
    float *p = c->mem && n ? c->mem + c->used : NULL;
    c->used += n;
    return p;
}

static void carve_acts(rw_engine_t *e, carver_t *c)
{
    rw_acts_t *a = &e->a;
    size_t C = (size_t)e->cfg.d_model, F = (size_t)e->cfg.d_ff, E = (size_t)e->cfg.n_experts;
    size_t NH = (size_t)e->cfg.n_heads, Lc = e->train ? (size_t)e->cfg.n_layers : 1;
    size_t N = e->nmax, K = e->K;
    a->encoded = take(c, N * C);
    a->ln1 = take(c, Lc * N * C);
    a->ln1_mean = take(c, Lc * N);
    a->ln1_rstd = take(c, Lc * N);
    a->qkv = take(c, Lc * N * 3 * C);
    a->att = take(c, Lc * e->max_B * NH * e->max_T * e->max_T);
    a->atty = take(c, Lc * N * C);
    a->res2 = take(c, Lc * N * C);
    a->ln2 = take(c, Lc * N * C);
    a->ln2_mean = take(c, Lc * N);
    a->ln2_rstd = take(c, Lc * N);
    a->fch = take(c, Lc * N * K * F);
    a->fch_gelu = take(c, Lc * N * K * F);
    a->res3 = take(c, Lc * N * C);
    a->lnf = take(c, N * C);
    a->lnf_mean = take(c, N);
    a->lnf_rstd = take(c, N);
    a->gate_probs = take(c, Lc * N * E);
    a->moe_w = take(c, E ? Lc * N * K : 0);
    a->moe_x = take(c, E ? Lc * N * K * C : 0);
    a->moe_y = take(c, E ? Lc * N * K * C : 0);
}

static void carve_bufs(rw_engine_t *e, carver_t *c)
{
    rw_bufs_t *d = &e->d;
    size_t C = (size_t)e->cfg.d_model, F = (size_t)e->cfg.d_ff, E = (size_t)e->cfg.n_experts;
    size_t N = e->nmax, K = e->K;
    d->dres = take(c, N * C);
    d->dln = take(c, N * C);
    d->dqkv = take(c, N * 3 * C);
    d->datty = take(c, N * C);
    d->dfch = take(c, N * K * F);
    d->dmoe_y = take(c, E ? N * K * C : 0);
    d->dmoe_x = take(c, E ? N * K * C : 0);
    d->dgate = take(c, N * E);
    d->datt = take(c, (size_t)e->nthreads * e->max_T * e->max_T);
}

static float *alloc_carved(rw_engine_t *e, void (*carve)(rw_engine_t *, carver_t *))
{
    carver_t c = {NULL, 0};
    carve(e, &c);
    c.mem = rw_new_array(float, c.used ? c.used : 1);
    c.used = 0;
    carve(e, &c);
    return c.mem;
}

/* Adapter activations and the head's buffers, which depend on the adapter. */
static void alloc_adapter_bufs(rw_engine_t *e)
{
    rw_lora_t *lo = e->lora;
    size_t Lc = e->train ? (size_t)e->cfg.n_layers : 1, N = e->nmax;
    free(e->lora_mem);
    e->lora_mem = NULL;
    memset(e->a.lora_u, 0, sizeof e->a.lora_u);
    e->d.du = NULL;
    e->lora_rank = lo ? lo->cfg.rank : 0;
    if (lo) {
        size_t r = (size_t)lo->cfg.rank, n = 0;
        for (int i = 0; i < RW_LORA_NTARGETS; i++)
            n += (lo->cfg.targets >> i & 1) ? Lc * N * r : 0;
        n += e->train ? N * r : 0;
        e->lora_mem = rw_new_array(float, n);
        float *p = e->lora_mem;
        for (int i = 0; i < RW_LORA_NTARGETS; i++)
            if (lo->cfg.targets >> i & 1) {
                e->a.lora_u[i] = p;
                p += Lc * N * r;
            }
        e->d.du = e->train ? p : NULL;
    }
    e->outputs = lo ? rw_lora_outputs(&lo->cfg) : rw_model_config_outputs(&e->cfg);
    size_t C = (size_t)e->cfg.d_model, O = (size_t)e->outputs, B = e->max_B;
    free(e->head_mem);
    e->head_mem = rw_new_array(float, 2 * B * (C + O));
    e->a.pooled = e->head_mem;
    e->a.logits = e->a.pooled + B * C;
    e->d.dpooled = e->a.logits + B * O;
    e->d.dlogits = e->d.dpooled + B * C;
    /* gradients follow the trainable block: the adapter's, else the model's */
    if (e->train) {
        e->n_grad = lo ? lo->layout.n_floats : e->model->layout.n_floats;
        free(e->grad_mem);
        e->grad_mem = rw_new_array(float, rw_array_size((size_t)e->nthreads, e->n_grad));
    }
}

static int check_lora(const rw_engine_t *e, const rw_lora_t *lo)
{
    if (lo && memcmp(&lo->base, &e->cfg, sizeof e->cfg) != 0) {
        RW_ERROR("engine", "adapter was made for another model configuration");
        return RW_EINVAL;
    }
    return 0;
}

int rw_engine_new(rw_engine_t **engine_p, rw_model_t *model, rw_lora_t *lora, size_t max_B,
                  size_t max_T, int threads, int train)
{
    *engine_p = NULL;
    if (max_B < 1 || max_T < 1 || max_T > (size_t)model->cfg.max_len || max_B > (1u << 20))
        return RW_EINVAL;
    rw_engine_t *e = rw_new(rw_engine_t);
    e->model = model;
    e->cfg = model->cfg;
    int rc = check_lora(e, lora);
    if (rc < 0)
        goto fail_lora;
    rc = rw_team_new(&e->team, threads);
    if (rc < 0)
        goto fail_team;
    e->lora = lora;
    e->nthreads = rw_team_size(e->team);
    e->max_B = max_B;
    e->max_T = max_T;
    e->nmax = max_B * max_T;
    e->K = e->cfg.n_experts ? (size_t)e->cfg.top_k : 1;
    e->train = train != 0;
    e->acts_mem = alloc_carved(e, carve_acts);
    size_t Lc = e->train ? (size_t)e->cfg.n_layers : 1, E = (size_t)e->cfg.n_experts;
    size_t nk = E ? Lc * e->nmax * e->K : 0, noff = E ? Lc * (size_t)e->nthreads * (E + 1) : 0;
    e->iacts_mem = rw_new_array(int32_t, 3 * nk + noff + 1);
    e->a.moe_idx = E ? e->iacts_mem : NULL;
    e->a.moe_slot = E ? e->a.moe_idx + nk : NULL;
    e->a.moe_row = E ? e->a.moe_slot + nk : NULL;
    e->a.moe_off = E ? e->a.moe_row + nk : NULL;
    e->moe_stats =
        rw_new_array(double, (size_t)e->nthreads *(size_t)e->cfg.n_layers *RW_MOE_STATS(E));
    e->lb_scale = rw_new_array(float, (size_t)e->cfg.n_layers *(E ? E : 1));
    if (e->train)
        e->bufs_mem = alloc_carved(e, carve_bufs);
    alloc_adapter_bufs(e);
    *engine_p = e;
    return 0;

fail_team:
fail_lora:
    free(e);
    return rc;
}

void rw_engine_destroy(rw_engine_t **engine_p)
{
    rw_engine_t *e = engine_p ? *engine_p : NULL;
    if (!e)
        return;
    rw_team_destroy(&e->team);
    free(e->acts_mem);
    free(e->iacts_mem);
    free(e->lora_mem);
    free(e->head_mem);
    free(e->bufs_mem);
    free(e->moe_stats);
    free(e->grad_mem);
    free(e->lb_scale);
    free(e);
    *engine_p = NULL;
}

int rw_engine_set_lora(rw_engine_t *e, rw_lora_t *lora)
{
    int rc = check_lora(e, lora);
    if (rc < 0)
        return rc;
    e->lora = lora;
    alloc_adapter_bufs(e);
    return 0;
}

rw_lora_t *rw_engine_lora(const rw_engine_t *e)
{
    return e->lora;
}

int rw_engine_threads(const rw_engine_t *e)
{
    return e->nthreads;
}

size_t rw_engine_max_batch(const rw_engine_t *e)
{
    return e->max_B;
}

size_t rw_engine_max_len(const rw_engine_t *e)
{
    return e->max_T;
}

int rw_engine_outputs(const rw_engine_t *e)
{
    return e->outputs;
}

rw_head_t rw_engine_head(const rw_engine_t *e)
{
    return e->lora ? e->lora->cfg.head : e->cfg.head;
}

int rw__engine_blas_enter(const rw_engine_t *e)
{
    if (e->nthreads <= 1)
        return 0;
    int old = rw_blas_threads();
    rw_blas_set_threads(1);
    return old;
}

void rw__engine_blas_leave(int old)
{
    if (old > 0)
        rw_blas_set_threads(old);
}

static int validate_batch(const rw_engine_t *e, const rw_batch_t *b)
{
    if (b->B < 1 || b->B > e->max_B || b->T < 1 || b->T > e->max_T || b->ld < b->T)
        return RW_EINVAL;
    for (size_t i = 0; i < b->B; i++) {
        if (b->lens[i] < 1 || (size_t)b->lens[i] > b->T)
            return RW_EINVAL;
        const int32_t *row = b->ids + i * b->ld;
        for (size_t t = 0; t < b->T; t++)
            if (row[t] < 0 || row[t] >= e->cfg.vocab)
                return RW_EINVAL;
    }
    return 0;
}

static void forward_job(void *ctx, int tid, int n)
{
    rw_engine_t *e = ctx;
    size_t b0, b1;
    rw_team_range(e->B, n, tid, &b0, &b1);
    size_t ns = (size_t)e->cfg.n_layers * RW_MOE_STATS(e->cfg.n_experts);
    memset(e->moe_stats + (size_t)tid * ns, 0, ns * sizeof(double));
    if (b0 < b1)
        rw__forward_slice(e, tid, b0, b1);
}

int rw__engine_run_forward(rw_engine_t *e, const rw_batch_t *batch)
{
    int rc = validate_batch(e, batch);
    if (rc < 0)
        return rc;
    e->batch = batch;
    e->B = batch->B;
    e->T = batch->T;
    rw_team_run(e->team, forward_job, e);
    return 0;
}

int rw_engine_forward(rw_engine_t *e, const rw_batch_t *batch, float *out)
{
    int old = rw__engine_blas_enter(e);
    int rc = rw__engine_run_forward(e, batch);
    rw__engine_blas_leave(old);
    if (rc == 0)
        memcpy(out, e->a.logits, batch->B * (size_t)e->outputs * sizeof(float));
    return rc;
}

static void backward_job(void *ctx, int tid, int n)
{
    rw_engine_t *e = ctx;
    memset(e->grad_mem + (size_t)tid * e->n_grad, 0, e->n_grad * sizeof(float));
    size_t b0, b1;
    rw_team_range(e->B, n, tid, &b0, &b1);
    if (b0 < b1)
        rw__backward_slice(e, tid, b0, b1);
}

/* Block 0 += blocks 1..n-1, each member summing its own range in chunks
 * that stay in cache, in a fixed order so the result does not depend on
 * timing; each summed chunk then goes to e->on_grads. */
#define REDUCE_CHUNK 8192
static void reduce_job(void *ctx, int tid, int n)
{
    rw_engine_t *e = ctx;
    size_t lo, hi;
    rw_team_range(e->n_grad, n, tid, &lo, &hi);
    float *g0 = e->grad_mem;
    for (size_t c = lo; c < hi; c += REDUCE_CHUNK) {
        size_t ce = c + REDUCE_CHUNK < hi ? c + REDUCE_CHUNK : hi;
        for (int t = 1; t < n; t++) {
            const float *gt = e->grad_mem + (size_t)t * e->n_grad;
            for (size_t i = c; i < ce; i++)
                g0[i] += gt[i];
        }
        if (e->on_grads)
            e->on_grads(e->on_grads_ctx, tid, g0, c, ce);
    }
}

void rw__engine_run_backward(rw_engine_t *e, rw_grads_fn on_grads, void *ctx)
{
    rw_team_run(e->team, backward_job, e);
    if (e->nthreads > 1 || on_grads) {
        e->on_grads = on_grads;
        e->on_grads_ctx = ctx;
        rw_team_run(e->team, reduce_job, e);
        e->on_grads = NULL;
    }
}

float *rw__engine_grads(rw_engine_t *e)
{
    return e->grad_mem;
}

const rw_layout_t *rw__engine_grad_layout(const rw_engine_t *e)
{
    return e->lora ? &e->lora->layout : &e->model->layout;
}

void rw__engine_moe_stats(const rw_engine_t *e, size_t l, double *out)
{
    size_t ns = RW_MOE_STATS(e->cfg.n_experts), L = (size_t)e->cfg.n_layers;
    memset(out, 0, ns * sizeof *out);
    for (int t = 0; t < e->nthreads; t++) {
        const double *s = e->moe_stats + ((size_t)t * L + l) * ns;
        for (size_t i = 0; i < ns; i++)
            out[i] += s[i];
    }
}

void rw__layer_acts(const rw_engine_t *e, size_t l, size_t b0, rw_layer_acts_t *v)
{
    const rw_acts_t *a = &e->a;
    size_t C = (size_t)e->cfg.d_model, F = (size_t)e->cfg.d_ff, NH = (size_t)e->cfg.n_heads;
    size_t N = e->nmax, li = rw__li(e, l), r0 = b0 * e->T, K = e->K;
    size_t row = li * N + r0; /* row of (L, N, .) tensors */
    v->resid = l == 0 ? a->encoded + r0 * C : a->res3 + (rw__li(e, l - 1) * N + r0) * C;
    v->ln1 = a->ln1 + row * C;
    v->ln1_mean = a->ln1_mean + row;
    v->ln1_rstd = a->ln1_rstd + row;
    v->qkv = a->qkv + row * 3 * C;
    v->att = a->att + li * e->max_B * NH * e->max_T * e->max_T + b0 * NH * e->T * e->T;
    v->atty = a->atty + row * C;
    v->res2 = a->res2 + row * C;
    v->ln2 = a->ln2 + row * C;
    v->ln2_mean = a->ln2_mean + row;
    v->ln2_rstd = a->ln2_rstd + row;
    v->fch = a->fch + (li * N + r0) * K * F;
    v->fch_gelu = a->fch_gelu + (li * N + r0) * K * F;
    v->res3 = a->res3 + row * C;
    for (int i = 0; i < RW_LORA_NTARGETS; i++)
        v->lora_u[i] = a->lora_u[i] ? a->lora_u[i] + row * (size_t)e->lora_rank : NULL;
}

void rw__params_layer(const rw_model_config_t *cfg, const rw_params_t *p, size_t l,
                      rw_params_t *out)
{
    size_t C = (size_t)cfg->d_model, F = (size_t)cfg->d_ff, E = (size_t)cfg->n_experts;
    size_t X = E ? E : 1;
    *out = *p;
#define SLICE(f, size) out->f = p->f ? p->f + l * (size) : NULL
    SLICE(ln1w, C);
    SLICE(ln1b, C);
    SLICE(qkvw, 3 * C * C);
    SLICE(qkvb, 3 * C);
    SLICE(attprojw, C * C);
    SLICE(attprojb, C);
    SLICE(ln2w, C);
    SLICE(ln2b, C);
    SLICE(fcw, X * F * C);
    SLICE(fcb, X * F);
    SLICE(fcprojw, X * C * F);
    SLICE(fcprojb, X * C);
    SLICE(gatew, E * rw_model_gate_inputs(cfg));
#undef SLICE
}

void rw__lora_layer(const rw_lora_t *lo, const rw_lora_params_t *p, size_t l, rw_lora_params_t *out)
{
    size_t r = (size_t)lo->cfg.rank;
    *out = *p;
    for (int i = 0; i < RW_LORA_NTARGETS; i++) {
        size_t in, od;
        rw_lora_target_dims(&lo->base, i, &in, &od);
        out->a[i] = p->a[i] ? p->a[i] + l * r * in : NULL;
        out->b[i] = p->b[i] ? p->b[i] + l * od * r : NULL;
    }
}
