/* model.h — the reward model: configuration, parameters, and their layout.
 *
 * A pre-LN transformer encoder over the shared BPE tokens (token and learned
 * position embeddings; L blocks of multi-head self-attention and a GELU
 * feed-forward, each behind a layer norm and added to the residual stream; a
 * final layer norm; mean or last-token pooling over the non-pad tokens) and a
 * linear head: one scalar (a reward) or N logits (a classifier — a router is
 * a domain classifier). With n_experts > 0 every feed-forward block is a
 * mixture of experts behind a linear top-k gate (moe.c). LoRA adapters on a
 * frozen model live in lora.h.
 *
 * All parameters are one float block carved into named tensors, stacked over
 * layers (llm.c's layout): `qkv_w` is (L, 3C, C), layer l's slice starts at
 * l*3C*C. Linear weights are (out, in), PyTorch's convention, so a layer
 * computes out = inp @ w^T + b. The table of tensors (names, shapes, offsets)
 * is what checkpoints, the optimizer and the gradient check walk.
 *
 * Notation in shape comments: V vocabulary, T sequence length, C d_model,
 * L layers, NH heads, hs = C/NH, F d_ff, E experts, O head outputs, B
 * sequences in a batch, N = B*T token rows.
 */
#ifndef RW_MODEL_H
#define RW_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* Reserved token ids of the shared tokenizer. */
#define RW_TOK_PAD 0
#define RW_TOK_CLS 1
#define RW_TOK_SEP 2

typedef enum { RW_POOL_MEAN = 0, RW_POOL_LAST = 1 } rw_pooling_t;
typedef enum { RW_HEAD_REWARD = 0, RW_HEAD_CLASSIFIER = 1 } rw_head_t;
/* What an MoE gate reads. RW_GATE_TOKEN: each token's own vector (gate_w
 * (L, E, C)). RW_GATE_PROMPT: the counts of the token ids in the sequence's
 * prompt, its tokens up to and including the first separator (gate_w
 * (L, E, V)), so that every token of a sequence goes to the experts its
 * prompt asks for, as a router would. The token gate reads features trained
 * for reward, which tell domains apart poorly when they differ only in a
 * few prompt words; the prompt gate learns those words directly. */
typedef enum { RW_GATE_TOKEN = 0, RW_GATE_PROMPT = 1 } rw_gate_input_t;

typedef struct rw_model_config {
    int vocab;     /* V, token ids 0..V-1 (0 pad, 1 cls, 2 sep) */
    int max_len;   /* longest sequence, rows of the position embedding */
    int d_model;   /* C */
    int n_layers;  /* L */
    int n_heads;   /* NH, divides C */
    int d_ff;      /* F */
    int n_experts; /* E: 0 for a dense feed-forward, 2..64 for MoE in every layer */
    int top_k;     /* experts a token goes to (MoE), 1..E; default 2 */
    rw_pooling_t pooling;
    rw_head_t head;
    int n_classes;              /* head outputs when head is RW_HEAD_CLASSIFIER, >= 2 */
    rw_gate_input_t gate_input; /* MoE gate input; default per token */
} rw_model_config_t;

/* A small default: V 8192, max_len 128, C 256, L 4, NH 4, F 1024, dense,
 * top_k 2, mean pooling, reward head. */
void rw_model_config_default(rw_model_config_t *cfg);
/* The most parameters a model may have: 2^28, 1 GiB of weights, which
 * training holds several times over. */
#define RW_MODEL_MAX_PARAMS (1u << 28)
/* 0 if cfg describes a model rewire can build, else RW_EINVAL with the rule
 * it breaks written to why (size n, always terminated), in the fields'
 * names: "d_model (33) must be a multiple of n_heads (2)", or the size over
 * RW_MODEL_MAX_PARAMS. */
int rw_model_config_check(const rw_model_config_t *cfg, char *why, size_t n);
/* 0 if a head of kind head with n_classes outputs (a classifier's, 2 to
 * 65536) is one rewire can build, a model's or an adapter's; else
 * RW_EINVAL with why, as rw_model_config_check. */
int rw_head_check(rw_head_t head, int n_classes, char *why, size_t n);
/* rw_model_config_check, saying why in a log line. */
int rw_model_config_validate(const rw_model_config_t *cfg);
/* Inputs of each MoE gate: d_model for a token gate, vocab for a prompt gate. */
size_t rw_model_gate_inputs(const rw_model_config_t *cfg);
/* Outputs of the head: 1 for a reward model, n_classes for a classifier. */
int rw_model_config_outputs(const rw_model_config_t *cfg);
/* The configuration as a JSON object string (caller frees). */
char *rw_model_config_to_json(const rw_model_config_t *cfg);
/* Parses rw_model_config_to_json's form; fields absent take the defaults.
 * Returns 0, RW_EPARSE (not JSON / wrong types) or RW_EINVAL (invalid). */
int rw_model_config_from_json(const char *json, rw_model_config_t *cfg);

/* One named tensor inside a parameter block. */
#define RW_TENSOR_MAX_DIMS 4
typedef struct rw_tensor {
    const char *name; /* static string, e.g. "qkv_w" */
    int ndim;
    size_t shape[RW_TENSOR_MAX_DIMS];
    size_t offset; /* in floats from the start of the block */
    size_t n;      /* elements; 0 for a tensor this configuration lacks */
    int decay;     /* 1 if AdamW's weight decay applies (matrices, embeddings) */
    int gate;      /* 1 for the MoE gate (trained alone in gate-only mode) */
} rw_tensor_t;

/* A parameter block's tensors in block order. */
#define RW_LAYOUT_MAX_TENSORS 20
typedef struct rw_layout {
    rw_tensor_t t[RW_LAYOUT_MAX_TENSORS];
    size_t n_tensors;
    size_t n_floats;
} rw_layout_t;

/* The model's parameter tensors, pointers into one block, in block order. */
typedef struct rw_params {
    float *wte;      /* (V, C) token embedding */
    float *wpe;      /* (max_len, C) position embedding */
    float *ln1w;     /* (L, C) */
    float *ln1b;     /* (L, C) */
    float *qkvw;     /* (L, 3C, C) */
    float *qkvb;     /* (L, 3C) */
    float *attprojw; /* (L, C, C) */
    float *attprojb; /* (L, C) */
    float *ln2w;     /* (L, C) */
    float *ln2b;     /* (L, C) */
    float *fcw;      /* (L, X, F, C), X = max(E, 1) experts */
    float *fcb;      /* (L, X, F) */
    float *fcprojw;  /* (L, X, C, F) */
    float *fcprojb;  /* (L, X, C) */
    float *gatew;    /* (L, E, C); empty when dense */
    float *lnfw;     /* (C) */
    float *lnfb;     /* (C) */
    float *headw;    /* (O, C) */
    float *headb;    /* (O) */
} rw_params_t;
#define RW_MODEL_NTENSORS 19

typedef struct rw_model {
    rw_model_config_t cfg;
    rw_layout_t layout;
    float *mem; /* owned: layout.n_floats floats */
    rw_params_t p;
} rw_model_t;

/* The tensor table of cfg (which must be valid). */
void rw_model_layout(const rw_model_config_t *cfg, rw_layout_t *layout);
/* Points the fields of p into block (laid out as rw_model_layout says);
 * tensors this configuration lacks get NULL. */
void rw_params_carve(const rw_layout_t *layout, float *block, rw_params_t *p);

/* A model with zeroed parameters. Returns 0 or RW_EINVAL (bad config). */
int rw_model_new(rw_model_t **model_p, const rw_model_config_t *cfg);
/* Accepts NULL; nulls *model_p. */
void rw_model_destroy(rw_model_t **model_p);
/* GPT-2's initialization from seed: normal(0, 0.02) weights, residual
 * projections scaled by 1/sqrt(2L), unit norms, zero biases. */
void rw_model_init(rw_model_t *m, uint64_t seed);
/* The tensor called name, or NULL. */
const rw_tensor_t *rw_model_tensor(const rw_model_t *m, const char *name);
/* A fingerprint of the configuration and every weight: adapters record the
 * base they were trained on with it. */
uint64_t rw_model_fingerprint(const rw_model_t *m);
/* Copies every parameter from src to dst; RW_EINVAL if configs differ. */
int rw_model_copy(rw_model_t *dst, const rw_model_t *src);

/* Branch-Train-MiX: an MoE model (*moe_p) whose expert e in every layer is
 * the feed-forward of dense model experts[e] (n >= 2, all of one dense
 * configuration), whose other weights are those of shared (the seed the
 * experts branched from; same configuration) or, when shared is NULL, the
 * experts' mean, and whose gates, reading gate_input, are drawn from seed
 * (normal, std 0.02) to be trained next. Returns 0 or RW_EINVAL
 * (configurations differ, a model is MoE, n out of range). */
int rw_model_moe_merge(rw_model_t **moe_p, const rw_model_t *const *experts, size_t n, int top_k,
                       rw_gate_input_t gate_input, uint64_t seed, const rw_model_t *shared);

/* Matmul and attention FLOPs of one forward pass over B sequences of T
 * tokens (2 per multiply-add; MoE experts counted per routed token). */
double rw_model_flops_forward(const rw_model_config_t *cfg, size_t B, size_t T);

#endif
