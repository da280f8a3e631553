/* moe.c — the mixture-of-experts feed-forward block.
 *
 * A linear gate (E, C) scores each token; softmax over the E experts; the
 * top k (ties to the lower index) are kept with their probabilities
 * renormalized to sum to one, which is the softmax over the chosen logits.
 * The block's output is the weighted sum of the chosen experts' GELU
 * feed-forwards. Tokens are gathered by expert so each expert runs as one
 * sgemm over all of its tokens in the slice.
 *
 * Two optional gate losses read statistics over the batch's non-pad tokens:
 * load balancing (Switch Transformer: E * sum_e f_e P_e, f_e the fraction of
 * assignments to e, taken as constant, P_e the mean probability of e) and
 * cross-entropy of the gate's softmax against the sequence's domain label
 * (domain d is expert d), which is how a gate is trained alone. Their
 * gradient scales come from the trainer (e->lb_scale, e->gce_scale).
 */
#include "engine_impl.h"
#include "kernels.h"

#include <math.h>
#include <string.h>

/* The slice's MoE arrays of layer l; rows r0.., slots r0*K.. */
typedef struct moe_view {
    float *probs;        /* (n, E) */
    float *w;            /* (n, K) */
    int32_t *idx, *slot; /* (n, K) */
    int32_t *row;        /* (n*K) */
    float *x, *y;        /* (n*K, C) */
    int32_t *off;        /* (E+1) */
} moe_view_t;

static void moe_view(const rw_engine_t *e, int tid, size_t l, size_t r0, moe_view_t *m)
{
    const rw_acts_t *a = &e->a;
    size_t E = (size_t)e->cfg.n_experts, C = (size_t)e->cfg.d_model, K = e->K;
    size_t row = rw__li(e, l) * e->nmax + r0;
    m->probs = a->gate_probs + row * E;
    m->w = a->moe_w + row * K;
    m->idx = a->moe_idx + row * K;
    m->slot = a->moe_slot + row * K;
    m->row = a->moe_row + row * K;
    m->x = a->moe_x + row * K * C;
    m->y = a->moe_y + row * K * C;
    m->off = a->moe_off + (rw__li(e, l) * (size_t)e->nthreads + (size_t)tid) * (E + 1);
}

/* Label of slice row r if it is a non-pad token, -1 if unlabelled (or the
 * label names no expert), -2 if it is padding. */
static int row_label(const rw_engine_t *e, size_t r0, size_t r)
{
    size_t T = e->T, b = (r0 + r) / T, t = (r0 + r) % T;
    if (t >= (size_t)e->batch->lens[b])
        return -2;
    int lab = e->batch->labels[b];
    return lab >= 0 && lab < e->cfg.n_experts ? lab : -1;
}

/* The batch's sequence b's prompt (RW_GATE_PROMPT): its ids up to and
 * including the first separator, else all the non-pad ones; returns their
 * number. */
static size_t prompt_ids(const rw_engine_t *e, size_t b, const int32_t **ids)
{
    size_t len = (size_t)e->batch->lens[b];
    len = len < e->T ? len : e->T;
    *ids = e->batch->ids + b * e->batch->ld;
    for (size_t t = 0; t < len; t++)
        if ((*ids)[t] == RW_TOK_SEP)
            return t + 1;
    return len;
}

/* probs (n,E) = the gate's logits over slice rows [r0, r0+n): per token,
 * ln2 @ gatew^T; or per sequence, gatew (E,V) @ its prompt's token counts,
 * written to each of its rows. */
static void gate_logits(rw_engine_t *e, size_t r0, size_t n, const float *ln2, const float *gatew,
                        float *probs)
{
    size_t C = (size_t)e->cfg.d_model, E = (size_t)e->cfg.n_experts, V = (size_t)e->cfg.vocab;
    if (e->cfg.gate_input == RW_GATE_TOKEN) {
        rw__matmul_forward(probs, E, NULL, ln2, gatew, NULL, n, C, E);
        return;
    }
    size_t T = e->T, b0 = r0 / T;
    for (size_t b = 0; b < n / T; b++) {
        const int32_t *ids;
        size_t np = prompt_ids(e, b0 + b, &ids);
        float *z = probs + b * T * E;
        for (size_t x = 0; x < E; x++) {
            float sum = 0.0f;
            for (size_t t = 0; t < np; t++)
                sum += gatew[x * V + (size_t)ids[t]];
            z[x] = sum;
        }
        for (size_t t = 1; t < T; t++)
            memcpy(z + t * E, z, E * sizeof *z);
    }
}

/* The reverse of gate_logits from dgate (n,E): per token, dln (n,C) +=
 * dgate @ gatew and dgatew += dgate^T @ ln2; per prompt, dgatew gets the
 * sequence's summed dgate at each of its prompt's ids (dln nothing). dgatew
 * may be NULL. */
static void gate_logits_backward(rw_engine_t *e, size_t r0, size_t n, float *dln, float *dgatew,
                                 const float *dgate, const float *ln2, const float *gatew)
{
    size_t C = (size_t)e->cfg.d_model, E = (size_t)e->cfg.n_experts, V = (size_t)e->cfg.vocab;
    if (e->cfg.gate_input == RW_GATE_TOKEN) {
        rw__matmul_backward(dln, 1, dgatew, NULL, dgate, E, ln2, gatew, n, C, E);
        return;
    }
    if (!dgatew)
        return;
    size_t T = e->T, b0 = r0 / T;
    for (size_t b = 0; b < n / T; b++) {
        float dz[64] = {0}; /* the sequence's summed dgate (E <= 64) */
        for (size_t t = 0; t < T; t++)
            rw__axpy(dz, 1.0f, dgate + (b * T + t) * E, E);
        const int32_t *ids;
        size_t np = prompt_ids(e, b0 + b, &ids);
        for (size_t t = 0; t < np; t++)
            for (size_t x = 0; x < E; x++)
                dgatew[x * V + (size_t)ids[t]] += dz[x];
    }
}

/* Gate softmax, top-k choice, renormalized weights and the statistics. */
static void route(rw_engine_t *e, int tid, size_t l, size_t r0, size_t n, moe_view_t *m)
{
    size_t E = (size_t)e->cfg.n_experts, K = e->K;
    double *st = e->moe_stats + ((size_t)tid * (size_t)e->cfg.n_layers + l) * RW_MOE_STATS(E);
    double *cnt = st + 4, *psum = st + 4 + E;
    memset(m->off, 0, (E + 1) * sizeof *m->off);
    for (size_t r = 0; r < n; r++) {
        float *p = m->probs + r * E, *w = m->w + r * K;
        int32_t *idx = m->idx + r * K;
        rw__softmax(p, E);
        float sum = 0.0f;
        for (size_t j = 0; j < K; j++) {
            int32_t best = -1;
            for (size_t x = 0; x < E; x++) {
                int taken = 0;
                for (size_t i = 0; i < j; i++)
                    taken |= idx[i] == (int32_t)x;
                if (!taken && (best < 0 || p[x] > p[best]))
                    best = (int32_t)x;
            }
            idx[j] = best;
            sum += p[best];
            m->off[best + 1]++;
        }
        for (size_t j = 0; j < K; j++)
            w[j] = p[idx[j]] / sum;
        int lab = row_label(e, r0, r);
        if (lab == -2)
            continue;
        st[RW_MS_NVALID] += 1.0;
        for (size_t j = 0; j < K; j++)
            cnt[idx[j]] += 1.0;
        for (size_t x = 0; x < E; x++)
            psum[x] += p[x];
        if (lab >= 0) {
            st[RW_MS_NLAB] += 1.0;
            st[RW_MS_GCE] -= log((double)p[lab]);
            st[RW_MS_GHIT] += idx[0] == lab;
        }
    }
    for (size_t x = 0; x < E; x++)
        m->off[x + 1] += m->off[x];
}

void rw__moe_forward(rw_engine_t *e, int tid, size_t l, size_t r0, size_t n)
{
    const rw_model_config_t *cfg = &e->cfg;
    size_t C = (size_t)cfg->d_model, F = (size_t)cfg->d_ff, E = (size_t)cfg->n_experts, K = e->K;
    rw_params_t p;
    rw__params_layer(cfg, &e->model->p, l, &p);
    rw_layer_acts_t v;
    rw__layer_acts(e, l, r0 / e->T, &v);
    moe_view_t m;
    moe_view(e, tid, l, r0, &m);

    /* probs (n,E) = softmax(gate logits) */
    gate_logits(e, r0, n, v.ln2, p.gatew, m.probs);
    route(e, tid, l, r0, n, &m);
    /* slots: expert e's tokens are slots off[e]..off[e+1], in row order */
    int32_t cur[65];
    memcpy(cur, m.off, (E + 1) * sizeof *cur);
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < K; j++) {
            int32_t s = cur[m.idx[r * K + j]]++;
            m.slot[r * K + j] = s;
            m.row[s] = (int32_t)r;
        }
    /* x (n*K,C) = ln2 rows by slot */
    for (size_t s = 0; s < n * K; s++)
        memcpy(m.x + s * C, v.ln2 + (size_t)m.row[s] * C, C * sizeof(float));
    for (size_t x = 0; x < E; x++) {
        size_t o = (size_t)m.off[x], ne = (size_t)m.off[x + 1] - o;
        if (!ne)
            continue;
        /* expert x over its ne tokens: h (ne,F), gelu (ne,F), y (ne,C) */
        rw__matmul_forward(v.fch + o * F, F, NULL, m.x + o * C, p.fcw + x * F * C, p.fcb + x * F,
                           ne, C, F);
        rw__gelu(e, v.fch_gelu + o * F, v.fch + o * F, ne * F);
        rw__matmul_forward(m.y + o * C, C, NULL, v.fch_gelu + o * F, p.fcprojw + x * C * F,
                           p.fcprojb + x * C, ne, F, C);
    }
    /* res3 (n,C) = res2 + sum_j w_j y[slot_j] */
    for (size_t r = 0; r < n; r++) {
        float *out = v.res3 + r * C;
        memcpy(out, v.res2 + r * C, C * sizeof(float));
        for (size_t j = 0; j < K; j++) {
            const float *y = m.y + (size_t)m.slot[r * K + j] * C;
            float w = m.w[r * K + j];
            rw__axpy(out, w, y, C);
        }
    }
}

/* dgate (E) for one token: through the renormalized top-k weights, plus the
 * load-balancing and label cross-entropy terms for a non-pad token. */
static void gate_grad(const rw_engine_t *e, size_t l, float *dg, const float *p, const float *w,
                      const int32_t *idx, const float *dw, int lab)
{
    size_t E = (size_t)e->cfg.n_experts, K = e->K;
    memset(dg, 0, E * sizeof *dg);
    float wdw = 0.0f;
    for (size_t j = 0; j < K; j++)
        wdw += w[j] * dw[j];
    for (size_t j = 0; j < K; j++)
        dg[idx[j]] += w[j] * (dw[j] - wdw);
    if (lab == -2)
        return;
    const float *lb = e->lb_scale + l * E;
    float pdp = 0.0f;
    for (size_t x = 0; x < E; x++)
        pdp += p[x] * lb[x];
    for (size_t x = 0; x < E; x++)
        dg[x] += p[x] * (lb[x] - pdp);
    if (lab >= 0 && e->gce_scale != 0.0f)
        for (size_t x = 0; x < E; x++)
            dg[x] += e->gce_scale * (p[x] - ((int)x == lab ? 1.0f : 0.0f));
}

void rw__moe_backward(rw_engine_t *e, int tid, size_t l, size_t r0, size_t n, const rw_params_t *g)
{
    const rw_model_config_t *cfg = &e->cfg;
    size_t C = (size_t)cfg->d_model, F = (size_t)cfg->d_ff, E = (size_t)cfg->n_experts, K = e->K;
    rw_params_t p;
    rw__params_layer(cfg, &e->model->p, l, &p);
    rw_layer_acts_t v;
    rw__layer_acts(e, l, r0 / e->T, &v);
    moe_view_t m;
    moe_view(e, tid, l, r0, &m);
    rw_bufs_t *d = &e->d;
    const float *dres = d->dres + r0 * C;
    float *dln = d->dln + r0 * C, *dys = d->dmoe_y + r0 * K * C, *dxs = d->dmoe_x + r0 * K * C;
    float *dh = d->dfch + r0 * K * F, *dgate = d->dgate + r0 * E;

    /* per token: dw_j = dres . y_j; dys[slot_j] = w_j dres; the gate's gradient */
    for (size_t r = 0; r < n; r++) {
        float dw[64];
        const float *dy = dres + r * C;
        for (size_t j = 0; j < K; j++) {
            size_t s = (size_t)m.slot[r * K + j];
            float w = m.w[r * K + j];
            dw[j] = rw__dot(dy, m.y + s * C, C);
            for (size_t i = 0; i < C; i++)
                dys[s * C + i] = w * dy[i];
        }
        gate_grad(e, l, dgate + r * E, m.probs + r * E, m.w + r * K, m.idx + r * K, dw,
                  row_label(e, r0, r));
    }
    for (size_t x = 0; x < E; x++) {
        size_t o = (size_t)m.off[x], ne = (size_t)m.off[x + 1] - o;
        if (!ne)
            continue;
        /* dh (ne,F) = dys @ fcprojw_x, through the GELU; dxs (ne,C) = dh @ fcw_x */
        rw__matmul_backward(dh + o * F, 0, g->fcprojw ? g->fcprojw + x * C * F : NULL,
                            g->fcprojb ? g->fcprojb + x * C : NULL, dys + o * C, C,
                            v.fch_gelu + o * F, p.fcprojw + x * C * F, ne, F, C);
        rw__gelu_backward(dh + o * F, g->fcb ? g->fcb + x * F : NULL, v.fch + o * F, dh + o * F, ne,
                          F);
        rw__matmul_backward(dxs + o * C, 0, g->fcw ? g->fcw + x * F * C : NULL, NULL, dh + o * F, F,
                            m.x + o * C, p.fcw + x * F * C, ne, C, F);
    }
    /* dln (n,C) = sum_j dxs[slot_j] + the gate's input gradient */
    for (size_t r = 0; r < n; r++) {
        float *o = dln + r * C;
        memcpy(o, dxs + (size_t)m.slot[r * K] * C, C * sizeof(float));
        for (size_t j = 1; j < K; j++) {
            const float *dx = dxs + (size_t)m.slot[r * K + j] * C;
            for (size_t i = 0; i < C; i++)
                o[i] += dx[i];
        }
    }
    gate_logits_backward(e, r0, n, dln, g->gatew, dgate, v.ln2, p.gatew);
}
