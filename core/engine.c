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

/* Sizes here are checked products: a shape whose buffers cannot fit in an
 * address space counts as SIZE_MAX, which no allocation meets, so the engine
 * says RW_ENOMEM instead of allocating a size that wrapped around. */
static size_t product(const size_t *f, size_t n)
{
    size_t p = 1;
    for (size_t i = 0; i < n; i++) {
        if (f[i] == 0)
            return 0;
        if (p > SIZE_MAX / f[i])
            p = SIZE_MAX;
        else
            p *= f[i];
    }
    return p;
}
#define PRODUCT(...)                                                                               \
    product((const size_t[]){__VA_ARGS__}, sizeof((const size_t[]){__VA_ARGS__}) / sizeof(size_t))

static size_t sum(size_t a, size_t b)
{
    return b > SIZE_MAX - a ? SIZE_MAX : a + b;
}

/* Hands out consecutive pieces of one block; with mem == NULL only counts. */
typedef struct carver {
    float *mem;
    size_t used;
} carver_t;

static float *take(carver_t *c, size_t n)
{
    float *p = c->mem && n ? c->mem + c->used : NULL;
    c->used = sum(c->used, n);
    return p;
}

static void carve_acts(rw_engine_t *e, carver_t *c)
{
    rw_acts_t *a = &e->a;
    size_t C = (size_t)e->cfg.d_model, F = (size_t)e->cfg.d_ff, E = (size_t)e->cfg.n_experts;
    size_t NH = (size_t)e->cfg.n_heads, Lc = e->train ? (size_t)e->cfg.n_layers : 1;
    size_t N = e->nmax, K = e->K, LcE = E ? Lc : 0;
    a->encoded = take(c, PRODUCT(N, C));
    a->ln1 = take(c, PRODUCT(Lc, N, C));
    a->ln1_mean = take(c, PRODUCT(Lc, N));
    a->ln1_rstd = take(c, PRODUCT(Lc, N));
    a->qkv = take(c, PRODUCT(Lc, N, 3, C));
    a->att = take(c, PRODUCT(Lc, e->max_B, NH, e->max_T, e->max_T));
    a->atty = take(c, PRODUCT(Lc, N, C));
    a->res2 = take(c, PRODUCT(Lc, N, C));
    a->ln2 = take(c, PRODUCT(Lc, N, C));
    a->ln2_mean = take(c, PRODUCT(Lc, N));
    a->ln2_rstd = take(c, PRODUCT(Lc, N));
    a->fch = take(c, PRODUCT(Lc, N, K, F));
    a->fch_gelu = take(c, PRODUCT(Lc, N, K, F));
    a->res3 = take(c, PRODUCT(Lc, N, C));
    a->lnf = take(c, PRODUCT(N, C));
    a->lnf_mean = take(c, N);
    a->lnf_rstd = take(c, N);
    a->gate_probs = take(c, PRODUCT(Lc, N, E));
    a->moe_w = take(c, PRODUCT(LcE, N, K));
    a->moe_x = take(c, PRODUCT(LcE, N, K, C));
    a->moe_y = take(c, PRODUCT(LcE, N, K, C));
}

static void carve_bufs(rw_engine_t *e, carver_t *c)
{
    rw_bufs_t *d = &e->d;
    size_t C = (size_t)e->cfg.d_model, F = (size_t)e->cfg.d_ff, E = (size_t)e->cfg.n_experts;
    size_t N = e->nmax, K = e->K;
    d->dres = take(c, PRODUCT(N, C));
    d->dln = take(c, PRODUCT(N, C));
    d->dqkv = take(c, PRODUCT(N, 3, C));
    d->datty = take(c, PRODUCT(N, C));
    d->dfch = take(c, PRODUCT(N, K, F));
    d->dmoe_y = take(c, PRODUCT(E ? N : 0, K, C));
    d->dmoe_x = take(c, PRODUCT(E ? N : 0, K, C));
    d->dgate = take(c, PRODUCT(N, E));
    d->datt = take(c, PRODUCT((size_t)e->nthreads, e->max_T, e->max_T));
}

/* n zeroed elements of size bytes (at least one), or NULL when that is more
 * than there is. */
static void *alloc_zeroed(size_t n, size_t size)
{
    if (PRODUCT(n, size) == SIZE_MAX)
        return NULL;
    return calloc(n ? n : 1, size);
}

/* Floats a carve function hands out for e as it is set up. */
static size_t carved_size(rw_engine_t *e, void (*carve)(rw_engine_t *, carver_t *))
{
    carver_t c = {NULL, 0};
    carve(e, &c);
    return c.used;
}

/* One block carved as carve says, or NULL when it cannot be allocated. */
static float *alloc_carved(rw_engine_t *e, void (*carve)(rw_engine_t *, carver_t *))
{
    carver_t c = {alloc_zeroed(carved_size(e, carve), sizeof(float)), 0};
    if (c.mem)
        carve(e, &c);
    return c.mem;
}

/* Element counts of the engine's blocks that do not depend on the adapter. */
typedef struct core_sizes {
    size_t acts, bufs;    /* floats, carved (bufs: training only) */
    size_t iacts;         /* int32_t: the MoE routing tables */
    size_t moe_stats, lb; /* doubles, floats */
} core_sizes_t;

static void core_sizes(rw_engine_t *e, core_sizes_t *s)
{
    size_t Lc = e->train ? (size_t)e->cfg.n_layers : 1, E = (size_t)e->cfg.n_experts;
    size_t L = (size_t)e->cfg.n_layers, T = (size_t)e->nthreads;
    size_t nk = PRODUCT(E ? Lc : 0, e->nmax, e->K), noff = PRODUCT(E ? Lc : 0, T, E + 1);
    s->acts = carved_size(e, carve_acts);
    s->bufs = e->train ? carved_size(e, carve_bufs) : 0;
    s->iacts = sum(sum(PRODUCT(3, nk), noff), 1);
    s->moe_stats = PRODUCT(T, L, RW_MOE_STATS(E));
    s->lb = PRODUCT(L, E ? E : 1);
}

/* Element counts (floats) of the blocks that depend on adapter lo (or none). */
typedef struct adapter_sizes {
    size_t lora; /* adapter activations, and du when training */
    size_t head; /* pooled, logits, dpooled, dlogits */
    size_t grad; /* one gradient block per thread (training only) */
    int outputs;
} adapter_sizes_t;

static void adapter_sizes(const rw_engine_t *e, const rw_lora_t *lo, adapter_sizes_t *s)
{
    size_t Lc = e->train ? (size_t)e->cfg.n_layers : 1, N = e->nmax;
    s->lora = 0;
    if (lo) {
        size_t r = (size_t)lo->cfg.rank;
        for (int i = 0; i < RW_LORA_NTARGETS; i++)
            s->lora = sum(s->lora, (lo->cfg.targets >> i & 1) ? PRODUCT(Lc, N, r) : 0);
        s->lora = sum(s->lora, e->train ? PRODUCT(N, r) : 0);
    }
    s->outputs = lo ? rw_lora_outputs(&lo->cfg) : rw_model_config_outputs(&e->cfg);
    size_t C = (size_t)e->cfg.d_model, O = (size_t)s->outputs;
    s->head = PRODUCT(2, e->max_B, sum(C, O));
    /* gradients follow the trainable block: the adapter's, else the model's */
    size_t n_grad = lo ? lo->layout.n_floats : e->model->layout.n_floats;
    s->grad = e->train ? PRODUCT((size_t)e->nthreads, n_grad) : 0;
}

/* Adapter activations, the head's buffers and the gradient blocks, which
 * depend on the adapter. Returns 0, or RW_ENOMEM with e as it was. */
static int alloc_adapter_bufs(rw_engine_t *e, rw_lora_t *lo)
{
    adapter_sizes_t s;
    adapter_sizes(e, lo, &s);
    float *lora_mem = lo ? alloc_zeroed(s.lora, sizeof(float)) : NULL;
    float *head_mem = alloc_zeroed(s.head, sizeof(float));
    float *grad_mem = e->train ? alloc_zeroed(s.grad, sizeof(float)) : NULL;
    if ((lo && !lora_mem) || !head_mem || (e->train && !grad_mem)) {
        free(lora_mem);
        free(head_mem);
        free(grad_mem);
        return RW_ENOMEM;
    }
    free(e->lora_mem);
    free(e->head_mem);
    free(e->grad_mem);
    e->lora = lo;
    e->lora_mem = lora_mem;
    e->head_mem = head_mem;
    e->grad_mem = grad_mem;
    memset(e->a.lora_u, 0, sizeof e->a.lora_u);
    e->d.du = NULL;
    e->lora_rank = lo ? lo->cfg.rank : 0;
    if (lo) {
        size_t Lc = e->train ? (size_t)e->cfg.n_layers : 1, N = e->nmax, r = (size_t)lo->cfg.rank;
        float *p = e->lora_mem;
        for (int i = 0; i < RW_LORA_NTARGETS; i++)
            if (lo->cfg.targets >> i & 1) {
                e->a.lora_u[i] = p;
                p += Lc * N * r;
            }
        e->d.du = e->train ? p : NULL;
    }
    e->outputs = s.outputs;
    size_t C = (size_t)e->cfg.d_model, O = (size_t)e->outputs, B = e->max_B;
    e->a.pooled = e->head_mem;
    e->a.logits = e->a.pooled + B * C;
    e->d.dpooled = e->a.logits + B * O;
    e->d.dlogits = e->d.dpooled + B * C;
    if (e->train)
        e->n_grad = lo ? lo->layout.n_floats : e->model->layout.n_floats;
    return 0;
}

static int check_lora(const rw_engine_t *e, const rw_lora_t *lo)
{
    if (lo && memcmp(&lo->base, &e->cfg, sizeof e->cfg) != 0) {
        RW_ERROR("engine", "adapter was made for another model configuration");
        return RW_EINVAL;
    }
    return 0;
}

/* The fields the sizes follow from. */
static void set_shape(rw_engine_t *e, size_t max_B, size_t max_T, int nthreads, int train)
{
    e->nthreads = nthreads;
    e->max_B = max_B;
    e->max_T = max_T;
    e->nmax = PRODUCT(max_B, max_T);
    e->K = e->cfg.n_experts ? (size_t)e->cfg.top_k : 1;
    e->train = train != 0;
}

/* The blocks of core_sizes, carved; 0 or RW_ENOMEM. */
static int alloc_core(rw_engine_t *e)
{
    core_sizes_t s;
    core_sizes(e, &s);
    size_t E = (size_t)e->cfg.n_experts, Lc = e->train ? (size_t)e->cfg.n_layers : 1;
    e->acts_mem = alloc_carved(e, carve_acts);
    e->iacts_mem = alloc_zeroed(s.iacts, sizeof(int32_t));
    e->moe_stats = alloc_zeroed(s.moe_stats, sizeof(double));
    e->lb_scale = alloc_zeroed(s.lb, sizeof(float));
    e->bufs_mem = e->train ? alloc_carved(e, carve_bufs) : NULL;
    if (!e->acts_mem || !e->iacts_mem || !e->moe_stats || !e->lb_scale ||
        (e->train && !e->bufs_mem))
        return RW_ENOMEM;
    size_t nk = E ? Lc * e->nmax * e->K : 0;
    e->a.moe_idx = E ? e->iacts_mem : NULL;
    e->a.moe_slot = E ? e->a.moe_idx + nk : NULL;
    e->a.moe_row = E ? e->a.moe_slot + nk : NULL;
    e->a.moe_off = E ? e->a.moe_row + nk : NULL;
    return 0;
}

static void free_core(rw_engine_t *e)
{
    free(e->acts_mem);
    free(e->iacts_mem);
    free(e->moe_stats);
    free(e->lb_scale);
    free(e->bufs_mem);
}

size_t rw_engine_bytes(const rw_model_config_t *cfg, const rw_lora_config_t *lc, size_t max_B,
                       size_t max_T, int threads, int train)
{
    rw_model_t m = {.cfg = *cfg};
    rw_model_layout(cfg, &m.layout);
    rw_lora_t lo = {.cfg = lc ? *lc : (rw_lora_config_t){0}, .base = *cfg};
    if (lc)
        rw_lora_layout(lc, cfg, &lo.layout);
    rw_engine_t e = {.model = &m, .cfg = *cfg};
    set_shape(&e, max_B, max_T, rw_team_size_for(threads), train);
    core_sizes_t c;
    adapter_sizes_t a;
    core_sizes(&e, &c);
    adapter_sizes(&e, lc ? &lo : NULL, &a);
    size_t floats = sum(sum(sum(c.acts, c.bufs), sum(c.lb, a.lora)), sum(a.head, a.grad));
    return sum(sum(PRODUCT(floats, sizeof(float)), PRODUCT(c.iacts, sizeof(int32_t))),
               PRODUCT(c.moe_stats, sizeof(double)));
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
    set_shape(e, max_B, max_T, rw_team_size(e->team), train);
    rc = alloc_core(e);
    if (rc < 0)
        goto fail_core;
    rc = alloc_adapter_bufs(e, lora);
    if (rc < 0)
        goto fail_adapter;
    *engine_p = e;
    return 0;

fail_adapter:
fail_core:
    free_core(e);
    rw_team_destroy(&e->team);
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
    free_core(e);
    free(e->lora_mem);
    free(e->head_mem);
    free(e->grad_mem);
    free(e);
    *engine_p = NULL;
}

int rw_engine_set_lora(rw_engine_t *e, rw_lora_t *lora)
{
    int rc = check_lora(e, lora);
    return rc < 0 ? rc : alloc_adapter_bufs(e, lora);
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
