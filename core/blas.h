/* blas.h — OpenBLAS setup: the right kernel, and a fair share of the cores.
 *
 * Debian's OpenBLAS 0.3.21 picks its kernel at load time from the CPU model
 * and falls back to a generic one (Prescott) on processors it does not know,
 * even when cpuid says AVX2/FMA or AVX-512 are there; sgemm then runs several
 * times slower. rw_blas_setup() is called first thing in every rewire main():
 * it asks cpuid what the CPU and OS support, and if the loaded kernel is
 * weaker it re-executes the program with OPENBLAS_CORETYPE set, which
 * OpenBLAS reads when it loads. A value the user set is always respected;
 * RW_BLAS_SWITCH=0 or the --no-blas-switch flag turns the switch off.
 */
#ifndef RW_BLAS_H
#define RW_BLAS_H

#include <stddef.h>

/* May not return (execv). Returns 0, or a negative error if the re-exec
 * failed (the program then carries on with the kernel it has). */
int rw_blas_setup(int argc, char **argv);
/* The kernel OpenBLAS is using ("Haswell"); never NULL. */
const char *rw_blas_core(void);
/* The strongest kernel this CPU and OS can run, from cpuid ("SkylakeX",
 * "Cooperlake", "Haswell", "Sandybridge" or "Prescott"). */
const char *rw_blas_best_core(void);
/* Capability rank of a kernel name: 0 SSE, 1 AVX, 2 AVX2/FMA, 3 AVX-512. */
int rw_blas_core_rank(const char *name);
/* OpenBLAS's build configuration string; never NULL. */
const char *rw_blas_config(void);
/* Threads OpenBLAS uses for one call; n <= 0 means all cores. */
void rw_blas_set_threads(int n);
int rw_blas_threads(void);
/* Measures sgemm at n x n x n (row-major) for about `seconds`; GFLOP/s. */
double rw_blas_sgemm_rate(int n, double seconds);

#endif
