/* checkpoint.h — models and adapters on disk, as safetensors files.
 *
 * A model checkpoint holds every parameter tensor under its layout name
 * ("qkv_w", stacked over layers) and, when saved with its trainer, AdamW's
 * moments ("optim.m.qkv_w", "optim.v.qkv_w") so training resumes exactly.
 * Its __metadata__ carries:
 *   rewire.kind      "model" or "lora"
 *   rewire.config    the model configuration (JSON, rw_model_config_to_json)
 *   rewire.tokenizer the tokenizer (JSON from the tokenizer, passed through)
 *   rewire.training  {"updates", "skipped", "config": training config}
 *   rewire.extra     the caller's own metadata (any string)
 * An adapter file holds only the adapter's tensors, with its configuration
 * (rewire.lora), the base model's configuration and the base's fingerprint
 * (rewire.base), so it is saved, shipped and loaded apart from the base and
 * refuses a base it was not trained on.
 */
#ifndef RW_CHECKPOINT_H
#define RW_CHECKPOINT_H

#include "lora.h"
#include "model.h"
#include "train.h"

/* What a checkpoint says besides its tensors. */
typedef struct rw_ckpt_info {
    char *tokenizer;         /* owned; "" if none was saved */
    char *extra;             /* owned; "" if none was saved */
    int has_training;        /* 1 if saved with a trainer */
    rw_train_config_t train; /* the trainer's configuration (defaults if none) */
    long updates, skipped;   /* the trainer's counters */
} rw_ckpt_info_t;

/* Frees the strings; safe on a zeroed struct. */
void rw_ckpt_info_fini(rw_ckpt_info_t *info);

/* Saves m to path; with tr (training m, may be NULL) also its optimizer
 * state and counters. tokenizer and extra may be NULL. Returns 0,
 * RW_EINVAL (tr trains something else) or a negated errno. */
int rw_checkpoint_save(const char *path, const rw_model_t *m, rw_trainer_t *tr,
                       const char *tokenizer, const char *extra);
/* Loads a model checkpoint into a new model (*m_p); info may be NULL.
 * Returns 0, a safetensors error (safetensors.h), RW_EFORMAT (not a model
 * checkpoint, a tensor missing or misshapen) or RW_EINVAL (bad config). */
int rw_checkpoint_load(const char *path, rw_model_t **m_p, rw_ckpt_info_t *info);
/* Restores what tr trains (model or adapter weights), its moments and
 * counters from a checkpoint saved with a trainer. Returns 0, RW_EFORMAT
 * (another kind, shapes or configuration) or RW_ENOTFOUND (saved without
 * optimizer state). */
int rw_checkpoint_restore_trainer(const char *path, rw_trainer_t *tr);

/* Saves adapter lo (with tr's optimizer state if tr, which trains lo, is
 * given) apart from its base. Returns 0, RW_EINVAL or a negated errno. */
int rw_lora_save(const char *path, const rw_lora_t *lo, rw_trainer_t *tr, const char *extra);
/* Loads an adapter for base into *lo_p. Returns 0, RW_EFORMAT, RW_EINVAL
 * (its base configuration differs) or RW_ECHECKSUM (base has other
 * weights than the adapter was trained on). */
int rw_lora_load(const char *path, const rw_model_t *base, rw_lora_t **lo_p, rw_ckpt_info_t *info);

#endif
