/* synth.c — benchmark of the synthetic data generator (core/synth.h).
 *
 * Generates every domain at a few sizes, best of three runs each, and
 * prints one JSON object a line: {"bench","pairs","seconds","pairs_per_s",
 * "bytes"}. Usage: bench/synth [PAIRS_PER_DOMAIN...] (default 1000 100000).
 */
#include "synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int run(size_t per_domain)
{
    double best = 1e30;
    size_t pairs = 0, bytes = 0;
    for (int rep = 0; rep < 3; rep++) {
        rw_synth_opts_t o = {.seed = 1, .pairs_per_domain = per_domain};
        rw_dataset_t ds;
        rw_dataset_init(&ds);
        double t0 = now();
        int rc = rw_synth_generate(&o, &ds);
        double dt = now() - t0;
        if (rc < 0) {
            fprintf(stderr, "bench synth: generate failed (%d)\n", rc);
            return 1;
        }
        best = dt < best ? dt : best;
        pairs = ds.n;
        bytes = 0;
        for (size_t i = 0; i < ds.n; i++)
            bytes += ds.pairs[i].prompt_len + ds.pairs[i].chosen_len + ds.pairs[i].rejected_len;
        rw_dataset_fini(&ds);
    }
    printf("{\"bench\":\"synth_generate\",\"pairs\":%zu,\"seconds\":%.6f,\"pairs_per_s\":%.0f,"
           "\"bytes\":%zu}\n",
           pairs, best, (double)pairs / best, bytes);
    return 0;
}

int main(int argc, char **argv)
{
    static const size_t defaults[] = {1000, 100000};
    if (argc < 2) {
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
            if (run(defaults[i]) != 0)
                return 1;
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        long n = strtol(argv[i], NULL, 10);
        if (n < 1 || n > RW_SYNTH_MAX_PAIRS || run((size_t)n) != 0) {
            fprintf(stderr, "usage: synth [PAIRS_PER_DOMAIN (1..%d)...]\n", RW_SYNTH_MAX_PAIRS);
            return 1;
        }
    }
    return 0;
}
