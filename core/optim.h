/* optim.h — AdamW with warm-up and decay, and global-norm clipping.
 *
 * Works on a parameter block described by a layout (model.h): parameters,
 * gradients and the two moments are four blocks of the same layout. A
 * per-tensor `trainable` flag leaves frozen tensors untouched. Every
 * function takes a range [lo, hi) of the block so threads can share the
 * work; the sums come back per range so the caller adds them in a fixed
 * order and the result never depends on timing.
 */
#ifndef RW_OPTIM_H
#define RW_OPTIM_H

#include "model.h"

typedef enum { RW_DECAY_COSINE = 0, RW_DECAY_LINEAR = 1, RW_DECAY_CONSTANT = 2 } rw_decay_t;

typedef struct rw_adamw_config {
    float lr;          /* peak learning rate */
    float min_lr;      /* where the decay ends */
    long warmup_steps; /* linear from lr/warmup to lr over these steps */
    long total_steps;  /* decay ends here (0: no decay) */
    rw_decay_t decay;  /* after the warm-up */
    float beta1, beta2, eps;
    float weight_decay; /* decoupled; only on tensors with decay set */
} rw_adamw_config_t;

/* lr 3e-4 to 3e-5, 0 warm-up, cosine, betas 0.9/0.999, eps 1e-8, wd 0.01. */
void rw_adamw_config_default(rw_adamw_config_t *cfg);
/* The learning rate of update number step (0-based). */
float rw_adamw_lr(const rw_adamw_config_t *cfg, long step);
/* s + the sum of squares of g over the trainable tensors' elements in
 * [lo, hi), added one by one in order, so consecutive ranges give the same
 * sum as one; NaN or Inf if any such element is. */
double rw_optim_sumsq(const rw_layout_t *lay, const unsigned char *trainable, const float *g,
                      size_t lo, size_t hi, double s);
/* One AdamW update of the trainable elements in [lo, hi): the gradient is
 * g * gscale (clipping), t is the 1-based update count for the bias
 * correction, lr the rate of this update. */
void rw_adamw_update(const rw_adamw_config_t *cfg, const rw_layout_t *lay,
                     const unsigned char *trainable, float *p, const float *g, float *m, float *v,
                     size_t lo, size_t hi, float lr, float gscale, long t);

#endif
