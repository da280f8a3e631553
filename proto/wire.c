/* wire.c — messages over ZeroMQ sockets; see wire.h.
 *
 * The body frame of a received message becomes the message's own: the
 * decoded bins point into it and msg_fini closes it, so an artifact chunk
 * is never copied between the socket and the sink. Drops are logged once
 * per (peer, reason): a peer spraying garbage fills the counters, not the
 * log. A client that reconnects is a new peer to a ROUTER (a fresh routing
 * id), so new pairs are also logged only so many a minute: a burst of
 * clients that each send garbage and vanish gets a few lines, not one
 * apiece. The set that remembers what was logged is bounded; once full, it
 * starts over.
 */
#include "wire.h"

#include "alloc.h"
#include "err.h"
#include "hash.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#define WIRE_LOGGED_MAX   1024 /* (peer, reason) pairs remembered; a power of two */
#define WIRE_NEW_A_MINUTE 10   /* new (peer, reason) pairs logged a minute */

struct wire {
    void *sock;
    int type;
    char who[32];
    wire_stats_t st;
    uint64_t logged[WIRE_LOGGED_MAX]; /* hashes; 0 is empty */
    size_t n_logged;
    uint64_t minute;                  /* when the minute counted below began (rw_now_ms) */
    unsigned n_new;                   /* new pairs logged in that minute */
    uint64_t held;                    /* drops of new pairs not logged in it */
    char last_drop[MSG_WHY_MAX + 32]; /* "<reason>: <why>" of the last drop */
    /* the peer whose routing id wire_reserve sent: the message it opened */
    uint8_t open_id[sizeof((wire_peer_t *)0)->id];
    size_t open_len;
    /* the socket file wire_bind made, removed by wire_destroy if still ours */
    char ipc_path[sizeof((struct sockaddr_un *)0)->sun_path];
    dev_t ipc_dev;
    ino_t ipc_ino;
    pid_t ipc_pid; /* a forked child destroying its copy leaves the file be */
    int lock_fd;   /* PATH.lock, flocked from before the bind until destroy; -1 */
    char lock_path[4096];
};

static const char *const drop_names[] = {
#define XX(name, text) text,
    WIRE_DROP_MAP(XX)
#undef XX
};

const char *wire_drop_name(wire_drop_t reason)
{
    return (unsigned)reason < WIRE_DROP__COUNT ? drop_names[reason] : "unknown";
}

wire_t *wire_new(void *sock, const char *who, int *err)
{
    int type = 0, one = 1;
    size_t len = sizeof type;
    int64_t max = (int64_t)MSG_MAX_BYTES;
    if (zmq_getsockopt(sock, ZMQ_TYPE, &type, &len) != 0 ||
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0 ||
        (type == ZMQ_ROUTER && zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0)) {
        if (err)
            *err = -zmq_errno();
        return NULL;
    }
    wire_t *w = rw_new(wire_t);
    w->sock = sock;
    w->type = type;
    w->minute = rw_now_ms();
    w->lock_fd = -1;
    snprintf(w->who, sizeof w->who, "%s", who ? who : "wire");
    if (err)
        *err = 0;
    return w;
}

/* Ends the message wire_reserve opened with an empty body (its peer drops
 * it as truncated), so the socket is never left in the middle of one. */
static void close_open(wire_t *w)
{
    if (!w->open_len)
        return;
    RW_ERROR(w->who, "a message reserved for a peer was never sent; sent empty");
    zmq_send(w->sock, "", 0, ZMQ_DONTWAIT);
    w->open_len = 0;
}

/* Lets go of PATH.lock: removed while still held, so that whoever opens it
 * next either locks it before the removal (and sees it gone, see ipc_lock)
 * or makes a new one. A forked child closes its copy only. */
static void ipc_unlock(wire_t *w)
{
    if (w->lock_fd < 0)
        return;
    if (w->ipc_pid == getpid())
        unlink(w->lock_path);
    close(w->lock_fd);
    w->lock_fd = -1;
}

void wire_destroy(wire_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wire_t *w = *self_p;
    close_open(w);
    struct stat st;
    if (w->ipc_path[0] && w->ipc_pid == getpid() && stat(w->ipc_path, &st) == 0 &&
        S_ISSOCK(st.st_mode) && st.st_dev == w->ipc_dev && st.st_ino == w->ipc_ino)
        unlink(w->ipc_path);
    ipc_unlock(w);
    free(*self_p);
    *self_p = NULL;
}

/* tcp://HOST:PORT: a host (* only to bind: every interface) and a port ZeroMQ
 * will not wrap. */
static int tcp_check(const char *endpoint, bool bind, char *why, size_t whylen)
{
    const char *host = endpoint + 6, *colon = strrchr(host, ':'), *port = colon ? colon + 1 : "";
    size_t hostlen = colon ? (size_t)(colon - host) : strlen(host);
    if (hostlen == 0) {
        snprintf(why, whylen, "%s: no host: tcp://HOST:PORT%s", endpoint,
                 bind ? " (HOST * for every interface)" : "");
        return RW_EINVAL;
    }
    if (!bind && hostlen == 1 && *host == '*') {
        snprintf(why, whylen, "%s: * (every interface) is for binding; connect to a host",
                 endpoint);
        return RW_EINVAL;
    }
    if (bind && strcmp(port, "*") == 0)
        return 0;
    size_t n = strspn(port, "0123456789");
    unsigned long v = n && n <= 5 && port[n] == '\0' ? strtoul(port, NULL, 10) : 70000;
    if (v <= 65535 && (v > 0 || bind))
        return 0;
    snprintf(why, whylen, "%s: the port must be %s, not '%s'", endpoint,
             bind ? "1..65535, or * or 0 for a free one" : "1..65535", port);
    return RW_EINVAL;
}

/* ipc://PATH: a path that fits a socket address (ZeroMQ refuses a longer one
 * with ENAMETOOLONG, which a worker would retry for ever). */
static int ipc_check(const char *endpoint, char *why, size_t whylen)
{
    size_t n = strlen(endpoint + 6), max = sizeof((struct sockaddr_un *)0)->sun_path - 1;
    if (n == 0)
        snprintf(why, whylen, "%s: no path: ipc://PATH (a socket file)", endpoint);
    else if (n > max)
        snprintf(why, whylen, "%s: the path is %zu bytes, a socket's at most %zu", endpoint, n,
                 max);
    return n == 0 || n > max ? RW_EINVAL : 0;
}

int wire_endpoint_check(const char *endpoint, bool bind, char *why, size_t whylen)
{
    if (strncmp(endpoint, "tcp://", 6) == 0)
        return tcp_check(endpoint, bind, why, whylen);
    if (strncmp(endpoint, "ipc://", 6) == 0)
        return ipc_check(endpoint, why, whylen);
    /* "localhost:5555": the transport forgotten */
    bool bare = !strstr(endpoint, "://") && strchr(endpoint, ':');
    snprintf(why, whylen, "%s: %s; an endpoint is tcp://HOST:PORT or ipc://PATH%s%s%s", endpoint,
             strncmp(endpoint, "inproc://", 9) == 0 ? "inproc:// is within one process"
                                                    : "not an endpoint",
             bare ? " (tcp://" : "", bare ? endpoint : "", bare ? "?)" : "");
    return RW_EINVAL;
}

int wire_endpoint_arg(const char *prog, const char *flag, const char *endpoint, bool bind)
{
    char why[512];
    if (wire_endpoint_check(endpoint, bind, why, sizeof why) == 0)
        return 0;
    fprintf(stderr, "%s: %s %s\n", prog, flag, why);
    return 2;
}

/* Whether a process accepts connections on the unix socket at path: a
 * stale file (ECONNREFUSED), no file, or something else is not in use. */
static bool ipc_in_use(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    if (strlen(path) >= sizeof sa.sun_path || stat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    while (rc != 0 && errno == EINTR);
    close(fd);
    return rc == 0;
}

/* Takes PATH.lock with flock, held until wire_destroy: the check that no
 * service answers on PATH and the bind that follows are then one step, so
 * of two services started at once on one path only one binds it (ZeroMQ
 * would let the second take the socket file over). 0 when taken, or when
 * no lock can be made there (the bind decides); -EADDRINUSE, said, when
 * another process holds it. */
static int ipc_lock(wire_t *w, const char *endpoint, const char *path, char *why, size_t whylen)
{
    if (w->lock_fd >= 0 ||
        snprintf(w->lock_path, sizeof w->lock_path, "%s.lock", path) >= (int)sizeof w->lock_path)
        return 0;
    for (int tries = 0; tries < 16; tries++) {
        int fd = open(w->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return 0;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            if (e != EWOULDBLOCK)
                return 0;
            if (ipc_in_use(path))
                snprintf(why, whylen, "cannot bind %s: %s is in use by a running service", endpoint,
                         endpoint);
            else
                snprintf(why, whylen,
                         "cannot bind %s: another service is starting on it (it holds %s)",
                         endpoint, w->lock_path);
            return -EADDRINUSE;
        }
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(w->lock_path, &now) == 0 && held.st_dev == now.st_dev &&
            held.st_ino == now.st_ino) {
            w->lock_fd = fd;
            w->ipc_pid = getpid();
            return 0;
        }
        close(fd); /* its holder removed it as we locked it: a fresh one */
    }
    return 0;
}

int wire_bind(wire_t *w, const char *endpoint, char *why, size_t whylen)
{
    const char *path = strncmp(endpoint, "ipc://", 6) == 0 ? endpoint + 6 : NULL;
    /* "*" is a fresh path ZeroMQ makes; "@name" is Linux's abstract
     * namespace, which has no file and refuses a second bind itself */
    bool file = path && strcmp(path, "*") != 0 && path[0] != '@';
    int rc;
    if (file && (rc = ipc_lock(w, endpoint, path, why, whylen)) < 0)
        return rc;
    if (file && ipc_in_use(path)) {
        snprintf(why, whylen, "cannot bind %s: %s is in use by a running service", endpoint,
                 endpoint);
        ipc_unlock(w);
        return -EADDRINUSE;
    }
    if (zmq_bind(w->sock, endpoint) != 0) {
        rc = -zmq_errno();
        snprintf(why, whylen, "cannot bind %s: %s", endpoint, zmq_strerror(-rc));
        ipc_unlock(w);
        return rc;
    }
    char last[sizeof w->ipc_path + 8];
    size_t len = sizeof last;
    struct stat st;
    if (path && zmq_getsockopt(w->sock, ZMQ_LAST_ENDPOINT, last, &len) == 0 &&
        strncmp(last, "ipc://", 6) == 0 && last[6] != '@' &&
        strlen(last + 6) < sizeof w->ipc_path && stat(last + 6, &st) == 0) {
        memcpy(w->ipc_path, last + 6, strlen(last + 6) + 1);
        w->ipc_dev = st.st_dev;
        w->ipc_ino = st.st_ino;
        w->ipc_pid = getpid();
    }
    return 0;
}

const char *wire_last_drop(const wire_t *w)
{
    return w->last_drop;
}

void wire_stats(const wire_t *w, wire_stats_t *st)
{
    *st = w->st;
}

const char *wire_peer_name(const wire_peer_t *p, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->id_len && i < 8 && used + 3 <= n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%02x", p->id[i]);
    if (p->addr[0] && used < n)
        snprintf(buf + used, n - used, "@%s", p->addr);
    else if (!p->id_len && n)
        snprintf(buf, n, "peer");
    return buf;
}

/* Whether (peer, reason) is new and may be logged (WIRE_NEW_A_MINUTE new
 * pairs a minute): remembers it and says so once. */
static bool first_time(wire_t *w, const wire_peer_t *p, wire_drop_t reason)
{
    uint64_t h = rw_hash_update(RW_HASH_SEED, p->id, p->id_len);
    h = rw_hash_update(h, p->addr, strlen(p->addr));
    h = rw_hash_final(rw_hash_update(h, &reason, sizeof reason)) | 1;
    size_t i = h & (WIRE_LOGGED_MAX - 1);
    for (size_t probe = 0; probe < WIRE_LOGGED_MAX; probe++, i = (i + 1) & (WIRE_LOGGED_MAX - 1)) {
        if (w->logged[i] == h)
            return false;
        if (w->logged[i] == 0)
            break;
    }
    uint64_t now = rw_now_ms();
    if (now - w->minute >= 60000) {
        if (w->held)
            RW_WARN(w->who,
                    "%" PRIu64 " more messages from new peers were dropped in the "
                    "minute before: counted, not logged",
                    w->held);
        w->minute = now, w->n_new = 0, w->held = 0;
    }
    if (w->n_new >= WIRE_NEW_A_MINUTE) {
        if (w->held++ == 0)
            RW_WARN(w->who,
                    "dropped messages from %d new peers this minute; the rest of the "
                    "minute's are counted, not logged",
                    WIRE_NEW_A_MINUTE);
        return false;
    }
    if (w->n_logged >= WIRE_LOGGED_MAX * 3 / 4) { /* start over: lines are few a minute */
        memset(w->logged, 0, sizeof w->logged);
        w->n_logged = 0;
        i = h & (WIRE_LOGGED_MAX - 1);
    }
    w->logged[i] = h;
    w->n_logged++;
    w->n_new++;
    return true;
}

static void note_drop(wire_t *w, const wire_peer_t *p, wire_drop_t reason, const char *why)
{
    char name[64];
    snprintf(w->last_drop, sizeof w->last_drop, "%s: %s", wire_drop_name(reason), why);
    w->st.dropped[reason]++;
    w->st.dropped_total++;
    if (!first_time(w, p, reason)) {
        w->st.unlogged++;
        return;
    }
    RW_WARN(w->who,
            "dropped a message from %s: %s: %s (more like it from this peer are "
            "counted, not logged)",
            wire_peer_name(p, name, sizeof name), wire_drop_name(reason), why);
}

void wire_drop(wire_t *w, const wire_peer_t *from, const char *why)
{
    wire_peer_t none = {.id_len = 0};
    note_drop(w, from ? from : &none, WIRE_DROP_REFUSED, why);
}

static wire_drop_t reason_of(int code)
{
    switch (code) {
    case RW_ETOOBIG:
        return WIRE_DROP_TOOBIG;
    case RW_ETRUNC:
        return WIRE_DROP_TRUNC;
    case RW_EVERSION:
        return WIRE_DROP_VERSION;
    case RW_EMSGTYPE:
        return WIRE_DROP_TYPE;
    case RW_EFIELD:
        return WIRE_DROP_FIELD;
    default:
        return WIRE_DROP_MALFORMED;
    }
}

typedef struct frame_ctx {
    zmq_msg_t *frame;
    bool ready;
} frame_ctx_t;

static void *frame_alloc(void *ctx, size_t len)
{
    frame_ctx_t *c = ctx;
    if (zmq_msg_init_size(c->frame, len) != 0)
        return NULL;
    c->ready = true;
    return zmq_msg_data(c->frame);
}

int wire_send(wire_t *w, const wire_peer_t *to, const msg_t *m, int flags)
{
    zmq_msg_t frame;
    frame_ctx_t c = {&frame, false};
    char why[MSG_WHY_MAX];
    size_t len;
    int rc = msg_encode_with(m, frame_alloc, &c, &len, why);
    if (rc < 0) {
        RW_ERROR(w->who, "not sending an invalid %s: %s", msg_type_name(m->type), why);
        goto fail_encode;
    }
    if (w->type == ZMQ_ROUTER) {
        if (!to || !to->id_len) {
            rc = RW_EINVAL;
            goto fail_encode;
        }
        bool reserved = w->open_len == to->id_len && memcmp(w->open_id, to->id, to->id_len) == 0;
        if (!reserved)
            close_open(w);
        w->open_len = 0;
        if (reserved) {
            /* its routing id went out with wire_reserve */
        } else if (zmq_send(w->sock, to->id, to->id_len, ZMQ_SNDMORE | flags) < 0) {
            rc = -zmq_errno();
            goto fail_encode;
        }
    }
    if (zmq_msg_send(&frame, w->sock, flags) < 0) {
        rc = -zmq_errno();
        goto fail_encode;
    }
    w->st.sent++;
    return 0;

fail_encode:
    if (c.ready)
        zmq_msg_close(&frame);
    return rc;
}

int wire_reserve(wire_t *w, const wire_peer_t *to)
{
    if (w->type != ZMQ_ROUTER || !to || !to->id_len || to->id_len > sizeof w->open_id)
        return RW_EINVAL;
    if (w->open_len == to->id_len && memcmp(w->open_id, to->id, to->id_len) == 0)
        return 0;
    close_open(w);
    /* ZMQ_ROUTER_MANDATORY fails the routing id itself for a peer that is
     * gone, and for one whose queue of answers is full, before any byte of
     * the message is queued */
    if (zmq_send(w->sock, to->id, to->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -zmq_errno();
    memcpy(w->open_id, to->id, to->id_len);
    w->open_len = to->id_len;
    return 0;
}

static void frame_release(void *p)
{
    zmq_msg_close(p);
    free(p);
}

/* Discards the rest of a multipart message. */
static void drain(void *sock)
{
    int more = 1;
    size_t len = sizeof more;
    while (more && zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_msg_recv(&part, sock, 0);
        zmq_msg_close(&part);
    }
}

/* Receives [id] (ROUTER) and the body frame; returns 0, -errno, or
 * RW_EPROTO for a message of the wrong shape (drained). */
static int recv_frames(wire_t *w, zmq_msg_t *body, wire_peer_t *from, int flags)
{
    if (w->type == ZMQ_ROUTER) {
        zmq_msg_t id;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, w->sock, flags) < 0) {
            int e = zmq_errno();
            zmq_msg_close(&id);
            return -e;
        }
        from->id_len = zmq_msg_size(&id) < sizeof from->id ? zmq_msg_size(&id) : sizeof from->id;
        memcpy(from->id, zmq_msg_data(&id), from->id_len);
        bool more = zmq_msg_more(&id);
        zmq_msg_close(&id);
        if (!more)
            return RW_EPROTO;
        flags = 0; /* the rest of a message is there once its first frame is */
    }
    if (zmq_msg_recv(body, w->sock, flags) < 0)
        return -zmq_errno();
    const char *addr = zmq_msg_gets(body, "Peer-Address");
    if (addr)
        snprintf(from->addr, sizeof from->addr, "%s", addr);
    if (zmq_msg_more(body)) {
        drain(w->sock);
        return RW_EPROTO;
    }
    return 0;
}

/* Answers a peer on another version, unless it was refusing us. */
static void refuse_version(wire_t *w, const wire_peer_t *from, const msg_t *m)
{
    if (m->type == MSG_REFUSE)
        return;
    msg_t r;
    char reason[MSG_WHY_MAX];
    msg_refuse_version(&r, m->version, reason);
    if (wire_send(w, from, &r, ZMQ_DONTWAIT) == 0)
        w->st.refusals++;
    msg_fini(&r);
}

int wire_recv(wire_t *w, msg_t *m, wire_peer_t *from, int flags)
{
    wire_peer_t scratch;
    char why[MSG_WHY_MAX];
    if (!from)
        from = &scratch;
    memset(from, 0, sizeof *from);
    w->last_drop[0] = '\0';
    msg_init(m, MSG_NONE);
    zmq_msg_t *body = rw_new(zmq_msg_t);
    zmq_msg_init(body);
    int rc = recv_frames(w, body, from, flags);
    if (rc == RW_EPROTO) {
        note_drop(w, from, WIRE_DROP_FRAMING, "not one body frame");
        goto fail_recv;
    }
    if (rc < 0)
        goto fail_recv;
    rc = msg_decode(m, zmq_msg_data(body), zmq_msg_size(body), why);
    if (rc < 0) {
        if (rc == RW_EVERSION)
            refuse_version(w, from, m);
        note_drop(w, from, reason_of(rc), why);
        goto fail_recv;
    }
    msg_hold(m, body, frame_release);
    w->st.received++;
    return 0;

fail_recv:
    frame_release(body);
    return rc;
}
