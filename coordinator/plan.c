/* plan.c — a job's task graph; see plan.h.
 *
 * Tasks live in one array in id order (id i at index i-1). A job has tens of
 * tasks, a benchmark a few hundred, so every query is a linear scan: simpler
 * than an index, and far cheaper than one message on the wire.
 */
#include "plan.h"

#include "alloc.h"
#include "err.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct plan {
    plan_task_t *t;
    size_t n, cap;
    uint32_t max_attempts;
};

plan_t *plan_new(uint32_t max_attempts)
{
    plan_t *p = rw_new(plan_t);
    p->max_attempts = max_attempts ? max_attempts : 3;
    if (p->max_attempts > MSG_ATTEMPTS_MAX)
        p->max_attempts = MSG_ATTEMPTS_MAX;
    return p;
}

void plan_destroy(plan_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    plan_t *p = *self_p;
    for (size_t i = 0; i < p->n; i++)
        free(p->t[i].deps);
    free(p->t);
    free(p);
    *self_p = NULL;
}

static plan_task_t *get(const plan_t *p, uint64_t id)
{
    return id >= 1 && id <= p->n ? &p->t[id - 1] : NULL;
}

uint64_t plan_add(plan_t *p, msg_task_kind_t kind, const char *domain, const char *cap,
                  const uint64_t *deps, size_t n_deps)
{
    if (domain && strlen(domain) > MSG_NAME_MAX)
        return 0;
    if (!cap || strlen(cap) >= PLAN_CAP_MAX)
        return 0;
    for (size_t i = 0; i < n_deps; i++)
        if (!get(p, deps[i]))
            return 0;
    rw_grow(&p->t, &p->cap, p->n + 1);
    plan_task_t *t = &p->t[p->n];
    memset(t, 0, sizeof *t);
    t->id = ++p->n;
    t->kind = kind;
    snprintf(t->domain, sizeof t->domain, "%s", domain ? domain : "");
    snprintf(t->cap, sizeof t->cap, "%s", cap);
    if (n_deps) {
        t->deps = rw_new_array(uint64_t, n_deps);
        memcpy(t->deps, deps, n_deps * sizeof *deps);
    }
    t->n_deps = n_deps;
    return t->id;
}

int plan_pin(plan_t *p, uint64_t id, const char *worker)
{
    plan_task_t *t = get(p, id);
    if (!t)
        return RW_ENOTFOUND;
    if (worker && strlen(worker) > MSG_NAME_MAX)
        return RW_EINVAL;
    snprintf(t->on, sizeof t->on, "%s", worker ? worker : "");
    return 0;
}

size_t plan_size(const plan_t *p)
{
    return p->n;
}

const plan_task_t *plan_task(const plan_t *p, uint64_t id)
{
    return get(p, id);
}

const plan_task_t *plan_find(const plan_t *p, msg_task_kind_t kind, const char *domain)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->t[i].kind == kind && (!domain || strcmp(p->t[i].domain, domain) == 0))
            return &p->t[i];
    return NULL;
}

static bool ready(const plan_t *p, const plan_task_t *t)
{
    if (t->state != PLAN_PENDING)
        return false;
    for (size_t i = 0; i < t->n_deps; i++)
        if (get(p, t->deps[i])->state != PLAN_DONE)
            return false;
    return true;
}

bool plan_ready(const plan_t *p, const plan_task_t *t)
{
    return ready(p, t);
}

bool plan_runs_on(const plan_task_t *t, const char *worker)
{
    return !t->on[0] || (worker && strcmp(t->on, worker) == 0);
}

const plan_task_t *plan_next(const plan_t *p, const char *cap, const char *worker)
{
    const plan_task_t *first = NULL;
    for (size_t i = 0; i < p->n; i++) {
        const plan_task_t *t = &p->t[i];
        if (strcmp(t->cap, cap) != 0 || !plan_runs_on(t, worker) || !ready(p, t))
            continue;
        if (t->attempt > 0)
            return t;
        if (!first)
            first = t;
    }
    return first;
}

int plan_lease(plan_t *p, uint64_t id, const char *worker, uint64_t now, uint64_t lease_ms)
{
    plan_task_t *t = get(p, id);
    if (!t)
        return RW_ENOTFOUND;
    if (!ready(p, t))
        return RW_ESTATE;
    if (t->attempt >= MSG_ATTEMPTS_MAX) { /* the wire's limit: plan_requeue fails it first */
        t->state = PLAN_FAILED;
        return RW_ETOOBIG;
    }
    t->attempt++;
    t->state = PLAN_LEASED;
    snprintf(t->worker, sizeof t->worker, "%s", worker);
    t->leased_ms = now;
    t->deadline_ms = now + lease_ms;
    return (int)t->attempt;
}

int plan_check(const plan_t *p, uint64_t id, uint32_t attempt, const char *worker)
{
    const plan_task_t *t = get(p, id);
    if (!t)
        return RW_ENOTFOUND;
    if (t->state != PLAN_LEASED || t->attempt != attempt || strcmp(t->worker, worker) != 0)
        return RW_ESTATE;
    return 0;
}

int plan_unsend(plan_t *p, uint64_t id, uint32_t attempt, const char *worker)
{
    int rc = plan_check(p, id, attempt, worker);
    if (rc < 0)
        return rc;
    plan_task_t *t = get(p, id);
    t->attempt--;
    t->state = PLAN_PENDING;
    return 0;
}

int plan_complete(plan_t *p, uint64_t id, uint32_t attempt, const char *worker, uint64_t artifact,
                  uint64_t now)
{
    int rc = plan_check(p, id, attempt, worker);
    if (rc < 0)
        return rc;
    plan_task_t *t = get(p, id);
    t->state = PLAN_DONE;
    t->artifact = artifact;
    t->done_ms = now;
    return 0;
}

/* Pending again, or failed when its leases ran out of numbers. */
static void back_to_pending(plan_task_t *t)
{
    t->state = PLAN_PENDING;
    if (t->attempt >= MSG_ATTEMPTS_MAX) {
        snprintf(t->why, sizeof t->why, "leased %u times without a result", t->attempt);
        t->state = PLAN_FAILED;
    }
}

int plan_release(plan_t *p, uint64_t id, uint32_t attempt, const char *worker, const char *why,
                 bool spent)
{
    int rc = plan_check(p, id, attempt, worker);
    if (rc < 0)
        return rc;
    plan_task_t *t = get(p, id);
    if (spent) {
        snprintf(t->why, sizeof t->why, "%s", why ? why : "no reason given");
        t->why[rw_utf8_check(t->why, strlen(t->why))] = '\0'; /* not cut inside a character */
        t->failures++;
    }
    back_to_pending(t);
    if (t->failures >= p->max_attempts)
        t->state = PLAN_FAILED;
    return 0;
}

size_t plan_lost(plan_t *p, const char *worker)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        plan_task_t *t = &p->t[i];
        if (t->state == PLAN_LEASED && strcmp(t->worker, worker) == 0)
            n += plan_release(p, t->id, t->attempt, worker, "its worker was lost", true) == 0;
    }
    return n;
}

size_t plan_expired(const plan_t *p, uint64_t now, uint64_t *ids, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->t[i].state == PLAN_LEASED && now >= p->t[i].deadline_ms) {
            if (n < cap)
                ids[n] = p->t[i].id;
            n++;
        }
    }
    return n;
}

size_t plan_requeue(plan_t *p, uint64_t id)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->t[i].state == PLAN_LEASED && (id == 0 || p->t[i].id == id)) {
            back_to_pending(&p->t[i]);
            n++;
        }
    }
    return n;
}

int plan_undo(plan_t *p, uint64_t id)
{
    plan_task_t *t = get(p, id);
    if (!t)
        return RW_ENOTFOUND;
    if (t->state != PLAN_DONE)
        return RW_ESTATE;
    t->state = PLAN_PENDING;
    t->artifact = 0;
    t->done_ms = 0;
    return 0;
}

size_t plan_retry(plan_t *p, uint64_t id)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->t[i].state == PLAN_FAILED && (id == 0 || p->t[i].id == id) &&
            p->t[i].attempt < MSG_ATTEMPTS_MAX) {
            p->t[i].state = PLAN_PENDING;
            p->t[i].failures = 0;
            n++;
        }
    }
    return n;
}

void plan_count(const plan_t *p, plan_counts_t *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < p->n; i++) {
        switch (p->t[i].state) {
        case PLAN_PENDING:
            c->pending++;
            c->ready += ready(p, &p->t[i]);
            break;
        case PLAN_LEASED:
            c->leased++;
            break;
        case PLAN_DONE:
            c->done++;
            break;
        case PLAN_FAILED:
            c->failed++;
            break;
        }
    }
}

bool plan_finished(const plan_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->t[i].state != PLAN_DONE)
            return false;
    return true;
}

const plan_task_t *plan_failed(const plan_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->t[i].state == PLAN_FAILED)
            return &p->t[i];
    return NULL;
}

const char *plan_state_name(plan_state_t s)
{
    static const char *const names[] = {"pending", "leased", "done", "failed"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}
