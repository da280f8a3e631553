/* service.c — the coordinator's loop: handles, records, leases, status.
 *
 * One thread runs everything but the job's finish (uv_queue_work). The
 * ROUTER's ZMQ_FD is edge-triggered: it signals once when the socket's
 * state changes, and a zmq_send may consume that edge, so every callback
 * ends by draining the socket while ZMQ_EVENTS says there is input, and a
 * drain cut short (to let timers run) continues from an idle handle.
 * Handles are freed only in their close callbacks; the loop ends when the
 * last one has closed.
 */
#include "service_int.h"

#include "afile.h"
#include "alloc.h"
#include "err.h"
#include "log.h"
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define WHO         "coordinator"
#define DRAIN_BATCH 256 /* messages handled before timers get a turn */

uint64_t coord__now(coord_t *c)
{
    return uv_now(&c->loop);
}

int coord__send(coord_t *c, const wire_peer_t *to, const msg_t *m)
{
    return wire_send(c->w, to, m, ZMQ_DONTWAIT);
}

static void shutdown_all(coord_t *c, const char *reason);

/* ---- records: journaled, then applied; a replay applies the same ---- */

static int apply(coord_t *c, const json_t *rec)
{
    const char *ev = json_string_value(json_object_get(rec, "ev"));
    uint64_t task = (uint64_t)json_integer_value(json_object_get(rec, "task"));
    uint32_t attempt = (uint32_t)json_integer_value(json_object_get(rec, "attempt"));
    const char *worker = json_string_value(json_object_get(rec, "worker"));
    int rc = 0;
    if (!ev)
        return RW_EPARSE;
    if (strcmp(ev, "task") == 0) {
        msg_task_kind_t kind = msg_task_kind_parse(json_string_value(json_object_get(rec, "kind")));
        const char *domain = json_string_value(json_object_get(rec, "domain"));
        const char *cap = json_string_value(json_object_get(rec, "cap"));
        json_t *deps = json_object_get(rec, "deps");
        uint64_t d[MSG_DOMAINS_MAX + 8];
        size_t n = json_array_size(deps);
        if (n > sizeof d / sizeof d[0] || kind == MSG_TASK__NONE || !cap)
            return RW_EPARSE;
        for (size_t i = 0; i < n; i++)
            d[i] = (uint64_t)json_integer_value(json_array_get(deps, i));
        const char *on = json_string_value(json_object_get(rec, "on"));
        if (plan_add(c->plan, kind, domain, cap, d, n) != task)
            rc = RW_ESTATE;
        else if (on)
            rc = plan_pin(c->plan, task, on);
    } else if (strcmp(ev, "lease") == 0) {
        /* a task leased again in a later run of the coordinator: that run
         * began by requeueing the leases it replayed (below), which is not
         * journaled, so replay does it here, for this task */
        if (c->replaying) {
            plan_requeue(c->plan, task);
            plan_retry(c->plan, task); /* failed, then tried again by a restart */
        }
        rc = worker ? plan_lease(c->plan, task, worker, coord__now(c), c->o.lease_ms) : RW_EPARSE;
        rc = rc < 0 ? rc : 0;
    } else if (strcmp(ev, "done") == 0) {
        uint64_t art = (uint64_t)json_integer_value(json_object_get(rec, "artifact_id"));
        rc = worker ? plan_complete(c->plan, task, attempt, worker, art, coord__now(c)) : RW_EPARSE;
    } else if (strcmp(ev, "undone") == 0) {
        rc = plan_undo(c->plan, task);
    } else if (strcmp(ev, "unsent") == 0) {
        rc = worker ? plan_unsend(c->plan, task, attempt, worker) : RW_EPARSE;
    } else if (strcmp(ev, "release") == 0) {
        const char *why = json_string_value(json_object_get(rec, "why"));
        json_t *spent = json_object_get(rec, "spent"); /* absent: a failure */
        rc = worker ? plan_release(c->plan, task, attempt, worker, why, !json_is_false(spent))
                    : RW_EPARSE;
    }
    if (rc < 0) {
        RW_ERROR(WHO, "journal record '%s' (task %" PRIu64 ") does not apply: %s", ev, task,
                 rw_strerror(rc));
        return rc;
    }
    c->status_dirty = true;
    return c->ops->apply ? c->ops->apply(c->job, rec) : 0;
}

static int replay_one(void *ctx, const json_t *rec)
{
    return apply(ctx, rec);
}

int coord__record(coord_t *c, const char *ev, json_t *fields)
{
    json_t *rec = fields ? fields : json_object();
    struct timeval tv;
    gettimeofday(&tv, NULL);
    json_object_set_new(rec, "ev", json_string(ev));
    json_object_set_new(rec, "ts", json_real((double)tv.tv_sec + tv.tv_usec / 1e6));
    int rc = journal_append(c->journal, ev, json_incref(rec));
    if (rc < 0) {
        /* not applied either: the state in memory stays the journal's */
        char what[64];
        snprintf(what, sizeof what, "journal '%s'", ev);
        coord__storage_failed(c, what, rc);
        json_decref(rec);
        return rc;
    }
    rc = apply(c, rec);
    json_decref(rec);
    return rc;
}

void coord__storage_failed(coord_t *c, const char *what, int rc)
{
    char why[512];
    snprintf(why, sizeof why,
             "cannot %s in %s: %s; stopped, with everything done so far kept: start it again "
             "once that is fixed",
             what, c->o.state_dir, rw_strerror(rc));
    RW_ERROR(WHO, "%s", why);
    if (!c->storage_failed) /* the first failure is the one to report */
        snprintf(c->error, sizeof c->error, "%s", why);
    if (!c->started)
        return; /* the start fails with rc */
    c->exit_code = 1;
    c->storage_failed = c->quiet = true;
    shutdown_all(c, "the coordinator cannot write its state");
}

int coord_record(coord_t *c, const char *ev, json_t *fields)
{
    return coord__record(c, ev, fields);
}

uint64_t coord_add_task(coord_t *c, msg_task_kind_t kind, const char *domain, const char *cap,
                        const uint64_t *deps, size_t n_deps)
{
    return coord_add_task_on(c, kind, domain, cap, NULL, deps, n_deps);
}

void coord_redeclare(coord_t *c, uint64_t first)
{
    c->redeclare_upto = first ? plan_size(c->plan) : 0;
    c->redeclared = first ? first - 1 : 0;
}

/* Whether task id, already in the plan, is the one now asked for. */
static bool same_task(const plan_task_t *t, msg_task_kind_t kind, const char *domain,
                      const char *cap, const char *on, const uint64_t *deps, size_t n_deps)
{
    if (!t || t->kind != kind || strcmp(t->domain, domain ? domain : "") != 0 ||
        strcmp(t->cap, cap ? cap : "") != 0 || strcmp(t->on, on ? on : "") != 0 ||
        t->n_deps != n_deps)
        return false;
    for (size_t i = 0; i < n_deps; i++)
        if (t->deps[i] != deps[i])
            return false;
    return true;
}

uint64_t coord_add_task_on(coord_t *c, msg_task_kind_t kind, const char *domain, const char *cap,
                           const char *on, const uint64_t *deps, size_t n_deps)
{
    if (c->redeclared < c->redeclare_upto) {
        uint64_t id = ++c->redeclared;
        if (same_task(plan_task(c->plan, id), kind, domain, cap, on, deps, n_deps))
            return id;
        RW_ERROR(WHO, "the journal's task %" PRIu64 " is not the %s%s%s task the job plans", id,
                 msg_task_kind_name(kind), domain ? " " : "", domain ? domain : "");
        return 0;
    }
    json_t *d = json_array();
    for (size_t i = 0; i < n_deps; i++)
        json_array_append_new(d, json_integer((json_int_t)deps[i]));
    json_t *rec = json_pack("{s:I,s:s,s:s,s:o}", "task", (json_int_t)(plan_size(c->plan) + 1),
                            "kind", msg_task_kind_name(kind), "cap", cap ? cap : "", "deps", d);
    if (domain)
        json_object_set_new(rec, "domain", json_string(domain));
    if (on)
        json_object_set_new(rec, "on", json_string(on));
    return coord__record(c, "task", rec) == 0 ? plan_size(c->plan) : 0;
}

/* ---- leasing ---- */

/* Journals the end of a lease without a result; spent: a failure. */
static void record_release(coord_t *c, uint64_t task, uint32_t attempt, const char *worker,
                           const char *why, bool spent)
{
    json_t *rec = json_pack("{s:I,s:i,s:s,s:s}", "task", (json_int_t)task, "attempt", (int)attempt,
                            "worker", worker, "why", why);
    if (!spent)
        json_object_set_new(rec, "spent", json_false());
    coord__record(c, "release", rec);
}

static void send_lease(coord_t *c, peer_t *p, const plan_task_t *t)
{
    msg_t m;
    msg_init(&m, MSG_LEASE);
    int rc = c->ops->lease(c->job, t, &m.lease);
    m.lease.task = t->id;
    m.lease.attempt = t->attempt;
    m.lease.kind = t->kind;
    m.lease.deadline_ms = c->o.lease_ms;
    bool unsent = false;
    if (rc == 0)
        unsent = (rc = coord__send(c, &p->addr, &m)) < 0;
    msg_fini(&m);
    if (rc < 0) {
        RW_WARN(WHO, "could not lease task %" PRIu64 " to %s: %s", t->id, p->name, rw_strerror(rc));
        /* a lease that never left costs no attempt (a peer gone while the
         * loop was busy would otherwise spend them all in a few ms); one
         * the job could not fill does */
        if (unsent)
            coord__record(c, "unsent",
                          json_pack("{s:I,s:i,s:s}", "task", (json_int_t)t->id, "attempt",
                                    (int)t->attempt, "worker", p->name));
        else
            record_release(c, t->id, t->attempt, p->name, rw_strerror(rc), true);
        if (rc == -EHOSTUNREACH)
            coord__lose(c, p, "unreachable");
        return;
    }
    if (peer_active(p) == 0) {
        p->step = p->steps = 0;
        p->loss = p->accuracy = p->pairs_per_s = 0;
    }
    peer_lease_add(p, t);
    c->st.leases++;
    RW_INFO(WHO, "task %" PRIu64 " %s%s%s attempt %u -> %s", t->id, msg_task_kind_name(t->kind),
            t->domain[0] ? ":" : "", t->domain, t->attempt, p->name);
}

void coord__release(coord_t *c, peer_t *p, uint64_t task, uint32_t attempt, const char *why,
                    bool spent)
{
    if (plan_check(c->plan, task, attempt, p->name) == 0)
        record_release(c, task, attempt, p->name, why, spent);
}

void coord__cancel(coord_t *c, peer_t *p, peer_lease_t *l, const char *why, bool spent)
{
    msg_t m;
    msg_init(&m, MSG_CANCEL);
    m.cancel.task = l->task;
    m.cancel.attempt = l->attempt;
    m.cancel.reason = why;
    coord__send(c, &p->addr, &m);
    l->cancelling = true;
    coord__release(c, p, l->task, l->attempt, why, spent);
}

/* Leases the first ready task p can run; returns whether it did. */
static bool lease_one(coord_t *c, peer_t *p)
{
    for (size_t k = 0; k < p->n_caps; k++) {
        const plan_task_t *t = plan_next(c->plan, p->caps[k], p->name);
        if (!t)
            continue;
        uint64_t id = t->id;
        json_t *rec = json_pack("{s:I,s:i,s:s,s:i}", "task", (json_int_t)id, "attempt",
                                (int)t->attempt + 1, "worker", p->name, "threads", (int)p->threads);
        if (coord__record(c, "lease", rec) < 0)
            return false;
        send_lease(c, p, plan_task(c->plan, id));
        return true;
    }
    return false;
}

/* An idle peer takes back a lease queued (not yet run) at another peer that
 * it could run, so leasing ahead never leaves a worker idle while work
 * waits in someone's queue. Returns whether one was taken back. */
static bool steal_for(coord_t *c, const peer_t *idle)
{
    for (size_t i = 0; i < c->peers.n; i++) {
        peer_t *q = c->peers.v[i];
        const peer_lease_t *run = peer_running(q);
        for (size_t k = q->n_leases; q != idle && run && k-- > 0;) {
            peer_lease_t *l = &q->leases[k];
            const plan_task_t *t = plan_task(c->plan, l->task);
            if (l == run || l->cancelling || l->started || !t || !peer_has_cap(idle, t->cap) ||
                !plan_runs_on(t, idle->name))
                continue;
            RW_INFO(WHO, "task %" PRIu64 " moves from %s's queue to idle %s", l->task, q->name,
                    idle->name);
            coord__cancel(c, q, l, "leased to an idle worker instead", false);
            return true;
        }
    }
    return false;
}

void coord__schedule(coord_t *c)
{
    if (c->state != COORD_RUNNING || c->stopping)
        return;
    /* every idle peer first, then leases ahead to busy ones, up to the limit */
    for (uint32_t depth = 0; depth <= c->o.lease_ahead; depth++) {
        for (size_t i = 0; i < c->peers.n; i++) {
            peer_t *p = c->peers.v[i];
            if (peer_active(p) != depth || p->n_leases == PEER_LEASES_MAX || p->released)
                continue;
            bool leased = lease_one(c, p);
            if (!leased && depth == 0 && steal_for(c, p))
                leased = lease_one(c, p);
            if (i < c->peers.n && c->peers.v[i] != p)
                i--; /* p was lost and removed */
        }
    }
    coord__check_done(c);
}

/* Removes the fresh uploads of l but keep. A task's outputs carry its kind
 * and domain, so no other task's output has their bytes; the same task's
 * other attempt may (training is deterministic), so they stay while one
 * is out or once it is done with them. */
static void drop_fresh(coord_t *c, const peer_lease_t *l, uint64_t keep)
{
    const plan_task_t *t = plan_task(c->plan, l->task);
    for (size_t i = 0; i < l->n_fresh; i++) {
        uint64_t id = l->fresh[i];
        if (id == keep || !t || t->state == PLAN_LEASED ||
            (t->state == PLAN_DONE && t->artifact == id))
            continue;
        char path[STORE_PATH_MAX];
        if (unlink(store_path(c->store, id, path, sizeof path)) == 0)
            RW_INFO(WHO,
                    "artifact %016" PRIx64 " removed: task %" PRIu64 " attempt %u ended "
                    "without naming it",
                    id, l->task, l->attempt);
    }
}

void coord__lease_end(coord_t *c, peer_t *p, uint64_t task, uint64_t keep)
{
    peer_lease_t *l = peer_lease_find(p, task, 0);
    if (l)
        drop_fresh(c, l, keep);
    peer_lease_remove(p, task);
}

void coord__lose(coord_t *c, peer_t *p, const char *why)
{
    if (p->released) /* told to go: its silence is its leaving */
        RW_INFO(WHO, "worker %s left (%s)", p->name, why);
    else
        RW_WARN(WHO, "worker %s lost (%s)", p->name[0] ? p->name : "?", why);
    if (p->dom_in_job && c->state == COORD_RUNNING && !c->stopping)
        RW_WARN(WHO,
                "domain %s waits for worker %s: its tasks run only there, where its pairs are; "
                "start the same `rewire-worker --domain %s` command again on that host",
                p->dom.name, p->name, p->dom.name);
    for (size_t i = 0; i < p->n_leases; i++)
        coord__release(c, p, p->leases[i].task, p->leases[i].attempt, why, true);
    for (size_t i = 0; i < p->n_leases; i++)
        drop_fresh(c, &p->leases[i], 0);
    c->st.lost++;
    peers_remove(&c->peers, p);
    c->status_dirty = true;
}

/* ---- the end of the job ---- */

static void finish_work(uv_work_t *req)
{
    coord_t *c = req->data;
    int rc = c->ops->finish(c->job, c->plan, c->error, sizeof c->error);
    c->exit_code = rc < 0 ? 1 : 0;
}

/* A refusal of p's domain goes to p, which is dropped (it exits); the job
 * is as it was. */
static void domain_refuse(coord_t *c, peer_t *p, int rc, const char *why)
{
    RW_WARN(WHO, "domain %s from %s refused: %s", p->dom.name, p->name, why);
    char path[STORE_PATH_MAX];
    if (p->dom_fresh) /* else the job may hold the same bytes: they stay */
        unlink(store_path(c->store, p->dom.upload, path, sizeof path));
    msg_t r;
    msg_init(&r, MSG_REFUSE);
    r.refuse.code = rc;
    r.refuse.reason = why[0] ? why : rw_strerror(rc);
    coord__send(c, &p->addr, &r);
    coord__lose(c, p, "its domain was refused");
}

static void domain_read_work(uv_work_t *req)
{
    coord_t *c = req->data;
    c->dom.why[0] = '\0';
    c->dom.rc =
        c->ops->domain_read(c->job, c->store, &c->dom.d, &c->dom.r, c->dom.why, sizeof c->dom.why);
}

static bool domains_waiting(coord_t *c);
static void pump(coord_t *c);

/* Ends the callback of a work off the loop as every callback ends: its
 * records go to disk and, unless the handles close, the socket is drained
 * (a send may have taken its edge). */
static void work_end(coord_t *c)
{
    if (!c->stopping) {
        pump(c);
        return;
    }
    int rc = journal_sync(c->journal);
    if (rc < 0)
        coord__storage_failed(c, "flush the journal", rc);
}

/* A read's artifact that no record will name: it holds d's data, which is
 * not in the job, so no other record of the job names those bytes. */
static void domain_read_discard(coord_t *c)
{
    char path[STORE_PATH_MAX];
    if (c->dom.r.artifact)
        unlink(store_path(c->store, c->dom.r.artifact, path, sizeof path));
}

/* The read is over: the job adds p's domain (its tasks and a router update
 * planned), or p gets the refusal. A peer gone meanwhile (lost, or its id
 * taken by a new connection, which uploads again) is forgotten. */
static void domain_read_after(uv_work_t *req, int status)
{
    coord_t *c = req->data;
    c->dom.running = false;
    peer_t *p = peers_by_name(&c->peers, c->dom.peer);
    if (!p || !p->dom_reading) {
        RW_INFO(WHO, "domain %s: %s left while its data was read; it is not in the job",
                c->dom.d.name, c->dom.peer);
        domain_read_discard(c);
    } else if (c->stopping) {
        domain_read_discard(c);
    } else {
        p->dom_reading = p->dom_pending = p->dom_uploaded = false;
        char why[MSG_REASON_MAX];
        snprintf(why, sizeof why, "%s", c->dom.why);
        int rc = status == UV_ECANCELED ? RW_ESTATE : c->dom.rc;
        if (rc == 0)
            rc = c->ops->domain_add(c->job, c, p->name, &p->dom, &c->dom.r, why, sizeof why);
        if (rc < 0 && c->storage_failed) {
            /* stopping, with the domain maybe in the journal: the next start
             * completes its planning from what stays here (the read's data,
             * the upload), and the bringer, not refused, comes back to it */
        } else if (rc < 0) {
            domain_read_discard(c);
            domain_refuse(c, p, rc, why);
        } else {
            RW_INFO(WHO,
                    "domain %s from %s is in the job: its tasks and a router update are "
                    "planned",
                    p->dom.name, p->name);
            p->dom_in_job = true;
            c->status_dirty = true;
            if (c->state == COORD_DONE)
                c->state = COORD_RUNNING; /* one more version of the bundles to come */
        }
    }
    if (!c->stopping && !domains_waiting(c)) {
        if (c->state == COORD_DONE && !c->o.keep_serving)
            shutdown_all(c, "the job is done"); /* a domain refused after the finish */
        else
            coord__schedule(c);
    }
    work_end(c);
}

/* Starts the job's read of p's upload off the loop: 1 when it runs, 0 when
 * p's domain is in the job already (p kept), -1 when p was refused and
 * dropped. */
static int domain_read_start(coord_t *c, peer_t *p)
{
    char why[MSG_REASON_MAX] = "";
    /* checked again before seconds of reading: the job may have changed
     * since its HELLO (another domain took the last place) */
    int rc = c->ops->domain_check(c->job, p->name, &p->dom, why, sizeof why);
    if (rc != 0) {
        p->dom_pending = p->dom_uploaded = false;
        if (rc > 0) { /* it is in the job already */
            p->dom_in_job = true;
            if (c->state == COORD_DONE)
                coord__release_bringer(c, p);
            return 0;
        }
        domain_refuse(c, p, rc, why);
        return -1;
    }
    p->dom_uploaded = p->dom_reading = true;
    c->dom.running = true;
    snprintf(c->dom.peer, sizeof c->dom.peer, "%s", p->name);
    c->dom.d = p->dom;
    memset(&c->dom.r, 0, sizeof c->dom.r);
    c->dom.work.data = c;
    rc = uv_queue_work(&c->loop, &c->dom.work, domain_read_work, domain_read_after);
    if (rc == 0)
        return 1;
    c->dom.running = p->dom_reading = p->dom_pending = p->dom_uploaded = false;
    snprintf(why, sizeof why, "domain %s: cannot read its data: %s", p->dom.name, uv_strerror(rc));
    domain_refuse(c, p, RW_ESTATE, why);
    return -1;
}

void coord__domain_uploaded(coord_t *c, peer_t *p)
{
    p->dom_uploaded = true;
    if (c->finish_running || c->dom.running) { /* the finish reads the job: it waits */
        if (c->finish_running)
            RW_INFO(WHO, "domain %s from %s waits for the finish under way", p->dom.name, p->name);
        else
            RW_INFO(WHO, "domain %s from %s waits for the read of domain %s from %s", p->dom.name,
                    p->name, c->dom.d.name, c->dom.peer);
        return;
    }
    domain_read_start(c, p);
}

/* Starts the read of the first domain that waited (for the finish, or for
 * another domain's read); returns whether one is under way. */
static bool domains_waiting(coord_t *c)
{
    for (size_t i = 0; i < c->peers.n;) {
        peer_t *p = c->peers.v[i];
        int rc = !p->dom_uploaded || p->dom_reading ? 0 : domain_read_start(c, p);
        if (rc > 0)
            return true;
        if (rc == 0)
            i++; /* else p was dropped: v[i] is one not yet seen */
    }
    return false;
}

/* A worker that brought a domain is done once a version of the bundles
 * holds it: it is told so (SHUTDOWN with the reason), and exits 0, so the
 * command that added the domain ends when the domain is in. */
void coord__release_bringer(coord_t *c, peer_t *p)
{
    p->dom_in_job = false;
    p->released = true;
    char reason[MSG_REASON_MAX];
    snprintf(reason, sizeof reason, PROTO_DOMAIN_IN, p->dom.name);
    msg_t m;
    msg_init(&m, MSG_SHUTDOWN);
    m.shutdown.reason = reason;
    RW_INFO(WHO, "%s: %s", p->name, reason);
    coord__send(c, &p->addr, &m);
}

/* Nothing a job does once it is done needs a peer that cannot run router
 * tasks: a domain added later trains its own tasks on the worker that
 * brought it (pinned there) and its router update on "router" peers. So a
 * plain worker is told, and exits 0, which ends it for good under a
 * supervisor too (a Kubernetes Job's pod completes; systemd's
 * Restart=on-failure leaves it), while the router service stays. */
bool coord__release_done(coord_t *c, peer_t *p)
{
    if (c->state != COORD_DONE || p->released || p->dom_pending || p->dom_uploaded ||
        p->dom_in_job || peer_has_cap(p, "router"))
        return false;
    p->released = true;
    msg_t m;
    msg_init(&m, MSG_SHUTDOWN);
    m.shutdown.reason = "the job is done";
    RW_INFO(WHO, "%s: the job is done, and it cannot serve: told to go", p->name);
    coord__send(c, &p->addr, &m);
    c->status_dirty = true;
    return true;
}

static void release_bringers(coord_t *c)
{
    for (size_t i = 0; i < c->peers.n; i++)
        if (c->peers.v[i]->dom_in_job)
            coord__release_bringer(c, c->peers.v[i]);
}

static void release_done(coord_t *c)
{
    for (size_t i = 0; i < c->peers.n; i++)
        coord__release_done(c, c->peers.v[i]);
}

static void finish_end(coord_t *c, int status)
{
    c->finish_running = false;
    if (status == UV_ECANCELED)
        c->exit_code = 1;
    c->status_dirty = true;
    if (c->stopping)
        return;
    if (c->exit_code == 0) {
        if (coord__record(c, "finished", NULL) < 0)
            return; /* coord__storage_failed stops it: the next run finishes again */
        c->state = COORD_DONE;
        RW_INFO(WHO, "job done");
    } else {
        c->state = COORD_FAILED;
        RW_ERROR(WHO, "job failed in its last stage: %s", c->error);
    }
    if (c->state == COORD_DONE)
        release_bringers(c);
    if (c->state == COORD_DONE && domains_waiting(c)) {
        if (c->o.keep_serving)
            release_done(c); /* what the read adds is not theirs to run either */
        return;              /* its end decides what comes next */
    }
    if (!c->o.keep_serving || c->state == COORD_FAILED)
        shutdown_all(c, c->state == COORD_DONE ? "the job is done" : "the job failed");
    else
        release_done(c);
}

static void finish_after(uv_work_t *req, int status)
{
    coord_t *c = req->data;
    finish_end(c, status);
    work_end(c);
}

void coord__check_done(coord_t *c)
{
    if (c->state != COORD_RUNNING || !c->started || c->stopping)
        return;
    const plan_task_t *ft = plan_failed(c->plan);
    if (ft) {
        c->state = COORD_FAILED;
        c->exit_code = 1;
        snprintf(c->error, sizeof c->error,
                 "task %" PRIu64 " (%s%s%s) failed %u times, the last on %s: %s "
                 "(--max-attempts allows more; started again, the job tries it again)",
                 ft->id, msg_task_kind_name(ft->kind), ft->domain[0] ? " " : "", ft->domain,
                 ft->failures, ft->worker, ft->why);
        RW_ERROR(WHO, "job failed: %s", c->error);
        shutdown_all(c, "the job failed");
        return;
    }
    if (!plan_finished(c->plan) || c->dom.running) /* a domain read: its end comes back */
        return;
    c->status_dirty = true;
    if (!c->ops->finish) {
        c->state = COORD_DONE;
        if (!c->o.keep_serving)
            shutdown_all(c, "the job is done");
        else
            release_done(c);
        return;
    }
    RW_INFO(WHO, "every task done; merging and evaluating");
    c->state = COORD_FINISHING;
    c->finish_running = true;
    c->finish_work.data = c;
    int rc = uv_queue_work(&c->loop, &c->finish_work, finish_work, finish_after);
    if (rc < 0) {
        c->finish_running = false;
        c->state = COORD_FAILED;
        c->exit_code = 1;
        snprintf(c->error, sizeof c->error, "cannot run the finish: %s", uv_strerror(rc));
        shutdown_all(c, "the job failed");
    }
}

/* ---- the status file ---- */

/* {worker: tasks} of the tasks left that only a worker not connected may
 * run (those of a domain it brought: its pairs are there alone). */
static json_t *waiting_for(coord_t *c)
{
    json_t *w = json_object();
    for (uint64_t id = 1; id <= plan_size(c->plan); id++) {
        const plan_task_t *t = plan_task(c->plan, id);
        if (!t || !t->on[0] || t->state != PLAN_PENDING || peers_by_name(&c->peers, t->on))
            continue;
        json_int_t n = json_integer_value(json_object_get(w, t->on));
        json_object_set_new(w, t->on, json_integer(n + 1));
    }
    return w;
}

/* [{task, kind, cap}] of the ready tasks pinned to no worker that no
 * connected peer has the capability for (a router task with no router
 * service up): nothing else says why the job stands still. */
static json_t *waiting_cap(coord_t *c)
{
    json_t *w = json_array();
    for (uint64_t id = 1; id <= plan_size(c->plan); id++) {
        const plan_task_t *t = plan_task(c->plan, id);
        if (!t || t->on[0] || !plan_ready(c->plan, t))
            continue;
        bool offered = false;
        for (size_t i = 0; i < c->peers.n && !offered; i++)
            offered = !c->peers.v[i]->released && peer_has_cap(c->peers.v[i], t->cap);
        if (!offered)
            json_array_append_new(w, json_pack("{s:I,s:s,s:s}", "task", (json_int_t)id, "kind",
                                               msg_task_kind_name(t->kind), "cap", t->cap));
    }
    return w;
}

/* Once a ready task has waited a whole peer timeout for a capability no
 * connected peer offers (a peer with it may be on its way until then), it
 * is said: a warning once, and the status's waiting_for_cap until a peer
 * with it connects. */
static void watch_caps(coord_t *c)
{
    json_t *w = waiting_cap(c);
    json_t *first = json_array_get(w, 0);
    uint64_t now = coord__now(c);
    if (!first || c->state != COORD_RUNNING) {
        if (c->capless_warned && c->state == COORD_RUNNING)
            RW_INFO(WHO, "a worker with the capability the waiting tasks need is here: they go on");
        if (c->capless_warned)
            c->status_dirty = true;
        c->capless_since_ms = 0;
        c->capless_warned = false;
    } else if (!c->capless_since_ms) {
        c->capless_since_ms = now;
    } else if (!c->capless_warned && now - c->capless_since_ms >= c->o.timeout_ms) {
        const char *cap = json_string_value(json_object_get(first, "cap"));
        RW_WARN(WHO,
                "task %" PRIu64 " (%s) needs a worker with the %s capability and none is "
                "connected (%zu task%s wait%s for one)%s",
                (uint64_t)json_integer_value(json_object_get(first, "task")),
                json_string_value(json_object_get(first, "kind")), cap, json_array_size(w),
                json_array_size(w) == 1 ? "" : "s", json_array_size(w) == 1 ? "s" : "",
                strcmp(cap, "router") == 0 ? "; start the router service (rewire-router "
                                             "--connect) or a worker with --caps router"
                                           : "");
        c->capless_warned = c->status_dirty = true;
    }
    json_decref(w);
}

static void write_status(coord_t *c)
{
    static const char *const states[] = {"running", "finishing", "done", "failed"};
    plan_counts_t pc;
    plan_count(c->plan, &pc);
    size_t total = plan_size(c->plan);
    double elapsed = (double)(coord__now(c) - c->started_ms) / 1000.0, progress = (double)pc.done;
    json_t *workers = json_array();
    for (size_t i = 0; i < c->peers.n; i++) {
        const peer_t *p = c->peers.v[i];
        json_t *caps = json_array();
        for (size_t k = 0; k < p->n_caps; k++)
            json_array_append_new(caps, json_string(p->caps[k]));
        json_t *w = json_pack("{s:s,s:o,s:i,s:i,s:f}", "id", p->name, "caps", caps, "threads",
                              (int)p->threads, "tasks_done", (int)p->tasks_done, "pairs_per_s",
                              p->pairs_per_s);
        const peer_lease_t *l = peer_lease_find((peer_t *)p, p->progress_task, 0);
        if (!l || l->cancelling)
            l = peer_running(p);
        if (l) {
            json_object_set_new(w, "task", json_integer((json_int_t)l->task));
            json_object_set_new(w, "kind", json_string(msg_task_kind_name(l->kind)));
            if (l->domain[0])
                json_object_set_new(w, "domain", json_string(l->domain));
            json_object_set_new(w, "attempt", json_integer(l->attempt));
            json_object_set_new(w, "step", json_integer((json_int_t)p->step));
            json_object_set_new(w, "steps", json_integer((json_int_t)p->steps));
            json_object_set_new(w, "loss", json_real(p->loss));
            json_object_set_new(w, "queued", json_integer((json_int_t)peer_active(p) - 1));
            if (p->steps)
                progress += (double)p->step / (double)p->steps;
        }
        json_array_append_new(workers, w);
    }
    double frac = total ? progress / (double)total : 1, eta = -1;
    if (c->state == COORD_RUNNING && frac > 0.02)
        eta = elapsed * (1 - frac) / frac;
    json_t *st = json_pack("{s:s,s:f,s:f,s:{s:I,s:I,s:I,s:I,s:I},s:f,s:o}", "state",
                           states[c->state], "elapsed_s", elapsed, "started", c->started_wall,
                           "tasks", "total", (json_int_t)total, "done", (json_int_t)pc.done,
                           "leased", (json_int_t)pc.leased, "pending", (json_int_t)pc.pending,
                           "failed", (json_int_t)pc.failed, "progress", frac, "workers", workers);
    if (eta >= 0)
        json_object_set_new(st, "eta_s", json_real(eta));
    json_t *waiting = waiting_for(c);
    if (json_object_size(waiting))
        json_object_set(st, "waiting_for", waiting);
    json_decref(waiting);
    json_t *capless = c->capless_warned ? waiting_cap(c) : NULL;
    if (json_array_size(capless))
        json_object_set(st, "waiting_for_cap", capless);
    json_decref(capless);
    if (c->error[0])
        json_object_set_new(st, "error", json_string(c->error));
    if (c->stopping)
        json_object_set_new(st, "stopping", json_true());
    json_object_set_new(st, "endpoint", json_string(c->endpoint));
    json_object_set_new(st, "pid", json_integer(getpid()));
    if (c->ops->status)
        c->ops->status(c->job, st);
    /* no fsync: a status is stale in a quarter second anyway */
    char tmp[STORE_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", c->status_path);
    if (json_dump_file(st, tmp, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0)
        rename(tmp, c->status_path);
    json_decref(st);
    c->status_dirty = false;
}

/* ---- the loop's callbacks ---- */

static void on_idle(uv_idle_t *h);

static void drain(coord_t *c, int budget)
{
    while (budget-- > 0 && c->w) {
        int events = 0;
        size_t len = sizeof events;
        if (zmq_getsockopt(c->sock, ZMQ_EVENTS, &events, &len) != 0 || !(events & ZMQ_POLLIN))
            return;
        msg_t m;
        wire_peer_t from;
        if (wire_recv(c->w, &m, &from, ZMQ_DONTWAIT) == 0) {
            coord__handle(c, &m, &from);
            msg_fini(&m);
        }
    }
}

/* Drains a batch; if input is left, the idle handle continues next turn.
 * Ends every callback, so it also makes the turn's records durable. */
static void pump(coord_t *c)
{
    if (c->w)
        drain(c, DRAIN_BATCH);
    int rc = journal_sync(c->journal);
    if (rc < 0)
        coord__storage_failed(c, "flush the journal", rc);
    if (!c->w)
        return;
    int events = 0;
    size_t len = sizeof events;
    bool more = zmq_getsockopt(c->sock, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN);
    if (more)
        uv_idle_start(&c->idle, on_idle);
    else
        uv_idle_stop(&c->idle);
}

static void on_idle(uv_idle_t *h)
{
    pump(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    pump(h->data);
}

static void on_heartbeat(uv_timer_t *h)
{
    coord_t *c = h->data;
    uint64_t now = coord__now(c);
    msg_t m;
    msg_init(&m, MSG_HEARTBEAT);
    m.heartbeat.seq = ++c->hb_seq;
    for (size_t i = 0; i < c->peers.n;) {
        peer_t *p = c->peers.v[i];
        if (now - p->heard_ms > c->o.timeout_ms) {
            coord__lose(c, p, "silent past the timeout");
            continue;
        }
        if (coord__send(c, &p->addr, &m) == -EHOSTUNREACH) {
            coord__lose(c, p, "unreachable");
            continue;
        }
        i++;
    }
    uint64_t ids[64];
    size_t n = plan_expired(c->plan, now, ids, 64);
    for (size_t i = 0; i < n && i < 64; i++) {
        const plan_task_t *t = plan_task(c->plan, ids[i]);
        peer_t *p = peers_by_name(&c->peers, t->worker);
        peer_lease_t *l = p ? peer_lease_find(p, t->id, t->attempt) : NULL;
        RW_WARN(WHO, "task %" PRIu64 " attempt %u: the lease ran out", t->id, t->attempt);
        if (l)
            coord__cancel(c, p, l, "the lease ran out", true);
        else
            record_release(c, t->id, t->attempt, t->worker, "the lease ran out", true);
    }
    coord__schedule(c);
    watch_caps(c);
    pump(c);
}

static void on_status(uv_timer_t *h)
{
    coord_t *c = h->data;
    if (c->status_dirty || c->state == COORD_RUNNING)
        write_status(c);
    pump(c);
}

static void on_close(uv_handle_t *h)
{
    coord_t *c = h->data;
    c->open_handles--;
}

static void close_handle(coord_t *c, uv_handle_t *h)
{
    if (h->data && !uv_is_closing(h))
        uv_close(h, on_close);
    (void)c;
}

static void close_all(coord_t *c)
{
    close_handle(c, (uv_handle_t *)&c->poll);
    close_handle(c, (uv_handle_t *)&c->hb_timer);
    close_handle(c, (uv_handle_t *)&c->status_timer);
    close_handle(c, (uv_handle_t *)&c->idle);
    close_handle(c, (uv_handle_t *)&c->stop_async);
    close_handle(c, (uv_handle_t *)&c->sigint);
    close_handle(c, (uv_handle_t *)&c->sigterm);
}

static void on_grace(uv_timer_t *h)
{
    close_all(h->data);
}

/* SHUTDOWN to every peer; then, for one heartbeat period, any peer that
 * still speaks is told again (a SHUTDOWN lost with a closing socket would
 * leave a worker reconnecting to nobody), and the handles close. */
static void shutdown_all(coord_t *c, const char *reason)
{
    if (c->stopping)
        return;
    RW_INFO(WHO, "shutting down: %s%s", reason,
            c->quiet && c->peers.n ? "; its peers are not told to go: they reconnect to the "
                                     "coordinator started next"
                                   : "");
    snprintf(c->shutdown_reason, sizeof c->shutdown_reason, "%s", reason);
    msg_t m;
    msg_init(&m, MSG_SHUTDOWN);
    m.shutdown.reason = c->shutdown_reason;
    /* a coordinator that stops to be started again (a signal, its disk
     * full) tells nobody to go: its workers reconnect to the next one, as
     * after a crash */
    for (size_t i = 0; i < c->peers.n && !c->quiet; i++) {
        const peer_t *p = c->peers.v[i];
        char why[MSG_REASON_MAX];
        msg_t r;
        bool brought = p->dom_pending || p->dom_uploaded || p->dom_in_job;
        if (brought) { /* a domain the bundles do not hold: no success to report */
            snprintf(why, sizeof why, "domain %s is not in the bundles: %s", p->dom.name, reason);
            msg_init(&r, MSG_REFUSE);
            r.refuse.code = RW_ESTATE;
            r.refuse.reason = why;
        }
        int rc = coord__send(c, &p->addr, brought ? &r : &m);
        if (rc < 0 && !p->released) /* a released peer was told, and may be gone */
            RW_WARN(WHO, "could not tell %s to shut down: %s", c->peers.v[i]->name,
                    rw_strerror(rc));
    }
    c->stopping = true;
    write_status(c);
    uv_timer_stop(&c->status_timer);
    if (c->peers.n == 0 || uv_timer_start(&c->hb_timer, on_grace, c->o.heartbeat_ms + 50, 0) < 0)
        close_all(c);
}

void coord__shutdown_again(coord_t *c, const wire_peer_t *to)
{
    if (c->quiet) /* see shutdown_all */
        return;
    msg_t m;
    msg_init(&m, MSG_SHUTDOWN);
    m.shutdown.reason = c->shutdown_reason;
    coord__send(c, to, &m);
}

/* A stop is not the end of the job: a coordinator stopped (to be moved,
 * upgraded, restarted by its supervisor) carries on from its journal when
 * started again, so its peers are told to go only when whoever stops it
 * owns them too (stop_peers: `rewire run`); else they wait for the next
 * coordinator, as after a crash. */
static void stop(coord_t *c)
{
    if (!c->stopping && !c->o.stop_peers)
        c->quiet = true;
    shutdown_all(c, "the coordinator was stopped");
}

static void on_signal(uv_signal_t *h, int signum)
{
    coord_t *c = h->data;
    RW_INFO(WHO, "signal %d", signum);
    if (c->stopping) /* a second one: no grace */
        close_all(c);
    stop(c);
}

static void on_stop(uv_async_t *h)
{
    stop(h->data);
}

void coord_stop(coord_t *c)
{
    uv_async_send(&c->stop_async);
}

/* ---- lifecycle ---- */

static int fail(char *why, size_t whylen, int rc, const char *fmt, const char *arg)
{
    snprintf(why, whylen, fmt, arg, rw_strerror(rc));
    return rc;
}

/* CURVE on the socket (before bind), and the admission list, as o says. */
static int coord_curve(coord_t *c, char *why, size_t whylen)
{
    const curve_opts_t *o = &c->o.curve;
    int rc = curve_setup_server(c->sock, o, why, whylen);
    if (rc < 0 || !o->allow)
        return rc;
    curve_key_t own;
    if ((rc = curve_key_load(o->key_file, true, &own, why, whylen)) < 0)
        return rc;
    if (!(c->auth = curve_auth_start(c->zctx, o->allow, &own, WHO, why, whylen)))
        return RW_EINVAL;
    return 0;
}

int coord_new(const coord_opts_t *o, const struct coord_job_ops *ops, void *job, coord_t **out,
              char *why, size_t whylen)
{
    int rc;
    char path[STORE_PATH_MAX];
    coord_t *c = rw_new(coord_t);
    c->o = *o;
    c->ops = ops;
    c->job = job;
    if (!c->o.heartbeat_ms)
        c->o.heartbeat_ms = 1000;
    if (!c->o.timeout_ms)
        c->o.timeout_ms = 5 * c->o.heartbeat_ms;
    if (!c->o.lease_ms)
        c->o.lease_ms = 3600 * 1000;
    if (c->o.lease_ms < 1000)
        c->o.lease_ms = 1000;
    if (!c->o.max_attempts)
        c->o.max_attempts = 3;
    if (!c->o.status_ms)
        c->o.status_ms = 250;
    if (!c->o.has_lease_ahead)
        c->o.lease_ahead = 1;
    if (c->o.lease_ahead > PEER_LEASES_MAX - 1)
        c->o.lease_ahead = PEER_LEASES_MAX - 1;
    peers_init(&c->peers);
    c->plan = plan_new(c->o.max_attempts);
    /* sessions stay distinct across restarts of the same state */
    c->session_next = (uint64_t)time(NULL) << 20;
    if ((rc = uv_loop_init(&c->loop)) < 0) {
        rc = fail(why, whylen, rc, "%s: cannot start a loop: %s", "libuv");
        goto fail_loop;
    }
    snprintf(path, sizeof path, "%s/artifacts", o->state_dir);
    if (!(c->store = store_open(path, &rc))) {
        rc = fail(why, whylen, rc, "cannot open the store %s: %s", path);
        goto fail_store;
    }
    snprintf(c->status_path, sizeof c->status_path, "%s/status.json", o->state_dir);
    snprintf(path, sizeof path, "%s/journal.jsonl", o->state_dir);
    size_t replayed = 0;
    c->replaying = true;
    rc = journal_open(path, !o->no_sync, replay_one, c, &c->journal, &replayed);
    c->replaying = false;
    if (rc < 0) {
        rc = fail(why, whylen, rc, "cannot replay the journal %s: %s", path);
        goto fail_journal;
    }
    if (replayed) {
        size_t back = plan_requeue(c->plan, 0), again = plan_retry(c->plan, 0);
        if (again)
            RW_WARN(WHO, "%zu task%s had failed; trying %s again", again, again == 1 ? "" : "s",
                    again == 1 ? "it" : "them");
        plan_counts_t pc;
        plan_count(c->plan, &pc);
        RW_INFO(WHO, "replayed %zu journal records: %zu of %zu tasks done, %zu leases dropped",
                replayed, pc.done, plan_size(c->plan), back);
    }
    c->zctx = zmq_ctx_new();
    c->sock = zmq_socket(c->zctx, ZMQ_ROUTER);
    int linger = 1000;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    /* messages queued for one peer: a worker in flow control never has more
     * than its window of chunks (at most MSG_WINDOW_MAX) in flight, so this
     * only stops a peer that takes nothing from filling memory (at 1 MiB a
     * chunk); a send past it fails and ends that transfer */
    int hwm = COORD_QUEUE_MAX;
    zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (!(c->w = wire_new(c->sock, WHO, &rc))) {
        rc = fail(why, whylen, rc, "%s: %s", "socket");
        goto fail_socket;
    }
    if ((rc = coord_curve(c, why, whylen)) < 0)
        goto fail_bind;
    if ((rc = wire_bind(c->w, o->bind, why, whylen)) < 0)
        goto fail_bind;
    size_t len = sizeof c->endpoint;
    zmq_getsockopt(c->sock, ZMQ_LAST_ENDPOINT, c->endpoint, &len);
    len = sizeof c->zfd;
    zmq_getsockopt(c->sock, ZMQ_FD, &c->zfd, &len);

    uv_poll_init(&c->loop, &c->poll, c->zfd);
    uv_timer_init(&c->loop, &c->hb_timer);
    uv_timer_init(&c->loop, &c->status_timer);
    uv_idle_init(&c->loop, &c->idle);
    uv_async_init(&c->loop, &c->stop_async, on_stop);
    uv_signal_init(&c->loop, &c->sigint);
    uv_signal_init(&c->loop, &c->sigterm);
    uv_handle_t *hs[] = {(uv_handle_t *)&c->poll,         (uv_handle_t *)&c->hb_timer,
                         (uv_handle_t *)&c->status_timer, (uv_handle_t *)&c->idle,
                         (uv_handle_t *)&c->stop_async,   (uv_handle_t *)&c->sigint,
                         (uv_handle_t *)&c->sigterm};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        hs[i]->data = c;
        c->open_handles++;
    }
    *out = c;
    return 0;

fail_bind:
    wire_destroy(&c->w);
fail_socket:
    zmq_close(c->sock);
    curve_auth_stop(&c->auth);
    zmq_ctx_term(c->zctx);
    journal_destroy(&c->journal);
fail_journal:
    store_destroy(&c->store);
fail_store:
    uv_loop_close(&c->loop);
fail_loop:
    plan_destroy(&c->plan);
    free(c);
    return rc;
}

/* Every done task's output is in the store and whole, or the task is to be
 * done again: a file lost or damaged while the coordinator was down (a
 * disk replaced, a folder cleaned) costs that task, not the job. */
static int check_outputs(coord_t *c)
{
    for (uint64_t id = 1; id <= plan_size(c->plan); id++) {
        const plan_task_t *t = plan_task(c->plan, id);
        if (t->state != PLAN_DONE || !t->artifact)
            continue;
        int rc = store_verify(c->store, t->artifact, NULL);
        if (rc == 0)
            continue;
        char why[160];
        snprintf(why, sizeof why, "its output %016" PRIx64 " is %s", t->artifact,
                 rc == RW_ECHECKSUM ? "damaged" : "missing from the store");
        RW_WARN(WHO, "task %" PRIu64 " (%s%s%s) is to be done again: %s", id,
                msg_task_kind_name(t->kind), t->domain[0] ? " " : "", t->domain, why);
        if ((rc = coord__record(c, "undone",
                                json_pack("{s:I,s:s}", "task", (json_int_t)id, "why", why))) < 0)
            return rc;
    }
    return 0;
}

int coord_run(coord_t *c)
{
    c->started_ms = coord__now(c);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    c->started_wall = (double)tv.tv_sec + tv.tv_usec / 1e6;
    int checked = check_outputs(c);
    if (checked < 0)
        return checked;
    if (c->ops->start) {
        int rc = c->ops->start(c->job, c);
        if (rc < 0)
            return rc;
    }
    c->started = true;
    journal_sync(c->journal);
    plan_counts_t pc;
    plan_count(c->plan, &pc);
    RW_INFO(WHO, "serving %s: %zu tasks (%zu done)", c->endpoint, plan_size(c->plan), pc.done);
    uv_poll_start(&c->poll, UV_READABLE, on_poll);
    uv_idle_start(&c->idle, on_idle);
    uv_idle_stop(&c->idle);
    uv_timer_start(&c->hb_timer, on_heartbeat, c->o.heartbeat_ms, c->o.heartbeat_ms);
    uv_timer_start(&c->status_timer, on_status, 0, c->o.status_ms);
    uv_signal_start(&c->sigint, on_signal, SIGINT);
    uv_signal_start(&c->sigterm, on_signal, SIGTERM);
    coord__check_done(c); /* a replayed job may be done already */
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return c->exit_code;
}

void coord_destroy(coord_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    coord_t *c = *self_p;
    if (c->open_handles > 0) {
        /* never run, or stopped early: close what is open and let it finish */
        uv_handle_t *hs[] = {(uv_handle_t *)&c->poll,         (uv_handle_t *)&c->hb_timer,
                             (uv_handle_t *)&c->status_timer, (uv_handle_t *)&c->idle,
                             (uv_handle_t *)&c->stop_async,   (uv_handle_t *)&c->sigint,
                             (uv_handle_t *)&c->sigterm};
        for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
            close_handle(c, hs[i]);
        uv_run(&c->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&c->loop);
    peers_fini(&c->peers);
    wire_destroy(&c->w);
    zmq_close(c->sock);
    curve_auth_stop(&c->auth);
    zmq_ctx_term(c->zctx);
    journal_destroy(&c->journal);
    store_destroy(&c->store);
    plan_destroy(&c->plan);
    free(c);
    *self_p = NULL;
}

store_t *coord_store(coord_t *c)
{
    return c->store;
}

const plan_t *coord_plan(const coord_t *c)
{
    return c->plan;
}

const char *coord_endpoint(const coord_t *c)
{
    return c->endpoint;
}

void coord_stats(const coord_t *c, coord_stats_t *st)
{
    *st = c->st;
    wire_stats(c->w, &st->wire);
}
