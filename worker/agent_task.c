/* agent_task.c — what an agent does with each message from its coordinator:
 * registration, leases, fetching inputs, uploading outputs, cancellation.
 *
 * Leases queue up (a coordinator may lease ahead). The loop fetches the
 * inputs of one lease at a time and hands the job to the training thread
 * (agent_train.c), so the next task's inputs arrive while this one trains;
 * a trained task's output uploads while the next one already trains.
 */
#include "agent_int.h"

#include "alloc.h"
#include "err.h"
#include "proto.h"
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

void agent__job_free(agent_job_t *j)
{
    if (!j)
        return;
    if (j->expert_paths)
        for (size_t i = 0; i < j->l.n_experts; i++)
            free(j->expert_paths[i]);
    free(j->expert_paths);
    lease_fini(&j->l);
    free(j);
}

void agent__tell_error(agent_t *a, uint64_t task, uint32_t attempt, int code, const char *why)
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

static void fetch_reset(agent_t *a)
{
    xfer_recv_destroy(&a->in);
    store_sink_fini(&a->sink);
    agent__job_free(a->fetching);
    a->fetching = NULL;
    a->n_need = a->i_need = 0;
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
    a->upload_wanted = false;
    fetch_reset(a);
    agent__trainer_drop(a);
    upload_reset(a);
    for (size_t i = 0; i < a->n_dq; i++)
        unlink(a->dq[i].out);
    a->n_dq = 0;
    for (size_t i = 0; i < a->n_q; i++)
        lease_fini(&a->q[i]);
    a->n_q = 0;
}

bool agent__current(agent_t *a, uint64_t *task, uint32_t *attempt)
{
    bool found = false;
    pthread_mutex_lock(&a->mu);
    if (a->running && !a->running->orphan) {
        *task = a->running->l.id, *attempt = a->running->l.attempt;
        found = true;
    }
    pthread_mutex_unlock(&a->mu);
    if (!found && a->fetching)
        *task = a->fetching->l.id, *attempt = a->fetching->l.attempt, found = true;
    if (!found && a->u.active && !a->u.data)
        *task = a->u.task, *attempt = a->u.attempt, found = true;
    if (!found && a->n_dq)
        *task = a->dq[0].task, *attempt = a->dq[0].attempt, found = true;
    return found;
}

static void advance(agent_t *a);

/* ---- fetching the inputs ---- */

/* Every input of the lease being fetched is in the cache: to the trainer. */
static void ready(agent_t *a)
{
    agent_job_t *j = a->fetching;
    agent_work_t *w = &j->work;
    w->task = j->l.id;
    w->attempt = j->l.attempt;
    w->kind = j->l.kind;
    w->domain = j->l.domain[0] ? j->l.domain : NULL;
    w->config = j->l.config;
    w->threads = a->o.threads;
    uint64_t ids[3] = {j->l.tokenizer, j->l.data, j->l.base};
    const char **dst[3] = {&w->tokenizer, &w->data, &w->base};
    for (int i = 0; i < 3; i++)
        if (ids[i])
            *dst[i] = store_path(a->cache, ids[i], j->paths[i], sizeof j->paths[i]);
    j->expert_paths = rw_new_array(char *, j->l.n_experts + 1);
    for (size_t i = 0; i < j->l.n_experts; i++) {
        j->expert_paths[i] = rw_malloc(STORE_PATH_MAX);
        store_path(a->cache, j->l.experts[i], j->expert_paths[i], STORE_PATH_MAX);
    }
    w->experts = (const char *const *)j->expert_paths;
    w->n_experts = j->l.n_experts;
    w->out = store_tmp_path(a->cache, j->paths[3], sizeof j->paths[3]);
    a->fetching = NULL;
    a->n_need = a->i_need = 0;
    agent__trainer_push(a, j);
}

static void fetch_failed(agent_t *a, int code, const char *why)
{
    agent_job_t *j = a->fetching;
    RW_WARN(WHO, "task %" PRIu64 " attempt %u failed: %s", j->l.id, j->l.attempt, why);
    agent__tell_error(a, j->l.id, j->l.attempt, code, why);
    a->st.failed++;
    fetch_reset(a);
}

static bool is_sound(const agent_t *a, uint64_t id)
{
    for (size_t i = 0; i < a->n_sound; i++)
        if (a->sound[i] == id)
            return true;
    return false;
}

static void mark_sound(agent_t *a, uint64_t id)
{
    if (is_sound(a, id))
        return;
    if (a->n_sound == a->cap_sound) {
        size_t cap = a->cap_sound ? 2 * a->cap_sound : 64;
        uint64_t *v = realloc(a->sound, cap * sizeof *v);
        if (!v)
            return; /* it is checked again at its next use */
        a->sound = v;
        a->cap_sound = cap;
    }
    a->sound[a->n_sound++] = id;
}

/* Whether the cache holds id whole: checked once, the first time. A use,
 * for the cache's least-recently-used order. */
static bool cached(agent_t *a, uint64_t id)
{
    if (!store_has(a->cache, id))
        return false;
    store_touch(a->cache, id);
    if (is_sound(a, id))
        return true;
    int rc = store_verify(a->cache, id, NULL);
    if (rc == 0) {
        mark_sound(a, id);
        return true;
    }
    char path[STORE_PATH_MAX];
    RW_WARN(WHO, "cached artifact %s is damaged (%s); fetching it again",
            store_path(a->cache, id, path, sizeof path), rw_strerror(rc));
    unlink(path);
    return false;
}

/* ---- keeping the cache under --cache-max ---- */

typedef struct {
    uint64_t *v;
    size_t n, cap;
} ids_t;

static void ids_add(ids_t *k, uint64_t id)
{
    if (!id)
        return;
    rw_grow(&k->v, &k->cap, k->n + 1);
    k->v[k->n++] = id;
}

static void ids_add_lease(ids_t *k, const agent_lease_t *l)
{
    ids_add(k, l->tokenizer);
    ids_add(k, l->data);
    ids_add(k, l->base);
    for (size_t i = 0; i < l->n_experts; i++)
        ids_add(k, l->experts[i]);
}

static void forget_sound(void *ctx, uint64_t id)
{
    agent_t *a = ctx;
    for (size_t i = 0; i < a->n_sound; i++)
        if (a->sound[i] == id) {
            a->sound[i] = a->sound[--a->n_sound];
            return;
        }
}

void agent__trim(agent_t *a)
{
    if (!a->o.cache_max)
        return;
    ids_t k = {0};
    ids_add(&k, a->o.domain_shard); /* the train pairs of the domain it brings */
    ids_add(&k, a->o.domain_upload);
    for (size_t i = 0; i < a->n_need; i++)
        ids_add(&k, a->need[i]);
    for (size_t i = 0; i < a->n_q; i++)
        ids_add_lease(&k, &a->q[i]);
    if (a->u.active)
        ids_add(&k, a->u.id);
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->n_ready; i++)
        ids_add_lease(&k, &a->ready[i]->l);
    if (a->running)
        ids_add_lease(&k, &a->running->l);
    pthread_mutex_unlock(&a->mu);
    int64_t left =
        store_trim(a->cache, a->o.cache_max, k.v, k.n, a->o.cache_grace_s, forget_sound, a);
    if (left < 0)
        RW_WARN(WHO, "cannot trim the cache %s: %s", store_dir(a->cache), rw_strerror((int)left));
    free(k.v);
}

static void next_fetch(agent_t *a)
{
    while (a->i_need < a->n_need && cached(a, a->need[a->i_need]))
        a->i_need++;
    if (a->i_need == a->n_need) {
        ready(a);
        return;
    }
    store_sink_init(&a->sink, a->cache);
    a->in = xfer_recv_new(NULL, &store_sink_ops, &a->sink);
    msg_t m;
    msg_init(&m, MSG_FETCH);
    m.fetch.artifact = a->need[a->i_need];
    agent__send(a, &m);
    a->fetch_heard = rw_now_ms();
}

/* Tells the coordinator's sender the fetch under way is dropped. */
static void give_up_fetch(agent_t *a, const char *why)
{
    if (!a->in || a->i_need >= a->n_need)
        return;
    msg_t m;
    xfer_give_up(&m, a->need[a->i_need], why);
    agent__send(a, &m);
}

static void fetch_watch(agent_t *a, uint64_t now)
{
    if (!a->fetching || !a->in || now - a->fetch_heard <= a->timeout_ms)
        return;
    char why[160];
    snprintf(why, sizeof why,
             "no part of artifact %016" PRIx64 " came for %u ms: the transfer was lost",
             a->need[a->i_need], a->timeout_ms);
    give_up_fetch(a, why);
    fetch_failed(a, RW_EIO, why);
    advance(a);
}

static void fetch_input(agent_t *a, const msg_t *m, uint64_t id)
{
    xfer_recv_input(a->in, m);
    msg_t out;
    while (xfer_recv_next(a->in, &out) == 1)
        agent__send(a, &out);
    int st = xfer_recv_status(a->in);
    if (st == 0)
        return;
    char why[256];
    snprintf(why, sizeof why, "fetching artifact %016" PRIx64 ": %s", id,
             st < 0 ? xfer_recv_error(a->in) : "");
    xfer_recv_destroy(&a->in);
    int rc = st < 0 ? st : store_adopt(a->cache, a->sink.path, id, NULL);
    store_sink_fini(&a->sink);
    if (rc < 0) {
        if (st > 0)
            snprintf(why, sizeof why, "artifact %016" PRIx64 " is not what its id says: %s", id,
                     rw_strerror(rc));
        fetch_failed(a, rc, why);
        advance(a);
        return;
    }
    mark_sound(a, id);
    store_touch(a->cache, id);
    a->st.fetched++;
    a->i_need++;
    agent__trim(a);
    next_fetch(a);
    advance(a);
}

/* Starts fetching the inputs of the oldest queued lease. */
static void start_fetch(agent_t *a)
{
    agent_job_t *j = rw_new(agent_job_t);
    j->l = a->q[0];
    memmove(a->q, a->q + 1, --a->n_q * sizeof a->q[0]);
    a->fetching = j;
    a->n_need = a->i_need = 0;
    uint64_t ids[3] = {j->l.tokenizer, j->l.data, j->l.base};
    for (int i = 0; i < 3; i++)
        if (ids[i])
            a->need[a->n_need++] = ids[i];
    for (size_t i = 0; i < j->l.n_experts && a->n_need < AGENT_INPUTS_MAX; i++)
        a->need[a->n_need++] = j->l.experts[i];
    RW_INFO(WHO, "task %" PRIu64 " %s%s%s attempt %u", j->l.id, msg_task_kind_name(j->l.kind),
            j->l.domain[0] ? ":" : "", j->l.domain, j->l.attempt);
    next_fetch(a);
}

static void on_lease(agent_t *a, const msg_lease_t *m)
{
    if (a->n_q == AGENT_QUEUE_MAX) {
        agent__tell_error(a, m->task, (uint32_t)m->attempt, RW_ESTATE, "too many leases queued");
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
    if (l->n_experts)
        memcpy(l->experts, m->experts.v, l->n_experts * sizeof *l->experts);
    advance(a);
}

/* ---- uploading the output ---- */

/* The end of the domain's upload: the coordinator checks it now, and a
 * refusal comes as REFUSE; an upload it would not take ends the run. */
static void data_uploaded(agent_t *a, int st, const char *why)
{
    if (st < 0) {
        snprintf(a->refusal, sizeof a->refusal, "the upload of domain %s was refused: %s",
                 a->o.domain, why);
        RW_ERROR(WHO, "%s", a->refusal);
        a->result = st;
        a->done = true;
    } else {
        RW_INFO(WHO, "domain %s uploaded; the coordinator checks it", a->o.domain);
    }
    upload_reset(a);
    advance(a);
}

/* The upload ended without the coordinator storing it (st < 0, why). */
static void upload_failed(agent_t *a, int st, const char *why)
{
    agent_upload_t *u = &a->u;
    if (u->data && u->restarts > 0 && st == RW_ESTATE) {
        /* the coordinator awaits no data of ours: an earlier start of the
         * upload got there, and only its answer was lost */
        RW_INFO(WHO, "domain %s: the coordinator holds its upload already", a->o.domain);
        data_uploaded(a, 1, NULL);
        return;
    }
    if (u->data) {
        data_uploaded(a, st, why);
        return;
    }
    char text[256];
    snprintf(text, sizeof text, "upload refused: %s", why);
    RW_WARN(WHO, "task %" PRIu64 " attempt %u: %s", u->task, u->attempt, text);
    if (st == RW_ESTATE) { /* not our lease any more: nothing to report */
        a->st.refused++;
    } else {
        agent__tell_error(a, u->task, u->attempt, st, text);
        a->st.failed++;
    }
    upload_reset(a);
    advance(a);
}

static void upload_stored(agent_t *a);

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
    if (st < 0)
        upload_failed(a, st, xfer_send_error(u->up));
    else
        upload_stored(a);
}

/* The coordinator stored the upload: the task's RESULT goes. */
static void upload_stored(agent_t *a)
{
    agent_upload_t *u = &a->u;
    if (u->data) {
        data_uploaded(a, 1, NULL);
        return;
    }
    msg_t r;
    msg_init(&r, MSG_RESULT);
    r.result.task = u->task;
    r.result.attempt = u->attempt;
    r.result.artifact = u->id;
    r.result.metrics = (msg_metrics_t){u->res.metrics, u->res.n_metrics};
    int rc = agent__send(a, &r);
    if (rc == 0) {
        a->st.tasks++;
        RW_INFO(WHO, "task %" PRIu64 " done: artifact %016" PRIx64, u->task, u->id);
    } else { /* its lease ends with the connection, or runs out: leased again */
        a->st.failed++;
        RW_WARN(WHO,
                "task %" PRIu64 " attempt %u: its RESULT could not be sent (%s); the "
                "coordinator will lease it again",
                u->task, (unsigned)u->attempt, rw_strerror(rc));
    }
    upload_reset(a);
    advance(a);
}

/* A sender for b over the open source. */
static int upload_begin(agent_t *a, const msg_art_begin_t *b)
{
    agent_upload_t *u = &a->u;
    int rc;
    u->up = xfer_send_new(b, &xfer_file_source_ops, &u->src, 0, &rc);
    u->heard = rw_now_ms();
    return rc;
}

static void upload_watch(agent_t *a, uint64_t now)
{
    agent_upload_t *u = &a->u;
    if (!u->active || !u->up || now - u->heard <= a->timeout_ms)
        return;
    char why[160];
    snprintf(why, sizeof why, "no answer to artifact %016" PRIx64 " for %u ms", u->id,
             a->timeout_ms);
    if (u->restarts == 2) {
        upload_failed(a, RW_EIO, why);
        return;
    }
    u->restarts++;
    RW_WARN(WHO, "%s: sending it again from the start", why);
    xfer_send_restart(u->up); /* it is not over: the watch saw it active */
    u->heard = now;
    pump_upload(a);
}

void agent__xfer_watch(agent_t *a, uint64_t now)
{
    fetch_watch(a, now);
    upload_watch(a, now);
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
    if (rc == 0) {
        mark_sound(a, id);
        rc = xfer_file_source_open(&u->src, store_path(a->cache, id, path, sizeof path));
    }
    if (rc == 0) {
        msg_art_begin_t b = {.artifact = id,
                             .kind = MSG_ARTIFACT_MODEL,
                             .size = u->src.size,
                             .task = d.task,
                             .has_task = true,
                             .attempt = d.attempt,
                             .has_attempt = true};
        rc = upload_begin(a, &b);
    }
    if (rc < 0) {
        upload_reset(a);
        agent__tell_error(a, d.task, d.attempt, rc, "cannot read the task's output");
        a->st.failed++;
        return;
    }
    u->active = true;
    u->task = d.task;
    u->attempt = d.attempt;
    u->id = id;
    u->res = d.res;
    store_touch(a->cache, id);
    agent__trim(a);
    pump_upload(a);
}

void agent__upload_domain(agent_t *a)
{
    agent_upload_t *u = &a->u;
    char path[STORE_PATH_MAX];
    if (u->active) { /* a task's output is on its way: the data waits for it */
        a->upload_wanted = true;
        return;
    }
    a->upload_wanted = false;
    int rc =
        xfer_file_source_open(&u->src, store_path(a->cache, a->o.domain_upload, path, sizeof path));
    if (rc == 0) {
        msg_art_begin_t b = {
            .artifact = a->o.domain_upload, .kind = MSG_ARTIFACT_DATA, .size = u->src.size};
        rc = upload_begin(a, &b);
    }
    if (rc < 0) {
        RW_ERROR(WHO, "cannot read the upload of domain %s (%s): %s", a->o.domain, path,
                 rw_strerror(rc));
        upload_reset(a);
        a->result = rc;
        a->done = true;
        return;
    }
    u->active = true;
    u->data = true;
    u->id = a->o.domain_upload;
    pump_upload(a);
}

void agent__finished(agent_t *a, agent_job_t *j)
{
    bool ok = j->rc == 0 && !j->cancel && !j->orphan;
    if (ok && a->n_dq < AGENT_QUEUE_MAX) {
        agent_done_t *d = &a->dq[a->n_dq++];
        d->task = j->l.id;
        d->attempt = j->l.attempt;
        snprintf(d->out, sizeof d->out, "%s", j->paths[3]);
        d->res = j->res;
    } else {
        unlink(j->paths[3]);
        if (!j->orphan) {
            int code = j->cancel ? -ECANCELED : (j->rc < 0 ? j->rc : RW_ESTATE);
            const char *why = j->cancel ? "cancelled" : (j->why[0] ? j->why : rw_strerror(code));
            if (code != -ECANCELED)
                RW_WARN(WHO, "task %" PRIu64 " attempt %u failed: %s", j->l.id, j->l.attempt, why);
            agent__tell_error(a, j->l.id, j->l.attempt, code, why);
            a->st.failed++;
        }
    }
    agent__job_free(j);
    advance(a);
}

/* Moves work along: the oldest trained task to the free upload slot, the
 * oldest queued lease to the free fetch slot. */
static void advance(agent_t *a)
{
    for (int turn = 0; turn < 4 * AGENT_QUEUE_MAX; turn++) {
        if (!a->u.active && a->upload_wanted && a->conn == AGENT_UP) {
            agent__upload_domain(a);
            continue;
        }
        if (!a->u.active && a->n_dq > 0) {
            start_upload(a);
            continue; /* it may fail at once: then the next one */
        }
        if (a->fetching || a->n_q == 0 || a->conn != AGENT_UP)
            return;
        start_fetch(a); /* it may be ready (or fail) at once: then the next one */
    }
}

/* ---- messages ---- */

static void on_cancel(agent_t *a, const msg_cancel_t *c)
{
    const char *why = c->reason ? c->reason : "";
    uint32_t attempt = (uint32_t)c->attempt;
    for (size_t i = 0; i < a->n_q; i++) {
        if (a->q[i].id == c->task && a->q[i].attempt == attempt) {
            RW_INFO(WHO, "queued task %" PRIu64 " cancelled: %s", c->task, why);
            agent__tell_error(a, c->task, attempt, -ECANCELED, "cancelled");
            lease_fini(&a->q[i]);
            memmove(&a->q[i], &a->q[i + 1], (a->n_q - i - 1) * sizeof a->q[0]);
            a->n_q--;
            return;
        }
    }
    if (a->fetching && a->fetching->l.id == c->task && a->fetching->l.attempt == attempt) {
        RW_INFO(WHO, "task %" PRIu64 " cancelled while fetching: %s", c->task, why);
        agent__tell_error(a, c->task, attempt, -ECANCELED, "cancelled");
        give_up_fetch(a, "the task it was for was cancelled"); /* its sender must not wait */
        fetch_reset(a);
        advance(a);
        return;
    }
    int where = agent__trainer_cancel(a, c->task, attempt);
    if (where) {
        RW_INFO(WHO, "task %" PRIu64 " cancelled: %s", c->task, why);
        return; /* ready: told; running: told once it stops */
    }
    for (size_t i = 0; i < a->n_dq; i++) {
        if (a->dq[i].task == c->task && a->dq[i].attempt == attempt) {
            agent__tell_error(a, c->task, attempt, -ECANCELED, "cancelled");
            unlink(a->dq[i].out);
            memmove(&a->dq[i], &a->dq[i + 1], (a->n_dq - i - 1) * sizeof a->dq[0]);
            a->n_dq--;
            return;
        }
    }
    if (a->u.active && a->u.task == c->task && a->u.attempt == attempt) {
        RW_INFO(WHO, "task %" PRIu64 " cancelled while uploading: %s", c->task, why);
        agent__tell_error(a, c->task, attempt, -ECANCELED, "cancelled");
        upload_reset(a);
        advance(a);
    }
}

static void on_art(agent_t *a, const msg_t *m)
{
    uint64_t id = 0;
    xfer_artifact_of(m, &id);
    bool incoming = m->type == MSG_ART_BEGIN || m->type == MSG_ART_CHUNK || m->type == MSG_ART_END;
    if (incoming && a->fetching && a->in && a->i_need < a->n_need && id == a->need[a->i_need]) {
        a->fetch_heard = rw_now_ms();
        fetch_input(a, m, id);
        return;
    }
    if (!incoming && a->u.active && a->u.up && id == a->u.id) {
        a->u.heard = rw_now_ms();
        if (xfer_send_input(a->u.up, m) == 0)
            pump_upload(a);
        else if (m->type == MSG_ART_ACK && m->art_ack.ok)
            upload_stored(a); /* an earlier start of it was stored (its id is its checksum) */
        return;
    }
    wire_drop(a->w, NULL, "an artifact message for no transfer in progress");
}

static void on_error(agent_t *a, const msg_error_t *e)
{
    if (e->has_req && a->fetching && a->i_need < a->n_need && e->req == a->need[a->i_need]) {
        fetch_failed(a, (int)e->code, e->text);
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
    if (a->conn == AGENT_HELLO && e->code == RW_EMSGTYPE && !e->has_req) {
        /* a coordinator takes every HELLO; a peer that has no such message
         * type (the router service says so of a HELLO) answers again every
         * time, so trying again would only go on for ever */
        if (strstr(e->text, "router service"))
            snprintf(a->refusal, sizeof a->refusal,
                     "%s: that is a router service, not a coordinator", a->o.connect);
        else
            snprintf(a->refusal, sizeof a->refusal,
                     "%s: that is not a coordinator: it does not take HELLO (%.200s)", a->o.connect,
                     e->text);
        RW_ERROR(WHO, "%s", a->refusal);
        a->result = RW_EMSGTYPE;
        a->done = true;
        return;
    }
    RW_WARN(WHO, "the coordinator says: %s", e->text);
}

void agent__handle(agent_t *a, const msg_t *m)
{
    a->last_heard = rw_now_ms();
    switch (m->type) {
    case MSG_WELCOME:
        if (a->conn != AGENT_HELLO)
            break;
        a->conn = AGENT_UP;
        a->hb_ms = (uint32_t)m->welcome.heartbeat_ms;
        a->timeout_ms = a->o.timeout_ms ? a->o.timeout_ms : 5 * a->hb_ms;
        a->next_hb = rw_now_ms();
        a->backoff = a->o.backoff_ms;
        a->st.connects++;
        RW_INFO(WHO, "%s registered with %s (session %" PRIu64 ")", a->id, a->o.connect,
                m->welcome.session);
        if (a->o.domain && m->welcome.has_upload && m->welcome.upload == a->o.domain_upload)
            agent__upload_domain(a);
        break;
    case MSG_REFUSE:
        RW_ERROR(WHO, "the coordinator refused this worker: %s", m->refuse.reason);
        snprintf(a->refusal, sizeof a->refusal, "%s", m->refuse.reason);
        a->result = (int)m->refuse.code;
        a->done = true;
        break;
    case MSG_SHUTDOWN: {
        RW_INFO(WHO, "shutting down: %s", m->shutdown.reason);
        a->done = true;
        char in[MSG_REASON_MAX];
        snprintf(in, sizeof in, PROTO_DOMAIN_IN, a->o.domain ? a->o.domain : "");
        if (a->o.domain && strcmp(m->shutdown.reason, in) != 0) {
            /* a bringer's command succeeds when its domain is in, only */
            snprintf(a->refusal, sizeof a->refusal, "the job ended without domain %s: %s",
                     a->o.domain, m->shutdown.reason);
            a->result = RW_ESTATE;
        }
        break;
    }
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
