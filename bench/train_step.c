/* train_step.c — training-step throughput of the reward model.
 *
 * The reference shape: d_model 256, 4 layers, 4 heads, d_ff 1024, 128
 * tokens, 16 pairs (32 sequences) a step, vocabulary 8192. Runs a few
 * warm-up steps, then times --steps steps and prints pairs/s and achieved
 * GFLOP/s (matmul and attention FLOPs, forward and backward) beside the
 * machine's sgemm rate at n = 1024 measured in the same run, on all cores.
 * The last line is one JSON object with every figure.
 *
 *   build/bench/train_step [--steps N] [--threads N] [--blas-threads N]
 *                          [--moe E] [--lora R]
 *
 * --threads is the engine's batch-thread count (default: one per core);
 * with --threads 1, --blas-threads sets OpenBLAS's (default: all cores),
 * which makes every matmul one multi-threaded sgemm instead.
 */
#include "blas.h"
#include "lora.h"
#include "model.h"
#include "rng.h"
#include "train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 16 pairs of full-length (128-token) sequences of random ids. */
static void make_batch(rw_batch_t *b, const rw_model_config_t *cfg, size_t pairs)
{
    rw_rng_t r;
    rw_rng_seed(&r, 1);
    int32_t prompt[60], chosen[65], rejected[65];
    rw_batch_clear(b);
    for (size_t i = 0; i < pairs; i++) {
        for (size_t j = 0; j < 65; j++) {
            if (j < 60)
                prompt[j] = 3 + (int32_t)rw_rng_below(&r, (uint64_t)cfg->vocab - 3);
            chosen[j] = 3 + (int32_t)rw_rng_below(&r, (uint64_t)cfg->vocab - 3);
            rejected[j] = 3 + (int32_t)rw_rng_below(&r, (uint64_t)cfg->vocab - 3);
        }
        rw_tok_pair_t p = {prompt, chosen, rejected, 60, 65, 65, 0};
        rw_batch_add_pair(b, &p);
    }
}

static int arg_int(int argc, char **argv, const char *name, int def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return atoi(argv[i + 1]);
    return def;
}

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    int steps = arg_int(argc, argv, "--steps", 20);
    int threads = arg_int(argc, argv, "--threads", 0);
    int blas_threads = arg_int(argc, argv, "--blas-threads", 0);
    int experts = arg_int(argc, argv, "--moe", 0);
    int lora_rank = arg_int(argc, argv, "--lora", 0);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    rw_blas_set_threads(0);
    double sgemm = rw_blas_sgemm_rate(1024, 2.0);
    rw_blas_set_threads(blas_threads);

    rw_model_config_t cfg;
    rw_model_config_default(&cfg); /* exactly the reference shape */
    cfg.n_experts = experts;
    rw_model_t *m;
    if (rw_model_new(&m, &cfg) < 0)
        return 1;
    rw_model_init(m, 1);
    rw_lora_t *lo = NULL;
    if (lora_rank) {
        rw_lora_config_t lc;
        rw_lora_config_default(&lc);
        lc.rank = lora_rank;
        if (experts)
            lc.targets = RW_LORA_Q | RW_LORA_K | RW_LORA_V | RW_LORA_O;
        if (rw_lora_new(&lo, m, &lc) < 0)
            return 1;
        rw_lora_init(lo, m, 2);
    }
    rw_train_config_t tc;
    rw_train_config_default(&tc);
    tc.threads = threads;
    tc.max_batch = 32;
    tc.opt.lr = 1e-4f;
    rw_trainer_t *tr;
    if (rw_trainer_new(&tr, m, lo, &tc) < 0)
        return 1;
    rw_batch_t b;
    rw_batch_init(&b, 32, (size_t)cfg.max_len);
    make_batch(&b, &cfg, 16);

    rw_step_stats_t st;
    for (int i = 0; i < 3; i++)
        rw_trainer_step(tr, &b, &st);
    double *secs = calloc((size_t)steps, sizeof *secs);
    for (int i = 0; i < steps; i++) {
        rw_trainer_step(tr, &b, &st);
        secs[i] = st.seconds;
    }
    qsort(secs, (size_t)steps, sizeof *secs, cmp_double);
    double best = secs[0], median = secs[steps / 2];
    double flops = rw_trainer_step_flops(tr, b.B, b.T);
    int team = rw_engine_threads(rw_trainer_engine(tr));
    printf("model: d_model %d, layers %d, heads %d, d_ff %d, T %zu, vocab %d, experts %d, "
           "lora rank %d\n",
           cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff, b.T, cfg.vocab, experts, lora_rank);
    printf("threads: %d batch, %d OpenBLAS per call (kernel %s, %ld cores)\n", team,
           team > 1 ? 1 : rw_blas_threads(), rw_blas_core(), cores);
    printf("step: %.1f GFLOP; median %.1f ms, best %.1f ms over %d steps\n", flops * 1e-9,
           median * 1e3, best * 1e3, steps);
    printf("pairs/s: %.1f median, %.1f best\n", 16 / median, 16 / best);
    printf("GFLOP/s: %.1f median, %.1f best\n", flops / median * 1e-9, flops / best * 1e-9);
    printf("sgemm n=1024 on %ld cores: %.1f GFLOP/s; training at %.0f%% (median) of it\n", cores,
           sgemm, 100.0 * flops / median * 1e-9 / sgemm);
    printf("{\"bench\":\"train_step\",\"pairs_per_s\":%.2f,\"pairs_per_s_best\":%.2f,"
           "\"gflops\":%.2f,\"gflops_best\":%.2f,\"sgemm_gflops\":%.2f,\"fraction_of_sgemm\":%.3f,"
           "\"step_ms\":%.2f,\"threads\":%d,\"blas_core\":\"%s\",\"experts\":%d,\"lora_rank\":%d,"
           "\"final_loss\":%.4f}\n",
           16 / median, 16 / best, flops / median * 1e-9, flops / best * 1e-9, sgemm,
           flops / median * 1e-9 / sgemm, median * 1e3, team, rw_blas_core(), experts, lora_rank,
           st.loss);
    free(secs);
    rw_batch_fini(&b);
    rw_trainer_destroy(&tr);
    rw_lora_destroy(&lo);
    rw_model_destroy(&m);
    return 0;
}
