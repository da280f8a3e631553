/* test_job.c — whole jobs across processes on loopback (ipc://).
 *
 * The coordinator and workers run in forked children through the same
 * functions their binaries' mains call, on tiny models (svc_tiny_config).
 */
#include "checkpoint.h"
#include "coord_cli.h"
#include "curve.h"
#include "err.h"
#include "health.h"
#include "job_int.h"
#include "worker_cli.h"
#include "svc_support.h"
#include "store.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

TestSuite(job, .init = rwt_dir_setup, .fini = rwt_dir_teardown, .timeout = 120);

static char endpoint[600], state[600], out[600];

static void setup_dirs(void)
{
    snprintf(endpoint, sizeof endpoint, "ipc://%s/coord.sock", rwt_dir);
    snprintf(state, sizeof state, "%s/state", rwt_dir);
    snprintf(out, sizeof out, "%s/out", rwt_dir);
    cr_assert_eq(svc_prepare(state, 40), 0);
}

/* Tiny models; every task takes steps steps, the seed seed_steps; the
 * flags in more (NULL-terminated, may be NULL) too. */
static pid_t start_coordinator_with(int steps, int seed_steps, const char *const *more)
{
    const char *cfg = svc_tiny_config(rwt_dir, steps, seed_steps);
    const char *args[32] = {
        "serve",          "--state", state,          "--out", out,        "--bind", endpoint,
        "--heartbeat-ms", "100",     "--timeout-ms", "600",   "--config", cfg,      NULL};
    size_t n = 14;
    for (size_t i = 0; more && more[i] && n < 31; i++)
        args[n++] = more[i];
    args[n] = NULL;
    return svc_spawn(coord_main, "rewire-coordinator", rwt_path(rwt_dir, "coordinator.log"), args);
}

static pid_t start_coordinator_steps(int steps, int seed_steps)
{
    return start_coordinator_with(steps, seed_steps, NULL);
}

static pid_t start_worker_with(const char *id, const char *caps, const char *const *more)
{
    return svc_worker(rwt_dir, endpoint, id, caps, "1000", more);
}

static pid_t start_worker(const char *id, const char *caps)
{
    return start_worker_with(id, caps, NULL);
}

static pid_t start_coordinator(int seed_steps)
{
    return start_coordinator_steps(3, seed_steps);
}

/* A job on the test's prepared state, driven by records the test applies. */
static coord_job_t *open_job(void)
{
    setup_dirs();
    coord_job_opts_t o = {.state_dir = state, .out_dir = out};
    coord_job_t *j = NULL;
    char why[256] = "";
    cr_assert_eq(coord_job_new(&o, &j, why, sizeof why), 0, "%s", why);
    return j;
}

static void dump_all(void)
{
    svc_dump(rwt_path(rwt_dir, "coordinator.log"));
    svc_dump(rwt_path(rwt_dir, "w1.log"));
    svc_dump(rwt_path(rwt_dir, "w2.log"));
    svc_dump(rwt_path(rwt_dir, "r1.log"));
}

static void check_outputs(void)
{
    const char *kinds[] = {"baseline", "moe", "router", "adapter"};
    for (int i = 0; i < 4; i++) {
        char p[800];
        snprintf(p, sizeof p, "%s/bundles/%s/manifest.json", out, kinds[i]);
        cr_assert_eq(access(p, F_OK), 0, "no %s", p);
    }
    cr_assert_eq(access(rwt_path(out, "report.md"), F_OK), 0);
    json_t *r = json_load_file(rwt_path(state, "results.json"), 0, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(json_array_size(json_object_get(r, "tasks")), 2 + 3 * 5 + 2);
    cr_assert_eq(json_array_size(json_object_get(r, "bundles")), 4);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(r, "job"), "domains")), 5);
    cr_assert_eq(json_array_size(json_object_get(r, "stages")), 6);
    json_decref(r);
}

/* The deps of every planned task of kind in the journal, checked against
 * want (the number of tasks each must wait for); returns how many. */
static int planned_deps(const char *kind, size_t want)
{
    char *journal = rwt_read_file(rwt_path(state, "journal.jsonl"), NULL);
    cr_assert_not_null(journal);
    int n = 0;
    for (char *line = strtok(journal, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *rec = json_loads(line, 0, NULL);
        cr_assert_not_null(rec, "journal line: %s", line);
        const char *ev = json_string_value(json_object_get(rec, "ev"));
        const char *k = json_string_value(json_object_get(rec, "kind"));
        if (ev && strcmp(ev, "task") == 0 && k && strcmp(k, kind) == 0) {
            cr_assert_eq(json_array_size(json_object_get(rec, "deps")), want, "%s", line);
            n++;
        }
        json_decref(rec);
    }
    free(journal);
    return n;
}

Test(job, runs_end_to_end_over_ipc)
{
    setup_dirs();
    pid_t c = start_coordinator(3);
    pid_t w1 = start_worker("w1", "train"), w2 = start_worker("w2", "train"),
          r1 = start_worker("r1", "router");
    int rc = svc_wait(c, 60000);
    if (rc != 0 || getenv("RWT_DUMP"))
        dump_all();
    cr_assert_eq(rc, 0, "the coordinator exits 0 (got %d)", rc);
    int a = svc_wait(w1, 5000), b = svc_wait(w2, 5000), d = svc_wait(r1, 5000);
    svc_kill(w1), svc_kill(w2), svc_kill(r1);
    cr_assert(a == 0 && b == 0 && d == 0, "workers shut down cleanly: %d %d %d", a, b, d);
    check_outputs();
    /* domain models start from scratch, so they do not wait for the seed;
     * experts and adapters branch from it */
    cr_assert_eq(planned_deps("domain_rm", 0), 5);
    cr_assert_eq(planned_deps("expert", 1), 5);
    cr_assert_eq(planned_deps("adapter", 1), 5);
}

/* How many artifacts (files named by 16 hex digits) folder dir holds. */
static int artifacts_in(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strlen(e->d_name) == 16 && strspn(e->d_name, "0123456789abcdef") == 16;
    closedir(d);
    return n;
}

/* A worker whose cache may hold nothing beyond what its tasks use still
 * runs the whole job: what a lease, a training or an upload needs stays
 * until it is done with, and the rest goes, from earlier jobs too. */
Test(job, a_worker_with_no_room_in_its_cache_still_finishes_the_job)
{
    setup_dirs();
    char cache[700], old[800];
    snprintf(cache, sizeof cache, "%s/cache-w1", rwt_dir);
    store_t *st = store_open(cache, NULL);
    uint64_t stale;
    cr_assert_eq(store_put_mem(st, "an earlier job's model", 22, &stale), 0);
    store_path(st, stale, old, sizeof old);
    store_destroy(&st);
    pid_t c = start_coordinator(3);
    const char *args[] = {"--connect",     endpoint,  "--id", "w1",          "--caps",
                          "train",         "--cache", cache,  "--cache-max", "1",
                          "--cache-grace", "0",       NULL};
    pid_t w1 = svc_spawn(worker_main, "rewire-worker", rwt_path(rwt_dir, "w1.log"), args);
    pid_t r1 = start_worker("r1", "router");
    int rc = svc_wait(c, 60000);
    if (rc != 0 || getenv("RWT_DUMP"))
        dump_all();
    cr_assert_eq(rc, 0, "the coordinator exits 0 (got %d)", rc);
    int a = svc_wait(w1, 5000), b = svc_wait(r1, 5000);
    svc_kill(w1), svc_kill(r1);
    cr_assert(a == 0 && b == 0, "workers shut down cleanly: %d %d", a, b);
    check_outputs();
    cr_assert_neq(access(old, F_OK), 0, "the earlier job's artifact is still there");
    /* 17 tasks ran there; the last one's output may stay */
    int left = artifacts_in(cache), kept = artifacts_in(rwt_path(rwt_dir, "cache-r1"));
    cr_assert_leq(left, 1, "w1's cache holds %d artifacts", left);
    cr_assert_geq(kept, 3, "the router worker, with no limit, holds only %d", kept);
}

/* A key pair NAME.key, NAME.pub under the test's folder; the path of
 * NAME.EXT into buf. */
static const char *key_path(const char *name, const char *ext, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s.%s", rwt_dir, name, ext);
    return buf;
}

static void new_key(const char *name)
{
    char stem[700], why[512];
    snprintf(stem, sizeof stem, "%s/%s", rwt_dir, name);
    cr_assert_eq(curve_key_new(stem, why, sizeof why), 0, "%s", why);
}

/* With --key and --allow the coordinator speaks CURVE and admits only the
 * listed workers: one with another key, and one without CURVE, never get
 * a task, and the refused key is logged; the listed ones run the job. A
 * health probe needs the coordinator's key too. */
Test(job, with_curve_keys_only_the_admitted_workers_take_part)
{
    setup_dirs();
    const char *names[] = {"coord", "w1", "r1", "x1"};
    for (int i = 0; i < 4; i++)
        new_key(names[i]);
    char allow[700], p[4][800], coord_key[800], coord_pub[800];
    snprintf(allow, sizeof allow, "%s/allow", rwt_dir);
    cr_assert_eq(mkdir(allow, 0755), 0);
    for (int i = 1; i < 3; i++) { /* w1 and r1, not x1 */
        char *text = rwt_read_file(key_path(names[i], "pub", p[i], sizeof p[i]), NULL);
        snprintf(p[i], sizeof p[i], "%s/%s.pub", allow, names[i]);
        rwt_write_file(p[i], text, strlen(text));
        free(text);
    }
    key_path("coord", "key", coord_key, sizeof coord_key);
    key_path("coord", "pub", coord_pub, sizeof coord_pub);
    const char *cfg = svc_tiny_config(rwt_dir, 3, 3);
    const char *cargs[] = {"serve",  "--state",        state,     "--out",        out,   "--bind",
                           endpoint, "--heartbeat-ms", "100",     "--timeout-ms", "600", "--config",
                           cfg,      "--key",          coord_key, "--allow",      allow, NULL};
    pid_t x1 = -1, p1 = -1, k1 = -1;
    {
        /* the strangers first: they knock while the job waits for workers */
        char key[800];
        const char *xm[] = {"--server-key", coord_pub, "--key", key_path("x1", "key", key, 800),
                            NULL};
        const char *km[] = {"--server-key", coord_pub, NULL}; /* no key of its own */
        x1 = start_worker_with("x1", "train", xm);
        p1 = start_worker_with("p1", "train", NULL);
        k1 = start_worker_with("k1", "train", km);
    }
    pid_t c =
        svc_spawn(coord_main, "rewire-coordinator", rwt_path(rwt_dir, "coordinator.log"), cargs);
    cr_assert(svc_wait_file(rwt_path(state, "status.json"), 30000), "the coordinator never served");
    msg_t rep;
    char why[512];
    curve_opts_t own = {.key_file = coord_key}, none = {0};
    cr_assert_eq(health_ask(endpoint, NULL, &own, 3000, &rep, why, sizeof why), 0, "%s", why);
    msg_fini(&rep);
    cr_assert_eq(health_ask(endpoint, NULL, &none, 300, &rep, why, sizeof why), -ETIMEDOUT,
                 "a probe without CURVE got an answer");
    cr_assert(strstr(why, "the handshake failed (does the service use CURVE?"), "%s", why);
    svc_sleep_ms(500); /* the strangers have knocked by now */
    char kw[800], kr[800];
    const char *wm[] = {"--server-key", coord_pub, "--key", key_path("w1", "key", kw, 800), NULL};
    const char *rm[] = {"--server-key", coord_pub, "--key", key_path("r1", "key", kr, 800), NULL};
    pid_t w1 = start_worker_with("w1", "train", wm), r1 = start_worker_with("r1", "router", rm);
    int rc = svc_wait(c, 60000);
    if (rc != 0 || getenv("RWT_DUMP"))
        dump_all();
    cr_assert_eq(rc, 0, "the coordinator exits 0 (got %d)", rc);
    int a = svc_wait(w1, 5000), b = svc_wait(r1, 5000);
    svc_kill(w1), svc_kill(r1), svc_kill(x1), svc_kill(p1), svc_kill(k1);
    cr_assert(a == 0 && b == 0, "admitted workers shut down cleanly: %d %d", a, b);
    check_outputs();
    char *results = rwt_read_file(rwt_path(state, "results.json"), NULL);
    cr_assert(!strstr(results, "\"x1\"") && !strstr(results, "\"p1\"") &&
                  !strstr(results, "\"k1\""),
              "a stranger took part: %s", results);
    free(results);
    curve_key_t x;
    cr_assert_eq(curve_key_load(key_path("x1", "pub", kw, 800), false, &x, why, sizeof why), 0);
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL), want[200];
    snprintf(want, sizeof want, "its key %s is not in --allow", x.pub);
    cr_assert(strstr(log, want), "the refusal is not logged:\n%s", log);
    free(log);
    char *xlog = rwt_read_file(rwt_path(rwt_dir, "x1.log"), NULL);
    cr_assert(
        strstr(xlog, "it refused this key (is its public half in the coordinator's --allow?)"),
        "the stranger is not told:\n%s", xlog);
    free(xlog);
    xlog = rwt_read_file(rwt_path(rwt_dir, "k1.log"), NULL);
    cr_assert(strstr(xlog, "this client has none of its own: give --key"),
              "a worker without --key is not told to give one:\n%s", xlog);
    free(xlog);
}

/* The worker (id) holds a task at a step > 0, per the status file. */
static bool busy_mid_task(const char *id)
{
    json_t *st = json_load_file(rwt_path(state, "status.json"), 0, NULL);
    bool busy = false;
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(st, "workers"), i, w)
    {
        if (strcmp(json_string_value(json_object_get(w, "id")), id) == 0 &&
            json_integer_value(json_object_get(w, "step")) > 2)
            busy = true;
    }
    json_decref(st);
    return busy;
}

Test(job, a_worker_killed_mid_task_loses_it_to_another)
{
    setup_dirs();
    pid_t c = start_coordinator(2000);
    pid_t w1 = start_worker("w1", "train"), r1 = start_worker("r1", "router");
    bool seen = false;
    for (int i = 0; i < 500 && !seen; i++) {
        svc_sleep_ms(10);
        seen = busy_mid_task("w1");
    }
    cr_assert(seen, "w1 never got going");
    kill(w1, SIGKILL);
    svc_wait(w1, 1000);
    pid_t w2 = start_worker("w2", "train");
    int rc = svc_wait(c, 60000);
    if (rc != 0 || getenv("RWT_DUMP"))
        dump_all();
    cr_assert_eq(rc, 0, "the coordinator exits 0 (got %d)", rc);
    svc_wait(w2, 5000), svc_wait(r1, 5000);
    svc_kill(w2), svc_kill(r1);
    check_outputs();
    json_t *r = json_load_file(rwt_path(state, "results.json"), 0, NULL);
    json_t *seed = json_array_get(json_object_get(r, "tasks"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(seed, "kind")), "seed");
    cr_assert_eq(json_integer_value(json_object_get(seed, "attempts")), 2, "leased again");
    cr_assert_str_eq(json_string_value(json_object_get(seed, "worker")), "w2");
    json_decref(r);
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(strstr(log, "worker w1 lost"), "%s", log);
    free(log);
}

static long tasks_done(void)
{
    json_t *st = json_load_file(rwt_path(state, "status.json"), 0, NULL);
    long n = (long)json_integer_value(json_object_get(json_object_get(st, "tasks"), "done"));
    json_decref(st);
    return n;
}

/* How many records of event ev the journal holds. */
static int journaled(const char *ev)
{
    char *journal = rwt_read_file(rwt_path(state, "journal.jsonl"), NULL), pat[64];
    snprintf(pat, sizeof pat, "\"ev\":\"%s\"", ev);
    int n = 0;
    for (char *p = journal; p && (p = strstr(p, pat)); p++)
        n++;
    free(journal);
    return n;
}

/* Killed twice: the second run leases again what the first had leased, and
 * the third must replay both leases of such a task (the second run's
 * requeue at its start is not journaled). */
Test(job, a_restarted_coordinator_carries_on_from_its_journal)
{
    setup_dirs();
    pid_t c = start_coordinator_steps(1500, 1500);
    pid_t w1 = start_worker("w1", "train"), r1 = start_worker("r1", "router");
    long done = 0;
    /* waits are bounds, not speed targets: up to 90 s each, as a sanitizer
     * build beside another test runs the job several times slower */
    for (int i = 0; i < 18000 && done < 5; i++) {
        svc_sleep_ms(5);
        done = tasks_done();
    }
    if (done < 5)
        dump_all();
    cr_assert_geq(done, 5, "the job got going");
    kill(c, SIGKILL);
    svc_wait(c, 2000);
    cr_assert_lt(tasks_done(), 19, "killed while tasks were left (they take 1,500 steps)");
    int leases = journaled("lease");
    c = start_coordinator_steps(1500, 1500);
    for (int i = 0; i < 45000 && journaled("lease") < leases + 1; i++)
        svc_sleep_ms(2); /* the workers reconnect after a backoff */
    if (journaled("lease") < leases + 1)
        dump_all();
    cr_assert_geq(journaled("lease"), leases + 1, "the second run leased again");
    kill(c, SIGKILL);
    svc_wait(c, 2000);
    c = start_coordinator_steps(1500, 1500);
    int rc = svc_wait(c, 120000);
    if (rc != 0 || getenv("RWT_DUMP"))
        dump_all();
    cr_assert_eq(rc, 0, "the restarted coordinator finishes the job (got %d)", rc);
    svc_wait(w1, 5000), svc_wait(r1, 5000);
    svc_kill(w1), svc_kill(r1);
    check_outputs();
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(strstr(log, "replayed"), "%s", log);
    free(log);
    /* what was done before the crash was not done again: one "done" each */
    char *journal = rwt_read_file(rwt_path(state, "journal.jsonl"), NULL);
    int dones = 0;
    for (char *p = journal; (p = strstr(p, "\"ev\":\"done\"")); p++)
        dones++;
    free(journal);
    cr_assert_eq(dones, 19, "every task done exactly once across the restarts");
}

/* The job takes a result only when its artifact says it is the output of
 * that task: kind and domain, from the metadata every task writes. */
Test(job, a_result_must_be_what_its_task_makes)
{
    rw_model_config_t cfg;
    rw_model_config_default(&cfg);
    cfg.d_model = 16, cfg.n_heads = 2, cfg.n_layers = 1, cfg.d_ff = 32, cfg.max_len = 16;
    cfg.vocab = 300;
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, &cfg), 0);
    rw_model_init(m, 1);
    const char *seed = rwt_path(rwt_dir, "seed.st"), *dom = rwt_path(rwt_dir, "dom.st");
    cr_assert_eq(rw_checkpoint_save(seed, m, NULL, NULL, "{\"task\":\"seed\",\"seed\":1}"), 0);
    cr_assert_eq(rw_checkpoint_save(dom, m, NULL, NULL,
                                    "{\"task\":\"domain_rm\",\"domain\":\"safety\",\"seed\":1}"),
                 0);
    rw_model_destroy(&m);
    const char *junk = rwt_path(rwt_dir, "junk");
    cr_assert_eq(rwt_write_file(junk, "{\"model\": \"BPE\"}", 16), 0);
    plan_task_t t = {.id = 1, .kind = MSG_TASK_SEED};
    char why[256];
    cr_assert_eq(job__check_result(NULL, &t, seed, why, sizeof why), 0, "%s", why);
    cr_assert_eq(job__check_result(NULL, &t, junk, why, sizeof why), RW_EFORMAT);
    cr_assert(strstr(why, "not a model file"), "%s", why);
    cr_assert_eq(job__check_result(NULL, &t, dom, why, sizeof why), RW_EFORMAT);
    cr_assert(strstr(why, "not the output of a seed task (it says domain_rm)"), "%s", why);
    t.kind = MSG_TASK_DOMAIN_RM;
    snprintf(t.domain, sizeof t.domain, "safety");
    cr_assert_eq(job__check_result(NULL, &t, dom, why, sizeof why), 0, "%s", why);
    snprintf(t.domain, sizeof t.domain, "concise");
    cr_assert_eq(job__check_result(NULL, &t, dom, why, sizeof why), RW_EFORMAT);
    cr_assert(strstr(why, "for domain safety, not concise"), "%s", why);
}

/* A worker's progress builds the task's loss curve, from step 1 (step 0,
 * sent as a task starts, has no loss: it drew every curve from 0); steps
 * that do not move forward (the same step over and over) are not points,
 * so they cannot fill the curve until its stride doubles past 2^63 and
 * wraps to 0, which made the next progress divide by zero and took the
 * coordinator down. */
Test(job, progress_that_does_not_move_forward_is_not_plotted)
{
    coord_job_t *j = open_job();
    json_t *task = json_pack("{s:s,s:s}", "ev", "task", "kind", "seed");
    json_t *lease = json_pack("{s:s,s:I,s:I}", "ev", "lease", "task", 1, "attempt", 1);
    cr_assert_eq(coord_job_ops.apply(j, task), 0);
    cr_assert_eq(coord_job_ops.apply(j, lease), 0);
    plan_task_t pt = {.id = 1, .kind = MSG_TASK_SEED};
    msg_progress_t m = {.step = 0, .loss = 0.0}; /* what a worker says as a task starts */
    for (int i = 0; i < 20000; i++)
        coord_job_ops.progress(j, &pt, &m);
    m.loss = 1.0;
    for (uint64_t s = 1; s <= 5000; s++) {
        m.step = s;
        coord_job_ops.progress(j, &pt, &m);
        m.step = s / 2; /* and one from the past each time */
        coord_job_ops.progress(j, &pt, &m);
    }
    json_t *rec = json_object();
    coord_job_ops.result(j, &pt, NULL, rec);
    json_t *curve = json_object_get(rec, "loss_curve");
    size_t n = json_array_size(curve);
    cr_assert(n > 100 && n <= JOB_CURVE_MAX, "%zu points", n);
    json_int_t last = -1;
    for (size_t i = 0; i < n; i++) {
        json_int_t s = json_integer_value(json_array_get(json_array_get(curve, i), 0));
        cr_assert_gt(s, last, "point %zu: step %lld after %lld", i, (long long)s, (long long)last);
        last = s;
    }
    /* step 0 comes before any update: it has no loss to plot */
    cr_assert_eq(json_integer_value(json_array_get(json_array_get(curve, 0), 0)), 1);
    cr_assert_gt(json_real_value(json_array_get(json_array_get(curve, 0), 1)), 0.0);
    json_decref(rec);
    json_decref(task);
    json_decref(lease);
    coord_job_destroy(&j);
}

/* A worker's pairs/s in the report is what it got through: the pairs of
 * its tasks over their seconds. The mean of its tasks' own rates made the
 * router service of the default job 2,828 pairs/s where it trained 803:
 * a 2 s task at 7,406 pairs/s counted as much as an 87 s one at 738. */
Test(job, a_workers_pairs_per_s_weighs_its_tasks_by_their_seconds)
{
    coord_job_t *j = open_job();
    const char *kinds[] = {"router", "router_adapter", "seed"};
    const char *workers[] = {"router", "router", "w1"};
    double secs[] = {2.0, 88.0, 10.0}, pps[] = {7400.0, 700.0, 400.0};
    for (int i = 0; i < 3; i++) {
        json_t *recs[] = {json_pack("{s:s,s:s}", "ev", "task", "kind", kinds[i]),
                          json_pack("{s:s,s:i,s:i,s:s,s:i}", "ev", "lease", "task", i + 1,
                                    "attempt", 1, "worker", workers[i], "threads", 1),
                          json_pack("{s:s,s:i,s:i,s:s,s:{s:f,s:f}}", "ev", "done", "task", i + 1,
                                    "attempt", 1, "worker", workers[i], "metrics", "seconds",
                                    secs[i], "pairs_per_s", pps[i])};
        for (int k = 0; k < 3; k++) {
            cr_assert_eq(coord_job_ops.apply(j, recs[k]), 0);
            json_decref(recs[k]);
        }
    }
    json_t *wl = job__workers_json(j);
    cr_assert_eq(json_array_size(wl), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *w = json_array_get(wl, i);
        const char *id = json_string_value(json_object_get(w, "id"));
        double got = json_number_value(json_object_get(w, "pairs_per_s"));
        double want = strcmp(id, "w1") == 0 ? 400.0 : (7400.0 * 2 + 700.0 * 88) / 90.0;
        cr_assert_float_eq(got, want, 1e-6, "%s: %f pairs/s, want %f", id, got, want);
        cr_assert_eq(json_integer_value(json_object_get(w, "tasks")), strcmp(id, "w1") ? 2 : 1);
    }
    json_decref(wl);
    coord_job_destroy(&j);
}

/* An added domain's "domain" record counts the train records it uploaded,
 * one per distinct prompt (772 of the synthetic concise domain's 911 train
 * pairs); the report said those were the train pairs that stayed on the
 * worker. They are all its pairs but the held-out ones. */
Test(job, an_added_domain_counts_its_train_pairs_not_its_prompts)
{
    coord_job_t *j = open_job();
    json_t *rec =
        json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:i}", "ev", "domain", "domain", "legal", "worker",
                  "vm:legal", "shard", 7, "pairs", 1000, "train", 772, "eval", 89);
    cr_assert_eq(coord_job_ops.apply(j, rec), 0);
    cr_assert_eq(j->n_added, 1);
    cr_assert_eq(j->added[0].train, 911, "%" PRIu64 " train pairs", j->added[0].train);
    cr_assert_eq(j->added[0].train_prompts, 772);
    cr_assert_eq(j->added[0].eval, 89);
    json_decref(rec);
    coord_job_destroy(&j);
}

/* One state directory, one coordinator: a second one started on it (a
 * second `rewire run` on one --out) stops at once, saying who holds it,
 * instead of interleaving its journal records with the first's. */
Test(job, a_second_coordinator_on_one_state_is_refused)
{
    setup_dirs();
    /* and what a coordinator killed mid-write left is cleared by the next */
    const char *litter = rwt_path(state, "data.jsonl.tmp.Ab12Cd");
    cr_assert_eq(rwt_write_file(litter, "half", 4), 0);
    pid_t c = start_coordinator(2000);
    char *log = NULL;
    for (int i = 0; i < 1000; i++) { /* the first holds the state once it serves */
        free(log);
        log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
        if (log && strstr(log, "using the data already prepared"))
            break;
        svc_sleep_ms(5);
    }
    free(log);
    const char *args[] = {"serve",  "--state",           state, "--out", out,
                          "--bind", "ipc:///dev/null/x", NULL};
    pid_t c2 = svc_spawn(coord_main, "rewire-coordinator", rwt_path(rwt_dir, "second.log"), args);
    int rc = svc_wait(c2, 10000);
    log = rwt_read_file(rwt_path(rwt_dir, "second.log"), NULL);
    cr_assert_eq(rc, 1, "the second coordinator exits 1 (got %d): %s", rc, log);
    char want[64];
    snprintf(want, sizeof want, "in use by another coordinator (pid %d)", (int)c);
    cr_assert(strstr(log, want), "%s", log);
    free(log);
    cr_assert_eq(svc_wait(c, 50), -1, "the first goes on");
    cr_assert_neq(access(litter, F_OK), 0, "a half-written file was removed");
    svc_kill(c);
}

/* A second coordinator (another state) given the ipc endpoint a live one
 * serves on stops at once, saying so, instead of taking its socket (which
 * ZeroMQ's bind would unlink); the first goes on answering, and its socket
 * file goes with it when it stops. */
Test(job, a_second_coordinator_on_a_live_ipc_endpoint_is_refused)
{
    setup_dirs();
    char state2[700], out2[700], why[256];
    snprintf(state2, sizeof state2, "%s/state2", rwt_dir);
    snprintf(out2, sizeof out2, "%s/out2", rwt_dir);
    cr_assert_eq(svc_prepare(state2, 40), 0);
    const char *sock = endpoint + strlen("ipc://");
    pid_t c = start_coordinator(2000);
    cr_assert(svc_wait_file(sock, 10000), "the first coordinator never bound");
    const char *args[] = {"serve", "--state", state2, "--out", out2, "--bind", endpoint, NULL};
    pid_t c2 = svc_spawn(coord_main, "rewire-coordinator", rwt_path(rwt_dir, "second.log"), args);
    int rc = svc_wait(c2, 10000);
    if (rc == -1)
        svc_kill(c2);
    char *log = rwt_read_file(rwt_path(rwt_dir, "second.log"), NULL);
    cr_assert_eq(rc, 1, "the second coordinator exits 1 (got %d): %s", rc, log);
    cr_assert(strstr(log, "is in use by a running service"), "%s", log);
    free(log);
    msg_t rep;
    cr_assert_eq(health_ask(endpoint, NULL, NULL, 3000, &rep, why, sizeof why), 0,
                 "the first no longer answers: %s", why);
    msg_fini(&rep);
    kill(c, SIGTERM);
    rc = svc_wait(c, 10000);
    if (rc == -1)
        svc_kill(c);
    cr_assert_neq(access(sock, F_OK), 0, "the stopped coordinator left %s", sock);
}

/* How many journal lines hold needle. */
static int journal_lines_with(const char *needle)
{
    char *journal = rwt_read_file(rwt_path(state, "journal.jsonl"), NULL);
    int n = 0;
    for (char *line = journal ? strtok(journal, "\n") : NULL; line; line = strtok(NULL, "\n"))
        n += strstr(line, needle) != NULL;
    free(journal);
    return n;
}

/* Waits for the coordinator c to journal one more lease than it had, then
 * kills it. */
static void kill_after_a_lease(pid_t c, int leases)
{
    for (int i = 0; i < 10000 && journaled("lease") <= leases; i++)
        svc_sleep_ms(2);
    cr_assert_gt(journaled("lease"), leases, "no new lease");
    kill(c, SIGKILL);
    svc_wait(c, 2000);
}

/* A coordinator killed (or stopped) while tasks are leased takes them back
 * when it starts again, and that costs the tasks no attempt: with one
 * attempt each, three restarts that each catch a task leased leave the job
 * able to finish, and its journal able to replay. */
Test(job, restarts_of_the_coordinator_spend_no_attempts)
{
    setup_dirs();
    const char *one[] = {"--max-attempts", "1", NULL};
    pid_t c = start_coordinator_with(300, 300, one);
    pid_t w1 = start_worker("w1", "train"), r1 = start_worker("r1", "router");
    for (int k = 0; k < 3; k++) {
        kill_after_a_lease(c, journaled("lease"));
        c = start_coordinator_with(300, 300, one);
    }
    int rc = svc_wait(c, 60000);
    if (rc != 0 || getenv("RWT_DUMP"))
        dump_all();
    cr_assert_eq(rc, 0, "the job finishes after three restarts (got %d)", rc);
    svc_wait(w1, 5000), svc_wait(r1, 5000);
    svc_kill(w1), svc_kill(r1);
    check_outputs();
    cr_assert_eq(journaled("done"), 19, "every task done once");
}

/* A start stopped part way (its records cut short, as a kill or a full disk
 * leaves them) is completed by the next run: the shards again, the tasks
 * the journal lacks added, and the job runs to its end. */
Test(job, a_start_cut_short_is_completed)
{
    setup_dirs();
    pid_t c = start_coordinator_steps(3, 3);
    for (int i = 0; i < 5000 && journaled("planned") == 0; i++)
        svc_sleep_ms(2);
    kill(c, SIGKILL);
    svc_wait(c, 2000);
    cr_assert_eq(journaled("planned"), 1, "the start never ended");
    cr_assert_eq(journaled("lease"), 0, "leased before any worker came");
    /* keep the job record, the artifacts, and 3 of the 19 tasks */
    int keep = journal_lines_with("\"ev\":\"job\"") + journal_lines_with("\"ev\":\"artifact\"") + 3;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "head -n %d '%s/journal.jsonl' > '%s/j' && mv '%s/j' '%s/journal.jsonl'", keep, state,
             rwt_dir, rwt_dir, state);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(journaled("task"), 3);
    c = start_coordinator_steps(3, 3);
    pid_t w1 = start_worker("w1", "train"), r1 = start_worker("r1", "router");
    int rc = svc_wait(c, 60000);
    if (rc != 0 || getenv("RWT_DUMP"))
        dump_all();
    cr_assert_eq(rc, 0, "the job finishes (got %d)", rc);
    svc_wait(w1, 5000), svc_wait(r1, 5000);
    svc_kill(w1), svc_kill(r1);
    check_outputs();
    cr_assert_eq(journaled("task"), 19);
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(strstr(log, "completing the start (3 of its tasks journaled)"), "%s", log);
    free(log);
}

/* An output lost from the store while the coordinator was down (a folder
 * cleaned, a disk replaced) costs its task, which is done again, and not
 * the job. */
Test(job, an_output_lost_from_the_store_is_made_again)
{
    setup_dirs();
    pid_t c = start_coordinator_steps(3, 3);
    pid_t w1 = start_worker("w1", "train"), r1 = start_worker("r1", "router");
    int rc = svc_wait(c, 60000);
    cr_assert_eq(rc, 0);
    svc_wait(w1, 5000), svc_wait(r1, 5000);
    svc_kill(w1), svc_kill(r1);
    /* the seed's output goes; the job, run again, makes it again */
    char *journal = rwt_read_file(rwt_path(state, "journal.jsonl"), NULL), path[800] = "";
    for (char *line = strtok(journal, "\n"); line && !path[0]; line = strtok(NULL, "\n")) {
        json_t *rec = json_loads(line, 0, NULL);
        const char *ev = json_string_value(json_object_get(rec, "ev"));
        if (ev && strcmp(ev, "done") == 0 && json_integer_value(json_object_get(rec, "task")) == 1)
            snprintf(path, sizeof path, "%s/artifacts/%s", state,
                     json_string_value(json_object_get(rec, "artifact")));
        json_decref(rec);
    }
    free(journal);
    cr_assert_eq(unlink(path), 0, "%s", path);
    c = start_coordinator_steps(3, 3);
    w1 = start_worker("w1", "train");
    r1 = start_worker("r1", "router");
    rc = svc_wait(c, 60000);
    if (rc != 0 || getenv("RWT_DUMP"))
        dump_all();
    cr_assert_eq(rc, 0, "the job finishes again (got %d)", rc);
    svc_wait(w1, 5000), svc_wait(r1, 5000);
    svc_kill(w1), svc_kill(r1);
    cr_assert_eq(access(path, F_OK), 0, "the seed's output is not back");
    cr_assert_eq(journal_lines_with("\"ev\":\"undone\""), 1);
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(strstr(log, "task 1 (seed) is to be done again: its output"), "%s", log);
    free(log);
}

/* A coordinator whose disk refuses its writes (full; here a size limit on
 * its files) stops, saying so, with its journal whole; started again with
 * room, it carries on to the end. */
Test(job, a_coordinator_that_cannot_write_its_state_stops_and_carries_on_later)
{
    setup_dirs();
    signal(SIGXFSZ, SIG_IGN); /* the children's writes fail instead (EFBIG) */
    pid_t c = start_coordinator_steps(300, 300);
    pid_t w1 = start_worker("w1", "train"), r1 = start_worker("r1", "router");
    for (int i = 0; i < 5000 && tasks_done() < 2; i++)
        svc_sleep_ms(2);
    struct stat st;
    cr_assert_eq(stat(rwt_path(state, "journal.jsonl"), &st), 0);
    struct rlimit lim = {(rlim_t)st.st_size + 40, (rlim_t)st.st_size + 40};
    cr_assert_eq(prlimit(c, RLIMIT_FSIZE, &lim, NULL), 0);
    int rc = svc_wait(c, 30000);
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert_eq(rc, 1, "the coordinator goes on (or dies: %d):\n%s", rc, log);
    cr_assert(strstr(log, "; stopped, with everything done so far kept: start it again once that "
                          "is fixed"),
              "%s", log);
    free(log);
    /* its workers are not told to go: they wait for the next coordinator */
    if (svc_wait(w1, 1000) != -1)
        svc_dump(rwt_path(rwt_dir, "w1.log"));
    cr_assert_eq(svc_wait(w1, 10), -1, "w1 exited");
    cr_assert_eq(svc_wait(r1, 10), -1, "r1 exited");
    c = start_coordinator_steps(300, 300);
    rc = svc_wait(c, 60000);
    if (rc != 0 || getenv("RWT_DUMP"))
        dump_all();
    cr_assert_eq(rc, 0, "started again, the job finishes (got %d)", rc);
    svc_wait(w1, 5000), svc_wait(r1, 5000);
    svc_kill(w1), svc_kill(r1);
    check_outputs();
}
