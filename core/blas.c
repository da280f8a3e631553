/* blas.c — kernel choice and thread share for OpenBLAS; see blas.h. */
#include "blas.h"

#include "alloc.h"
#include "err.h"
#include "log.h"

#include <cblas.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

const char *rw_blas_core(void)
{
    const char *n = openblas_get_corename();
    return n ? n : "unknown";
}

const char *rw_blas_config(void)
{
    const char *c = openblas_get_config();
    return c ? c : "unknown";
}

int rw_blas_core_rank(const char *name)
{
    static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *const avx2[] = {"Haswell", "Zen", "Excavator", NULL};
    static const char *const avx[] = {"Sandybridge", "Bulldozer", "Piledriver", "Steamroller",
                                      NULL};
    const char *const *tiers[] = {avx, avx2, avx512};
    for (int t = 2; t >= 0; t--)
        for (const char *const *p = tiers[t]; *p; p++)
            if (strcasecmp(name, *p) == 0)
                return t + 1;
    return 0;
}

#if defined(__x86_64__) || defined(__i386__)
static unsigned long long xgetbv0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

const char *rw_blas_best_core(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return "Prescott";
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx)
        return "Prescott";
    unsigned long long xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) /* the OS must save the SSE and AVX state */
        return "Prescott";
    unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0;
    __get_cpuid_count(7, 0, &a7, &b7, &c7, &d7);
    int avx2 = (b7 >> 5) & 1;
    int avx512 = ((b7 >> 16) & 1) && ((b7 >> 17) & 1) && ((b7 >> 30) & 1) && ((b7 >> 31) & 1) &&
                 ((b7 >> 28) & 1) && (xcr0 & 0xE0) == 0xE0;
    if (avx512) {
        unsigned a71 = 0, b71 = 0, c71 = 0, d71 = 0;
        __get_cpuid_count(7, 1, &a71, &b71, &c71, &d71);
        return ((a71 >> 5) & 1) ? "Cooperlake" : "SkylakeX";
    }
    if (avx2 && fma)
        return "Haswell";
    return "Sandybridge";
}
#else
const char *rw_blas_best_core(void)
{
    return rw_blas_core();
}
#endif

int rw_blas_setup(int argc, char **argv)
{
    int off = 0;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--no-blas-switch") == 0)
            off = 1;
    const char *sw = getenv("RW_BLAS_SWITCH");
    if (sw && strcmp(sw, "0") == 0)
        off = 1;
    const char *from = getenv("RW_BLAS_SWITCHED_FROM");
    if (from) {
        RW_DEBUG("blas", "OpenBLAS kernel %s -> %s (cpuid supports it)", from, rw_blas_core());
        unsetenv("RW_BLAS_SWITCHED_FROM");
    }
    if (off || getenv("OPENBLAS_CORETYPE"))
        return 0;
    const char *cur = rw_blas_core(), *best = rw_blas_best_core();
    if (rw_blas_core_rank(cur) >= rw_blas_core_rank(best))
        return 0;
    setenv("OPENBLAS_CORETYPE", best, 1);
    setenv("RW_BLAS_SWITCHED_FROM", cur, 1);
    execv("/proc/self/exe", argv);
    int err = -errno;
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("RW_BLAS_SWITCHED_FROM");
    RW_WARN("blas", "cannot re-execute with OPENBLAS_CORETYPE=%s: %s; staying on %s", best,
            rw_strerror(err), cur);
    return err;
}

void rw_blas_set_threads(int n)
{
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    openblas_set_num_threads(n);
}

int rw_blas_threads(void)
{
    return openblas_get_num_threads();
}

double rw_blas_sgemm_rate(int n, double seconds)
{
    size_t nn = rw_array_size((size_t)n, (size_t)n);
    float *a = rw_malloc(nn * sizeof(float)), *b = rw_malloc(nn * sizeof(float));
    float *c = rw_malloc(nn * sizeof(float));
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)(i % 13) * 0.01f;
        b[i] = (float)(i % 7) * 0.02f;
    }
    /* row-major: c(n,n) = a(n,n) @ b(n,n); one warm-up call first */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double t0 = rw_now_s(), t;
    long iters = 0;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        iters++;
        t = rw_now_s() - t0;
    } while (t < seconds);
    free(a);
    free(b);
    free(c);
    return 2.0 * (double)n * n * n * (double)iters / t / 1e9;
}
