/* test_service.c — the coordinator under hostile and confused peers.
 *
 * Random frames, multipart junk, raw bytes that are not ZeroMQ, oversized
 * frames, other protocol versions, unknown types and valid messages out of
 * place all reach a live coordinator; it must stay up, refuse what it
 * should, and still run a job for a real worker afterwards. A peer that
 * lost its lease and comes back with a result for the old attempt is
 * refused, both its upload and its RESULT.
 */
#include "checksum.h"
#include "coord_cli.h"
#include "worker_cli.h"
#include "err.h"
#include "svc_peer.h"
#include "svc_support.h"
#include "wire.h"
#include "xfer.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "support.h"

TestSuite(service, .init = rwt_dir_setup, .fini = rwt_dir_teardown, .timeout = 120);

static char state[600], out[600];

/* Tiny models; every task takes 3 steps, the seed seed_steps; a peer
 * silent for timeout_ms is lost. */
static pid_t start_coordinator(const char *bind, int seed_steps, const char *timeout_ms)
{
    snprintf(state, sizeof state, "%s/state", rwt_dir);
    snprintf(out, sizeof out, "%s/out", rwt_dir);
    cr_assert_eq(svc_prepare(state, 40), 0);
    const char *cfg = svc_tiny_config(rwt_dir, 3, seed_steps);
    const char *args[] = {
        "serve",          "--state", state,          "--out",    out,        "--bind", bind,
        "--heartbeat-ms", "100",     "--timeout-ms", timeout_ms, "--config", cfg,      NULL};
    return svc_spawn(coord_main, "rewire-coordinator", rwt_path(rwt_dir, "coordinator.log"), args);
}

/* The endpoint the coordinator bound, from its status file. */
static void bound_endpoint(char *buf, size_t n)
{
    const char *path = rwt_path(state, "status.json");
    cr_assert(svc_wait_file(path, 10000), "no status file");
    json_t *st = json_load_file(path, 0, NULL);
    cr_assert_not_null(st);
    snprintf(buf, n, "%s", json_string_value(json_object_get(st, "endpoint")));
    json_decref(st);
}

static pid_t start_worker(const char *endpoint, const char *id, const char *caps)
{
    return svc_worker(rwt_dir, endpoint, id, caps, "1000", NULL);
}

/* ---- a hand-driven peer (svc_peer.h) ---- */

typedef svc_peer_t peer_t;

static void peer_open(peer_t *p, const char *endpoint)
{
    svc_peer_connect(p, endpoint, "test-peer");
}

/* Receives until a message of type comes (others are skipped); 0 or -1. */
static int peer_expect(peer_t *p, msg_type_t type, msg_t *m)
{
    return svc_peer_expect(p, type, m, 3000);
}

static void peer_hello(peer_t *p, const char *id, const char *cap)
{
    svc_peer_hello(p, id, cap);
    msg_t r;
    cr_assert_eq(peer_expect(p, MSG_WELCOME, &r), 0, "no WELCOME for %s", id);
    cr_assert_str_eq(r.welcome.worker_id, id);
    msg_fini(&r);
}

static void send_raw(void *sock, const void *p, size_t n, int flags)
{
    zmq_send(sock, p, n, flags);
}

Test(service, survives_junk_and_still_runs_a_job)
{
    pid_t c = start_coordinator("tcp://127.0.0.1:*", 3, "500");
    char endpoint[256];
    bound_endpoint(endpoint, sizeof endpoint);
    peer_t p;
    peer_open(&p, endpoint);
    uint64_t rng = 0x243f6a8885a308d3ULL;
    uint8_t buf[512];
    /* random single frames, and random multipart messages */
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(rng % sizeof buf);
        for (size_t k = 0; k < n; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            buf[k] = (uint8_t)rng;
        }
        if (i < 1500 && n > 0)
            buf[0] = 0x90 | (uint8_t)(rng % 4); /* often a MessagePack array */
        send_raw(p.sock, buf, n, i % 5 == 0 ? ZMQ_SNDMORE : 0);
    }
    send_raw(p.sock, "", 0, 0);
    /* an unknown type, another version (REFUSE comes back), an oversized frame */
    const uint8_t unknown[] = {0x93, 0x01, 0x1f, 0x80};
    const uint8_t future[] = {0x93, 0x02, 0x08, 0x81, 0xa3, 's', 'e', 'q', 0x01};
    send_raw(p.sock, unknown, sizeof unknown, 0);
    send_raw(p.sock, future, sizeof future, 0);
    msg_t m;
    /* wire.h drops the REFUSE on our side too (it is on another version),
     * so look for it as raw bytes */
    {
        uint8_t got[256];
        int n = -1;
        for (int i = 0; i < 50 && n < 0; i++) {
            n = zmq_recv(p.sock, got, sizeof got, 0);
            if (n > 2 && got[2] != 3)
                n = -1; /* an ERROR for junk that passed as a message: skip */
        }
        cr_assert(n > 2 && got[2] == 3, "a REFUSE for another version");
    }
    size_t big = MSG_MAX_BYTES + 16;
    char *huge = calloc(1, big);
    send_raw(p.sock, huge, big, 0);
    free(huge);
    /* raw bytes that are not ZeroMQ at all, on the TCP port */
    int port = atoi(strrchr(endpoint, ':') + 1);
    for (int i = 0; i < 5; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            for (size_t k = 0; k < sizeof buf; k++)
                buf[k] = (uint8_t)(k * 31 + (size_t)i);
            cr_assert_eq(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
        }
        close(fd);
    }
    /* valid messages out of place: a RESULT before HELLO gets an ERROR */
    msg_init(&m, MSG_RESULT);
    m.result.task = 1;
    m.result.attempt = 1;
    m.result.artifact = 42;
    cr_assert_eq(wire_send(p.w, NULL, &m, 0), 0);
    msg_t e;
    cr_assert_eq(peer_expect(&p, MSG_ERROR, &e), 0);
    cr_assert_eq(e.error.code, RW_ENOTFOUND);
    msg_fini(&e);
    /* registered, a RESULT for a task it does not hold is refused */
    peer_hello(&p, "prankster", "router");
    msg_t lease;
    cr_assert_eq(peer_expect(&p, MSG_LEASE, &lease), 0, "the router task comes");
    uint64_t held = lease.lease.task;
    msg_fini(&lease);
    m.result.task = held == 1 ? 2 : 1;
    cr_assert_eq(wire_send(p.w, NULL, &m, 0), 0);
    cr_assert_eq(peer_expect(&p, MSG_ERROR, &e), 0);
    cr_assert_eq(e.error.code, RW_ESTATE);
    msg_fini(&e);
    /* and one for the task it holds, whose artifact it never uploaded */
    m.result.task = held;
    cr_assert_eq(wire_send(p.w, NULL, &m, 0), 0);
    cr_assert_eq(peer_expect(&p, MSG_ERROR, &e), 0);
    cr_assert_eq(e.error.code, RW_ENOTFOUND);
    msg_fini(&e);
    /* a FETCH of nothing */
    msg_init(&m, MSG_FETCH);
    m.fetch.artifact = 77;
    cr_assert_eq(wire_send(p.w, NULL, &m, 0), 0);
    cr_assert_eq(peer_expect(&p, MSG_ERROR, &e), 0);
    cr_assert(e.error.has_req && e.error.req == 77);
    msg_fini(&e);
    svc_peer_close(&p); /* it goes silent: its router lease goes back */

    /* a real worker still gets the whole job done */
    pid_t w = start_worker(endpoint, "w1", "train,router");
    int rc = svc_wait(c, 60000);
    if (rc != 0) {
        svc_dump(rwt_path(rwt_dir, "coordinator.log"));
        svc_dump(rwt_path(rwt_dir, "w1.log"));
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(svc_wait(w, 5000), 0);
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(strstr(log, "dropped a message"), "drops are logged");
    cr_assert(strstr(log, "worker prankster lost"));
    free(log);
}

/* A coordinator on ipc in rwt_dir (endpoint gets its address, of 700
 * bytes) and a hand-driven peer p registered to it as id, with the train
 * capability. */
static pid_t coordinator_and_peer(char *endpoint, int seed_steps, const char *timeout_ms, peer_t *p,
                                  const char *id)
{
    snprintf(endpoint, 700, "ipc://%s/coord.sock", rwt_dir);
    pid_t c = start_coordinator(endpoint, seed_steps, timeout_ms);
    peer_open(p, endpoint);
    peer_hello(p, id, "train");
    return c;
}

Test(service, a_late_result_of_a_lost_attempt_is_refused)
{
    /* the seed's second attempt is still running when the ghost comes back */
    char endpoint[700];
    peer_t p;
    pid_t c = coordinator_and_peer(endpoint, 600, "500", &p, "ghost");
    msg_t lease;
    cr_assert_eq(peer_expect(&p, MSG_LEASE, &lease), 0);
    cr_assert_eq(lease.lease.kind, MSG_TASK_SEED);
    cr_assert_eq(lease.lease.attempt, 1);
    uint64_t task = lease.lease.task;
    msg_fini(&lease);
    /* the ghost goes silent; a real worker joins and gets attempt 2 */
    pid_t w = start_worker(endpoint, "w1", "train,router");
    svc_sleep_ms(700); /* connected, but silent past the timeout */
    /* the ghost comes back and delivers attempt 1 */
    peer_hello(&p, "ghost", "train");
    const char *bytes = "a stale model";
    uint64_t id = proto_checksum(bytes, strlen(bytes));
    msg_t m;
    msg_init(&m, MSG_ART_BEGIN);
    m.art_begin.artifact = id;
    m.art_begin.kind = MSG_ARTIFACT_MODEL;
    m.art_begin.size = strlen(bytes);
    m.art_begin.chunk = 1024;
    m.art_begin.task = task;
    m.art_begin.has_task = true;
    m.art_begin.attempt = 1;
    m.art_begin.has_attempt = true;
    cr_assert_eq(wire_send(p.w, NULL, &m, 0), 0);
    msg_t ack;
    cr_assert_eq(peer_expect(&p, MSG_ART_ACK, &ack), 0);
    cr_assert_not(ack.art_ack.ok, "the upload is refused");
    cr_assert_eq(ack.art_ack.code, RW_ESTATE);
    msg_fini(&ack);
    msg_init(&m, MSG_RESULT);
    m.result.task = task;
    m.result.attempt = 1;
    m.result.artifact = id;
    cr_assert_eq(wire_send(p.w, NULL, &m, 0), 0);
    msg_t e;
    cr_assert_eq(peer_expect(&p, MSG_ERROR, &e), 0);
    cr_assert_eq(e.error.code, RW_ESTATE, "the result is refused");
    cr_assert(e.error.has_task && e.error.task == task);
    msg_fini(&e);
    svc_peer_close(&p);
    int rc = svc_wait(c, 60000);
    if (rc != 0) {
        svc_dump(rwt_path(rwt_dir, "coordinator.log"));
        svc_dump(rwt_path(rwt_dir, "w1.log"));
    }
    cr_assert_eq(rc, 0);
    svc_wait(w, 5000);
    svc_kill(w);
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(strstr(log, "worker ghost lost (silent past the timeout)"), "%s", log);
    free(log);
    json_t *r = json_load_file(rwt_path(state, "results.json"), 0, NULL);
    json_t *seed = json_array_get(json_object_get(r, "tasks"), 0);
    cr_assert_eq(json_integer_value(json_object_get(seed, "attempts")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(seed, "worker")), "w1");
    json_decref(r);
}

/* The next ART_BEGIN the peer gets; its artifact. */
static uint64_t next_begin(peer_t *p)
{
    msg_t m;
    cr_assert_eq(peer_expect(p, MSG_ART_BEGIN, &m), 0, "no ART_BEGIN");
    uint64_t id = m.art_begin.artifact;
    msg_fini(&m);
    return id;
}

static void send_fetch_or_give_up(peer_t *p, bool fetch, uint64_t artifact)
{
    msg_t m;
    if (fetch) {
        msg_init(&m, MSG_FETCH);
        m.fetch.artifact = artifact;
    } else {
        xfer_give_up(&m, artifact, "the task it was for was cancelled");
    }
    cr_assert_eq(wire_send(p->w, NULL, &m, 0), 0);
}

Test(service, a_fetch_given_up_lets_the_next_one_go)
{
    char endpoint[700];
    peer_t p;
    pid_t c = coordinator_and_peer(endpoint, 3, "10000", &p,
                                   "quitter"); /* the test peer never heartbeats */
    msg_t lease;
    cr_assert_eq(peer_expect(&p, MSG_LEASE, &lease), 0);
    cr_assert(lease.lease.has_tokenizer && lease.lease.has_shard);
    uint64_t tok = lease.lease.tokenizer, data = lease.lease.shard;
    msg_fini(&lease);
    /* the tokenizer starts (no credit ever comes), the data waits its turn */
    send_fetch_or_give_up(&p, true, tok);
    cr_assert_eq(next_begin(&p), tok);
    send_fetch_or_give_up(&p, true, data);
    /* both given up: the queued one leaves the queue, the started one ends */
    send_fetch_or_give_up(&p, false, data);
    send_fetch_or_give_up(&p, false, tok);
    /* so a new FETCH starts at once, and nothing else went out before it */
    send_fetch_or_give_up(&p, true, tok);
    cr_assert_eq(next_begin(&p), tok, "the given-up data was sent, or the tokenizer held on");
    /* a give-up that crosses no transfer (it ended, or never began) is no
     * fault of the peer's; a FETCH of nothing after it answers once it was
     * read */
    send_fetch_or_give_up(&p, false, tok);
    send_fetch_or_give_up(&p, false, data);
    send_fetch_or_give_up(&p, true, 77);
    msg_t e;
    cr_assert_eq(peer_expect(&p, MSG_ERROR, &e), 0);
    cr_assert(e.error.has_req && e.error.req == 77);
    msg_fini(&e);
    svc_peer_close(&p);
    kill(c, SIGTERM);
    int rc = svc_wait(c, 10000);
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    if (rc != 0 || !strstr(log, "quitter no longer wants the artifact it fetched"))
        svc_dump(rwt_path(rwt_dir, "coordinator.log"));
    cr_assert_eq(rc, 0);
    cr_assert(strstr(log, "quitter no longer wants the artifact it fetched"));
    cr_assert_null(strstr(log, "credit or an ack for no artifact"), "a give-up was dropped");
    free(log);
}

Test(service, a_task_out_of_attempts_fails_the_job_saying_which_and_why)
{
    char endpoint[700];
    peer_t p;
    pid_t c = coordinator_and_peer(endpoint, 3, "10000", &p, "bad");
    /* every lease fails, saying at which attempt, until one task has had
     * its three */
    msg_t lease;
    for (int n = 0; n < 20 && peer_expect(&p, MSG_LEASE, &lease) == 0; n++) {
        char text[64];
        snprintf(text, sizeof text, "out of memory at attempt %u", (unsigned)lease.lease.attempt);
        msg_t m;
        msg_init(&m, MSG_ERROR);
        m.error.code = RW_ENOMEM;
        m.error.text = text;
        m.error.task = lease.lease.task;
        m.error.has_task = true;
        m.error.attempt = lease.lease.attempt;
        m.error.has_attempt = true;
        msg_fini(&lease);
        cr_assert_eq(wire_send(p.w, NULL, &m, 0), 0);
    }
    int rc = svc_wait(c, 30000);
    svc_peer_close(&p);
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert_eq(rc, 1, "%s", log);
    cr_assert(strstr(log, "job failed: task ") &&
                  strstr(log, " failed 3 times, the last on bad: out of memory at attempt 3 "
                              "(--max-attempts allows more; started again, the job tries it "
                              "again)"),
              "%s", log);
    free(log);
}

/* Two live workers given one id: the second HELLO takes the id (as a
 * reconnect would), and when the first speaks again it is refused, saying
 * why, instead of taking the id back and forth until the job fails. */
Test(service, two_live_workers_with_one_id_the_first_is_refused)
{
    char endpoint[700];
    peer_t a, b;
    pid_t c = coordinator_and_peer(endpoint, 600, "10000", &a, "twin");
    peer_open(&b, endpoint);
    peer_hello(&b, "twin", "train");
    msg_t m;
    msg_init(&m, MSG_HEARTBEAT);
    m.heartbeat.seq = 1;
    cr_assert_eq(wire_send(a.w, NULL, &m, 0), 0);
    msg_t r;
    cr_assert_eq(peer_expect(&a, MSG_REFUSE, &r), 0, "the first twin is refused");
    cr_assert_eq(r.refuse.code, RW_EEXIST);
    cr_assert(strstr(r.refuse.reason, "worker id twin is taken"), "%s", r.refuse.reason);
    msg_fini(&r);
    /* the second keeps the id: its heartbeat is no stranger's */
    cr_assert_eq(wire_send(b.w, NULL, &m, 0), 0);
    for (int i = 0; i < 100; i++) { /* a second of what it is sent */
        while (wire_recv(b.w, &r, NULL, ZMQ_DONTWAIT) == 0) {
            cr_assert(r.type != MSG_ERROR && r.type != MSG_REFUSE, "the id's holder got %s",
                      msg_type_name(r.type));
            msg_fini(&r);
        }
        svc_sleep_ms(10);
    }
    svc_peer_close(&a);
    svc_peer_close(&b);
    svc_kill(c);
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(strstr(log, "two live workers say they are twin"), "%s", log);
    free(log);
}
