/* test_stop.c — whom a coordinator tells to go, and when: a coordinator
 * service running a one-task plan in a thread, the test as its peers.
 *
 * A stop (a signal) is not the end of the job: the peers are told to go
 * only with stop_peers (`rewire run`, which owns them), else they wait for
 * the coordinator started next. A job done and kept serving tells its
 * plain workers it is done (nothing it does later needs them), and keeps
 * its router peers. And with the processes: a worker outlives a coordinator
 * stopped by SIGTERM and registers with the one started next.
 */
#include "coord_cli.h"
#include "err.h"
#include "log.h"
#include "service.h"
#include "store.h"
#include "svc_peer.h"
#include "svc_support.h"
#include "wire.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

TestSuite(stop, .init = rwt_dir_setup, .fini = rwt_dir_teardown, .timeout = 30);

static int ok_finish(void *job, const plan_t *p, char *why, size_t whylen)
{
    (void)job, (void)p, (void)why, (void)whylen;
    return 0;
}

static const struct coord_job_ops ops = {
    .start = svc_one_task_start, .lease = svc_empty_lease, .finish = ok_finish};

static int run_rc;

/* Whether a SHUTDOWN comes within ms; its reason into why. */
static bool told_to_go(svc_peer_t *p, int ms, char *why, size_t n)
{
    msg_t m;
    if (svc_peer_expect(p, MSG_SHUTDOWN, &m, ms) < 0)
        return false;
    snprintf(why, n, "%s", m.shutdown.reason);
    msg_fini(&m);
    return true;
}

static coord_t *start(bool keep_serving, bool stop_peers, pthread_t *th, char *bind, size_t n)
{
    snprintf(bind, n, "ipc://%s/c.sock", rwt_dir);
    coord_opts_t o = {.bind = bind,
                      .state_dir = rwt_dir,
                      .heartbeat_ms = 100,
                      .timeout_ms = 2000,
                      .keep_serving = keep_serving,
                      .stop_peers = stop_peers};
    return svc_coord_thread(&o, &ops, th, &run_rc);
}

/* A peer holding the lease of the one task, and a SIGTERM to this process,
 * which the coordinator's loop takes. Returns whether the peer was told to
 * go; the coordinator has ended, with 0. */
static bool signalled(bool stop_peers, char *why, size_t n)
{
    char bind[700];
    pthread_t th;
    coord_t *c = start(false, stop_peers, &th, bind, sizeof bind);
    svc_peer_t w;
    svc_peer_open(&w, bind, "w", "train");
    msg_t m;
    cr_assert_eq(svc_peer_expect(&w, MSG_LEASE, &m, 3000), 0, "no lease");
    msg_fini(&m);
    kill(getpid(), SIGTERM);
    bool told = told_to_go(&w, 1500, why, n);
    pthread_join(th, NULL);
    cr_assert_eq(run_rc, 0, "a signal stops the coordinator cleanly");
    coord_destroy(&c);
    svc_peer_close(&w);
    return told;
}

/* The workers and the router service under a supervisor wait for the
 * coordinator started next (it carries on from its journal): a SHUTDOWN
 * would end them for good. */
Test(stop, a_signal_tells_no_peer_to_go)
{
    char why[MSG_REASON_MAX] = "";
    cr_assert_not(signalled(false, why, sizeof why), "the worker was told to go: %s", why);
}

Test(stop, a_signal_with_stop_peers_tells_every_peer_to_go)
{
    char why[MSG_REASON_MAX] = "";
    cr_assert(signalled(true, why, sizeof why), "rewire run's workers are told");
    cr_assert_str_eq(why, "the coordinator was stopped");
}

/* Kept serving, the job done: the worker that cannot serve is told (a
 * Kubernetes Job's pod completes), the router peer stays, and a plain
 * worker that comes later is told at once. */
Test(stop, a_job_done_and_kept_serving_tells_its_plain_workers_only)
{
    char bind[700], why[MSG_REASON_MAX] = "";
    pthread_t th;
    coord_t *c = start(true, false, &th, bind, sizeof bind);
    svc_peer_t w, r, late, r2;
    svc_peer_open(&r, bind, "r", "router");
    svc_peer_open(&w, bind, "w", "train");
    msg_t m;
    cr_assert_eq(svc_peer_expect(&w, MSG_LEASE, &m, 3000), 0, "no lease");
    uint64_t task = m.lease.task, attempt = m.lease.attempt;
    msg_fini(&m);
    svc_peer_result(&w, coord_store(c), task, (uint32_t)attempt);

    cr_assert(told_to_go(&w, 3000, why, sizeof why), "the train worker is never released");
    cr_assert_str_eq(why, "the job is done");
    cr_assert_not(told_to_go(&r, 500, why, sizeof why), "the router peer was told: %s", why);
    svc_peer_open(&late, bind, "late", "train");
    cr_assert(told_to_go(&late, 3000, why, sizeof why), "a worker that comes late waits forever");
    cr_assert_str_eq(why, "the job is done");
    svc_peer_open(&r2, bind, "r2", "router");
    cr_assert_not(told_to_go(&r2, 500, why, sizeof why), "a router peer coming late was told");

    coord_stop(c);
    pthread_join(th, NULL);
    coord_destroy(&c);
    svc_peer_close(&w);
    svc_peer_close(&r);
    svc_peer_close(&late);
    svc_peer_close(&r2);
}

/* Waits up to ms for text to be in the file at path n times. */
static bool await_text(const char *path, const char *text, int n, int ms)
{
    for (int waited = 0; waited < ms; waited += 50, svc_sleep_ms(50))
        if (svc_count_in_file(path, text) >= n)
            return true;
    return false;
}

/* rewire-coordinator serve on this test's state, its log into log (no
 * router service comes, so the job never ends by itself). */
static pid_t serve(const char *log)
{
    static char state[700], out[700], bind[700];
    snprintf(state, sizeof state, "%s/state", rwt_dir);
    snprintf(out, sizeof out, "%s/out", rwt_dir);
    snprintf(bind, sizeof bind, "ipc://%s/c.sock", rwt_dir);
    const char *cfg = svc_tiny_config(rwt_dir, 3, 3);
    const char *args[] = {"serve", "--state",        state, "--out",    out, "--bind",
                          bind,    "--heartbeat-ms", "100", "--config", cfg, NULL};
    return svc_spawn(coord_main, "rewire-coordinator", rwt_path(rwt_dir, log), args);
}

/* A coordinator stopped under a supervisor (systemd, Kubernetes) comes
 * back and carries on from its journal: its worker, there all along,
 * registers again rather than exiting 0 for good. */
Test(stop, a_worker_outlives_a_stopped_coordinator_and_registers_with_the_next, .timeout = 120)
{
    char state[700], bind[700], wlog[700];
    snprintf(state, sizeof state, "%s/state", rwt_dir);
    snprintf(bind, sizeof bind, "ipc://%s/c.sock", rwt_dir);
    cr_assert_eq(svc_prepare(state, 40), 0);
    pid_t c = serve("c1.log");
    cr_assert(svc_wait_file(rwt_path(state, "status.json"), 30000), "the coordinator never served");
    pid_t w = svc_worker(rwt_dir, bind, "w1", "train", "1000", NULL);
    snprintf(wlog, sizeof wlog, "%s", rwt_path(rwt_dir, "w1.log"));
    bool up = await_text(wlog, "registered with", 1, 10000);
    kill(c, SIGTERM);
    int rc = svc_wait(c, 10000);
    int wrc = svc_wait(w, 1500); /* -1: still running */
    if (!up || rc != 0 || wrc != -1) {
        svc_dump(rwt_path(rwt_dir, "c1.log"));
        svc_dump(wlog);
    }
    cr_assert(up, "the worker never registered");
    cr_assert_eq(rc, 0, "a signal stops the coordinator cleanly");
    cr_assert_eq(wrc, -1, "the worker exited (%d) with its coordinator", wrc);
    cr_assert_eq(svc_count_in_file(wlog, "shutting down"), 0);

    c = serve("c2.log");
    bool again = await_text(wlog, "registered with", 2, 20000);
    kill(c, SIGTERM);
    rc = svc_wait(c, 10000);
    if (!again || rc != 0) {
        svc_dump(rwt_path(rwt_dir, "c2.log"));
        svc_dump(wlog);
    }
    svc_kill(w);
    cr_assert(again, "the worker never registered with the coordinator started next");
    cr_assert_eq(rc, 0);
}
