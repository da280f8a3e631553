/* test_health.c — the health check: a coordinator and a router service
 * answer any client, a coordinator knows which workers are live, and each
 * binary's `health` subcommand exits 0 only for the answer a probe wants.
 */
#include "coord_cli.h"
#include "err.h"
#include "health.h"
#include "log.h"
#include "router_cli.h"
#include "svc_support.h"
#include "worker_cli.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "support.h"

TestSuite(health, .init = rwt_dir_setup, .fini = rwt_dir_teardown, .timeout = 120);

/* Runs a binary's main with argv {prog, args...}; returns its exit status. */
static int run_main(svc_main_fn fn, const char *prog, const char *const *args)
{
    char *argv[16] = {(char *)prog};
    int argc = 1;
    while (args[argc - 1] && argc < 15) {
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    return fn(argc, argv);
}

Test(health, nobody_answering_is_unhealthy_within_the_timeout)
{
    char ep[600], why[512];
    snprintf(ep, sizeof ep, "ipc://%s/nobody.sock", rwt_dir);
    msg_t rep;
    double t0 = rw_now_s();
    cr_assert_eq(health_ask(ep, NULL, NULL, 300, &rep, why, sizeof why), -ETIMEDOUT);
    double took = rw_now_s() - t0;
    cr_assert(took >= 0.29 && took < 2.0, "waited %.2f s for a 300 ms timeout", took);
    cr_assert(strstr(why, "no answer"), "%s", why);
    cr_assert_lt(health_ask("bogus://x", NULL, NULL, 300, &rep, why, sizeof why), 0);

    const char *a1[] = {"health", "--connect", ep, "--timeout-ms", "100", "--quiet", NULL};
    cr_assert_eq(run_main(coord_main, "rewire-coordinator", a1), 1);
    cr_assert_eq(run_main(router_main, "rewire-router", a1), 1);
    const char *a2[] = {"health", "--connect", ep, NULL};
    cr_assert_eq(run_main(worker_main, "rewire-worker", a2), 2, "a worker's health needs --id");
    const char *a3[] = {"health", "--timeout-ms", "x", NULL};
    cr_assert_eq(run_main(coord_main, "rewire-coordinator", a3), 2);
    const char *a4[] = {"health", "--bogus", NULL};
    cr_assert_eq(run_main(router_main, "rewire-router", a4), 2);
}

/* Asks until the answer about worker says live (or not); returns whether it did. */
static bool wait_worker(const char *ep, const char *worker, bool live, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        msg_t rep;
        char why[512];
        if (health_ask(ep, worker, NULL, 500, &rep, why, sizeof why) == 0) {
            bool is = rep.health_rep.worker_live;
            msg_fini(&rep);
            if (is == live)
                return true;
        }
        svc_sleep_ms(50);
    }
    return false;
}

Test(health, services_answer_and_the_coordinator_knows_its_live_workers)
{
    char state[600], bundles[600], coord[700], router[700], why[512];
    snprintf(state, sizeof state, "%s/state", rwt_dir);
    snprintf(bundles, sizeof bundles, "%s/out/bundles", rwt_dir);
    snprintf(coord, sizeof coord, "ipc://%s/coord.sock", rwt_dir);
    snprintf(router, sizeof router, "ipc://%s/router.sock", rwt_dir);
    cr_assert_eq(svc_prepare(state, 40), 0);
    /* a seed that trains for a long time: the job stays running */
    const char *cargs[] = {"serve",
                           "--state",
                           state,
                           "--out",
                           rwt_path(rwt_dir, "out"),
                           "--bind",
                           coord,
                           "--heartbeat-ms",
                           "100",
                           "--timeout-ms",
                           "500",
                           "--config",
                           svc_tiny_config(rwt_dir, 3, 10000000),
                           NULL};
    pid_t c = svc_spawn(coord_main, "rewire-coordinator", rwt_path(rwt_dir, "coord.log"), cargs);
    const char *rargs[] = {"--bind", router, "--bundles", bundles, NULL};
    pid_t r = svc_spawn(router_main, "rewire-router", rwt_path(rwt_dir, "router.log"), rargs);
    const char *wargs[] = {"--connect",    coord, "--id", "w1", "--cache", rwt_path(rwt_dir, "cw"),
                           "--timeout-ms", "500", NULL};
    pid_t w = svc_spawn(worker_main, "rewire-worker", rwt_path(rwt_dir, "w1.log"), wargs);

    if (!wait_worker(coord, "w1", true, 20000)) {
        svc_dump(rwt_path(rwt_dir, "coord.log"));
        cr_assert_fail("the coordinator never reported w1 live");
    }
    msg_t rep;
    cr_assert_eq(health_ask(coord, NULL, NULL, 2000, &rep, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(rep.health_rep.service, "coordinator");
    cr_assert_str_eq(rep.health_rep.state, "running");
    cr_assert_eq(rep.health_rep.workers, 1);
    cr_assert(rep.health_rep.has_tasks_total && rep.health_rep.tasks_total > 5);
    cr_assert_eq(rep.health_rep.tasks_done, 0, "the seed is still training");
    cr_assert_null(rep.health_rep.worker, "nobody asked about a worker");
    msg_fini(&rep);

    cr_assert_eq(health_ask(router, NULL, NULL, 2000, &rep, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(rep.health_rep.service, "router");
    cr_assert_str_eq(rep.health_rep.state, "serving");
    cr_assert_eq(rep.health_rep.bundles, 0, "no bundle yet");
    msg_fini(&rep);

    /* the subcommands: the right service answering is 0, the wrong one 1 */
    const char *ok_c[] = {"health", "--connect", coord, "--quiet", NULL};
    cr_assert_eq(run_main(coord_main, "rewire-coordinator", ok_c), 0);
    cr_assert_eq(run_main(router_main, "rewire-router", ok_c), 1, "a coordinator is no router");
    const char *ok_r[] = {"health", "--connect", router, "--quiet", NULL};
    cr_assert_eq(run_main(router_main, "rewire-router", ok_r), 0);
    cr_assert_eq(run_main(coord_main, "rewire-coordinator", ok_r), 1);
    const char *w1[] = {"health", "--connect", coord, "--id", "w1", "--quiet", NULL};
    cr_assert_eq(run_main(worker_main, "rewire-worker", w1), 0);
    const char *w2[] = {"health", "--connect", coord, "--id", "w2", "--quiet", NULL};
    cr_assert_eq(run_main(worker_main, "rewire-worker", w2), 1, "w2 never registered");

    /* a worker killed mid-task is not live once the coordinator's timeout passes */
    svc_kill(w);
    double t0 = rw_now_s();
    cr_assert(wait_worker(coord, "w1", false, 5000), "w1 is still reported live");
    cr_assert_lt(rw_now_s() - t0, 3.0, "w1 lost %.2f s after it died (timeout 0.5 s)",
                 rw_now_s() - t0);
    cr_assert_eq(run_main(worker_main, "rewire-worker", w1), 1);

    /* a stopped coordinator does not answer */
    kill(c, SIGTERM);
    cr_assert_geq(svc_wait(c, 10000), 0);
    const char *gone[] = {"health", "--connect", coord, "--timeout-ms", "300", "--quiet", NULL};
    cr_assert_eq(run_main(coord_main, "rewire-coordinator", gone), 1);
    svc_kill(r);
}
