/* lora.c — LoRA adapter configuration, layout and initialization; see
 * lora.h. The adapter's passes are beside the base layers in forward.c and
 * backward.c. */
#include "lora.h"

#include "jsontext.h"

#include "alloc.h"
#include "err.h"
#include "log.h"
#include "rng.h"

#include <jansson.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the projections, then "emb" (bit RW_LORA_NTARGETS, RW_LORA_EMB) */
static const char *const target_names[RW_LORA_NTARGETS + 1] = {"q",   "k",   "v",  "o",
                                                               "ff1", "ff2", "emb"};

void rw_lora_config_default(rw_lora_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->rank = 8;
    cfg->alpha = 16.0f;
    cfg->targets = RW_LORA_ALL;
    cfg->head = RW_HEAD_REWARD;
}

int rw_lora_config_check(const rw_lora_config_t *c, const rw_model_config_t *base, char *why,
                         size_t n)
{
    if (c->rank < 1 || c->rank > base->d_model)
        return rw_err_why(RW_EINVAL, why, n, "rank (%d) must be from 1 to the base's d_model (%d)",
                          c->rank, base->d_model);
    if (!(c->alpha > 0.0f) || !isfinite(c->alpha))
        return rw_err_why(RW_EINVAL, why, n, "alpha (%g) must be a positive number",
                          (double)c->alpha);
    if (c->targets == 0 || (c->targets & ~(unsigned)(RW_LORA_ALL | RW_LORA_EMB)))
        return rw_err_why(RW_EINVAL, why, n, "target set 0x%x is empty or names unknown targets",
                          c->targets);
    if (base->n_experts && (c->targets & (RW_LORA_FF1 | RW_LORA_FF2)))
        return rw_err_why(RW_EINVAL, why, n,
                          "ff1/ff2 adapters need a dense feed-forward, the base is MoE");
    return rw_head_check(c->head, c->n_classes, why, n);
}

int rw_lora_config_validate(const rw_lora_config_t *c, const rw_model_config_t *base)
{
    char why[256];
    int rc = rw_lora_config_check(c, base, why, sizeof why);
    if (rc < 0)
        RW_ERROR("lora", "invalid configuration: %s", why);
    return rc;
}

int rw_lora_parse_targets(const char *list, unsigned *targets)
{
    unsigned bits = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int i = 0; i <= RW_LORA_NTARGETS; i++)
            if (strlen(target_names[i]) == n && strncmp(p, target_names[i], n) == 0) {
                bits |= 1u << i;
                found = 1;
            }
        if (!found)
            return RW_EINVAL;
        p += n;
        if (*p == ',')
            p++;
    }
    if (!bits)
        return RW_EINVAL;
    *targets = bits;
    return 0;
}

int rw_lora_outputs(const rw_lora_config_t *cfg)
{
    return cfg->head == RW_HEAD_CLASSIFIER ? cfg->n_classes : 1;
}

char *rw_lora_config_to_json(const rw_lora_config_t *c)
{
    char list[64] = "";
    for (int i = 0; i <= RW_LORA_NTARGETS; i++)
        if (c->targets & (1u << i)) {
            if (list[0])
                strcat(list, ",");
            strcat(list, target_names[i]);
        }
    json_t *o = json_pack(
        "{s:i, s:f, s:s, s:s, s:i}", "rank", c->rank, "alpha", (double)c->alpha, "targets", list,
        "head", c->head == RW_HEAD_CLASSIFIER ? "classifier" : "reward", "n_classes", c->n_classes);
    return rw_json_text(o);
}

int rw_lora_config_from_json(const char *text, rw_lora_config_t *c)
{
    rw_lora_config_default(c);
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    int rc = o && json_is_object(o) ? 0 : RW_EPARSE;
    json_t *v;
    if (rc == 0 && (v = json_object_get(o, "rank")))
        rc = json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 1 << 20
                 ? (c->rank = (int)json_integer_value(v), 0)
                 : RW_EPARSE;
    if (rc == 0 && (v = json_object_get(o, "alpha")))
        rc = json_is_number(v) && fabs(json_number_value(v)) <= FLT_MAX /* a float holds it */
                 ? (c->alpha = (float)json_number_value(v), 0)
                 : RW_EPARSE;
    if (rc == 0 && (v = json_object_get(o, "targets")))
        rc = json_is_string(v) && rw_lora_parse_targets(json_string_value(v), &c->targets) == 0
                 ? 0
                 : RW_EPARSE;
    if (rc == 0 && (v = json_object_get(o, "head"))) {
        const char *s = json_string_value(v);
        if (s && strcmp(s, "reward") == 0)
            c->head = RW_HEAD_REWARD;
        else if (s && strcmp(s, "classifier") == 0)
            c->head = RW_HEAD_CLASSIFIER;
        else
            rc = RW_EPARSE;
    }
    if (rc == 0 && (v = json_object_get(o, "n_classes")))
        rc = json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < 1 << 20
                 ? (c->n_classes = (int)json_integer_value(v), 0)
                 : RW_EPARSE;
    json_decref(o);
    return rc;
}

void rw_lora_target_dims(const rw_model_config_t *base, int i, size_t *in, size_t *out)
{
    size_t C = (size_t)base->d_model, F = (size_t)base->d_ff;
    *in = i == 5 ? F : C;
    *out = i == 4 ? F : C;
}

static void add(rw_layout_t *lay, const char *name, int decay, int ndim, size_t d0, size_t d1,
                size_t d2)
{
    rw_tensor_t *t = &lay->t[lay->n_tensors++];
    size_t dims[3] = {d0, d1, d2};
    memset(t, 0, sizeof *t);
    t->name = name;
    t->ndim = ndim;
    t->n = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = dims[i];
        t->n *= dims[i];
    }
    t->offset = lay->n_floats;
    t->decay = decay;
    lay->n_floats += t->n;
}

void rw_lora_layout(const rw_lora_config_t *cfg, const rw_model_config_t *base, rw_layout_t *lay)
{
    static const char *const a_names[RW_LORA_NTARGETS] = {"lora_q_a", "lora_k_a",   "lora_v_a",
                                                          "lora_o_a", "lora_ff1_a", "lora_ff2_a"};
    static const char *const b_names[RW_LORA_NTARGETS] = {"lora_q_b", "lora_k_b",   "lora_v_b",
                                                          "lora_o_b", "lora_ff1_b", "lora_ff2_b"};
    size_t L = (size_t)base->n_layers, r = (size_t)cfg->rank, C = (size_t)base->d_model;
    size_t O = (size_t)rw_lora_outputs(cfg);
    memset(lay, 0, sizeof *lay);
    /* the order must match rw_lora_carve: all A, all B, then the head */
    for (int i = 0; i < RW_LORA_NTARGETS; i++) {
        size_t in, out, on = (cfg->targets >> i) & 1;
        rw_lora_target_dims(base, i, &in, &out);
        add(lay, a_names[i], 1, 3, L * on, r, in);
    }
    for (int i = 0; i < RW_LORA_NTARGETS; i++) {
        size_t in, out, on = (cfg->targets >> i) & 1;
        rw_lora_target_dims(base, i, &in, &out);
        add(lay, b_names[i], 1, 3, L * on, out, r);
    }
    add(lay, "head_w", 1, 2, O, C, 0);
    add(lay, "head_b", 0, 1, O, 0, 0);
    size_t emb = (cfg->targets & RW_LORA_EMB) != 0;
    add(lay, "lora_emb_a", 1, 2, (size_t)base->vocab * emb, r, 0);
    add(lay, "lora_emb_b", 1, 2, C * emb, r, 0);
}

void rw_lora_carve(const rw_layout_t *lay, float *block, rw_lora_params_t *p)
{
    for (int i = 0; i < RW_LORA_NTARGETS; i++) {
        const rw_tensor_t *ta = &lay->t[i], *tb = &lay->t[RW_LORA_NTARGETS + i];
        p->a[i] = block && ta->n ? block + ta->offset : NULL;
        p->b[i] = block && tb->n ? block + tb->offset : NULL;
    }
    const rw_tensor_t *hw = &lay->t[2 * RW_LORA_NTARGETS], *hb = &lay->t[2 * RW_LORA_NTARGETS + 1];
    p->headw = block ? block + hw->offset : NULL;
    p->headb = block ? block + hb->offset : NULL;
    const rw_tensor_t *ea = hb + 1, *eb = hb + 2;
    p->emb_a = block && ea->n ? block + ea->offset : NULL;
    p->emb_b = block && eb->n ? block + eb->offset : NULL;
}

int rw_lora_new(rw_lora_t **lora_p, const rw_model_t *base, const rw_lora_config_t *cfg)
{
    *lora_p = NULL;
    int rc = rw_lora_config_validate(cfg, &base->cfg);
    if (rc < 0)
        return rc;
    rw_lora_t *lo = rw_new(rw_lora_t);
    lo->cfg = *cfg;
    lo->base = base->cfg;
    lo->base_fingerprint = rw_model_fingerprint(base);
    rw_lora_layout(cfg, &base->cfg, &lo->layout);
    lo->mem = rw_new_array(float, lo->layout.n_floats);
    rw_lora_carve(&lo->layout, lo->mem, &lo->p);
    *lora_p = lo;
    return 0;
}

void rw_lora_destroy(rw_lora_t **lora_p)
{
    if (!lora_p || !*lora_p)
        return;
    free((*lora_p)->mem);
    free(*lora_p);
    *lora_p = NULL;
}

void rw_lora_init(rw_lora_t *lo, const rw_model_t *base, uint64_t seed)
{
    rw_rng_t rng;
    rw_rng_seed(&rng, seed);
    memset(lo->mem, 0, lo->layout.n_floats * sizeof(float));
    for (int i = 0; i < RW_LORA_NTARGETS; i++) {
        const rw_tensor_t *ta = &lo->layout.t[i];
        if (ta->n)
            rw_rng_normal(&rng, lo->p.a[i], ta->n, 1.0f / sqrtf((float)ta->shape[2]));
    }
    /* the embedding's update the other way round: each token's code, its
     * row of A_e, starts at zero and learns from the token's first step,
     * through a random B_e (unit normal). Random codes under a zero B_e
     * stay nearly where they start, tokens being rare: on HH-RLHF's
     * domains, adapters routed by the true domain gained -0.9 points over
     * the seed that way, +5.2 this way (the same seeds) */
    if (lo->p.emb_b)
        rw_rng_normal(&rng, lo->p.emb_b, (size_t)base->cfg.d_model * (size_t)lo->cfg.rank, 1.0f);
    size_t O = (size_t)rw_lora_outputs(&lo->cfg), C = (size_t)base->cfg.d_model;
    if (lo->cfg.head == base->cfg.head && (int)O == rw_model_config_outputs(&base->cfg)) {
        memcpy(lo->p.headw, base->p.headw, O * C * sizeof(float));
        memcpy(lo->p.headb, base->p.headb, O * sizeof(float));
    } else {
        rw_rng_normal(&rng, lo->p.headw, O * C, 0.02f);
    }
}
