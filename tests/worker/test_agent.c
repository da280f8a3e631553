/* test_agent.c — a worker facing a coordinator that misbehaves.
 *
 * The test is the coordinator: a ROUTER the worker (a forked child running
 * worker_main) connects to. Before and after WELCOME it gets junk of every
 * kind, messages out of place, a lease whose artifacts do not exist, and
 * finally silence; through all of it the worker must stay up, keep
 * heartbeating, report the failed task, reconnect once the coordinator is
 * silent past its timeout, and exit 0 on SHUTDOWN.
 */
#include "err.h"
#include "svc_support.h"
#include "wire.h"
#include "worker_cli.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "support.h"

TestSuite(agent, .init = rwt_dir_setup, .fini = rwt_dir_teardown, .timeout = 60);

typedef struct fake {
    void *ctx, *sock;
    wire_t *w;
    wire_peer_t worker;
} fake_t;

/* The next message of type from the worker (others skipped); 0 or -1. */
static int expect(fake_t *f, msg_type_t type, msg_t *m)
{
    for (int i = 0; i < 100; i++) {
        wire_peer_t from;
        int rc = wire_recv(f->w, m, &from, 0);
        if (rc == -EAGAIN)
            return -1;
        if (rc < 0)
            continue;
        f->worker = from;
        if (m->type == type)
            return 0;
        msg_fini(m);
    }
    return -1;
}

static void send_to(fake_t *f, msg_t *m)
{
    cr_assert_eq(wire_send(f->w, &f->worker, m, 0), 0, "send %s", msg_type_name(m->type));
}

static void junk(fake_t *f, uint64_t seed)
{
    uint8_t buf[256];
    for (int i = 0; i < 300; i++) {
        size_t n = (size_t)(seed % sizeof buf);
        for (size_t k = 0; k < n; k++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            buf[k] = (uint8_t)seed;
        }
        if (n)
            buf[0] = 0x93;
        zmq_send(f->sock, f->worker.id, f->worker.id_len, ZMQ_SNDMORE);
        if (i % 9 == 0)
            zmq_send(f->sock, buf, n / 2, ZMQ_SNDMORE);
        zmq_send(f->sock, buf, n, 0);
    }
}

Test(agent, survives_a_misbehaving_coordinator)
{
    fake_t f = {0};
    char endpoint[700];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/coord.sock", rwt_dir);
    f.ctx = zmq_ctx_new();
    f.sock = zmq_socket(f.ctx, ZMQ_ROUTER);
    int ms = 3000, zero = 0, err;
    zmq_setsockopt(f.sock, ZMQ_RCVTIMEO, &ms, sizeof ms);
    zmq_setsockopt(f.sock, ZMQ_LINGER, &zero, sizeof zero);
    f.w = wire_new(f.sock, "fake-coordinator", &err);
    cr_assert_eq(zmq_bind(f.sock, endpoint), 0);
    const char *args[] = {"--connect",    endpoint,  "--id",
                          "w1",           "--cache", rwt_path(rwt_dir, "cache"),
                          "--timeout-ms", "1500",    "--backoff-max-ms",
                          "200",          NULL};
    const char *log = rwt_path(rwt_dir, "w1.log");
    pid_t pid = svc_spawn(worker_main, "rewire-worker", log, args);

    msg_t m, r;
    cr_assert_eq(expect(&f, MSG_HELLO, &m), 0, "HELLO");
    cr_assert_str_eq(m.hello.worker_id, "w1");
    msg_fini(&m);
    /* junk before WELCOME, and a LEASE it must not take unregistered */
    junk(&f, 0x1234567);
    const uint8_t future[] = {0x93, 0x07, 0x08, 0x81, 0xa3, 's', 'e', 'q', 0x01};
    zmq_send(f.sock, f.worker.id, f.worker.id_len, ZMQ_SNDMORE);
    zmq_send(f.sock, future, sizeof future, 0);
    cr_assert_eq(expect(&f, MSG_REFUSE, &m), 0, "another version is refused");
    cr_assert_eq(m.refuse.code, RW_EVERSION);
    msg_fini(&m);

    msg_init(&r, MSG_WELCOME);
    r.welcome.worker_id = "w1";
    r.welcome.session = 1;
    r.welcome.heartbeat_ms = 100;
    send_to(&f, &r);
    cr_assert_eq(expect(&f, MSG_HEARTBEAT, &m), 0, "heartbeats once welcome");
    msg_fini(&m);

    /* a lease of artifacts that do not exist: it fetches, hears no, fails the task */
    msg_init(&r, MSG_LEASE);
    r.lease.task = 5;
    r.lease.attempt = 2;
    r.lease.kind = MSG_TASK_SEED;
    r.lease.config = "{}";
    r.lease.deadline_ms = 60000;
    r.lease.tokenizer = 123;
    r.lease.has_tokenizer = true;
    send_to(&f, &r);
    cr_assert_eq(expect(&f, MSG_FETCH, &m), 0);
    cr_assert_eq(m.fetch.artifact, 123);
    msg_fini(&m);
    msg_init(&r, MSG_ERROR);
    r.error.code = RW_ENOTFOUND;
    r.error.text = "no such artifact";
    r.error.req = 123;
    r.error.has_req = true;
    send_to(&f, &r);
    cr_assert_eq(expect(&f, MSG_ERROR, &m), 0, "the task's failure is reported");
    cr_assert(m.error.has_task && m.error.task == 5 && m.error.attempt == 2);
    msg_fini(&m);

    /* valid messages out of place, then junk again */
    msg_init(&r, MSG_CANCEL);
    r.cancel.task = 99;
    r.cancel.attempt = 1;
    send_to(&f, &r);
    msg_init(&r, MSG_ART_CHUNK);
    r.art_chunk.artifact = 77;
    r.art_chunk.seq = 3;
    r.art_chunk.data = (msg_bin_t){"xyz", 3};
    send_to(&f, &r);
    send_to(&f, &(msg_t){.type = MSG_HEARTBEAT, .version = 1, .heartbeat = {.seq = 1}});
    junk(&f, 0xfeedbeef);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(expect(&f, MSG_HEARTBEAT, &m), 0, "still heartbeating");
        cr_assert_not(m.heartbeat.has_task, "and holding no task");
        msg_fini(&m);
        send_to(&f, &(msg_t){.type = MSG_HEARTBEAT, .version = 1, .heartbeat = {.seq = 2}});
    }
    /* silence past its timeout: it reconnects and says HELLO again */
    cr_assert_eq(expect(&f, MSG_HELLO, &m), 0, "a HELLO after the silence");
    msg_fini(&m);
    msg_init(&r, MSG_SHUTDOWN);
    r.shutdown.reason = "test over";
    send_to(&f, &r);
    int rc = svc_wait(pid, 5000);
    if (rc != 0)
        svc_dump(log);
    cr_assert_eq(rc, 0, "SHUTDOWN ends the worker cleanly");
    char *text = rwt_read_file(log, NULL);
    cr_assert(strstr(text, "silent past"), "%s", text);
    free(text);
    wire_destroy(&f.w);
    zmq_close(f.sock);
    zmq_ctx_term(f.ctx);
}
