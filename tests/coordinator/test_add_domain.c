/* test_add_domain.c — a domain added to a finished job by one more worker.
 *
 * A coordinator kept serving runs a job of 3 synthetic domains (compliance,
 * detailed, safety) on small models; then `rewire-worker --domain concise
 * --data FILE` brings a 4th. The bundles come again as version 2 with 4
 * domains, every earlier domain's members byte for byte those of version 1,
 * the new domain's tasks run on the worker that brought it, and the router
 * bundle judges the new domain better than the baseline does (the baseline
 * learnt "the longer reply wins" from detailed; concise prefers the short
 * one). A duplicate name and a file with a broken record under --strict are
 * refused with why, and the job stays as it was.
 */
#include "coord_cli.h"
#include "report.h"
#include "safetensors.h"
#include "svc_support.h"
#include "worker_cli.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

TestSuite(add_domain, .init = rwt_dir_setup, .fini = rwt_dir_teardown, .timeout = 240);

static char endpoint[600], state[600], out[600], config[600];

/* Small models that learn the synthetic domains in a few seconds. */
static void write_config(void)
{
    snprintf(config, sizeof config, "%s/job.json", rwt_dir);
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"all\": {\"model\": {\"d_model\": 32, \"n_layers\": 1, \"n_heads\": 2, "
               "\"d_ff\": 64, \"max_len\": 48}, \"train\": {\"max_batch\": 16}, "
               "\"epochs\": 1000, \"max_steps\": 60},\n"
               " \"seed\": {\"max_steps\": 80}}\n");
    fclose(f);
}

static void gen(const char *domains, const char *file)
{
    char cmd[2048], *err = NULL;
    snprintf(cmd, sizeof cmd, "%s data gen --domains %s --pairs-per-domain 200 -o %s",
             rwt_bin("rewire"), domains, file);
    int rc = rwt_run(cmd, NULL, &err);
    cr_assert_eq(rc, 0, "%s: %s", cmd, err ? err : "");
    free(err);
}

/* The job's coordinator, forked from the test; with disk (the failwrite
 * environment, tests/preload/failwrite.c, NULL-terminated; may be NULL) the
 * built binary instead, run on a disk that fills. */
static pid_t start_coordinator_on(const char *const *disk)
{
    const char *args[] = {"serve",
                          "--state",
                          state,
                          "--out",
                          out,
                          "--bind",
                          endpoint,
                          "--heartbeat-ms",
                          "100",
                          "--timeout-ms",
                          "2000",
                          "--config",
                          config,
                          "--data",
                          rwt_path(rwt_dir, "three.jsonl"),
                          "--vocab",
                          "1000",
                          "--keep-serving",
                          "--stop-peers", /* stop_job's SIGTERM ends the job's processes */
                          NULL};
    const char *log = rwt_path(rwt_dir, "coordinator.log");
    if (disk)
        return svc_exec("rewire-coordinator", log, args, disk);
    return svc_spawn(coord_main, "rewire-coordinator", log, args);
}

static pid_t start_coordinator(void)
{
    return start_coordinator_on(NULL);
}

static pid_t start_worker(const char *id, const char *caps, const char *const *more)
{
    return svc_worker(rwt_dir, endpoint, id, caps, "2000", more);
}

static void dump_all(void)
{
    const char *logs[] = {"coordinator.log", "w1.log", "r1.log", "w9.log", "b1.log", "b2.log"};
    for (int i = 0; i < 6; i++)
        svc_dump(rwt_path(rwt_dir, logs[i]));
}

/* Stops coordinator c (it must exit 0 on SIGTERM), then the other processes
 * (0 ends the list); dumps the logs when c did not end well or RWT_DUMP is
 * set. */
static void stop_job(pid_t c, pid_t p1, pid_t p2, pid_t p3)
{
    kill(c, SIGTERM);
    int rc = svc_wait(c, 10000);
    pid_t others[] = {p1, p2, p3};
    for (int i = 0; i < 3 && others[i] > 0; i++) {
        svc_wait(others[i], 5000);
        svc_kill(others[i]);
    }
    if (rc != 0 || getenv("RWT_DUMP"))
        dump_all();
    cr_assert_eq(rc, 0, "the coordinator ended with %d", rc);
}

/* Waits for results.json to say version v; returns it (caller decrefs). */
static json_t *await_version(int v, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        json_t *r = json_load_file(rwt_path(state, "results.json"), 0, NULL);
        json_t *st = json_load_file(rwt_path(state, "status.json"), 0, NULL);
        bool done = st && strcmp(json_string_value(json_object_get(st, "state")), "done") == 0;
        json_decref(st);
        if (done && json_integer_value(json_object_get(json_object_get(r, "job"), "version")) == v)
            return r;
        json_decref(r);
        svc_sleep_ms(100);
    }
    dump_all();
    cr_assert_fail("version %d of the bundles never came", v);
    return NULL;
}

/* The checksum of file name in bundle version v of kind, or 0. */
static unsigned long long checksum(int v, const char *kind, const char *name)
{
    char p[900];
    snprintf(p, sizeof p, "%s/bundles/v%d/%s/manifest.json", out, v, kind);
    json_t *m = json_load_file(p, 0, NULL);
    cr_assert_not_null(m, "no %s", p);
    unsigned long long sum = 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0)
            sum = strtoull(json_string_value(json_object_get(f, "xxh64")), NULL, 16);
    }
    json_decref(m);
    return sum;
}

/* Whether the moe bundle of version 2 holds version 1's experts unchanged
 * (tensors [layers, experts, ...]: the first experts of each layer) and
 * one more expert. */
static void same_experts(void)
{
    char a[900], b[900];
    snprintf(a, sizeof a, "%s/bundles/v1/moe/model.safetensors", out);
    snprintf(b, sizeof b, "%s/bundles/v2/moe/model.safetensors", out);
    rw_st_t *v1 = NULL, *v2 = NULL;
    cr_assert_eq(rw_st_read(&v1, a), 0);
    cr_assert_eq(rw_st_read(&v2, b), 0);
    const char *names[] = {"fc_w", "fc_b", "fcproj_w", "fcproj_b"};
    for (int i = 0; i < 4; i++) {
        const rw_st_tensor_t *x = rw_st_get(v1, names[i]), *y = rw_st_get(v2, names[i]);
        cr_assert(x && y, "%s", names[i]);
        cr_assert_eq(x->shape[1] + 1, y->shape[1], "%s: one expert more", names[i]);
        size_t layers = x->shape[0], old = x->n / layers, per = old / x->shape[1];
        for (size_t l = 0; l < layers; l++)
            cr_assert_eq(memcmp(x->data + l * old, y->data + l * (old + per), old * sizeof(float)),
                         0, "%s layer %zu: the earlier experts changed", names[i], l);
    }
    rw_st_destroy(&v1);
    rw_st_destroy(&v2);
}

static size_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/* A worker that brings domain from file; returns its exit status and its
 * stderr log in *log (caller frees). */
static int bring(const char *id, const char *domain, const char *file, bool strict, char **log)
{
    const char *more[] = {"--domain", domain, "--data", file, strict ? "--strict" : NULL, NULL};
    pid_t w = start_worker(id, "train", more);
    int rc = svc_wait(w, 20000);
    svc_kill(w);
    char p[700];
    snprintf(p, sizeof p, "%s.log", id);
    *log = rwt_read_file(rwt_path(rwt_dir, p), NULL);
    return rc;
}

Test(add_domain, a_fourth_domain_joins_a_finished_job_and_nothing_else_is_retrained)
{
    snprintf(endpoint, sizeof endpoint, "ipc://%s/coord.sock", rwt_dir);
    snprintf(state, sizeof state, "%s/state", rwt_dir);
    snprintf(out, sizeof out, "%s/out", rwt_dir);
    write_config();
    gen("compliance,detailed,safety", rwt_path(rwt_dir, "three.jsonl"));
    gen("concise", rwt_path(rwt_dir, "concise.jsonl"));
    gen("detailed", rwt_path(rwt_dir, "detailed.jsonl"));
    pid_t c = start_coordinator();
    pid_t w1 = start_worker("w1", "train", NULL), r1 = start_worker("r1", "router", NULL);
    json_t *v1 = await_version(1, 120000);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(v1, "job"), "domains")), 3);
    size_t journal = file_size(rwt_path(state, "journal.jsonl"));

    /* a name the job has: refused with why, the job as it was */
    char *log = NULL;
    int rc = bring("dup", "detailed", rwt_path(rwt_dir, "detailed.jsonl"), false, &log);
    cr_assert_eq(rc, 1, "a duplicate name exits 1 (got %d):\n%s", rc, log);
    cr_assert(strstr(log, "refused: domain detailed refused: the job has a domain of that name"),
              "%s", log);
    free(log);
    /* a broken record under --strict: refused before anything is sent */
    char *good = rwt_read_file(rwt_path(rwt_dir, "concise.jsonl"), NULL);
    char broken[700];
    snprintf(broken, sizeof broken, "%s/broken.jsonl", rwt_dir);
    FILE *f = fopen(broken, "w");
    fprintf(f, "%s{\"prompt\": \"Briefly, why?\", \"chosen\": \"ok\"\n", good);
    fclose(f);
    free(good);
    rc = bring("strict", "concise", broken, true, &log);
    cr_assert_eq(rc, 1, "a broken record under --strict exits 1 (got %d):\n%s", rc, log);
    cr_assert(strstr(log, "broken.jsonl:201:"), "the record is named:\n%s", log);
    cr_assert(strstr(log, "--strict: 1 bad record; domain concise not brought"), "%s", log);
    free(log);
    cr_assert_eq(file_size(rwt_path(state, "journal.jsonl")), journal, "the job is as it was");
    cr_assert_neq(access(rwt_path(out, "bundles/v2"), F_OK), 0, "no version 2");

    /* the 4th domain, brought by w9 */
    const char *more[] = {"--domain", "concise", "--data", rwt_path(rwt_dir, "concise.jsonl"),
                          NULL};
    pid_t w9 = start_worker("w9", "train", more);
    json_t *v2 = await_version(2, 120000);
    json_t *job = json_object_get(v2, "job");
    cr_assert_eq(json_array_size(json_object_get(job, "domains")), 4);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(job, "added"), 0), "domain")),
                     "concise");
    cr_assert_eq(json_array_size(json_object_get(v2, "bundles")), 4);
    /* the stages are the first version's, beside its wall time: version 2's
     * merge and evaluation are the added domain's, not theirs */
    for (size_t s = 0; s < json_array_size(json_object_get(v1, "stages")); s++) {
        json_t *a = json_array_get(json_object_get(v1, "stages"), s),
               *b = json_array_get(json_object_get(v2, "stages"), s);
        cr_assert_str_eq(json_string_value(json_object_get(a, "name")),
                         json_string_value(json_object_get(b, "name")));
        cr_assert_float_eq(json_number_value(json_object_get(a, "seconds")),
                           json_number_value(json_object_get(b, "seconds")), 1e-9,
                           "stage %s: %f in version 1, %f in version 2",
                           json_string_value(json_object_get(a, "name")),
                           json_number_value(json_object_get(a, "seconds")),
                           json_number_value(json_object_get(b, "seconds")));
    }
    cr_assert_gt(json_number_value(json_object_get(json_array_get(json_object_get(job, "added"), 0),
                                                   "merge_eval_s")),
                 0.0);
    char p[900];
    snprintf(p, sizeof p, "%s/bundles/router/manifest.json", out);
    json_t *m = json_load_file(p, 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(m, "domains")), 4, "bundles/router is version 2");
    json_decref(m);
    cr_assert_eq(access(rwt_path(out, "bundles/v1/router/manifest.json"), F_OK), 0,
                 "version 1 is kept");

    /* nothing of the earlier domains was trained again */
    const char *old[] = {"compliance", "detailed", "safety"};
    for (int i = 0; i < 3; i++) {
        char name[96];
        snprintf(name, sizeof name, "domain-%s.safetensors", old[i]);
        cr_assert_neq(checksum(1, "router", name), 0);
        cr_assert_eq(checksum(1, "router", name), checksum(2, "router", name), "%s", name);
        snprintf(name, sizeof name, "adapter-%s.safetensors", old[i]);
        cr_assert_neq(checksum(1, "adapter", name), 0);
        cr_assert_eq(checksum(1, "adapter", name), checksum(2, "adapter", name), "%s", name);
    }
    cr_assert_eq(checksum(1, "adapter", "base.safetensors"),
                 checksum(2, "adapter", "base.safetensors"));
    cr_assert_eq(checksum(1, "baseline", "model.safetensors"),
                 checksum(2, "baseline", "model.safetensors"));
    same_experts();
    char *journal_text = rwt_read_file(rwt_path(state, "journal.jsonl"), NULL);
    int dones = 0;
    for (char *q = journal_text; (q = strstr(q, "\"ev\":\"done\"")); q++)
        dones++;
    free(journal_text);
    cr_assert_eq(dones, (2 + 3 * 3 + 2) + (3 + 3), "one task per earlier domain and kind, once");

    /* the new domain's tasks ran where its pairs are */
    size_t i;
    json_t *t;
    int on_w9 = 0;
    json_array_foreach(json_object_get(v2, "tasks"), i, t)
    {
        const char *d = json_string_value(json_object_get(t, "domain"));
        if (d && strcmp(d, "concise") == 0) {
            cr_assert_str_eq(json_string_value(json_object_get(t, "worker")), "w9");
            on_w9++;
        }
    }
    cr_assert_eq(on_w9, 3);
    double base = rw_report_accuracy(v2, "baseline", "concise", 0),
           routed = rw_report_accuracy(v2, "router", "concise", 0);
    cr_assert_gt(routed, base, "router bundle %.3f, baseline %.3f on concise", routed, base);
    char *report = rwt_read_file(rwt_path(out, "report.md"), NULL);
    cr_assert(report && strstr(report, "| domain added | concise by worker w9"),
              "the report has the new domain:\n%s", report);
    free(report);
    json_decref(v1);
    json_decref(v2);
    cr_assert_eq(svc_wait(w9, 10000), 0, "the worker that brought concise ends once it is in");
    log = rwt_read_file(rwt_path(rwt_dir, "w9.log"), NULL);
    cr_assert(log && strstr(log, "domain concise is in the bundles"), "%s", log);
    free(log);

    /* a coordinator started again on the finished state serves version 2 */
    kill(c, SIGTERM);
    cr_assert_eq(svc_wait(c, 10000), 0);
    unlink(rwt_path(state, "status.json"));
    c = start_coordinator();
    json_t *again = await_version(2, 30000);
    json_decref(again);
    log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(strstr(log, "version 2 of the bundles is done"), "%s", log);
    free(log);
    stop_job(c, w1, r1, w9);
}

/* A domain brought before any task ran is in the job's first bundles. */
Test(add_domain, a_domain_joins_a_running_job_and_its_first_bundles_have_it)
{
    snprintf(endpoint, sizeof endpoint, "ipc://%s/coord.sock", rwt_dir);
    snprintf(state, sizeof state, "%s/state", rwt_dir);
    snprintf(out, sizeof out, "%s/out", rwt_dir);
    snprintf(config, sizeof config, "%s", svc_tiny_config(rwt_dir, 3, 3));
    gen("compliance,detailed,safety", rwt_path(rwt_dir, "three.jsonl"));
    gen("concise", rwt_path(rwt_dir, "concise.jsonl"));
    pid_t c = start_coordinator();
    cr_assert(svc_wait_file(rwt_path(state, "status.json"), 60000), "the coordinator never served");
    /* the job runs (its seed waits for a worker) when the domain comes; the
     * bringer's cache has no room, but the domain's pairs it trains on stay */
    const char *more[] = {
        "--domain",    "concise", "--data",        rwt_path(rwt_dir, "concise.jsonl"),
        "--cache-max", "1",       "--cache-grace", "0",
        NULL};
    pid_t w9 = start_worker("w9", "train", more);
    bool added = false;
    for (int i = 0; i < 1000 && !added; i++) {
        svc_sleep_ms(20);
        char *journal = rwt_read_file(rwt_path(state, "journal.jsonl"), NULL);
        added = journal && strstr(journal, "\"ev\":\"domain\"");
        free(journal);
    }
    cr_assert(added, "the domain never went in");
    pid_t w1 = start_worker("w1", "train", NULL), r1 = start_worker("r1", "router", NULL);
    json_t *v1 = await_version(1, 60000);
    json_t *job = json_object_get(v1, "job");
    cr_assert_eq(json_array_size(json_object_get(job, "domains")), 4, "version 1 has concise");
    cr_assert_eq(json_array_size(json_object_get(job, "added")), 1);
    char p[900];
    snprintf(p, sizeof p, "%s/bundles/adapter/manifest.json", out);
    json_t *m = json_load_file(p, 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(m, "domains")), 4);
    json_decref(m);
    json_decref(v1);
    stop_job(c, w1, r1, w9);
}

/* What the worker refuses before it connects: exit 2 for usage, 1 for data. */
/* `rewire-worker --domain concise --data FILE` as a user types it: no --id,
 * its log and cache named after log_name. */
static pid_t start_bringer(const char *log_name)
{
    char cache[700], log[700];
    snprintf(cache, sizeof cache, "%s/cache-%s", rwt_dir, log_name);
    snprintf(log, sizeof log, "%s/%s.log", rwt_dir, log_name);
    const char *args[] = {
        "--connect", endpoint,   "--cache", cache,    "--timeout-ms",
        "2000",      "--domain", "concise", "--data", rwt_path(rwt_dir, "concise.jsonl"),
        NULL};
    return svc_spawn(worker_main, "rewire-worker", log, args);
}

/* A job of three domains on tiny models, served (on disk, as
 * start_coordinator_on) with no worker, and concise's data beside it.
 * Returns the coordinator. */
static pid_t served(const char *const *disk)
{
    snprintf(endpoint, sizeof endpoint, "ipc://%s/coord.sock", rwt_dir);
    snprintf(state, sizeof state, "%s/state", rwt_dir);
    snprintf(out, sizeof out, "%s/out", rwt_dir);
    snprintf(config, sizeof config, "%s", svc_tiny_config(rwt_dir, 3, 3));
    gen("compliance,detailed,safety", rwt_path(rwt_dir, "three.jsonl"));
    gen("concise", rwt_path(rwt_dir, "concise.jsonl"));
    pid_t c = start_coordinator_on(disk);
    cr_assert(svc_wait_file(rwt_path(state, "status.json"), 60000), "the coordinator never served");
    return c;
}

/* The served job, to which b1 brings concise; once the journal holds
 * `until`, b1 is killed. Returns the coordinator. While no worker trains,
 * the domain's pinned tasks cannot have run. */
static pid_t brought_then_lost(const char *until)
{
    pid_t c = served(NULL);
    pid_t b1 = start_bringer("b1");
    bool seen = false;
    for (int i = 0; i < 1000 && !seen; i++) {
        svc_sleep_ms(20);
        char *journal = rwt_read_file(rwt_path(state, "journal.jsonl"), NULL);
        seen = journal && strstr(journal, until);
        free(journal);
    }
    cr_assert(seen, "the domain never went in");
    kill(b1, SIGKILL);
    svc_wait(b1, 5000);
    return c;
}

Test(add_domain, the_same_command_again_takes_back_the_domain_of_a_bringer_that_died)
{
    pid_t c = brought_then_lost("\"ev\":\"domain\"");
    /* the status says which worker the job waits for, and for how much */
    json_int_t waits = 0;
    for (int i = 0; i < 1000 && waits == 0; i++) {
        svc_sleep_ms(20);
        json_t *st = json_load_file(rwt_path(state, "status.json"), 0, NULL);
        const char *who;
        json_t *n;
        json_object_foreach(json_object_get(st, "waiting_for"), who, n)
        {
            if (strstr(who, ":concise"))
                waits = json_integer_value(n);
        }
        json_decref(st);
    }
    cr_assert_eq(waits, 3, "the status names the bringer and its 3 tasks");
    /* the same command again: the same worker (HOST:concise), not a new name */
    pid_t b2 = start_bringer("b2");
    pid_t w1 = start_worker("w1", "train", NULL), r1 = start_worker("r1", "router", NULL);
    json_t *v1 = await_version(1, 90000);
    json_t *job = json_object_get(v1, "job");
    cr_assert_eq(json_array_size(json_object_get(job, "domains")), 4, "version 1 has concise");
    const char *by = json_string_value(
        json_object_get(json_array_get(json_object_get(job, "added"), 0), "worker"));
    cr_assert(by && strstr(by, ":concise"), "brought by %s", by ? by : "(none)");
    json_decref(v1);
    cr_assert_eq(svc_wait(b2, 20000), 0, "the bringer started again ends once concise is in");
    char *log = rwt_read_file(rwt_path(rwt_dir, "b2.log"), NULL);
    cr_assert(log && strstr(log, "domain concise is in the bundles"), "%s", log);
    free(log);
    log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(log && strstr(log, "domain concise waits for worker") &&
                  strstr(log, "start the same `rewire-worker --domain concise` command again"),
              "the coordinator says what the domain waits for:\n%s", log);
    free(log);
    stop_job(c, w1, r1, b2);
}

Test(add_domain, a_worker_refuses_bad_domain_options_and_data_before_connecting)
{
    snprintf(endpoint, sizeof endpoint, "ipc://%s/nobody.sock", rwt_dir);
    gen("concise,detailed", rwt_path(rwt_dir, "two.jsonl"));
    struct {
        const char *more[8];
        int rc;
        const char *says;
    } cases[] = {
        {{"--domain", "concise", NULL}, 2, "go together"},
        {{"--domain", "no spaces", "--data", "x", NULL}, 2, "--domain wants"},
        {{"--domain", "concise", "--data", "x", "--caps", "router"}, 2, "needs the train"},
        {{"--domain", "concise", "--data", rwt_path(rwt_dir, "missing.jsonl"), NULL},
         1,
         "missing.jsonl: unreadable or cut short"},
        {{"--domain", "concise", "--data", rwt_path(rwt_dir, "two.jsonl"), NULL},
         1,
         "holds pairs of domain detailed; --domain concise brings that one alone"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[16], log[700];
        snprintf(id, sizeof id, "u%zu", i);
        pid_t w = start_worker(id, "train", cases[i].more);
        int rc = svc_wait(w, 10000);
        svc_kill(w);
        snprintf(log, sizeof log, "%s/%s.log", rwt_dir, id);
        char *text = rwt_read_file(log, NULL);
        cr_assert_eq(rc, cases[i].rc, "case %zu: exit %d:\n%s", i, rc, text);
        cr_assert(text && strstr(text, cases[i].says), "case %zu:\n%s", i, text);
        free(text);
    }
}

/* A job to which b1 brought concise, stopped once the domain is planned. */
static void stopped_with_a_brought_domain(void)
{
    pid_t c = brought_then_lost("\"ev\":\"domain_planned\"");
    kill(c, SIGTERM);
    cr_assert_eq(svc_wait(c, 10000), 0);
    unlink(rwt_path(state, "status.json"));
}

/* Keeps the journal's lines that match none of the patterns (grep -v -E). */
static void journal_without(const char *pattern)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "grep -v -E '%s' '%s/journal.jsonl' > '%s/j'; mv '%s/j' '%s/journal.jsonl'", pattern,
             state, rwt_dir, rwt_dir, state);
    cr_assert_eq(system(cmd), 0);
}

/* The bringer comes back, workers join, and the job ends with 4 domains. */
static void finishes_with_four_domains(void)
{
    pid_t c = start_coordinator();
    pid_t b2 = start_bringer("b2");
    pid_t w1 = start_worker("w1", "train", NULL), r1 = start_worker("r1", "router", NULL);
    json_t *v1 = await_version(1, 90000);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(v1, "job"), "domains")), 4);
    json_decref(v1);
    char p[900];
    snprintf(p, sizeof p, "%s/bundles/moe/manifest.json", out);
    json_t *m = json_load_file(p, 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(m, "domains")), 4, "the moe bundle lacks one");
    json_decref(m);
    stop_job(c, w1, r1, b2);
}

/* A journal an older rewire wrote (no "planned", no "domain_planned") of a
 * job with a brought domain carries on: its start is not redone. */
Test(add_domain, an_older_journal_with_a_brought_domain_carries_on)
{
    stopped_with_a_brought_domain();
    journal_without("\"ev\":\"(planned|domain_planned)\"");
    finishes_with_four_domains();
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(!strstr(log, "cannot start the job"), "%s", log);
    free(log);
}

/* Shards made again (the tokenizer's artifact lost) are the job's own: a
 * brought domain's pairs stay on its worker, and its shard is not replaced. */
Test(add_domain, shards_made_again_leave_a_brought_domain_alone)
{
    stopped_with_a_brought_domain();
    char *journal = rwt_read_file(rwt_path(state, "journal.jsonl"), NULL), tok[900] = "";
    for (char *line = strtok(journal, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *rec = json_loads(line, 0, NULL);
        const char *role = json_string_value(json_object_get(rec, "role"));
        if (role && strcmp(role, "tokenizer") == 0)
            snprintf(tok, sizeof tok, "%s/artifacts/%s", state,
                     json_string_value(json_object_get(rec, "artifact")));
        json_decref(rec);
    }
    free(journal);
    cr_assert_eq(unlink(tok), 0, "%s", tok);
    finishes_with_four_domains();
    journal = rwt_read_file(rwt_path(state, "journal.jsonl"), NULL);
    cr_assert_null(strstr(journal, "\"role\":\"data:concise\""), "the brought shard was replaced");
    free(journal);
    cr_assert_eq(access(tok, F_OK), 0, "the tokenizer was not made again");
}

/* Rewrites the journal line by line: edit prints to f what the line
 * becomes, and returns false to end the journal after it. */
static void journal_edit(bool (*edit)(FILE *f, const char *line))
{
    const char *path = rwt_path(state, "journal.jsonl");
    char *journal = rwt_read_file(path, NULL);
    cr_assert_not_null(journal);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    bool more = true;
    for (char *line = strtok(journal, "\n"); line && more; line = strtok(NULL, "\n"))
        more = edit(f, line);
    cr_assert_eq(fclose(f), 0);
    free(journal);
}

/* journal_edit: the journal cut short after the brought domain's "domain"
 * record and its first task, as a kill or a full disk would. */
static bool cut_in_domain_planning(FILE *f, const char *line)
{
    static bool in_domain; /* each test runs in a process of its own */
    fprintf(f, "%s\n", line);
    in_domain |= strstr(line, "\"ev\":\"domain\"") != NULL;
    return !in_domain || !strstr(line, "\"ev\":\"task\"");
}

/* journal_edit: the seed (task 1) done by the worker it was leased to, its
 * output (artifact 7b) not in the store; a real "done" of it dropped. */
static bool seed_output_lost(FILE *f, const char *line)
{
    json_t *rec = json_loads(line, 0, NULL);
    cr_assert_not_null(rec, "%s", line);
    const char *ev = json_string_value(json_object_get(rec, "ev"));
    bool seed = json_integer_value(json_object_get(rec, "task")) == 1;
    if (!seed || strcmp(ev, "done") != 0)
        fprintf(f, "%s\n", line);
    if (seed && strcmp(ev, "lease") == 0)
        fprintf(f,
                "{\"ev\":\"done\",\"task\":1,\"attempt\":%d,\"worker\":\"%s\","
                "\"artifact_id\":123,\"artifact\":\"000000000000007b\",\"lease_s\":1,"
                "\"metrics\":{},\"ts\":%f}\n",
                (int)json_integer_value(json_object_get(rec, "attempt")),
                json_string_value(json_object_get(rec, "worker")),
                json_number_value(json_object_get(rec, "ts")));
    json_decref(rec);
    return true;
}

/* Whether the coordinator's log says a start completed the planning. */
static void planning_was_completed(void)
{
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(strstr(log, "domain concise: the journal does not say its planning ended"), "%s",
              log);
    free(log);
}

/* A domain's planning cut short (a kill, a full disk: the journal ends
 * after its "domain" record and one of its tasks) is completed by the next
 * start, and its bundles come. */
Test(add_domain, a_domain_planning_cut_short_is_completed)
{
    stopped_with_a_brought_domain();
    journal_edit(cut_in_domain_planning);
    finishes_with_four_domains();
    planning_was_completed();
}

/* Records the start journals before it completes a planning cut short (an
 * "undone" for a done task whose output is gone) do not make it look whole:
 * only "domain_planned" does. */
Test(add_domain, an_output_found_lost_at_the_start_does_not_hide_a_domain_planning_cut_short)
{
    stopped_with_a_brought_domain(); /* the bringer took the seed as it came */
    journal_edit(seed_output_lost);
    journal_edit(cut_in_domain_planning);
    finishes_with_four_domains();
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert(strstr(log, "its output 000000000000007b is missing from the store"),
              "the lost output went unnoticed:\n%s", log);
    free(log);
    planning_was_completed();
}

/* The disk fills while a brought domain is planned: a journal record
 * holding match cannot be written (nor, if sticky, any after it). The
 * coordinator stops with exit 1 and says why, keeps what the next start
 * needs (the read's data, the upload) and refuses nobody; started again with
 * room, it completes the planning and the job ends with 4 domains. */
static void disk_fills_in_domain_planning(const char *match, bool sticky)
{
    char fail[256];
    snprintf(fail, sizeof fail, "RWT_FAILWRITE_MATCH=%s", match);
    const char *disk[] = {svc_preload(RW_FAILWRITE_LIB), fail,
                          sticky ? "RWT_FAILWRITE_STICKY=1" : NULL, NULL};
    pid_t c = served(disk);
    pid_t b1 = start_bringer("b1");
    int rc = svc_wait(c, 30000);
    if (rc < 0)
        svc_kill(c);
    svc_kill(b1);
    char *log = rwt_read_file(rwt_path(rwt_dir, "coordinator.log"), NULL);
    cr_assert_eq(rc, 1, "the coordinator on a full disk ended with %d:\n%s", rc, log);
    cr_assert(strstr(log, "No space left on device; stopped"), "%s", log);
    free(log);
    log = rwt_read_file(rwt_path(rwt_dir, "b1.log"), NULL);
    cr_assert(log && !strstr(log, "refused"), "the bringer was refused:\n%s", log);
    free(log);
    unlink(rwt_path(state, "status.json"));
    finishes_with_four_domains();
    planning_was_completed();
}

Test(add_domain, a_full_disk_at_a_domains_data_record_keeps_it_for_the_next_start)
{
    disk_fills_in_domain_planning("\"role\":\"all_data\"", false);
}

Test(add_domain, a_full_disk_at_a_domains_first_task_keeps_it_for_the_next_start)
{
    disk_fills_in_domain_planning("\"domain\":\"concise\",\"on\"", false);
}

Test(add_domain, a_disk_left_full_from_a_domains_data_record_keeps_it_for_the_next_start)
{
    disk_fills_in_domain_planning("\"role\":\"all_data\"", true);
}
