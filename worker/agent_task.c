/* agent_task.c — what an agent does with each message from its coordinator:
 * registration, leases, fetching inputs, uploading outputs, cancellation.
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

void agent__drop_task(agent_t *a, bool coordinator_gone)
{
    agent_task_t *t = &a->t;
    (void)coordinator_gone;
    if (t->th_live) {
        agent__cancel_training(a);
        pthread_join(t->th, NULL);
        t->th_live = false;
    }
    xfer_recv_destroy(&t->in);
    xfer_file_sink_fini(&t->sink);
    if (t->in_tmp[0])
        unlink(t->in_tmp);
    xfer_send_destroy(&t->up);
    xfer_file_source_close(&t->up_src);
    if (t->paths[3][0])
        unlink(t->paths[3]);
    free(t->config);
    free(t->experts);
    if (t->expert_paths)
        for (size_t i = 0; i < t->n_experts; i++)
            free(t->expert_paths[i]);
    free(t->expert_paths);
    memset(t, 0, sizeof *t);
    t->up_src.fd = -1;
}

void agent__fail_task(agent_t *a, int code, const char *why)
{
    msg_t m;
    msg_init(&m, MSG_ERROR);
    m.error.code = code < 0 ? code : RW_EIO;
    m.error.text = why && *why ? why : "failed";
    m.error.task = a->t.id;
    m.error.has_task = true;
    m.error.attempt = a->t.attempt;
    m.error.has_attempt = true;
    if (code != -ECANCELED)
        RW_WARN(WHO, "task %" PRIu64 " attempt %u failed: %s", a->t.id, a->t.attempt, why);
    agent__send(a, &m);
    a->st.failed++;
    agent__drop_task(a, false);
}

/* ---- fetching the inputs ---- */

static void run_task(agent_t *a)
{
    agent_task_t *t = &a->t;
    agent_work_t *w = &t->work;
    memset(w, 0, sizeof *w);
    w->task = t->id;
    w->attempt = t->attempt;
    w->kind = t->kind;
    w->domain = t->domain[0] ? t->domain : NULL;
    w->config = t->config;
    w->threads = a->o.threads;
    uint64_t ids[3] = {t->tokenizer, t->data, t->base};
    const char **dst[3] = {&w->tokenizer, &w->data, &w->base};
    for (int i = 0; i < 3; i++)
        if (ids[i])
            *dst[i] = store_path(a->cache, ids[i], t->paths[i], sizeof t->paths[i]);
    t->expert_paths = rw_new_array(char *, t->n_experts + 1);
    for (size_t i = 0; i < t->n_experts; i++) {
        t->expert_paths[i] = rw_malloc(STORE_PATH_MAX);
        store_path(a->cache, t->experts[i], t->expert_paths[i], STORE_PATH_MAX);
    }
    w->experts = (const char *const *)t->expert_paths;
    w->n_experts = t->n_experts;
    w->out = store_tmp_path(a->cache, t->paths[3], sizeof t->paths[3]);
    int rc = agent__start_training(a);
    if (rc < 0)
        agent__fail_task(a, rc, "cannot start the training thread");
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
    store_tmp_path(a->cache, t->in_tmp, sizeof t->in_tmp);
    xfer_file_sink_init(&t->sink, t->in_tmp);
    t->in = xfer_recv_new(NULL, &xfer_file_sink_ops, &t->sink);
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
    xfer_file_sink_fini(&t->sink);
    if (st < 0) {
        unlink(t->in_tmp);
        agent__fail_task(a, st, why);
        return;
    }
    int rc = store_adopt(a->cache, t->in_tmp, id, NULL);
    t->in_tmp[0] = '\0';
    if (rc < 0) {
        snprintf(why, sizeof why, "artifact %016" PRIx64 " is not what its id says: %s", id,
                 rw_strerror(rc));
        agent__fail_task(a, rc, why);
        return;
    }
    a->st.fetched++;
    t->i_need++;
    next_fetch(a);
}

static void on_lease(agent_t *a, const msg_lease_t *l)
{
    agent_task_t *t = &a->t;
    if (t->state != AGENT_T_NONE) {
        msg_t m;
        msg_init(&m, MSG_ERROR);
        m.error.code = RW_ESTATE;
        m.error.text = "busy with another task";
        m.error.task = l->task;
        m.error.has_task = true;
        m.error.attempt = l->attempt;
        m.error.has_attempt = true;
        agent__send(a, &m);
        return;
    }
    agent__drop_task(a, false);
    t->id = l->task;
    t->attempt = (uint32_t)l->attempt;
    t->kind = l->kind;
    snprintf(t->domain, sizeof t->domain, "%s", l->domain ? l->domain : "");
    t->config = rw_strdup(l->config);
    t->tokenizer = l->has_tokenizer ? l->tokenizer : 0;
    t->data = l->has_shard ? l->shard : 0;
    t->base = l->has_base ? l->base : 0;
    t->n_experts = l->experts.n;
    t->experts = rw_new_array(uint64_t, t->n_experts + 1);
    memcpy(t->experts, l->experts.v, t->n_experts * sizeof *t->experts);
    uint64_t ids[3] = {t->tokenizer, t->data, t->base};
    for (int i = 0; i < 3; i++)
        if (ids[i])
            t->need[t->n_need++] = ids[i];
    for (size_t i = 0; i < t->n_experts && t->n_need < AGENT_INPUTS_MAX; i++)
        t->need[t->n_need++] = t->experts[i];
    t->state = AGENT_T_FETCH;
    t->progress_ms = 0;
    RW_INFO(WHO, "task %" PRIu64 " %s%s%s attempt %u", t->id, msg_task_kind_name(t->kind),
            t->domain[0] ? ":" : "", t->domain, t->attempt);
    next_fetch(a);
}

/* ---- uploading the output ---- */

static void pump_upload(agent_t *a)
{
    agent_task_t *t = &a->t;
    msg_t m;
    int rc;
    while ((rc = xfer_send_next(t->up, &m)) == 1)
        agent__send(a, &m);
    int st = xfer_send_status(t->up);
    if (rc < 0 && st == 0)
        st = rc;
    if (st == 0)
        return;
    if (st < 0) {
        char why[256];
        snprintf(why, sizeof why, "upload refused: %s", xfer_send_error(t->up));
        if (st == RW_ESTATE) { /* not our lease any more: nothing to report */
            RW_WARN(WHO, "task %" PRIu64 " attempt %u: %s", t->id, t->attempt, why);
            a->st.refused++;
            agent__drop_task(a, false);
        } else {
            agent__fail_task(a, st, why);
        }
        return;
    }
    msg_t r;
    msg_init(&r, MSG_RESULT);
    r.result.task = t->id;
    r.result.attempt = t->attempt;
    r.result.artifact = t->up_id;
    r.result.metrics = (msg_metrics_t){t->res.metrics, t->res.n_metrics};
    agent__send(a, &r);
    a->st.tasks++;
    RW_INFO(WHO, "task %" PRIu64 " done: artifact %016" PRIx64, t->id, t->up_id);
    agent__drop_task(a, false);
}

void agent__upload(agent_t *a)
{
    agent_task_t *t = &a->t;
    char path[STORE_PATH_MAX];
    uint64_t id, size;
    int rc = store_adopt(a->cache, t->paths[3], 0, &id);
    t->paths[3][0] = '\0';
    if (rc == 0)
        rc = xfer_file_source_open(&t->up_src, store_path(a->cache, id, path, sizeof path));
    size = t->up_src.size;
    if (rc == 0) {
        msg_art_begin_t b = {.artifact = id,
                             .kind = MSG_ARTIFACT_MODEL,
                             .size = size,
                             .task = t->id,
                             .has_task = true,
                             .attempt = t->attempt,
                             .has_attempt = true};
        t->up = xfer_send_new(&b, &xfer_file_source_ops, &t->up_src, 0, &rc);
    }
    if (rc < 0) {
        agent__fail_task(a, rc, "cannot read the task's output");
        return;
    }
    t->up_id = id;
    t->state = AGENT_T_UPLOAD;
    pump_upload(a);
}

/* ---- messages ---- */

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
    if (!incoming && t->state == AGENT_T_UPLOAD && t->up && id == t->up_id) {
        if (xfer_send_input(t->up, m) == 0)
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
        agent__fail_task(a, (int)e->code, e->text);
        return;
    }
    if (e->has_task) {
        RW_WARN(WHO, "the coordinator refused task %" PRIu64 ": %s", e->task, e->text);
        a->st.refused++;
        return;
    }
    if (e->code == RW_ENOTFOUND) { /* it does not know us (it restarted): register again */
        RW_WARN(WHO, "the coordinator does not know this worker: registering again");
        agent__drop_task(a, true);
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
        if (a->t.state == AGENT_T_NONE || m->cancel.task != a->t.id ||
            m->cancel.attempt != a->t.attempt)
            break;
        RW_INFO(WHO, "task %" PRIu64 " cancelled: %s", a->t.id,
                m->cancel.reason ? m->cancel.reason : "");
        if (a->t.state == AGENT_T_RUN)
            agent__cancel_training(a); /* the thread ends; then ERROR goes */
        else
            agent__fail_task(a, -ECANCELED, "cancelled");
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
