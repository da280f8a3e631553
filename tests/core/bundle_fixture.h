/* bundle_fixture.h — a tiny job's artifacts for the bundle tests: three
 * domains of synthetic pairs, their tokenizer, and checkpoints of every
 * member kind (a baseline, dense experts merged into an MoE model, domain
 * reward models, a router, a base with LoRA reward adapters and a router
 * adapter), all small enough to build in well under a second.
 *
 * The router and the router adapter route perfectly by construction: every
 * prompt of domain d starts with its own marker byte ('@', '#', '%'), which
 * the tokenizer keeps as a token of its own. A "marker model" has zero
 * attention and feed-forward weights, so its final features are the layer
 * norm of the token embeddings averaged over the sequence; only marker d's
 * embedding reaches feature d (the others are zero there and zero-mean), and
 * a head reading feature d as class d picks the domain whose marker the
 * prompt holds. The reward models are random (GPT-2 initialization, one of
 * them trained a few steps and saved with its optimizer state), so each
 * gives its own rewards and routing mistakes would show.
 */
#ifndef RW_TEST_BUNDLE_FIXTURE_H
#define RW_TEST_BUNDLE_FIXTURE_H

#include "batch.h"
#include "bpe.h"
#include "bundle.h"
#include "checkpoint.h"
#include "corpus.h"
#include "engine.h"
#include "lora.h"
#include "model.h"
#include "pair.h"
#include "rng.h"
#include "train.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BFX_ND    3
#define BFX_PAIRS 12 /* per domain */

static const char *const bfx_domains[BFX_ND] = {"alpha", "beta", "gamma"};
static const char bfx_markers[BFX_ND] = {'@', '#', '%'};

typedef struct bfx {
    char dir[512];
    rw_dataset_t ds; /* BFX_ND * BFX_PAIRS pairs, all in the eval split */
    rw_bpe_t *bpe;
    char *tok_json;
    int32_t marker[BFX_ND];
    rw_model_config_t cfg; /* the reward models' */
    char tokenizer[600], baseline[600], moe[600], router[600], base[600], router_adapter[600];
    char domain[BFX_ND][600], adapter[BFX_ND][600];
    const char *domain_p[BFX_ND], *adapter_p[BFX_ND];
} bfx_t;

static const char *const bfx_words[] = {
    "the",   "cat",  "sat",    "on",    "mat",   "a",     "dog",   "ran",   "to",    "park",
    "we",    "like", "simple", "clear", "short", "long",  "words", "and",   "more",  "text",
    "river", "sun",  "green",  "apple", "stone", "quick", "brown", "light", "heavy", "calm",
};
#define BFX_NWORDS (sizeof bfx_words / sizeof bfx_words[0])

static inline void bfx_sentence(rw_rng_t *r, char *out, size_t n, size_t words)
{
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < words; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%s", i ? " " : "",
                              bfx_words[rw_rng_below(r, BFX_NWORDS)]);
}

/* Pairs of every domain: prompt "M words...", replies of random words. */
static inline void bfx_data(rw_dataset_t *ds, uint64_t seed)
{
    rw_rng_t r;
    rw_rng_seed(&r, seed);
    rw_dataset_init(ds);
    for (int d = 0; d < BFX_ND; d++)
        for (int i = 0; i < BFX_PAIRS; i++) {
            char p[256], q[200], c[200], j[200];
            bfx_sentence(&r, q, sizeof q, 3 + rw_rng_below(&r, 5));
            snprintf(p, sizeof p, "%c %s", bfx_markers[d], q);
            bfx_sentence(&r, c, sizeof c, 2 + rw_rng_below(&r, 6));
            do
                bfx_sentence(&r, j, sizeof j, 2 + rw_rng_below(&r, 6));
            while (strcmp(c, j) == 0);
            rw_pair_t *x =
                rw_dataset_add(ds, p, strlen(p), c, strlen(c), j, strlen(j), bfx_domains[d]);
            x->split = RW_SPLIT_EVAL;
        }
}

static inline void bfx_config(rw_model_config_t *cfg, int vocab)
{
    rw_model_config_default(cfg);
    cfg->vocab = vocab;
    cfg->max_len = 64;
    cfg->d_model = 16;
    cfg->n_layers = 1;
    cfg->n_heads = 2;
    cfg->d_ff = 32;
}

/* The marker model of the fixture's comment; head as cfg says. */
static inline rw_model_t *bfx_marker_model(const bfx_t *f, const rw_model_config_t *cfg,
                                           uint64_t seed)
{
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, cfg), 0);
    size_t C = (size_t)cfg->d_model, V = (size_t)cfg->vocab, L = (size_t)cfg->n_layers;
    rw_rng_t r;
    rw_rng_seed(&r, seed);
    for (size_t t = 0; t < V; t++) {
        float *row = m->p.wte + t * C;
        rw_rng_normal(&r, row + BFX_ND, C - BFX_ND, 1.0f);
        double mean = 0;
        for (size_t c = BFX_ND; c < C; c++)
            mean += row[c];
        mean /= (double)(C - BFX_ND);
        for (size_t c = BFX_ND; c < C; c++)
            row[c] -= (float)mean;
    }
    for (int d = 0; d < BFX_ND; d++) {
        float *row = m->p.wte + (size_t)f->marker[d] * C;
        memset(row, 0, C * sizeof *row);
        row[d] = 4.0f;
        row[C - 1] = -4.0f;
    }
    for (size_t i = 0; i < L * C; i++)
        m->p.ln1w[i] = m->p.ln2w[i] = 1.0f;
    for (size_t i = 0; i < C; i++)
        m->p.lnfw[i] = 1.0f;
    int O = rw_model_config_outputs(cfg);
    if (O == BFX_ND)
        for (int d = 0; d < BFX_ND; d++)
            m->p.headw[(size_t)d * C + (size_t)d] = 1.0f;
    else
        rw_rng_normal(&r, m->p.headw, C, 0.5f);
    return m;
}

static inline rw_model_t *bfx_random_model(const rw_model_config_t *cfg, uint64_t seed)
{
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, cfg), 0);
    rw_model_init(m, seed);
    rw_rng_t r;
    rw_rng_seed(&r, seed ^ 0x5eed);
    rw_rng_normal(&r, m->p.headw, (size_t)cfg->d_model, 0.5f); /* rewards far apart */
    return m;
}

/* Token ids of pair i's prompt, chosen and rejected (owned by the caller). */
typedef struct bfx_tok {
    int32_t *ids;
    size_t n, cap;
    rw_tok_pair_t *pairs;
} bfx_tok_t;

static inline void bfx_tokenize(bfx_t *f, bfx_tok_t *t)
{
    memset(t, 0, sizeof *t);
    size_t(*off)[3] = calloc(f->ds.n, sizeof *off), (*cnt)[3] = calloc(f->ds.n, sizeof *cnt);
    for (size_t i = 0; i < f->ds.n; i++) {
        const rw_pair_t *p = &f->ds.pairs[i];
        const char *s[3] = {p->prompt, p->chosen, p->rejected};
        for (int k = 0; k < 3; k++) {
            off[i][k] = t->n;
            cr_assert_eq(rw_bpe_encode(f->bpe, s[k], strlen(s[k]), &t->ids, &t->n, &t->cap), 0);
            cnt[i][k] = t->n - off[i][k];
        }
    }
    t->pairs = calloc(f->ds.n, sizeof *t->pairs);
    for (size_t i = 0; i < f->ds.n; i++)
        t->pairs[i] = (rw_tok_pair_t){
            t->ids + off[i][0], t->ids + off[i][1], t->ids + off[i][2],      cnt[i][0],
            cnt[i][1],          cnt[i][2],          (int32_t)(i / BFX_PAIRS)};
    free(off);
    free(cnt);
}

static inline void bfx_tok_free(bfx_tok_t *t)
{
    free(t->ids);
    free(t->pairs);
}

static int bfx_next(void *ctx, long step, rw_batch_t *b)
{
    const bfx_tok_t *t = ctx;
    size_t n = BFX_ND * BFX_PAIRS, start = ((size_t)step * 4) % (n - 4);
    return rw_batch_from_pairs(b, t->pairs + start, 4);
}

static int bfx_quiet(void *ctx, const rw_step_stats_t *st)
{
    (void)ctx, (void)st;
    return 0;
}

static inline void bfx_save(const bfx_t *f, const char *path, const rw_model_t *m, rw_trainer_t *tr)
{
    cr_assert_eq(rw_checkpoint_save(path, m, tr, f->tok_json, "fixture"), 0, "%s", path);
}

/* Builds every artifact in dir. */
static inline void bfx_build(bfx_t *f, const char *dir)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    bfx_data(&f->ds, 11);
    rw_bpe_train_opts_t to = {.vocab_size = 1000, .min_frequency = 2};
    cr_assert_eq(rw_corpus_train_bpe(&f->ds, &to, &f->bpe), 0);
    f->tok_json = rw_bpe_to_json(f->bpe);
    snprintf(f->tokenizer, sizeof f->tokenizer, "%s/tokenizer.json", dir);
    cr_assert_eq(rw_bpe_save(f->bpe, f->tokenizer), 0);
    for (int d = 0; d < BFX_ND; d++) {
        int32_t *ids = NULL;
        size_t n = 0, cap = 0;
        char s[2] = {bfx_markers[d], 0};
        rw_bpe_encode(f->bpe, s, 1, &ids, &n, &cap);
        cr_assert_eq(n, 1);
        f->marker[d] = ids[0];
        free(ids);
    }
    bfx_config(&f->cfg, (int)rw_bpe_vocab_size(f->bpe));
#define P(field, name) snprintf(f->field, sizeof f->field, "%s/%s", dir, name)
    P(baseline, "seed.safetensors");
    P(moe, "moe.safetensors");
    P(router, "router.safetensors");
    P(base, "base.safetensors");
    P(router_adapter, "router_adapter.safetensors");
#undef P
    /* baseline: trained a few steps, saved with its optimizer state */
    bfx_tok_t tok;
    bfx_tokenize(f, &tok);
    rw_model_t *seed = bfx_random_model(&f->cfg, 1);
    rw_train_config_t tc;
    rw_train_config_default(&tc);
    tc.threads = 1;
    tc.max_batch = 8;
    tc.opt.total_steps = 4;
    rw_trainer_t *tr;
    cr_assert_eq(rw_trainer_new(&tr, seed, NULL, &tc), 0);
    cr_assert_eq(rw_trainer_run(tr, 4, bfx_next, bfx_quiet, &tok), 0);
    bfx_save(f, f->baseline, seed, tr);
    rw_trainer_destroy(&tr);
    rw_model_destroy(&seed);
    bfx_tok_free(&tok);
    /* domain reward models; merged they are the MoE model */
    rw_model_t *dm[BFX_ND], *moe;
    for (int d = 0; d < BFX_ND; d++) {
        snprintf(f->domain[d], sizeof f->domain[d], "%s/rm_%s.safetensors", dir, bfx_domains[d]);
        f->domain_p[d] = f->domain[d];
        dm[d] = bfx_random_model(&f->cfg, 10 + (uint64_t)d);
        bfx_save(f, f->domain[d], dm[d], NULL); /* no domain named: bundles rename them */
    }
    cr_assert_eq(
        rw_model_moe_merge(&moe, (const rw_model_t *const *)dm, BFX_ND, 2, RW_GATE_TOKEN, 5, NULL),
        0);
    bfx_save(f, f->moe, moe, NULL);
    rw_model_destroy(&moe);
    for (int d = 0; d < BFX_ND; d++)
        rw_model_destroy(&dm[d]);
    /* the router */
    rw_model_config_t rc = f->cfg;
    rc.head = RW_HEAD_CLASSIFIER;
    rc.n_classes = BFX_ND;
    rw_model_t *router = bfx_marker_model(f, &rc, 3);
    bfx_save(f, f->router, router, NULL); /* no classes named: bundles rename them */
    rw_model_destroy(&router);
    /* the adapter bundle's base, its router adapter and reward adapters */
    rw_model_t *base = bfx_marker_model(f, &f->cfg, 4);
    bfx_save(f, f->base, base, NULL);
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 2;
    lc.head = RW_HEAD_CLASSIFIER;
    lc.n_classes = BFX_ND;
    rw_lora_t *lo;
    cr_assert_eq(rw_lora_new(&lo, base, &lc), 0);
    rw_lora_init(lo, base, 6);
    memset(lo->p.headw, 0, (size_t)BFX_ND * (size_t)f->cfg.d_model * sizeof(float));
    for (int d = 0; d < BFX_ND; d++)
        lo->p.headw[(size_t)d * (size_t)f->cfg.d_model + (size_t)d] = 1.0f;
    cr_assert_eq(rw_lora_save(f->router_adapter, lo, NULL, NULL), 0);
    rw_lora_destroy(&lo);
    lc.head = RW_HEAD_REWARD;
    for (int d = 0; d < BFX_ND; d++) {
        snprintf(f->adapter[d], sizeof f->adapter[d], "%s/ad_%s.safetensors", dir, bfx_domains[d]);
        f->adapter_p[d] = f->adapter[d];
        cr_assert_eq(rw_lora_new(&lo, base, &lc), 0);
        rw_lora_init(lo, base, 20 + (uint64_t)d);
        rw_rng_t r;
        rw_rng_seed(&r, 30 + (uint64_t)d);
        for (int i = 0; i < RW_LORA_NTARGETS; i++) {
            const rw_tensor_t *t = &lo->layout.t[RW_LORA_NTARGETS + i];
            rw_rng_normal(&r, lo->p.b[i], t->n, 0.5f);
        }
        rw_rng_normal(&r, lo->p.headw, (size_t)f->cfg.d_model, 0.5f);
        cr_assert_eq(rw_lora_save(f->adapter[d], lo, NULL, NULL), 0);
        rw_lora_destroy(&lo);
    }
    rw_model_destroy(&base);
}

static inline void bfx_free(bfx_t *f)
{
    rw_dataset_fini(&f->ds);
    rw_bpe_destroy(&f->bpe);
    free(f->tok_json);
}

/* The sources of a bundle of kind from the fixture's artifacts. */
static inline rw_bundle_sources_t bfx_sources(const bfx_t *f, rw_bundle_kind_t kind)
{
    rw_bundle_sources_t s = {.kind = kind, .tokenizer = f->tokenizer};
    s.domains = bfx_domains;
    s.n_domains = BFX_ND;
    if (kind == RW_BUNDLE_BASELINE)
        s.model = f->baseline;
    if (kind == RW_BUNDLE_MOE)
        s.model = f->moe;
    if (kind == RW_BUNDLE_ROUTER) {
        s.router = f->router;
        s.members = f->domain_p;
    }
    if (kind == RW_BUNDLE_ADAPTER) {
        s.base = f->base;
        s.router_adapter = f->router_adapter;
        s.members = f->adapter_p;
    }
    return s;
}

/* Writes a bundle of kind to dir/name; returns its path (static buffer). */
static inline const char *bfx_write(const bfx_t *f, rw_bundle_kind_t kind, const char *name)
{
    static char path[4][600];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", f->dir, name);
    rw_bundle_sources_t s = bfx_sources(f, kind);
    json_t *prov =
        json_pack("{s:s, s:i, s:i}", "job_id", "fixture", "seed", 7, "protocol_version", 1);
    s.provenance = prov;
    char why[512] = "";
    int rc = rw_bundle_write(&s, p, why, sizeof why);
    json_decref(prov);
    cr_assert_eq(rc, 0, "writing %s bundle: %s", rw_bundle_kind_name(kind), why);
    return p;
}

#endif
