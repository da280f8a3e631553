/* lora.h — LoRA adapters on a frozen reward model.
 *
 * An adapter adds a low-rank update (alpha/r) * x @ A^T @ B^T to any of the
 * query, key, value and output projections of attention and the two
 * feed-forward projections, in every layer, and carries its own head (a
 * reward head, or a classifier head for a router adapter). The "emb" target
 * adds a low-rank update (alpha/r) * B_e @ A_e[id] to each token's
 * embedding (A_e (V, r), B_e (C, r)): a frozen base's token embeddings carry
 * only what its own training wanted from each word, and a domain's
 * preferences can hang on words the base learned to ignore. The base model is
 * frozen while an adapter trains: only the adapter's tensors get gradients.
 * An adapter is its own parameter block, saved and loaded apart from the
 * base (checkpoint.h), and remembers the base's fingerprint so it is never
 * applied to a different model by mistake.
 *
 * A starts random (normal, std 1/sqrt(in)) and B at zero, so a fresh adapter
 * leaves the base's function unchanged; for the embedding it is the other
 * way round (A_e zero, B_e unit normal), so that each token's code is
 * learned. Its head starts as a copy of the base's head when the shapes
 * agree, else random.
 */
#ifndef RW_LORA_H
#define RW_LORA_H

#include "model.h"

#include <stdint.h>

/* Where adapters go; a bit set of these. */
enum {
    RW_LORA_Q = 1 << 0,
    RW_LORA_K = 1 << 1,
    RW_LORA_V = 1 << 2,
    RW_LORA_O = 1 << 3,
    RW_LORA_FF1 = 1 << 4,
    RW_LORA_FF2 = 1 << 5,
    RW_LORA_ALL = (1 << 6) - 1, /* the projections, the default */
    RW_LORA_EMB = 1 << 6,       /* the token embedding */
};
#define RW_LORA_NTARGETS 6

typedef struct rw_lora_config {
    int rank;         /* r >= 1 */
    float alpha;      /* the update is scaled by alpha / r */
    unsigned targets; /* RW_LORA_* bits; ff1/ff2 need a dense (non-MoE) base */
    rw_head_t head;   /* the adapter's own head */
    int n_classes;    /* its outputs when head is RW_HEAD_CLASSIFIER */
} rw_lora_config_t;

/* Rank 8, alpha 16, q k v o ff1 ff2, reward head. */
void rw_lora_config_default(rw_lora_config_t *cfg);
/* 0, or RW_EINVAL if cfg cannot adapt a model of configuration base, with
 * the rule it breaks written to why (size n, always terminated). */
int rw_lora_config_check(const rw_lora_config_t *cfg, const rw_model_config_t *base, char *why,
                         size_t n);
/* rw_lora_config_check, saying why in a log line. */
int rw_lora_config_validate(const rw_lora_config_t *cfg, const rw_model_config_t *base);
/* "q,k,v,o,ff1,ff2"-style list to bits; RW_EINVAL on an unknown name. */
int rw_lora_parse_targets(const char *list, unsigned *targets);
/* JSON form (caller frees) and its parser (RW_EPARSE on bad JSON; fields
 * absent take the defaults). */
char *rw_lora_config_to_json(const rw_lora_config_t *cfg);
int rw_lora_config_from_json(const char *json, rw_lora_config_t *cfg);

/* Adapter tensors, pointers into one block; NULL where not targeted.
 * Target i (0 q, 1 k, 2 v, 3 o, 4 ff1, 5 ff2) has a[i] (L, r, in) and
 * b[i] (L, out, r): in/out are C/C for q k v o, C/F for ff1, F/C for ff2. */
typedef struct rw_lora_params {
    float *a[RW_LORA_NTARGETS];
    float *b[RW_LORA_NTARGETS];
    float *headw; /* (O, C) */
    float *headb; /* (O) */
    float *emb_a; /* (V, r), or NULL without the emb target */
    float *emb_b; /* (C, r) */
} rw_lora_params_t;

typedef struct rw_lora {
    rw_lora_config_t cfg;
    rw_model_config_t base;    /* configuration of the model it adapts */
    uint64_t base_fingerprint; /* rw_model_fingerprint of that model */
    rw_layout_t layout;
    float *mem; /* owned: layout.n_floats floats */
    rw_lora_params_t p;
} rw_lora_t;

void rw_lora_layout(const rw_lora_config_t *cfg, const rw_model_config_t *base,
                    rw_layout_t *layout);
void rw_lora_carve(const rw_layout_t *layout, float *block, rw_lora_params_t *p);
/* A zeroed adapter for base. Returns 0 or RW_EINVAL. */
int rw_lora_new(rw_lora_t **lora_p, const rw_model_t *base, const rw_lora_config_t *cfg);
void rw_lora_destroy(rw_lora_t **lora_p);
/* The initialization described above, from seed. */
void rw_lora_init(rw_lora_t *lora, const rw_model_t *base, uint64_t seed);
/* Input and output widths of target i for a model of configuration base. */
void rw_lora_target_dims(const rw_model_config_t *base, int i, size_t *in, size_t *out);
/* Outputs of the adapter's head. */
int rw_lora_outputs(const rw_lora_config_t *cfg);

#endif
