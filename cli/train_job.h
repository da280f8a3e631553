/* train_job.h — what `rewire train` does once its options are read.
 *
 * cmd_train.c parses and checks the options into a train_opts_t;
 * train_job_run sets the model up (from scratch, --init, --base or
 * --resume), tokenizes the data, runs the training loop with its logs,
 * evaluations and checkpoints, and writes the result.
 */
#ifndef RW_CLI_TRAIN_JOB_H
#define RW_CLI_TRAIN_JOB_H

#include "lora.h"
#include "model.h"
#include "pair.h"

#include <stddef.h>

typedef struct train_opts {
    const char **data; /* owned array of borrowed paths */
    size_t n_data;
    const char **domains; /* owned array of borrowed names (--domain) */
    size_t n_domains;
    const char *out, *variant, *init, *base, *resume, *tokenizer;
    long vocab;
    rw_model_config_t mc; /* shape from scratch (d_ff 0: 4 x d_model) */
    rw_lora_config_t lc;
    long epochs, steps, batch, warmup, seed, threads;
    long log_every, eval_every, ckpt_every, stop_after;
    double lr, wd, clip, gate_coef; /* lr < 0: the variant's default */
    int json;
    unsigned set; /* which groups of options were given (cmd_train.c) */
} train_opts_t;

/* Trains as o says on ds (borrowed). Returns the exit status: 0, 1 after
 * saying on stderr what failed, or 2 for options that cannot work together
 * with the data or the --init/--base model (an invalid shape, a run larger
 * than memory), found before the tokenizer is trained. */
int train_job_run(const train_opts_t *o, const rw_dataset_t *ds);

#endif
