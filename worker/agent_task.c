/* agent_task.c — what an agent does with each message from its coordinator:
 * registration, leases, fetching inputs, uploading outputs, cancellation.
 *
 * Leases queue up (a coordinator may lease ahead); one task at a time is
 * fetched and trained, and a trained task's output uploads while the next
 * one already trains, so the round trips of the result never leave the
 * training thread idle.
 */
#include "agent_int.h"

#include "alloc.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WHO "worker"

static void lease_fini(agent_lease_t *l)
{
    free(l->config);
    free(l->experts);
    memset(l, 0, sizeof *l);
}

static void tell_error(agent_t *a, uint64_t task, uint32_t attempt, int code, const char *why)
{
    msg_t m;
    msg_init(&m, MSG_ERROR);
    m.error.code = code < 0 ? code : RW_EIO;
    m.error.text = why && *why ? why : "failed";
    m.error.task = task;
    m.error.has_task = true;
    m.error.attempt = attempt;
    m.error.has_attempt = true;
    agent__send(a, &m);
}

/* Ends the task being worked on, whatever its state (training is cancelled
 * and joined). */
static void task_reset(agent_t *a)
{
    agent_task_t *t = &a->t;
    if (t->th_live) {
        agent__cancel_training(a);
        pthread_join(t->th, NULL);
        t->th_live = false;
    }
    xfer_recv_destroy(&t->in);
    store_sink_fini(&t->sink);
    if (t->paths[3][0])
        unlink(t->paths[3]);
    if (t->expert_paths)
        for (size_t i = 0; i < t->l.n_experts; i++)
            free(t->expert_paths[i]);
    free(t->expert_paths);
    lease_fini(&t->l);
    memset(t, 0, sizeof *t);
}

static void upload_reset(agent_t *a)
{
    agent_upload_t *u = &a->u;
    xfer_send_destroy(&u->up);
    xfer_file_source_close(&u->src);
    memset(u, 0, sizeof *u);
    u->src.fd = -1;
}

void agent__drop_all(agent_t *a)
{
    task_reset(a);
    upload_reset(a);
    for (size_t i = 0; i < a->n_dq; i++)
        unlink(a->dq[i].out);
    a->n_dq = 0;
    for (size_t i = 0; i < a->n_q; i++)
        lease_fini(&a->q[i]);
    a->n_q = 0;
}

bool agent__current(const agent_t *a, uint64_t *task, uint32_t *attempt)
{
    if (a->t.state != AGENT_T_NONE) {
        *task = a->t.l.id, *attempt = a->t.l.attempt;
        return true;
    }
    if (a->u.active) {
        *task = a->u.task, *attempt = a->u.attempt;
        return true;
    }
    if (a->n_dq) {
        *task = a->dq[0].task, *attempt = a->dq[0].attempt;
        return true;
    }
    return false;
}

/* The task worked on failed (or was cancelled): the coordinator hears it. */
static void fail_task(agent_t *a, int code, const char *why)
{
    if (code != -ECANCELED)
        RW_WARN(WHO, "task %" PRIu64 " attempt %u failed: %s", a->t.l.id, a->t.l.attempt, why);
    tell_error(a, a->t.l.id, a->t.l.attempt, code, why);
    a->st.failed++;
    task_reset(a);
}

static void advance(agent_t *a);

/* ---- fetching the inputs ---- */

static void run_task(agent_t *a)
{
    agent_task_t *t = &a->t;
    agent_work_t *w = &t->work;
    memset(w, 0, sizeof *w);
    w->task = t->l.id;
    w->attempt = t->l.attempt;
    w->kind = t->l.kind;
    w->domain = t->l.domain[0] ? t->l.domain : NULL;
    w->config = t->l.config;
    w->threads = a->o.threads;
    uint64_t ids[3] = {t->l.tokenizer, t->l.data, t->l.base};
    const char **dst[3] = {&w->tokenizer, &w->data, &w->base};
    for (int i = 0; i < 3; i++)
        if (ids[i])
            *dst[i] = store_path(a->cache, ids[i], t->paths[i], sizeof t->paths[i]);
    t->expert_paths = rw_new_array(char *, t->l.n_experts + 1);
    for (size_t i = 0; i < t->l.n_experts; i++) {
        t->expert_paths[i] = rw_malloc(STORE_PATH_MAX);
        store_path(a->cache, t->l.experts[i], t->expert_paths[i], STORE_PATH_MAX);
    }
    w->experts = (const char *const *)t->expert_paths;
    w->n_experts = t->l.n_experts;
    w->out = store_tmp_path(a->cache, t->paths[3], sizeof t->paths[3]);
    int rc = agent__start_training(a);
    if (rc < 0)
        fail_task(a, rc, "cannot start the training thread");
}

static void next_fetch(agent_t *a)
{
    agent_task_t *t = &a->t;
    while (t->i_need < t->n_need && store_has(a->cache, t->need[t->i_need]))
        t->i_need++;
    if (t->i_need == t->n_need) {
        run_task(a);
        return;
    }
    uint64_t id = t->need[t->i_need];
    store_sink_init(&t->sink, a->cache);
    t->in = xfer_recv_new(NULL, &store_sink_ops, &t->sink);
    msg_t m;
    msg_init(&m, MSG_FETCH);
    m.fetch.artifact = id;
    agent__send(a, &m);
}

static void fetch_input(agent_t *a, const msg_t *m, uint64_t id)
{
    agent_task_t *t = &a->t;
    xfer_recv_input(t->in, m);
    msg_t out;
    while (xfer_recv_next(t->in, &out) == 1)
        agent__send(a, &out);
    int st = xfer_recv_status(t->in);
    if (st == 0)
        return;
    char why[256];
    snprintf(why, sizeof why, "fetching artifact %016" PRIx64 ": %s", id,
             st < 0 ? xfer_recv_error(t->in) : "");
    xfer_recv_destroy(&t->in);
    if (st < 0) {
        store_sink_fini(&t->sink);
        fail_task(a, st, why);
        advance(a);
        return;
    }
    int rc = store_adopt(a->cache, t->sink.path, id, NULL);
    store_sink_fini(&t->sink);
    if (rc < 0) {
        snprintf(why, sizeof why, "artifact %016" PRIx64 " is not what its id says: %s", id,
                 rw_strerror(rc));
        fail_task(a, rc, why);
        advance(a);
        return;
    }
    a->st.fetched++;
    t->i_need++;
    next_fetch(a);
}

/* Starts the oldest queued lease. */
static void start_next(agent_t *a)
{
    agent_task_t *t = &a->t;
    t->l = a->q[0];
    memmove(a->q, a->q + 1, --a->n_q * sizeof a->q[0]);
    uint64_t ids[3] = {t->l.tokenizer, t->l.data, t->l.base};
    for (int i = 0; i < 3; i++)
        if (ids[i])
            t->need[t->n_need++] = ids[i];
    for (size_t i = 0; i < t->l.n_experts && t->n_need < AGENT_INPUTS_MAX; i++)
        t->need[t->n_need++] = t->l.experts[i];
    t->state = AGENT_T_FETCH;
    t->progress_ms = 0;
    RW_INFO(WHO, "task %" PRIu64 " %s%s%s attempt %u", t->l.id, msg_task_kind_name(t->l.kind),
            t->l.domain[0] ? ":" : "", t->l.domain, t->l.attempt);
    next_fetch(a);
}

static void on_lease(agent_t *a, const msg_lease_t *m)
{
    RW_DEBUG(WHO, "lease of task %" PRIu64 " (%zu queued, task slot %d)", m->task, a->n_q,
             (int)a->t.state);
    if (a->n_q == AGENT_QUEUE_MAX) {
        tell_error(a, m->task, (uint32_t)m->attempt, RW_ESTATE, "too many leases queued");
        return;
    }
    agent_lease_t *l = &a->q[a->n_q++];
    memset(l, 0, sizeof *l);
    l->id = m->task;
    l->attempt = (uint32_t)m->attempt;
    l->kind = m->kind;
    snprintf(l->domain, sizeof l->domain, "%s", m->domain ? m->domain : "");
    l->config = rw_strdup(m->config);
    l->tokenizer = m->has_tokenizer ? m->tokenizer : 0;
    l->data = m->has_shard ? m->shard : 0;
    l->base = m->has_base ? m->base : 0;
    l->n_experts = m->experts.n;
    l->experts = rw_new_array(uint64_t, l->n_experts + 1);
    memcpy(l->experts, m->experts.v, l->n_experts * sizeof *l->experts);
    advance(a);
}

/* ---- uploading the output ---- */

static void pump_upload(agent_t *a)
{
    agent_upload_t *u = &a->u;
    msg_t m;
    int rc;
    while ((rc = xfer_send_next(u->up, &m)) == 1)
        agent__send(a, &m);
    int st = xfer_send_status(u->up);
    if (rc < 0 && st == 0)
        st = rc;
    if (st == 0)
        return;
    if (st < 0) {
        char why[256];
        snprintf(why, sizeof why, "upload refused: %s", xfer_send_error(u->up));
        if (st == RW_ESTATE) { /* not our lease any more: nothing to report */
            RW_WARN(WHO, "task %" PRIu64 " attempt %u: %s", u->task, u->attempt, why);
            a->st.refused++;
        } else {
            RW_WARN(WHO, "task %" PRIu64 " attempt %u: %s", u->task, u->attempt, why);
            tell_error(a, u->task, u->attempt, st, why);
            a->st.failed++;
        }
        upload_reset(a);
        advance(a);
        return;
    }
    msg_t r;
    msg_init(&r, MSG_RESULT);
    r.result.task = u->task;
    r.result.attempt = u->attempt;
    r.result.artifact = u->id;
    r.result.metrics = (msg_metrics_t){u->res.metrics, u->res.n_metrics};
    agent__send(a, &r);
    a->st.tasks++;
    RW_INFO(WHO, "task %" PRIu64 " done: artifact %016" PRIx64, u->task, u->id);
    upload_reset(a);
    advance(a);
}

/* The oldest trained task's output goes into the cache and up. */
static void start_upload(agent_t *a)
{
    agent_done_t d = a->dq[0];
    memmove(a->dq, a->dq + 1, --a->n_dq * sizeof a->dq[0]);
    agent_upload_t *u = &a->u;
    char path[STORE_PATH_MAX];
    uint64_t id;
    int rc = store_adopt(a->cache, d.out, 0, &id);
    if (rc == 0)
        rc = xfer_file_source_open(&u->src, store_path(a->cache, id, path, sizeof path));
    if (rc == 0) {
        msg_art_begin_t b = {.artifact = id,
                             .kind = MSG_ARTIFACT_MODEL,
                             .size = u->src.size,
                             .task = d.task,
                             .has_task = true,
                             .attempt = d.attempt,
                             .has_attempt = true};
        u->up = xfer_send_new(&b, &xfer_file_source_ops, &u->src, 0, &rc);
    }
    if (rc < 0) {
        upload_reset(a);
        tell_error(a, d.task, d.attempt, rc, "cannot read the task's output");
        a->st.failed++;
        return;
    }
    u->active = true;
    u->task = d.task;
    u->attempt = d.attempt;
    u->id = id;
    u->res = d.res;
    pump_upload(a);
}

/* Moves work along: the oldest trained task to the free upload slot, the
 * next queued lease to the free task slot. */
static void advance(agent_t *a)
{
    for (int turn = 0; turn < 2 * AGENT_QUEUE_MAX + 2; turn++) {
        if (!a->u.active && a->n_dq > 0) {
            start_upload(a);
            continue; /* it may fail at once: then the next one */
        }
        if (a->t.state != AGENT_T_NONE || a->n_q == 0 || a->conn != AGENT_UP)
            return;
        start_next(a); /* it may fail at once: then the next one */
    }
}

void agent__trained(agent_t *a, int rc, bool cancelled)
{
    RW_DEBUG(WHO, "task %" PRIu64 " trained (%zu queued, uploading %d)", a->t.l.id, a->n_q,
             (int)a->u.active);
    if (rc == 0 && !cancelled && a->n_dq < AGENT_QUEUE_MAX) {
        agent_done_t *d = &a->dq[a->n_dq++];
        d->task = a->t.l.id;
        d->attempt = a->t.l.attempt;
        snprintf(d->out, sizeof d->out, "%s", a->t.paths[3]);
        d->res = a->t.res;
        a->t.paths[3][0] = '\0'; /* the upload takes the file */
        task_reset(a);
    } else {
        fail_task(a, rc < 0 ? rc : -ECANCELED,
                  cancelled ? "cancelled" : (a->t.why[0] ? a->t.why : rw_strerror(rc)));
    }
    advance(a);
}

/* ---- messages ---- */

static void on_cancel(agent_t *a, const msg_cancel_t *c)
{
    const char *why = c->reason ? c->reason : "";
    for (size_t i = 0; i < a->n_q; i++) {
        if (a->q[i].id == c->task && a->q[i].attempt == c->attempt) {
            RW_INFO(WHO, "queued task %" PRIu64 " cancelled: %s", c->task, why);
            tell_error(a, c->task, (uint32_t)c->attempt, -ECANCELED, "cancelled");
            lease_fini(&a->q[i]);
            memmove(&a->q[i], &a->q[i + 1], (a->n_q - i - 1) * sizeof a->q[0]);
            a->n_q--;
            return;
        }
    }
    for (size_t i = 0; i < a->n_dq; i++) {
        if (a->dq[i].task == c->task && a->dq[i].attempt == c->attempt) {
            tell_error(a, c->task, (uint32_t)c->attempt, -ECANCELED, "cancelled");
            unlink(a->dq[i].out);
            memmove(&a->dq[i], &a->dq[i + 1], (a->n_dq - i - 1) * sizeof a->dq[0]);
            a->n_dq--;
            return;
        }
    }
    if (a->u.active && a->u.task == c->task && a->u.attempt == c->attempt) {
        RW_INFO(WHO, "task %" PRIu64 " cancelled while uploading: %s", c->task, why);
        tell_error(a, c->task, (uint32_t)c->attempt, -ECANCELED, "cancelled");
        upload_reset(a);
        advance(a);
        return;
    }
    if (a->t.state == AGENT_T_NONE || a->t.l.id != c->task || a->t.l.attempt != c->attempt)
        return;
    RW_INFO(WHO, "task %" PRIu64 " cancelled: %s", c->task, why);
    if (a->t.state == AGENT_T_RUN) {
        agent__cancel_training(a); /* the thread ends; then ERROR goes */
        return;
    }
    fail_task(a, -ECANCELED, "cancelled");
    advance(a);
}

static void on_art(agent_t *a, const msg_t *m)
{
    agent_task_t *t = &a->t;
    uint64_t id = 0;
    xfer_artifact_of(m, &id);
    bool incoming = m->type == MSG_ART_BEGIN || m->type == MSG_ART_CHUNK || m->type == MSG_ART_END;
    if (incoming && t->state == AGENT_T_FETCH && t->in && t->i_need < t->n_need &&
        id == t->need[t->i_need]) {
        fetch_input(a, m, id);
        return;
    }
    if (!incoming && a->u.active && a->u.up && id == a->u.id) {
        if (xfer_send_input(a->u.up, m) == 0)
            pump_upload(a);
        return;
    }
    wire_drop(a->w, NULL, "an artifact message for no transfer in progress");
}

static void on_error(agent_t *a, const msg_error_t *e)
{
    agent_task_t *t = &a->t;
    if (e->has_req && t->state == AGENT_T_FETCH && t->i_need < t->n_need &&
        e->req == t->need[t->i_need]) {
        fail_task(a, (int)e->code, e->text);
        advance(a);
        return;
    }
    if (e->has_task) {
        RW_WARN(WHO, "the coordinator refused task %" PRIu64 ": %s", e->task, e->text);
        a->st.refused++;
        return;
    }
    if (e->code == RW_ENOTFOUND) { /* it does not know us (it restarted): register again */
        RW_WARN(WHO, "the coordinator does not know this worker: registering again");
        agent__drop_all(a);
        agent__disconnect(a, false);
        return;
    }
    RW_WARN(WHO, "the coordinator says: %s", e->text);
}

void agent__handle(agent_t *a, const msg_t *m)
{
    a->last_heard = agent__now();
    switch (m->type) {
    case MSG_WELCOME:
        if (a->conn != AGENT_HELLO)
            break;
        a->conn = AGENT_UP;
        a->hb_ms = (uint32_t)m->welcome.heartbeat_ms;
        a->timeout_ms = a->o.timeout_ms ? a->o.timeout_ms : 5 * a->hb_ms;
        a->next_hb = agent__now();
        a->backoff = a->o.backoff_ms;
        a->st.connects++;
        RW_INFO(WHO, "%s registered with %s (session %" PRIu64 ")", a->id, a->o.connect,
                m->welcome.session);
        break;
    case MSG_REFUSE:
        RW_ERROR(WHO, "the coordinator refused this worker: %s", m->refuse.reason);
        a->result = (int)m->refuse.code;
        a->done = true;
        break;
    case MSG_SHUTDOWN:
        RW_INFO(WHO, "shutting down: %s", m->shutdown.reason);
        a->done = true;
        break;
    case MSG_HEARTBEAT:
        break;
    case MSG_LEASE:
        if (a->conn == AGENT_UP)
            on_lease(a, &m->lease);
        break;
    case MSG_CANCEL:
        on_cancel(a, &m->cancel);
        break;
    case MSG_ERROR:
        on_error(a, &m->error);
        break;
    case MSG_ART_BEGIN:
    case MSG_ART_CHUNK:
    case MSG_ART_END:
    case MSG_ART_CREDIT:
    case MSG_ART_ACK:
        on_art(a, m);
        break;
    default:
        wire_drop(a->w, NULL, "a message a coordinator does not send");
    }
}
