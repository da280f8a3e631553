/* exec.c — the executor of real tasks: a lease's spec through rw_task_run.
 *
 * The spec travels as JSON (task.h); the worker's own threads override
 * whatever the spec says, since only the worker knows what it was given.
 */
#include "agent.h"

#include "blas.h"
#include "err.h"
#include "task.h"

#include <stdio.h>
#include <string.h>

typedef struct progress_ctx {
    agent_progress_fn fn;
    void *pctx;
} progress_ctx_t;

static int on_step(void *ctx, const rw_step_stats_t *st, long steps)
{
    progress_ctx_t *p = ctx;
    agent_step_t s = {.step = st->step > 0 ? (uint64_t)st->step : 0,
                      .steps = steps > 0 ? (uint64_t)steps : 1,
                      .loss = st->loss,
                      .accuracy = st->accuracy,
                      .pairs_per_s = st->pairs_per_s};
    return p->fn(p->pctx, &s);
}

static void metric(agent_outcome_t *res, const char *name, double v)
{
    if (res->n_metrics < AGENT_METRICS_MAX && v == v && v > -1e300 && v < 1e300)
        res->metrics[res->n_metrics++] = (msg_metric_t){name, v};
}

static int run(void *ctx, const agent_work_t *w, agent_progress_fn progress, void *pctx,
               agent_outcome_t *res, char *why, size_t whylen)
{
    (void)ctx;
    rw_task_spec_t spec;
    int rc = rw_task_spec_from_json(w->config, &spec, why, whylen);
    if (rc < 0)
        return rc;
    if (strcmp(rw_task_kind_name(spec.kind), msg_task_kind_name(w->kind)) != 0) {
        snprintf(why, whylen, "the lease says %s, its spec %s", msg_task_kind_name(w->kind),
                 rw_task_kind_name(spec.kind));
        rw_task_spec_fini(&spec);
        return RW_EINVAL;
    }
    spec.train.threads = w->threads;
    rw_blas_set_threads(w->threads);
    rw_task_inputs_t in = {.tokenizer = w->tokenizer,
                           .data = w->data,
                           .base = w->base,
                           .experts = w->experts,
                           .n_experts = w->n_experts};
    progress_ctx_t pc = {progress, pctx};
    rw_task_result_t r;
    memset(&r, 0, sizeof r);
    rc = rw_task_run(&spec, &in, w->out, on_step, &pc, &r, why, whylen);
    rw_task_spec_fini(&spec);
    if (rc < 0)
        return rc;
    metric(res, "steps", (double)r.steps);
    metric(res, "skipped", (double)r.skipped);
    metric(res, "seconds", r.seconds);
    metric(res, "pairs_per_s", r.pairs_per_s);
    metric(res, "train_loss", r.train_loss);
    metric(res, "train_accuracy", r.train_accuracy);
    metric(res, "epochs", r.epochs);
    if (r.kept_epoch > 0)
        metric(res, "kept_epoch", (double)r.kept_epoch);
    if (r.eval_accuracy >= 0)
        metric(res, "eval_accuracy", r.eval_accuracy);
    metric(res, "params", (double)r.params);
    return 0;
}

const struct agent_exec_ops agent_task_ops = {.run = run};
