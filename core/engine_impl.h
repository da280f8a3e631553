/* engine_impl.h — the engine's insides, shared by engine.c, forward.c,
 * backward.c, moe.c and train.c (internal to rwcore).
 *
 * Activations are stacked over layers like the parameters: `qkv` is
 * (L, NMAX, 3C) with NMAX = max_B * max_T rows a layer, and a batch of B
 * sequences of length T uses rows 0..B*T of each layer, sequence b at rows
 * b*T..(b+1)*T. An engine built for inference only keeps one layer's worth
 * (rw__li() is then always 0): each layer overwrites the last, which is
 * safe because a layer reads its input residual only before it writes its
 * output residual.
 */
#ifndef RW_ENGINE_IMPL_H
#define RW_ENGINE_IMPL_H

#include "engine.h"
#include "kernels.h"
#include "team.h"

#include <stdint.h>

typedef struct rw_acts {
    float *encoded;    /* (N, C) embeddings, the residual stream's start */
    float *ln1;        /* (L, N, C) */
    float *ln1_mean;   /* (L, N) */
    float *ln1_rstd;   /* (L, N) */
    float *qkv;        /* (L, N, 3C) */
    float *att;        /* (L, B, NH, T, T) softmax probabilities */
    float *atty;       /* (L, N, C) attention output before its projection */
    float *res2;       /* (L, N, C) residual after attention */
    float *ln2;        /* (L, N, C) */
    float *ln2_mean;   /* (L, N) */
    float *ln2_rstd;   /* (L, N) */
    float *fch;        /* (L, N*K, F) feed-forward pre-activation (MoE: by slot);
                        * training keeps the GELU's derivative there instead */
    float *fch_gelu;   /* (L, N*K, F) */
    float *res3;       /* (L, N, C) residual after the feed-forward */
    float *lnf;        /* (N, C) */
    float *lnf_mean;   /* (N) */
    float *lnf_rstd;   /* (N) */
    float *pooled;     /* (B, C) */
    float *logits;     /* (B, O) */
    float *gate_probs; /* (L, N, E) softmax of the gate */
    float *moe_w;      /* (L, N, K) renormalized weights of the chosen experts */
    float *moe_x;      /* (L, N*K, C) ln2 rows gathered by expert */
    float *moe_y;      /* (L, N*K, C) expert outputs by slot */
    int32_t *moe_idx;  /* (L, N, K) chosen experts */
    int32_t *moe_slot; /* (L, N, K) slot of each choice in the gathered order */
    int32_t *moe_row;  /* (L, N*K) slice-local row of each slot */
    int32_t *moe_off;  /* (L, threads, E+1) per slice: expert e has slots off[e]..off[e+1] */
    float *lora_u[RW_LORA_NTARGETS]; /* (L, N, r) x @ A^T, per targeted projection */
} rw_acts_t;

/* Backward scratch; rows indexed like the activations, so slices never meet. */
typedef struct rw_bufs {
    float *dres;    /* (N, C) gradient of the residual stream */
    float *dln;     /* (N, C) gradient of a layer norm's output */
    float *dqkv;    /* (N, 3C) */
    float *datty;   /* (N, C) */
    float *dfch;    /* (N*K, F) */
    float *dmoe_y;  /* (N*K, C) */
    float *dmoe_x;  /* (N*K, C) */
    float *dgate;   /* (N, E) */
    float *datt;    /* (threads, T, T) */
    float *du;      /* (N, r) */
    float *dpooled; /* (B, C) */
    float *dlogits; /* (B, O) set by the loss */
} rw_bufs_t;

/* Per thread and MoE layer, statistics over the slice's non-pad tokens:
 * RW_MOE_STATS(E) doubles laid out as below. */
#define RW_MOE_STATS(E) (2 * (size_t)(E) + 4)
enum { RW_MS_NVALID = 0, RW_MS_NLAB = 1, RW_MS_GCE = 2, RW_MS_GHIT = 3 };
/* then cnt[E] (assignments per expert), then psum[E] (summed probabilities) */

typedef void (*rw_grads_fn)(void *ctx, int tid, const float *g, size_t lo, size_t hi);

struct rw_engine {
    rw_model_t *model;
    rw_lora_t *lora;
    rw_model_config_t cfg;
    size_t max_B, max_T, nmax; /* nmax = max_B * max_T */
    size_t K;                  /* rows of the feed-forward per token: top_k or 1 */
    int train;
    int nthreads;
    rw_team_t *team;

    float *acts_mem;
    int32_t *iacts_mem;
    rw_acts_t a;
    float *lora_mem; /* adapter activations (and du) */
    int lora_rank;
    float *head_mem; /* pooled, logits, dpooled, dlogits */
    int outputs;

    float *bufs_mem;
    rw_bufs_t d;
    double *moe_stats; /* (threads, L, RW_MOE_STATS(E)) */

    /* training: one gradient block per thread (block 0 gets the sum) */
    size_t n_grad;        /* floats in a gradient block */
    float *grad_mem;      /* (threads, n_grad) */
    int gates_only;       /* only gate tensors get gradients */
    float *lb_scale;      /* (L, E) load-balancing gradient per probability */
    float gce_scale;      /* gate cross-entropy gradient scale */
    rw_grads_fn on_grads; /* set during rw__engine_run_backward */
    void *on_grads_ctx;

    /* the batch being run */
    const rw_batch_t *batch;
    size_t B, T;
};

/* Index of layer l's activations: l when training, 0 for inference. */
static inline size_t rw__li(const rw_engine_t *e, size_t l)
{
    return e->train ? l : 0;
}

/* out = gelu(fch); a training engine also turns fch into the derivative
 * that backward multiplies by (rw__gelu_forward_keep). */
static inline void rw__gelu(const rw_engine_t *e, float *out, float *fch, size_t n)
{
    if (e->train)
        rw__gelu_forward_keep(out, fch, n);
    else
        rw__gelu_forward(out, fch, n);
}

/* Layer l's activations for the slice starting at row r0 (sequence b0). */
typedef struct rw_layer_acts {
    const float *resid; /* (n, C) the layer's input residual */
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *res2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *res3;
    float *lora_u[RW_LORA_NTARGETS];
} rw_layer_acts_t;
void rw__layer_acts(const rw_engine_t *e, size_t l, size_t b0, rw_layer_acts_t *v);
/* out = p with every per-layer tensor pointing at layer l's slice. */
void rw__params_layer(const rw_model_config_t *cfg, const rw_params_t *p, size_t l,
                      rw_params_t *out);
void rw__lora_layer(const rw_lora_t *lo, const rw_lora_params_t *p, size_t l,
                    rw_lora_params_t *out);

/* The passes over sequences [b0, b1) of the current batch, run by team
 * member tid (forward.c, backward.c). */
void rw__forward_slice(rw_engine_t *e, int tid, size_t b0, size_t b1);
void rw__backward_slice(rw_engine_t *e, int tid, size_t b0, size_t b1);
/* The MoE feed-forward of layer l over slice rows [r0, r0+n) (moe.c):
 * forward writes res3 = res2 + moe(ln2); backward reads dres (the gradient
 * of res3) and writes dln (the gradient of ln2). gw is the thread's gate and
 * expert gradients (NULL members skipped). */
void rw__moe_forward(rw_engine_t *e, int tid, size_t l, size_t r0, size_t n);
void rw__moe_backward(rw_engine_t *e, int tid, size_t l, size_t r0, size_t n, const rw_params_t *g);

/* Runs forward over batch on the team (sets e->batch/B/T); validates first.
 * Returns 0 or RW_EINVAL. */
int rw__engine_run_forward(rw_engine_t *e, const rw_batch_t *batch);
/* Runs backward on the team from e->d.dlogits (and the MoE scales), then sums
 * the threads' gradients into block 0 (rw__engine_grads), handing each
 * summed range [lo, hi) of it to on_grads (may be NULL) on the member that
 * summed it, while it is in cache. */
void rw__engine_run_backward(rw_engine_t *e, rw_grads_fn on_grads, void *ctx);
float *rw__engine_grads(rw_engine_t *e);
/* The layout gradients follow: the adapter's if attached, else the model's. */
const rw_layout_t *rw__engine_grad_layout(const rw_engine_t *e);
/* Sums of the MoE statistics over threads for layer l into out
 * (RW_MOE_STATS(E) doubles). */
void rw__engine_moe_stats(const rw_engine_t *e, size_t l, double *out);
/* OpenBLAS thread count to use while the engine runs; returns the old one. */
int rw__engine_blas_enter(const rw_engine_t *e);
void rw__engine_blas_leave(int old);

#endif
