/* agent.c — a worker's connection to its coordinator; see agent.h.
 *
 * One thread (the caller of agent_run) owns the socket and runs a zmq_poll
 * loop over it, an eventfd the training thread writes to, and the optional
 * extra socket; timers are deadlines checked after every wake-up. A task
 * moves FETCH -> RUN -> UPLOAD -> (RESULT sent) NONE; transfers, training
 * and uploads of one task never overlap, so one set of fields holds it.
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
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#define WHO "worker"

int agent__send(agent_t *a, const msg_t *m)
{
    if (!a->w)
        return -ENOTCONN;
    return wire_send(a->w, NULL, m, ZMQ_DONTWAIT);
}

/* Reads the CURVE keys the options name, once, for every connect. */
static int agent_curve(agent_t *a)
{
    const curve_opts_t *o = &a->o.curve;
    char why[512];
    int rc = 0;
    if (!o->server_file)
        return 0; /* the coordinator speaks plain ZeroMQ */
    if ((rc = curve_key_load(o->server_file, false, &a->curve_server, why, sizeof why)) == 0 &&
        o->key_file &&
        (rc = curve_key_load(o->key_file, true, &a->curve_own, why, sizeof why)) == 0)
        a->curve_has_own = true;
    if (rc < 0)
        RW_ERROR(WHO, "%s", why);
    a->curve = rc == 0;
    return rc;
}

agent_t *agent_new(const agent_opts_t *o, int *err)
{
    int rc = RW_EINVAL;
    if (!o->connect || !o->cache_dir || o->n_caps == 0 || o->n_caps > 16 || o->threads < 1)
        goto fail;
    agent_t *a = rw_new(agent_t);
    a->u.src.fd = -1;
    a->efd = -1;
    a->o = *o;
    a->o.connect = rw_strdup(o->connect);
    a->caps = rw_new_array(const char *, o->n_caps);
    for (size_t i = 0; i < o->n_caps; i++)
        a->caps[i] = rw_strdup(o->caps[i]);
    a->o.caps = a->caps;
    a->o.domain = o->domain ? rw_strdup(o->domain) : NULL;
    if (!a->o.exec)
        a->o.exec = &agent_task_ops;
    if (!a->o.backoff_ms)
        a->o.backoff_ms = 100;
    if (!a->o.backoff_max_ms)
        a->o.backoff_max_ms = 5000;
    if (!a->o.progress_ms)
        a->o.progress_ms = 200;
    if (o->id) {
        snprintf(a->id, sizeof a->id, "%s", o->id);
    } else {
        char host[64] = "worker";
        gethostname(host, sizeof host);
        host[sizeof host - 1] = '\0';
        for (char *p = host; *p; p++)
            if (!(*p == '.' || *p == '-' || *p == '_' || (*p >= '0' && *p <= '9') ||
                  ((*p | 32) >= 'a' && (*p | 32) <= 'z')))
                *p = '-';
        /* a worker that brings a domain is HOST:DOMAIN, so the same command
         * run again after it died is the same worker: the coordinator gives it
         * its domain's pinned tasks back instead of refusing the name */
        size_t room = o->domain ? MSG_NAME_MAX - 1 - strlen(o->domain) : 0;
        if (o->domain && room >= 1)
            snprintf(a->id, sizeof a->id, "%.*s:%s", (int)(room < 40 ? room : 40), host, o->domain);
        else
            snprintf(a->id, sizeof a->id, "%.40s:%ld", host, (long)getpid());
    }
    a->o.id = a->id;
    a->backoff = a->o.backoff_ms;
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->zctx = zmq_ctx_new();
    if (a->efd < 0 || !a->zctx) {
        rc = -errno;
        agent_destroy(&a);
        goto fail;
    }
    if ((rc = agent_curve(a)) < 0) {
        agent_destroy(&a);
        goto fail;
    }
    if (!(a->cache = store_open(o->cache_dir, &rc)))
        RW_ERROR(WHO, "cannot use %s as the cache: %s", o->cache_dir, rw_strerror(rc));
    if (!a->cache || (rc = agent__trainer_start(a)) < 0) {
        agent_destroy(&a);
        goto fail;
    }
    agent__trim(a); /* a cache kept from earlier jobs */
    if (err)
        *err = 0;
    return a;

fail:
    if (err)
        *err = rc;
    return NULL;
}

void agent_destroy(agent_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    agent_t *a = *self_p;
    agent__drop_all(a);
    agent__trainer_stop(a);
    agent__disconnect(a, false);
    if (a->zctx)
        zmq_ctx_term(a->zctx);
    store_destroy(&a->cache);
    free(a->sound);
    if (a->efd >= 0)
        close(a->efd);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    for (size_t i = 0; i < a->o.n_caps; i++)
        free((char *)a->caps[i]);
    free(a->caps);
    free((char *)a->o.domain);
    free((char *)a->o.connect);
    free(a);
    *self_p = NULL;
}

void agent_stop(agent_t *a)
{
    a->stop = 1;
    uint64_t one = 1;
    if (write(a->efd, &one, sizeof one) < 0) {
        /* the counter is full: the loop is awake anyway */
    }
}

void agent_stats(const agent_t *a, agent_stats_t *st)
{
    *st = a->st;
}

const char *agent_id(const agent_t *a)
{
    return a->id;
}

const char *agent_refusal(const agent_t *a)
{
    return a->refusal[0] ? a->refusal : NULL;
}

/* ---- connection ---- */

void agent__disconnect(agent_t *a, bool backoff)
{
    if (a->mon) {
        zmq_close(a->mon);
        a->mon = NULL;
    }
    if (a->sock) {
        wire_destroy(&a->w);
        zmq_close(a->sock);
        a->sock = NULL;
    }
    a->conn = AGENT_DOWN;
    uint64_t now = rw_now_ms();
    if (backoff) {
        a->next_try = now + a->backoff;
        a->backoff = a->backoff * 2 > a->o.backoff_max_ms ? a->o.backoff_max_ms : a->backoff * 2;
    } else {
        a->next_try = now;
    }
}

static int send_hello(agent_t *a)
{
    msg_t m;
    msg_init(&m, MSG_HELLO);
    m.hello.worker_id = a->id;
    m.hello.caps = (msg_strs_t){a->caps, a->o.n_caps};
    m.hello.threads = (uint64_t)a->o.threads;
    if (a->o.domain) {
        m.hello.domain = a->o.domain;
        m.hello.data_pairs = a->o.domain_pairs;
        m.hello.data_bytes = a->o.domain_bytes;
        m.hello.data_checksum = a->o.domain_shard;
        m.hello.data_upload = a->o.domain_upload;
        m.hello.has_data_pairs = m.hello.has_data_bytes = m.hello.has_data_checksum =
            m.hello.has_data_upload = true;
    }
    return agent__send(a, &m);
}

static void connect_now(agent_t *a)
{
    int zero = 0, one = 1, rc;
    a->sock = zmq_socket(a->zctx, ZMQ_DEALER);
    if (!a->sock || !(a->w = wire_new(a->sock, "worker", &rc))) {
        RW_ERROR("worker", "cannot make a socket: %s", zmq_strerror(zmq_errno()));
        agent__disconnect(a, true);
        return;
    }
    zmq_setsockopt(a->sock, ZMQ_LINGER, &zero, sizeof zero);
    /* send nothing on a connection that is not up: HELLO waits in our hands,
     * not in a queue that a dead endpoint would keep */
    zmq_setsockopt(a->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    if (a->curve &&
        (rc = curve_client(a->sock, a->curve_has_own ? &a->curve_own : NULL, &a->curve_server))) {
        RW_ERROR("worker", "cannot use CURVE: %s", zmq_strerror(-rc));
        agent__disconnect(a, true);
        return;
    }
    char mon[64];
    snprintf(mon, sizeof mon, "inproc://rw-handshakes-%u", a->n_mon++);
    a->mon = curve_watch(a->zctx, a->sock, mon);
    if (zmq_connect(a->sock, a->o.connect) != 0) {
        RW_ERROR("worker", "cannot connect to %s: %s", a->o.connect, zmq_strerror(zmq_errno()));
        agent__disconnect(a, true);
        return;
    }
    a->conn = AGENT_HELLO;
    a->hello_sent = false;
    uint64_t wait = a->backoff < 1000 ? 1000 : a->backoff;
    a->attempt_deadline = rw_now_ms() + wait;
}

/* ---- the loop ---- */

static void timers(agent_t *a)
{
    uint64_t now = rw_now_ms();
    if (a->conn == AGENT_DOWN && now >= a->next_try && !a->stop)
        connect_now(a);
    if (a->conn == AGENT_HELLO) {
        if (!a->hello_sent && send_hello(a) == 0)
            a->hello_sent = true;
        if (now >= a->attempt_deadline) {
            const char *why = curve_failure(a->mon,
                                            !a->curve          ? CURVE_NONE
                                            : a->curve_has_own ? CURVE_OWN_KEY
                                                               : CURVE_FRESH_KEY,
                                            "coordinator");
            rw_log(*why ? RW_LOG_WARN : RW_LOG_INFO, "worker",
                   "no answer from %s%s; trying again in %u ms", a->o.connect, why, a->backoff);
            agent__disconnect(a, true);
        }
    }
    if (a->conn == AGENT_UP) {
        if (now - a->last_heard > a->timeout_ms) {
            RW_WARN("worker", "the coordinator is silent past %u ms: reconnecting", a->timeout_ms);
            agent__drop_all(a);
            agent__disconnect(a, false);
            return;
        }
        agent__xfer_watch(a, now);
        if (now >= a->next_hb) {
            msg_t m;
            msg_init(&m, MSG_HEARTBEAT);
            m.heartbeat.seq = ++a->hb_seq;
            uint64_t task;
            uint32_t attempt;
            if (agent__current(a, &task, &attempt)) {
                m.heartbeat.task = task;
                m.heartbeat.has_task = true;
                m.heartbeat.attempt = attempt;
                m.heartbeat.has_attempt = true;
            }
            agent__send(a, &m);
            a->next_hb = now + a->hb_ms;
        }
        if (now - a->progress_ms >= a->o.progress_ms && agent__trainer_load(a) > 0)
            agent__trainer_events(a); /* a step held back by the gap */
    }
}

static long poll_timeout(agent_t *a)
{
    uint64_t now = rw_now_ms(), next = now + 1000;
    if (a->conn == AGENT_DOWN && a->next_try < next)
        next = a->next_try;
    if (a->conn == AGENT_HELLO)
        next = a->hello_sent ? (a->attempt_deadline < next ? a->attempt_deadline : next) : now + 20;
    if (a->conn == AGENT_UP) {
        if (a->next_hb < next)
            next = a->next_hb;
        /* while a task runs, a step held back by the gap goes when it ends */
        if (a->progress_ms + a->o.progress_ms < next && agent__trainer_load(a) > 0)
            next = a->progress_ms + a->o.progress_ms;
    }
    return next > now ? (long)(next - now) : 0;
}

int agent_run(agent_t *a)
{
    a->result = 0;
    a->next_try = rw_now_ms();
    while (!a->stop && !a->done) {
        timers(a);
        if (a->stop || a->done)
            break;
        zmq_pollitem_t items[3] = {{NULL, a->efd, ZMQ_POLLIN, 0}};
        int n = 1, sock_at = -1, extra_at = -1;
        if (a->sock) {
            items[n] = (zmq_pollitem_t){a->sock, 0, ZMQ_POLLIN, 0};
            sock_at = n++;
        }
        if (a->o.extra_sock) {
            items[n] = (zmq_pollitem_t){a->o.extra_sock, 0, ZMQ_POLLIN, 0};
            extra_at = n++;
        }
        int rc = zmq_poll(items, n, poll_timeout(a));
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            RW_ERROR("worker", "poll: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            agent__trainer_events(a);
        if (sock_at >= 0 && (items[sock_at].revents & ZMQ_POLLIN)) {
            for (int k = 0; k < 1024 && a->w; k++) {
                msg_t m;
                int r = wire_recv(a->w, &m, NULL, ZMQ_DONTWAIT);
                if (r == -EAGAIN || r == -EINTR || r == -ETERM)
                    break;
                if (r < 0)
                    continue; /* dropped: counted and logged by wire */
                agent__handle(a, &m);
                msg_fini(&m);
            }
        }
        if (extra_at >= 0 && (items[extra_at].revents & ZMQ_POLLIN))
            a->o.on_extra(a->o.extra_ctx);
    }
    if (a->stop && !a->done)
        RW_INFO("worker", "shutting down: stopped");
    agent__drop_all(a);
    agent__disconnect(a, false);
    return a->result;
}
