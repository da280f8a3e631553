/* service_msg.c — what the coordinator does with each message a peer sends.
 *
 * Every message here already passed wire.h (framing, version, fields). What
 * is left to refuse is a valid message out of place: from a peer that never
 * said HELLO, about a task it does not hold, for an attempt that is no
 * longer live. Those are counted (wire_drop), logged once per peer, and
 * answered where the peer can act on the answer (ERROR, CANCEL); the
 * coordinator's state never changes for them.
 */
#include "service_int.h"

#include "err.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define WHO "coordinator"

static void send_error(coord_t *c, const wire_peer_t *to, int code, const char *text, uint64_t task,
                       uint32_t attempt)
{
    msg_t m;
    msg_init(&m, MSG_ERROR);
    m.error.code = code;
    m.error.text = text;
    if (task) {
        m.error.task = task;
        m.error.has_task = true;
        m.error.attempt = attempt;
        m.error.has_attempt = attempt > 0;
    }
    coord__send(c, to, &m);
}

static void send_cancel(coord_t *c, const wire_peer_t *to, uint64_t task, uint32_t attempt,
                        const char *why)
{
    msg_t m;
    msg_init(&m, MSG_CANCEL);
    m.cancel.task = task;
    m.cancel.attempt = attempt;
    m.cancel.reason = why;
    coord__send(c, to, &m);
}

static void refuse(coord_t *c, const wire_peer_t *to, int code, const char *reason)
{
    msg_t r;
    msg_init(&r, MSG_REFUSE);
    r.refuse.code = code;
    r.refuse.reason = reason;
    coord__send(c, to, &r);
}

/* Whether the domain h brings may join: 0 (its upload is wanted next), 1
 * (this worker brought it before) or a refusal, sent here. */
static int check_domain(coord_t *c, const msg_hello_t *h, const wire_peer_t *from,
                        coord_domain_t *d)
{
    char why[MSG_REASON_MAX] = "";
    int rc = 0;
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", h->domain);
    d->pairs = h->data_pairs;
    d->bytes = h->data_bytes;
    d->shard = h->data_checksum;
    d->upload = h->data_upload;
    if (!c->ops->domain_check || !c->ops->domain_read || !c->ops->domain_add) {
        rc = RW_ESTATE;
        snprintf(why, sizeof why, "domain %s refused: this coordinator's job takes no new domain",
                 d->name);
    } else if (c->state == COORD_FAILED) {
        rc = RW_ESTATE;
        snprintf(why, sizeof why, "domain %s refused: the job failed (%.800s)", d->name, c->error);
    }
    for (size_t i = 0; rc == 0 && i < c->peers.n; i++) {
        const peer_t *q = c->peers.v[i];
        if ((q->dom_pending || q->dom_uploaded) && strcmp(q->dom.name, d->name) == 0 &&
            strcmp(q->name, h->worker_id) != 0) {
            rc = RW_EEXIST;
            snprintf(why, sizeof why,
                     "domain %s refused: worker %s is bringing a domain of that name", d->name,
                     q->name);
        }
    }
    if (rc == 0)
        rc = c->ops->domain_check(c->job, h->worker_id, d, why, sizeof why);
    if (rc < 0) {
        RW_WARN(WHO, "worker %s: %s", h->worker_id, why);
        refuse(c, from, rc, why);
    }
    return rc;
}

/* A connection whose id a newer HELLO took speaks again while the new
 * holder lives: not a reconnect but two workers given one id, which would
 * otherwise take it from each other, each time costing the task an
 * attempt, until the job fails. The older one is refused, saying why.
 * Returns whether it was. */
static bool refuse_twin(coord_t *c, const wire_peer_t *from)
{
    uint64_t now = coord__now(c);
    for (size_t i = 0; i < COORD_REPLACED_MAX; i++) {
        coord_replaced_t *r = &c->replaced[i];
        if (!r->name[0] || r->addr.id_len != from->id_len ||
            memcmp(r->addr.id, from->id, from->id_len) != 0 || now - r->at_ms > c->o.timeout_ms)
            continue;
        peer_t *holder = peers_by_name(&c->peers, r->name);
        if (!holder || now - holder->heard_ms > c->o.timeout_ms)
            continue;
        char why[MSG_WHY_MAX];
        snprintf(why, sizeof why,
                 "worker id %s is taken: another live worker registered with it; give each "
                 "worker its own --id",
                 r->name);
        RW_WARN(WHO, "two live workers say they are %s: refusing the one that came first", r->name);
        refuse(c, from, RW_EEXIST, why);
        r->name[0] = '\0';
        return true;
    }
    return false;
}

static void on_hello(coord_t *c, peer_t *p, const msg_hello_t *h, const wire_peer_t *from)
{
    coord_domain_t dom;
    int dom_rc = h->domain ? check_domain(c, h, from, &dom) : 1;
    if (dom_rc < 0)
        return;
    if (p) /* the same connection says HELLO again: it starts over */
        coord__lose(c, p, "registered again");
    peer_t *old = peers_by_name(&c->peers, h->worker_id);
    if (old) { /* a worker that reconnected: the old connection is dead */
        coord_replaced_t *r = &c->replaced[c->replaced_next++ % COORD_REPLACED_MAX];
        r->addr = old->addr;
        snprintf(r->name, sizeof r->name, "%s", old->name);
        r->at_ms = coord__now(c);
        coord__lose(c, old, "reconnected");
    }
    p = peers_add(&c->peers, from);
    snprintf(p->name, sizeof p->name, "%s", h->worker_id);
    for (size_t i = 0; i < h->caps.n && p->n_caps < PEER_CAPS_MAX; i++)
        if (strlen(h->caps.v[i]) < PLAN_CAP_MAX)
            snprintf(p->caps[p->n_caps++], PLAN_CAP_MAX, "%s", h->caps.v[i]);
    p->threads = (uint32_t)h->threads;
    p->session = ++c->session_next;
    p->heard_ms = p->joined_ms = coord__now(c);
    msg_t w;
    msg_init(&w, MSG_WELCOME);
    w.welcome.worker_id = p->name;
    w.welcome.session = p->session;
    w.welcome.heartbeat_ms = c->o.heartbeat_ms;
    if (dom_rc == 0) { /* its domain's upload is wanted now */
        p->dom = dom;
        p->dom_pending = true;
        w.welcome.upload = dom.upload;
        w.welcome.has_upload = true;
    } else if (h->domain) { /* it brought it before (it reconnected, or we restarted) */
        p->dom = dom;
        p->dom_in_job = true; /* still told when the bundles hold it */
    }
    coord__send(c, from, &w);
    RW_INFO(WHO, "worker %s joined (%zu caps, %u threads)%s%s", p->name, p->n_caps, p->threads,
            h->domain ? ", bringing domain " : "", h->domain ? dom.name : "");
    c->status_dirty = true;
    if (c->state == COORD_DONE && p->dom_in_job) { /* every domain of the job is in them */
        coord__release_bringer(c, p);
    } else if (c->o.keep_serving) {
        coord__release_done(c, p); /* a plain worker, to a job done: nothing for it */
    } else if (c->state == COORD_DONE && !c->dom.running) {
        /* (a domain read after the finish may yet give the job more to do) */
        msg_t s;
        msg_init(&s, MSG_SHUTDOWN);
        s.shutdown.reason = "the job is done";
        coord__send(c, from, &s);
    }
}

static void on_progress(coord_t *c, peer_t *p, const msg_progress_t *m, const wire_peer_t *from)
{
    if (plan_check(c->plan, m->task, (uint32_t)m->attempt, p->name) < 0) {
        c->st.stale++;
        wire_drop(c->w, from, "PROGRESS for a task attempt it does not hold");
        send_cancel(c, from, m->task, (uint32_t)m->attempt, "not your lease");
        return;
    }
    peer_lease_t *l = peer_lease_find(p, m->task, (uint32_t)m->attempt);
    if (l)
        l->started = true;
    p->progress_task = m->task;
    p->step = m->step;
    p->steps = m->steps;
    p->loss = m->loss;
    p->accuracy = m->accuracy;
    p->pairs_per_s = m->pairs_per_s;
    c->status_dirty = true;
    if (c->ops->progress)
        c->ops->progress(c->job, plan_task(c->plan, m->task), m);
}

static json_t *metrics_json(const msg_metrics_t *mm)
{
    json_t *o = json_object();
    for (size_t i = 0; i < mm->n; i++)
        json_object_set_new(o, mm->v[i].name, json_real(mm->v[i].value));
    return o;
}

static void on_result(coord_t *c, peer_t *p, const msg_result_t *m, const wire_peer_t *from)
{
    int rc = plan_check(c->plan, m->task, (uint32_t)m->attempt, p->name);
    if (rc < 0) {
        peer_lease_t *l = peer_lease_find(p, m->task, (uint32_t)m->attempt);
        if (l && l->cancelling) /* it finished before it heard CANCEL */
            coord__lease_end(c, p, m->task, 0);
        c->st.stale++;
        wire_drop(c->w, from, "RESULT for a task attempt it does not hold");
        send_error(c, from, rc, "result refused: not the live attempt of a task you hold", m->task,
                   (uint32_t)m->attempt);
        return;
    }
    if (store_verify(c->store, m->artifact, NULL) < 0) {
        wire_drop(c->w, from, "RESULT naming an artifact that was not uploaded");
        send_error(c, from, RW_ENOTFOUND, "result refused: upload the artifact first", m->task,
                   (uint32_t)m->attempt);
        return;
    }
    const plan_task_t *t = plan_task(c->plan, m->task);
    char path[PATH_MAX], why[256];
    if (c->ops->check_result &&
        c->ops->check_result(c->job, t, store_path(c->store, m->artifact, path, sizeof path), why,
                             sizeof why) < 0) {
        RW_WARN(WHO, "task %" PRIu64 " attempt %u: the result of %s is refused: %s", m->task,
                (unsigned)m->attempt, p->name, why);
        char text[300];
        snprintf(text, sizeof text, "result refused: %s", why);
        send_error(c, from, RW_EFORMAT, text, m->task, (uint32_t)m->attempt);
        coord__release(c, p, m->task, (uint32_t)m->attempt, text, true);
        coord__lease_end(c, p, m->task, 0);
        coord__schedule(c);
        return;
    }
    double seconds = (double)(coord__now(c) - t->leased_ms) / 1000.0;
    json_t *rec =
        json_pack("{s:I,s:i,s:s,s:I,s:f,s:o}", "task", (json_int_t)m->task, "attempt",
                  (int)m->attempt, "worker", p->name, "artifact_id", (json_int_t)m->artifact,
                  "lease_s", seconds, "metrics", metrics_json(&m->metrics));
    json_object_set_new(rec, "artifact", json_sprintf("%016" PRIx64, m->artifact));
    if (c->ops->result)
        c->ops->result(c->job, t, m, rec);
    if (coord__record(c, "done", rec) < 0)
        return;
    c->st.results++;
    coord__lease_end(c, p, m->task, m->artifact);
    p->step = p->steps = 0;
    p->tasks_done++;
    for (size_t i = 0; i < m->metrics.n; i++)
        if (strcmp(m->metrics.v[i].name, "pairs_per_s") == 0)
            p->pairs_per_s_sum += m->metrics.v[i].value;
    double trained = -1;
    for (size_t i = 0; i < m->metrics.n; i++)
        if (strcmp(m->metrics.v[i].name, "seconds") == 0)
            trained = m->metrics.v[i].value;
    if (trained >= 0)
        RW_INFO(WHO, "task %" PRIu64 " done by %s: trained in %.2f s (leased %.2f s ago)", m->task,
                p->name, trained, seconds);
    else
        RW_INFO(WHO, "task %" PRIu64 " done by %s (leased %.2f s ago)", m->task, p->name, seconds);
    coord__schedule(c);
}

static void on_error(coord_t *c, peer_t *p, const msg_error_t *e, const wire_peer_t *from)
{
    if (!e->has_task) {
        RW_WARN(WHO, "worker %s reports: %s (%s)", p->name, e->text, rw_err_name((int)e->code));
        return;
    }
    uint32_t attempt = e->has_attempt ? (uint32_t)e->attempt : 0;
    peer_lease_t *l = peer_lease_find(p, e->task, attempt);
    if (l && l->cancelling) { /* it stopped what it was told to */
        coord__lease_end(c, p, e->task, 0);
        coord__schedule(c);
        return;
    }
    if (!l || plan_check(c->plan, e->task, attempt, p->name) < 0) {
        wire_drop(c->w, from, "ERROR about a task attempt it does not hold");
        return;
    }
    RW_WARN(WHO, "task %" PRIu64 " attempt %u failed on %s: %s", e->task, attempt, p->name,
            e->text);
    coord__release(c, p, e->task, attempt, e->text, true);
    coord__lease_end(c, p, e->task, 0);
    coord__schedule(c);
}

static void on_heartbeat(coord_t *c, peer_t *p, const msg_heartbeat_t *h, const wire_peer_t *from)
{
    if (!h->has_task)
        return;
    uint32_t attempt = h->has_attempt ? (uint32_t)h->attempt : 0;
    peer_lease_t *l = peer_lease_find(p, h->task, attempt);
    if (l) { /* live, or being cancelled already */
        l->started = true;
        return;
    }
    /* working on something this coordinator never leased it (any more) */
    send_cancel(c, from, h->task, attempt ? attempt : 1, "not your lease");
}

void coord__handle(coord_t *c, const msg_t *m, const wire_peer_t *from)
{
    if (m->type == MSG_HEALTH_REQ) { /* from anyone, in any state */
        coord__health(c, &m->health_req, from);
        return;
    }
    if (c->stopping) {
        if (m->type != MSG_REFUSE && m->type != MSG_ERROR && m->type != MSG_SHUTDOWN)
            coord__shutdown_again(c, from);
        return;
    }
    peer_t *p = peers_by_addr(&c->peers, from);
    if (m->type == MSG_HELLO) {
        on_hello(c, p, &m->hello, from);
        coord__schedule(c);
        return;
    }
    if (!p) {
        if (m->type == MSG_REFUSE || m->type == MSG_ERROR || m->type == MSG_SHUTDOWN)
            return; /* never answer an answer */
        if (refuse_twin(c, from))
            return;
        wire_drop(c->w, from, "a message from a peer that did not say HELLO");
        send_error(c, from, RW_ENOTFOUND, "unknown peer: say HELLO first", 0, 0);
        return;
    }
    p->heard_ms = coord__now(c);
    switch (m->type) {
    case MSG_HEARTBEAT:
        on_heartbeat(c, p, &m->heartbeat, from);
        break;
    case MSG_PROGRESS:
        on_progress(c, p, &m->progress, from);
        break;
    case MSG_RESULT:
        on_result(c, p, &m->result, from);
        break;
    case MSG_ERROR:
        on_error(c, p, &m->error, from);
        break;
    case MSG_FETCH:
        coord__fetch(c, p, m->fetch.artifact);
        break;
    case MSG_ART_BEGIN:
    case MSG_ART_CHUNK:
    case MSG_ART_END:
    case MSG_ART_CREDIT:
    case MSG_ART_ACK:
        coord__art(c, p, m);
        break;
    case MSG_CHECKPOINT:
        break; /* resuming from checkpoints comes later; the message is harmless */
    default: {
        char why[96];
        snprintf(why, sizeof why, "a %s, which workers do not send", msg_type_name(m->type));
        wire_drop(c->w, from, why);
    }
    }
}
