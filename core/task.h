/* task.h — one unit of a job's work, and how a process carries it out.
 *
 * The unit of parallel work is a task: train one thing (the seed, one
 * domain's reward model, expert or adapter, a router, the router adapter,
 * the MoE gates) from input files into one output file. The coordinator
 * plans and leases tasks; a worker (or the router service) runs them with
 * rw_task_run() on the threads it was given. Everything a task needs is in
 * its spec (which travels as JSON in a LEASE's config) and its input files
 * (which travel as artifacts), so any process on any machine runs it the
 * same way, and the same spec and inputs give the same bytes out.
 *
 *   kind            inputs                         output (safetensors)
 *   seed            tokenizer, data (all domains)  dense reward model: the baseline
 *   domain_rm       tokenizer, data (one)          full reward model, new (spec.scratch, the
 *                   [, base]                       default) or branched from base
 *   expert          tokenizer, data (one), base    base fine-tuned in its feed-forward
 *                                                  weights only (Branch-Train-MiX expert)
 *   adapter         tokenizer, data (one), base    LoRA reward adapter on the frozen base
 *   router          tokenizer, data (all)          small classifier: prompt -> domain
 *   router_adapter  tokenizer, data (all), base    LoRA classifier adapter on frozen base
 *   gates           tokenizer, data (all), base,   MoE model merged from the experts
 *                   experts[0..N) in domain order  (rw_model_moe_merge), gates trained
 *                                                  alone on domain labels
 *
 * "data" is a normalized JSON Lines file (dataset.h); a task trains on its
 * train split and may report held-out figures on its eval split. Domain
 * labels are indexes into spec.domains.
 */
#ifndef RW_TASK_H
#define RW_TASK_H

#include "lora.h"
#include "model.h"
#include "train.h"

#include <stddef.h>
#include <stdint.h>

/* Names are the wire's (proto's MSG_TASK_KIND_MAP); order is not. */
#define RW_TASK_KIND_MAP(XX)                                                                       \
    XX(SEED, "seed")                                                                               \
    XX(DOMAIN_RM, "domain_rm")                                                                     \
    XX(EXPERT, "expert")                                                                           \
    XX(ADAPTER, "adapter")                                                                         \
    XX(ROUTER, "router")                                                                           \
    XX(ROUTER_ADAPTER, "router_adapter")                                                           \
    XX(GATES, "gates")

typedef enum {
    RW_TASK__NONE = 0,
#define XX(id, name) RW_TASK_##id,
    RW_TASK_KIND_MAP(XX)
#undef XX
        RW_TASK__COUNT
} rw_task_kind_t;

const char *rw_task_kind_name(rw_task_kind_t k);         /* "seed"; "?" if unknown */
rw_task_kind_t rw_task_kind_from_name(const char *name); /* RW_TASK__NONE if unknown */

#define RW_TASK_MAX_DOMAINS 256

typedef struct rw_task_spec {
    rw_task_kind_t kind;
    char *domain;                       /* owned; the domain of domain_rm/expert/adapter */
    char *domains[RW_TASK_MAX_DOMAINS]; /* owned; every domain of the job, label order */
    size_t n_domains;
    rw_model_config_t model; /* seed/domain_rm/expert: the reward model; router: the classifier */
    rw_lora_config_t lora;   /* adapter, router_adapter */
    rw_train_config_t train; /* optimizer, batch, threads (threads is the worker's to set) */
    double epochs;           /* passes over the train split (fractions allowed) */
    long max_steps;          /* 0: no cap beyond epochs */
    uint64_t seed;           /* initialization and shuffling */
    int scratch;             /* domain_rm: a new model of spec.model, not a branch of base */
    /* > 0: one in RW_TASK_HOLD_OUT of the train split is held out and
     * measured at the end of each epoch; training stops once its accuracy
     * (the loss breaking ties) has not improved for this many epochs, and
     * the weights of the best epoch are kept. 0: all the epochs on the
     * whole train split */
    int patience;
} rw_task_spec_t;

#define RW_TASK_HOLD_OUT     10
#define RW_TASK_HOLD_OUT_MIN 20 /* fewer held out would decide by noise: no early stop */

/* Whether a task of this spec reads a base model (the seed): every kind
 * but seed, router and a domain_rm that starts from scratch. */
int rw_task_spec_needs_base(const rw_task_spec_t *s);

/* init/fini pair; init gives the job defaults for kind. */
void rw_task_spec_init(rw_task_spec_t *s, rw_task_kind_t kind);
void rw_task_spec_fini(rw_task_spec_t *s);
/* The spec as a JSON object string (caller frees), and back: 0, or RW_EPARSE
 * / RW_EINVAL with why (a message of at most whylen-1 bytes) filled in. Any
 * field the JSON leaves out, in its model, lora and train objects too, keeps
 * the kind's default (rw_task_spec_init). */
char *rw_task_spec_to_json(const rw_task_spec_t *s);
int rw_task_spec_from_json(const char *json, rw_task_spec_t *s, char *why, size_t whylen);

typedef struct rw_task_inputs {
    const char *tokenizer;      /* tokenizer.json */
    const char *data;           /* normalized JSON Lines */
    const char *base;           /* checkpoint of the base/seed model, when the kind needs one */
    const char *const *experts; /* gates: n_domains expert checkpoints, in domain order */
    size_t n_experts;
} rw_task_inputs_t;

/* Told every few steps (steps is the planned total); a nonzero return
 * cancels the task. Runs on the training thread. */
typedef int (*rw_task_progress_fn)(void *ctx, const rw_step_stats_t *st, long steps);

typedef struct rw_task_result {
    long steps, skipped;
    double seconds, pairs_per_s;
    double train_loss, train_accuracy; /* over the last epoch's steps (the kept epoch's) */
    double epochs;                     /* passes trained over the train split */
    long kept_epoch;        /* early stopping (spec patience): the epoch whose weights were kept */
    double validation_loss; /* early stopping: that epoch's loss on the held-out slice; else NAN */
    double eval_accuracy;   /* on the data's eval split; -1 if it has none */
    size_t params;          /* parameters written to the output */
} rw_task_result_t;

/* Runs the task: reads the inputs, trains, writes out (whole or not at all).
 * Returns 0 with *res filled, RW_EINVAL for a spec or inputs that do not fit
 * the kind (why filled in), -ECANCELED when progress asked to stop, or the
 * error of the step that failed (reading, training, writing). */
int rw_task_run(const rw_task_spec_t *spec, const rw_task_inputs_t *in, const char *out,
                rw_task_progress_fn progress, void *ctx, rw_task_result_t *res, char *why,
                size_t whylen);

#endif
