/* model.c — configuration, parameter layout, allocation and initialization
 * of the reward model; see model.h. The passes are in forward.c and
 * backward.c, the MoE feed-forward in moe.c. */
#include "model.h"

#include "jsontext.h"

#include "alloc.h"
#include "err.h"
#include "hash.h"
#include "log.h"
#include "rng.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void rw_model_config_default(rw_model_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab = 8192;
    cfg->max_len = 128;
    cfg->d_model = 256;
    cfg->n_layers = 4;
    cfg->n_heads = 4;
    cfg->d_ff = 1024;
    cfg->n_experts = 0;
    cfg->top_k = 2;
    cfg->pooling = RW_POOL_MEAN;
    cfg->head = RW_HEAD_REWARD;
    cfg->n_classes = 0;
}

int rw_head_check(rw_head_t head, int n_classes, char *why, size_t n)
{
    if (head != RW_HEAD_REWARD && head != RW_HEAD_CLASSIFIER)
        return rw_err_why(RW_EINVAL, why, n, "head (%d) must be reward or classifier", (int)head);
    if (head == RW_HEAD_CLASSIFIER && (n_classes < 2 || n_classes > 65536))
        return rw_err_why(RW_EINVAL, why, n, "n_classes (%d) must be from 2 to 65536", n_classes);
    return 0;
}

int rw_model_config_check(const rw_model_config_t *c, char *why, size_t n)
{
    /* bounds keep every size product far from size_t overflow */
    if (c->vocab < 3 || c->vocab > (1 << 24))
        return rw_err_why(RW_EINVAL, why, n, "vocab (%d) must be from 3 to %d", c->vocab, 1 << 24);
    if (c->max_len < 3 || c->max_len > 65536)
        return rw_err_why(RW_EINVAL, why, n, "max_len (%d) must be from 3 to 65536", c->max_len);
    if (c->d_model < 1 || c->d_model > 65536)
        return rw_err_why(RW_EINVAL, why, n, "d_model (%d) must be from 1 to 65536", c->d_model);
    if (c->n_layers < 1 || c->n_layers > 1024)
        return rw_err_why(RW_EINVAL, why, n, "n_layers (%d) must be from 1 to 1024", c->n_layers);
    if (c->n_heads < 1 || c->d_model % c->n_heads != 0)
        return rw_err_why(RW_EINVAL, why, n, "d_model (%d) must be a multiple of n_heads (%d)",
                          c->d_model, c->n_heads);
    if (c->d_ff < 1 || c->d_ff > 1 << 20)
        return rw_err_why(RW_EINVAL, why, n, "d_ff (%d) must be from 1 to %d", c->d_ff, 1 << 20);
    if (c->n_experts != 0 && (c->n_experts < 2 || c->n_experts > 64))
        return rw_err_why(RW_EINVAL, why, n, "n_experts (%d) must be 0 (dense) or from 2 to 64",
                          c->n_experts);
    if (c->n_experts && (c->top_k < 1 || c->top_k > c->n_experts))
        return rw_err_why(RW_EINVAL, why, n, "top_k (%d) must be from 1 to n_experts (%d)",
                          c->top_k, c->n_experts);
    if (c->pooling != RW_POOL_MEAN && c->pooling != RW_POOL_LAST)
        return rw_err_why(RW_EINVAL, why, n, "pooling (%d) must be mean or last", (int)c->pooling);
    if (rw_head_check(c->head, c->n_classes, why, n) < 0)
        return RW_EINVAL;
    if (c->gate_input != RW_GATE_TOKEN && c->gate_input != RW_GATE_PROMPT)
        return rw_err_why(RW_EINVAL, why, n, "gate_input (%d) must be token or prompt",
                          (int)c->gate_input);
    /* each field in range can still make a model no machine here trains:
     * training holds the weights several times over (gradients per
     * thread, two moments), so a model over the cap is said at once rather
     * than dying out of memory in every worker */
    double C = c->d_model, F = c->d_ff, E = c->n_experts ? c->n_experts : 1;
    double np = ((double)c->vocab + c->max_len) * C +
                c->n_layers * (4.0 * C * C + 2.0 * C * F * E +
                               (c->n_experts ? (double)rw_model_gate_inputs(c) * E : 0.0));
    if (np > RW_MODEL_MAX_PARAMS)
        return rw_err_why(RW_EINVAL, why, n,
                          "about %.3g parameters, over the limit of %.3g: lower d_model, n_layers, "
                          "d_ff, vocab or n_experts",
                          np, (double)RW_MODEL_MAX_PARAMS);
    return 0;
}

int rw_model_config_validate(const rw_model_config_t *c)
{
    char why[256];
    int rc = rw_model_config_check(c, why, sizeof why);
    if (rc < 0)
        RW_ERROR("model", "invalid configuration: %s", why);
    return rc;
}

size_t rw_model_gate_inputs(const rw_model_config_t *cfg)
{
    return (size_t)(cfg->gate_input == RW_GATE_PROMPT ? cfg->vocab : cfg->d_model);
}

int rw_model_config_outputs(const rw_model_config_t *cfg)
{
    return cfg->head == RW_HEAD_CLASSIFIER ? cfg->n_classes : 1;
}

/* The JSON names of the enumerated fields, indexed by value. */
static const char *const pooling_names[] = {"mean", "last"};
static const char *const head_names[] = {"reward", "classifier"};
static const char *const gate_names[] = {"token", "prompt"};

char *rw_model_config_to_json(const rw_model_config_t *c)
{
    json_t *o =
        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:i, s:s}", "vocab", c->vocab,
                  "max_len", c->max_len, "d_model", c->d_model, "n_layers", c->n_layers, "n_heads",
                  c->n_heads, "d_ff", c->d_ff, "n_experts", c->n_experts, "top_k", c->top_k,
                  "pooling", pooling_names[c->pooling], "head", head_names[c->head], "n_classes",
                  c->n_classes, "gate_input", gate_names[c->gate_input]);
    return rw_json_text(o);
}

/* Reads integer field key of o into *dst if present; RW_EPARSE if not an int. */
static int get_int(json_t *o, const char *key, int *dst)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < -2147483647 ||
        json_integer_value(v) > 2147483647)
        return RW_EPARSE;
    *dst = (int)json_integer_value(v);
    return 0;
}

/* Reads string field key of o, one of names[0..n), into *dst as its index if
 * present; RW_EPARSE for any other value. */
static int get_name(json_t *o, const char *key, const char *const *names, int n, int *dst)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    const char *s = json_string_value(v);
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *dst = i;
            return 0;
        }
    return RW_EPARSE;
}

int rw_model_config_from_json(const char *text, rw_model_config_t *c)
{
    rw_model_config_default(c);
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return RW_EPARSE;
    }
    int rc = 0;
    static const char *const keys[] = {"vocab", "max_len",   "d_model", "n_layers", "n_heads",
                                       "d_ff",  "n_experts", "top_k",   "n_classes"};
    int *dsts[] = {&c->vocab, &c->max_len,   &c->d_model, &c->n_layers, &c->n_heads,
                   &c->d_ff,  &c->n_experts, &c->top_k,   &c->n_classes};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && rc == 0; i++)
        rc = get_int(o, keys[i], dsts[i]);
    int pool = (int)c->pooling, head = (int)c->head, gate = (int)c->gate_input;
    if (rc == 0)
        rc = get_name(o, "pooling", pooling_names, 2, &pool);
    if (rc == 0)
        rc = get_name(o, "head", head_names, 2, &head);
    if (rc == 0)
        rc = get_name(o, "gate_input", gate_names, 2, &gate);
    c->pooling = (rw_pooling_t)pool;
    c->head = (rw_head_t)head;
    c->gate_input = (rw_gate_input_t)gate;
    json_decref(o);
    if (rc == 0)
        rc = rw_model_config_validate(c);
    return rc;
}

/* Appends a tensor of the given shape (dims with a 0 make it empty). */
static void add(rw_layout_t *lay, const char *name, int decay, int gate, int ndim, size_t d0,
                size_t d1, size_t d2, size_t d3)
{
    rw_tensor_t *t = &lay->t[lay->n_tensors++];
    size_t dims[RW_TENSOR_MAX_DIMS] = {d0, d1, d2, d3};
    t->name = name;
    t->ndim = ndim;
    t->n = 1;
    for (int i = 0; i < RW_TENSOR_MAX_DIMS; i++) {
        t->shape[i] = i < ndim ? dims[i] : 0;
        if (i < ndim)
            t->n *= dims[i];
    }
    t->offset = lay->n_floats;
    t->decay = decay;
    t->gate = gate;
    lay->n_floats += t->n;
}

void rw_model_layout(const rw_model_config_t *cfg, rw_layout_t *lay)
{
    size_t V = (size_t)cfg->vocab, T = (size_t)cfg->max_len, C = (size_t)cfg->d_model;
    size_t L = (size_t)cfg->n_layers, F = (size_t)cfg->d_ff, E = (size_t)cfg->n_experts;
    size_t X = E ? E : 1, O = (size_t)rw_model_config_outputs(cfg);
    memset(lay, 0, sizeof *lay);
    /* the order must match rw_params_t's fields */
    add(lay, "wte", 1, 0, 2, V, C, 0, 0);
    add(lay, "wpe", 1, 0, 2, T, C, 0, 0);
    add(lay, "ln1_w", 0, 0, 2, L, C, 0, 0);
    add(lay, "ln1_b", 0, 0, 2, L, C, 0, 0);
    add(lay, "qkv_w", 1, 0, 3, L, 3 * C, C, 0);
    add(lay, "qkv_b", 0, 0, 2, L, 3 * C, 0, 0);
    add(lay, "attproj_w", 1, 0, 3, L, C, C, 0);
    add(lay, "attproj_b", 0, 0, 2, L, C, 0, 0);
    add(lay, "ln2_w", 0, 0, 2, L, C, 0, 0);
    add(lay, "ln2_b", 0, 0, 2, L, C, 0, 0);
    add(lay, "fc_w", 1, 0, 4, L, X, F, C);
    add(lay, "fc_b", 0, 0, 3, L, X, F, 0);
    add(lay, "fcproj_w", 1, 0, 4, L, X, C, F);
    add(lay, "fcproj_b", 0, 0, 3, L, X, C, 0);
    add(lay, "gate_w", 1, 1, 3, L, E, E ? rw_model_gate_inputs(cfg) : 0, 0);
    add(lay, "lnf_w", 0, 0, 1, C, 0, 0, 0);
    add(lay, "lnf_b", 0, 0, 1, C, 0, 0, 0);
    add(lay, "head_w", 1, 0, 2, O, C, 0, 0);
    add(lay, "head_b", 0, 0, 1, O, 0, 0, 0);
}

void rw_params_carve(const rw_layout_t *lay, float *block, rw_params_t *p)
{
    float **ptrs[RW_MODEL_NTENSORS] = {&p->wte,  &p->wpe,      &p->ln1w,     &p->ln1b,    &p->qkvw,
                                       &p->qkvb, &p->attprojw, &p->attprojb, &p->ln2w,    &p->ln2b,
                                       &p->fcw,  &p->fcb,      &p->fcprojw,  &p->fcprojb, &p->gatew,
                                       &p->lnfw, &p->lnfb,     &p->headw,    &p->headb};
    for (size_t i = 0; i < RW_MODEL_NTENSORS; i++)
        *ptrs[i] = block && lay->t[i].n ? block + lay->t[i].offset : NULL;
}

int rw_model_new(rw_model_t **model_p, const rw_model_config_t *cfg)
{
    *model_p = NULL;
    int rc = rw_model_config_validate(cfg);
    if (rc < 0)
        return rc;
    rw_model_t *m = rw_new(rw_model_t);
    m->cfg = *cfg;
    rw_model_layout(cfg, &m->layout);
    m->mem = rw_new_array(float, m->layout.n_floats);
    rw_params_carve(&m->layout, m->mem, &m->p);
    *model_p = m;
    return 0;
}

void rw_model_destroy(rw_model_t **model_p)
{
    if (!model_p || !*model_p)
        return;
    free((*model_p)->mem);
    free(*model_p);
    *model_p = NULL;
}

void rw_model_init(rw_model_t *m, uint64_t seed)
{
    rw_rng_t rng;
    rw_rng_seed(&rng, seed);
    float resid_std = 0.02f / sqrtf(2.0f * (float)m->cfg.n_layers);
    for (size_t i = 0; i < m->layout.n_tensors; i++) {
        const rw_tensor_t *t = &m->layout.t[i];
        float *x = m->mem + t->offset;
        size_t len = strlen(t->name);
        if (len >= 2 && strcmp(t->name + len - 2, "_b") == 0) {
            memset(x, 0, t->n * sizeof *x);
        } else if (strncmp(t->name, "ln", 2) == 0) {
            for (size_t j = 0; j < t->n; j++)
                x[j] = 1.0f;
        } else {
            int resid = strcmp(t->name, "attproj_w") == 0 || strcmp(t->name, "fcproj_w") == 0;
            rw_rng_normal(&rng, x, t->n, resid ? resid_std : 0.02f);
        }
    }
}

const rw_tensor_t *rw_model_tensor(const rw_model_t *m, const char *name)
{
    for (size_t i = 0; i < m->layout.n_tensors; i++)
        if (strcmp(m->layout.t[i].name, name) == 0)
            return &m->layout.t[i];
    return NULL;
}

uint64_t rw_model_fingerprint(const rw_model_t *m)
{
    char *cfg = rw_model_config_to_json(&m->cfg);
    uint64_t h = rw_hash_update(RW_HASH_SEED, cfg, strlen(cfg));
    free(cfg);
    /* floats hashed as their little-endian bytes so the value is portable */
    unsigned char buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < m->layout.n_floats; i++) {
        uint32_t u;
        memcpy(&u, &m->mem[i], 4);
        for (int b = 0; b < 4; b++)
            buf[k++] = (unsigned char)(u >> (8 * b));
        if (k == sizeof buf) {
            h = rw_hash_update(h, buf, k);
            k = 0;
        }
    }
    h = rw_hash_update(h, buf, k);
    return rw_hash_final(h);
}

int rw_model_copy(rw_model_t *dst, const rw_model_t *src)
{
    if (memcmp(&dst->cfg, &src->cfg, sizeof dst->cfg) != 0)
        return RW_EINVAL;
    memcpy(dst->mem, src->mem, src->layout.n_floats * sizeof(float));
    return 0;
}

int rw_model_moe_merge(rw_model_t **moe_p, const rw_model_t *const *experts, size_t n, int top_k,
                       rw_gate_input_t gate_input, uint64_t seed, const rw_model_t *shared)
{
    *moe_p = NULL;
    if (n < 2 || n > 64)
        return RW_EINVAL;
    if (shared && memcmp(&shared->cfg, &experts[0]->cfg, sizeof shared->cfg) != 0)
        return RW_EINVAL;
    for (size_t e = 0; e < n; e++)
        if (experts[e]->cfg.n_experts ||
            memcmp(&experts[e]->cfg, &experts[0]->cfg, sizeof experts[0]->cfg) != 0)
            return RW_EINVAL;
    rw_model_config_t cfg = experts[0]->cfg;
    cfg.n_experts = (int)n;
    cfg.top_k = top_k;
    cfg.gate_input = gate_input;
    rw_model_t *m;
    int rc = rw_model_new(&m, &cfg);
    if (rc < 0)
        return rc;
    const rw_layout_t *dl = &experts[0]->layout;
    size_t L = (size_t)cfg.n_layers;
    for (size_t i = 0; i < m->layout.n_tensors; i++) {
        const rw_tensor_t *t = &m->layout.t[i], *d = &dl->t[i];
        float *dst = m->mem + t->offset;
        if (t->gate) {
            rw_rng_t rng;
            rw_rng_seed(&rng, seed);
            rw_rng_normal(&rng, dst, t->n, 0.02f);
        } else if (strncmp(t->name, "fc", 2) == 0) {
            /* (L, X, ...): layer l's slice of expert e is dense model e's layer l */
            size_t per = d->n / L;
            for (size_t l = 0; l < L; l++)
                for (size_t e = 0; e < n; e++)
                    memcpy(dst + (l * n + e) * per, experts[e]->mem + d->offset + l * per,
                           per * sizeof *dst);
        } else if (shared) {
            memcpy(dst, shared->mem + d->offset, t->n * sizeof *dst);
        } else {
            for (size_t j = 0; j < t->n; j++) {
                double sum = 0.0;
                for (size_t e = 0; e < n; e++)
                    sum += experts[e]->mem[d->offset + j];
                dst[j] = (float)(sum / (double)n);
            }
        }
    }
    *moe_p = m;
    return 0;
}

double rw_model_flops_forward(const rw_model_config_t *cfg, size_t B, size_t T)
{
    double N = (double)B * (double)T, C = cfg->d_model, F = cfg->d_ff, L = cfg->n_layers;
    double E = cfg->n_experts, k = cfg->n_experts ? cfg->top_k : 1;
    double per_layer = 2.0 * N * (3 * C * C + C * C) /* qkv and attention projection */
                       + 4.0 * (double)B * (double)T * (double)T * C /* QK^T and PV */
                       + 2.0 * N * k * (2 * C * F)                   /* feed-forward */
                       + (cfg->gate_input == RW_GATE_TOKEN ? 2.0 * N * E * C : 0.0); /* gate */
    return L * per_layer + 2.0 * (double)B * C * rw_model_config_outputs(cfg);
}
