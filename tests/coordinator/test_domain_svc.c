/* test_domain_svc.c — a domain brought to a coordinator service running a
 * one-task plan in a thread, with a job whose answers the test chooses and
 * the test as the workers: what the service does with the bringing peer
 * (refused while the finish ran, back after a reconnection, an upload that
 * is an artifact the job already holds).
 */
#include "err.h"
#include "log.h"
#include "service.h"
#include "store.h"
#include "svc_peer.h"
#include "wire.h"
#include "xfer.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

TestSuite(domain_svc, .init = rwt_dir_setup, .fini = rwt_dir_teardown, .timeout = 30);

static atomic_int finish_entered, finish_go, check_rc, add_rc, result_rc;
static atomic_int read_entered, read_hold, added;

/* Holds the finish until the test lets it go. */
static int held_finish(void *job, const plan_t *p, char *why, size_t whylen)
{
    (void)job, (void)p, (void)why, (void)whylen;
    atomic_store(&finish_entered, 1);
    while (!atomic_load(&finish_go))
        usleep(1000);
    return 0;
}

static int dom_check(void *job, const char *worker, const coord_domain_t *d, char *why,
                     size_t whylen)
{
    (void)job, (void)worker;
    int rc = atomic_load(&check_rc);
    if (rc < 0)
        snprintf(why, whylen, "domain %s refused by the test", d->name);
    return rc;
}

/* Refuses with add_rc; held while read_hold is set (read_entered tells). */
static int dom_read(void *job, store_t *st, const coord_domain_t *d, coord_domain_read_t *r,
                    char *why, size_t whylen)
{
    (void)job, (void)st;
    atomic_store(&read_entered, 1);
    while (atomic_load(&read_hold))
        usleep(1000);
    int rc = atomic_load(&add_rc);
    if (rc < 0)
        snprintf(why, whylen, "domain %s refused: its uploaded data is bad (test)", d->name);
    r->train = r->eval = 1;
    return rc;
}

static int dom_add(void *job, coord_t *c, const char *worker, const coord_domain_t *d,
                   const coord_domain_read_t *r, char *why, size_t whylen)
{
    (void)job, (void)c, (void)worker, (void)d, (void)why, (void)whylen;
    atomic_fetch_add(&added, 1);
    return r->train == 1 && r->eval == 1 ? 0 : RW_EINVAL; /* what the read found */
}

static int result_check(void *job, const plan_task_t *t, const char *path, char *why, size_t whylen)
{
    (void)job, (void)t, (void)path;
    int rc = atomic_load(&result_rc);
    if (rc < 0)
        snprintf(why, whylen, "not what the task makes (test)");
    return rc;
}

static const struct coord_job_ops ops = {.start = svc_one_task_start,
                                         .lease = svc_empty_lease,
                                         .finish = held_finish,
                                         .check_result = result_check,
                                         .domain_check = dom_check,
                                         .domain_read = dom_read,
                                         .domain_add = dom_add};

static void hello(svc_peer_t *p, const char *id, const char *domain, uint64_t upload)
{
    msg_t m;
    msg_init(&m, MSG_HELLO);
    const char *caps[] = {"train"};
    m.hello.worker_id = id;
    m.hello.caps = (msg_strs_t){caps, 1};
    m.hello.threads = 1;
    if (domain) {
        m.hello.domain = domain;
        m.hello.data_pairs = 10, m.hello.has_data_pairs = true;
        m.hello.data_bytes = 100, m.hello.has_data_bytes = true;
        m.hello.data_checksum = 7, m.hello.has_data_checksum = true;
        m.hello.data_upload = upload, m.hello.has_data_upload = true;
    }
    cr_assert_eq(wire_send(p->w, NULL, &m, 0), 0);
}

/* An artifact of the given bytes in st; returns its id. */
static uint64_t put_in(store_t *st, const char *text)
{
    char tmp[STORE_PATH_MAX];
    store_tmp_path(st, tmp, sizeof tmp);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    uint64_t id = 0;
    cr_assert_eq(store_adopt(st, tmp, 0, &id), 0);
    return id;
}

/* The same in the store at dir. */
static uint64_t put(const char *dir, const char *text)
{
    int err;
    store_t *st = store_open(dir, &err);
    cr_assert_not_null(st);
    uint64_t id = put_in(st, text);
    store_destroy(&st);
    return id;
}

/* Uploads artifact id of the store at dir, as the output of task's attempt
 * (task 0: as a new domain's data); returns the sender's final status (> 0:
 * the coordinator took every byte). */
static int upload_for(svc_peer_t *p, const char *dir, uint64_t id, uint64_t task, uint64_t attempt)
{
    int err;
    store_t *st = store_open(dir, &err);
    cr_assert_not_null(st);
    char path[STORE_PATH_MAX];
    xfer_file_source_t src;
    cr_assert_eq(xfer_file_source_open(&src, store_path(st, id, path, sizeof path)), 0);
    msg_art_begin_t b = {.artifact = id, .kind = MSG_ARTIFACT_DATA, .size = src.size};
    if (task) {
        b.kind = MSG_ARTIFACT_MODEL;
        b.task = task, b.has_task = true;
        b.attempt = attempt, b.has_attempt = true;
    }
    int rc = 0;
    xfer_send_t *s = xfer_send_new(&b, &xfer_file_source_ops, &src, 0, &rc);
    cr_assert_not_null(s);
    double end = rw_now_s() + 5;
    while (xfer_send_status(s) == 0 && rw_now_s() < end) {
        msg_t m;
        while (xfer_send_next(s, &m) == 1)
            cr_assert_eq(wire_send(p->w, NULL, &m, 0), 0);
        if (wire_recv(p->w, &m, NULL, 0) == 0) {
            if (m.type == MSG_ART_CREDIT || m.type == MSG_ART_ACK)
                xfer_send_input(s, &m);
            msg_fini(&m);
        }
    }
    int st_rc = xfer_send_status(s);
    xfer_send_destroy(&s);
    xfer_file_source_close(&src);
    store_destroy(&st);
    return st_rc;
}

static int upload(svc_peer_t *p, const char *dir, uint64_t id)
{
    return upload_for(p, dir, id, 0, 0);
}

/* The coordinator's endpoint in this test's folder. */
static const char *endpoint(void)
{
    static char bind[700];
    snprintf(bind, sizeof bind, "ipc://%s/c.sock", rwt_dir);
    return bind;
}

/* Runs the one task as worker id on p: the RESULT names an artifact put in
 * the coordinator's store. */
static void run_task(svc_peer_t *p, coord_t *c)
{
    msg_t m;
    cr_assert_eq(svc_peer_expect(p, MSG_LEASE, &m, 3000), 0, "no lease");
    uint64_t task = m.lease.task, attempt = m.lease.attempt;
    msg_fini(&m);
    msg_init(&m, MSG_RESULT);
    m.result.task = task;
    m.result.attempt = attempt;
    m.result.artifact = put_in(coord_store(c), "the seed");
    cr_assert_eq(wire_send(p->w, NULL, &m, 0), 0);
}

static coord_t *start(const char *bind, bool keep_serving, bool stop_peers, pthread_t *th)
{
    coord_opts_t o = {.bind = bind,
                      .state_dir = rwt_dir,
                      .heartbeat_ms = 100,
                      .timeout_ms = 2000,
                      .keep_serving = keep_serving,
                      .stop_peers = stop_peers};
    atomic_store(&finish_entered, 0);
    atomic_store(&finish_go, 1);
    atomic_store(&check_rc, 0);
    atomic_store(&add_rc, 0);
    atomic_store(&result_rc, 0);
    atomic_store(&read_entered, 0);
    atomic_store(&read_hold, 0);
    atomic_store(&added, 0);
    return svc_coord_thread(&o, &ops, th, NULL);
}

/* A coordinator (not kept serving) whose one task worker w ran, held inside
 * its finish until finish_go is set. */
static coord_t *start_held_in_finish(const char *bind, pthread_t *th, svc_peer_t *w)
{
    coord_t *c = start(bind, false, false, th);
    atomic_store(&finish_go, 0);
    svc_peer_connect(w, bind, "test");
    hello(w, "w", NULL, 0);
    run_task(w, c);
    for (int i = 0; i < 3000 && !atomic_load(&finish_entered); i++)
        usleep(1000);
    cr_assert(atomic_load(&finish_entered), "the finish never ran");
    return c;
}

/* A domain uploaded while the finish ran waits for it; refused then, the
 * coordinator (not kept serving) still ends once the job is done. */
Test(domain_svc, a_domain_refused_after_the_finish_does_not_keep_the_job_up)
{
    const char *bind = endpoint();
    pthread_t th;
    svc_peer_t w, b;
    coord_t *c = start_held_in_finish(bind, &th, &w);

    uint64_t up = put(rwt_path(rwt_dir, "b-cache"), "not a data set");
    svc_peer_connect(&b, bind, "test");
    hello(&b, "b", "newdom", up);
    msg_t m;
    cr_assert_eq(svc_peer_expect(&b, MSG_WELCOME, &m, 3000), 0);
    cr_assert(m.welcome.has_upload && m.welcome.upload == up);
    msg_fini(&m);
    atomic_store(&add_rc, RW_EBADREC);
    cr_assert_gt(upload(&b, rwt_path(rwt_dir, "b-cache"), up), 0, "the upload went through");
    atomic_store(&finish_go, 1);

    cr_assert_eq(svc_peer_expect(&b, MSG_REFUSE, &m, 3000), 0, "the domain is refused");
    cr_assert(strstr(m.refuse.reason, "uploaded data is bad"), "%s", m.refuse.reason);
    msg_fini(&m);
    cr_assert_eq(svc_peer_expect(&w, MSG_SHUTDOWN, &m, 3000), 0,
                 "the job is done and nothing was added: the workers are told");
    msg_fini(&m);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&w);
    svc_peer_close(&b);
}

/* A worker that brought its domain and registers again (it reconnected,
 * or the coordinator restarted) is still told once its domain is in the
 * bundles, and at once when they hold it already. */
Test(domain_svc, a_bringer_that_came_back_is_told_when_its_domain_is_in)
{
    const char *bind = endpoint();
    pthread_t th;
    coord_t *c = start(bind, true, false, &th);
    atomic_store(&check_rc, 1); /* "this worker brought it before" */
    svc_peer_t b;
    svc_peer_connect(&b, bind, "test");
    hello(&b, "b", "newdom", 99);
    msg_t m;
    cr_assert_eq(svc_peer_expect(&b, MSG_WELCOME, &m, 3000), 0);
    cr_assert_not(m.welcome.has_upload, "nothing to upload: it is in the job");
    msg_fini(&m);
    run_task(&b, c);
    cr_assert_eq(svc_peer_expect(&b, MSG_SHUTDOWN, &m, 3000), 0,
                 "told once its domain is in the bundles");
    cr_assert(strstr(m.shutdown.reason, "domain newdom is in the bundles"), "%s",
              m.shutdown.reason);
    msg_fini(&m);
    svc_peer_close(&b);

    /* the job is done (kept serving): it comes back once more */
    svc_peer_connect(&b, bind, "test");
    hello(&b, "b", "newdom", 99);
    cr_assert_eq(svc_peer_expect(&b, MSG_SHUTDOWN, &m, 3000), 0, "told at once");
    cr_assert(strstr(m.shutdown.reason, "domain newdom is in the bundles"), "%s",
              m.shutdown.reason);
    msg_fini(&m);
    coord_stop(c);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&b);
}

/* Messages of type p receives in ms (others skipped). */
static int count(svc_peer_t *p, msg_type_t type, int ms)
{
    int n = 0;
    msg_t m;
    for (double end = rw_now_s() + ms / 1000.0; rw_now_s() < end;)
        if (wire_recv(p->w, &m, NULL, 0) == 0) {
            n += m.type == type;
            msg_fini(&m);
        }
    return n;
}

static void await_flag(atomic_int *flag, const char *what)
{
    for (int i = 0; i < 3000 && !atomic_load(flag); i++)
        usleep(1000);
    cr_assert(atomic_load(flag), "%s", what);
}

/* Bringer b (HELLO, upload) of newdom, whose read the test holds. */
static void bring_held(svc_peer_t *b, const char *bind, const char *id)
{
    uint64_t up = put(rwt_path(rwt_dir, "b-cache"), "newdom's data");
    svc_peer_connect(b, bind, "test");
    hello(b, id, "newdom", up);
    msg_t m;
    cr_assert_eq(svc_peer_expect(b, MSG_WELCOME, &m, 3000), 0);
    cr_assert(m.welcome.has_upload && m.welcome.upload == up);
    msg_fini(&m);
    atomic_store(&read_entered, 0);
    atomic_store(&read_hold, 1);
    cr_assert_gt(upload(b, rwt_path(rwt_dir, "b-cache"), up), 0, "the upload went through");
    await_flag(&read_entered, "the job never read the upload");
}

static void beat(svc_peer_t *p)
{
    msg_t m;
    msg_init(&m, MSG_HEARTBEAT);
    m.heartbeat.seq = 1;
    cr_assert_eq(wire_send(p->w, NULL, &m, 0), 0);
}

/* The job reads a domain's upload off the loop: heartbeats and results go
 * on meanwhile (a large upload stalled every worker before), and the finish
 * waits for the read to end, then holds the domain. */
Test(domain_svc, a_domain_is_read_off_the_loop_and_the_finish_waits_for_it)
{
    const char *bind = endpoint();
    pthread_t th;
    coord_t *c = start(bind, false, false, &th);
    svc_peer_t w, b;
    svc_peer_connect(&w, bind, "test");
    hello(&w, "w", NULL, 0);
    msg_t m;
    cr_assert_eq(svc_peer_expect(&w, MSG_LEASE, &m, 3000), 0, "no lease");
    uint64_t task = m.lease.task, attempt = m.lease.attempt;
    msg_fini(&m);
    bring_held(&b, bind, "b");

    beat(&w);
    count(&w, MSG_HEARTBEAT, 150); /* those sent before the read */
    cr_assert_geq(count(&w, MSG_HEARTBEAT, 600), 3, "the coordinator's loop stood still");
    beat(&w);
    msg_init(&m, MSG_RESULT);
    m.result.task = task;
    m.result.attempt = attempt;
    m.result.artifact = put_in(coord_store(c), "the seed");
    cr_assert_eq(wire_send(w.w, NULL, &m, 0), 0);
    bool done = false; /* the result is taken meanwhile, and the status says so */
    for (int i = 0; i < 300 && !done; i++) {
        usleep(10 * 1000);
        json_t *st = json_load_file(rwt_path(rwt_dir, "status.json"), 0, NULL);
        done = json_integer_value(json_object_get(json_object_get(st, "tasks"), "done")) == 1;
        json_decref(st);
    }
    cr_assert(done, "the result waited for the read");
    cr_assert(atomic_load(&read_entered) && atomic_load(&read_hold), "the read is still held");
    cr_assert_not(atomic_load(&finish_entered), "the finish began while the job read a domain");

    atomic_store(&read_hold, 0);
    await_flag(&finish_entered, "the finish never ran");
    cr_assert_eq(atomic_load(&added), 1, "the domain was read, then added");
    cr_assert_eq(svc_peer_expect(&b, MSG_SHUTDOWN, &m, 3000), 0, "told once its domain is in");
    cr_assert(strstr(m.shutdown.reason, "domain newdom is in the bundles"), "%s",
              m.shutdown.reason);
    msg_fini(&m);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&w);
    svc_peer_close(&b);
}

/* A bringer lost while its upload is read is forgotten when the read ends:
 * the domain is not added, and its name is free for the next one. */
Test(domain_svc, a_bringer_lost_while_its_data_is_read_is_forgotten)
{
    const char *bind = endpoint();
    pthread_t th;
    coord_t *c = start(bind, true, false, &th);
    svc_peer_t b;
    bring_held(&b, bind, "b");
    svc_peer_close(&b); /* gone: unreachable at the next heartbeat, or silent past 2 s */
    usleep(2600 * 1000);
    atomic_store(&read_hold, 0);
    usleep(200 * 1000);
    cr_assert_eq(atomic_load(&added), 0, "a domain whose bringer is gone was added");

    bring_held(&b, bind, "b2");
    atomic_store(&read_hold, 0);
    await_flag(&added, "the next bringer's domain was not added");
    coord_stop(c);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&b);
}

/* The same worker id connects again during the read (a reconnect) and
 * uploads again: its domain goes in once. */
Test(domain_svc, a_bringer_that_reconnects_during_the_read_is_added_once)
{
    const char *bind = endpoint();
    pthread_t th;
    coord_t *c = start(bind, true, false, &th);
    svc_peer_t b, b2;
    bring_held(&b, bind, "b");
    uint64_t up = put(rwt_path(rwt_dir, "b-cache"), "newdom's data");
    svc_peer_connect(&b2, bind, "test");
    hello(&b2, "b", "newdom", up);
    msg_t m;
    cr_assert_eq(svc_peer_expect(&b2, MSG_WELCOME, &m, 3000), 0);
    cr_assert(m.welcome.has_upload, "not in the job yet: its upload is wanted again");
    msg_fini(&m);
    cr_assert_gt(upload(&b2, rwt_path(rwt_dir, "b-cache"), up), 0);
    atomic_store(&read_hold, 0);
    await_flag(&added, "the domain never went in");
    usleep(300 * 1000);
    cr_assert_eq(atomic_load(&added), 1, "added %d times", atomic_load(&added));
    coord_stop(c);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&b);
    svc_peer_close(&b2);
}

/* A coordinator stopped during a read ends when the read does, adding
 * nothing; told to stop its peers, it refuses the domain at once, else the
 * bringer is told nothing and brings it to the coordinator started next. */
static void stopped_during_a_read(bool stop_peers)
{
    const char *bind = endpoint();
    pthread_t th;
    coord_t *c = start(bind, true, stop_peers, &th);
    svc_peer_t b;
    bring_held(&b, bind, "b");
    coord_stop(c);
    msg_t m;
    if (stop_peers) {
        cr_assert_eq(svc_peer_expect(&b, MSG_REFUSE, &m, 3000), 0, "the bringer is told");
        cr_assert(strstr(m.refuse.reason, "domain newdom is not in the bundles"), "%s",
                  m.refuse.reason);
        msg_fini(&m);
    } else {
        cr_assert_neq(svc_peer_expect(&b, MSG_REFUSE, &m, 500), 0, "the bringer is refused: %s",
                      m.refuse.reason);
    }
    atomic_store(&read_hold, 0);
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&added), 0);
    coord_destroy(&c);
    svc_peer_close(&b);
}

Test(domain_svc, a_coordinator_stopped_during_a_read_ends_with_it)
{
    stopped_during_a_read(false);
}

Test(domain_svc, a_coordinator_stopped_during_a_read_refuses_the_domain_with_stop_peers)
{
    stopped_during_a_read(true);
}

/* A coordinator (not kept serving) whose finish ran while b uploaded
 * newdom: the read waited for the finish, and the test holds it now. */
static coord_t *read_after_finish(const char *bind, pthread_t *th, svc_peer_t *w, svc_peer_t *b)
{
    coord_t *c = start_held_in_finish(bind, th, w);
    uint64_t up = put(rwt_path(rwt_dir, "b-cache"), "newdom's data");
    svc_peer_connect(b, bind, "test");
    hello(b, "b", "newdom", up);
    msg_t m;
    cr_assert_eq(svc_peer_expect(b, MSG_WELCOME, &m, 3000), 0);
    msg_fini(&m);
    atomic_store(&read_hold, 1);
    cr_assert_gt(upload(b, rwt_path(rwt_dir, "b-cache"), up), 0);
    usleep(200 * 1000);
    cr_assert_not(atomic_load(&read_entered), "a read beside the finish");
    atomic_store(&finish_go, 1);
    await_flag(&read_entered, "the domain was not read after the finish");
    return c;
}

/* A domain uploaded during the finish (not kept serving) is read after it:
 * a worker that joins meanwhile is not told the job is done, the domain
 * goes in, and the job runs on for it. */
Test(domain_svc, a_worker_that_joins_during_the_read_after_the_finish_stays)
{
    const char *bind = endpoint();
    pthread_t th;
    svc_peer_t w, b, x;
    coord_t *c = read_after_finish(bind, &th, &w, &b);
    msg_t m;

    svc_peer_connect(&x, bind, "test");
    hello(&x, "x", NULL, 0);
    cr_assert_eq(svc_peer_expect(&x, MSG_WELCOME, &m, 3000), 0);
    msg_fini(&m);
    cr_assert_neq(svc_peer_expect(&x, MSG_SHUTDOWN, &m, 500), 0,
                  "told the job is done during the read");
    atomic_store(&read_hold, 0);
    await_flag(&added, "the domain never went in");
    coord_stop(c);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&w);
    svc_peer_close(&b);
    svc_peer_close(&x);
}

/* ... and when that bringer is lost during the read, the coordinator (not
 * kept serving) ends: nothing is left to do. */
Test(domain_svc, a_bringer_lost_during_the_read_after_the_finish_lets_the_job_end)
{
    const char *bind = endpoint();
    pthread_t th;
    svc_peer_t w, b;
    coord_t *c = read_after_finish(bind, &th, &w, &b);
    msg_t m;
    svc_peer_close(&b);
    for (int i = 0; i < 26; i++) { /* b is lost, as above; w lives on */
        beat(&w);
        usleep(100 * 1000);
    }
    atomic_store(&read_hold, 0);
    cr_assert_eq(svc_peer_expect(&w, MSG_SHUTDOWN, &m, 3000), 0,
                 "the job is done: the workers are told");
    msg_fini(&m);
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&added), 0);
    coord_destroy(&c);
    svc_peer_close(&w);
}

/* A refused upload that is, byte for byte, an artifact the job holds
 * (another domain's upload, say) leaves that artifact in the store. */
Test(domain_svc, a_refused_upload_leaves_an_artifact_the_job_holds)
{
    const char *bind = endpoint();
    pthread_t th;
    coord_t *c = start(bind, true, false, &th);
    uint64_t held = put_in(coord_store(c), "accepted before");
    put(rwt_path(rwt_dir, "b-cache"), "accepted before");
    atomic_store(&add_rc, RW_EINVAL);
    svc_peer_t b;
    svc_peer_connect(&b, bind, "test");
    hello(&b, "b", "other", held);
    msg_t m;
    cr_assert_eq(svc_peer_expect(&b, MSG_WELCOME, &m, 3000), 0);
    msg_fini(&m);
    upload(&b, rwt_path(rwt_dir, "b-cache"), held);
    cr_assert_eq(svc_peer_expect(&b, MSG_REFUSE, &m, 3000), 0);
    msg_fini(&m);
    cr_assert_eq(store_verify(coord_store(c), held, NULL), 0, "the job's artifact is kept");
    coord_stop(c);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&b);
}

/* An upload far larger than the data its HELLO declared (100 bytes) is
 * refused at its ART_BEGIN, before a byte of it is stored or imported. */
Test(domain_svc, an_upload_larger_than_the_declared_data_is_refused)
{
    const char *bind = endpoint();
    pthread_t th;
    coord_t *c = start(bind, true, false, &th);
    size_t n = (size_t)3 << 20;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    uint64_t up = put(rwt_path(rwt_dir, "b-cache"), big);
    free(big);
    svc_peer_t b;
    svc_peer_connect(&b, bind, "test");
    hello(&b, "b", "other", up);
    msg_t m;
    cr_assert_eq(svc_peer_expect(&b, MSG_WELCOME, &m, 3000), 0);
    msg_fini(&m);
    cr_assert_eq(upload(&b, rwt_path(rwt_dir, "b-cache"), up), RW_ETOOBIG);
    cr_assert_neq(store_verify(coord_store(c), up, NULL), 0, "nothing of it was stored");
    coord_stop(c);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&b);
}

/* Two workers bringing one name at once: the second is refused while the
 * first's upload is awaited; once the first vanishes (never uploading), the
 * name is free again. */
Test(domain_svc, a_name_is_held_while_its_bringer_lives_and_freed_when_it_vanishes)
{
    const char *bind = endpoint();
    pthread_t th;
    coord_t *c = start(bind, true, false, &th);
    svc_peer_t a, b;
    svc_peer_connect(&a, bind, "test");
    hello(&a, "a", "same", 5);
    msg_t m;
    cr_assert_eq(svc_peer_expect(&a, MSG_WELCOME, &m, 3000), 0);
    cr_assert(m.welcome.has_upload);
    msg_fini(&m);
    svc_peer_connect(&b, bind, "test");
    hello(&b, "b", "same", 6);
    cr_assert_eq(svc_peer_expect(&b, MSG_REFUSE, &m, 3000), 0, "the name is being brought");
    cr_assert(strstr(m.refuse.reason, "worker a is bringing a domain of that name"), "%s",
              m.refuse.reason);
    msg_fini(&m);
    svc_peer_close(&a); /* it never uploads, and says nothing more */
    double t0 = rw_now_s();
    bool welcomed = false;
    while (!welcomed && rw_now_s() - t0 < 6) {
        hello(&b, "b", "same", 6);
        msg_t r;
        for (double end = rw_now_s() + 0.5; rw_now_s() < end;) {
            if (wire_recv(b.w, &r, NULL, 0) != 0)
                continue;
            welcomed |= r.type == MSG_WELCOME && r.welcome.has_upload;
            msg_fini(&r);
            if (welcomed)
                break;
        }
    }
    cr_assert(welcomed, "the name stays taken after its bringer vanished");
    coord_stop(c);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&b);
}

/* A job that ends while a domain is still coming (its upload not done, so
 * the bundles do not hold it) turns the bringer away: it must not report
 * success; the other workers are told the job is done. */
Test(domain_svc, a_bringer_whose_domain_missed_the_bundles_is_refused_not_shut_down)
{
    const char *bind = endpoint();
    pthread_t th;
    svc_peer_t w, b;
    coord_t *c = start_held_in_finish(bind, &th, &w);
    svc_peer_connect(&b, bind, "test");
    hello(&b, "b", "late", 5);
    msg_t m;
    cr_assert_eq(svc_peer_expect(&b, MSG_WELCOME, &m, 3000), 0);
    msg_fini(&m);
    atomic_store(&finish_go, 1); /* done before b uploads */
    cr_assert_eq(svc_peer_expect(&w, MSG_SHUTDOWN, &m, 3000), 0);
    msg_fini(&m);
    bool refused = false, shut = false;
    for (double end = rw_now_s() + 3; rw_now_s() < end && !refused && !shut;) {
        if (wire_recv(b.w, &m, NULL, 0) != 0)
            continue;
        refused = m.type == MSG_REFUSE;
        shut = m.type == MSG_SHUTDOWN;
        if (refused)
            cr_assert(strstr(m.refuse.reason, "domain late is not in the bundles: the job is done"),
                      "%s", m.refuse.reason);
        msg_fini(&m);
    }
    cr_assert(refused, "the bringer is refused (it got %s)", shut ? "SHUTDOWN" : "nothing");
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&w);
    svc_peer_close(&b);
}

/* A result whose artifact is not what its task makes is refused, with the
 * reason, and the task leased again; the next good one ends the job. */
Test(domain_svc, a_result_that_is_not_what_the_task_makes_is_refused_and_leased_again)
{
    const char *bind = endpoint();
    pthread_t th;
    svc_peer_t w;
    coord_t *c = start(bind, false, false, &th);
    svc_peer_connect(&w, bind, "test");
    hello(&w, "w", NULL, 0);
    atomic_store(&result_rc, RW_EFORMAT);
    run_task(&w, c);
    msg_t m;
    cr_assert_eq(svc_peer_expect(&w, MSG_ERROR, &m, 3000), 0, "the result is refused");
    cr_assert_eq(m.error.code, RW_EFORMAT);
    cr_assert(strstr(m.error.text, "result refused: not what the task makes (test)"), "%s",
              m.error.text);
    msg_fini(&m);
    atomic_store(&result_rc, 0);
    cr_assert_eq(svc_peer_expect(&w, MSG_LEASE, &m, 3000), 0, "the task is leased again");
    cr_assert_eq(m.lease.attempt, 2);
    uint64_t task = m.lease.task;
    msg_fini(&m);
    msg_init(&m, MSG_RESULT);
    m.result.task = task;
    m.result.attempt = 2;
    m.result.artifact = put_in(coord_store(c), "the seed");
    cr_assert_eq(wire_send(w.w, NULL, &m, 0), 0);
    cr_assert_eq(svc_peer_expect(&w, MSG_SHUTDOWN, &m, 5000), 0, "the job ends on the good result");
    msg_fini(&m);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&w);
}

/* Whether artifact id comes to be in c's store (there) or out of it
 * within a second: the coordinator answers a moment before its store acts. */
static bool in_store(coord_t *c, uint64_t id, bool there)
{
    char path[STORE_PATH_MAX];
    store_path(coord_store(c), id, path, sizeof path);
    for (int i = 0; i < 1000; i++, usleep(1000))
        if ((access(path, F_OK) == 0) == there)
            return true;
    return false;
}

/* What a worker uploaded under a lease and no RESULT named is removed when
 * the lease ends; what the accepted RESULT names stays. */
Test(domain_svc, an_upload_no_result_names_is_removed_when_its_lease_ends)
{
    const char *bind = endpoint();
    const char *mine = rwt_path(rwt_dir, "w-cache");
    pthread_t th;
    svc_peer_t w;
    coord_t *c = start(bind, false, false, &th);
    svc_peer_connect(&w, bind, "test");
    hello(&w, "w", NULL, 0);
    msg_t m;
    cr_assert_eq(svc_peer_expect(&w, MSG_LEASE, &m, 3000), 0, "no lease");
    uint64_t task = m.lease.task;
    msg_fini(&m);
    uint64_t bad = put(mine, "an output the job refuses");
    cr_assert_gt(upload_for(&w, mine, bad, task, 1), 0);
    cr_assert(in_store(c, bad, true), "the upload never reached the store");
    atomic_store(&result_rc, RW_EFORMAT);
    msg_init(&m, MSG_RESULT);
    m.result.task = task, m.result.attempt = 1, m.result.artifact = bad;
    cr_assert_eq(wire_send(w.w, NULL, &m, 0), 0);
    cr_assert_eq(svc_peer_expect(&w, MSG_ERROR, &m, 3000), 0, "the result is refused");
    msg_fini(&m);
    cr_assert(in_store(c, bad, false), "the refused output is still in the store");

    atomic_store(&result_rc, 0);
    cr_assert_eq(svc_peer_expect(&w, MSG_LEASE, &m, 3000), 0, "the task is leased again");
    cr_assert_eq(m.lease.attempt, 2);
    msg_fini(&m);
    uint64_t stray = put(mine, "an upload it never names"), good = put(mine, "the seed");
    cr_assert_gt(upload_for(&w, mine, stray, task, 2), 0);
    cr_assert_gt(upload_for(&w, mine, good, task, 2), 0);
    msg_init(&m, MSG_RESULT);
    m.result.task = task, m.result.attempt = 2, m.result.artifact = good;
    cr_assert_eq(wire_send(w.w, NULL, &m, 0), 0);
    cr_assert_eq(svc_peer_expect(&w, MSG_SHUTDOWN, &m, 5000), 0, "the job ends on the good result");
    msg_fini(&m);
    pthread_join(th, NULL);
    cr_assert(in_store(c, good, true), "the result is gone");
    cr_assert(in_store(c, stray, false), "an upload no result named is still in the store");
    coord_destroy(&c);
    svc_peer_close(&w);
}
