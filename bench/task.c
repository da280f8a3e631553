/* task.c — times one task of a job (task.h) on real inputs.
 *
 *   build/bench/task KIND --data F --tokenizer T --out O [--base B] [--domain D]
 *                    [--expert E]... [--threads N] [--epochs X] [--spec JSON]
 *
 * Prints a human line and one JSON line: steps, seconds, pairs/s, train and
 * held-out accuracy. Used to pick the job's default model and epochs.
 */
#include "blas.h"
#include "err.h"
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: task KIND --data F --tokenizer T --out O [--base B] [--domain D]\n"
                        "            [--expert E]... [--threads N] [--epochs X] [--spec JSON]\n");
        return 2;
    }
    rw_task_spec_t s;
    char why[512] = "";
    rw_task_spec_init(&s, rw_task_kind_from_name(argv[1]));
    const char *experts[RW_TASK_MAX_DOMAINS], *out = NULL;
    rw_task_inputs_t in = {.experts = experts};
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        if (strcmp(f, "--spec") == 0) {
            rw_task_spec_fini(&s);
            if (rw_task_spec_from_json(v, &s, why, sizeof why) < 0) {
                fprintf(stderr, "task: %s\n", why);
                return 2;
            }
        } else if (strcmp(f, "--data") == 0) {
            in.data = v;
        } else if (strcmp(f, "--tokenizer") == 0) {
            in.tokenizer = v;
        } else if (strcmp(f, "--base") == 0) {
            in.base = v;
        } else if (strcmp(f, "--out") == 0) {
            out = v;
        } else if (strcmp(f, "--domain") == 0) {
            s.domain = strdup(v);
        } else if (strcmp(f, "--expert") == 0 && in.n_experts < RW_TASK_MAX_DOMAINS) {
            experts[in.n_experts++] = v;
        } else if (strcmp(f, "--threads") == 0) {
            s.train.threads = atoi(v);
        } else if (strcmp(f, "--epochs") == 0) {
            s.epochs = atof(v);
        } else if (strcmp(f, "--domains") == 0) {
            char *list = strdup(v);
            for (char *save, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
                s.domains[s.n_domains++] = strdup(t);
            free(list);
        } else {
            fprintf(stderr, "task: unknown flag %s\n", f);
            return 2;
        }
    }
    rw_task_result_t r;
    int rc = rw_task_run(&s, &in, out, NULL, NULL, &r, why, sizeof why);
    if (rc < 0) {
        fprintf(stderr, "task: %s (%s)\n", rw_strerror(rc), why);
        return 1;
    }
    printf("%s%s%s: %ld steps in %.1f s, %.0f items/s, train acc %.3f, held-out acc %.3f, "
           "%zu params\n",
           rw_task_kind_name(s.kind), s.domain ? " " : "", s.domain ? s.domain : "", r.steps,
           r.seconds, r.pairs_per_s, r.train_accuracy, r.eval_accuracy, r.params);
    printf(
        "{\"bench\":\"task\",\"kind\":\"%s\",\"steps\":%ld,\"seconds\":%.3f,\"items_per_s\":%.1f,"
        "\"train_accuracy\":%.4f,\"eval_accuracy\":%.4f,\"params\":%zu}\n",
        rw_task_kind_name(s.kind), r.steps, r.seconds, r.pairs_per_s, r.train_accuracy,
        r.eval_accuracy, r.params);
    rw_task_spec_fini(&s);
    return 0;
}
