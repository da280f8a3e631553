/* kernels.c — forward and backward kernels of the layers; see kernels.h.
 *
 * Matmuls are single cblas_sgemm calls over all rows of a thread's slice.
 * The element-wise loops are written so the compiler vectorizes them; exp
 * and tanh use the polynomial in fastmath.h rather than libm, whose scalar
 * calls would otherwise cost more than the matmuls around them.
 */
#include "kernels.h"

#include "fastmath.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void rw__encoder_forward(float *out, const int32_t *ids, size_t ld, const float *wte,
                         const float *wpe, size_t B, size_t T, size_t C)
{
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            float *o = out + (b * T + t) * C;
            const float *we = wte + (size_t)ids[b * ld + t] * C, *pe = wpe + t * C;
            for (size_t i = 0; i < C; i++)
                o[i] = we[i] + pe[i];
        }
}

void rw__encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids,
                          size_t ld, const int32_t *lens, size_t B, size_t T, size_t C)
{
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < (size_t)lens[b]; t++) {
            const float *d = dout + (b * T + t) * C;
            if (dwte) {
                float *g = dwte + (size_t)ids[b * ld + t] * C;
                for (size_t i = 0; i < C; i++)
                    g[i] += d[i];
            }
            if (dwpe) {
                float *g = dwpe + t * C;
                for (size_t i = 0; i < C; i++)
                    g[i] += d[i];
            }
        }
}

void rw__layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, size_t n, size_t C)
{
    for (size_t r = 0; r < n; r++) {
        const float *x = inp + r * C;
        float *o = out + r * C;
        float m = 0.0f;
        for (size_t i = 0; i < C; i++)
            m += x[i];
        m /= (float)C;
        float v = 0.0f;
        for (size_t i = 0; i < C; i++) {
            float d = x[i] - m;
            v += d * d;
        }
        v /= (float)C;
        float s = 1.0f / sqrtf(v + RW_LN_EPS);
        for (size_t i = 0; i < C; i++)
            o[i] = (x[i] - m) * s * w[i] + b[i];
        mean[r] = m;
        rstd[r] = s;
    }
}

void rw__layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, size_t n,
                            size_t C)
{
    for (size_t r = 0; r < n; r++) {
        const float *d = dout + r * C, *x = inp + r * C;
        float *di = dinp + r * C;
        float m = mean[r], s = rstd[r];
        /* the two reductions of the norm's backward pass */
        float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        for (size_t i = 0; i < C; i++) {
            float norm = (x[i] - m) * s, dnorm = w[i] * d[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= (float)C;
        dnorm_norm_mean /= (float)C;
        for (size_t i = 0; i < C; i++) {
            float norm = (x[i] - m) * s, dnorm = w[i] * d[i];
            if (db)
                db[i] += d[i];
            if (dw)
                dw[i] += norm * d[i];
            di[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
}

void rw__matmul_forward(float *out, size_t ldo, const float *res, const float *inp, const float *w,
                        const float *bias, size_t n, size_t IC, size_t OC)
{
    if (n == 0)
        return;
    float beta = 0.0f;
    if (res || bias) {
        for (size_t r = 0; r < n; r++) {
            float *o = out + r * ldo;
            const float *x = res ? res + r * ldo : NULL;
            for (size_t j = 0; j < OC; j++)
                o[j] = (x ? x[j] : 0.0f) + (bias ? bias[j] : 0.0f);
        }
        beta = 1.0f;
    }
    /* row-major: out (n,OC) ld ldo (+)= inp (n,IC) @ w (OC,IC)^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)OC, (int)IC, 1.0f, inp,
                (int)IC, w, (int)IC, beta, out, (int)ldo);
}

void rw__matmul_backward(float *dinp, int accumulate, float *dw, float *dbias, const float *dout,
                         size_t ldd, const float *inp, const float *w, size_t n, size_t IC,
                         size_t OC)
{
    if (n == 0)
        return;
    if (dinp) /* row-major: dinp (n,IC) (+)= dout (n,OC) @ w (OC,IC) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)IC, (int)OC, 1.0f, dout,
                    (int)ldd, w, (int)IC, accumulate ? 1.0f : 0.0f, dinp, (int)IC);
    if (dw) /* row-major: dw (OC,IC) += dout^T (OC,n) @ inp (n,IC) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OC, (int)IC, (int)n, 1.0f, dout,
                    (int)ldd, inp, (int)IC, 1.0f, dw, (int)IC);
    if (dbias)
        for (size_t r = 0; r < n; r++) {
            const float *d = dout + r * ldd;
            for (size_t j = 0; j < OC; j++)
                dbias[j] += d[j];
        }
}

void rw__lora_forward(float *out, size_t ldo, float *u, const float *x, const float *a,
                      const float *b, size_t n, size_t IN, size_t OUT, size_t r, float s)
{
    if (n == 0)
        return;
    rw__matmul_forward(u, r, NULL, x, a, NULL, n, IN, r);
    /* row-major: out (n,OUT) ld ldo += s * u (n,r) @ b (OUT,r)^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)OUT, (int)r, s, u, (int)r, b,
                (int)r, 1.0f, out, (int)ldo);
}

void rw__lora_backward(float *dx, float *da, float *db, float *du, const float *dout, size_t ldd,
                       const float *x, const float *u, const float *a, const float *b, size_t n,
                       size_t IN, size_t OUT, size_t r, float s)
{
    if (n == 0)
        return;
    /* row-major: du (n,r) = s * dout (n,OUT) @ b (OUT,r) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)r, (int)OUT, s, dout,
                (int)ldd, b, (int)r, 0.0f, du, (int)r);
    if (db) /* row-major: db (OUT,r) += s * dout^T (OUT,n) @ u (n,r) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OUT, (int)r, (int)n, s, dout,
                    (int)ldd, u, (int)r, 1.0f, db, (int)r);
    if (da) /* row-major: da (r,IN) += du^T (r,n) @ x (n,IN) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)r, (int)IN, (int)n, 1.0f, du,
                    (int)r, x, (int)IN, 1.0f, da, (int)IN);
    if (dx) /* row-major: dx (n,IN) += du (n,r) @ a (r,IN) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)IN, (int)r, 1.0f, du,
                    (int)r, a, (int)IN, 1.0f, dx, (int)IN);
}

#define GELU_S 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

void rw__gelu_forward(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float t = rw_fast_tanhf(GELU_S * (x + GELU_C * x * x * x));
        out[i] = 0.5f * x * (1.0f + t);
    }
}

void rw__gelu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float t = rw_fast_tanhf(GELU_S * (x + GELU_C * x * x * x));
        float sech2 = 1.0f - t * t;
        float g = 0.5f * (1.0f + t) + 0.5f * x * sech2 * GELU_S * (1.0f + 3.0f * GELU_C * x * x);
        dinp[i] = g * dout[i];
    }
}

void rw__add_bias(float *x, const float *bias, size_t n, size_t C)
{
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < C; j++)
            x[r * C + j] += bias[j];
}

void rw__softmax(float *x, size_t n)
{
    float mx = x[0];
    for (size_t i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        x[i] = rw_fast_expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum; /* sum >= 1: the maximum contributes exp(0) */
    for (size_t i = 0; i < n; i++)
        x[i] *= inv;
}

float rw__dot(const float *a, const float *b, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

void rw__attention_forward(float *out, float *att, const float *qkv, const int32_t *lens, size_t B,
                           size_t T, size_t C, size_t NH)
{
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t b = 0; b < B; b++) {
        int Tb = lens[b];
        for (size_t h = 0; h < NH; h++) {
            const float *q = qkv + b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            float *p = att + (b * NH + h) * T * T;
            float *o = out + b * T * C + h * hs;
            /* row-major: p (Tb,Tb) ld T = scale * q (Tb,hs) @ k (Tb,hs)^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tb, Tb, (int)hs, scale, q, (int)C3,
                        k, (int)C3, 0.0f, p, (int)T);
            for (int i = 0; i < Tb; i++)
                rw__softmax(p + (size_t)i * T, (size_t)Tb);
            /* row-major: o (Tb,hs) ld C = p (Tb,Tb) @ v (Tb,hs) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tb, (int)hs, Tb, 1.0f, p, (int)T,
                        v, (int)C3, 0.0f, o, (int)C);
        }
        if ((size_t)Tb < T)
            memset(out + (b * T + (size_t)Tb) * C, 0, (T - (size_t)Tb) * C * sizeof(float));
    }
}

void rw__attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                            const float *att, const int32_t *lens, size_t B, size_t T, size_t C,
                            size_t NH)
{
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t b = 0; b < B; b++) {
        int Tb = lens[b];
        for (size_t h = 0; h < NH; h++) {
            const float *q = qkv + b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            const float *p = att + (b * NH + h) * T * T, *dout_bh = dout + b * T * C + h * hs;
            float *dq = dqkv + b * T * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
            float *dp = scratch;
            /* row-major: dp (Tb,Tb) ld T = dout (Tb,hs) @ v (Tb,hs)^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tb, Tb, (int)hs, 1.0f, dout_bh,
                        (int)C, v, (int)C3, 0.0f, dp, (int)T);
            /* row-major: dv (Tb,hs) ld 3C = p^T (Tb,Tb) @ dout (Tb,hs) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tb, (int)hs, Tb, 1.0f, p, (int)T,
                        dout_bh, (int)C, 0.0f, dv, (int)C3);
            /* softmax backward, in place: ds = p * (dp - sum_j p dp) */
            for (int i = 0; i < Tb; i++) {
                const float *pr = p + (size_t)i * T;
                float *dr = dp + (size_t)i * T;
                float s = rw__dot(pr, dr, (size_t)Tb);
                for (int j = 0; j < Tb; j++)
                    dr[j] = pr[j] * (dr[j] - s);
            }
            /* row-major: dq (Tb,hs) ld 3C = scale * ds (Tb,Tb) @ k (Tb,hs) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tb, (int)hs, Tb, scale, dp,
                        (int)T, k, (int)C3, 0.0f, dq, (int)C3);
            /* row-major: dk (Tb,hs) ld 3C = scale * ds^T (Tb,Tb) @ q (Tb,hs) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tb, (int)hs, Tb, scale, dp, (int)T,
                        q, (int)C3, 0.0f, dk, (int)C3);
        }
        if ((size_t)Tb < T)
            memset(dqkv + (b * T + (size_t)Tb) * C3, 0, (T - (size_t)Tb) * C3 * sizeof(float));
    }
}
