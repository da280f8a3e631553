/* bundle_impl.h — what the bundle modules share: the manifest's parsed form
 * and the open bundle's insides.
 *
 * bundle.c reads and checks manifests and opens bundles, bundle_write.c
 * builds them, bundle_score.c scores and evaluates with them. Names here are
 * internal (rw_bundle__).
 */
#ifndef RW_BUNDLE_IMPL_H
#define RW_BUNDLE_IMPL_H

#include "batch.h"
#include "bpe.h"
#include "bundle.h"
#include "engine.h"
#include "lora.h"
#include "model.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define RW_BUNDLE_FORMAT         "rewire-bundle"
#define RW_BUNDLE_FORMAT_VERSION 1
#define RW_BUNDLE_MANIFEST       "manifest.json"
#define RW_BUNDLE_TOKENIZER      "tokenizer.json"
/* Sequences per forward pass when scoring. */
#define RW_BUNDLE_CHUNK 32
/* Longest manifest read (it holds configurations, file lists and results). */
#define RW_BUNDLE_MAX_MANIFEST ((size_t)16 << 20)
/* Most domains a bundle holds (as many as a job has). */
#define RW_BUNDLE_MAX_DOMAINS 256
/* Longest domain name a bundle takes. */
#define RW_BUNDLE_MAX_NAME 128

/* A member's role; which ones a kind has is fixed (bundle.h's table). */
typedef enum {
    RW_ROLE_MODEL = 0,      /* baseline, moe: the one model */
    RW_ROLE_BASE,           /* adapter: the frozen seed */
    RW_ROLE_ROUTER,         /* router: the classifier */
    RW_ROLE_ROUTER_ADAPTER, /* adapter: the LoRA classifier */
    RW_ROLE_DOMAIN,         /* router: one domain's reward model */
    RW_ROLE_ADAPTER,        /* adapter: one domain's LoRA reward adapter */
    RW_ROLE__COUNT
} rw_bundle__role_t;

const char *rw_bundle__role_name(rw_bundle__role_t r);

/* One member as the manifest describes it (strings borrowed from it). */
typedef struct rw_bundle__member {
    rw_bundle__role_t role;
    const char *file;
    long domain;           /* label index for domain/adapter roles, else -1 */
    int lora;              /* 1 for an adapter file */
    rw_model_config_t cfg; /* the model's, or (lora) the adapted base's */
    rw_lora_config_t lcfg; /* lora only */
    size_t params;
} rw_bundle__member_t;

/* A checked manifest. Strings point into the JSON it was parsed from. */
typedef struct rw_bundle__manifest {
    rw_bundle_kind_t kind;
    size_t n_domains;
    const char **domains;         /* owned array */
    rw_bundle__member_t *members; /* owned, n_members */
    size_t n_members;
    long main, router; /* member indexes (model/base, router/router adapter); -1 if none */
    long *by_domain;   /* owned, n_domains: the domain/adapter member of each label */
    size_t params_total, params_per_pair;
} rw_bundle__manifest_t;

/* Checks m (format version 1) and fills mf. Returns 0, or RW_EPARSE with
 * why saying what is wrong. mf needs rw_bundle__manifest_fini either way. */
int rw_bundle__manifest_parse(const json_t *m, rw_bundle__manifest_t *mf, char *why, size_t whylen);
void rw_bundle__manifest_fini(rw_bundle__manifest_t *mf);

/* 1 if name is a plain file name a bundle may hold: no '/', not "." or
 * "..", no control bytes, not empty, at most 255 bytes. */
int rw_bundle__safe_file_name(const char *name);

/* Size and XXH64 of the file at path. Returns 0 or -errno. */
int rw_bundle__file_hash(const char *path, uint64_t *size, uint64_t *hash);

/* Parameters of a model or adapter of these configurations. */
size_t rw_bundle__model_params(const rw_model_config_t *cfg);
size_t rw_bundle__lora_params(const rw_lora_config_t *lcfg, const rw_model_config_t *base);

/* Writes o to path (whole or not at all), indented, keys in insertion
 * order. Returns 0 or -errno. */
int rw_bundle__write_json(const char *path, const json_t *o);

/* The JSON form of a configuration string made by rw_*_config_to_json. */
json_t *rw_bundle__json_of(char *owned_json_text);

struct rw_bundle {
    char *dir; /* owned */
    json_t *manifest;
    rw_bundle__manifest_t mf;
    rw_bpe_t *bpe;
    rw_model_t *model;    /* baseline, moe: the model; adapter: the base */
    rw_model_t *router;   /* router kind */
    rw_model_t **members; /* router kind: n_domains domain reward models */
    rw_lora_t *router_lora;
    rw_lora_t **adapters; /* adapter kind: n_domains reward adapters */
    /* Engines are made when first needed (rw_bundle_set_threads drops them). */
    rw_engine_t *eng; /* on model; adapters are switched on it */
    rw_engine_t *eng_router;
    rw_engine_t **eng_members;
    int threads;
    rw_batch_t batch;
    float *out; /* RW_BUNDLE_CHUNK * max outputs */
};

#endif
