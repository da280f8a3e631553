/* curve.c — CURVE keys, sockets and the ZAP admission list; see curve.h. */
#include "curve.h"

#include "afile.h"
#include "alloc.h"
#include "err.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

const char curve_server_help[] =
    "  --key FILE             its CURVE key pair (rewire keys new): encrypted, and\n"
    "                         only clients given its public key can connect\n"
    "  --allow PATH           with --key, admit only the clients whose public keys\n"
    "                         are in PATH (a .pub file or a folder of them)\n";
const char curve_client_help[] =
    "  --server-key FILE      the service's public key (NAME.pub): connect with CURVE\n"
    "  --key FILE             this process's own key pair (a fresh one if not given)\n";

/* ---- key files ---- */

static int write_key(const char *path, const curve_key_t *k, bool secret)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, secret ? 0600 : 0644);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int rc = -errno;
        close(fd);
        unlink(path);
        return rc;
    }
    fprintf(f, "#   rewire CURVE key%s\n", secret ? ": keep this file secret" : ", public half");
    fprintf(f, "metadata\ncurve\n    public-key = \"%s\"\n", k->pub);
    if (secret)
        fprintf(f, "    secret-key = \"%s\"\n", k->sec);
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        unlink(path);
    return rc;
}

int curve_key_new(const char *stem, char *why, size_t whylen)
{
    curve_key_t k;
    char sec[4096], pub[4096];
    if (snprintf(sec, sizeof sec, "%s.key", stem) >= (int)sizeof sec ||
        snprintf(pub, sizeof pub, "%s.pub", stem) >= (int)sizeof pub) {
        snprintf(why, whylen, "%s: name too long", stem);
        return RW_EINVAL;
    }
    if (zmq_curve_keypair(k.pub, k.sec) != 0) {
        snprintf(why, whylen, "this ZeroMQ cannot make CURVE keys: %s", zmq_strerror(zmq_errno()));
        return -zmq_errno();
    }
    const char *paths[2] = {sec, pub};
    if (access(sec, F_OK) == 0 || access(pub, F_OK) == 0) {
        snprintf(why, whylen, "%s exists; keys are not overwritten",
                 access(sec, F_OK) == 0 ? sec : pub);
        return -EEXIST;
    }
    for (int i = 0; i < 2; i++) {
        int rc = write_key(paths[i], &k, i == 0);
        if (rc < 0) {
            snprintf(why, whylen, "cannot write %s: %s", paths[i], rw_strerror(rc));
            if (i == 1)
                unlink(sec);
            return rc;
        }
    }
    return 0;
}

/* Whether s holds CURVE_Z85_LEN characters that decode to a 32-byte key. */
static bool z85_key(const char *s)
{
    uint8_t raw[32];
    char buf[CURVE_Z85_LEN + 1];
    memcpy(buf, s, CURVE_Z85_LEN);
    buf[CURVE_Z85_LEN] = '\0';
    return strlen(buf) == CURVE_Z85_LEN && zmq_z85_decode(raw, buf) != NULL;
}

/* A line `NAME = "KEY"` (after indentation) into out; 1 if the line names
 * name, 0 if not, -1 if it does but the value is no key. */
static int key_line(const char *line, const char *name, char *out)
{
    line += strspn(line, " \t");
    size_t n = strlen(name);
    if (strncmp(line, name, n) != 0 || (line[n] != ' ' && line[n] != '\t' && line[n] != '='))
        return 0;
    line += n + strspn(line + n, " \t");
    if (*line++ != '=')
        return -1;
    line += strspn(line, " \t");
    const char *val = line + 1, *rest = val + CURVE_Z85_LEN + 1;
    if (*line != '"' || strlen(val) < CURVE_Z85_LEN + 1 || val[CURVE_Z85_LEN] != '"' ||
        !z85_key(val) || rest[strspn(rest, " \t\r")] != '\0')
        return -1;
    memcpy(out, val, CURVE_Z85_LEN);
    out[CURVE_Z85_LEN] = '\0';
    return 1;
}

int curve_key_load(const char *path, bool need_secret, curve_key_t *k, char *why, size_t whylen)
{
    memset(k, 0, sizeof *k);
    int rc;
    FILE *f = rw_fopen_regular(path, &rc); /* a FIFO would wait for a writer */
    if (!f) {
        snprintf(why, whylen, "cannot read key file %s: %s", path, rw_strerror(rc));
        return rc;
    }
    char line[512];
    rc = 0;
    for (long no = 1; fgets(line, sizeof line, f); no++) {
        size_t len = strcspn(line, "\n");
        if (!line[len] && len == sizeof line - 1 && !feof(f)) { /* its rest would be a line */
            snprintf(why, whylen, "%s:%ld: a line over %zu characters; not a key file", path, no,
                     sizeof line - 2);
            rc = RW_EINVAL;
            break;
        }
        line[len] = '\0';
        const char *names[2] = {"public-key", "secret-key"};
        char *dst[2] = {k->pub, k->sec};
        for (int i = 0; i < 2 && rc == 0; i++) {
            int got = key_line(line, names[i], dst[i]);
            if (got < 0) {
                snprintf(why, whylen, "%s:%ld: %s wants %d Z85 characters in quotes", path, no,
                         names[i], CURVE_Z85_LEN);
                rc = RW_EINVAL;
            }
        }
        if (rc)
            break;
    }
    if (rc == 0 && ferror(f)) {
        rc = -EIO;
        snprintf(why, whylen, "cannot read key file %s: %s", path, rw_strerror(rc));
    }
    fclose(f);
    if (rc)
        return rc;
    if (!k->pub[0]) {
        snprintf(why, whylen, "%s: no public-key line; is it a key file (rewire keys new)?", path);
        return RW_EINVAL;
    }
    if (need_secret && !k->sec[0]) {
        snprintf(why, whylen, "%s holds a public key only; this needs the key pair (NAME.key)",
                 path);
        return RW_EINVAL;
    }
    char pub[CURVE_Z85_LEN + 1];
    if (k->sec[0] && (zmq_curve_public(pub, k->sec) != 0 || strcmp(pub, k->pub) != 0)) {
        snprintf(why, whylen, "%s: its public-key is not the secret-key's", path);
        return RW_EINVAL;
    }
    return 0;
}

/* ---- sockets ---- */

int curve_server(void *sock, const curve_key_t *k)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k->sec, CURVE_Z85_LEN + 1) != 0)
        return -zmq_errno();
    return 0;
}

int curve_client(void *sock, const curve_key_t *own, const curve_key_t *server)
{
    curve_key_t fresh;
    if (!own) {
        if (zmq_curve_keypair(fresh.pub, fresh.sec) != 0)
            return -zmq_errno();
        own = &fresh;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server->pub, CURVE_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, own->pub, CURVE_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, own->sec, CURVE_Z85_LEN + 1) != 0)
        return -zmq_errno();
    return 0;
}

int curve_setup_server(void *sock, const curve_opts_t *o, char *why, size_t whylen)
{
    if (!o->key_file)
        return 0;
    curve_key_t k;
    int rc = curve_key_load(o->key_file, true, &k, why, whylen);
    if (rc == 0 && (rc = curve_server(sock, &k)) < 0)
        snprintf(why, whylen, "cannot use CURVE: %s", zmq_strerror(-rc));
    return rc;
}

int curve_setup_client(void *sock, const curve_opts_t *o, char *why, size_t whylen)
{
    curve_key_t own, server;
    const char *server_file = o->server_file ? o->server_file : o->key_file;
    if (!server_file)
        return 0;
    int rc = curve_key_load(server_file, false, &server, why, whylen);
    if (rc == 0 && o->key_file)
        rc = curve_key_load(o->key_file, true, &own, why, whylen);
    if (rc == 0 && (rc = curve_client(sock, o->key_file ? &own : NULL, &server)) < 0)
        snprintf(why, whylen, "cannot use CURVE: %s", zmq_strerror(-rc));
    return rc;
}

/* ---- why a client hears nothing ---- */

void *curve_watch(void *zctx, void *sock, const char *addr)
{
    int zero = 0;
    void *mon = NULL;
    if (zmq_socket_monitor(sock, addr,
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 ||
        !(mon = zmq_socket(zctx, ZMQ_PAIR)))
        return NULL;
    zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(mon, addr) != 0) {
        zmq_close(mon);
        return NULL;
    }
    return mon;
}

const char *curve_failure(void *mon, curve_client_t curve, const char *service)
{
    static __thread char why[256];
    bool refused = false, failed = false;
    for (int i = 0; mon && i < 64; i++) {
        zmq_msg_t ev, ep; /* [event u16, value u32], [endpoint] */
        zmq_msg_init(&ev);
        zmq_msg_init(&ep);
        bool got = zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) >= 6 && zmq_msg_more(&ev) &&
                   zmq_msg_recv(&ep, mon, ZMQ_DONTWAIT) >= 0;
        uint16_t event = 0;
        if (got)
            memcpy(&event, zmq_msg_data(&ev), sizeof event);
        zmq_msg_close(&ev);
        zmq_msg_close(&ep);
        if (!got)
            break;
        refused |= event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
        failed = true;
    }
    if (refused && curve == CURVE_FRESH_KEY)
        snprintf(why, sizeof why,
                 ": it admits listed keys only, and this client has none of its own: give --key "
                 "with a key pair whose public half is in the %s's --allow",
                 service);
    else if (refused)
        snprintf(why, sizeof why, ": it refused this key (is its public half in the %s's --allow?)",
                 service);
    else if (failed && curve != CURVE_NONE)
        snprintf(why, sizeof why,
                 ": the CURVE handshake failed (is --server-key the %s's public key, and does it "
                 "use --key?)",
                 service);
    else if (failed)
        snprintf(why, sizeof why,
                 ": the handshake failed (does the %s use CURVE? then give --server-key)", service);
    else
        why[0] = '\0';
    return why;
}

/* ---- the admission list (ZAP, RFC 27) ---- */

#define LOGGED_MAX        64 /* refused keys logged (each once), and addresses */
#define REFUSALS_A_MINUTE 10 /* new refused keys logged a minute for one address */

struct curve_auth {
    void *sock; /* REP on inproc://zeromq.zap.01 */
    pthread_t thread;
    atomic_bool stop;
    atomic_ulong admitted, refused;
    uint8_t (*keys)[32];
    size_t n_keys, cap_keys;
    uint8_t logged[LOGGED_MAX][32]; /* refused keys logged */
    size_t n_logged;
    struct {
        char addr[64];
        time_t since; /* the minute its count is of (monotonic seconds) */
        unsigned n;   /* refusals from it in that minute */
    } addrs[LOGGED_MAX];
    char who[32];
};

static int add_key_file(curve_auth_t *a, const char *path, char *why, size_t whylen)
{
    curve_key_t k;
    int rc = curve_key_load(path, false, &k, why, whylen);
    if (rc < 0)
        return rc;
    rw_grow(&a->keys, &a->cap_keys, a->n_keys + 1);
    zmq_z85_decode(a->keys[a->n_keys++], k.pub);
    return 0;
}

static int add_keys(curve_auth_t *a, const char *allow, char *why, size_t whylen)
{
    struct stat st;
    if (stat(allow, &st) != 0) {
        int rc = -errno;
        snprintf(why, whylen, "--allow %s: %s", allow, rw_strerror(rc));
        return rc;
    }
    if (!S_ISDIR(st.st_mode))
        return add_key_file(a, allow, why, whylen);
    DIR *d = opendir(allow);
    if (!d) {
        int rc = -errno;
        snprintf(why, whylen, "--allow %s: %s", allow, rw_strerror(rc));
        return rc;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        char path[4096];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", allow, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            rc = add_key_file(a, path, why, whylen);
    }
    closedir(d);
    if (rc == 0 && a->n_keys == 0) {
        snprintf(why, whylen, "--allow %s holds no key file", allow);
        rc = RW_EINVAL;
    }
    return rc;
}

static bool admitted(const curve_auth_t *a, const uint8_t *key)
{
    for (size_t i = 0; i < a->n_keys; i++)
        if (memcmp(a->keys[i], key, 32) == 0)
            return true;
    return false;
}

/* Logs a refused key the first time it knocks. */
static void log_refusal(curve_auth_t *a, const uint8_t *key, const char *addr)
{
    for (size_t i = 0; i < a->n_logged; i++)
        if (memcmp(a->logged[i], key, 32) == 0)
            return;
    /* a client with no key of its own knocks with a fresh one each time:
     * at most REFUSALS_A_MINUTE new keys logged a minute for one address
     * (over tcp an address is a host, where several clients may run) */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    time_t now = ts.tv_sec;
    size_t slot = LOGGED_MAX;
    for (size_t i = 0; i < LOGGED_MAX && slot == LOGGED_MAX; i++)
        if (a->addrs[i].n && strcmp(a->addrs[i].addr, addr) == 0)
            slot = i;
    if (slot == LOGGED_MAX) { /* a new address takes the oldest slot */
        for (size_t i = slot = 0; i < LOGGED_MAX; i++)
            slot = a->addrs[i].since < a->addrs[slot].since ? i : slot;
        snprintf(a->addrs[slot].addr, sizeof a->addrs[slot].addr, "%s", addr);
        a->addrs[slot].since = now;
        a->addrs[slot].n = 0;
    }
    if (now - a->addrs[slot].since >= 60) { /* a new minute */
        a->addrs[slot].since = now;
        a->addrs[slot].n = 0;
    }
    if (a->addrs[slot].n++ >= REFUSALS_A_MINUTE)
        return;
    if (a->n_logged < LOGGED_MAX)
        memcpy(a->logged[a->n_logged++], key, 32);
    char z85[CURVE_Z85_LEN + 1];
    zmq_z85_encode(z85, key, 32);
    RW_WARN(a->who, "refused a client%s%s: its key %s is not in --allow", addr[0] ? " at " : "",
            addr, z85);
}

#define ZAP_FRAMES 8

/* Answers one ZAP request (already waiting on the socket). */
static void zap_answer(curve_auth_t *a)
{
    zmq_msg_t fr[ZAP_FRAMES];
    size_t n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, a->sock, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < ZAP_FRAMES)
            fr[n++] = m;
        else
            zmq_msg_close(&m);
    }
    /* version, request id, domain, address, routing id, mechanism, credentials */
    const char *status = "400", *text = "not an admitted key";
    char addr[64] = "", user[CURVE_Z85_LEN + 1] = "";
    if (n >= 6 && zmq_msg_size(&fr[3]) < sizeof addr)
        memcpy(addr, zmq_msg_data(&fr[3]), zmq_msg_size(&fr[3]));
    bool curve =
        n >= 7 && zmq_msg_size(&fr[5]) == 5 && memcmp(zmq_msg_data(&fr[5]), "CURVE", 5) == 0;
    if (n >= 6 && !curve) {
        status = "200", text = "OK"; /* a NULL socket of the context: not ours to judge */
    } else if (curve && zmq_msg_size(&fr[6]) == 32) {
        const uint8_t *key = zmq_msg_data(&fr[6]);
        if (admitted(a, key)) {
            status = "200", text = "OK";
            zmq_z85_encode(user, key, 32);
            atomic_fetch_add(&a->admitted, 1);
        } else {
            log_refusal(a, key, addr);
            atomic_fetch_add(&a->refused, 1);
        }
    }
    const void *reply[6] = {"1.0", n >= 2 ? zmq_msg_data(&fr[1]) : "", status, text, user, ""};
    size_t len[6] = {3, n >= 2 ? zmq_msg_size(&fr[1]) : 0, 3, strlen(text), strlen(user), 0};
    for (int i = 0; i < 6; i++)
        zmq_send(a->sock, reply[i], len[i], i < 5 ? ZMQ_SNDMORE : 0);
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&fr[i]);
}

static void *zap_thread(void *arg)
{
    curve_auth_t *a = arg;
    while (!atomic_load(&a->stop)) {
        zmq_pollitem_t it = {a->sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&it, 1, 100);
        if (rc < 0 && zmq_errno() == ETERM)
            break;
        if (rc > 0)
            zap_answer(a);
    }
    return NULL;
}

curve_auth_t *curve_auth_start(void *zctx, const char *allow, const curve_key_t *own,
                               const char *who, char *why, size_t whylen)
{
    curve_auth_t *a = rw_new(curve_auth_t);
    snprintf(a->who, sizeof a->who, "%s", who);
    if (add_keys(a, allow, why, whylen) < 0)
        goto fail;
    if (own) {
        rw_grow(&a->keys, &a->cap_keys, a->n_keys + 1);
        zmq_z85_decode(a->keys[a->n_keys++], own->pub);
    }
    int linger = 0;
    a->sock = zmq_socket(zctx, ZMQ_REP);
    if (!a->sock || zmq_setsockopt(a->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(a->sock, "inproc://zeromq.zap.01") != 0) {
        snprintf(why, whylen, "cannot start the --allow handler: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (pthread_create(&a->thread, NULL, zap_thread, a) != 0) {
        snprintf(why, whylen, "cannot start the --allow handler's thread");
        goto fail;
    }
    return a;

fail:
    if (a->sock)
        zmq_close(a->sock);
    free(a->keys);
    free(a);
    return NULL;
}

void curve_auth_stop(curve_auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    curve_auth_t *a = *self_p;
    atomic_store(&a->stop, true);
    pthread_join(a->thread, NULL);
    zmq_close(a->sock);
    free(a->keys);
    free(a);
    *self_p = NULL;
}

void curve_auth_counts(curve_auth_t *a, unsigned long *adm, unsigned long *ref)
{
    *adm = atomic_load(&a->admitted);
    *ref = atomic_load(&a->refused);
}

int curve_opts_check(const curve_opts_t *o, bool server, char *why, size_t whylen)
{
    curve_key_t k;
    int rc = 0;
    if (server && o->allow && !o->key_file) {
        snprintf(why, whylen, "--allow needs --key: only a CURVE server checks its clients' keys");
        return RW_EINVAL;
    }
    if (o->key_file)
        rc = curve_key_load(o->key_file, true, &k, why, whylen);
    if (rc == 0 && !server && o->server_file)
        rc = curve_key_load(o->server_file, false, &k, why, whylen);
    if (rc == 0 && server && o->allow) {
        curve_auth_t *a = rw_new(curve_auth_t);
        rc = add_keys(a, o->allow, why, whylen);
        free(a->keys);
        free(a);
    }
    return rc;
}
