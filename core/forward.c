/* forward.c — the model's forward pass over one thread's slice of the batch.
 *
 * Read it beside backward.c: the same layers, top to bottom here and bottom
 * to top there. A slice is sequences [b0, b1), token rows [b0*T, b1*T).
 */
#include "engine_impl.h"
#include "kernels.h"

#include <string.h>

/* Adds the attached adapter's update for target i of layer l to out. */
static void lora_apply(const rw_engine_t *e, const rw_lora_params_t *lp, int i, float *out,
                       size_t ldo, float *u, const float *x, size_t n)
{
    if (!lp || !lp->a[i])
        return;
    size_t in, od, r = (size_t)e->lora->cfg.rank;
    rw_lora_target_dims(&e->cfg, i, &in, &od);
    float s = e->lora->cfg.alpha / (float)r;
    rw__lora_forward(out, ldo, u, x, lp->a[i], lp->b[i], n, in, od, r, s);
}

/* One transformer block: res3 = res2 + ffn(ln2(res2)), res2 = resid + attn(ln1(resid)). */
static void block_forward(rw_engine_t *e, int tid, size_t l, size_t b0, size_t b1)
{
    const rw_model_config_t *cfg = &e->cfg;
    size_t C = (size_t)cfg->d_model, F = (size_t)cfg->d_ff, NH = (size_t)cfg->n_heads;
    size_t T = e->T, nb = b1 - b0, n = nb * T;
    rw_params_t p;
    rw__params_layer(cfg, &e->model->p, l, &p);
    rw_lora_params_t lp, *lpp = NULL;
    if (e->lora) {
        rw__lora_layer(e->lora, &e->lora->p, l, &lp);
        lpp = &lp;
    }
    rw_layer_acts_t v;
    rw__layer_acts(e, l, b0, &v);

    /* attention: ln1 (n,C); qkv (n,3C); atty (n,C); res2 (n,C) */
    rw__layernorm_forward(v.ln1, v.ln1_mean, v.ln1_rstd, v.resid, p.ln1w, p.ln1b, n, C);
    rw__matmul_forward(v.qkv, 3 * C, NULL, v.ln1, p.qkvw, p.qkvb, n, C, 3 * C);
    for (int i = 0; i < 3; i++) /* q, k, v: column blocks of qkv */
        lora_apply(e, lpp, i, v.qkv + (size_t)i * C, 3 * C, v.lora_u[i], v.ln1, n);
    rw__attention_forward(v.atty, v.att, v.qkv, e->batch->lens + b0, nb, T, C, NH);
    rw__matmul_forward(v.res2, C, v.resid, v.atty, p.attprojw, p.attprojb, n, C, C);
    lora_apply(e, lpp, 3, v.res2, C, v.lora_u[3], v.atty, n);

    /* feed-forward: ln2 (n,C); fch, fch_gelu (n,F); res3 (n,C) */
    rw__layernorm_forward(v.ln2, v.ln2_mean, v.ln2_rstd, v.res2, p.ln2w, p.ln2b, n, C);
    if (cfg->n_experts) {
        rw__moe_forward(e, tid, l, b0 * T, n);
        return;
    }
    rw__matmul_forward(v.fch, F, NULL, v.ln2, p.fcw, p.fcb, n, C, F);
    lora_apply(e, lpp, 4, v.fch, F, v.lora_u[4], v.ln2, n);
    rw__gelu(e, v.fch_gelu, v.fch, n * F);
    rw__matmul_forward(v.res3, C, v.res2, v.fch_gelu, p.fcprojw, p.fcprojb, n, F, C);
    lora_apply(e, lpp, 5, v.res3, C, v.lora_u[5], v.fch_gelu, n);
}

/* pooled (nb,C) from lnf (nb*T,C): mean over each sequence's tokens, or its
 * last token. */
static void pool_forward(float *pooled, const float *lnf, const int32_t *lens, size_t nb, size_t T,
                         size_t C, rw_pooling_t pooling)
{
    for (size_t b = 0; b < nb; b++) {
        float *o = pooled + b * C;
        const float *x = lnf + b * T * C;
        size_t len = (size_t)lens[b];
        if (pooling == RW_POOL_LAST) {
            memcpy(o, x + (len - 1) * C, C * sizeof *o);
            continue;
        }
        memset(o, 0, C * sizeof *o);
        for (size_t t = 0; t < len; t++)
            for (size_t i = 0; i < C; i++)
                o[i] += x[t * C + i];
        float inv = 1.0f / (float)len;
        for (size_t i = 0; i < C; i++)
            o[i] *= inv;
    }
}

void rw__forward_slice(rw_engine_t *e, int tid, size_t b0, size_t b1)
{
    const rw_model_config_t *cfg = &e->cfg;
    const rw_params_t *p = &e->model->p;
    rw_acts_t *a = &e->a;
    size_t C = (size_t)cfg->d_model, L = (size_t)cfg->n_layers, T = e->T, O = (size_t)e->outputs;
    size_t nb = b1 - b0, r0 = b0 * T, n = nb * T;
    const int32_t *lens = e->batch->lens + b0;

    /* encoded (n,C) = wte[ids] + wpe */
    rw__encoder_forward(a->encoded + r0 * C, e->batch->ids + b0 * e->batch->ld, e->batch->ld,
                        p->wte, p->wpe, nb, T, C);
    if (e->lora && e->lora->p.emb_a)
        rw__lora_embed_forward(a->encoded + r0 * C, e->batch->ids + b0 * e->batch->ld, e->batch->ld,
                               e->lora->p.emb_a, e->lora->p.emb_b, nb, T, C,
                               (size_t)e->lora->cfg.rank,
                               e->lora->cfg.alpha / (float)e->lora->cfg.rank);
    for (size_t l = 0; l < L; l++)
        block_forward(e, tid, l, b0, b1);

    /* lnf (n,C); pooled (nb,C); logits (nb,O) */
    const float *last = a->res3 + (rw__li(e, L - 1) * e->nmax + r0) * C;
    rw__layernorm_forward(a->lnf + r0 * C, a->lnf_mean + r0, a->lnf_rstd + r0, last, p->lnfw,
                          p->lnfb, n, C);
    pool_forward(a->pooled + b0 * C, a->lnf + r0 * C, lens, nb, T, C, cfg->pooling);
    const float *hw = e->lora ? e->lora->p.headw : p->headw;
    const float *hb = e->lora ? e->lora->p.headb : p->headb;
    rw__matmul_forward(a->logits + b0 * O, O, NULL, a->pooled + b0 * C, hw, hb, nb, C, O);
}
