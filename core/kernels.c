/* kernels.c — forward and backward kernels of the layers; see kernels.h.
 *
 * Matmuls are single cblas_sgemm calls over all rows of a thread's slice.
 * The element-wise loops run eight floats at a time (vec.h), AVX2 when the
 * CPU has it; exp and tanh use the polynomial of fastmath.h rather than
 * libm, whose scalar calls would cost more than the matmuls around them.
 * Tails shorter than eight use the scalar twins of the same formulas.
 */
#include "kernels.h"

#include "fastmath.h"
#include "vec.h"

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

void rw__lora_embed_forward(float *out, const int32_t *ids, size_t ld, const float *a,
                            const float *b, size_t B, size_t T, size_t C, size_t r, float s)
{
    for (size_t bi = 0; bi < B; bi++)
        for (size_t t = 0; t < T; t++) {
            float *o = out + (bi * T + t) * C;
            const float *ar = a + (size_t)ids[bi * ld + t] * r;
            for (size_t i = 0; i < C; i++) {
                float sum = 0.0f;
                for (size_t k = 0; k < r; k++)
                    sum += b[i * r + k] * ar[k];
                o[i] += s * sum;
            }
        }
}

void rw__lora_embed_backward(float *da, float *db, const float *dout, const int32_t *ids, size_t ld,
                             const int32_t *lens, const float *a, const float *b, size_t B,
                             size_t T, size_t C, size_t r, float s)
{
    for (size_t bi = 0; bi < B; bi++)
        for (size_t t = 0; t < (size_t)lens[bi]; t++) {
            const float *d = dout + (bi * T + t) * C;
            size_t id = (size_t)ids[bi * ld + t];
            const float *ar = a + id * r;
            float *dar = da + id * r;
            for (size_t i = 0; i < C; i++) {
                float g = s * d[i];
                for (size_t k = 0; k < r; k++) {
                    dar[k] += g * b[i * r + k];
                    db[i * r + k] += g * ar[k];
                }
            }
        }
}

int rw__have_avx2(void)
{
    return __builtin_cpu_supports("avx2");
}

/* Sum of x[0..n), eight partial sums then the tail, in a fixed order. */
RW_INLINE float sum_body(const float *x, size_t n)
{
    v8f acc, v;
    v8_splat(&acc, 0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8_load(&v, x + i);
        acc += v;
    }
    float s = v8_sum(&acc);
    for (; i < n; i++)
        s += x[i];
    return s;
}

/* Sum of (x[i] - m)^2. */
RW_INLINE float sqdev_body(const float *x, float m, size_t n)
{
    v8f acc, v;
    v8_splat(&acc, 0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8_load(&v, x + i);
        v = v - m;
        acc += v * v;
    }
    float s = v8_sum(&acc);
    for (; i < n; i++)
        s += (x[i] - m) * (x[i] - m);
    return s;
}

RW_INLINE void layernorm_forward_body(float *out, float *mean, float *rstd, const float *inp,
                                      const float *w, const float *b, size_t n, size_t C)
{
    for (size_t r = 0; r < n; r++) {
        const float *x = inp + r * C;
        float *o = out + r * C;
        float m = sum_body(x, C) / (float)C;
        float s = 1.0f / sqrtf(sqdev_body(x, m, C) / (float)C + RW_LN_EPS);
        size_t i = 0;
        for (; i + 8 <= C; i += 8) {
            v8f xv, wv, bv;
            v8_load(&xv, x + i);
            v8_load(&wv, w + i);
            v8_load(&bv, b + i);
            xv = (xv - m) * s * wv + bv;
            v8_store(o + i, &xv);
        }
        for (; i < C; i++)
            o[i] = (x[i] - m) * s * w[i] + b[i];
        mean[r] = m;
        rstd[r] = s;
    }
}
RW_MULTIVERSION(, rw__layernorm_forward, layernorm_forward_body,
                (float *out, float *mean, float *rstd, const float *inp, const float *w,
                 const float *b, size_t n, size_t C),
                (out, mean, rstd, inp, w, b, n, C))

/* The two reductions of one row's norm backward: mean of w*d and of
 * w*d*norm. */
RW_INLINE void layernorm_reduce(const float *d, const float *x, const float *w, float m, float s,
                                size_t C, float *dmean, float *dnmean)
{
    v8f a1, a2, dv, xv, wv;
    v8_splat(&a1, 0.0f);
    v8_splat(&a2, 0.0f);
    size_t i = 0;
    for (; i + 8 <= C; i += 8) {
        v8_load(&dv, d + i);
        v8_load(&xv, x + i);
        v8_load(&wv, w + i);
        v8f dnorm = wv * dv;
        a1 += dnorm;
        a2 += dnorm * ((xv - m) * s);
    }
    float s1 = v8_sum(&a1), s2 = v8_sum(&a2);
    for (; i < C; i++) {
        float dnorm = w[i] * d[i];
        s1 += dnorm;
        s2 += dnorm * ((x[i] - m) * s);
    }
    *dmean = s1 / (float)C;
    *dnmean = s2 / (float)C;
}

RW_INLINE void layernorm_backward_body(float *dinp, float *dw, float *db, const float *dout,
                                       const float *inp, const float *w, const float *mean,
                                       const float *rstd, size_t n, size_t C)
{
    for (size_t r = 0; r < n; r++) {
        const float *d = dout + r * C, *x = inp + r * C;
        float *di = dinp + r * C;
        float m = mean[r], s = rstd[r], dm, dnm;
        layernorm_reduce(d, x, w, m, s, C, &dm, &dnm);
        size_t i = 0;
        for (; i + 8 <= C; i += 8) {
            v8f dv, xv, wv, div, norm, g;
            v8_load(&dv, d + i);
            v8_load(&xv, x + i);
            v8_load(&wv, w + i);
            v8_load(&div, di + i);
            norm = (xv - m) * s;
            div += (wv * dv - dm - norm * dnm) * s;
            v8_store(di + i, &div);
            if (db) {
                v8_load(&g, db + i);
                g += dv;
                v8_store(db + i, &g);
            }
            if (dw) {
                v8_load(&g, dw + i);
                g += norm * dv;
                v8_store(dw + i, &g);
            }
        }
        for (; i < C; i++) {
            float norm = (x[i] - m) * s;
            di[i] += (w[i] * d[i] - dm - norm * dnm) * s;
            if (db)
                db[i] += d[i];
            if (dw)
                dw[i] += norm * d[i];
        }
    }
}
RW_MULTIVERSION(, rw__layernorm_backward, layernorm_backward_body,
                (float *dinp, float *dw, float *db, const float *dout, const float *inp,
                 const float *w, const float *mean, const float *rstd, size_t n, size_t C),
                (dinp, dw, db, dout, inp, w, mean, rstd, n, C))

/* o[0..n) = (a ? a : 0) + (b ? b : 0), or o += x with add. */
RW_INLINE void row_sum2(float *o, const float *a, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f av, bv;
        v8_splat(&av, 0.0f);
        v8_splat(&bv, 0.0f);
        if (a)
            v8_load(&av, a + i);
        if (b)
            v8_load(&bv, b + i);
        av += bv;
        v8_store(o + i, &av);
    }
    for (; i < n; i++)
        o[i] = (a ? a[i] : 0.0f) + (b ? b[i] : 0.0f);
}

RW_INLINE void fill_rows_body(float *out, size_t ldo, const float *res, const float *bias, size_t n,
                              size_t OC)
{
    for (size_t r = 0; r < n; r++)
        row_sum2(out + r * ldo, res ? res + r * ldo : NULL, bias, OC);
}
/* out (n,OC) ld ldo = res + bias, either may be NULL. */
RW_MULTIVERSION(static, fill_rows, fill_rows_body,
                (float *out, size_t ldo, const float *res, const float *bias, size_t n, size_t OC),
                (out, ldo, res, bias, n, OC))

RW_INLINE void col_sums_body(float *dbias, const float *dout, size_t ld, size_t n, size_t OC)
{
    for (size_t r = 0; r < n; r++)
        row_sum2(dbias, dbias, dout + r * ld, OC);
}
/* dbias (OC) += column sums of dout (n,OC) ld ld. */
RW_MULTIVERSION(static, col_sums, col_sums_body,
                (float *dbias, const float *dout, size_t ld, size_t n, size_t OC),
                (dbias, dout, ld, n, OC))

void rw__matmul_forward(float *out, size_t ldo, const float *res, const float *inp, const float *w,
                        const float *bias, size_t n, size_t IC, size_t OC)
{
    if (n == 0)
        return;
    float beta = 0.0f;
    if (res || bias) {
        fill_rows(out, ldo, res, bias, n, OC);
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
    if (dinp) {          /* row-major: dinp (n,IC) (+)= dout (n,OC) @ w (OC,IC) */
        if (!accumulate) /* faster than OpenBLAS's beta-0 clearing; see attention */
            memset(dinp, 0, n * IC * sizeof *dinp);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)IC, (int)OC, 1.0f, dout,
                    (int)ldd, w, (int)IC, 1.0f, dinp, (int)IC);
    }
    if (dw) /* row-major: dw (OC,IC) += dout^T (OC,n) @ inp (n,IC) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OC, (int)IC, (int)n, 1.0f, dout,
                    (int)ldd, inp, (int)IC, 1.0f, dw, (int)IC);
    if (dbias)
        col_sums(dbias, dout, ldd, n, OC);
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

/* gelu(x) = 0.5 x (1 + t), t = tanh(u), u = S (x + C x^3);
 * gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) S (1 + 3 C x^2), from the same t.
 * Computing gelu' here, from the tanh the forward needs anyway, spares the
 * backward pass a second tanh. */
RW_INLINE void gelu_forward_body(float *out, float *deriv, const float *inp, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f x, t, y;
        v8_load(&x, inp + i);
        t = GELU_S * (x + GELU_C * x * x * x);
        v8_tanh(&t);
        y = 0.5f * x * (1.0f + t);
        if (deriv) {
            v8f g = 0.5f * (1.0f + t) +
                    0.5f * x * (1.0f - t * t) * GELU_S * (1.0f + 3.0f * GELU_C * x * x);
            v8_store(deriv + i, &g);
        }
        v8_store(out + i, &y);
    }
    for (; i < n; i++) {
        float x = inp[i];
        float t = rw_fast_tanhf(GELU_S * (x + GELU_C * x * x * x));
        if (deriv)
            deriv[i] = 0.5f * (1.0f + t) +
                       0.5f * x * (1.0f - t * t) * GELU_S * (1.0f + 3.0f * GELU_C * x * x);
        out[i] = 0.5f * x * (1.0f + t);
    }
}
RW_MULTIVERSION(static, gelu_forward, gelu_forward_body,
                (float *out, float *deriv, const float *inp, size_t n), (out, deriv, inp, n))

void rw__gelu_forward(float *out, const float *inp, size_t n)
{
    gelu_forward(out, NULL, inp, n);
}

void rw__gelu_forward_keep(float *out, float *inp, size_t n)
{
    gelu_forward(out, inp, inp, n); /* element i is read before it is overwritten */
}

RW_INLINE void mul_body(float *d, const float *a, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f av, bv;
        v8_load(&av, a + i);
        v8_load(&bv, b + i);
        av = av * bv;
        v8_store(d + i, &av);
    }
    for (; i < n; i++)
        d[i] = a[i] * b[i];
}
/* dinp (rows,cols) = deriv * dout; each row is added to dbias while it is
 * in cache, in row order as col_sums would (so the sums are the same). */
RW_INLINE void mul_rows_body(float *dinp, float *dbias, const float *deriv, const float *dout,
                             size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++) {
        mul_body(dinp + r * cols, deriv + r * cols, dout + r * cols, cols);
        if (dbias)
            row_sum2(dbias, dbias, dinp + r * cols, cols);
    }
}
RW_MULTIVERSION(static, mul_rows, mul_rows_body,
                (float *dinp, float *dbias, const float *deriv, const float *dout, size_t rows,
                 size_t cols),
                (dinp, dbias, deriv, dout, rows, cols))

void rw__gelu_backward(float *dinp, float *dbias, const float *deriv, const float *dout,
                       size_t rows, size_t cols)
{
    mul_rows(dinp, dbias, deriv, dout, rows, cols);
}

RW_INLINE void softmax_body(float *x, size_t n)
{
    size_t i = 0;
    float mx = x[0];
    v8f vm, v;
    v8_splat(&vm, x[0]);
    for (; i + 8 <= n; i += 8) {
        v8_load(&v, x + i);
        vm = V8_SELECT(v > vm, v, vm);
    }
    for (int j = 0; j < 8; j++)
        mx = vm[j] > mx ? vm[j] : mx;
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    v8f acc;
    v8_splat(&acc, 0.0f);
    for (i = 0; i + 8 <= n; i += 8) {
        v8_load(&v, x + i);
        v = v - mx;
        v8_exp(&v);
        acc += v;
        v8_store(x + i, &v);
    }
    float sum = v8_sum(&acc);
    for (; i < n; i++) {
        x[i] = rw_fast_expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum; /* sum >= 1: the maximum contributes exp(0) */
    for (i = 0; i + 8 <= n; i += 8) {
        v8_load(&v, x + i);
        v = v * inv;
        v8_store(x + i, &v);
    }
    for (; i < n; i++)
        x[i] *= inv;
}
RW_MULTIVERSION(, rw__softmax, softmax_body, (float *x, size_t n), (x, n))

RW_INLINE float dot_body(const float *a, const float *b, size_t n)
{
    v8f acc, va, vb;
    v8_splat(&acc, 0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8_load(&va, a + i);
        v8_load(&vb, b + i);
        acc += va * vb;
    }
    float s = v8_sum(&acc);
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

float rw__dot(const float *a, const float *b, size_t n)
{
    return dot_body(a, b, n);
}

void rw__axpy(float *y, float a, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* p (n) = p * (d - sum(p * d)), the softmax backward of one row, in place in d. */
RW_INLINE void softmax_backward_body(float *d, const float *p, size_t n)
{
    float s = dot_body(p, d, n);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f pv, dv;
        v8_load(&pv, p + i);
        v8_load(&dv, d + i);
        dv = pv * (dv - s);
        v8_store(d + i, &dv);
    }
    for (; i < n; i++)
        d[i] = p[i] * (d[i] - s);
}
RW_MULTIVERSION(static, softmax_backward, softmax_backward_body,
                (float *d, const float *p, size_t n), (d, p, n))

/* OpenBLAS clears C with a slow strided loop when beta is 0; for these small
 * per-head products a memset and beta 1 is a fifth faster. */
void rw__attention_forward(float *out, float *att, const float *qkv, const int32_t *lens, size_t B,
                           size_t T, size_t C, size_t NH)
{
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t b = 0; b < B; b++) {
        int Tb = lens[b];
        memset(out + b * T * C, 0, T * C * sizeof(float)); /* padded rows stay zero */
        for (size_t h = 0; h < NH; h++) {
            const float *q = qkv + b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            float *p = att + (b * NH + h) * T * T;
            float *o = out + b * T * C + h * hs;
            memset(p, 0, (size_t)Tb * T * sizeof(float));
            /* row-major: p (Tb,Tb) ld T = scale * q (Tb,hs) @ k (Tb,hs)^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tb, Tb, (int)hs, scale, q, (int)C3,
                        k, (int)C3, 1.0f, p, (int)T);
            for (int i = 0; i < Tb; i++)
                rw__softmax(p + (size_t)i * T, (size_t)Tb);
            /* row-major: o (Tb,hs) ld C = p (Tb,Tb) @ v (Tb,hs) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tb, (int)hs, Tb, 1.0f, p, (int)T,
                        v, (int)C3, 1.0f, o, (int)C);
        }
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
        memset(dqkv + b * T * C3, 0, T * C3 * sizeof(float)); /* padded rows stay zero */
        for (size_t h = 0; h < NH; h++) {
            const float *q = qkv + b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            const float *p = att + (b * NH + h) * T * T, *dout_bh = dout + b * T * C + h * hs;
            float *dq = dqkv + b * T * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
            float *dp = scratch;
            memset(dp, 0, (size_t)Tb * T * sizeof(float));
            /* row-major: dp (Tb,Tb) ld T = dout (Tb,hs) @ v (Tb,hs)^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tb, Tb, (int)hs, 1.0f, dout_bh,
                        (int)C, v, (int)C3, 1.0f, dp, (int)T);
            /* row-major: dv (Tb,hs) ld 3C = p^T (Tb,Tb) @ dout (Tb,hs) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tb, (int)hs, Tb, 1.0f, p, (int)T,
                        dout_bh, (int)C, 1.0f, dv, (int)C3);
            /* softmax backward, in place: ds = p * (dp - sum_j p dp) */
            for (int i = 0; i < Tb; i++)
                softmax_backward(dp + (size_t)i * T, p + (size_t)i * T, (size_t)Tb);
            /* row-major: dq (Tb,hs) ld 3C = scale * ds (Tb,Tb) @ k (Tb,hs) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tb, (int)hs, Tb, scale, dp,
                        (int)T, k, (int)C3, 1.0f, dq, (int)C3);
            /* row-major: dk (Tb,hs) ld 3C = scale * ds^T (Tb,Tb) @ q (Tb,hs) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tb, (int)hs, Tb, scale, dp, (int)T,
                        q, (int)C3, 1.0f, dk, (int)C3);
        }
    }
}
