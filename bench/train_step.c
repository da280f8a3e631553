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
 *
 * For the dense model it also times the step's matmuls alone: every sgemm
 * a step makes (linear layers forward, input and weight gradients;
 * attention's four per head and sequence backward, two forward), with the
 * same shapes and threads, on operands that stay in place, and nothing else.
 * That is the floor OpenBLAS sets under the step: no element-wise kernel,
 * optimizer or cache miss of the real step is in it.
 */
#include "blas.h"
#include "log.h"
#include "lora.h"
#include "model.h"
#include "rng.h"
#include "team.h"
#include "train.h"

#include <cblas.h>
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

/* The matmuls-alone floor: each team member runs every sgemm of the dense
 * step over its slice of `seqs` sequences, on its own scratch operands. */
typedef struct {
    const rw_model_config_t *cfg;
    size_t T, seqs;
    float *(*buf)[3]; /* three scratch operands a member */
} floor_ctx_t;

static void gemm(int ta, int tb, size_t M, size_t N, size_t K, const float *a, const float *b,
                 float *c, size_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, 1.0f, a, (int)(ta ? M : K), b, (int)(tb ? K : N), 1.0f, c,
                (int)ldc);
}

static void floor_job(void *ctx, int tid, int n)
{
    floor_ctx_t *f = ctx;
    size_t lo, hi;
    rw_team_range(f->seqs, n, tid, &lo, &hi);
    size_t B = hi - lo, T = f->T, rows = B * T, C = (size_t)f->cfg->d_model;
    size_t F = (size_t)f->cfg->d_ff, hs = C / (size_t)f->cfg->n_heads;
    size_t heads = B * (size_t)f->cfg->n_heads;
    float *x = f->buf[tid][0], *w = f->buf[tid][1], *y = f->buf[tid][2];
    /* (in, out) of the linear layers: qkv, attention projection, fc, fc projection */
    const size_t lin[4][2] = {{C, 3 * C}, {C, C}, {C, F}, {F, C}};
    for (int l = 0; l < f->cfg->n_layers; l++) {
        for (int i = 0; i < 4; i++) {
            size_t in = lin[i][0], out = lin[i][1];
            gemm(0, 1, rows, out, in, x, w, y, out); /* forward */
            gemm(0, 0, rows, in, out, y, w, x, in);  /* input gradient */
            gemm(1, 0, out, in, rows, y, x, w, in);  /* weight gradient */
        }
        for (size_t h = 0; h < heads; h++) {
            gemm(0, 1, T, T, hs, x, w, y, T);  /* Q K^T */
            gemm(0, 0, T, hs, T, y, w, x, hs); /* P V */
            gemm(0, 1, T, T, hs, x, w, y, T);  /* dP = dO V^T */
            gemm(1, 0, T, hs, T, y, x, w, hs); /* dV = P^T dO */
            gemm(0, 0, T, hs, T, y, w, x, hs); /* dQ = dS K */
            gemm(1, 0, T, hs, T, y, x, w, hs); /* dK = dS^T Q */
        }
    }
}

/* Median seconds of the step's matmuls alone over `steps` runs on `team`. */
static double floor_seconds(rw_team_t *team, const rw_model_config_t *cfg, size_t T, size_t seqs,
                            int steps, double *secs)
{
    int n = rw_team_size(team);
    floor_ctx_t f = {cfg, T, seqs, calloc((size_t)n, sizeof *f.buf)};
    size_t rows = (seqs + (size_t)n - 1) / (size_t)n * T;
    size_t big = rows * (size_t)(cfg->d_ff > 3 * cfg->d_model ? cfg->d_ff : 3 * cfg->d_model);
    double median = -1.0;
    if (!f.buf)
        return median;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < 3; i++)
            if (!(f.buf[t][i] = calloc(big, sizeof(float))))
                goto out;
    for (int i = 0; i < steps + 2; i++) {
        double t0 = rw_now_s();
        rw_team_run(team, floor_job, &f);
        if (i >= 2)
            secs[i - 2] = rw_now_s() - t0;
    }
    qsort(secs, (size_t)steps, sizeof *secs, cmp_double);
    median = secs[steps / 2];
out:
    for (int t = 0; t < n; t++)
        for (int i = 0; i < 3; i++)
            free(f.buf[t][i]);
    free(f.buf);
    return median;
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
    double floor_s = -1.0; /* the matmuls alone, dense model only */
    rw_team_t *ft = NULL;
    if (!experts && !lora_rank && rw_team_new(&ft, team) == 0) {
        if (team > 1)
            rw_blas_set_threads(1); /* as the engine runs its batch threads */
        floor_s = floor_seconds(ft, &cfg, b.T, b.B, steps, secs);
        rw_blas_set_threads(blas_threads);
        rw_team_destroy(&ft);
    }
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
    if (floor_s > 0)
        printf("the step's matmuls alone: median %.1f ms = %.1f pairs/s; the rest of the step "
               "%.1f ms\n",
               floor_s * 1e3, 16 / floor_s, (median - floor_s) * 1e3);
    printf("{\"bench\":\"train_step\",\"pairs_per_s\":%.2f,\"pairs_per_s_best\":%.2f,"
           "\"gflops\":%.2f,\"gflops_best\":%.2f,\"sgemm_gflops\":%.2f,\"fraction_of_sgemm\":%.3f,"
           "\"step_ms\":%.2f,\"threads\":%d,\"blas_core\":\"%s\",\"experts\":%d,\"lora_rank\":%d,"
           "\"final_loss\":%.4f,\"matmuls_ms\":%.2f,\"matmuls_pairs_per_s\":%.2f}\n",
           16 / median, 16 / best, flops / median * 1e-9, flops / best * 1e-9, sgemm,
           flops / median * 1e-9 / sgemm, median * 1e3, team, rw_blas_core(), experts, lora_rank,
           st.loss, floor_s > 0 ? floor_s * 1e3 : 0.0, floor_s > 0 ? 16 / floor_s : 0.0);
    free(secs);
    rw_batch_fini(&b);
    rw_trainer_destroy(&tr);
    rw_lora_destroy(&lo);
    rw_model_destroy(&m);
    return 0;
}
