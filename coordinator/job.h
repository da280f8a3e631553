/* job.h — the job of DESIGN.md, as the coordinator's service runs it.
 *
 * Given a prepared state directory (data.jsonl and tokenizer.json from the
 * data stage), the job puts the shared tokenizer, all the data and each
 * domain's pairs into the artifact store as shards, and plans:
 *
 *   seed                      stage 0: all domains; the baseline       (train)
 *   router                    domain classifier, needs nothing          (router)
 *   expert:D     <- seed      per domain, for moe                      (train)
 *   domain_rm:D  <- seed      per domain, for router                   (train)
 *   adapter:D    <- seed      per domain, for adapter                  (train)
 *   router_adapter <- seed    LoRA classifier on the frozen seed        (router)
 *   gates <- seed, experts    the MoE model and its gates              (router)
 *
 * in that order of priority (experts first: the gates wait for them). A
 * lease carries the task's spec (task.h) as JSON: rw_task_spec_init's
 * defaults for the kind, the job's domains, seed and the tokenizer's
 * vocabulary, then the job configuration's fragments deep-merged over it:
 *
 *   {"all": {...}, "seed": {...}, "expert": {...}, ...}
 *
 * where each fragment has the shape of rw_task_spec_to_json's object
 * ("all" first, then the kind's own). Once every task is done the job's
 * finish (finish.c, off the loop) writes the baseline and the three bundles
 * into OUT/bundles/{baseline,moe,router,adapter}, evaluates each on the
 * held-out pairs, records that in its manifest, and writes
 * STATE/results.json and the report (OUT/report.md and friends).
 */
#ifndef RW_COORD_JOB_H
#define RW_COORD_JOB_H

#include "service.h"

#include <jansson.h>
#include <stdint.h>

typedef struct coord_job_opts {
    const char *state_dir; /* data.jsonl, tokenizer.json (borrowed) */
    const char *out_dir;   /* bundles/, report (borrowed) */
    const json_t *config;  /* the job configuration (borrowed; may be NULL) */
    uint64_t seed;         /* for initialization and shuffling */
    const char *data;      /* where the data came from, for the report ("synthetic") */
    double prepare_s;      /* seconds the data stage took (0 if it ran before) */
} coord_job_opts_t;

typedef struct coord_job coord_job_t;

/* Reads the state directory's data (its domains) and tokenizer (its
 * vocabulary) and checks the configuration. Returns 0 with *out, or a
 * negative error with why filled in. */
int coord_job_new(const coord_job_opts_t *o, coord_job_t **out, char *why, size_t whylen);
/* Accepts NULL; NULLs *self_p. */
void coord_job_destroy(coord_job_t **self_p);

/* The service's hooks; the job pointer is a coord_job_t. */
extern const struct coord_job_ops coord_job_ops;

/* The spec JSON a lease of task kind (for domain, or NULL) carries, as a
 * new string (caller frees); NULL with why filled in when the
 * configuration does not make a valid spec. */
char *coord_job_spec(coord_job_t *j, msg_task_kind_t kind, const char *domain, char *why,
                     size_t whylen);

/* Deep-merges object src into object dst (both borrowed): objects merge,
 * anything else in src replaces. */
void coord_json_merge(json_t *dst, const json_t *src);

/* finish.c: the end of the job (coord_job_ops.finish). */
int coord_job_finish(void *job, const plan_t *p, char *why, size_t whylen);

#endif
