/* serve.c — routing and scoring requests over finished bundles; see serve.h.
 *
 * bundle.h scores one request at a time per bundle, and this server runs on
 * one thread, so a bundle is never shared. A bundle is opened (and every
 * checksum verified) once per version of its manifest; a new version that
 * does not open leaves the last good one served, and is not tried again
 * until the manifest changes once more.
 */
#include "serve.h"

#include "alloc.h"
#include "bundle.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#define WHO              "router"
#define RSVC_BUNDLES_MAX 16

/* A manifest's version: its file's modification time, size and inode. */
typedef struct stamp {
    struct timespec mtime;
    off_t size;
    ino_t ino;
} stamp_t;

typedef struct open_bundle {
    char name[257];
    rw_bundle_t *b;    /* the last good one, or NULL */
    stamp_t good, bad; /* of b, and of the last version that failed */
    char bad_why[300]; /* why that one failed */
} open_bundle_t;

struct rsvc {
    void *sock;
    curve_auth_t *auth; /* --allow */
    wire_t *w;
    char *dir;
    char endpoint[256];
    int threads;
    open_bundle_t open[RSVC_BUNDLES_MAX];
    size_t n_open;
    rsvc_stats_t st;
    struct timespec started;
};

rsvc_t *rsvc_new(void *zctx, const char *bind, const char *dir, int threads,
                 const curve_opts_t *curve, char *why, size_t whylen)
{
    int rc;
    rsvc_t *s = rw_new(rsvc_t);
    s->threads = threads;
    s->dir = rw_strdup(dir);
    clock_gettime(CLOCK_MONOTONIC, &s->started);
    s->sock = zmq_socket(zctx, ZMQ_ROUTER);
    int linger = 500;
    if (!s->sock) {
        snprintf(why, whylen, "socket: %s", zmq_strerror(zmq_errno()));
        goto fail_socket;
    }
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
    /* requests queued from one client, before ZeroMQ stops reading it: a
     * client that sends a flood and vanishes could otherwise park 1,000
     * requests of up to 4 MiB here (the default high-water mark) */
    int hwm = RSVC_QUEUE_MAX, answers = RSVC_ANSWERS_MAX;
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &answers, sizeof answers);
    /* and a message over the largest the protocol has drops its connection
     * as it arrives, instead of being held whole and refused afterwards */
    int64_t max = (int64_t)MSG_MAX_BYTES;
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &max, sizeof max);
    if (!(s->w = wire_new(s->sock, WHO, &rc))) {
        snprintf(why, whylen, "socket: %s", rw_strerror(rc));
        goto fail_wire;
    }
    if (curve && (rc = curve_setup_server(s->sock, curve, why, whylen)) < 0)
        goto fail_bind;
    if (curve && curve->allow) {
        curve_key_t own;
        if (curve_key_load(curve->key_file, true, &own, why, whylen) < 0 ||
            !(s->auth = curve_auth_start(zctx, curve->allow, &own, WHO, why, whylen)))
            goto fail_bind;
    }
    if (wire_bind(s->w, bind, why, whylen) < 0)
        goto fail_bind;
    size_t len = sizeof s->endpoint;
    zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &len);
    return s;

fail_bind:
    curve_auth_stop(&s->auth);
    wire_destroy(&s->w);
fail_wire:
    zmq_close(s->sock);
fail_socket:
    free(s->dir);
    free(s);
    return NULL;
}

void rsvc_destroy(rsvc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rsvc_t *s = *self_p;
    for (size_t i = 0; i < s->n_open; i++)
        rw_bundle_destroy(&s->open[i].b);
    wire_destroy(&s->w);
    zmq_close(s->sock);
    curve_auth_stop(&s->auth);
    free(s->dir);
    free(s);
    *self_p = NULL;
}

void *rsvc_socket(rsvc_t *s)
{
    return s->sock;
}

const char *rsvc_endpoint(const rsvc_t *s)
{
    return s->endpoint;
}

void rsvc_stats(const rsvc_t *s, rsvc_stats_t *st)
{
    *st = s->st;
    wire_stats(s->w, &st->wire);
}

static stamp_t stamp_of(const struct stat *st)
{
    return (stamp_t){st->st_mtim, st->st_size, st->st_ino};
}

static bool same_stamp(const stamp_t *a, const stamp_t *b)
{
    return a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->size == b->size && a->ino == b->ino;
}

/* The entry of bundle name (made, forgetting the oldest, if new). */
static open_bundle_t *entry(rsvc_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_open; i++)
        if (strcmp(s->open[i].name, name) == 0)
            return &s->open[i];
    if (s->n_open == RSVC_BUNDLES_MAX) { /* forget the oldest */
        rw_bundle_destroy(&s->open[0].b);
        memmove(&s->open[0], &s->open[1], (RSVC_BUNDLES_MAX - 1) * sizeof s->open[0]);
        s->n_open--;
    }
    open_bundle_t *o = &s->open[s->n_open++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    return o;
}

/* The bundle called name, opened again if its manifest changed (a version
 * that does not open leaves the last good one in service). Returns 0 with
 * *b, or an error with why filled in. */
static int bundle(rsvc_t *s, const char *name, rw_bundle_t **b, char *why, size_t whylen)
{
    if (!name[0] || name[0] == '.' || strchr(name, '/')) {
        snprintf(why, whylen, "no bundle '%s' (a bundle is named by its folder)", name);
        return RW_EINVAL;
    }
    char dir[4096], manifest[4200];
    snprintf(dir, sizeof dir, "%s/%s", s->dir, name);
    snprintf(manifest, sizeof manifest, "%s/manifest.json", dir);
    struct stat st;
    if (stat(manifest, &st) != 0) {
        snprintf(why, whylen, "no bundle '%s' in %s", name, s->dir);
        return RW_ENOTFOUND;
    }
    if (!S_ISREG(st.st_mode)) { /* a FIFO would hold the service in open() */
        snprintf(why, whylen, "bundle '%s': manifest.json is not a regular file", name);
        return RW_EINVAL;
    }
    stamp_t now = stamp_of(&st);
    open_bundle_t *o = entry(s, name);
    if (o->b && same_stamp(&o->good, &now)) {
        *b = o->b;
        return 0;
    }
    if (!same_stamp(&o->bad, &now) || !o->bad_why[0]) {
        rw_bundle_t *nb = NULL;
        char err[256] = "";
        int rc = rw_bundle_open(dir, &nb, err, sizeof err);
        if (rc == 0) {
            rw_bundle_destroy(&o->b);
            o->b = nb;
            o->good = now;
            o->bad_why[0] = '\0';
            rw_bundle_set_threads(o->b, s->threads);
            s->st.opens++;
            RW_INFO(WHO, "serving bundle %s (%s, %zu domains)", dir,
                    rw_bundle_kind_name(rw_bundle_kind(o->b)), rw_bundle_n_domains(o->b));
            *b = o->b;
            return 0;
        }
        o->bad = now;
        snprintf(o->bad_why, sizeof o->bad_why, "%s", err);
        RW_WARN(WHO, "bundle %s does not open: %s%s", dir, err,
                o->b ? "; serving the version opened before" : "");
    }
    if (o->b) {
        *b = o->b;
        return 0;
    }
    snprintf(why, whylen, "bundle '%s': %s", name, o->bad_why);
    return RW_EFORMAT;
}

/* An ERROR for the request req, or with req NULL for one whose req is
 * unknown (it could not be read). */
static void reply_error(rsvc_t *s, const wire_peer_t *to, const uint64_t *req, int code,
                        const char *text)
{
    msg_t m;
    msg_init(&m, MSG_ERROR);
    m.error.code = code < 0 ? code : RW_EINVAL;
    m.error.text = text;
    m.error.req = req ? *req : 0;
    m.error.has_req = req != NULL;
    if (wire_send(s->w, to, &m, ZMQ_DONTWAIT) == 0)
        s->st.errors++;
}

/* Sends the answer m to request req about bundle; an answer the protocol
 * would not carry (a foreign bundle's domain names that are no protocol
 * names, say) becomes an ERROR, so its client is never left waiting.
 * Returns 0 when m went. */
static int answer(rsvc_t *s, const wire_peer_t *to, const msg_t *m, uint64_t req,
                  const char *bundle_name)
{
    int rc = wire_send(s->w, to, m, ZMQ_DONTWAIT);
    if (rc == 0 || rc == -EAGAIN || rc == -EHOSTUNREACH || rc == -EINTR || rc == -ETERM)
        return rc;
    char why[300];
    snprintf(why, sizeof why,
             "bundle '%s': its answer is not a valid %s (%s); see the router service's log",
             bundle_name, msg_type_name(m->type), rw_strerror(rc));
    reply_error(s, to, &req, rc, why);
    return rc;
}

/* Scores the batch; route[] gets the domains. Returns 0 or an error. */
static int score(rw_bundle_t *b, const msg_strs_t *prompts, const msg_strs_t *responses,
                 double *rewards, int *route)
{
    size_t n = prompts->n < MSG_BATCH_MAX ? prompts->n : MSG_BATCH_MAX;
    size_t plen[MSG_BATCH_MAX] = {0}, rlen[MSG_BATCH_MAX] = {0};
    for (size_t i = 0; i < n; i++) {
        plen[i] = strlen(prompts->v[i]);
        rlen[i] = strlen(responses->v[i]);
    }
    int rc = rw_bundle_score(b, prompts->v, plen, responses->v, rlen, n, NULL, rewards, route);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!(rewards[i] >= -1e30 && rewards[i] <= 1e30))
            rc = RW_ENUMERIC;
    return rc;
}

/* Whether request req of from is worth its work: not when its client is
 * gone (its connection closed while the request waited in the queue) or
 * holds RSVC_ANSWERS_MAX answers unread, as the answer would be dropped.
 * When it is, the answer's way is open (wire_reserve): every path after
 * must send `from` one answer, an ERROR or the reply. */
static bool wanted(rsvc_t *s, const wire_peer_t *from, uint64_t req)
{
    int rc = wire_reserve(s->w, from);
    if (rc == 0)
        return true;
    s->st.abandoned++;
    char name[64];
    RW_DEBUG(WHO, "not working on request %" PRIu64 " of %s: %s", req,
             wire_peer_name(from, name, sizeof name),
             rc == -EAGAIN ? "it does not read its answers" : "it is gone");
    return false;
}

static void on_route(rsvc_t *s, const msg_route_req_t *r, const wire_peer_t *from)
{
    char why[512];
    rw_bundle_t *b;
    if (!wanted(s, from, r->req))
        return;
    int rc = bundle(s, r->bundle, &b, why, sizeof why);
    if (rc < 0) {
        reply_error(s, from, &r->req, rc, why);
        return;
    }
    rw_bundle_kind_t kind = rw_bundle_kind(b);
    if (kind != RW_BUNDLE_ROUTER && kind != RW_BUNDLE_ADAPTER) {
        snprintf(why, sizeof why, "bundle '%s' is a %s bundle, which does not route", r->bundle,
                 rw_bundle_kind_name(kind));
        reply_error(s, from, &r->req, RW_EINVAL, why);
        return;
    }
    size_t nd = rw_bundle_n_domains(b), n = r->prompts.n;
    size_t lens[MSG_BATCH_MAX];
    int route[MSG_BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(r->prompts.v[i]);
    float *probs = rw_new_array(float, n *nd);
    if ((rc = rw_bundle_route(b, r->prompts.v, lens, n, route, probs)) < 0) {
        reply_error(s, from, &r->req, rc, "routing failed");
        free(probs);
        return;
    }
    const char **names = rw_new_array(const char *, nd);
    for (size_t i = 0; i < nd; i++)
        names[i] = rw_bundle_domain(b, i);
    uint64_t choice[MSG_BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        choice[i] = route[i] >= 0 && (size_t)route[i] < nd ? (uint64_t)route[i] : 0;
    msg_t m;
    msg_init(&m, MSG_ROUTE_REP);
    m.route_rep.req = r->req;
    m.route_rep.domains = (msg_strs_t){names, nd};
    m.route_rep.choice = (msg_u64s_t){choice, n};
    m.route_rep.probs = (msg_f32s_t){probs, n * nd};
    if (answer(s, from, &m, r->req, r->bundle) == 0)
        s->st.routed++;
    free(probs);
    free(names);
}

static void on_score(rsvc_t *s, const msg_score_req_t *r, const wire_peer_t *from)
{
    char why[512];
    rw_bundle_t *b;
    if (!wanted(s, from, r->req))
        return;
    int rc = bundle(s, r->bundle, &b, why, sizeof why);
    if (rc < 0) {
        reply_error(s, from, &r->req, rc, why);
        return;
    }
    double rewards[MSG_BATCH_MAX];
    int route[MSG_BATCH_MAX];
    if ((rc = score(b, &r->prompts, &r->responses, rewards, route)) < 0) {
        reply_error(s, from, &r->req, rc, "scoring failed");
        return;
    }
    size_t n = r->prompts.n;
    uint64_t doms[MSG_BATCH_MAX];
    bool routed = true;
    for (size_t i = 0; i < n; i++) {
        routed &= route[i] >= 0;
        doms[i] = route[i] >= 0 ? (uint64_t)route[i] : 0;
    }
    msg_t m;
    msg_init(&m, MSG_SCORE_REP);
    m.score_rep.req = r->req;
    m.score_rep.rewards = (msg_f64s_t){rewards, n};
    if (routed)
        m.score_rep.domains = (msg_u64s_t){doms, n};
    if (answer(s, from, &m, r->req, r->bundle) == 0)
        s->st.scored++;
}

/* Whether folder name holds a bundle the service can serve, as far as it
 * knows without opening it: a regular manifest, not the version that
 * failed to open last (with no good one to serve instead). */
static bool servable(rsvc_t *s, const char *name)
{
    char manifest[4096];
    struct stat st;
    snprintf(manifest, sizeof manifest, "%s/%s/manifest.json", s->dir, name);
    if (name[0] == '.' || stat(manifest, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    stamp_t now = stamp_of(&st);
    for (size_t i = 0; i < s->n_open; i++)
        if (strcmp(s->open[i].name, name) == 0)
            return s->open[i].b || !same_stamp(&s->open[i].bad, &now);
    return true;
}

/* The service is up: bundles counts the bundles it can serve (servable),
 * so a readiness probe can tell a router service that has something to
 * serve. */
static void on_health(rsvc_t *s, const msg_health_req_t *r, const wire_peer_t *from)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t bundles = 0;
    DIR *d = opendir(s->dir);
    for (struct dirent *e; d && (e = readdir(d));)
        bundles += servable(s, e->d_name);
    if (d)
        closedir(d);
    msg_t m;
    msg_init(&m, MSG_HEALTH_REP);
    m.health_rep.req = r->req;
    m.health_rep.service = "router";
    m.health_rep.state = "serving";
    int64_t ms = (int64_t)(now.tv_sec - s->started.tv_sec) * 1000 +
                 (now.tv_nsec - s->started.tv_nsec) / 1000000;
    m.health_rep.uptime_ms = ms > 0 ? (uint64_t)ms : 0;
    m.health_rep.bundles = bundles, m.health_rep.has_bundles = true;
    wire_send(s->w, from, &m, ZMQ_DONTWAIT);
}

static bool is_answer(msg_type_t type)
{
    return type == MSG_ERROR || type == MSG_REFUSE || type == MSG_SHUTDOWN || type == MSG_WELCOME ||
           type == MSG_ROUTE_REP || type == MSG_SCORE_REP || type == MSG_HEALTH_REP;
}

/* A message came that could not be read: its sender may be waiting on it,
 * so it hears why (without a req, which is unknown). Not for another
 * protocol version (wire.h sent REFUSE) nor for what claims to be an
 * answer, which is never answered. */
static void on_unreadable(rsvc_t *s, int rc, msg_type_t type, const wire_peer_t *from)
{
    if (rc == RW_EVERSION || from->id_len == 0 || is_answer(type) || !*wire_last_drop(s->w))
        return;
    char why[MSG_WHY_MAX + 64];
    const char *name = msg_type_name(type);
    bool known = type != MSG_NONE && strcmp(name, msg_type_name(MSG_NONE)) != 0 &&
                 strcmp(name, "UNKNOWN") != 0;
    snprintf(why, sizeof why, "cannot read this %s: %s", known ? name : "message",
             wire_last_drop(s->w));
    reply_error(s, from, NULL, rc, why);
}

void rsvc_drain(rsvc_t *s)
{
    /* a flood of requests must not hold the loop past a heartbeat: what is
     * left waits for the next turn (the owner polls level-triggered) */
    uint64_t until = rw_now_ms() + RSVC_DRAIN_MS;
    for (int k = 0; k < 4096 && (k == 0 || rw_now_ms() < until); k++) {
        msg_t m;
        wire_peer_t from;
        int rc = wire_recv(s->w, &m, &from, ZMQ_DONTWAIT);
        if (rc == -EAGAIN || rc == -EINTR || rc == -ETERM)
            return;
        if (rc < 0) { /* dropped by wire: counted, logged once */
            on_unreadable(s, rc, m.type, &from);
            continue;
        }
        switch (m.type) {
        case MSG_ROUTE_REQ:
            on_route(s, &m.route_req, &from);
            break;
        case MSG_SCORE_REQ:
            on_score(s, &m.score_req, &from);
            break;
        case MSG_HEALTH_REQ:
            on_health(s, &m.health_req, &from);
            break;
        default: {
            if (is_answer(m.type)) {
                wire_drop(s->w, &from, "an answer where a request belongs");
                break; /* never answer an answer */
            }
            char why[128];
            snprintf(why, sizeof why,
                     "the router service answers ROUTE_REQ, SCORE_REQ and HEALTH_REQ, not %s",
                     msg_type_name(m.type));
            wire_drop(s->w, &from, why);
            reply_error(s, &from, NULL, RW_EMSGTYPE, why);
        }
        }
        msg_fini(&m);
    }
}
