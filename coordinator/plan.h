/* plan.h — a job's task graph: what is to be done, in what order, by whom.
 *
 * A plan is a list of tasks, each with the tasks it depends on, the
 * capability a peer must offer to run it ("train" or "router"), and its
 * lease state: pending (waiting, or ready once its dependencies are done),
 * leased (attempt k held by one worker until a deadline) or done (with the
 * artifact it produced). A lease that ends without a result — the worker
 * was lost, the deadline passed, the task failed there — puts the task back
 * to pending, and the next lease is attempt k+1; anything that still comes
 * back for attempt k is stale and refused. A task whose leases failed
 * max_attempts times (it failed there, its worker was lost, its lease ran
 * out) is failed, and so is the job; a lease taken back to run elsewhere or
 * dropped by a restart of the coordinator is no failure.
 *
 * The plan is pure bookkeeping: no sockets, no clock (times are the
 * caller's milliseconds), no files. The service drives it and journals what
 * it does, and a journal replayed through the same calls rebuilds it.
 * Ready tasks are leased in the order they were added, so the order of
 * plan_add is the job's priority.
 */
#ifndef RW_COORD_PLAN_H
#define RW_COORD_PLAN_H

#include "msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLAN_CAP_MAX 16 /* bytes of a capability name, NUL included */

typedef enum { PLAN_PENDING = 0, PLAN_LEASED, PLAN_DONE, PLAN_FAILED } plan_state_t;

typedef struct plan_task {
    uint64_t id; /* 1, 2, ... in the order added */
    msg_task_kind_t kind;
    char domain[MSG_NAME_MAX + 1]; /* "" for a task of all domains */
    char cap[PLAN_CAP_MAX];        /* what its peer must offer */
    uint64_t *deps;                /* owned: ids of tasks added before it */
    size_t n_deps;
    plan_state_t state;
    uint32_t attempt;              /* of the current or last lease; 0 before the first */
    uint32_t failures;             /* leases that ended without a result through the task's
                                      own doing (not a move, not a coordinator restart) */
    char worker[MSG_NAME_MAX + 1]; /* the lease's holder (or last holder); "" never leased */
    char on[MSG_NAME_MAX + 1];     /* the only worker that may run it; "" any */
    uint64_t leased_ms;            /* when the current or last lease began */
    uint64_t deadline_ms;          /* when the current lease runs out */
    uint64_t done_ms;              /* when its result came */
    uint64_t artifact;             /* its result, once done */
    char why[512];                 /* why its last lease ended without a result */
} plan_task_t;

typedef struct plan plan_t;

/* An empty plan whose tasks get at most max_attempts leases (0: 3). */
plan_t *plan_new(uint32_t max_attempts);
/* Accepts NULL; NULLs *self_p. */
void plan_destroy(plan_t **self_p);

/* Adds a task of kind (for domain, or NULL) that needs cap and waits for
 * deps[0..n_deps) (ids already in the plan). Returns its id, or 0 if a
 * dependency does not exist or a name is too long. */
uint64_t plan_add(plan_t *p, msg_task_kind_t kind, const char *domain, const char *cap,
                  const uint64_t *deps, size_t n_deps);

/* Task id may run on worker only (its inputs are there and nowhere else),
 * or on any worker again when worker is NULL. Returns 0, RW_ENOTFOUND for
 * no such task, RW_EINVAL for a name too long. */
int plan_pin(plan_t *p, uint64_t id, const char *worker);

size_t plan_size(const plan_t *p);
/* The task with id (borrowed, valid until the plan changes size), or NULL. */
const plan_task_t *plan_task(const plan_t *p, uint64_t id);
/* The first task of kind (for domain, or any domain when NULL), or NULL. */
const plan_task_t *plan_find(const plan_t *p, msg_task_kind_t kind, const char *domain);

/* The first ready task (pending, every dependency done) that needs cap and
 * may run on worker (NULL: only tasks pinned to no worker), or NULL when
 * there is none. A task taken back from a worker comes before those never
 * leased: it was due first, and the job waits for it. */
const plan_task_t *plan_next(const plan_t *p, const char *cap, const char *worker);
/* Whether task t may run on worker (it is pinned to none, or to it). */
bool plan_runs_on(const plan_task_t *t, const char *worker);
/* Whether task t (of p) is ready: pending, every dependency done. */
bool plan_ready(const plan_t *p, const plan_task_t *t);

/* Leases task id to worker from now until now + lease_ms. Returns the
 * attempt number (>= 1); RW_ENOTFOUND for no such task; RW_ESTATE if it is
 * not ready. */
int plan_lease(plan_t *p, uint64_t id, const char *worker, uint64_t now, uint64_t lease_ms);

/* Whether attempt of task id is the live lease of worker. Returns 0;
 * RW_ENOTFOUND for no such task; RW_ESTATE when the task is not leased, is
 * leased under another attempt (a stale result) or to another worker. */
int plan_check(const plan_t *p, uint64_t id, uint32_t attempt, const char *worker);

/* The live lease of task id (attempt, worker) never reached its worker (the
 * send failed): the task is pending again and the attempt is not spent, so
 * a peer that vanished before its lease went out costs the task nothing.
 * Returns 0 or RW_ESTATE/RW_ENOTFOUND as plan_check. */
int plan_unsend(plan_t *p, uint64_t id, uint32_t attempt, const char *worker);

/* The result of the live lease (as plan_check) came: the task is done with
 * artifact. Returns 0 or plan_check's error (and nothing changes). */
int plan_complete(plan_t *p, uint64_t id, uint32_t attempt, const char *worker, uint64_t artifact,
                  uint64_t now);

/* The live lease (as plan_check) ended without a result, for the reason why
 * (may be NULL; kept for the task's failure message): the task is pending
 * again. A failure (spent) counts toward max_attempts, and the task is
 * failed when it reaches them; a lease taken back for another worker is
 * not one. Returns 0 or plan_check's error. */
int plan_release(plan_t *p, uint64_t id, uint32_t attempt, const char *worker, const char *why,
                 bool spent);

/* worker is gone: every task it holds is released. Returns how many. */
size_t plan_lost(plan_t *p, const char *worker);

/* Tasks whose lease ran out by now, into ids[0..cap) (they stay leased: the
 * caller cancels them and calls plan_release). Returns how many there are
 * (possibly more than cap). */
size_t plan_expired(const plan_t *p, uint64_t now, uint64_t *ids, size_t cap);

/* Every leased task (id 0), or task id if leased, back to pending, its
 * attempt kept (so results of the old attempts stay stale) and no failure
 * counted: for a coordinator that restarted. Returns how many. */
size_t plan_requeue(plan_t *p, uint64_t id);
/* Done task id is to be done again (its output is gone): pending, its
 * attempts numbered on. Returns 0, RW_ENOTFOUND, or RW_ESTATE if not done. */
int plan_undo(plan_t *p, uint64_t id);
/* Every failed task (id 0), or task id if failed, pending again with no
 * failures: a coordinator started again on a failed job tries once more
 * (its operator may have fixed the cause). Not a task leased as often as
 * the wire can number (MSG_ATTEMPTS_MAX). Returns how many. */
size_t plan_retry(plan_t *p, uint64_t id);

typedef struct plan_counts {
    size_t pending, ready, leased, done, failed;
} plan_counts_t;
void plan_count(const plan_t *p, plan_counts_t *c);
/* Every task done (true for an empty plan). */
bool plan_finished(const plan_t *p);
/* The first task that failed for good, or NULL. */
const plan_task_t *plan_failed(const plan_t *p);

const char *plan_state_name(plan_state_t s); /* "pending"; "?" if unknown */

#endif
