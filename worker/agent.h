/* agent.h — the part of a worker that talks to a coordinator.
 *
 * An agent connects a DEALER to the coordinator, says HELLO with its
 * capabilities and threads, and then, for every LEASE: FETCHes the input
 * artifacts its cache lacks (by checksum, so nothing is fetched twice),
 * runs the task on a training thread through an executor, reports PROGRESS
 * every few steps, uploads the output and sends RESULT, then waits for the
 * next lease. Heartbeats go both ways the whole time: the loop never waits
 * on training (the training thread hands its progress over through a
 * mutex-protected slot and wakes the loop with an eventfd; only the loop
 * touches the socket). A CANCEL, or a lease the coordinator no longer
 * thinks this worker holds, makes the executor's progress callback ask it
 * to stop. A coordinator silent past the timeout is gone: the agent drops
 * its task, closes the socket and reconnects with exponential backoff
 * (capped), and registers again. SHUTDOWN (or agent_stop) ends the run.
 *
 * The worker binary and the router service both run an agent (with caps
 * "train" and "router"); the router service also serves its own socket on
 * the agent's loop (agent_opts.extra_sock). What a task is run with is an
 * executor (agent_exec_ops): the real one (exec.c) calls rw_task_run; a
 * benchmark plugs in one that sleeps.
 */
#ifndef RW_WORKER_AGENT_H
#define RW_WORKER_AGENT_H

#include "curve.h"
#include "msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_METRICS_MAX 16

/* A task as files: what an executor gets (all borrowed for the run). */
typedef struct agent_work {
    uint64_t task;
    uint32_t attempt;
    msg_task_kind_t kind;
    const char *domain;    /* NULL for a task of all domains */
    const char *config;    /* the lease's config: the task spec (task.h) as JSON */
    const char *tokenizer; /* input files, NULL when the lease named none */
    const char *data;
    const char *base;
    const char *const *experts;
    size_t n_experts;
    const char *out; /* where the output goes (whole or not at all) */
    int threads;     /* the worker's threads */
} agent_work_t;

typedef struct agent_step {
    uint64_t step, steps;
    double loss, accuracy, pairs_per_s;
} agent_step_t;

/* Told every few steps, on the training thread; nonzero means stop. */
typedef int (*agent_progress_fn)(void *pctx, const agent_step_t *st);

typedef struct agent_outcome {
    msg_metric_t metrics[AGENT_METRICS_MAX]; /* names are static strings */
    size_t n_metrics;
} agent_outcome_t;

struct agent_exec_ops {
    /* Runs w (on the training thread). Returns 0 with w->out written and
     * *res filled, -ECANCELED when progress asked to stop, or a negative
     * error with why (whylen bytes) filled in. */
    int (*run)(void *ctx, const agent_work_t *w, agent_progress_fn progress, void *pctx,
               agent_outcome_t *res, char *why, size_t whylen);
};

/* The executor of real tasks: rw_task_run (exec.c). */
extern const struct agent_exec_ops agent_task_ops;

#define AGENT_CACHE_MAX_DEFAULT   (10ull << 30) /* --cache-max */
#define AGENT_CACHE_GRACE_DEFAULT 60            /* --cache-grace, seconds */

typedef struct agent_opts {
    const char *connect;     /* the coordinator's endpoint */
    const char *id;          /* worker id (NULL: host:pid) */
    const char *const *caps; /* "train", "router" */
    size_t n_caps;
    int threads;                       /* for training (>= 1) */
    const char *cache_dir;             /* the artifact cache (created) */
    uint64_t cache_max;                /* bytes it may hold (0: no limit) */
    uint32_t cache_grace_s;            /* an artifact used this recently stays (see store_trim) */
    curve_opts_t curve;                /* --key, --server-key (curve.h); zeroed: no CURVE */
    uint32_t backoff_ms;               /* first reconnect wait (0: 100) */
    uint32_t backoff_max_ms;           /* its cap (0: 5000) */
    uint32_t timeout_ms;               /* coordinator silence that means gone (0: 5 heartbeats) */
    uint32_t progress_ms;              /* least time between PROGRESS messages (0: 200) */
    const struct agent_exec_ops *exec; /* NULL: agent_task_ops */
    void *exec_ctx;
    /* another socket served on the agent's loop, or NULL: on input,
     * on_extra(extra_ctx) is called to drain it */
    void *extra_sock;
    void (*on_extra)(void *extra_ctx);
    void *extra_ctx;
    /* a new domain it brings (bring.h), or NULL: HELLO says so, and its
     * upload (an artifact in the cache) goes up when WELCOME asks for it */
    const char *domain;
    uint64_t domain_pairs, domain_bytes, domain_shard, domain_upload;
} agent_opts_t;

typedef struct agent agent_t;

/* An agent (not connected yet). Returns NULL with *err set (bad options:
 * RW_EINVAL; the cache: -errno). */
agent_t *agent_new(const agent_opts_t *o, int *err);
/* Accepts NULL; NULLs *self_p. */
void agent_destroy(agent_t **self_p);

/* Runs until SHUTDOWN, a REFUSE, or agent_stop. Returns 0 (SHUTDOWN or
 * stopped), or the REFUSE's code (or, when the upload of the domain it
 * brings was refused, that code). */
int agent_run(agent_t *a);
/* Ends a run from a signal handler or another thread: the task is
 * cancelled and agent_run returns. */
void agent_stop(agent_t *a);

typedef struct agent_stats {
    uint64_t connects; /* HELLOs that got a WELCOME */
    uint64_t tasks;    /* results sent */
    uint64_t failed;   /* tasks that failed or were cancelled */
    uint64_t fetched;  /* artifacts fetched */
    uint64_t refused;  /* results or uploads the coordinator refused */
} agent_stats_t;
void agent_stats(const agent_t *a, agent_stats_t *st);
/* The worker id it registers with. */
const char *agent_id(const agent_t *a);
/* Why the coordinator turned it away (a REFUSE's reason), or why it gave
 * up on the endpoint (a router service, not a coordinator), or NULL. */
const char *agent_refusal(const agent_t *a);

#endif
