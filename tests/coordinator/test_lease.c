/* test_lease.c — leasing ahead, and taking a queued lease back for an idle
 * worker, on a coordinator service running a two-task plan in a thread,
 * with the test as both workers. */
#include "err.h"
#include "service.h"
#include "wire.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "support.h"

TestSuite(lease, .init = rwt_dir_setup, .fini = rwt_dir_teardown, .timeout = 30);

static int two_start(void *job, coord_t *c)
{
    (void)job;
    return coord_add_task(c, MSG_TASK_SEED, NULL, "train", NULL, 0) &&
                   coord_add_task(c, MSG_TASK_SEED, NULL, "train", NULL, 0)
               ? 0
               : RW_EINVAL;
}

static int two_lease(void *job, const plan_task_t *t, msg_lease_t *l)
{
    (void)job, (void)t;
    l->config = "{}";
    return 0;
}

static const struct coord_job_ops two_ops = {.start = two_start, .lease = two_lease};

static void *run(void *arg)
{
    coord_run(arg);
    return NULL;
}

typedef struct peer {
    void *ctx, *sock;
    wire_t *w;
} peer_t;

static void peer_open(peer_t *p, const char *endpoint, const char *id)
{
    p->ctx = zmq_ctx_new();
    p->sock = zmq_socket(p->ctx, ZMQ_DEALER);
    int ms = 3000, zero = 0, err;
    zmq_setsockopt(p->sock, ZMQ_RCVTIMEO, &ms, sizeof ms);
    zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero);
    p->w = wire_new(p->sock, id, &err);
    cr_assert_eq(zmq_connect(p->sock, endpoint), 0);
    msg_t m;
    msg_init(&m, MSG_HELLO);
    const char *caps[] = {"train"};
    m.hello.worker_id = id;
    m.hello.caps = (msg_strs_t){caps, 1};
    m.hello.threads = 1;
    cr_assert_eq(wire_send(p->w, NULL, &m, 0), 0);
}

static void peer_close(peer_t *p)
{
    wire_destroy(&p->w);
    zmq_close(p->sock);
    zmq_ctx_term(p->ctx);
}

static int expect(peer_t *p, msg_type_t type, msg_t *m)
{
    for (int i = 0; i < 100; i++) {
        int rc = wire_recv(p->w, m, NULL, 0);
        if (rc == -EAGAIN)
            return -1;
        if (rc == 0 && m->type == type)
            return 0;
        if (rc == 0)
            msg_fini(m);
    }
    return -1;
}

Test(lease, a_busy_worker_leases_ahead_and_an_idle_one_takes_the_queued_lease)
{
    char bind[700], why[256];
    snprintf(bind, sizeof bind, "ipc://%s/c.sock", rwt_dir);
    coord_opts_t o = {.bind = bind, .state_dir = rwt_dir, .heartbeat_ms = 100};
    coord_t *c;
    cr_assert_eq(coord_new(&o, &two_ops, NULL, &c, why, sizeof why), 0, "%s", why);
    pthread_t th;
    pthread_create(&th, NULL, run, c);

    peer_t a, b;
    peer_open(&a, bind, "a");
    msg_t m;
    cr_assert_eq(expect(&a, MSG_LEASE, &m), 0);
    cr_assert_eq(m.lease.task, 1);
    msg_fini(&m);
    cr_assert_eq(expect(&a, MSG_LEASE, &m), 0, "a second lease, ahead");
    cr_assert_eq(m.lease.task, 2);
    msg_fini(&m);
    /* a runs task 1 (step 0 says so); task 2 waits in its queue */
    msg_init(&m, MSG_PROGRESS);
    m.progress.task = 1;
    m.progress.attempt = 1;
    m.progress.steps = 1;
    cr_assert_eq(wire_send(a.w, NULL, &m, 0), 0);

    peer_open(&b, bind, "b");
    cr_assert_eq(expect(&a, MSG_CANCEL, &m), 0, "the queued lease is taken back");
    cr_assert_eq(m.cancel.task, 2);
    cr_assert_eq(m.cancel.attempt, 1);
    msg_fini(&m);
    cr_assert_eq(expect(&b, MSG_LEASE, &m), 0, "and leased to the idle worker");
    cr_assert_eq(m.lease.task, 2);
    cr_assert_eq(m.lease.attempt, 2);
    msg_fini(&m);
    /* the running task is not taken back */
    msg_init(&m, MSG_ERROR);
    m.error.code = -ECANCELED;
    m.error.text = "cancelled";
    m.error.task = 2;
    m.error.has_task = true;
    m.error.attempt = 1;
    m.error.has_attempt = true;
    cr_assert_eq(wire_send(a.w, NULL, &m, 0), 0);
    const plan_t *p = coord_plan(c);
    coord_stop(c);
    pthread_join(th, NULL);
    cr_assert_eq(plan_task(p, 1)->attempt, 1);
    cr_assert_eq(plan_task(p, 1)->state, PLAN_LEASED);
    cr_assert_str_eq(plan_task(p, 2)->worker, "b");
    coord_destroy(&c);
    peer_close(&a);
    peer_close(&b);
}
