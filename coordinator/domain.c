/* domain.c — a domain a worker brings to a running or finished job.
 *
 * The worker imported its file with the importer's checks and keeps its
 * pairs: what it uploads is its held-out pairs (for the evaluation of every
 * bundle on it) and its train prompts alone (for the classifiers), whose
 * replies are stand-ins (DOMAIN_WITHHELD_*). Here the upload is read
 * through the same importer, on a thread off the coordinator's loop
 * (job__domain_read): the domain must be new, its records all good and of
 * that domain, its counts those the worker announced, and every domain's
 * data for the classifiers goes into the store as one artifact. Then, on
 * the loop (job__domain_add), the job records the domain ("domain") and
 * that artifact ("all_data") and plans:
 *
 *   expert:D, domain_rm:D, adapter:D  <- seed          on the worker that brought D
 *   router, router_adapter            (<- seed)        for N+1 domains (router)
 *   gates  <- seed, every expert                       for N+1 domains (router)
 *
 * so D's pairs never leave its worker, nothing of the other domains is
 * trained again, and the finish writes the next version of the bundles.
 * Nothing is recorded for a refused domain: the job stays as it was.
 */
#include "job_int.h"

#include "alloc.h"
#include "dataset.h"
#include "err.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO "job"

int job__domain_check(void *job, const char *worker, const coord_domain_t *d, char *why,
                      size_t whylen)
{
    coord_job_t *j = job;
    for (size_t i = 0; i < j->n_domains; i++) {
        if (strcmp(j->domains[i], d->name) != 0)
            continue;
        size_t first_added = j->n_domains - j->n_added;
        const job_added_t *a = i >= first_added ? &j->added[i - first_added] : NULL;
        if (a && strcmp(a->worker, worker) == 0 && j->domain_data[i] == d->shard)
            return 1; /* it brought this very data before: it came back */
        snprintf(why, whylen,
                 "domain %s refused: the job has a domain of that name already (%s%s%s); "
                 "choose another name",
                 d->name, a ? "brought by worker " : "from the job's data", a ? a->worker : "", "");
        return RW_EEXIST;
    }
    if (j->n_domains + 1 > RW_TASK_MAX_DOMAINS) {
        snprintf(why, whylen, "domain %s refused: the job has %zu domains, the most it takes",
                 d->name, j->n_domains);
        return RW_ETOOBIG;
    }
    return 0;
}

typedef struct bad_records {
    size_t n;
    char first[300];
} bad_records_t;

static void on_reject(void *ctx, const char *path, size_t line, const rw_rejection_t *rj)
{
    bad_records_t *b = ctx;
    (void)path;
    if (b->n++ == 0)
        snprintf(b->first, sizeof b->first, "record %zu: %s", line, rj->msg);
}

/* Reads and checks d's upload into ds. Returns 0 with the counts, or a
 * refusal with why. */
static int read_upload(store_t *st, const coord_domain_t *d, rw_dataset_t *ds, uint64_t *train,
                       uint64_t *eval, char *why, size_t whylen)
{
    char path[STORE_PATH_MAX];
    bad_records_t bad = {0};
    rw_import_opts_t io;
    rw_import_opts_init(&io);
    io.on_reject = on_reject;
    io.ctx = &bad;
    int rc = store_verify(st, d->upload, NULL);
    if (rc == 0)
        rc = rw_dataset_load(ds, store_path(st, d->upload, path, sizeof path), &io, NULL);
    if (rc < 0 || bad.n) {
        snprintf(why, whylen, "domain %s refused: its uploaded data does not pass the importer: %s",
                 d->name, bad.n ? bad.first : rw_strerror(rc));
        return rc < 0 ? rc : RW_EBADREC;
    }
    *train = *eval = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (strcmp(ds->pairs[i].domain, d->name) != 0) {
            snprintf(why, whylen,
                     "domain %s refused: its uploaded data holds domain %s (record %zu)", d->name,
                     ds->pairs[i].domain, i + 1);
            return RW_EINVAL;
        }
        ++*(ds->pairs[i].split == RW_SPLIT_EVAL ? eval : train);
    }
    if (*train == 0 || *eval == 0) {
        snprintf(why, whylen,
                 "domain %s refused: it needs train and held-out pairs (it has %" PRIu64
                 " and %" PRIu64 ")",
                 d->name, *train, *eval);
        return RW_EEMPTY;
    }
    if (*train + *eval > d->pairs) { /* fewer: train prompts asked twice are kept once */
        snprintf(why, whylen,
                 "domain %s refused: %" PRIu64 " records uploaded for %" PRIu64 " pairs", d->name,
                 *train + *eval, d->pairs);
        return RW_EINVAL;
    }
    return 0;
}

/* Every domain's data for the classifiers: the job's, then what each added
 * domain uploaded, as one new artifact. */
static int put_all_data(const coord_job_t *j, store_t *st, const rw_dataset_t *added, uint64_t *id)
{
    char path[STORE_PATH_MAX], tmp[STORE_PATH_MAX];
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_opts_t io;
    rw_import_opts_init(&io);
    uint64_t from = j->all_data ? j->all_data : j->data;
    int rc = rw_dataset_load(&ds, store_path(st, from, path, sizeof path), &io, NULL);
    for (size_t i = 0; rc == 0 && i < added->n; i++) {
        const rw_pair_t *p = &added->pairs[i];
        rw_pair_t *q = rw_dataset_add(&ds, p->prompt, p->prompt_len, p->chosen, p->chosen_len,
                                      p->rejected, p->rejected_len, p->domain);
        q->split = p->split;
    }
    if (rc == 0)
        rc = rw_dataset_save(&ds, store_tmp_path(st, tmp, sizeof tmp));
    if (rc == 0)
        rc = store_adopt(st, tmp, 0, id);
    rw_dataset_fini(&ds);
    return rc;
}

/* The tasks of a new domain (the last of j->domains) and the router update. */
static int plan_domain(coord_job_t *j, coord_t *c, const char *worker)
{
    const plan_t *p = coord_plan(c);
    const plan_task_t *seed_task = plan_find(p, MSG_TASK_SEED, NULL);
    if (!seed_task)
        return RW_ESTATE;
    uint64_t seed = seed_task->id;
    const char *name = j->domains[j->n_domains - 1];
    size_t n = j->n_domains;
    uint64_t *gate_deps = rw_new_array(uint64_t, n + 1);
    gate_deps[0] = seed;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i + 1 < n; i++) {
        const plan_task_t *e = plan_find(p, MSG_TASK_EXPERT, j->domains[i]);
        if (!e)
            rc = RW_ESTATE;
        else
            gate_deps[1 + i] = e->id;
    }
    if (rc == 0 &&
        !(gate_deps[n] = coord_add_task_on(c, MSG_TASK_EXPERT, name, "train", worker, &seed, 1)))
        rc = RW_EINVAL;
    bool on_seed;
    if (rc == 0 && (rc = job__needs_base(j, MSG_TASK_DOMAIN_RM, name, &on_seed)) == 0 &&
        !coord_add_task_on(c, MSG_TASK_DOMAIN_RM, name, "train", worker, &seed, on_seed))
        rc = RW_EINVAL;
    if (rc == 0 && !coord_add_task_on(c, MSG_TASK_ADAPTER, name, "train", worker, &seed, 1))
        rc = RW_EINVAL;
    if (rc == 0)
        rc = job__plan_classifiers(c, true, gate_deps, n + 1);
    free(gate_deps);
    return rc;
}

int job__domain_read(void *job, store_t *st, const coord_domain_t *d, coord_domain_read_t *r,
                     char *why, size_t whylen)
{
    const coord_job_t *j = job;
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    int rc = read_upload(st, d, &ds, &r->train, &r->eval, why, whylen);
    if (rc == 0 && (rc = put_all_data(j, st, &ds, &r->artifact)) < 0)
        snprintf(why, whylen, "domain %s: cannot store the classifiers' data: %s", d->name,
                 rw_strerror(rc));
    rw_dataset_fini(&ds);
    return rc;
}

int job__domain_add(void *job, coord_t *c, const char *worker, const coord_domain_t *d,
                    const coord_domain_read_t *r, char *why, size_t whylen)
{
    coord_job_t *j = job;
    int rc = job__domain_check(j, worker, d, why, whylen);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    json_t *rec = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "domain", d->name, "worker",
                            worker, "shard", (json_int_t)d->shard, "upload", (json_int_t)d->upload,
                            "pairs", (json_int_t)d->pairs, "train", (json_int_t)r->train, "eval",
                            (json_int_t)r->eval, "bytes", (json_int_t)d->bytes);
    if ((rc = coord_record(c, "domain", rec)) < 0 ||
        (rc = job__record_artifact(c, "all_data", r->artifact)) < 0 ||
        (rc = plan_domain(j, c, worker)) < 0 ||
        (rc = coord_record(c, "domain_planned", json_pack("{s:s}", "domain", d->name))) < 0) {
        /* the journal holds part of it: a restart replays that much */
        snprintf(why, whylen, "domain %s: cannot plan it: %s", d->name, rw_strerror(rc));
        RW_ERROR(WHO, "%s", why);
        return rc;
    }
    RW_INFO(WHO,
            "domain %s: %" PRIu64 " train prompts and %" PRIu64 " held-out pairs came; its %" PRIu64
            " train pairs stay with %s",
            d->name, r->train, r->eval, d->pairs > r->eval ? d->pairs - r->eval : r->train, worker);
    return 0;
}

int job__domain_complete(coord_job_t *j, coord_t *c)
{
    job_added_t *a = &j->added[j->n_added - 1];
    RW_WARN(WHO, "domain %s: the journal does not say its planning ended; completing it",
            a->domain);
    int rc = 0;
    if (!a->has_all_data) {
        coord_domain_t d = {.pairs = a->pairs,
                            .bytes = a->bytes,
                            .shard = j->domain_data[j->n_domains - 1], /* the last added */
                            .upload = a->upload};
        snprintf(d.name, sizeof d.name, "%s", a->domain);
        coord_domain_read_t r;
        char why[512];
        /* as when it came: the classifiers' data before it (j->all_data), and its upload */
        rc = job__domain_read(j, coord_store(c), &d, &r, why, sizeof why);
        if (rc < 0)
            RW_ERROR(WHO, "%s", why);
        else
            rc = job__record_artifact(c, "all_data", r.artifact);
    }
    coord_redeclare(c, a->first_task);
    if (rc == 0)
        rc = plan_domain(j, c, a->worker);
    coord_redeclare(c, 0);
    if (rc == 0)
        rc = coord_record(c, "domain_planned", json_pack("{s:s}", "domain", a->domain));
    if (rc < 0)
        RW_ERROR(WHO, "domain %s: cannot complete its planning: %s", a->domain, rw_strerror(rc));
    return rc;
}
