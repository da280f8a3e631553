/* job.c — the job of DESIGN.md: its shards, its plan, its leases; see job.h.
 *
 * What the job must remember goes through the service's records ("job",
 * "artifact", and the service's own "task", "lease", "done"), and apply()
 * below is the only place that changes the job's state from them, live or
 * replayed: so a restarted coordinator has the same artifacts, results and
 * loss curves as the one that stopped.
 */
#include "job_int.h"

#include "alloc.h"
#include "bpe.h"
#include "dataset.h"
#include "err.h"
#include "log.h"
#include "safetensors.h"
#include "task.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define WHO "job"

void coord_json_merge(json_t *dst, const json_t *src)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)src, key, v)
    {
        json_t *d = json_object_get(dst, key);
        if (json_is_object(d) && json_is_object(v))
            coord_json_merge(d, v);
        else
            json_object_set(dst, key, v);
    }
}

static int fail(char *why, size_t whylen, int rc, const char *fmt, const char *a, const char *b)
{
    snprintf(why, whylen, fmt, a, b);
    return rc;
}

static const char *const config_keys[] = {"all",     "seed",   "domain_rm",      "expert",
                                          "adapter", "router", "router_adapter", "gates"};

int coord_job_new(const coord_job_opts_t *o, coord_job_t **out, char *why, size_t whylen)
{
    int rc;
    char path[4096], err[256];
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_bpe_t *bpe = NULL;
    coord_job_t *j = rw_new(coord_job_t);
    j->state_dir = rw_strdup(o->state_dir);
    j->out_dir = rw_strdup(o->out_dir);
    j->data_desc = rw_strdup(o->data ? o->data : "synthetic");
    j->config = o->config ? json_deep_copy(o->config) : json_object();
    j->seed = o->seed;
    j->prepare_s = o->prepare_s;
    j->threads = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(j->config, key, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++)
            known |= strcmp(key, config_keys[i]) == 0;
        if (!known || !json_is_object(v)) {
            rc = fail(why, whylen, RW_EINVAL,
                      "job configuration: '%s' is not a task kind or \"all\" with an object%s", key,
                      "");
            goto fail;
        }
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", o->state_dir);
    if ((rc = rw_bpe_load(path, &bpe, err, sizeof err)) < 0) {
        rc = fail(why, whylen, rc, "cannot load the tokenizer %s: %s", path, err);
        goto fail;
    }
    j->vocab = rw_bpe_vocab_size(bpe);
    rw_bpe_destroy(&bpe);
    snprintf(path, sizeof path, "%s/data.jsonl", o->state_dir);
    rw_import_opts_t io;
    rw_import_opts_init(&io);
    if ((rc = rw_dataset_load(&ds, path, &io, NULL)) < 0 || ds.n == 0) {
        rc = fail(why, whylen, rc < 0 ? rc : RW_EEMPTY, "cannot read the job's data %s: %s", path,
                  rc < 0 ? rw_strerror(rc) : "no pairs");
        goto fail;
    }
    const char **names;
    j->n_domains = rw_dataset_domains(&ds, &names);
    if (j->n_domains > RW_TASK_MAX_DOMAINS) {
        free(names);
        rc = fail(why, whylen, RW_ETOOBIG, "%s: too many domains%s", path, "");
        goto fail;
    }
    j->domains = rw_new_array(char *, j->n_domains);
    j->domain_data = rw_new_array(uint64_t, j->n_domains);
    for (size_t i = 0; i < j->n_domains; i++)
        j->domains[i] = rw_strdup(names[i]);
    free(names);
    rw_dataset_fini(&ds);
    /* every task's spec must come out valid: find a bad configuration now */
    for (int k = MSG_TASK_SEED; k < MSG_TASK_EVAL; k++) {
        char *spec = coord_job_spec(j, (msg_task_kind_t)k, j->domains[0], why, whylen);
        if (!spec) {
            rc = RW_EINVAL;
            goto fail;
        }
        free(spec);
    }
    *out = j;
    return 0;

fail:
    rw_dataset_fini(&ds);
    coord_job_destroy(&j);
    return rc;
}

void coord_job_destroy(coord_job_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    coord_job_t *j = *self_p;
    for (size_t i = 0; i < j->n_domains; i++)
        free(j->domains[i]);
    free(j->domains);
    free(j->domain_data);
    for (size_t i = 0; i < j->n_tasks; i++) {
        json_decref(j->tasks[i].curve);
        json_decref(j->tasks[i].done);
    }
    free(j->tasks);
    free(j->added);
    free(j->lease_spec);
    json_decref(j->config);
    json_decref(j->threads);
    free(j->state_dir);
    free(j->out_dir);
    free(j->data_desc);
    free(j);
    *self_p = NULL;
}

job_task_t *job__task(coord_job_t *j, uint64_t id)
{
    return id >= 1 && id <= j->n_tasks ? &j->tasks[id - 1] : NULL;
}

/* ---- specs ---- */

/* The spec of a task planned when the job had its first n domains. */
static char *spec_n(coord_job_t *j, msg_task_kind_t kind, const char *domain, size_t n,
                    bool *needs_base, char *why, size_t whylen);

char *coord_job_spec(coord_job_t *j, msg_task_kind_t kind, const char *domain, char *why,
                     size_t whylen)
{
    return spec_n(j, kind, domain, j->n_domains, NULL, why, whylen);
}

int job__needs_base(coord_job_t *j, msg_task_kind_t kind, const char *domain, bool *out)
{
    char why[256];
    char *spec = spec_n(j, kind, domain, j->n_domains, out, why, sizeof why);
    if (!spec) {
        RW_ERROR(WHO, "%s", why);
        return RW_EINVAL;
    }
    free(spec);
    return 0;
}

static char *spec_n(coord_job_t *j, msg_task_kind_t kind, const char *domain, size_t n,
                    bool *needs_base, char *why, size_t whylen)
{
    rw_task_kind_t k = rw_task_kind_from_name(msg_task_kind_name(kind));
    if (k == RW_TASK__NONE) {
        snprintf(why, whylen, "no task kind %s", msg_task_kind_name(kind));
        return NULL;
    }
    rw_task_spec_t s;
    rw_task_spec_init(&s, k);
    bool per_domain = k == RW_TASK_DOMAIN_RM || k == RW_TASK_EXPERT || k == RW_TASK_ADAPTER;
    if (per_domain && domain)
        s.domain = rw_strdup(domain);
    for (size_t i = 0; i < n; i++)
        s.domains[i] = rw_strdup(j->domains[i]);
    s.n_domains = n;
    s.seed = j->seed;
    s.model.vocab = (int)j->vocab;
    if (s.model.head == RW_HEAD_CLASSIFIER)
        s.model.n_classes = (int)n;
    if (s.lora.head == RW_HEAD_CLASSIFIER)
        s.lora.n_classes = (int)n;
    char *text = rw_task_spec_to_json(&s);
    rw_task_spec_fini(&s);
    json_t *spec = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!spec) {
        snprintf(why, whylen, "the %s spec is not JSON", msg_task_kind_name(kind));
        return NULL;
    }
    const json_t *all = json_object_get(j->config, "all"),
                 *own = json_object_get(j->config, msg_task_kind_name(kind));
    if (all)
        coord_json_merge(spec, all);
    if (own)
        coord_json_merge(spec, own);
    text = json_dumps(spec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(spec);
    char err[160];
    if (rw_task_spec_from_json(text, &s, err, sizeof err) < 0) {
        snprintf(why, whylen, "job configuration: the %s spec is not valid: %s",
                 msg_task_kind_name(kind), err);
        free(text);
        return NULL;
    }
    if (needs_base)
        *needs_base = rw_task_spec_needs_base(&s);
    rw_task_spec_fini(&s);
    return text;
}

/* ---- the service's hooks ---- */

static int put_shard(coord_job_t *j, coord_t *c, const rw_dataset_t *all, const char *domain,
                     uint64_t *id)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    for (size_t i = 0; i < all->n; i++) {
        const rw_pair_t *p = &all->pairs[i];
        if (strcmp(p->domain, domain) != 0)
            continue;
        rw_pair_t *q = rw_dataset_add(&ds, p->prompt, p->prompt_len, p->chosen, p->chosen_len,
                                      p->rejected, p->rejected_len, p->domain);
        q->split = p->split;
    }
    char tmp[STORE_PATH_MAX];
    store_t *st = coord_store(c);
    int rc = rw_dataset_save(&ds, store_tmp_path(st, tmp, sizeof tmp));
    rw_dataset_fini(&ds);
    if (rc == 0)
        rc = store_adopt(st, tmp, 0, id);
    (void)j;
    return rc;
}

int job__record_artifact(coord_t *c, const char *role, uint64_t id)
{
    json_t *rec = json_pack("{s:s,s:I}", "role", role, "artifact_id", (json_int_t)id);
    json_object_set_new(rec, "artifact", json_sprintf("%016" PRIx64, id));
    return coord_record(c, "artifact", rec);
}

static int make_shards(coord_job_t *j, coord_t *c)
{
    char path[4096];
    uint64_t id;
    int rc;
    store_t *st = coord_store(c);
    snprintf(path, sizeof path, "%s/tokenizer.json", j->state_dir);
    if ((rc = store_put_file(st, path, &id)) < 0 ||
        (rc = job__record_artifact(c, "tokenizer", id)) < 0)
        return rc;
    snprintf(path, sizeof path, "%s/data.jsonl", j->state_dir);
    if ((rc = store_put_file(st, path, &id)) < 0 || (rc = job__record_artifact(c, "data", id)) < 0)
        return rc;
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_opts_t io;
    rw_import_opts_init(&io);
    if ((rc = rw_dataset_load(&ds, path, &io, NULL)) < 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < j->n_domains - j->n_added; i++) { /* not one brought */
        char role[MSG_NAME_MAX + 8];
        snprintf(role, sizeof role, "data:%s", j->domains[i]);
        if ((rc = put_shard(j, c, &ds, j->domains[i], &id)) == 0)
            rc = job__record_artifact(c, role, id);
    }
    rw_dataset_fini(&ds);
    return rc;
}

static int plan_job(coord_job_t *j, coord_t *c)
{
    size_t n = j->n_domains;
    uint64_t seed = coord_add_task(c, MSG_TASK_SEED, NULL, "train", NULL, 0);
    if (!seed || !coord_add_task(c, MSG_TASK_ROUTER, NULL, "router", NULL, 0))
        return RW_EINVAL;
    uint64_t *gate_deps = rw_new_array(uint64_t, n + 1);
    gate_deps[0] = seed;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!(gate_deps[1 + i] =
                  coord_add_task(c, MSG_TASK_EXPERT, j->domains[i], "train", &seed, 1)))
            rc = RW_EINVAL;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bool on_seed;
        if ((rc = job__needs_base(j, MSG_TASK_DOMAIN_RM, j->domains[i], &on_seed)) == 0 &&
            !coord_add_task(c, MSG_TASK_DOMAIN_RM, j->domains[i], "train", &seed, on_seed))
            rc = RW_EINVAL;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!coord_add_task(c, MSG_TASK_ADAPTER, j->domains[i], "train", &seed, 1))
            rc = RW_EINVAL;
    if (rc == 0)
        rc = job__plan_classifiers(c, false, gate_deps, n + 1);
    free(gate_deps);
    return rc;
}

int job__plan_classifiers(coord_t *c, bool router, const uint64_t *deps, size_t n_deps)
{
    if (router && !coord_add_task(c, MSG_TASK_ROUTER, NULL, "router", NULL, 0))
        return RW_EINVAL;
    if (!coord_add_task(c, MSG_TASK_ROUTER_ADAPTER, NULL, "router", deps, 1) ||
        !coord_add_task(c, MSG_TASK_GATES, NULL, "router", deps, n_deps))
        return RW_EINVAL;
    return 0;
}

static int record_job(coord_job_t *j, coord_t *c);

static int job_start(void *job, coord_t *c)
{
    coord_job_t *j = job;
    if (j->id[0] && j->planned) { /* replayed: the plan and shards are there already */
        bool whole = true;
        for (size_t i = 0; i < j->n_domains - j->n_added; i++)
            whole &= store_verify(coord_store(c), j->domain_data[i], NULL) == 0;
        int rc = 0;
        if (store_verify(coord_store(c), j->tokenizer, NULL) != 0 ||
            store_verify(coord_store(c), j->data, NULL) != 0 || !whole) {
            RW_WARN(WHO, "the store lacks shards the journal names; making them again from %s",
                    j->state_dir);
            rc = make_shards(j, c);
        }
        if (rc == 0 && j->domain_pending)
            rc = job__domain_complete(j, c);
        return rc;
    }
    int rc = 0;
    if (j->id[0]) {
        /* the start was stopped part way (nothing is leased before it ends):
         * the same shards again, and the plan's tasks past those journaled */
        RW_WARN(WHO,
                "the journal does not say the job's start ended (it was cut short, or an older "
                "rewire wrote it): completing the start (%zu of its tasks journaled)",
                plan_size(coord_plan(c)));
    } else {
        rc = record_job(j, c);
    }
    coord_redeclare(c, 1);
    if (rc == 0)
        rc = make_shards(j, c);
    if (rc == 0)
        rc = plan_job(j, c);
    coord_redeclare(c, 0);
    if (rc == 0)
        rc = coord_record(c, "planned", NULL);
    if (rc < 0)
        RW_ERROR(WHO, "cannot start the job: %s", rw_strerror(rc));
    return rc;
}

/* The job's first record: its id, seed, data and domains. */
static int record_job(coord_job_t *j, coord_t *c)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char id[24], iso[32];
    snprintf(id, sizeof id, "%08lx%04lx", (unsigned long)tv.tv_sec,
             (unsigned long)((tv.tv_usec ^ getpid()) & 0xffff));
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *doms = json_array();
    for (size_t i = 0; i < j->n_domains; i++)
        json_array_append_new(doms, json_string(j->domains[i]));
    int rc = coord_record(
        c, "job",
        json_pack("{s:s,s:I,s:s,s:o,s:O,s:s,s:f,s:f}", "id", id, "seed", (json_int_t)j->seed,
                  "data", j->data_desc, "domains", doms, "config", j->config, "started", iso,
                  "started_ts", (double)tv.tv_sec + tv.tv_usec / 1e6, "prepare_s", j->prepare_s));
    return rc;
}

static int apply_job(coord_job_t *j, const json_t *rec)
{
    json_t *doms = json_object_get(rec, "domains");
    if (json_array_size(doms) != j->n_domains) {
        RW_ERROR(WHO, "the journal's job has %zu domains, the data %zu", json_array_size(doms),
                 j->n_domains);
        return RW_ESTATE;
    }
    /* a job carried on under another configuration would mix the two (a
     * journal an older rewire wrote does not say) */
    const json_t *config = json_object_get(rec, "config");
    if (config && !json_equal(config, j->config)) {
        char *was = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
        RW_ERROR(WHO,
                 "the job in %s was started with the configuration %s, not this one: run it with "
                 "the same --config, or give another folder",
                 j->state_dir, was ? was : "?");
        free(was);
        return RW_ESTATE;
    }
    snprintf(j->id, sizeof j->id, "%s", json_string_value(json_object_get(rec, "id")));
    snprintf(j->started_iso, sizeof j->started_iso, "%s",
             json_string_value(json_object_get(rec, "started")));
    j->started_ts = json_number_value(json_object_get(rec, "started_ts"));
    j->prepare_s = json_number_value(json_object_get(rec, "prepare_s"));
    j->seed = (uint64_t)json_integer_value(json_object_get(rec, "seed"));
    const char *data = json_string_value(json_object_get(rec, "data"));
    if (data) {
        free(j->data_desc);
        j->data_desc = rw_strdup(data);
    }
    return 0;
}

static int apply_artifact(coord_job_t *j, const json_t *rec)
{
    const char *role = json_string_value(json_object_get(rec, "role"));
    uint64_t id = (uint64_t)json_integer_value(json_object_get(rec, "artifact_id"));
    if (!role)
        return RW_EPARSE;
    if (strcmp(role, "tokenizer") == 0)
        j->tokenizer = id;
    else if (strcmp(role, "data") == 0)
        j->data = id;
    else if (strcmp(role, "all_data") == 0) {
        j->all_data = id;
        if (j->n_added)
            j->added[j->n_added - 1].has_all_data = true;
    } else if (strncmp(role, "data:", 5) == 0)
        for (size_t i = 0; i < j->n_domains; i++)
            if (strcmp(j->domains[i], role + 5) == 0)
                j->domain_data[i] = id;
    return 0;
}

/* A domain a worker brought: the job's from now on. */
static int apply_domain(coord_job_t *j, const json_t *rec)
{
    const char *name = json_string_value(json_object_get(rec, "domain"));
    const char *worker = json_string_value(json_object_get(rec, "worker"));
    if (!name || !worker || strlen(name) > MSG_NAME_MAX || strlen(worker) > MSG_NAME_MAX ||
        j->n_domains + 1 > RW_TASK_MAX_DOMAINS)
        return RW_EPARSE;
    for (size_t i = 0; i < j->n_domains; i++)
        if (strcmp(j->domains[i], name) == 0)
            return RW_EEXIST;
    j->domains = rw_realloc(j->domains, (j->n_domains + 1) * sizeof *j->domains);
    j->domain_data = rw_realloc(j->domain_data, (j->n_domains + 1) * sizeof *j->domain_data);
    j->domains[j->n_domains] = rw_strdup(name);
    j->domain_data[j->n_domains] = (uint64_t)json_integer_value(json_object_get(rec, "shard"));
    j->n_domains++;
    j->added = rw_realloc(j->added, (j->n_added + 1) * sizeof *j->added);
    job_added_t *a = &j->added[j->n_added++];
    memset(a, 0, sizeof *a);
    snprintf(a->domain, sizeof a->domain, "%s", name);
    snprintf(a->worker, sizeof a->worker, "%s", worker);
    a->upload = (uint64_t)json_integer_value(json_object_get(rec, "upload"));
    a->pairs = (uint64_t)json_integer_value(json_object_get(rec, "pairs"));
    /* the record's "train" counts the train records uploaded: one per
     * distinct prompt, not the train pairs, which are all the pairs but
     * the held-out ones */
    a->train_prompts = (uint64_t)json_integer_value(json_object_get(rec, "train"));
    a->eval = (uint64_t)json_integer_value(json_object_get(rec, "eval"));
    a->train = a->pairs > a->eval ? a->pairs - a->eval : a->train_prompts;
    a->ts = json_number_value(json_object_get(rec, "ts"));
    a->bytes = (uint64_t)json_integer_value(json_object_get(rec, "bytes"));
    a->first_task = j->n_tasks + 1;
    j->domain_pending = true;
    return 0;
}

static int job_apply(void *job, const json_t *rec)
{
    coord_job_t *j = job;
    const char *ev = json_string_value(json_object_get(rec, "ev"));
    uint64_t task = (uint64_t)json_integer_value(json_object_get(rec, "task"));
    double ts = json_number_value(json_object_get(rec, "ts"));
    job_task_t *t = job__task(j, task);
    if (strcmp(ev, "job") == 0)
        return apply_job(j, rec);
    if (strcmp(ev, "artifact") == 0)
        return apply_artifact(j, rec);
    /* a start never leases, and a domain comes after it: a journal with
     * either got past its start (one written before the "planned" record) */
    if (strcmp(ev, "planned") == 0 || strcmp(ev, "lease") == 0 || strcmp(ev, "domain") == 0)
        j->planned = true;
    if (strcmp(ev, "planned") == 0)
        return 0;
    /* a domain is planned whole once its "domain_planned" record is in (a
     * journal an older rewire wrote has none: its next start matches the
     * domain's tasks again, adds none, and writes the record) */
    if (strcmp(ev, "domain_planned") == 0) {
        j->domain_pending = false;
        return 0;
    }
    if (strcmp(ev, "undone") == 0 && t) { /* its output is gone: done again */
        json_decref(t->done);
        t->done = NULL;
        t->done_ts = 0;
        return 0;
    }
    if (strcmp(ev, "task") == 0) {
        rw_grow(&j->tasks, &j->cap_tasks, j->n_tasks + 1);
        t = &j->tasks[j->n_tasks++];
        memset(t, 0, sizeof *t);
        t->kind = msg_task_kind_parse(json_string_value(json_object_get(rec, "kind")));
        const char *domain = json_string_value(json_object_get(rec, "domain"));
        snprintf(t->domain, sizeof t->domain, "%s", domain ? domain : "");
        t->n_domains = j->n_domains;
        t->data = j->all_data ? j->all_data : j->data;
        t->added = (int)j->n_added - 1;
        return 0;
    }
    if (strcmp(ev, "domain") == 0)
        return apply_domain(j, rec);
    if (strcmp(ev, "lease") == 0 && t) {
        t->attempts = (int)json_integer_value(json_object_get(rec, "attempt"));
        if (!t->first_lease_ts)
            t->first_lease_ts = ts;
        json_decref(t->curve);
        t->curve = json_array();
        t->stride = 1;
        t->next = 0;
        json_t *th = json_object_get(rec, "threads");
        const char *w = json_string_value(json_object_get(rec, "worker"));
        if (th && w)
            json_object_set(j->threads, w, th);
        return 0;
    }
    if (strcmp(ev, "done") == 0 && t) {
        json_decref(t->done);
        t->done = json_incref((json_t *)rec);
        t->done_ts = ts;
        return 0;
    }
    if (strcmp(ev, "finished") == 0) {
        j->finished_ts = ts;
        if (j->version == 0 || j->built_domains != j->n_domains) { /* else: the same again */
            if (j->version++ == 0)
                j->first_finished_ts = ts;
            j->built_domains = j->n_domains;
        }
    }
    return 0;
}

job_task_t *job__output(coord_job_t *j, msg_task_kind_t kind, const char *domain)
{
    job_task_t *best = NULL;
    for (size_t i = 0; i < j->n_tasks; i++) {
        job_task_t *t = &j->tasks[i];
        if (t->kind != kind || !t->done || (domain && strcmp(t->domain, domain) != 0))
            continue;
        if (!best || t->n_domains >= best->n_domains)
            best = t;
    }
    return best;
}

/* The artifact of the done task of kind (as job__output), or 0. */
static uint64_t output_of(coord_job_t *j, msg_task_kind_t kind, const char *domain)
{
    job_task_t *t = job__output(j, kind, domain);
    return t ? (uint64_t)json_integer_value(json_object_get(t->done, "artifact_id")) : 0;
}

static int job_lease(void *job, const plan_task_t *t, msg_lease_t *l)
{
    coord_job_t *j = job;
    char why[256];
    job_task_t *jt = job__task(j, t->id);
    if (!jt)
        return RW_ENOTFOUND;
    size_t n = jt->n_domains;
    free(j->lease_spec);
    bool needs_base;
    j->lease_spec =
        spec_n(j, t->kind, t->domain[0] ? t->domain : NULL, n, &needs_base, why, sizeof why);
    if (!j->lease_spec) {
        RW_ERROR(WHO, "task %" PRIu64 ": %s", t->id, why);
        return RW_EINVAL;
    }
    l->config = j->lease_spec;
    l->domain = t->domain[0] ? t->domain : NULL;
    l->tokenizer = j->tokenizer;
    l->has_tokenizer = true;
    l->shard = jt->data;
    for (size_t i = 0; i < j->n_domains; i++)
        if (t->domain[0] && strcmp(t->domain, j->domains[i]) == 0)
            l->shard = j->domain_data[i];
    l->has_shard = true;
    if (needs_base) {
        l->base = output_of(j, MSG_TASK_SEED, NULL);
        l->has_base = true;
        if (!l->base)
            return RW_ESTATE;
    }
    if (t->kind == MSG_TASK_GATES) {
        for (size_t i = 0; i < n; i++)
            if (!(j->lease_experts[i] = output_of(j, MSG_TASK_EXPERT, j->domains[i])))
                return RW_ESTATE;
        l->experts = (msg_u64s_t){j->lease_experts, n};
    }
    return 0;
}

static void job_progress(void *job, const plan_task_t *pt, const msg_progress_t *m)
{
    job_task_t *t = job__task(job, pt->id);
    /* steps only go forward: a repeated or earlier one (a confused or
     * hostile worker) would otherwise fill the curve and double the stride
     * until it wrapped to 0. Step 0 is no point either: it is the worker
     * saying the task runs, before any update, and its loss of 0 drew every
     * curve in loss.svg from a loss of 0 */
    if (!t || !t->curve || m->step == 0 || m->step < t->next || m->step % t->stride != 0)
        return;
    if (json_array_size(t->curve) >= JOB_CURVE_MAX) {
        /* full: keep every other point and take half as many from now on */
        json_t *kept = json_array();
        for (size_t i = 0; i < json_array_size(t->curve); i += 2)
            json_array_append(kept, json_array_get(t->curve, i));
        json_decref(t->curve);
        t->curve = kept;
        if (t->stride <= UINT64_MAX / 2)
            t->stride *= 2;
        if (m->step % t->stride != 0)
            return;
    }
    json_array_append_new(t->curve, json_pack("[I,f]", (json_int_t)m->step, m->loss));
    t->next = m->step + 1;
}

static void job_result(void *job, const plan_task_t *pt, const msg_result_t *m, json_t *rec)
{
    (void)m;
    job_task_t *t = job__task(job, pt->id);
    if (t && t->curve)
        json_object_set(rec, "loss_curve", t->curve);
}

/* What a task writes names its kind and domain (rw_task_run's metadata):
 * an artifact that does not — another task's output, a tokenizer, junk —
 * would fail the merge at the very end, and again after every restart. */
int job__check_result(void *job, const plan_task_t *t, const char *path, char *why, size_t whylen)
{
    (void)job;
    rw_st_t *st = NULL;
    int rc = rw_st_read_header(&st, path); /* on the loop: not the tensors */
    if (rc < 0) {
        snprintf(why, whylen, "its artifact is not a model file (%s)", rw_strerror(rc));
        return RW_EFORMAT;
    }
    const char *extra = rw_st_meta(st, "rewire.extra");
    json_t *o = extra ? json_loads(extra, 0, NULL) : NULL;
    const char *kind = json_string_value(json_object_get(o, "task"));
    const char *dom = json_string_value(json_object_get(o, "domain"));
    const char *want = msg_task_kind_name(t->kind);
    rc = 0;
    if (!kind || !want || strcmp(kind, want) != 0) {
        snprintf(why, whylen, "its artifact is not the output of a %s task (it says %.40s)",
                 want ? want : "?", kind ? kind : "nothing");
        rc = RW_EFORMAT;
    } else if (t->domain[0] && (!dom || strcmp(dom, t->domain) != 0)) {
        snprintf(why, whylen, "its artifact is for domain %.64s, not %s", dom ? dom : "(none)",
                 t->domain);
        rc = RW_EFORMAT;
    }
    json_decref(o);
    rw_st_destroy(&st);
    return rc;
}

static void job_status(void *job, json_t *st)
{
    coord_job_t *j = job;
    json_t *doms = json_array();
    for (size_t i = 0; i < j->n_domains; i++)
        json_array_append_new(doms, json_string(j->domains[i]));
    json_object_set_new(st, "job", json_string(j->id));
    json_object_set_new(st, "domains", doms);
    json_object_set_new(st, "out", json_string(j->out_dir));
}

const struct coord_job_ops coord_job_ops = {
    .start = job_start,
    .apply = job_apply,
    .lease = job_lease,
    .progress = job_progress,
    .result = job_result,
    .check_result = job__check_result,
    .finish = coord_job_finish,
    .status = job_status,
    .domain_check = job__domain_check,
    .domain_read = job__domain_read,
    .domain_add = job__domain_add,
};
