/* test_wire.c — a service on a ROUTER survives whatever reaches its socket.
 *
 * A small service thread answers HELLO with WELCOME until SHUTDOWN, the way
 * the coordinator and router service will. Clients on 127.0.0.1 (ephemeral
 * ports) send it good messages, random frames, multipart junk, raw bytes
 * that are not even ZeroMQ, an oversized frame and other protocol versions;
 * afterwards a new client must still get its WELCOME. An artifact also
 * crosses real TCP between a DEALER and a ROUTER, with a corrupted first
 * attempt.
 */
#include "wire.h"

#include "checksum.h"
#include "err.h"
#include "xfer.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "support.h"

typedef struct service {
    void *ctx, *sock;
    wire_t *w;
    char endpoint[256];
    pthread_t th;
    wire_stats_t stats; /* when it stopped */
    xfer_mem_sink_t sink;
    int xfer_status;
    int send_errors; /* the thread cannot assert: the test checks this */
    char hello_addr[64];
} service_t;

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static void answer_hello(service_t *s, const msg_t *m, const wire_peer_t *from)
{
    msg_t r;
    msg_init(&r, MSG_WELCOME);
    r.welcome.worker_id = m->hello.worker_id;
    r.welcome.session = 77;
    r.welcome.heartbeat_ms = 1000;
    s->send_errors += wire_send(s->w, from, &r, 0) != 0;
    msg_fini(&r);
}

static void *service_main(void *arg)
{
    service_t *s = arg;
    xfer_recv_t *r = NULL;
    for (bool stop = false; !stop;) {
        msg_t m, out;
        wire_peer_t from;
        if (wire_recv(s->w, &m, &from, 0) < 0)
            continue;
        if (m.type == MSG_HELLO) {
            answer_hello(s, &m, &from);
            memcpy(s->hello_addr, from.addr, sizeof s->hello_addr);
        } else if (m.type == MSG_SHUTDOWN)
            stop = true;
        else if (xfer_artifact_of(&m, &(uint64_t){0}) == 0) {
            if (!r)
                r = xfer_recv_new(NULL, &xfer_mem_sink_ops, &s->sink);
            if (xfer_recv_input(r, &m) < 0 && xfer_recv_status(r) == 0)
                wire_drop(s->w, &from, xfer_recv_error(r));
            while (xfer_recv_next(r, &out) == 1)
                s->send_errors += wire_send(s->w, &from, &out, 0) != 0;
            s->xfer_status = xfer_recv_status(r);
        }
        msg_fini(&m);
    }
    xfer_recv_destroy(&r);
    wire_stats(s->w, &s->stats);
    return NULL;
}

static void service_start(service_t *s)
{
    memset(s, 0, sizeof *s);
    s->ctx = zmq_ctx_new();
    s->sock = zmq_socket(s->ctx, ZMQ_ROUTER);
    int err;
    s->w = wire_new(s->sock, "test-service", &err);
    cr_assert_not_null(s->w, "%d", err);
    cr_assert_eq(zmq_bind(s->sock, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof s->endpoint;
    cr_assert_eq(zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &len), 0);
    cr_assert_eq(pthread_create(&s->th, NULL, service_main, s), 0);
}

static void service_stop(service_t *s)
{
    pthread_join(s->th, NULL);
    wire_destroy(&s->w);
    zmq_close(s->sock);
    zmq_ctx_term(s->ctx);
}

/* A DEALER client connected to the service, with a receive timeout. */
static void *client(service_t *s, wire_t **w)
{
    void *sock = zmq_socket(s->ctx, ZMQ_DEALER);
    int ms = 5000, linger = 0;
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &ms, sizeof ms);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (w)
        *w = wire_new(sock, "test-client", NULL);
    cr_assert_eq(zmq_connect(sock, s->endpoint), 0);
    return sock;
}

/* HELLO from a new client; asserts the WELCOME. */
static void hello_welcome(service_t *s, const char *id)
{
    wire_t *w;
    void *sock = client(s, &w);
    msg_t m;
    const char *caps[] = {"train", "score"};
    msg_init(&m, MSG_HELLO);
    m.hello.worker_id = id;
    m.hello.caps = (msg_strs_t){caps, 2};
    m.hello.threads = 2;
    cr_assert_eq(wire_send(w, NULL, &m, 0), 0);
    int rc = wire_recv(w, &m, NULL, 0);
    cr_assert_eq(rc, 0, "no WELCOME: %s", rw_err_name(rc));
    cr_assert_eq(m.type, MSG_WELCOME);
    cr_assert_str_eq(m.welcome.worker_id, id);
    cr_assert_eq(m.welcome.session, 77);
    msg_fini(&m);
    wire_destroy(&w);
    zmq_close(sock);
}

static void shutdown_service(service_t *s)
{
    wire_t *w;
    void *sock = client(s, &w);
    msg_t m;
    msg_init(&m, MSG_SHUTDOWN);
    m.shutdown.reason = "test over";
    cr_assert_eq(wire_send(w, NULL, &m, 0), 0);
    wire_destroy(&w);
    int linger = 1000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
    service_stop(s);
}

Test(wire, hello_gets_welcome)
{
    service_t s;
    service_start(&s);
    hello_welcome(&s, "w1");
    hello_welcome(&s, "w2");
    shutdown_service(&s);
    cr_assert_eq(s.send_errors, 0);
    cr_assert_eq(s.stats.received, 3);
    cr_assert_eq(s.stats.sent, 2);
    cr_assert_eq(s.stats.dropped_total, 0);
    cr_assert_str_eq(s.hello_addr, "127.0.0.1", "the sender's address, for the logs");
}

/* Raw TCP connections that write junk (and one ZMTP greeting first). */
static void junk_over_tcp(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    for (int c = 0; c < 20; c++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
        uint8_t buf[4096];
        size_t n = 1 + rnd() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rnd();
        if (c % 2) { /* a ZMTP 3 greeting, then nonsense */
            static const uint8_t greet[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0};
            memcpy(buf, greet, sizeof greet < n ? sizeof greet : n);
        }
        ssize_t wr = write(fd, buf, n);
        (void)wr;
        usleep(1000);
        close(fd);
    }
}

/* Random frames, some multipart, some almost messages, from one DEALER. */
static size_t junk_frames(service_t *s, size_t *multipart)
{
    void *sock = client(s, NULL);
    uint8_t buf[600];
    size_t sent = 0;
    *multipart = 0;
    for (int i = 0; i < 3000; i++) {
        size_t n = rnd() % sizeof buf;
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)rnd();
        if (i % 3 == 0 && n >= 3)
            buf[0] = 0x93, buf[1] = 0x01, buf[2] = (uint8_t)(rnd() % 26);
        bool more = i % 10 == 0;
        zmq_send(sock, buf, n, more ? ZMQ_SNDMORE : 0);
        if (more)
            zmq_send(sock, buf, n / 2, 0), (*multipart)++;
        sent++;
    }
    /* a frame over MSG_MAX_BYTES: ZeroMQ cuts this client off before allocating it */
    void *big = client(s, NULL);
    size_t bn = MSG_MAX_BYTES + 1;
    uint8_t *b = calloc(1, bn);
    zmq_send(big, b, bn, 0);
    free(b);
    usleep(100000);
    zmq_close(big);
    zmq_close(sock);
    return sent;
}

/* A HELLO from protocol version 2 is refused with both versions; a REFUSE
 * in version 2 is not answered. */
static void other_version(service_t *s)
{
    wire_t *w;
    void *sock = client(s, &w);
    uint8_t buf[256];
    size_t n;
    msg_t m;
    const char *caps[] = {"train"};
    msg_init(&m, MSG_HELLO);
    m.hello.worker_id = "future";
    m.hello.caps = (msg_strs_t){caps, 1};
    m.hello.threads = 1;
    cr_assert_eq(msg_encode(&m, buf, sizeof buf, &n, NULL), 0);
    buf[1] = 2;
    zmq_send(sock, buf, n, 0);
    int rc = wire_recv(w, &m, NULL, 0);
    cr_assert_eq(rc, 0, "%s", rw_err_name(rc));
    cr_assert_eq(m.type, MSG_REFUSE);
    cr_assert_eq(m.refuse.code, RW_EVERSION);
    cr_assert_str_eq(m.refuse.reason, "protocol version 2 not supported (this peer speaks 1)");
    msg_fini(&m);
    char reason[MSG_WHY_MAX];
    msg_refuse_version(&m, 9, reason);
    cr_assert_eq(msg_encode(&m, buf, sizeof buf, &n, NULL), 0);
    buf[1] = 2;
    zmq_send(sock, buf, n, 0);
    int ms = 300;
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &ms, sizeof ms);
    cr_assert_eq(wire_recv(w, &m, NULL, 0), -EAGAIN, "a refusal is never answered");
    wire_destroy(&w);
    zmq_close(sock);
}

/* Drop lines in the log at path; asserts no (peer, reason) is logged twice. */
static int drop_lines(const char *path)
{
    static const char needle[] = "dropped a message from ";
    char *text = rwt_read_file(path, NULL);
    char seen[256][96];
    int n = 0;
    for (char *p = text; p && (p = strstr(p, needle)); p++) {
        char *from = p + sizeof needle - 1, *end = strstr(from, ": ");
        end = end ? strstr(end + 2, ": ") : NULL; /* "peer: reason: why" */
        cr_assert_not_null(end);
        char key[96];
        snprintf(key, sizeof key, "%.*s", (int)(end - from), from);
        for (int i = 0; i < n && i < 256; i++)
            cr_assert_str_neq(seen[i], key, "logged twice: %s", key);
        if (n < 256)
            snprintf(seen[n], sizeof seen[n], "%s", key);
        n++;
    }
    free(text);
    return n;
}

Test(wire, random_bytes_leave_the_service_up)
{
    char *dir = rwt_tmpdir();
    const char *log = rwt_path(dir, "stderr.log");
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);

    service_t s;
    service_start(&s);
    hello_welcome(&s, "before");
    junk_over_tcp(s.endpoint);
    size_t multipart;
    size_t junk = junk_frames(&s, &multipart);
    other_version(&s);
    hello_welcome(&s, "after");
    shutdown_service(&s);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    cr_assert_eq(s.send_errors, 0);
    cr_assert_eq(s.stats.received, 3, "two HELLOs and the SHUTDOWN");
    cr_assert_geq(s.stats.dropped_total, junk, "every junk frame was dropped");
    /* raw bytes not starting with 0xff pass for ZMTP 1.0 frames: more junk arrives */
    cr_assert_geq(s.stats.dropped[WIRE_DROP_FRAMING], multipart);
    cr_assert_eq(s.stats.dropped[WIRE_DROP_VERSION], 2);
    cr_assert_eq(s.stats.refusals, 1);
    cr_assert_gt(s.stats.dropped[WIRE_DROP_MALFORMED] + s.stats.dropped[WIRE_DROP_TRUNC], 0);
    int logged = drop_lines(log);
    cr_assert_lt((uint64_t)logged * 20, s.stats.dropped_total, "the log is not flooded");
    cr_assert_eq((uint64_t)logged + s.stats.unlogged, s.stats.dropped_total);
    rwt_rmdir(dir);
    free(dir);
}

/* Reads from memory into scratch, so the test may spoil a chunk after the
 * sender has taken its checksum: corruption on the way. */
static int copy_read(const void *src, uint64_t off, size_t n, void *scratch, const void **p)
{
    memcpy(scratch, (const uint8_t *)src + off, n);
    *p = scratch;
    return 0;
}

Test(wire, an_artifact_crosses_tcp_and_a_corrupt_attempt_is_resent)
{
    service_t s;
    service_start(&s);
    size_t n = (size_t)10 << 20;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)rnd();
    struct xfer_source_ops ops = {.read = copy_read, .needs_scratch = true};
    msg_art_begin_t b = {.artifact = 9, .kind = MSG_ARTIFACT_MODEL, .size = n};
    xfer_send_t *x = xfer_send_new(&b, &ops, data, 0, NULL);
    bool spoiled = false;
    wire_t *w;
    void *sock = client(&s, &w);
    msg_t out, in;
    while (xfer_send_status(x) == 0) {
        while (xfer_send_next(x, &out) == 1) {
            if (out.type == MSG_ART_CHUNK && out.art_chunk.seq == 2 && !spoiled)
                ((uint8_t *)out.art_chunk.data.p)[5] ^= 0x40, spoiled = true;
            cr_assert_eq(wire_send(w, NULL, &out, 0), 0);
        }
        if (xfer_send_status(x) == 0) {
            cr_assert_eq(wire_recv(w, &in, NULL, 0), 0, "the receiver went quiet");
            xfer_send_input(x, &in);
            msg_fini(&in);
        }
    }
    cr_assert_eq(xfer_send_status(x), 1, "%s", xfer_send_error(x));
    xfer_send_stats_t st;
    xfer_send_stats(x, &st);
    cr_assert_eq(st.attempts, 2, "refused once, then accepted (%u attempts)", st.attempts);
    cr_assert_leq(st.max_credit, XFER_WINDOW);
    xfer_send_destroy(&x);
    wire_destroy(&w);
    zmq_close(sock);
    shutdown_service(&s);
    cr_assert_eq(s.send_errors, 0);
    cr_assert_eq(s.xfer_status, 1);
    cr_assert(s.sink.committed);
    cr_assert_eq(s.sink.len, n);
    cr_assert(memcmp(s.sink.data, data, n) == 0, "the artifact arrived intact");
    xfer_mem_sink_fini(&s.sink);
    free(data);
}

/* A worker-style loop on a DEALER: HELLO, then messages until SHUTDOWN. */
typedef struct worker {
    void *sock;
    wire_t *w;
    int welcomes, errors;
    wire_stats_t stats;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *k = arg;
    msg_t m;
    const char *caps[] = {"train"};
    msg_init(&m, MSG_HELLO);
    m.hello.worker_id = "w-junk";
    m.hello.caps = (msg_strs_t){caps, 1};
    m.hello.threads = 1;
    k->errors += wire_send(k->w, NULL, &m, 0) != 0;
    for (bool stop = false; !stop;) {
        int rc = wire_recv(k->w, &m, NULL, 0);
        if (rc == -EAGAIN) /* the receive timeout: the test is over or stuck */
            break;
        if (rc < 0)
            continue;
        k->welcomes += m.type == MSG_WELCOME;
        stop = m.type == MSG_SHUTDOWN;
        msg_fini(&m);
    }
    wire_stats(k->w, &k->stats);
    return NULL;
}

/* Sends body to the peer id on a raw ROUTER; part 2 (if n2) makes it multipart. */
static void raw_to(void *router, const zmq_msg_t *id, const void *body, size_t n, const void *b2,
                   size_t n2)
{
    zmq_send(router, zmq_msg_data((zmq_msg_t *)id), zmq_msg_size((zmq_msg_t *)id), ZMQ_SNDMORE);
    zmq_send(router, body, n, n2 ? ZMQ_SNDMORE : 0);
    if (n2)
        zmq_send(router, b2, n2, 0);
}

Test(wire, random_bytes_leave_a_dealer_loop_up)
{
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    int ms = 5000, one = 1;
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &ms, sizeof ms);
    /* block at the high-water mark instead of dropping what the test sends */
    zmq_setsockopt(router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    cr_assert_eq(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    char ep[256];
    size_t len = sizeof ep;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &len);
    worker_t k = {.sock = zmq_socket(ctx, ZMQ_DEALER)};
    zmq_setsockopt(k.sock, ZMQ_RCVTIMEO, &ms, sizeof ms);
    k.w = wire_new(k.sock, "test-worker", NULL);
    cr_assert_eq(zmq_connect(k.sock, ep), 0);
    pthread_t th;
    pthread_create(&th, NULL, worker_main, &k);

    zmq_msg_t id, hello;
    zmq_msg_init(&id), zmq_msg_init(&hello);
    cr_assert_geq(zmq_msg_recv(&id, router, 0), 0, "no HELLO");
    cr_assert_geq(zmq_msg_recv(&hello, router, 0), 0);
    uint8_t buf[700];
    size_t junk = 0, multipart = 0;
    for (int i = 0; i < 2000; i++, junk++) {
        size_t n = rnd() % sizeof buf;
        for (size_t j = 0; j < n; j++)
            buf[j] = (uint8_t)rnd();
        if (i % 2 && n >= 3)
            buf[0] = 0x93, buf[1] = 0x01, buf[2] = (uint8_t)(rnd() % 26);
        bool more = i % 7 == 0;
        multipart += more;
        raw_to(router, &id, buf, n, buf, more ? n / 2 + 1 : 0);
    }
    msg_t m;
    msg_init(&m, MSG_WELCOME);
    m.welcome.worker_id = "w-junk", m.welcome.session = 1, m.welcome.heartbeat_ms = 100;
    cr_assert_eq(msg_encode(&m, buf, sizeof buf, &len, NULL), 0);
    buf[1] = 3; /* a coordinator from the future is refused */
    raw_to(router, &id, buf, len, NULL, 0);
    /* junk that reads as another version is refused too: look for this one's answer */
    zmq_msg_t reply;
    zmq_msg_init(&reply);
    bool refused = false;
    for (int i = 0; i < 2100 && !refused; i++) {
        cr_assert_geq(zmq_msg_recv(&reply, router, 0), 0, "no REFUSE"); /* id */
        cr_assert_geq(zmq_msg_recv(&reply, router, 0), 0);
        cr_assert_eq(msg_decode(&m, zmq_msg_data(&reply), zmq_msg_size(&reply), NULL), 0);
        cr_assert_eq(m.type, MSG_REFUSE);
        refused =
            strcmp(m.refuse.reason, "protocol version 3 not supported (this peer speaks 1)") == 0;
        msg_fini(&m);
    }
    cr_assert(refused);
    buf[1] = 1;
    raw_to(router, &id, buf, len, NULL, 0);
    msg_init(&m, MSG_SHUTDOWN);
    m.shutdown.reason = "done";
    cr_assert_eq(msg_encode(&m, buf, sizeof buf, &len, NULL), 0);
    raw_to(router, &id, buf, len, NULL, 0);
    pthread_join(th, NULL);

    cr_assert_eq(k.errors, 0);
    cr_assert_eq(k.welcomes, 1, "the WELCOME after the junk got through");
    cr_assert_eq(k.stats.received, 2);
    cr_assert_eq(k.stats.dropped_total, junk + 1, "every junk frame and the future WELCOME");
    cr_assert_eq(k.stats.dropped[WIRE_DROP_FRAMING], multipart);
    cr_assert_eq(k.stats.refusals, k.stats.dropped[WIRE_DROP_VERSION]);
    zmq_msg_close(&id), zmq_msg_close(&hello), zmq_msg_close(&reply);
    wire_destroy(&k.w);
    zmq_close(k.sock);
    zmq_close(router);
    zmq_ctx_term(ctx);
}

/* ZeroMQ wraps a tcp port past 65535 (99999 binds 34463) and takes -5 as
 * 65531; such an endpoint is refused before it reaches ZeroMQ. */
Test(wire, endpoint_ports_are_checked_before_zeromq_wraps_them)
{
    char why[256];
    const char *good_bind[] = {"tcp://127.0.0.1:5555", "tcp://*:1",    "tcp://[::1]:65535",
                               "tcp://127.0.0.1:*",    "tcp://eth0:0", "ipc:///tmp/x.sock",
                               "ipc://rel/x.sock"};
    for (size_t i = 0; i < sizeof good_bind / sizeof *good_bind; i++)
        cr_assert_eq(wire_endpoint_check(good_bind[i], true, why, sizeof why), 0, "%s: %s",
                     good_bind[i], why);
    const char *bad_bind[] = {
        "tcp://127.0.0.1:99999", "tcp://127.0.0.1:65536", "tcp://127.0.0.1:-5", "tcp://127.0.0.1:",
        "tcp://127.0.0.1",       "tcp://h:5555x",         "tcp://h:0000065535"};
    for (size_t i = 0; i < sizeof bad_bind / sizeof *bad_bind; i++) {
        cr_assert_eq(wire_endpoint_check(bad_bind[i], true, why, sizeof why), RW_EINVAL, "%s",
                     bad_bind[i]);
        cr_assert(strstr(why, "1..65535"), "%s", why);
    }
    cr_assert_eq(wire_endpoint_check("tcp://h:5555", false, why, sizeof why), 0);
    cr_assert_eq(wire_endpoint_check("tcp://h:0", false, why, sizeof why), RW_EINVAL,
                 "a client cannot reach port 0");
    cr_assert_eq(wire_endpoint_check("tcp://h:*", false, why, sizeof why), RW_EINVAL);
}

/* An endpoint names a transport another process can use, a host or a path:
 * ZeroMQ refuses "foo" or "localhost:5555" only at the connect, which a
 * worker retried for ever ("cannot connect to foo: Invalid argument"). */
Test(wire, endpoints_name_a_transport_and_a_host_or_a_path)
{
    char why[512], longest[200], too_long[200];
    snprintf(longest, sizeof longest, "ipc:///tmp/%0*d", 107 - 5, 0); /* a socket's 107 bytes */
    snprintf(too_long, sizeof too_long, "ipc:///tmp/%0*d", 108 - 5, 0);
    cr_assert_eq(wire_endpoint_check(longest, true, why, sizeof why), 0, "%s", why);
    cr_assert_eq(wire_endpoint_check(longest, false, why, sizeof why), 0, "%s", why);
    struct {
        const char *endpoint, *said;
        bool bind;
    } bad[] = {
        {"foo", "tcp://HOST:PORT or ipc://PATH", false},
        {"foo", "tcp://HOST:PORT or ipc://PATH", true},
        {"localhost:5555", "(tcp://localhost:5555?)", false},
        {"", "not an endpoint", true},
        {"TCP://h:1", "not an endpoint", false},
        {"udp://h:1", "not an endpoint", false},
        {"inproc://a", "within one process", true},
        {"tcp://:5555", "no host", false},
        {"tcp://:5555", "HOST * for every interface", true},
        {"tcp://", "no host", true},
        {"tcp://*:5555", "is for binding", false},
        {"ipc://", "no path", false},
        {too_long, "the path is 108 bytes, a socket's at most 107", true},
        {too_long, "at most 107", false},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why[0] = '\0';
        cr_assert_eq(wire_endpoint_check(bad[i].endpoint, bad[i].bind, why, sizeof why), RW_EINVAL,
                     "%s", bad[i].endpoint);
        cr_assert(strncmp(why, bad[i].endpoint, strlen(bad[i].endpoint)) == 0 &&
                      strstr(why, bad[i].said),
                  "%s: %s", bad[i].endpoint, why);
    }
}

/* Every flag that takes an endpoint refuses a malformed one at once, as a
 * usage error naming the flag: the worker and router used to retry it with
 * backoff for ever, the coordinator to run the whole data stage first. */
Test(wire, a_malformed_endpoint_flag_is_a_usage_error_before_any_work)
{
    char *dir = rwt_tmpdir(), state[600], serve[1400], cmd[2048], *err;
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(serve, sizeof serve, "serve --bind foo --out '%s/out' --state '%s'", dir, state);
    const struct {
        const char *bin, *args, *flag;
    } runs[] = {
        {"rewire-worker", "--connect foo", "--connect foo"},
        {"rewire-worker", "--connect localhost:5555", "(tcp://localhost:5555?)"},
        {"rewire-worker", "health --connect foo", "--connect foo"},
        {"rewire-router", "--connect foo --bundles /nonexistent", "--connect foo"},
        {"rewire-router", "--bind foo --bundles /nonexistent", "--bind foo"},
        {"rewire-coordinator", serve, "--bind foo"},
        {"rewire-coordinator", "health --connect foo", "--connect foo"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        snprintf(cmd, sizeof cmd, "timeout 20 '%s' %s", rwt_bin(runs[i].bin), runs[i].args);
        cr_assert_eq(rwt_run(cmd, NULL, &err), 2, "%s: %s", cmd, err);
        cr_assert(strstr(err, runs[i].flag) && strstr(err, "tcp://HOST:PORT or ipc://PATH"),
                  "%s: %s", cmd, err);
        free(err);
    }
    cr_assert_neq(access(state, F_OK), 0, "the coordinator prepared a job first");
    rwt_rmdir(dir);
    free(dir);
}

/* wire_reserve tells a peer that is gone from one that is there before any
 * work for it: the gone one's request is still read after it closed, but
 * its routing id no longer goes; the one there gets exactly its answer,
 * sent with the id wire_reserve put on the socket. */
Test(wire, reserve_tells_a_gone_peer_from_one_still_there)
{
    void *ctx = zmq_ctx_new(), *router = zmq_socket(ctx, ZMQ_ROUTER);
    int ms = 5000, zero = 0, err;
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &ms, sizeof ms);
    wire_t *rw = wire_new(router, "test-router", &err);
    cr_assert_not_null(rw);
    cr_assert_eq(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    char ep[256];
    size_t len = sizeof ep;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &len);
    void *there = zmq_socket(ctx, ZMQ_DEALER), *gone = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(there, ZMQ_RCVTIMEO, &ms, sizeof ms);
    zmq_setsockopt(gone, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(gone, ZMQ_RCVTIMEO, &ms, sizeof ms);
    wire_t *tw = wire_new(there, "there", &err), *gw = wire_new(gone, "gone", &err);
    cr_assert_eq(zmq_connect(there, ep), 0);
    cr_assert_eq(zmq_connect(gone, ep), 0);
    msg_t m, got;
    msg_init(&m, MSG_HEALTH_REQ);
    m.health_req.req = 7;
    cr_assert_eq(wire_send(gw, NULL, &m, 0), 0);
    wire_peer_t from_gone, from_there;
    m.health_req.req = 8;
    cr_assert_eq(wire_send(gw, NULL, &m, 0), 0);
    cr_assert_eq(wire_recv(rw, &got, &from_gone, 0), 0);
    msg_fini(&got);
    cr_assert_eq(wire_reserve(rw, &from_gone), 0, "it is there yet");
    msg_t rep;
    msg_init(&rep, MSG_HEALTH_REP);
    rep.health_rep.req = 7, rep.health_rep.service = "test", rep.health_rep.state = "serving";
    cr_assert_eq(wire_send(rw, &from_gone, &rep, 0), 0);
    cr_assert_eq(wire_recv(gw, &got, NULL, 0), 0, "its answer");
    msg_fini(&got);
    wire_destroy(&gw);
    zmq_close(gone);
    usleep(200000); /* its connection closed; its second request still queued */
    cr_assert_eq(wire_recv(rw, &got, &from_gone, 0), 0, "what it sent before going");
    cr_assert_eq(got.health_req.req, 8);
    msg_fini(&got);
    cr_assert_eq(wire_reserve(rw, &from_gone), -EHOSTUNREACH);

    m.health_req.req = 9;
    cr_assert_eq(wire_send(tw, NULL, &m, 0), 0);
    cr_assert_eq(wire_recv(rw, &got, &from_there, 0), 0);
    msg_fini(&got);
    cr_assert_eq(wire_reserve(rw, &from_there), 0);
    cr_assert_eq(wire_reserve(rw, &from_there), 0, "reserved twice, sent once");
    rep.health_rep.req = 9;
    cr_assert_eq(wire_send(rw, &from_there, &rep, 0), 0);
    cr_assert_eq(wire_send(rw, &from_there, &rep, 0), 0, "and the next goes as ever");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(wire_recv(tw, &got, NULL, 0), 0, "answer %d", i);
        cr_assert_eq(got.type, MSG_HEALTH_REP);
        cr_assert_eq(got.health_rep.req, 9);
        msg_fini(&got);
    }
    wire_stats_t st;
    wire_stats(tw, &st);
    cr_assert_eq(st.dropped_total, 0, "nothing but the two answers reached it");
    wire_destroy(&tw);
    zmq_close(there);
    wire_destroy(&rw);
    zmq_close(router);
    zmq_ctx_term(ctx);
}

/* Two services started at once on one ipc path: the one that checked and
 * bound first holds PATH.lock from before its check, so the other is
 * refused even before any socket answers; the lock file goes with it. */
Test(wire, an_ipc_path_another_service_is_starting_on_is_refused)
{
    char *dir = rwt_tmpdir();
    char ep[700], lock[700], why[512];
    snprintf(ep, sizeof ep, "ipc://%s/s.sock", dir);
    snprintf(lock, sizeof lock, "%s/s.sock.lock", dir);
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_ROUTER);
    int err = 0, zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    wire_t *w = wire_new(sock, "test", &err);
    /* another service starting: it holds the lock, nothing is bound yet
     * (flock belongs to an open file, so this process's own open stands
     * for another process's) */
    int other = open(lock, O_RDWR | O_CREAT, 0600);
    cr_assert_geq(other, 0);
    cr_assert_eq(flock(other, LOCK_EX | LOCK_NB), 0);
    cr_assert_eq(wire_bind(w, ep, why, sizeof why), -EADDRINUSE);
    cr_assert(strstr(why, "another service is starting on it"), "%s", why);
    cr_assert_neq(access(rwt_path(dir, "s.sock"), F_OK), 0, "bound anyway");
    close(other); /* it gave up */
    cr_assert_eq(wire_bind(w, ep, why, sizeof why), 0, "%s", why);
    cr_assert_eq(access(lock, F_OK), 0, "the lock is held while bound");
    wire_destroy(&w);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    cr_assert_neq(access(rwt_path(dir, "s.sock"), F_OK), 0, "socket file left");
    cr_assert_neq(access(lock, F_OK), 0, "lock file left");
    rwt_rmdir(dir);
    free(dir);
}
