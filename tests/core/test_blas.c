/* test_blas.c — OpenBLAS under the kernel rewire chose computes what plain C does. */
#include "blas.h"

#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* c(m,n) = a(m,k) @ b(k,n), row-major, in double for a tight reference. */
static void ref_gemm(int m, int n, int k, const float *a, const float *b, double *c)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)a[i * k + p] * b[p * n + j];
            c[i * n + j] = s;
        }
}

static void check_shape(int m, int n, int k, int trans_b)
{
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
    float *bt = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
    double *r = malloc(sizeof(double) * m * n);
    unsigned s = 12345;
    for (int i = 0; i < m * k; i++)
        a[i] = (float)((s = s * 1103515245 + 12345) >> 16 & 0x7fff) / 16384.0f - 1.0f;
    for (int i = 0; i < k * n; i++)
        b[i] = (float)((s = s * 1103515245 + 12345) >> 16 & 0x7fff) / 16384.0f - 1.0f;
    for (int p = 0; p < k; p++)
        for (int j = 0; j < n; j++)
            bt[j * k + p] = b[p * n + j];
    ref_gemm(m, n, k, a, b, r);
    if (trans_b) /* row-major: c(m,n) = a(m,k) @ bt(n,k)^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, bt, k, 0.0f, c,
                    n);
    else /* row-major: c(m,n) = a(m,k) @ b(k,n) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c,
                    n);
    for (int i = 0; i < m * n; i++)
        cr_assert(fabs(c[i] - r[i]) <= 1e-4 * (1.0 + sqrt((double)k)),
                  "sgemm[%d] = %f, reference %f (core %s, %dx%dx%d)", i, c[i], r[i],
                  rw_blas_core(), m, n, k);
    free(a), free(b), free(bt), free(c), free(r);
}

Test(blas, sgemm_matches_reference_under_chosen_core)
{
    cr_log_info("OpenBLAS core %s, cpuid best %s", rw_blas_core(), rw_blas_best_core());
    check_shape(1, 1, 1, 0);
    check_shape(7, 5, 3, 0);
    check_shape(64, 96, 128, 1);
    check_shape(257, 129, 300, 0);
}

Test(blas, core_ranks_order_kernels)
{
    cr_assert_eq(rw_blas_core_rank("Prescott"), 0);
    cr_assert_eq(rw_blas_core_rank("Sandybridge"), 1);
    cr_assert_eq(rw_blas_core_rank("Haswell"), 2);
    cr_assert_eq(rw_blas_core_rank("Zen"), 2);
    cr_assert_eq(rw_blas_core_rank("SkylakeX"), 3);
    cr_assert_eq(rw_blas_core_rank("Cooperlake"), 3);
    cr_assert_geq(rw_blas_core_rank(rw_blas_best_core()), 0);
}

/* The rewire binary switches a weaker kernel to the best one cpuid allows, and
 * leaves a kernel the user chose alone. */
Test(blas, binary_switches_weak_kernel_and_respects_user_choice)
{
    char *out = NULL, cmd0[512];
    snprintf(cmd0, sizeof cmd0, "OPENBLAS_CORETYPE=Prescott %s --version --json", rwt_bin("rewire"));
    cr_assert_eq(rwt_run(cmd0, &out, NULL), 0);
    cr_assert(strstr(out, "\"openblas_core\": \"Prescott\""), "user's choice overridden:\n%s", out);
    free(out);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE %s --version --json", rwt_bin("rewire"));
    cr_assert_eq(rwt_run(cmd, &out, NULL), 0);
    char want[128];
    const char *best = rw_blas_best_core();
    /* OpenBLAS may load an equivalent kernel under another name (Zen for Haswell) */
    snprintf(want, sizeof want, "\"openblas_core\": \"%s\"", best);
    if (!strstr(out, want)) {
        const char *p = strstr(out, "\"openblas_core\": \"");
        cr_assert(p, "no core in:\n%s", out);
        char name[64] = {0};
        sscanf(p + 18, "%63[^\"]", name);
        cr_assert_geq(rw_blas_core_rank(name), rw_blas_core_rank(best),
                      "core %s is weaker than cpuid's %s", name, best);
    }
    free(out);
}
