/* finish.c — the end of a job: bundles, their evaluation, results, report.
 *
 * Runs on a libuv pool thread while the loop goes on heartbeating, so it
 * reads only what no message can change any more (every task is done): the
 * job's done records and the store's files. The baseline and the three
 * bundles are written into OUT/bundles/, each evaluated on the held-out
 * pairs of STATE/data.jsonl with the evaluation recorded in its manifest;
 * then STATE/results.json (the schema the report renderer reads) and the
 * report in OUT.
 */
#include "job_int.h"

#include "afile.h"
#include "alloc.h"
#include "bundle.h"
#include "dataset.h"
#include "err.h"
#include "log.h"
#include "proto.h"

#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define WHO "job"

static double wall(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* The store path of the output of the task of kind (for domain), or NULL. */
static char *output_path(coord_job_t *j, msg_task_kind_t kind, const char *domain)
{
    for (size_t i = 0; i < j->n_tasks; i++) {
        job_task_t *t = &j->tasks[i];
        if (t->kind != kind || !t->done || (domain && strcmp(t->domain, domain) != 0))
            continue;
        const char *hex = json_string_value(json_object_get(t->done, "artifact"));
        char *p = rw_malloc(strlen(j->state_dir) + 64);
        sprintf(p, "%s/artifacts/%s", j->state_dir, hex ? hex : "missing");
        return p;
    }
    return NULL;
}

typedef struct paths {
    char *tokenizer, *seed, *gates, *router, *router_adapter;
    char **rms, **adapters;
    size_t n;
} paths_t;

static void paths_fini(paths_t *p)
{
    free(p->tokenizer), free(p->seed), free(p->gates), free(p->router), free(p->router_adapter);
    for (size_t i = 0; i < p->n; i++)
        free(p->rms[i]), free(p->adapters[i]);
    free(p->rms), free(p->adapters);
}

static void paths_init(paths_t *p, coord_job_t *j)
{
    memset(p, 0, sizeof *p);
    p->tokenizer = rw_malloc(strlen(j->state_dir) + 64);
    sprintf(p->tokenizer, "%s/artifacts/%016" PRIx64, j->state_dir, j->tokenizer);
    p->seed = output_path(j, MSG_TASK_SEED, NULL);
    p->gates = output_path(j, MSG_TASK_GATES, NULL);
    p->router = output_path(j, MSG_TASK_ROUTER, NULL);
    p->router_adapter = output_path(j, MSG_TASK_ROUTER_ADAPTER, NULL);
    p->n = j->n_domains;
    p->rms = rw_new_array(char *, p->n);
    p->adapters = rw_new_array(char *, p->n);
    for (size_t i = 0; i < p->n; i++) {
        p->rms[i] = output_path(j, MSG_TASK_DOMAIN_RM, j->domains[i]);
        p->adapters[i] = output_path(j, MSG_TASK_ADAPTER, j->domains[i]);
    }
}

static json_t *provenance(coord_job_t *j)
{
    return json_pack("{s:s,s:I,s:s,s:i}", "job_id", j->id, "seed", (json_int_t)j->seed, "data",
                     j->data_desc, "protocol_version", PROTO_VERSION);
}

static int write_bundles(coord_job_t *j, const paths_t *p, char *why, size_t whylen)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/bundles", j->out_dir);
    if (mkdir(j->out_dir, 0755) != 0 && errno != EEXIST)
        return snprintf(why, whylen, "cannot create %s: %s", j->out_dir, strerror(errno)), -errno;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return snprintf(why, whylen, "cannot create %s: %s", dir, strerror(errno)), -errno;
    json_t *prov = provenance(j);
    rw_bundle_sources_t src[4];
    for (int k = 0; k < 4; k++)
        src[k] = (rw_bundle_sources_t){.kind = (rw_bundle_kind_t)(RW_BUNDLE_BASELINE + k),
                                       .tokenizer = p->tokenizer,
                                       .domains = (const char *const *)j->domains,
                                       .n_domains = j->n_domains,
                                       .provenance = prov};
    src[0].model = p->seed;
    src[1].model = p->gates;
    src[2].router = p->router;
    src[2].members = (const char *const *)p->rms;
    src[3].base = p->seed;
    src[3].router_adapter = p->router_adapter;
    src[3].members = (const char *const *)p->adapters;
    int rc = 0;
    for (int k = 0; k < 4 && rc == 0; k++) {
        char bdir[4200], err[256] = "";
        snprintf(bdir, sizeof bdir, "%s/%s", dir, rw_bundle_kind_name(src[k].kind));
        rc = rw_bundle_write(&src[k], bdir, err, sizeof err);
        if (rc < 0)
            snprintf(why, whylen, "cannot write the %s bundle: %s",
                     rw_bundle_kind_name(src[k].kind), err);
        else
            RW_INFO(WHO, "bundle %s written", bdir);
    }
    json_decref(prov);
    return rc;
}

/* Evaluates every bundle; their entries of results.json go to bundles. */
static int eval_bundles(coord_job_t *j, json_t *bundles, char *why, size_t whylen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data.jsonl", j->state_dir);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_opts_t io;
    rw_import_opts_init(&io);
    int rc = rw_dataset_load(&ds, path, &io, NULL);
    if (rc < 0) {
        snprintf(why, whylen, "cannot read %s: %s", path, rw_strerror(rc));
        goto done;
    }
    for (int k = RW_BUNDLE_BASELINE; k <= RW_BUNDLE_ADAPTER && rc == 0; k++) {
        const char *kind = rw_bundle_kind_name((rw_bundle_kind_t)k);
        char dir[4200], err[256] = "";
        snprintf(dir, sizeof dir, "%s/bundles/%s", j->out_dir, kind);
        rw_bundle_t *b = NULL;
        rw_bundle_eval_t e;
        memset(&e, 0, sizeof e);
        if ((rc = rw_bundle_open(dir, &b, err, sizeof err)) < 0) {
            snprintf(why, whylen, "cannot open the %s bundle: %s", kind, err);
            break;
        }
        rw_bundle_set_threads(b, 0); /* every task is done: the cores are free */
        if ((rc = rw_bundle_eval(b, &ds, RW_SPLIT_EVAL, &e)) == 0)
            rc = rw_bundle_record_eval(dir, &e);
        json_t *entry = rc == 0 ? rw_report_bundle_entry(dir, err, sizeof err) : NULL;
        if (rc < 0) {
            snprintf(why, whylen, "cannot evaluate the %s bundle: %s", kind, rw_strerror(rc));
        } else if (!entry) {
            snprintf(why, whylen, "cannot read back the %s bundle: %s", kind, err);
            rc = RW_EIO;
        } else {
            json_array_append_new(bundles, entry);
            RW_INFO(WHO, "%s: mean accuracy %.4f on held-out pairs", kind, e.mean_accuracy);
        }
        rw_bundle_eval_fini(&e);
        rw_bundle_destroy(&b);
    }
done:
    rw_dataset_fini(&ds);
    return rc;
}

static double metric(const json_t *done, const char *name)
{
    return json_number_value(json_object_get(json_object_get(done, "metrics"), name));
}

/* The window [first lease, last result] of the tasks of the given kinds. */
static double window(coord_job_t *j, const msg_task_kind_t *kinds, size_t nk)
{
    double lo = 0, hi = 0;
    for (size_t i = 0; i < j->n_tasks; i++)
        for (size_t k = 0; k < nk; k++)
            if (j->tasks[i].kind == kinds[k]) {
                if (!lo || j->tasks[i].first_lease_ts < lo)
                    lo = j->tasks[i].first_lease_ts;
                if (j->tasks[i].done_ts > hi)
                    hi = j->tasks[i].done_ts;
            }
    return hi > lo ? hi - lo : 0;
}

static json_t *results_json(coord_job_t *j, json_t *bundles, double merge_s, double eval_s)
{
    json_t *doms = json_array(), *tasks = json_array(), *workers = json_object();
    for (size_t i = 0; i < j->n_domains; i++)
        json_array_append_new(doms, json_string(j->domains[i]));
    for (size_t i = 0; i < j->n_tasks; i++) {
        job_task_t *t = &j->tasks[i];
        const json_t *d = t->done;
        const char *worker = json_string_value(json_object_get(d, "worker"));
        json_t *curve = json_object_get(d, "loss_curve");
        json_array_append_new(
            tasks,
            json_pack("{s:I,s:s,s:o,s:i,s:s,s:f,s:f,s:I,s:o,s:f,s:I}", "id", (json_int_t)(i + 1),
                      "kind", msg_task_kind_name(t->kind), "domain",
                      t->domain[0] ? json_string(t->domain) : json_null(), "attempts", t->attempts,
                      "worker", worker ? worker : "", "seconds",
                      metric(d, "seconds") > 0 ? metric(d, "seconds")
                                               : json_number_value(json_object_get(d, "lease_s")),
                      "pairs_per_s", metric(d, "pairs_per_s"), "steps",
                      (json_int_t)metric(d, "steps"), "loss_curve",
                      curve ? json_incref(curve) : json_array(), "train_accuracy",
                      metric(d, "train_accuracy"), "params", (json_int_t)metric(d, "params")));
        if (!worker)
            continue;
        json_t *w = json_object_get(workers, worker);
        if (!w) {
            json_t *th = json_object_get(j->threads, worker);
            w = json_pack("{s:s,s:I,s:i,s:f}", "id", worker, "threads",
                          th ? json_integer_value(th) : (json_int_t)1, "tasks", 0, "pairs_per_s",
                          0.0);
            json_object_set_new(workers, worker, w);
        }
        json_int_t n = json_integer_value(json_object_get(w, "tasks"));
        double pps = json_number_value(json_object_get(w, "pairs_per_s"));
        json_object_set_new(w, "tasks", json_integer(n + 1));
        json_object_set_new(
            w, "pairs_per_s",
            json_real((pps * (double)n + metric(d, "pairs_per_s")) / (double)(n + 1)));
    }
    json_t *wl = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(workers, key, v)
    {
        json_array_append(wl, v);
    }
    json_decref(workers);
    msg_task_kind_t s0[] = {MSG_TASK_SEED},
                    s1[] = {MSG_TASK_EXPERT, MSG_TASK_DOMAIN_RM, MSG_TASK_ADAPTER},
                    rt[] = {MSG_TASK_ROUTER, MSG_TASK_ROUTER_ADAPTER, MSG_TASK_GATES};
    json_t *stages = json_pack(
        "[{s:s,s:f},{s:s,s:f},{s:s,s:f},{s:s,s:f},{s:s,s:f},{s:s,s:f}]", "name", "prepare",
        "seconds", j->prepare_s, "name", "stage0", "seconds", window(j, s0, 1), "name", "stage1",
        "seconds", window(j, s1, 3), "name", "router", "seconds", window(j, rt, 3), "name", "merge",
        "seconds", merge_s, "name", "eval", "seconds", eval_s);
    json_t *job = json_pack("{s:s,s:I,s:s,s:o,s:s,s:f}", "id", j->id, "seed", (json_int_t)j->seed,
                            "data", j->data_desc, "domains", doms, "started", j->started_iso,
                            "wall_s", wall() - j->started_ts + j->prepare_s);
    return json_pack("{s:o,s:o,s:o,s:o,s:O}", "job", job, "stages", stages, "tasks", tasks,
                     "workers", wl, "bundles", bundles);
}

int coord_job_finish(void *job, const plan_t *p, char *why, size_t whylen)
{
    coord_job_t *j = job;
    (void)p;
    char done[4096];
    snprintf(done, sizeof done, "%s/results.json", j->state_dir);
    if (j->finished_ts > 0 && access(done, R_OK) == 0) {
        RW_INFO(WHO, "the journal says this job is finished: %s stands", done);
        return 0;
    }
    paths_t paths;
    paths_init(&paths, j);
    json_t *bundles = json_array(), *results = NULL;
    double t0 = wall();
    int rc = write_bundles(j, &paths, why, whylen);
    double t1 = wall();
    if (rc == 0)
        rc = eval_bundles(j, bundles, why, whylen);
    double t2 = wall();
    if (rc == 0) {
        results = results_json(j, bundles, t1 - t0, t2 - t1);
        char path[4096];
        snprintf(path, sizeof path, "%s/results.json", j->state_dir);
        char *text = json_dumps(results, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        rc = text ? rw_afile_write(path, text, strlen(text)) : RW_ENOMEM;
        free(text);
        if (rc < 0)
            snprintf(why, whylen, "cannot write %s: %s", path, rw_strerror(rc));
    }
    if (rc == 0 && (rc = rw_report_render(results, j->out_dir, why, whylen)) == 0)
        RW_INFO(WHO, "report written to %s/report.md", j->out_dir);
    json_decref(results);
    json_decref(bundles);
    paths_fini(&paths);
    return rc;
}
