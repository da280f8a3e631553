/* backward.c — the model's backward pass over one thread's slice of the
 * batch, from the loss's gradient of the head outputs (e->d.dlogits) to the
 * parameter gradients of the thread's gradient block.
 *
 * The mirror of forward.c, bottom to top. dres carries the gradient of the
 * residual stream down through the blocks; each layer norm adds its input
 * gradient to it. Frozen tensors have NULL gradients and their weight
 * gradients are never computed (an adapter's base, or all but the gates).
 */
#include "engine_impl.h"
#include "kernels.h"

#include <string.h>

/* The adapter's backward for target i of layer l: from dout (n,out), row
 * stride ldd, to its gradients, adding its input gradient to dx. */
static void lora_back(const rw_engine_t *e, const rw_lora_params_t *lp, const rw_lora_params_t *gl,
                      int i, float *dx, float *du, const float *dout, size_t ldd, const float *x,
                      const float *u, size_t n)
{
    if (!lp || !lp->a[i])
        return;
    size_t in, od, r = (size_t)e->lora->cfg.rank;
    rw_lora_target_dims(&e->cfg, i, &in, &od);
    float s = e->lora->cfg.alpha / (float)r;
    rw__lora_backward(dx, gl->a[i], gl->b[i], du, dout, ldd, x, u, lp->a[i], lp->b[i], n, in, od, r,
                      s);
}

static void block_backward(rw_engine_t *e, int tid, size_t l, size_t b0, size_t b1,
                           const rw_params_t *gall, const rw_lora_params_t *glall)
{
    const rw_model_config_t *cfg = &e->cfg;
    size_t C = (size_t)cfg->d_model, F = (size_t)cfg->d_ff, NH = (size_t)cfg->n_heads;
    size_t T = e->T, nb = b1 - b0, n = nb * T, r0 = b0 * T;
    rw_params_t p, g;
    rw__params_layer(cfg, &e->model->p, l, &p);
    rw__params_layer(cfg, gall, l, &g);
    rw_lora_params_t lp, gl, *lpp = NULL;
    if (e->lora) {
        rw__lora_layer(e->lora, &e->lora->p, l, &lp);
        rw__lora_layer(e->lora, glall, l, &gl);
        lpp = &lp;
    }
    rw_layer_acts_t v;
    rw__layer_acts(e, l, b0, &v);
    rw_bufs_t *d = &e->d;
    float *dres = d->dres + r0 * C, *dln = d->dln + r0 * C, *dqkv = d->dqkv + r0 * 3 * C;
    float *datty = d->datty + r0 * C, *dfch = d->dfch + r0 * e->K * F;
    float *du = d->du ? d->du + r0 * (size_t)e->lora_rank : NULL;

    /* feed-forward: dres (n,C) is the gradient of res3 = res2 + ffn(ln2) */
    if (cfg->n_experts) {
        rw__moe_backward(e, tid, l, r0, n, &g);
    } else {
        /* dfch (n,F) = dres @ fcprojw, the gradient of fch_gelu */
        rw__matmul_backward(dfch, 0, g.fcprojw, g.fcprojb, dres, C, v.fch_gelu, p.fcprojw, n, F, C);
        lora_back(e, lpp, &gl, 5, dfch, du, dres, C, v.fch_gelu, v.lora_u[5], n);
        rw__gelu_backward(dfch, g.fcb, v.fch, dfch, n, F);
        /* dln (n,C) = dfch @ fcw, the gradient of ln2 */
        rw__matmul_backward(dln, 0, g.fcw, NULL, dfch, F, v.ln2, p.fcw, n, C, F);
        lora_back(e, lpp, &gl, 4, dln, du, dfch, F, v.ln2, v.lora_u[4], n);
    }
    rw__layernorm_backward(dres, g.ln2w, g.ln2b, dln, v.res2, p.ln2w, v.ln2_mean, v.ln2_rstd, n, C);

    /* attention: dres (n,C) is now the gradient of res2 = resid + attproj(atty) */
    rw__matmul_backward(datty, 0, g.attprojw, g.attprojb, dres, C, v.atty, p.attprojw, n, C, C);
    lora_back(e, lpp, &gl, 3, datty, du, dres, C, v.atty, v.lora_u[3], n);
    float *scratch = d->datt + (size_t)tid * e->max_T * e->max_T;
    rw__attention_backward(dqkv, scratch, datty, v.qkv, v.att, e->batch->lens + b0, nb, T, C, NH);
    /* dln (n,C) = dqkv @ qkvw, the gradient of ln1 */
    rw__matmul_backward(dln, 0, g.qkvw, g.qkvb, dqkv, 3 * C, v.ln1, p.qkvw, n, C, 3 * C);
    for (int i = 0; i < 3; i++)
        lora_back(e, lpp, &gl, i, dln, du, dqkv + (size_t)i * C, 3 * C, v.ln1, v.lora_u[i], n);
    rw__layernorm_backward(dres, g.ln1w, g.ln1b, dln, v.resid, p.ln1w, v.ln1_mean, v.ln1_rstd, n,
                           C);
}

/* dln (nb*T,C) = the gradient of lnf from dpooled (nb,C). */
static void pool_backward(float *dln, const float *dpooled, const int32_t *lens, size_t nb,
                          size_t T, size_t C, rw_pooling_t pooling)
{
    memset(dln, 0, nb * T * C * sizeof *dln);
    for (size_t b = 0; b < nb; b++) {
        const float *dp = dpooled + b * C;
        size_t len = (size_t)lens[b];
        if (pooling == RW_POOL_LAST) {
            memcpy(dln + (b * T + len - 1) * C, dp, C * sizeof *dln);
            continue;
        }
        float inv = 1.0f / (float)len;
        for (size_t t = 0; t < len; t++)
            for (size_t i = 0; i < C; i++)
                dln[(b * T + t) * C + i] = dp[i] * inv;
    }
}

/* The thread's gradient block, carved; frozen tensors get NULL. */
static void thread_grads(rw_engine_t *e, int tid, rw_params_t *g, rw_lora_params_t *gl)
{
    float *block = e->grad_mem + (size_t)tid * e->n_grad;
    memset(g, 0, sizeof *g);
    memset(gl, 0, sizeof *gl);
    if (e->lora) {
        rw_lora_carve(&e->lora->layout, block, gl);
        return;
    }
    rw_params_carve(&e->model->layout, block, g);
    if (e->gates_only) {
        float *gate = g->gatew;
        memset(g, 0, sizeof *g);
        g->gatew = gate;
    }
}

void rw__backward_slice(rw_engine_t *e, int tid, size_t b0, size_t b1)
{
    const rw_model_config_t *cfg = &e->cfg;
    const rw_params_t *p = &e->model->p;
    rw_acts_t *a = &e->a;
    rw_bufs_t *d = &e->d;
    size_t C = (size_t)cfg->d_model, L = (size_t)cfg->n_layers, T = e->T, O = (size_t)e->outputs;
    size_t nb = b1 - b0, r0 = b0 * T, n = nb * T;
    const int32_t *lens = e->batch->lens + b0;
    rw_params_t g;
    rw_lora_params_t gl;
    thread_grads(e, tid, &g, &gl);

    /* head: dpooled (nb,C) = dlogits (nb,O) @ headw */
    const float *hw = e->lora ? e->lora->p.headw : p->headw;
    float *dhw = e->lora ? gl.headw : g.headw, *dhb = e->lora ? gl.headb : g.headb;
    rw__matmul_backward(d->dpooled + b0 * C, 0, dhw, dhb, d->dlogits + b0 * O, O,
                        a->pooled + b0 * C, hw, nb, C, O);
    pool_backward(d->dln + r0 * C, d->dpooled + b0 * C, lens, nb, T, C, cfg->pooling);
    /* dres (n,C) = the gradient of the last block's res3, through lnf */
    memset(d->dres + r0 * C, 0, n * C * sizeof(float));
    const float *last = a->res3 + (rw__li(e, L - 1) * e->nmax + r0) * C;
    rw__layernorm_backward(d->dres + r0 * C, g.lnfw, g.lnfb, d->dln + r0 * C, last, p->lnfw,
                           a->lnf_mean + r0, a->lnf_rstd + r0, n, C);
    for (size_t l = L; l-- > 0;)
        block_backward(e, tid, l, b0, b1, &g, e->lora ? &gl : NULL);
    rw__encoder_backward(g.wte, g.wpe, d->dres + r0 * C, e->batch->ids + b0 * e->batch->ld,
                         e->batch->ld, lens, nb, T, C);
    if (e->lora && gl.emb_a)
        rw__lora_embed_backward(
            gl.emb_a, gl.emb_b, d->dres + r0 * C, e->batch->ids + b0 * e->batch->ld, e->batch->ld,
            lens, e->lora->p.emb_a, e->lora->p.emb_b, nb, T, C, (size_t)e->lora->cfg.rank,
            e->lora->cfg.alpha / (float)e->lora->cfg.rank);
}
