/* checkpoint.c — model and adapter checkpoints over safetensors; see
 * checkpoint.h. */
#include "checkpoint.h"

#include "alloc.h"
#include "err.h"
#include "log.h"
#include "safetensors.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#define MAX_ENTRIES  (3 * RW_LAYOUT_MAX_TENSORS)
#define NAME_MAX_LEN 64

/* Tensors and metadata of a file being written; names are stored here. */
typedef struct writer {
    rw_st_entry_t e[MAX_ENTRIES];
    char names[MAX_ENTRIES][NAME_MAX_LEN];
    size_t n;
    rw_st_kv_t kv[8];
    size_t n_kv;
} writer_t;

static void add_block(writer_t *w, const rw_layout_t *lay, const float *block, const char *prefix)
{
    for (size_t i = 0; i < lay->n_tensors; i++) {
        const rw_tensor_t *t = &lay->t[i];
        if (!t->n)
            continue;
        rw_st_entry_t *e = &w->e[w->n];
        snprintf(w->names[w->n], NAME_MAX_LEN, "%s%s", prefix, t->name);
        e->name = w->names[w->n];
        e->ndim = t->ndim;
        memcpy(e->shape, t->shape, sizeof t->shape);
        e->data = block + t->offset;
        w->n++;
    }
}

static void add_kv(writer_t *w, const char *key, const char *value)
{
    if (value)
        w->kv[w->n_kv++] = (rw_st_kv_t){key, value};
}

/* {"updates", "skipped", "config"} of tr (caller frees). */
static char *training_json(rw_trainer_t *tr)
{
    char *cfg = rw_train_config_to_json(rw_trainer_config(tr));
    json_error_t jerr;
    json_t *o =
        json_pack("{s:I, s:I, s:o}", "updates", (json_int_t)rw_trainer_updates(tr), "skipped",
                  (json_int_t)rw_trainer_skipped(tr), "config", json_loads(cfg, 0, &jerr));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    free(cfg);
    if (!s)
        abort(); /* jansson fails only when out of memory */
    char *out = rw_strdup(s);
    free(s);
    return out;
}

/* Writes w's tensors plus, with tr, its moments and counters. */
static int finish_write(writer_t *w, const char *path, rw_trainer_t *tr)
{
    char *training = NULL;
    if (tr) {
        add_block(w, rw_trainer_layout(tr), rw_trainer_moment(tr, 1), "optim.m.");
        add_block(w, rw_trainer_layout(tr), rw_trainer_moment(tr, 2), "optim.v.");
        training = training_json(tr);
        add_kv(w, "rewire.training", training);
    }
    int rc = rw_st_write(path, w->e, w->n, w->kv, w->n_kv);
    free(training);
    return rc;
}

int rw_checkpoint_save(const char *path, const rw_model_t *m, rw_trainer_t *tr,
                       const char *tokenizer, const char *extra)
{
    if (tr && (rw_trainer_lora(tr) || rw_trainer_model(tr) != m))
        return RW_EINVAL;
    writer_t *w = rw_new(writer_t);
    char *cfg = rw_model_config_to_json(&m->cfg);
    add_block(w, &m->layout, m->mem, "");
    add_kv(w, "format", "pt");
    add_kv(w, "rewire.kind", "model");
    add_kv(w, "rewire.config", cfg);
    add_kv(w, "rewire.tokenizer", tokenizer ? tokenizer : "");
    add_kv(w, "rewire.extra", extra ? extra : "");
    int rc = finish_write(w, path, tr);
    free(cfg);
    free(w);
    return rc;
}

int rw_lora_save(const char *path, const rw_lora_t *lo, rw_trainer_t *tr, const char *extra)
{
    if (tr && rw_trainer_lora(tr) != lo)
        return RW_EINVAL;
    writer_t *w = rw_new(writer_t);
    char *lcfg = rw_lora_config_to_json(&lo->cfg), *bcfg = rw_model_config_to_json(&lo->base);
    char base[17];
    snprintf(base, sizeof base, "%016" PRIx64, lo->base_fingerprint);
    add_block(w, &lo->layout, lo->mem, "");
    add_kv(w, "format", "pt");
    add_kv(w, "rewire.kind", "lora");
    add_kv(w, "rewire.lora", lcfg);
    add_kv(w, "rewire.config", bcfg);
    add_kv(w, "rewire.base", base);
    add_kv(w, "rewire.extra", extra ? extra : "");
    int rc = finish_write(w, path, tr);
    free(lcfg);
    free(bcfg);
    free(w);
    return rc;
}

/* Copies the file's tensors prefix+name into block; every tensor of the
 * layout must be there with its exact shape. */
static int fill_block(const rw_st_t *st, const rw_layout_t *lay, float *block, const char *prefix,
                      int missing_code)
{
    for (size_t i = 0; i < lay->n_tensors; i++) {
        const rw_tensor_t *t = &lay->t[i];
        if (!t->n)
            continue;
        char name[NAME_MAX_LEN];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        const rw_st_tensor_t *s = rw_st_get(st, name);
        if (!s) {
            RW_ERROR("checkpoint", "tensor %s is missing", name);
            return missing_code;
        }
        int same = s->ndim == t->ndim && s->n == t->n;
        for (int d = 0; same && d < t->ndim; d++)
            same = s->shape[d] == t->shape[d];
        if (!same) {
            RW_ERROR("checkpoint", "tensor %s has another shape than the configuration's", name);
            return RW_EFORMAT;
        }
        memcpy(block + t->offset, s->data, t->n * sizeof(float));
        for (size_t k = 0; k < t->n; k++) /* a poisoned model scores nothing */
            if (!isfinite(block[t->offset + k])) {
                RW_ERROR("checkpoint", "tensor %s holds %s at element %zu", name,
                         isnan(block[t->offset + k]) ? "NaN" : "an infinity", k);
                return RW_ENUMERIC;
            }
    }
    return 0;
}

/* Every tensor in the file must belong to the layout (or be optimizer
 * state), so a file of another kind is not half-read. */
static int no_strangers(const rw_st_t *st, const rw_layout_t *lay)
{
    for (size_t i = 0; i < rw_st_count(st); i++) {
        const char *name = rw_st_at(st, i)->name;
        if (strncmp(name, "optim.m.", 8) == 0 || strncmp(name, "optim.v.", 8) == 0)
            name += 8;
        int known = 0;
        for (size_t j = 0; j < lay->n_tensors && !known; j++)
            known = lay->t[j].n && strcmp(lay->t[j].name, name) == 0;
        if (!known) {
            RW_ERROR("checkpoint", "unexpected tensor %s", rw_st_at(st, i)->name);
            return RW_EFORMAT;
        }
    }
    return 0;
}

void rw_ckpt_info_fini(rw_ckpt_info_t *info)
{
    free(info->tokenizer);
    free(info->extra);
    memset(info, 0, sizeof *info);
}

static int read_info(const rw_st_t *st, rw_ckpt_info_t *info)
{
    memset(info, 0, sizeof *info);
    rw_train_config_default(&info->train);
    const char *tok = rw_st_meta(st, "rewire.tokenizer"), *extra = rw_st_meta(st, "rewire.extra");
    info->tokenizer = rw_strdup(tok ? tok : "");
    info->extra = rw_strdup(extra ? extra : "");
    const char *training = rw_st_meta(st, "rewire.training");
    if (!training)
        return 0;
    json_error_t jerr;
    json_t *o = json_loads(training, 0, &jerr);
    json_t *u = json_object_get(o, "updates"), *s = json_object_get(o, "skipped");
    json_t *c = json_object_get(o, "config");
    int rc = json_is_integer(u) && json_is_integer(s) && json_is_object(c) &&
                     json_integer_value(u) >= 0 && json_integer_value(s) >= 0
                 ? 0
                 : RW_EFORMAT;
    if (rc == 0) {
        char *cs = json_dumps(c, JSON_COMPACT);
        rc = cs && rw_train_config_from_json(cs, &info->train) == 0 ? 0 : RW_EFORMAT;
        free(cs);
        info->updates = (long)json_integer_value(u);
        info->skipped = (long)json_integer_value(s);
        info->has_training = 1;
    }
    json_decref(o);
    return rc;
}

/* The file's kind must be kind and its model configuration parse. */
static int open_kind(const char *path, const char *kind, rw_st_t **st_p, rw_model_config_t *cfg)
{
    int rc = rw_st_read(st_p, path);
    if (rc < 0)
        return rc;
    const char *k = rw_st_meta(*st_p, "rewire.kind"), *c = rw_st_meta(*st_p, "rewire.config");
    if (!k || strcmp(k, kind) != 0 || !c || rw_model_config_from_json(c, cfg) < 0) {
        RW_ERROR("checkpoint", "%s is not a rewire %s checkpoint", path, kind);
        rw_st_destroy(st_p);
        return RW_EFORMAT;
    }
    return 0;
}

int rw_checkpoint_load(const char *path, rw_model_t **m_p, rw_ckpt_info_t *info)
{
    *m_p = NULL;
    rw_st_t *st;
    rw_model_config_t cfg;
    rw_model_t *m = NULL;
    int rc = open_kind(path, "model", &st, &cfg);
    if (rc < 0)
        return rc;
    rc = rw_model_new(&m, &cfg);
    if (rc == 0)
        rc = no_strangers(st, &m->layout);
    if (rc == 0)
        rc = fill_block(st, &m->layout, m->mem, "", RW_EFORMAT);
    if (rc == 0 && info)
        rc = read_info(st, info);
    rw_st_destroy(&st);
    if (rc < 0)
        rw_model_destroy(&m);
    *m_p = m;
    return rc;
}

/* The file's LoRA configuration and base must match lo (if not NULL) and base. */
static int check_adapter(const rw_st_t *st, const rw_model_t *base, rw_lora_config_t *lc)
{
    const char *l = rw_st_meta(st, "rewire.lora"), *fp = rw_st_meta(st, "rewire.base");
    if (!l || rw_lora_config_from_json(l, lc) < 0 || !fp)
        return RW_EFORMAT;
    char want[17];
    snprintf(want, sizeof want, "%016" PRIx64, rw_model_fingerprint(base));
    if (strcmp(fp, want) != 0) {
        RW_ERROR("checkpoint", "adapter was trained on another base model (%s, this is %s)", fp,
                 want);
        return RW_ECHECKSUM;
    }
    return 0;
}

int rw_lora_load(const char *path, const rw_model_t *base, rw_lora_t **lo_p, rw_ckpt_info_t *info)
{
    *lo_p = NULL;
    rw_st_t *st;
    rw_model_config_t cfg;
    rw_lora_config_t lc;
    rw_lora_t *lo = NULL;
    int rc = open_kind(path, "lora", &st, &cfg);
    if (rc < 0)
        return rc;
    if (memcmp(&cfg, &base->cfg, sizeof cfg) != 0) {
        RW_ERROR("checkpoint", "adapter %s was made for another model configuration", path);
        rc = RW_EINVAL;
    }
    if (rc == 0)
        rc = check_adapter(st, base, &lc);
    if (rc == 0)
        rc = rw_lora_new(&lo, base, &lc);
    if (rc == 0)
        rc = no_strangers(st, &lo->layout);
    if (rc == 0)
        rc = fill_block(st, &lo->layout, lo->mem, "", RW_EFORMAT);
    if (rc == 0 && info)
        rc = read_info(st, info);
    rw_st_destroy(&st);
    if (rc < 0)
        rw_lora_destroy(&lo);
    *lo_p = lo;
    return rc;
}

int rw_checkpoint_restore_trainer(const char *path, rw_trainer_t *tr)
{
    rw_lora_t *lo = rw_trainer_lora(tr);
    rw_st_t *st;
    rw_model_config_t cfg;
    int rc = open_kind(path, lo ? "lora" : "model", &st, &cfg);
    if (rc < 0)
        return rc;
    if (memcmp(&cfg, &rw_trainer_model(tr)->cfg, sizeof cfg) != 0)
        rc = RW_EFORMAT;
    rw_lora_config_t lc;
    if (rc == 0 && lo) {
        const char *l = rw_st_meta(st, "rewire.lora");
        rc = l && rw_lora_config_from_json(l, &lc) == 0 && memcmp(&lc, &lo->cfg, sizeof lc) == 0
                 ? 0
                 : RW_EFORMAT;
    }
    const rw_layout_t *lay = rw_trainer_layout(tr);
    rw_ckpt_info_t info = {0};
    if (rc == 0)
        rc = read_info(st, &info);
    if (rc == 0 && !info.has_training)
        rc = RW_ENOTFOUND;
    if (rc == 0)
        rc = fill_block(st, lay, rw_trainer_params(tr), "", RW_EFORMAT);
    if (rc == 0)
        rc = fill_block(st, lay, rw_trainer_moment(tr, 1), "optim.m.", RW_ENOTFOUND);
    if (rc == 0)
        rc = fill_block(st, lay, rw_trainer_moment(tr, 2), "optim.v.", RW_ENOTFOUND);
    if (rc == 0)
        rw_trainer_set_counts(tr, info.updates, info.skipped);
    rw_ckpt_info_fini(&info);
    rw_st_destroy(&st);
    return rc;
}
