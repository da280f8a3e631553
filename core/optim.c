/* optim.c — AdamW, its schedule and gradient norms; see optim.h. */
#include "optim.h"

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
                      size_t lo, size_t hi)
{
    double s = 0.0;
    for (size_t ti = 0; ti < lay->n_tensors; ti++) {
        size_t a, b;
        if (!trainable[ti] || !part(&lay->t[ti], lo, hi, &a, &b))
            continue;
        for (size_t i = a; i < b; i++)
            s += (double)g[i] * (double)g[i];
    }
    return s;
}

void rw_adamw_update(const rw_adamw_config_t *c, const rw_layout_t *lay,
                     const unsigned char *trainable, float *p, const float *g, float *m, float *v,
                     size_t lo, size_t hi, float lr, float gscale, long t)
{
    float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    float c1 = 1.0f / (1.0f - powf(b1, (float)t)), c2 = 1.0f / (1.0f - powf(b2, (float)t));
    for (size_t ti = 0; ti < lay->n_tensors; ti++) {
        size_t a, b;
        if (!trainable[ti] || !part(&lay->t[ti], lo, hi, &a, &b))
            continue;
        float wd = lay->t[ti].decay ? c->weight_decay : 0.0f;
        for (size_t i = a; i < b; i++) {
            float gi = g[i] * gscale;
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            float mhat = m[i] * c1, vhat = v[i] * c2;
            p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
        }
    }
}
