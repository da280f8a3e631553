/* rmodel.c — loading what `rewire train` wrote, and evaluating it; see
 * rmodel.h. */
#include "rmodel.h"

#include "cli.h"

#include "alloc.h"
#include "cli.h"
#include "err.h"
#include "eval.h"
#include "hash.h"
#include "safetensors.h"

#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_peek_checkpoint(const char *path, char **kind, json_t **extra)
{
    rw_st_t *st;
    int rc = rw_st_read(&st, path);
    if (rc < 0)
        return rc;
    const char *k = rw_st_meta(st, "rewire.kind"), *x = rw_st_meta(st, "rewire.extra");
    *kind = rw_strdup(k ? k : "");
    json_error_t jerr;
    *extra = x ? json_loads(x, 0, &jerr) : NULL;
    if (!json_is_object(*extra)) {
        json_decref(*extra);
        *extra = json_object();
    }
    rw_st_destroy(&st);
    return 0;
}

/* Says why path could not be loaded; returns 1. */
static int load_error(const char *cmd, const char *what, const char *path, int rc)
{
    const char *hint = rc == RW_EPARSE || rc == RW_ETRUNC || rc == RW_EFORMAT || rc == RW_ETOOBIG
                           ? " (not a rewire checkpoint, or a damaged one)"
                           : "";
    char manifest[PATH_MAX];
    struct stat sb;
    snprintf(manifest, sizeof manifest, "%s/manifest.json", path);
    if (rc == RW_ENOTFILE && stat(manifest, &sb) == 0)
        hint = " (a bundle: give it with --bundle)";
    cli_say(cmd, "cannot load %s %s: %s%s", what, path, rw_strerror(rc), hint);
    return 1;
}

/* The adapter's base: given, or recorded (as written, then beside path). */
static char *find_base(const char *path, const char *base, json_t *extra)
{
    if (base)
        return rw_strdup(base);
    const char *rec = json_string_value(json_object_get(extra, "base"));
    if (!rec)
        return NULL;
    if (rec[0] == '/' || access(rec, R_OK) == 0)
        return rw_strdup(rec);
    char *dup = rw_strdup(path), *rdup = rw_strdup(rec);
    const char *dir = dirname(dup), *name = basename(rdup);
    char *p = rw_malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    free(dup);
    free(rdup);
    if (access(p, R_OK) == 0)
        return p;
    free(p);
    return rw_strdup(rec);
}

static int load_tokenizer(cli_rmodel_t *m, const char *cmd, const char *path)
{
    char err[256];
    if (!m->info.tokenizer || !m->info.tokenizer[0]) {
        cli_say(cmd, "%s holds no tokenizer", path);
        return 1;
    }
    if (rw_bpe_from_json(m->info.tokenizer, strlen(m->info.tokenizer), &m->bpe, err, sizeof err)) {
        cli_say(cmd, "the tokenizer in %s is broken: %s", path, err);
        return 1;
    }
    m->tokenizer = rw_strdup(m->info.tokenizer);
    if (rw_bpe_vocab_size(m->bpe) > (size_t)m->model->cfg.vocab) {
        cli_say(cmd, "the tokenizer in %s has more tokens than the model", path);
        return 1;
    }
    return 0;
}

static void read_extra(cli_rmodel_t *m)
{
    json_t *d = json_object_get(m->extra, "domains");
    m->n_domains = json_is_array(d) ? json_array_size(d) : 0;
    m->domains = rw_new_array(const char *, m->n_domains + 1);
    for (size_t i = 0; i < m->n_domains; i++) {
        m->domains[i] = json_string_value(json_array_get(d, i));
        if (!m->domains[i])
            m->domains[i] = "?";
    }
    m->variant = json_string_value(json_object_get(m->extra, "variant"));
    if (!m->variant)
        m->variant = m->lora                                    ? "lora"
                     : cli_rmodel_head(m) == RW_HEAD_CLASSIFIER ? "router"
                     : m->model->cfg.n_experts                  ? "moe"
                                                                : "dense";
}

int cli_rmodel_open(cli_rmodel_t *m, const char *cmd, const char *path, const char *base)
{
    memset(m, 0, sizeof *m);
    char *kind = NULL, *bpath = NULL;
    int rc = cli_peek_checkpoint(path, &kind, &m->extra);
    if (rc < 0)
        return load_error(cmd, "model", path, rc);
    if (strcmp(kind, "model") == 0) {
        rc = rw_checkpoint_load(path, &m->model, &m->info);
        if (rc < 0) {
            rc = load_error(cmd, "model", path, rc);
            goto done;
        }
        rc = load_tokenizer(m, cmd, path);
    } else if (strcmp(kind, "lora") == 0) {
        bpath = find_base(path, base, m->extra);
        if (!bpath) {
            cli_say(cmd, "%s is an adapter; give its base model (--base PATH)", path);
            rc = 1;
            goto done;
        }
        rw_ckpt_info_t binfo = {0};
        rc = rw_checkpoint_load(bpath, &m->model, &binfo);
        if (rc < 0) {
            rw_ckpt_info_fini(&binfo);
            rc = load_error(cmd, "base model", bpath, rc);
            goto done;
        }
        rc = rw_lora_load(path, m->model, &m->lora, &m->info);
        if (rc < 0) {
            rw_ckpt_info_fini(&binfo);
            rc = load_error(cmd, "adapter", path, rc);
            goto done;
        }
        /* the tokenizer is the base's */
        free(m->info.tokenizer);
        m->info.tokenizer = binfo.tokenizer;
        binfo.tokenizer = NULL;
        rw_ckpt_info_fini(&binfo);
        rc = load_tokenizer(m, cmd, bpath);
    } else {
        cli_say(cmd, "%s is not a rewire model or adapter checkpoint", path);
        rc = 1;
    }
    if (rc == 0)
        read_extra(m);
done:
    free(kind);
    free(bpath);
    return rc;
}

void cli_rmodel_close(cli_rmodel_t *m)
{
    rw_lora_destroy(&m->lora);
    rw_model_destroy(&m->model);
    rw_bpe_destroy(&m->bpe);
    free(m->tokenizer);
    free(m->domains);
    json_decref(m->extra);
    rw_ckpt_info_fini(&m->info);
    memset(m, 0, sizeof *m);
}

rw_head_t cli_rmodel_head(const cli_rmodel_t *m)
{
    return m->lora ? m->lora->cfg.head : m->model->cfg.head;
}

size_t cli_rmodel_params(const cli_rmodel_t *m)
{
    return m->lora ? m->lora->layout.n_floats : m->model->layout.n_floats;
}

int cli_rmodel_engine(const cli_rmodel_t *m, const char *cmd, long batch, long threads,
                      rw_engine_t **e)
{
    size_t T = (size_t)m->model->cfg.max_len;
    int rc = rw_engine_new(e, m->model, m->lora, (size_t)batch, T, (int)threads, 0);
    if (rc == RW_ENOMEM) {
        char b[32];
        size_t need = rw_engine_bytes(&m->model->cfg, m->lora ? &m->lora->cfg : NULL, (size_t)batch,
                                      T, (int)threads, 0);
        fprintf(stderr,
                "rewire %s: cannot start the model: out of memory allocating about %s for "
                "--batch %ld sequences of up to %zu tokens; lower --batch\n",
                cmd, cli_bytes_str(need, b), batch, T);
    } else if (rc < 0) {
        cli_say(cmd, "cannot start the model: %s", rw_strerror(rc));
    }
    return rc < 0 ? 1 : 0;
}

void cli_fingerprint(const rw_model_t *model, const rw_lora_t *lora, char hex[17])
{
    uint64_t h;
    if (lora) {
        /* the adapter's block, hashed as little-endian bytes like the model's */
        h = rw_hash_update(RW_HASH_SEED, &lora->base_fingerprint, sizeof lora->base_fingerprint);
        for (size_t i = 0; i < lora->layout.n_floats; i++) {
            uint32_t u;
            unsigned char b[4];
            memcpy(&u, &lora->mem[i], 4);
            for (int k = 0; k < 4; k++)
                b[k] = (unsigned char)(u >> (8 * k));
            h = rw_hash_update(h, b, 4);
        }
        h = rw_hash_final(h);
    } else {
        h = rw_model_fingerprint(model);
    }
    snprintf(hex, 17, "%016" PRIx64, h);
}

/* One line of a report: the count, the accuracy and (pairs) the margin. */
static json_t *stats_json(json_t *o, int routing, const rw_eval_stats_t *s)
{
    json_object_set_new(o, routing ? "prompts" : "pairs", json_integer((json_int_t)s->n));
    json_object_set_new(o, "accuracy", json_real(s->accuracy));
    if (!routing)
        json_object_set_new(o, "margin", json_real(s->mean_margin));
    return o;
}

json_t *cli_eval_json(int routing, const rw_eval_stats_t *all, const rw_eval_stats_t *per,
                      const char *const *names, size_t nd)
{
    json_t *o = json_pack("{s:s}", "kind", routing ? "routing" : "pairs"), *doms = json_array();
    stats_json(o, routing, all);
    double sum = 0.0;
    size_t k = 0;
    for (size_t d = 0; d < nd; d++) {
        if (!per[d].n)
            continue;
        json_array_append_new(doms,
                              stats_json(json_pack("{s:s}", "name", names[d]), routing, &per[d]));
        sum += per[d].accuracy;
        k++;
    }
    json_object_set_new(o, "mean_accuracy", json_real(k ? sum / (double)k : 0.0));
    json_object_set_new(o, "domains", doms);
    return o;
}

json_t *cli_eval_report(rw_engine_t *e, const rw_trainset_t *ts)
{
    int routing = rw_engine_head(e) == RW_HEAD_CLASSIFIER;
    rw_eval_stats_t all, *per = rw_new_array(rw_eval_stats_t, ts->n_domains + 1);
    int rc = routing ? rw_eval_classify(e, ts->prompts, ts->n, &all, per, ts->n_domains)
                     : rw_eval_pairs(e, ts->pairs, ts->n, &all, per, ts->n_domains);
    if (rc < 0) {
        cli_say("eval", "evaluation failed: %s", rw_strerror(rc));
        free(per);
        return NULL;
    }
    json_t *o = cli_eval_json(routing, &all, per, (const char *const *)ts->domains, ts->n_domains);
    free(per);
    return o;
}

static double num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

void cli_eval_print(FILE *f, const json_t *r)
{
    int routing = strcmp(json_string_value(json_object_get(r, "kind")), "routing") == 0;
    const char *count = routing ? "prompts" : "pairs";
    fprintf(f, "%-28s %7s %9s %9s\n", "domain", count, routing ? "routed" : "accuracy",
            routing ? "" : "margin");
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(r, "domains"), i, d)
    {
        fprintf(f, "%-28s %7lld %9.4f", json_string_value(json_object_get(d, "name")),
                (long long)num(d, count), num(d, "accuracy"));
        if (!routing)
            fprintf(f, " %9.4f", num(d, "margin"));
        fprintf(f, "\n");
    }
    fprintf(f, "%-28s %7lld %9.4f", "all", (long long)num(r, count), num(r, "accuracy"));
    if (!routing)
        fprintf(f, " %9.4f", num(r, "margin"));
    fprintf(f, "\n%-28s %7s %9.4f\n", "mean of domains", "", num(r, "mean_accuracy"));
}
