/* fake_task.c — a test double of core/task.c for the services' tests.
 *
 * Linked into the test programs (never a library or binary) while
 * core/task.c is not in the tree; CMake drops it once it is. It keeps
 * task.h's contract where the services can see it: the spec round-trips
 * through JSON, the inputs a kind needs are checked, progress is told every
 * step and a nonzero return cancels with -ECANCELED, and the output appears
 * whole. "Training" is max_steps steps (20 when 0) of RW_FAKE_STEP_MS
 * milliseconds (environment; default 2), and the output names the task and
 * the checksums of its inputs.
 */
#include "task.h"

#include "afile.h"
#include "alloc.h"
#include "err.h"
#include "hash.h"

#include <errno.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const kind_names[] = {NULL,
#define XX(id, name) name,
                                         RW_TASK_KIND_MAP(XX)
#undef XX
};

const char *rw_task_kind_name(rw_task_kind_t k)
{
    return k > RW_TASK__NONE && k < RW_TASK__COUNT ? kind_names[k] : "?";
}

rw_task_kind_t rw_task_kind_from_name(const char *name)
{
    for (int k = 1; name && k < RW_TASK__COUNT; k++)
        if (strcmp(kind_names[k], name) == 0)
            return (rw_task_kind_t)k;
    return RW_TASK__NONE;
}

void rw_task_spec_init(rw_task_spec_t *s, rw_task_kind_t kind)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    rw_model_config_default(&s->model);
    rw_lora_config_default(&s->lora);
    rw_train_config_default(&s->train);
    s->epochs = 1;
}

void rw_task_spec_fini(rw_task_spec_t *s)
{
    free(s->domain);
    for (size_t i = 0; i < s->n_domains; i++)
        free(s->domains[i]);
    memset(s, 0, sizeof *s);
}

static json_t *sub(char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j;
}

char *rw_task_spec_to_json(const rw_task_spec_t *s)
{
    json_t *j = json_object(), *d = json_array();
    json_object_set_new(j, "kind", json_string(rw_task_kind_name(s->kind)));
    if (s->domain)
        json_object_set_new(j, "domain", json_string(s->domain));
    for (size_t i = 0; i < s->n_domains; i++)
        json_array_append_new(d, json_string(s->domains[i]));
    json_object_set_new(j, "domains", d);
    json_object_set_new(j, "model", sub(rw_model_config_to_json(&s->model)));
    json_object_set_new(j, "lora", sub(rw_lora_config_to_json(&s->lora)));
    json_object_set_new(j, "train", sub(rw_train_config_to_json(&s->train)));
    json_object_set_new(j, "epochs", json_real(s->epochs));
    json_object_set_new(j, "max_steps", json_integer(s->max_steps));
    json_object_set_new(j, "seed", json_integer((json_int_t)s->seed));
    char *out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return out;
}

static int fail(char *why, size_t whylen, int rc, const char *text)
{
    if (why && whylen)
        snprintf(why, whylen, "%s", text);
    return rc;
}

int rw_task_spec_from_json(const char *text, rw_task_spec_t *s, char *why, size_t whylen)
{
    json_t *j = json_loads(text, 0, NULL), *v;
    if (!json_is_object(j)) {
        json_decref(j);
        return fail(why, whylen, RW_EPARSE, "spec: not a JSON object");
    }
    rw_task_spec_init(s, rw_task_kind_from_name(json_string_value(json_object_get(j, "kind"))));
    int rc = 0;
    if (s->kind == RW_TASK__NONE)
        rc = fail(why, whylen, RW_EINVAL, "spec: no such kind");
    if ((v = json_object_get(j, "domain")) && json_is_string(v))
        s->domain = rw_strdup(json_string_value(v));
    size_t i;
    json_array_foreach(json_object_get(j, "domains"), i, v)
    {
        if (i < RW_TASK_MAX_DOMAINS && json_is_string(v))
            s->domains[s->n_domains++] = rw_strdup(json_string_value(v));
    }
    char *t;
    if (rc == 0 && (v = json_object_get(j, "model"))) {
        t = json_dumps(v, JSON_COMPACT);
        if (rw_model_config_from_json(t, &s->model) < 0)
            rc = fail(why, whylen, RW_EINVAL, "spec: bad model");
        free(t);
    }
    if (rc == 0 && (v = json_object_get(j, "train"))) {
        t = json_dumps(v, JSON_COMPACT);
        if (rw_train_config_from_json(t, &s->train) < 0)
            rc = fail(why, whylen, RW_EINVAL, "spec: bad train");
        free(t);
    }
    if (rc == 0 && (v = json_object_get(j, "lora"))) {
        t = json_dumps(v, JSON_COMPACT);
        if (rw_lora_config_from_json(t, &s->lora) < 0)
            rc = fail(why, whylen, RW_EINVAL, "spec: bad lora");
        free(t);
    }
    if ((v = json_object_get(j, "epochs")))
        s->epochs = json_number_value(v);
    if ((v = json_object_get(j, "max_steps")))
        s->max_steps = (long)json_integer_value(v);
    if ((v = json_object_get(j, "seed")))
        s->seed = (uint64_t)json_integer_value(v);
    json_decref(j);
    if (rc < 0)
        rw_task_spec_fini(s);
    return rc;
}

/* The hash of a file's bytes, or 0 when it cannot be read. */
static uint64_t file_hash(const char *path)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f)
        return 0;
    uint64_t h = RW_HASH_SEED;
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0)
        h = rw_hash_update(h, buf, k);
    fclose(f);
    return rw_hash_final(h) | 1;
}

int rw_task_run(const rw_task_spec_t *spec, const rw_task_inputs_t *in, const char *out,
                rw_task_progress_fn progress, void *ctx, rw_task_result_t *res, char *why,
                size_t whylen)
{
    rw_task_kind_t k = spec->kind;
    bool per_domain = k == RW_TASK_DOMAIN_RM || k == RW_TASK_EXPERT || k == RW_TASK_ADAPTER;
    bool needs_base = k != RW_TASK_SEED && k != RW_TASK_ROUTER;
    if (k == RW_TASK__NONE || (per_domain && !spec->domain) || spec->n_domains == 0)
        return fail(why, whylen, RW_EINVAL, "fake task: bad spec");
    if (!file_hash(in->tokenizer) || !file_hash(in->data))
        return fail(why, whylen, RW_EINVAL, "fake task: tokenizer or data unreadable");
    if (needs_base && !file_hash(in->base))
        return fail(why, whylen, RW_EINVAL, "fake task: base unreadable");
    if (k == RW_TASK_GATES && in->n_experts != spec->n_domains)
        return fail(why, whylen, RW_EINVAL, "fake task: one expert per domain");
    for (size_t i = 0; i < in->n_experts; i++)
        if (!file_hash(in->experts[i]))
            return fail(why, whylen, RW_EINVAL, "fake task: expert unreadable");
    const char *env = getenv("RW_FAKE_STEP_MS");
    long ms = env ? atol(env) : 2, steps = spec->max_steps > 0 ? spec->max_steps : 20;
    for (long s = 1; s <= steps; s++) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        rw_step_stats_t st = {.step = s,
                              .n = 16,
                              .loss = 0.7 / (double)s,
                              .accuracy = 0.5,
                              .pairs_per_s = 1000,
                              .seconds = (double)ms / 1000};
        if (progress && progress(ctx, &st, steps))
            return -ECANCELED;
    }
    char text[512];
    int n =
        snprintf(text, sizeof text, "fake %s %s tok=%016llx data=%016llx base=%016llx\n",
                 rw_task_kind_name(k), spec->domain ? spec->domain : "-",
                 (unsigned long long)file_hash(in->tokenizer),
                 (unsigned long long)file_hash(in->data), (unsigned long long)file_hash(in->base));
    int rc = rw_afile_write(out, text, (size_t)n);
    if (rc < 0)
        return fail(why, whylen, rc, "fake task: cannot write the output");
    if (res)
        *res = (rw_task_result_t){.steps = steps,
                                  .seconds = (double)(steps * ms) / 1000,
                                  .pairs_per_s = 1000,
                                  .train_loss = 0.7 / (double)steps,
                                  .train_accuracy = 0.75,
                                  .eval_accuracy = 0.7,
                                  .params = 1000 + (size_t)k};
    return 0;
}
