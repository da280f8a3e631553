/* rmodel.h — a trained model as the commands read it, and its evaluation.
 *
 * What `rewire train` writes is one safetensors file: a model checkpoint
 * (dense, moe or router) carrying its tokenizer, or a LoRA adapter whose
 * tokenizer and weights underneath are those of its base checkpoint. Either
 * way the checkpoint's rewire.extra metadata is a JSON object from training:
 *   variant  "dense", "moe", "router" or "lora"
 *   domains  the domains it was trained on, in index order (a router's classes)
 *   base     the base checkpoint's path (adapters)
 *   seed, batch, steps, data   how it was trained (what --resume reuses)
 *   data_fingerprint   rw_trainset_fingerprint of its train pairs, 16 hex
 *            digits (--resume refuses other data; absent before rewire
 *            wrote it)
 * eval, score and train --init/--base/--resume all load through here, so a
 * model file is all they need.
 */
#ifndef RW_CLI_RMODEL_H
#define RW_CLI_RMODEL_H

#include "bpe.h"
#include "checkpoint.h"
#include "engine.h"
#include "eval.h"
#include "lora.h"
#include "model.h"
#include "trainset.h"

#include <jansson.h>
#include <stdio.h>

typedef struct cli_rmodel {
    rw_model_t *model;    /* owned: the model, or the adapter's base */
    rw_lora_t *lora;      /* owned adapter, or NULL */
    rw_bpe_t *bpe;        /* owned tokenizer */
    char *tokenizer;      /* owned: its JSON, as stored */
    json_t *extra;        /* owned reference: the metadata object ({} if none) */
    const char *variant;  /* in extra, or "dense"/"moe"/"router"/"lora" by shape */
    const char **domains; /* owned array of names inside extra */
    size_t n_domains;
    rw_ckpt_info_t info; /* the loaded file's (the adapter's for an adapter) */
} cli_rmodel_t;

/* Loads path: a model checkpoint, or an adapter on base (base NULL: the
 * path recorded in the adapter, tried as written and then beside the
 * adapter). Errors are said on stderr as "rewire CMD: ..." and give 1 (a
 * file missing, corrupt or of the wrong kind, an adapter without a usable
 * base); 0 on success. *m is zeroed first; close it either way. */
int cli_rmodel_open(cli_rmodel_t *m, const char *cmd, const char *path, const char *base);
void cli_rmodel_close(cli_rmodel_t *m);
/* The head that scores: the adapter's, else the model's. */
rw_head_t cli_rmodel_head(const cli_rmodel_t *m);
/* Parameters of what was trained (the adapter alone for an adapter). */
size_t cli_rmodel_params(const cli_rmodel_t *m);
/* *e: an engine scoring batch sequences of up to the model's max_len at
 * once on threads (0: one per CPU). Returns 0, or 1 having said on stderr
 * why not (out of memory: about how much, and to lower --batch). */
int cli_rmodel_engine(const cli_rmodel_t *m, const char *cmd, long batch, long threads,
                      rw_engine_t **e);
/* The fingerprint of the trained weights (model or adapter) as 16 hex digits
 * into hex[17]. */
void cli_fingerprint(const rw_model_t *model, const rw_lora_t *lora, char hex[17]);

/* The kind ("model" or "lora") and rewire.extra (a new reference, {} when
 * absent or not JSON) of the checkpoint at path. Returns 0 or the
 * safetensors error. */
int cli_peek_checkpoint(const char *path, char **kind, json_t **extra);

/* A report of evaluation figures, with the keys `rewire eval --bundle` uses:
 *   {"kind": "pairs"|"routing", "pairs"|"prompts", "accuracy", "margin",
 *    "mean_accuracy", "domains": [{"name", "pairs"|"prompts", "accuracy",
 *    "margin"}...]}
 * ("margin", the mean r(chosen) - r(rejected), for pairs only;
 * "mean_accuracy" over the domains of per[0..nd) that have items). */
json_t *cli_eval_json(int routing, const rw_eval_stats_t *all, const rw_eval_stats_t *per,
                      const char *const *names, size_t nd);
/* Evaluates e on ts: pairwise accuracy and mean margin of a reward head,
 * or routing accuracy of a classifier head (labels = ts's domains), overall
 * and per domain, as cli_eval_json; NULL after logging the engine's error. */
json_t *cli_eval_report(rw_engine_t *e, const rw_trainset_t *ts);
/* The report as a text table on f. */
void cli_eval_print(FILE *f, const json_t *report);

#endif
