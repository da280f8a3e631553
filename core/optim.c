/* optim.c — AdamW, its schedule and gradient norms; see optim.h. */
#include "optim.h"

#include "vec.h"

#include <math.h>

void rw_adamw_config_default(rw_adamw_config_t *cfg)
{
    cfg->lr = 3e-4f;
    cfg->min_lr = 3e-5f;
    cfg->warmup_steps = 0;
    cfg->total_steps = 0;
    cfg->decay = RW_DECAY_COSINE;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->eps = 1e-8f;
    cfg->weight_decay = 0.01f;
}

float rw_adamw_lr(const rw_adamw_config_t *c, long step)
{
    if (step < c->warmup_steps)
        return c->lr * (float)(step + 1) / (float)c->warmup_steps;
    if (c->total_steps <= c->warmup_steps || c->decay == RW_DECAY_CONSTANT)
        return c->lr;
    double progress = (double)(step - c->warmup_steps) / (double)(c->total_steps - c->warmup_steps);
    if (progress > 1.0)
        progress = 1.0;
    double f = c->decay == RW_DECAY_COSINE ? 0.5 * (1.0 + cos(M_PI * progress)) : 1.0 - progress;
    return (float)(c->min_lr + (c->lr - c->min_lr) * f);
}

/* The part [*a, *b) of tensor t inside [lo, hi); 0 if empty. */
static int part(const rw_tensor_t *t, size_t lo, size_t hi, size_t *a, size_t *b)
{
    *a = t->offset > lo ? t->offset : lo;
    *b = t->offset + t->n < hi ? t->offset + t->n : hi;
    return *a < *b;
}

double rw_optim_sumsq(const rw_layout_t *lay, const unsigned char *trainable, const float *g,
                      size_t lo, size_t hi, double s)
{
    for (size_t ti = 0; ti < lay->n_tensors; ti++) {
        size_t a, b;
        if (!trainable[ti] || !part(&lay->t[ti], lo, hi, &a, &b))
            continue;
        for (size_t i = a; i < b; i++)
            s += (double)g[i] * (double)g[i];
    }
    return s;
}

/* One AdamW update of elements [a, b); the scalar tail does the same
 * operations as the vector lanes. */
RW_INLINE void adamw_body(float *p, const float *g, float *m, float *v, size_t a, size_t b,
                          float lr, float gscale, float wd, float b1, float b2, float eps, float c1,
                          float c2)
{
    size_t i = a;
    for (; i + 8 <= b; i += 8) {
        v8f pv, gv, mv, vv, den;
        v8_load(&pv, p + i);
        v8_load(&gv, g + i);
        v8_load(&mv, m + i);
        v8_load(&vv, v + i);
        gv = gv * gscale;
        mv = b1 * mv + (1.0f - b1) * gv;
        vv = b2 * vv + (1.0f - b2) * gv * gv;
        den = vv * c2;
        v8_sqrt(&den);
        pv -= lr * ((mv * c1) / (den + eps) + wd * pv);
        v8_store(p + i, &pv);
        v8_store(m + i, &mv);
        v8_store(v + i, &vv);
    }
    for (; i < b; i++) {
        float gi = g[i] * gscale;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= lr * ((m[i] * c1) / (sqrtf(v[i] * c2) + eps) + wd * p[i]);
    }
}
RW_MULTIVERSION(static, adamw_range, adamw_body,
                (float *p, const float *g, float *m, float *v, size_t a, size_t b, float lr,
                 float gscale, float wd, float b1, float b2, float eps, float c1, float c2),
                (p, g, m, v, a, b, lr, gscale, wd, b1, b2, eps, c1, c2))

void rw_adamw_update(const rw_adamw_config_t *c, const rw_layout_t *lay,
                     const unsigned char *trainable, float *p, const float *g, float *m, float *v,
                     size_t lo, size_t hi, float lr, float gscale, long t)
{
    float b1 = c->beta1, b2 = c->beta2;
    float c1 = 1.0f / (1.0f - powf(b1, (float)t)), c2 = 1.0f / (1.0f - powf(b2, (float)t));
    for (size_t ti = 0; ti < lay->n_tensors; ti++) {
        size_t a, b;
        if (!trainable[ti] || !part(&lay->t[ti], lo, hi, &a, &b))
            continue;
        float wd = lay->t[ti].decay ? c->weight_decay : 0.0f;
        adamw_range(p, g, m, v, a, b, lr, gscale, wd, b1, b2, c->eps, c1, c2);
    }
}
