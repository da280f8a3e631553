/* fake_bundle.c — a test double of core/bundle.c for the services' tests.
 *
 * Linked into the test programs (never a library or binary) while
 * core/bundle.c is not in the tree; CMake drops it once it is. A "bundle"
 * is a folder with a manifest.json naming its kind, domains and the
 * checksums of its members; scoring is a fixed function of the texts (a
 * longer response scores higher; the router picks domain hash(prompt) mod
 * n), so a client can tell a real answer from garbage.
 */
#include "bundle.h"

#include "alloc.h"
#include "dataset.h"
#include "err.h"
#include "hash.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rw_bundle {
    rw_bundle_kind_t kind;
    char **domains;
    size_t n_domains;
    json_t *manifest;
};

static const char *const names[] = {NULL, "baseline", "moe", "router", "adapter"};

const char *rw_bundle_kind_name(rw_bundle_kind_t k)
{
    return k > RW_BUNDLE__NONE && k <= RW_BUNDLE_ADAPTER ? names[k] : "?";
}

rw_bundle_kind_t rw_bundle_kind_from_name(const char *name)
{
    for (int k = 1; name && k <= RW_BUNDLE_ADAPTER; k++)
        if (strcmp(names[k], name) == 0)
            return (rw_bundle_kind_t)k;
    return RW_BUNDLE__NONE;
}

static int fail(char *why, size_t whylen, int rc, const char *what, const char *detail)
{
    if (why && whylen)
        snprintf(why, whylen, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
    return rc;
}

static int member(json_t *files, const char *role, const char *path, char *why, size_t whylen)
{
    if (!path)
        return fail(why, whylen, RW_EINVAL, "missing member", role);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(why, whylen, RW_EINVAL, "unreadable member", path);
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    json_array_append_new(
        files, json_pack("{s:s,s:I}", "role", role, "hash", (json_int_t)(rw_hash(buf, n) >> 1)));
    return 0;
}

int rw_bundle_write(const rw_bundle_sources_t *src, const char *dir, char *why, size_t whylen)
{
    json_t *files = json_array(), *doms = json_array();
    int rc = member(files, "tokenizer", src->tokenizer, why, whylen);
    switch (src->kind) {
    case RW_BUNDLE_BASELINE:
    case RW_BUNDLE_MOE:
        if (rc == 0)
            rc = member(files, "model", src->model, why, whylen);
        break;
    case RW_BUNDLE_ROUTER:
        if (rc == 0)
            rc = member(files, "router", src->router, why, whylen);
        break;
    case RW_BUNDLE_ADAPTER:
        if (rc == 0)
            rc = member(files, "base", src->base, why, whylen);
        if (rc == 0)
            rc = member(files, "router_adapter", src->router_adapter, why, whylen);
        break;
    default:
        rc = fail(why, whylen, RW_EINVAL, "no such bundle kind", NULL);
    }
    bool members = src->kind == RW_BUNDLE_ROUTER || src->kind == RW_BUNDLE_ADAPTER;
    for (size_t i = 0; rc == 0 && i < src->n_domains; i++) {
        json_array_append_new(doms, json_string(src->domains[i]));
        if (members)
            rc = member(files, src->domains[i], src->members ? src->members[i] : NULL, why, whylen);
    }
    if (rc == 0 && src->n_domains == 0)
        rc = fail(why, whylen, RW_EINVAL, "no domains", NULL);
    json_t *m = json_pack("{s:i,s:s,s:o,s:o,s:I,s:I}", "format", 1, "kind",
                          rw_bundle_kind_name(src->kind), "domains", doms, "files", files,
                          "params_total", (json_int_t)(1000 * (members ? src->n_domains + 1 : 1)),
                          "params_per_pair", (json_int_t)1000);
    if (src->provenance)
        json_object_set(m, "provenance", (json_t *)src->provenance);
    if (rc == 0 && mkdir(dir, 0755) != 0 && errno != EEXIST)
        rc = fail(why, whylen, -errno, "cannot create", dir);
    if (rc == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        if (json_dump_file(m, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
            rc = fail(why, whylen, RW_EIO, "cannot write", path);
    }
    json_decref(m);
    return rc;
}

int rw_bundle_open(const char *dir, rw_bundle_t **b, char *why, size_t whylen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    json_error_t jerr;
    json_t *m = json_load_file(path, 0, &jerr);
    if (!m)
        return fail(why, whylen, RW_ENOTFOUND, "no manifest", path);
    rw_bundle_kind_t kind = rw_bundle_kind_from_name(json_string_value(json_object_get(m, "kind")));
    json_t *doms = json_object_get(m, "domains");
    if (kind == RW_BUNDLE__NONE || json_array_size(doms) == 0) {
        json_decref(m);
        return fail(why, whylen, RW_EFORMAT, "bad manifest", path);
    }
    rw_bundle_t *x = rw_new(rw_bundle_t);
    x->kind = kind;
    x->manifest = m;
    x->n_domains = json_array_size(doms);
    x->domains = rw_new_array(char *, x->n_domains);
    for (size_t i = 0; i < x->n_domains; i++)
        x->domains[i] = rw_strdup(json_string_value(json_array_get(doms, i)));
    *b = x;
    return 0;
}

void rw_bundle_destroy(rw_bundle_t **b)
{
    if (!b || !*b)
        return;
    for (size_t i = 0; i < (*b)->n_domains; i++)
        free((*b)->domains[i]);
    free((*b)->domains);
    json_decref((*b)->manifest);
    free(*b);
    *b = NULL;
}

rw_bundle_kind_t rw_bundle_kind(const rw_bundle_t *b)
{
    return b->kind;
}

size_t rw_bundle_n_domains(const rw_bundle_t *b)
{
    return b->n_domains;
}

const char *rw_bundle_domain(const rw_bundle_t *b, size_t i)
{
    return i < b->n_domains ? b->domains[i] : NULL;
}

const json_t *rw_bundle_manifest(const rw_bundle_t *b)
{
    return b->manifest;
}

int rw_bundle_score(rw_bundle_t *b, const char *const *prompts, const size_t *prompt_lens,
                    const char *const *responses, const size_t *response_lens, size_t n,
                    const int *oracle, double *rewards, int *route)
{
    bool routed = b->kind == RW_BUNDLE_ROUTER || b->kind == RW_BUNDLE_ADAPTER;
    for (size_t i = 0; i < n; i++) {
        (void)responses;
        rewards[i] = (double)response_lens[i] / 10.0;
        if (!routed)
            route[i] = -1;
        else if (oracle && oracle[i] >= 0)
            route[i] = oracle[i];
        else
            route[i] = (int)(rw_hash(prompts[i], prompt_lens[i]) % b->n_domains);
    }
    return 0;
}

int rw_bundle_eval(rw_bundle_t *b, const rw_dataset_t *ds, rw_split_t split, rw_bundle_eval_t *out)
{
    memset(out, 0, sizeof *out);
    const char **doms;
    size_t nd = rw_dataset_domains(ds, &doms);
    out->domains = rw_new_array(rw_bundle_domain_eval_t, nd ? nd : 1);
    out->n_domains = nd;
    double sum = 0;
    for (size_t d = 0; d < nd; d++) {
        rw_bundle_domain_eval_t *e = &out->domains[d];
        e->name = rw_strdup(doms[d]);
        size_t right = 0;
        for (size_t i = 0; i < ds->n; i++) {
            const rw_pair_t *p = &ds->pairs[i];
            if (p->split != split || strcmp(p->domain, doms[d]) != 0)
                continue;
            e->pairs++;
            right += p->chosen_len > p->rejected_len;
        }
        e->accuracy = e->pairs ? (double)right / (double)e->pairs : 0;
        e->oracle_accuracy = e->accuracy;
        e->route_accuracy = b->kind == RW_BUNDLE_ROUTER || b->kind == RW_BUNDLE_ADAPTER ? 0.9 : -1;
        sum += e->accuracy;
    }
    free(doms);
    out->mean_accuracy = nd ? sum / (double)nd : 0;
    out->mean_oracle_accuracy = out->mean_accuracy;
    out->route_accuracy = b->kind == RW_BUNDLE_ROUTER || b->kind == RW_BUNDLE_ADAPTER ? 0.9 : -1;
    return 0;
}

void rw_bundle_eval_fini(rw_bundle_eval_t *e)
{
    for (size_t i = 0; i < e->n_domains; i++)
        free(e->domains[i].name);
    free(e->domains);
    memset(e, 0, sizeof *e);
}

json_t *rw_bundle_eval_json(const rw_bundle_eval_t *e)
{
    json_t *d = json_array();
    for (size_t i = 0; i < e->n_domains; i++)
        json_array_append_new(d, json_pack("{s:s,s:I,s:f,s:f}", "name", e->domains[i].name, "pairs",
                                           (json_int_t)e->domains[i].pairs, "accuracy",
                                           e->domains[i].accuracy, "route_accuracy",
                                           e->domains[i].route_accuracy));
    return json_pack("{s:o,s:f,s:f}", "domains", d, "mean_accuracy", e->mean_accuracy,
                     "route_accuracy", e->route_accuracy);
}

int rw_bundle_record_eval(const char *dir, const rw_bundle_eval_t *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    json_t *m = json_load_file(path, 0, NULL);
    if (!m)
        return RW_ENOTFOUND;
    json_object_set_new(m, "eval", rw_bundle_eval_json(e));
    int rc = json_dump_file(m, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 ? 0 : RW_EIO;
    json_decref(m);
    return rc;
}
