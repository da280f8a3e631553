/* test_agent.c — a worker facing a coordinator that misbehaves.
 *
 * The test is the coordinator: a ROUTER the worker (a forked child running
 * worker_main) connects to. Before and after WELCOME it gets junk of every
 * kind, messages out of place, a lease whose artifacts do not exist, and
 * finally silence; through all of it the worker must stay up, keep
 * heartbeating, report the failed task, reconnect once the coordinator is
 * silent past its timeout, and exit 0 on SHUTDOWN. A lease cancelled while
 * its input is on the way must release the coordinator's sender too, and
 * a fetch whose answer never comes fails its task rather than hold it; an
 * upload nobody answers starts again, twice, then ends the run.
 */
#include "err.h"
#include "proto.h"
#include "svc_support.h"
#include "store.h"
#include "wire.h"
#include "router_cli.h"
#include "worker_cli.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "support.h"

TestSuite(agent, .init = rwt_dir_setup, .fini = rwt_dir_teardown, .timeout = 60);

typedef struct fake {
    void *ctx, *sock;
    wire_t *w;
    wire_peer_t worker;
    /* what WELCOME says, again to a worker that reconnects */
    char id[MSG_NAME_MAX + 1];
    uint64_t upload; /* the domain data awaited, if has_upload */
    bool has_upload;
    int reconnects;
} fake_t;

/* The fake coordinator's ROUTER, bound; its endpoint into endpoint. */
static void fake_open(fake_t *f, char *endpoint, size_t n)
{
    snprintf(endpoint, n, "ipc://%s/coord.sock", rwt_dir);
    f->ctx = zmq_ctx_new();
    f->sock = zmq_socket(f->ctx, ZMQ_ROUTER);
    int ms = 3000, zero = 0, err;
    zmq_setsockopt(f->sock, ZMQ_RCVTIMEO, &ms, sizeof ms);
    zmq_setsockopt(f->sock, ZMQ_LINGER, &zero, sizeof zero);
    f->w = wire_new(f->sock, "fake-coordinator", &err);
    cr_assert_eq(zmq_bind(f->sock, endpoint), 0);
}

static void fake_close(fake_t *f)
{
    wire_destroy(&f->w);
    zmq_close(f->sock);
    zmq_ctx_term(f->ctx);
}

static void send_to(fake_t *f, msg_t *m)
{
    int rc = wire_send(f->w, &f->worker, m, 0);
    cr_assert_eq(rc, 0, "send %s: %s", msg_type_name(m->type), zmq_strerror(-rc));
}

/* WELCOME, as f says it, to the worker that sent the last message; the
 * result of wire_send. */
static int try_welcome(fake_t *f)
{
    msg_t r;
    msg_init(&r, MSG_WELCOME);
    r.welcome.worker_id = f->id;
    r.welcome.session = 1;
    r.welcome.heartbeat_ms = 100;
    r.welcome.upload = f->upload;
    r.welcome.has_upload = f->has_upload;
    return wire_send(f->w, &f->worker, &r, 0);
}

static void send_welcome(fake_t *f)
{
    int rc = try_welcome(f);
    cr_assert_eq(rc, 0, "send WELCOME: %s", zmq_strerror(-rc));
}

/* m came from from: a HELLO once welcomed (m's type not the one awaited)
 * is the worker reconnecting, as it must after a silence past its timeout,
 * which a loaded machine makes of a stall of the test or of the worker
 * alone. Like a coordinator, the fake takes the new connection for the
 * worker's and welcomes it again, rather than heartbeat and SHUTDOWN a
 * routing id that is gone (EHOSTUNREACH). */
static void note_from(fake_t *f, msg_type_t awaited, const msg_t *m, const wire_peer_t *from)
{
    f->worker = *from;
    if (m->type != MSG_HELLO || awaited == MSG_HELLO || !f->id[0])
        return;
    f->reconnects++;
    /* a HELLO that waited past the worker's wait for WELCOME comes from a
     * connection it has dropped already (EHOSTUNREACH): its next HELLO
     * follows, and is welcomed */
    int rc = try_welcome(f);
    cr_log_warn("worker %s reconnected (%d): welcomed again: %s", f->id, f->reconnects,
                rc ? zmq_strerror(-rc) : "ok");
}

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
        note_from(f, type, m, &from);
        if (m->type == type)
            return 0;
        msg_fini(m);
    }
    return -1;
}

/* As expect, for up to ms, heartbeating all along (the worker must not take
 * the wait for a coordinator gone silent). */
static int expect_alive(fake_t *f, msg_type_t type, msg_t *m, int ms)
{
    for (int waited = 0; waited < ms; waited += 50) {
        /* not checked: the worker may have ended (the last test waits for that) */
        wire_send(f->w, &f->worker,
                  &(msg_t){.type = MSG_HEARTBEAT, .version = 1, .heartbeat = {.seq = 9}}, 0);
        svc_sleep_ms(50);
        for (;;) {
            wire_peer_t from;
            int rc = wire_recv(f->w, m, &from, ZMQ_DONTWAIT);
            if (rc == -EAGAIN)
                break;
            if (rc < 0)
                continue;
            note_from(f, type, m, &from);
            if (m->type == type)
                return 0;
            msg_fini(m);
        }
    }
    return -1;
}

/* WELCOME for worker w1, heartbeats every 100 ms. */
static void welcome(fake_t *f)
{
    snprintf(f->id, sizeof f->id, "w1");
    send_welcome(f);
}

/* SHUTDOWN: the worker (pid, logging to log) must exit 0. A worker that
 * brings domain (else NULL) is told its domain is in. */
static void shut_down_bringer(fake_t *f, pid_t pid, const char *log, const char *domain)
{
    msg_t r;
    char in[MSG_REASON_MAX];
    snprintf(in, sizeof in, PROTO_DOMAIN_IN, domain ? domain : "");
    msg_init(&r, MSG_SHUTDOWN);
    r.shutdown.reason = domain ? in : "test over";
    int rc = wire_send(f->w, &f->worker, &r, 0);
    if (rc == -EHOSTUNREACH) {
        /* its connection is gone, the worker reconnecting (see note_from):
         * SHUTDOWN goes to it once its HELLO comes */
        msg_t m;
        cr_log_warn("SHUTDOWN: the worker is reconnecting; told once its HELLO comes");
        if (expect(f, MSG_HELLO, &m) == 0) {
            msg_fini(&m);
            rc = wire_send(f->w, &f->worker, &r, 0);
        }
    }
    if (rc != 0)
        svc_dump(log);
    cr_assert_eq(rc, 0, "send SHUTDOWN: %s", zmq_strerror(-rc));
    rc = svc_wait(pid, 5000);
    if (rc != 0)
        svc_dump(log);
    cr_assert_eq(rc, 0, "SHUTDOWN ends the worker cleanly");
}

static void shut_down(fake_t *f, pid_t pid, const char *log)
{
    shut_down_bringer(f, pid, log, NULL);
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

/* A lease of task (attempt) whose one input is artifact: its FETCH comes. */
static void lease_one(fake_t *f, uint64_t task, uint32_t attempt, uint64_t artifact)
{
    msg_t r, m;
    msg_init(&r, MSG_LEASE);
    r.lease.task = task;
    r.lease.attempt = attempt;
    r.lease.kind = MSG_TASK_SEED;
    r.lease.config = "{}";
    r.lease.deadline_ms = 60000;
    r.lease.tokenizer = artifact;
    r.lease.has_tokenizer = true;
    send_to(f, &r);
    cr_assert_eq(expect(f, MSG_FETCH, &m), 0, "no FETCH for task %" PRIu64, task);
    cr_assert_eq(m.fetch.artifact, artifact);
    msg_fini(&m);
}

/* A worker "w1" (timeout 1500 ms, backoff at most 200 ms) on a fake
 * coordinator opened in f, its HELLO taken (not yet welcomed). */
static pid_t worker_w1(fake_t *f, const char *log)
{
    char endpoint[700];
    fake_open(f, endpoint, sizeof endpoint);
    const char *args[] = {"--connect",    endpoint,  "--id",
                          "w1",           "--cache", rwt_path(rwt_dir, "cache"),
                          "--timeout-ms", "1500",    "--backoff-max-ms",
                          "200",          NULL};
    pid_t pid = svc_spawn(worker_main, "rewire-worker", log, args);
    msg_t m;
    cr_assert_eq(expect(f, MSG_HELLO, &m), 0, "HELLO");
    cr_assert_str_eq(m.hello.worker_id, "w1");
    msg_fini(&m);
    return pid;
}

Test(agent, survives_a_misbehaving_coordinator)
{
    fake_t f = {0};
    const char *log = rwt_path(rwt_dir, "w1.log");
    pid_t pid = worker_w1(&f, log);
    msg_t m, r;
    /* junk before WELCOME, and a LEASE it must not take unregistered */
    junk(&f, 0x1234567);
    const uint8_t future[] = {0x93, 0x07, 0x08, 0x81, 0xa3, 's', 'e', 'q', 0x01};
    zmq_send(f.sock, f.worker.id, f.worker.id_len, ZMQ_SNDMORE);
    zmq_send(f.sock, future, sizeof future, 0);
    cr_assert_eq(expect(&f, MSG_REFUSE, &m), 0, "another version is refused");
    cr_assert_eq(m.refuse.code, RW_EVERSION);
    msg_fini(&m);

    welcome(&f);
    cr_assert_eq(expect(&f, MSG_HEARTBEAT, &m), 0, "heartbeats once welcome");
    msg_fini(&m);

    /* a lease of artifacts that do not exist: it fetches, hears no, fails the task */
    lease_one(&f, 5, 2, 123);
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
    shut_down(&f, pid, log);
    char *text = rwt_read_file(log, NULL);
    cr_assert(strstr(text, "silent past"), "%s", text);
    free(text);
    fake_close(&f);
}

/* CANCEL of task: the worker reports it and gives up its fetch of artifact
 * (a refusing ART_ACK), so a sender waiting for its credit is let go. */
static void cancel_gives_up(fake_t *f, uint64_t task, uint64_t artifact)
{
    msg_t r, m;
    msg_init(&r, MSG_CANCEL);
    r.cancel.task = task;
    r.cancel.attempt = 1;
    r.cancel.reason = "leased to an idle worker instead";
    send_to(f, &r);
    cr_assert_eq(expect(f, MSG_ERROR, &m), 0, "the cancel of task %" PRIu64 " is told", task);
    cr_assert(m.error.has_task && m.error.task == task);
    cr_assert_eq(m.error.code, -ECANCELED);
    msg_fini(&m);
    cr_assert_eq(expect(f, MSG_ART_ACK, &m), 0, "task %" PRIu64 ": the fetch is not given up",
                 task);
    cr_assert_eq(m.art_ack.artifact, artifact);
    cr_assert_not(m.art_ack.ok);
    cr_assert_eq(m.art_ack.code, -ECANCELED);
    msg_fini(&m);
}

Test(agent, a_lease_cancelled_while_fetching_gives_up_the_fetch)
{
    fake_t f = {0};
    const char *log = rwt_path(rwt_dir, "w1.log");
    pid_t pid = worker_w1(&f, log);
    msg_t m, r;
    welcome(&f);

    /* cancelled before the first byte came */
    lease_one(&f, 7, 1, 321);
    cancel_gives_up(&f, 7, 321);
    /* cancelled with the artifact on its way: BEGIN sent, credit granted */
    lease_one(&f, 8, 1, 654);
    msg_init(&r, MSG_ART_BEGIN);
    r.art_begin.artifact = 654;
    r.art_begin.kind = MSG_ARTIFACT_SHARD;
    r.art_begin.size = 4096;
    r.art_begin.chunk = 1024;
    send_to(&f, &r);
    cr_assert_eq(expect(&f, MSG_ART_CREDIT, &m), 0, "credit for the artifact");
    cr_assert_eq(m.art_credit.artifact, 654);
    msg_fini(&m);
    cancel_gives_up(&f, 8, 654);
    /* a FETCH nobody answers: after the timeout (1500 ms) it gives the
     * fetch up and fails the task, and heartbeats all the while */
    lease_one(&f, 9, 1, 987);
    cr_assert_eq(expect_alive(&f, MSG_ART_ACK, &m, 6000), 0, "the lost fetch is not given up");
    cr_assert_eq(m.art_ack.artifact, 987);
    cr_assert_eq(m.art_ack.code, -ECANCELED);
    msg_fini(&m);
    cr_assert_eq(expect_alive(&f, MSG_ERROR, &m, 1000), 0, "the task's failure is not told");
    cr_assert(m.error.has_task && m.error.task == 9);
    cr_assert(strstr(m.error.text, "no part of artifact 00000000000003db came"), "%s",
              m.error.text);
    msg_fini(&m);

    shut_down(&f, pid, log);
    fake_close(&f);
}

/* A cached input that is not what its id says (cut short by a crash, say)
 * is fetched again, not trained on. */
Test(agent, a_damaged_cached_input_is_fetched_again)
{
    int err;
    char path[STORE_PATH_MAX];
    store_t *st = store_open(rwt_path(rwt_dir, "cache"), &err);
    cr_assert_not_null(st);
    FILE *fp = fopen(store_path(st, 321, path, sizeof path), "w");
    cr_assert_not_null(fp);
    fputs("a tokenizer cut short", fp);
    fclose(fp);
    store_destroy(&st);

    fake_t f = {0};
    const char *log = rwt_path(rwt_dir, "w1.log");
    pid_t pid = worker_w1(&f, log);
    welcome(&f);
    lease_one(&f, 7, 1, 321); /* the FETCH comes */
    cr_assert_neq(access(path, F_OK), 0, "the damaged file is still in the cache");
    shut_down(&f, pid, log);
    fake_close(&f);
}

/* Without --cache a worker's cache is a folder of its own under TMPDIR,
 * which no later process reuses: it is removed when the worker ends. */
/* A worker w1 without --cache (TMPDIR the test's folder), logging to log,
 * registered with f; returns its pid. */
static pid_t own_cache_worker(fake_t *f, const char *log)
{
    char endpoint[700];
    fake_open(f, endpoint, sizeof endpoint);
    setenv("TMPDIR", rwt_dir, 1);
    const char *args[] = {"--connect", endpoint, "--id", "w1", NULL};
    pid_t pid = svc_spawn(worker_main, "rewire-worker", log, args);
    unsetenv("TMPDIR");
    msg_t m;
    cr_assert_eq(expect(f, MSG_HELLO, &m), 0, "HELLO");
    msg_fini(&m);
    welcome(f);
    return pid;
}

Test(agent, a_worker_removes_the_cache_folder_it_made_itself)
{
    fake_t f = {0};
    char dir[700];
    const char *log = rwt_path(rwt_dir, "w1.log");
    pid_t pid = own_cache_worker(&f, log);
    snprintf(dir, sizeof dir, "%s/rewire-cache-%ld", rwt_dir, (long)pid);
    cr_assert_eq(access(dir, F_OK), 0, "no cache folder %s while it runs", dir);
    shut_down(&f, pid, log);
    cr_assert_neq(access(dir, F_OK), 0, "%s is left behind", dir);
    fake_close(&f);
}

/* A worker bringing domain concise (timeout 1000 ms), welcomed and asked
 * for its upload; returns its pid, the upload's id in *upload. */
static pid_t bringer(fake_t *f, const char *log, uint64_t *upload)
{
    char endpoint[700], cmd[2048];
    fake_open(f, endpoint, sizeof endpoint);
    const char *data = rwt_path(rwt_dir, "concise.jsonl");
    snprintf(cmd, sizeof cmd, "%s data gen --domains concise --pairs-per-domain 40 -o %s",
             rwt_bin("rewire"), data);
    cr_assert_eq(rwt_run(cmd, NULL, NULL), 0, "%s", cmd);
    const char *args[] = {"--connect",    endpoint,  "--cache", rwt_path(rwt_dir, "cache"),
                          "--domain",     "concise", "--data",  data,
                          "--timeout-ms", "1000",    NULL};
    pid_t pid = svc_spawn(worker_main, "rewire-worker", log, args);
    msg_t m;
    cr_assert_eq(expect(f, MSG_HELLO, &m), 0, "HELLO");
    cr_assert(m.hello.has_data_upload);
    *upload = m.hello.data_upload;
    snprintf(f->id, sizeof f->id, "%s", m.hello.worker_id);
    msg_fini(&m);
    f->upload = *upload;
    f->has_upload = true;
    send_welcome(f);
    return pid;
}

/* The upload's ART_BEGINs number from..to come, a timeout apart. */
static void begins(fake_t *f, uint64_t upload, int from, int to)
{
    msg_t m;
    for (int i = from; i <= to; i++) {
        cr_assert_eq(expect_alive(f, MSG_ART_BEGIN, &m, 3000), 0, "ART_BEGIN %d", i);
        cr_assert_eq(m.art_begin.artifact, upload);
        msg_fini(&m);
    }
}

Test(agent, an_upload_nobody_answers_starts_again_then_fails)
{
    fake_t f = {0};
    uint64_t upload;
    const char *log = rwt_path(rwt_dir, "b.log");
    pid_t pid = bringer(&f, log, &upload);
    /* the upload begins, and begins again after each 1000 ms of silence */
    begins(&f, upload, 1, 3);
    /* then it gives up: the domain did not get in, the run ends with why */
    msg_t m;
    int rc = -1;
    for (int waited = 0; waited < 5000 && rc == -1; waited += 50) {
        if (expect_alive(&f, MSG_ART_BEGIN, &m, 50) == 0)
            msg_fini(&m);
        rc = svc_wait(pid, 0);
    }
    char *text = rwt_read_file(log, NULL);
    cr_assert_neq(rc, 0, "a domain whose upload was never taken is no success:\n%s", text);
    cr_assert(text && strstr(text, "sending it again from the start") &&
                  strstr(text, "the upload of domain concise was refused: no answer to artifact"),
              "%s", text);
    free(text);
    fake_close(&f);
}

/* A bringer's command succeeds only when its domain got in: a job that
 * fails (or ends) without it ends the bringer with an error saying so. */
Test(agent, a_bringer_whose_job_ends_without_its_domain_fails)
{
    fake_t f = {0};
    uint64_t upload;
    const char *log = rwt_path(rwt_dir, "b.log");
    pid_t pid = bringer(&f, log, &upload);
    begins(&f, upload, 1, 1);
    msg_t r;
    msg_init(&r, MSG_SHUTDOWN);
    r.shutdown.reason = "the job failed";
    send_to(&f, &r);
    int rc = svc_wait(pid, 5000);
    char *text = rwt_read_file(log, NULL);
    cr_assert(rc > 0, "exit %d:\n%s", rc, text);
    cr_assert(strstr(text, "the job ended without domain concise: the job failed"), "%s", text);
    free(text);
    fake_close(&f);
}

/* The first start of an upload got there and only its answer was late: the
 * late ok, or the coordinator's refusal of the second start as data it no
 * longer awaits, is a success, not a failed run. False if the worker
 * reconnected before the answer reached it (a stall past its timeout on a
 * loaded machine): its upload then starts afresh, or the answer is lost,
 * and the case is not this one. */
static bool started_again(bool late_ok, int try)
{
    fake_t f = {0};
    uint64_t upload;
    char log[700];
    snprintf(log, sizeof log, "%s/b%d-%d.log", rwt_dir, late_ok, try);
    pid_t pid = bringer(&f, log, &upload);
    begins(&f, upload, 1, 2);
    if (f.reconnects) {
        cr_log_warn("the worker reconnected during its upload: once more");
        svc_kill(pid);
        fake_close(&f);
        return false;
    }
    msg_t r, m;
    msg_init(&r, MSG_ART_ACK);
    r.art_ack.artifact = upload;
    r.art_ack.ok = late_ok;
    if (!late_ok) {
        r.art_ack.code = RW_ESTATE;
        r.art_ack.has_code = true;
        r.art_ack.reason = "upload refused: no domain data of this worker is awaited";
    }
    send_to(&f, &r);
    f.has_upload = false; /* held, or no longer awaited: not asked for again */
    cr_assert_neq(expect_alive(&f, MSG_ART_BEGIN, &m, 2000), 0, "a third start");
    cr_assert_eq(svc_wait(pid, 0), -1, "the worker ended");
    shut_down_bringer(&f, pid, log, "concise");
    char *text = rwt_read_file(log, NULL);
    const char *stored =
        late_ok ? "domain concise uploaded" : "the coordinator holds its upload already";
    if (f.reconnects && text && !strstr(text, stored)) {
        /* it reconnected with the answer on its way: the answer was lost */
        cr_log_warn("the worker reconnected before the answer came: once more");
        free(text);
        fake_close(&f);
        return false;
    }
    cr_assert(text && strstr(text, stored), "%s", text);
    cr_assert_null(strstr(text, "refused"), "%s", text);
    free(text);
    fake_close(&f);
    return true;
}

Test(agent, an_upload_started_again_counts_the_first_one_stored)
{
    for (int late_ok = 1; late_ok >= 0; late_ok--) {
        int try = 0;
        while (!started_again(late_ok, try))
            cr_assert_lt(++try, 3, "the worker reconnected during its upload %d times", try);
    }
}

/* A worker given the router service's endpoint instead of a coordinator's
 * is answered, every time, that a router takes no HELLO: it exits 1 saying
 * what it reached, instead of trying again for ever. */
Test(agent, a_worker_sent_to_a_router_service_says_so_and_exits)
{
    char ep[700];
    snprintf(ep, sizeof ep, "ipc://%s/router.sock", rwt_dir);
    const char *rargs[] = {"--bundles", rwt_dir, "--bind", ep, NULL};
    pid_t r = svc_spawn(router_main, "rewire-router", rwt_path(rwt_dir, "router.log"), rargs);
    cr_assert(svc_wait_file(rwt_path(rwt_dir, "router.sock"), 5000), "the router never bound");
    const char *log = rwt_path(rwt_dir, "w1.log");
    const char *args[] = {"--connect", ep, "--id", "w1", "--cache", rwt_path(rwt_dir, "cache"),
                          NULL};
    pid_t w = svc_spawn(worker_main, "rewire-worker", log, args);
    int rc = svc_wait(w, 10000);
    if (rc == -1)
        svc_kill(w);
    svc_kill(r);
    char *text = rwt_read_file(log, NULL), want[800];
    cr_assert_eq(rc, 1, "exit %d: %s", rc, text);
    snprintf(want, sizeof want, "%s: that is a router service, not a coordinator", ep);
    cr_assert(text && strstr(text, want), "%s", text);
    cr_assert_not(strstr(text, "no answer from"), "%s", text);
    free(text);
}

/* A worker killed (-9) never removes its own cache folder, and its restart
 * makes another: a worker making its default cache removes those of this
 * user's processes that are gone, and no other. */
/* The PID of a process that has ended. */
static long dead_pid(void)
{
    pid_t dead = fork();
    cr_assert_geq(dead, 0);
    if (dead == 0)
        _exit(0);
    cr_assert_eq(waitpid(dead, NULL, 0), dead);
    return (long)dead;
}

/* A folder rewire-cache-PID in rwt_dir (into path), marked as made on host
 * (NULL: unmarked, as a --cache folder is). */
static void cache_folder(char *path, size_t n, long pid, const char *host)
{
    snprintf(path, n, "%s/rewire-cache-%ld", rwt_dir, pid);
    cr_assert_eq(mkdir(path, 0755), 0);
    char file[800];
    snprintf(file, sizeof file, "%s/artifact", path);
    cr_assert_eq(rwt_write_file(file, "x", 1), 0);
    if (host) {
        snprintf(file, sizeof file, "%s/.rewire-owner", path);
        char text[300];
        snprintf(text, sizeof text, "%s\n", host);
        cr_assert_eq(rwt_write_file(file, text, strlen(text)), 0);
    }
}

Test(agent, a_worker_removes_the_cache_folders_of_dead_processes)
{
    char host[256];
    cr_assert_eq(gethostname(host, sizeof host), 0);
    char gone[700], live[700], other[700], given[700], elsewhere[700];
    cache_folder(gone, sizeof gone, dead_pid(), host);
    cache_folder(live, sizeof live, (long)getpid(), host);
    cache_folder(given, sizeof given, dead_pid(), NULL);
    cache_folder(elsewhere, sizeof elsewhere, dead_pid(), "another-host");
    snprintf(other, sizeof other, "%s/rewire-cache-x1", rwt_dir);
    cr_assert_eq(mkdir(other, 0755), 0);

    fake_t f = {0};
    const char *log = rwt_path(rwt_dir, "w1.log");
    pid_t pid = own_cache_worker(&f, log);
    shut_down(&f, pid, log);
    fake_close(&f);
    cr_assert_neq(access(gone, F_OK), 0, "%s of a dead process is left", gone);
    cr_assert_eq(access(live, F_OK), 0, "%s of a live process was removed", live);
    cr_assert_eq(access(other, F_OK), 0, "%s (no PID) was removed", other);
    cr_assert_eq(access(given, F_OK), 0, "%s (a --cache folder: no mark) was removed", given);
    cr_assert_eq(access(elsewhere, F_OK), 0, "%s (another host's) was removed", elsewhere);
    char *text = rwt_read_file(log, NULL);
    cr_assert(text && strstr(text, gone), "the removal is not logged: %s", text);
    free(text);
}

/* --help names the default cache as the code makes it. */
Test(agent, the_help_names_the_default_cache_by_pid)
{
    char cmd[800], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --help", rwt_bin("rewire-worker"));
    cr_assert_eq(rwt_run(cmd, &out, NULL), 0);
    cr_assert(out && strstr(out, "rewire-cache-PID") && !strstr(out, "cache-ID"), "%s", out);
    free(out);
}
