/* train.h — training a reward model, a classifier, an adapter or MoE gates.
 *
 * The objective follows from what is trained:
 *   - a reward head: Bradley-Terry, -log sigmoid(r(chosen) - r(rejected)),
 *     averaged over the batch's pairs (sequences 2i, 2i+1; batch.h);
 *   - a classifier head (a router): cross-entropy against each sequence's
 *     label, averaged over sequences;
 *   - RW_TRAIN_FFN: the head's objective, but only the feed-forward weights
 *     (fc_w, fc_b, fcproj_w, fcproj_b) learn;
 *   - RW_TRAIN_GATES on an MoE model: only the gates learn, on the
 *     cross-entropy of each gate's softmax against the sequence's domain
 *     label (domain d is expert d), averaged over non-pad tokens and layers.
 * Joint MoE training adds lb_coef times the load-balancing loss and
 * gate_coef times that gate cross-entropy to the head's loss. With an
 * adapter attached the base model is frozen and the adapter (with its own
 * head) is what learns.
 *
 * A step is forward, loss, backward, global-norm clipping and one AdamW
 * update (optim.h), with no allocation. A step whose loss or gradient has a
 * NaN or Inf changes nothing, is logged as skipped and says so in its
 * stats. The same model, data, configuration and thread count give
 * bit-identical weights, and a trainer restored from a checkpoint
 * (checkpoint.h) continues exactly as the uninterrupted run would.
 */
#ifndef RW_TRAIN_H
#define RW_TRAIN_H

#include "batch.h"
#include "engine.h"
#include "lora.h"
#include "model.h"
#include "optim.h"

/* What learns: everything; the MoE gates alone; or the feed-forward blocks
 * alone (a Branch-Train-MiX expert, whose other weights stay the seed's so
 * they can be shared in the merged model). */
typedef enum { RW_TRAIN_ALL = 0, RW_TRAIN_GATES = 1, RW_TRAIN_FFN = 2 } rw_train_part_t;

typedef struct rw_train_config {
    rw_adamw_config_t opt;
    float grad_clip;      /* global gradient norm limit; 0 turns clipping off */
    float lb_coef;        /* MoE load-balancing loss weight (joint training) */
    float gate_coef;      /* MoE gate cross-entropy weight (joint training) */
    rw_train_part_t part; /* RW_TRAIN_GATES: the MoE gates alone */
    int threads;          /* batch threads (<= 0: one per CPU; 1: BLAS threads) */
    size_t max_batch;     /* sequences per step (two per pair) */
    size_t max_len;       /* longest sequence (0: the model's max_len) */
} rw_train_config_t;

/* AdamW defaults, clip 1.0, lb_coef 0.01, gate_coef 0, all parts, all
 * CPUs, 32 sequences. */
void rw_train_config_default(rw_train_config_t *cfg);
/* The training configuration as a JSON object (caller frees), and back
 * (fields absent keep the defaults; RW_EPARSE on bad JSON). */
char *rw_train_config_to_json(const rw_train_config_t *cfg);
int rw_train_config_from_json(const char *json, rw_train_config_t *cfg);

typedef struct rw_step_stats {
    long step;          /* updates applied so far, this one included */
    int skipped;        /* 1: non-finite loss or gradient, nothing changed */
    size_t n;           /* pairs (reward) or sequences (classifier, gates) */
    double loss;        /* the objective */
    double main_loss;   /* Bradley-Terry or cross-entropy (0 when gates only) */
    double lb_loss;     /* MoE load balancing, mean over layers (0 if dense) */
    double gate_loss;   /* MoE gate cross-entropy on labels (0 without labels) */
    double accuracy;    /* pairs ranked right, classes right, or gate top-1 right */
    double margin;      /* mean r(chosen) - r(rejected) (reward heads) */
    double grad_norm;   /* before clipping */
    double lr;          /* of this update */
    double seconds;     /* wall time of the step */
    double pairs_per_s; /* n / seconds */
    double gflops;      /* achieved matmul + attention GFLOP/s, forward and backward */
} rw_step_stats_t;

/* Writes one line describing st ("step 12  loss 0.4123  acc 0.875  ...") to
 * buf (size n, always terminated); returns buf. */
char *rw_step_stats_format(const rw_step_stats_t *st, char *buf, size_t n);

typedef struct rw_trainer rw_trainer_t;

/* A trainer for model (borrowed) or, if lora is not NULL, for that adapter
 * (borrowed) on the frozen model. Returns 0, RW_EINVAL (bad configuration,
 * gates-only on a dense model), RW_ENOMEM (rw_trainer_bytes cannot be
 * allocated) or a negated errno (threads). */
int rw_trainer_new(rw_trainer_t **tr_p, rw_model_t *model, rw_lora_t *lora,
                   const rw_train_config_t *cfg);
/* Bytes rw_trainer_new allocates for a model of configuration model (valid)
 * with an adapter of lora (valid for it; NULL: none) under cfg: the
 * engine's (rw_engine_bytes), the optimizer's moments and the batch; the
 * weights themselves are not counted. SIZE_MAX when that is more than an
 * address space holds. */
size_t rw_trainer_bytes(const rw_model_config_t *model, const rw_lora_config_t *lora,
                        const rw_train_config_t *cfg);
/* Accepts NULL; nulls *tr_p. */
void rw_trainer_destroy(rw_trainer_t **tr_p);

/* One training step on batch. Returns 0 (also for a skipped step:
 * st->skipped says so) or RW_EINVAL (batch too large, odd for pairs, labels
 * out of range). st may be NULL. */
int rw_trainer_step(rw_trainer_t *tr, const rw_batch_t *batch, rw_step_stats_t *st);
/* The loss alone (forward only); nothing changes. */
int rw_trainer_loss(rw_trainer_t *tr, const rw_batch_t *batch, rw_step_stats_t *st);
/* Loss and gradients (rw_trainer_grads), no update. */
int rw_trainer_gradient(rw_trainer_t *tr, const rw_batch_t *batch, rw_step_stats_t *st);

/* Fills batch for attempt number `step` (updates plus skipped steps so far,
 * so a resumed run asks for the same data). Returns 0, or < 0 to stop. */
typedef int (*rw_next_batch_fn)(void *ctx, long step, rw_batch_t *batch);
/* Called after every step; a nonzero return stops the run. Without one,
 * rw_trainer_run logs each step at info level. */
typedef int (*rw_on_step_fn)(void *ctx, const rw_step_stats_t *st);
/* Runs n_steps steps (attempts, skipped ones included) with batches from
 * next; on_step may be NULL. Returns 0, the first negative code from next
 * or a step, or on_step's nonzero value. */
int rw_trainer_run(rw_trainer_t *tr, long n_steps, rw_next_batch_fn next, rw_on_step_fn on_step,
                   void *ctx);

/* What is trained: the layout and block of the adapter, or of the model. */
const rw_layout_t *rw_trainer_layout(const rw_trainer_t *tr);
float *rw_trainer_params(rw_trainer_t *tr);
/* Gradients of the last rw_trainer_gradient/step, in that layout. */
const float *rw_trainer_grads(rw_trainer_t *tr);
/* 1 if tensor i of the layout is trained. */
int rw_trainer_trainable(const rw_trainer_t *tr, size_t i);
/* AdamW's moments (same layout), for checkpoints. */
float *rw_trainer_moment(rw_trainer_t *tr, int which /* 1 or 2 */);
long rw_trainer_updates(const rw_trainer_t *tr);
long rw_trainer_skipped(const rw_trainer_t *tr);
/* Restores the counters of a checkpoint (the moments are restored through
 * rw_trainer_moment). */
void rw_trainer_set_counts(rw_trainer_t *tr, long updates, long skipped);
const rw_train_config_t *rw_trainer_config(const rw_trainer_t *tr);
/* The model and adapter (NULL if none) the trainer was made for. */
rw_model_t *rw_trainer_model(const rw_trainer_t *tr);
rw_lora_t *rw_trainer_lora(const rw_trainer_t *tr);
rw_engine_t *rw_trainer_engine(rw_trainer_t *tr);
/* FLOPs of one training step over B sequences of T tokens. */
double rw_trainer_step_flops(const rw_trainer_t *tr, size_t B, size_t T);

#endif
