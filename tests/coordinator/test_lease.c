/* test_lease.c — leasing ahead, taking a queued lease back for an idle
 * worker, and a task no connected worker can take, on a coordinator
 * service running a two-task plan in a thread, with the test as the
 * workers. */
#include "err.h"
#include "log.h"
#include "service.h"
#include "store.h"
#include "svc_peer.h"
#include "wire.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static const struct coord_job_ops two_ops = {.start = two_start, .lease = svc_empty_lease};

Test(lease, a_busy_worker_leases_ahead_and_an_idle_one_takes_the_queued_lease)
{
    char bind[700];
    snprintf(bind, sizeof bind, "ipc://%s/c.sock", rwt_dir);
    coord_opts_t o = {.bind = bind, .state_dir = rwt_dir, .heartbeat_ms = 100};
    pthread_t th;
    coord_t *c = svc_coord_thread(&o, &two_ops, &th, NULL);

    svc_peer_t a, b;
    svc_peer_open(&a, bind, "a", "train");
    msg_t m;
    cr_assert_eq(svc_peer_expect(&a, MSG_LEASE, &m, 3000), 0);
    cr_assert_eq(m.lease.task, 1);
    msg_fini(&m);
    cr_assert_eq(svc_peer_expect(&a, MSG_LEASE, &m, 3000), 0, "a second lease, ahead");
    cr_assert_eq(m.lease.task, 2);
    msg_fini(&m);
    /* a runs task 1 (step 0 says so); task 2 waits in its queue */
    msg_init(&m, MSG_PROGRESS);
    m.progress.task = 1;
    m.progress.attempt = 1;
    m.progress.steps = 1;
    cr_assert_eq(wire_send(a.w, NULL, &m, 0), 0);

    svc_peer_open(&b, bind, "b", "train");
    cr_assert_eq(svc_peer_expect(&a, MSG_CANCEL, &m, 3000), 0, "the queued lease is taken back");
    cr_assert_eq(m.cancel.task, 2);
    cr_assert_eq(m.cancel.attempt, 1);
    msg_fini(&m);
    cr_assert_eq(svc_peer_expect(&b, MSG_LEASE, &m, 3000), 0, "and leased to the idle worker");
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
    svc_peer_close(&a);
    svc_peer_close(&b);
}

/* The seed, then the gates on it, which only a "router" peer runs. */
static int gated_start(void *job, coord_t *c)
{
    (void)job;
    uint64_t seed = coord_add_task(c, MSG_TASK_SEED, NULL, "train", NULL, 0);
    return seed && coord_add_task(c, MSG_TASK_GATES, NULL, "router", &seed, 1) ? 0 : RW_EINVAL;
}

static const struct coord_job_ops gated_ops = {.start = gated_start, .lease = svc_empty_lease};

/* The status's waiting_for_cap (NULL when it has none; caller decrefs). */
static json_t *waiting_for_cap(void)
{
    json_t *st = json_load_file(rwt_path(rwt_dir, "status.json"), 0, NULL);
    json_t *w = json_incref(json_object_get(st, "waiting_for_cap"));
    json_decref(st);
    return w;
}

/* The router service gone, the gates wait for a peer with "router": that
 * is said once, and in the status, until one connects and takes them. */
Test(lease, a_task_no_connected_worker_can_take_is_said_until_one_comes)
{
    char bind[700], log[700];
    snprintf(bind, sizeof bind, "ipc://%s/c.sock", rwt_dir);
    snprintf(log, sizeof log, "%s", rwt_path(rwt_dir, "coordinator.log"));
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    coord_opts_t o = {.bind = bind, .state_dir = rwt_dir, .heartbeat_ms = 100, .timeout_ms = 400};
    pthread_t th;
    coord_t *c = svc_coord_thread(&o, &gated_ops, &th, NULL);

    svc_peer_t a, r;
    svc_peer_open(&a, bind, "a", "train");
    msg_t m;
    cr_assert_eq(svc_peer_expect(&a, MSG_LEASE, &m, 3000), 0);
    cr_assert_eq(m.lease.task, 1);
    msg_fini(&m);
    svc_peer_result(&a, coord_store(c), 1, 1);

    json_t *w = NULL;
    for (int i = 0; i < 300 && !w; i++, usleep(10000))
        w = waiting_for_cap();
    json_t *t = json_array_get(w, 0);
    cr_assert_not_null(t, "the status never says what the job waits for");
    cr_assert_eq(json_integer_value(json_object_get(t, "task")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(t, "kind")), "gates");
    cr_assert_str_eq(json_string_value(json_object_get(t, "cap")), "router");
    cr_assert_eq(json_array_size(w), 1);
    json_decref(w);
    usleep(600 * 1000); /* heartbeats go by: said once, not at each */
    fflush(stderr);
    cr_assert_eq(svc_count_in_file(log, "task 2 (gates) needs a worker with the router capability"),
                 1);

    svc_peer_open(&r, bind, "r", "router");
    cr_assert_eq(svc_peer_expect(&r, MSG_LEASE, &m, 3000), 0, "the router peer takes the gates");
    cr_assert_eq(m.lease.task, 2);
    msg_fini(&m);
    w = waiting_for_cap();
    for (int i = 0; i < 300 && w; i++, usleep(10000)) {
        json_decref(w);
        w = waiting_for_cap();
    }
    cr_assert_null(w, "the status still waits once a router peer is here");
    coord_stop(c);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&a);
    svc_peer_close(&r);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}
