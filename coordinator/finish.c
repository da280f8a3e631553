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

/* The store path of the output of the task of kind (for domain; of all
 * domains: the one planned for every domain), or NULL. */
static char *output_path(coord_job_t *j, msg_task_kind_t kind, const char *domain)
{
    job_task_t *t = job__output(j, kind, domain);
    if (!t || (!domain && kind != MSG_TASK_SEED && t->n_domains != j->n_domains))
        return NULL;
    const char *hex = json_string_value(json_object_get(t->done, "artifact"));
    char *p = rw_malloc(strlen(j->state_dir) + 64);
    sprintf(p, "%s/artifacts/%s", j->state_dir, hex ? hex : "missing");
    return p;
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

static json_t *provenance(coord_job_t *j, int version)
{
    return json_pack("{s:s,s:I,s:s,s:i,s:i}", "job_id", j->id, "seed", (json_int_t)j->seed, "data",
                     j->data_desc, "protocol_version", PROTO_VERSION, "version", version);
}

static int make_dir(const char *dir, char *why, size_t whylen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int rc = -errno;
        snprintf(why, whylen, "cannot create %s: %s", dir, strerror(errno));
        return rc;
    }
    return 0;
}

/* OUT/bundles/<kind> of a job finished before versions were kept is a
 * folder: it becomes OUT/bundles/v1/<kind>, so every version has its own. */
static int keep_unversioned(const char *dir, char *why, size_t whylen)
{
    char from[4200], v1[4200], to[4300];
    snprintf(v1, sizeof v1, "%s/v1", dir);
    for (int k = RW_BUNDLE_BASELINE; k <= RW_BUNDLE_ADAPTER; k++) {
        struct stat st;
        const char *kind = rw_bundle_kind_name((rw_bundle_kind_t)k);
        snprintf(from, sizeof from, "%s/%s", dir, kind);
        if (lstat(from, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        snprintf(to, sizeof to, "%s/%s", v1, kind);
        int rc = make_dir(v1, why, whylen);
        if (rc == 0 && rename(from, to) != 0) {
            rc = -errno;
            snprintf(why, whylen, "cannot move %s to %s: %s", from, to, strerror(errno));
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* OUT/bundles/<kind> -> v<version>/<kind>, replaced atomically. */
static int point_latest(const char *dir, int version, char *why, size_t whylen)
{
    for (int k = RW_BUNDLE_BASELINE; k <= RW_BUNDLE_ADAPTER; k++) {
        const char *kind = rw_bundle_kind_name((rw_bundle_kind_t)k);
        char target[64], link[4200], tmp[4300];
        snprintf(target, sizeof target, "v%d/%s", version, kind);
        snprintf(link, sizeof link, "%s/%s", dir, kind);
        snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, kind);
        unlink(tmp);
        if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
            int rc = -errno;
            snprintf(why, whylen, "cannot point %s at %s: %s", link, target, strerror(errno));
            unlink(tmp);
            return rc;
        }
    }
    return 0;
}

/* Writes version's bundles into OUT/bundles/v<version>/<kind>; the latest
 * is OUT/bundles/<kind> (a symbolic link), earlier versions stay. */
static int write_bundles(coord_job_t *j, const paths_t *p, int version, char *why, size_t whylen)
{
    char dir[4096], vdir[4200];
    snprintf(dir, sizeof dir, "%s/bundles", j->out_dir);
    snprintf(vdir, sizeof vdir, "%s/v%d", dir, version);
    int rc = make_dir(j->out_dir, why, whylen);
    if (rc == 0)
        rc = make_dir(dir, why, whylen);
    if (rc == 0)
        rc = keep_unversioned(dir, why, whylen);
    if (rc == 0)
        rc = make_dir(vdir, why, whylen);
    if (rc < 0)
        return rc;
    json_t *prov = provenance(j, version);
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
    for (int k = 0; k < 4 && rc == 0; k++) {
        char bdir[4300], err[256] = "";
        snprintf(bdir, sizeof bdir, "%s/%s", vdir, rw_bundle_kind_name(src[k].kind));
        rc = rw_bundle_write(&src[k], bdir, err, sizeof err);
        if (rc < 0)
            snprintf(why, whylen, "cannot write the %s bundle: %s",
                     rw_bundle_kind_name(src[k].kind), err);
        else
            RW_INFO(WHO, "bundle %s written", bdir);
    }
    json_decref(prov);
    if (rc == 0)
        rc = point_latest(dir, version, why, whylen);
    return rc;
}

/* The held-out pairs of every domain: the job's data and what each added
 * domain uploaded. */
static int eval_data(coord_job_t *j, rw_dataset_t *ds, char *why, size_t whylen)
{
    char path[4096];
    rw_import_opts_t io;
    rw_import_opts_init(&io);
    snprintf(path, sizeof path, "%s/data.jsonl", j->state_dir);
    int rc = rw_dataset_load(ds, path, &io, NULL);
    for (size_t i = 0; rc == 0 && i < j->n_added; i++) {
        snprintf(path, sizeof path, "%s/artifacts/%016" PRIx64, j->state_dir, j->added[i].upload);
        rc = rw_dataset_load(ds, path, &io, NULL);
    }
    if (rc < 0)
        snprintf(why, whylen, "cannot read %s: %s", path, rw_strerror(rc));
    return rc;
}

/* Evaluates every bundle; their entries of results.json go to bundles. */
static int eval_bundles(coord_job_t *j, int version, json_t *bundles, char *why, size_t whylen)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    int rc = eval_data(j, &ds, why, whylen);
    if (rc < 0)
        goto done;
    for (int k = RW_BUNDLE_BASELINE; k <= RW_BUNDLE_ADAPTER && rc == 0; k++) {
        const char *kind = rw_bundle_kind_name((rw_bundle_kind_t)k);
        char dir[4200], err[256] = "";
        snprintf(dir, sizeof dir, "%s/bundles/v%d/%s", j->out_dir, version, kind);
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

/* The window [first lease, last result] of the tasks of the given kinds
 * planned by added domain a (-1: by the job's start). */
static double window_of(coord_job_t *j, int a, const msg_task_kind_t *kinds, size_t nk)
{
    double lo = 0, hi = 0;
    for (size_t i = 0; i < j->n_tasks; i++)
        for (size_t k = 0; k < nk; k++)
            if (j->tasks[i].kind == kinds[k] && j->tasks[i].added == a) {
                if (!lo || j->tasks[i].first_lease_ts < lo)
                    lo = j->tasks[i].first_lease_ts;
                if (j->tasks[i].done_ts > hi)
                    hi = j->tasks[i].done_ts;
            }
    return hi > lo ? hi - lo : 0;
}

static double window(coord_job_t *j, const msg_task_kind_t *kinds, size_t nk)
{
    return window_of(j, -1, kinds, nk);
}

static json_t *added_json(coord_job_t *j, double merge_s, double eval_s)
{
    json_t *arr = json_array();
    msg_task_kind_t s1[] = {MSG_TASK_EXPERT, MSG_TASK_DOMAIN_RM, MSG_TASK_ADAPTER},
                    rt[] = {MSG_TASK_ROUTER, MSG_TASK_ROUTER_ADAPTER, MSG_TASK_GATES};
    for (size_t i = 0; i < j->n_added; i++) {
        const job_added_t *a = &j->added[i];
        double last = 0;
        for (size_t k = 0; k < j->n_tasks; k++)
            if (j->tasks[k].added == (int)i && j->tasks[k].done_ts > last)
                last = j->tasks[k].done_ts;
        /* the last domain's add ends with this finish */
        double end = i + 1 == j->n_added ? wall() : last;
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:I,s:I,s:I,s:f,s:f,s:f,s:f}", "domain", a->domain, "worker",
                           a->worker, "train", (json_int_t)a->train, "train_prompts",
                           (json_int_t)a->train_prompts, "eval", (json_int_t)a->eval, "stage1_s",
                           window_of(j, (int)i, s1, 3), "router_s", window_of(j, (int)i, rt, 3),
                           "merge_eval_s", i + 1 == j->n_added ? merge_s + eval_s : 0.0, "wall_s",
                           end > a->ts ? end - a->ts : 0.0));
    }
    return arr;
}

json_t *job__workers_json(coord_job_t *j)
{
    json_t *workers = json_object(), *seconds = json_object();
    for (size_t i = 0; i < j->n_tasks; i++) {
        const json_t *d = j->tasks[i].done;
        const char *worker = json_string_value(json_object_get(d, "worker"));
        if (!worker)
            continue;
        json_t *w = json_object_get(workers, worker);
        if (!w) {
            json_t *th = json_object_get(j->threads, worker);
            w = json_pack("{s:s,s:I,s:i,s:f}", "id", worker, "threads",
                          th ? json_integer_value(th) : (json_int_t)1, "tasks", 0, "pairs_per_s",
                          0.0);
            json_object_set_new(workers, worker, w);
            json_object_set_new(seconds, worker, json_pack("[f,f]", 0.0, 0.0));
        }
        json_object_set_new(w, "tasks",
                            json_integer(json_integer_value(json_object_get(w, "tasks")) + 1));
        /* pairs over seconds of all its tasks: a mean of the tasks' own
         * rates would count a 2 s task at 7,000 pairs/s as much as an 87 s
         * one at 700, and overstate what the worker got through */
        double pps = metric(d, "pairs_per_s"), sec = metric(d, "seconds");
        json_t *acc = json_object_get(seconds, worker);
        if (pps > 0 && sec > 0) {
            json_array_set_new(acc, 0,
                               json_real(json_number_value(json_array_get(acc, 0)) + pps * sec));
            json_array_set_new(acc, 1, json_real(json_number_value(json_array_get(acc, 1)) + sec));
        }
    }
    json_t *wl = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(workers, key, v)
    {
        json_t *acc = json_object_get(seconds, key);
        double pairs = json_number_value(json_array_get(acc, 0)),
               sec = json_number_value(json_array_get(acc, 1));
        json_object_set_new(v, "pairs_per_s", json_real(sec > 0 ? pairs / sec : 0.0));
        json_array_append(wl, v);
    }
    json_decref(seconds);
    json_decref(workers);
    return wl;
}

/* The seconds of stage name in the results at path (the last version's),
 * or -1 when they do not say. */
static double stage_of(const char *path, const char *name)
{
    json_t *res = json_load_file(path, 0, NULL), *s;
    double v = -1;
    size_t i;
    json_array_foreach(json_object_get(res, "stages"), i, s)
    {
        const char *n = json_string_value(json_object_get(s, "name"));
        json_t *sec = json_object_get(s, "seconds");
        if (n && strcmp(n, name) == 0 && json_is_number(sec))
            v = json_number_value(sec);
    }
    json_decref(res);
    return v;
}

static json_t *results_json(coord_job_t *j, int version, json_t *bundles, double merge_s,
                            double eval_s)
{
    /* the stages are the first version's, as job.wall_s is: a later
     * version's merge and evaluation are its added domain's
     * (job.added[].merge_eval_s), and the results it replaces carry the
     * first's */
    double stage_merge = merge_s, stage_eval = eval_s;
    if (version > 1) {
        char path[4096];
        snprintf(path, sizeof path, "%s/results.json", j->state_dir);
        double m = stage_of(path, "merge"), e = stage_of(path, "eval");
        if (m >= 0 && e >= 0)
            stage_merge = m, stage_eval = e;
    }
    json_t *doms = json_array(), *tasks = json_array();
    for (size_t i = 0; i < j->n_domains; i++)
        json_array_append_new(doms, json_string(j->domains[i]));
    for (size_t i = 0; i < j->n_tasks; i++) {
        job_task_t *t = &j->tasks[i];
        const json_t *d = t->done;
        const char *worker = json_string_value(json_object_get(d, "worker"));
        json_t *curve = json_object_get(d, "loss_curve");
        /* null where the worker did not say (a result of an older build) */
        json_t *epochs = json_object_get(json_object_get(d, "metrics"), "epochs");
        json_array_append_new(
            tasks,
            json_pack("{s:I,s:s,s:o,s:i,s:s,s:f,s:f,s:I,s:o,s:I,s:o,s:f,s:I}", "id",
                      (json_int_t)(i + 1), "kind", msg_task_kind_name(t->kind), "domain",
                      t->domain[0] ? json_string(t->domain) : json_null(), "attempts", t->attempts,
                      "worker", worker ? worker : "", "seconds",
                      metric(d, "seconds") > 0 ? metric(d, "seconds")
                                               : json_number_value(json_object_get(d, "lease_s")),
                      "pairs_per_s", metric(d, "pairs_per_s"), "steps",
                      (json_int_t)metric(d, "steps"), "epochs",
                      epochs ? json_incref(epochs) : json_null(), "kept_epoch",
                      (json_int_t)metric(d, "kept_epoch"), "loss_curve",
                      curve ? json_incref(curve) : json_array(), "train_accuracy",
                      metric(d, "train_accuracy"), "params", (json_int_t)metric(d, "params")));
    }
    json_t *wl = job__workers_json(j);
    msg_task_kind_t s0[] = {MSG_TASK_SEED},
                    s1[] = {MSG_TASK_EXPERT, MSG_TASK_DOMAIN_RM, MSG_TASK_ADAPTER},
                    rt[] = {MSG_TASK_ROUTER, MSG_TASK_ROUTER_ADAPTER, MSG_TASK_GATES};
    json_t *stages = json_pack(
        "[{s:s,s:f},{s:s,s:f},{s:s,s:f},{s:s,s:f},{s:s,s:f},{s:s,s:f}]", "name", "prepare",
        "seconds", j->prepare_s, "name", "stage0", "seconds", window(j, s0, 1), "name", "stage1",
        "seconds", window(j, s1, 3), "name", "router", "seconds", window(j, rt, 3), "name", "merge",
        "seconds", stage_merge, "name", "eval", "seconds", stage_eval);
    /* the job's wall time is that of its first version: an added domain
     * has its own (job.added[].wall_s) */
    double first_end = version > 1 && j->first_finished_ts > 0 ? j->first_finished_ts : wall();
    json_t *job = json_pack("{s:s,s:I,s:s,s:o,s:s,s:f,s:i,s:o}", "id", j->id, "seed",
                            (json_int_t)j->seed, "data", j->data_desc, "domains", doms, "started",
                            j->started_iso, "wall_s", first_end - j->started_ts + j->prepare_s,
                            "version", version, "added", added_json(j, merge_s, eval_s));
    return json_pack("{s:o,s:o,s:o,s:o,s:O}", "job", job, "stages", stages, "tasks", tasks,
                     "workers", wl, "bundles", bundles);
}

int coord_job_finish(void *job, const plan_t *p, char *why, size_t whylen)
{
    coord_job_t *j = job;
    (void)p;
    char done[4096];
    snprintf(done, sizeof done, "%s/results.json", j->state_dir);
    if (j->version > 0 && j->built_domains == j->n_domains && access(done, R_OK) == 0) {
        RW_INFO(WHO, "the journal says version %d of the bundles is done: %s stands", j->version,
                done);
        return 0;
    }
    int version = j->version + 1;
    paths_t paths;
    paths_init(&paths, j);
    json_t *bundles = json_array(), *results = NULL;
    double t0 = wall();
    int rc = write_bundles(j, &paths, version, why, whylen);
    double t1 = wall();
    if (rc == 0)
        rc = eval_bundles(j, version, bundles, why, whylen);
    double t2 = wall();
    if (rc == 0) {
        results = results_json(j, version, bundles, t1 - t0, t2 - t1);
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
