/* vec.h — eight-float vectors for the element-wise kernels (internal).
 *
 * The default build targets any x86-64, so AVX2 is not assumed. Hot loops
 * are written once over GCC vector types (v8f: eight floats) in an
 * always-inline body and compiled twice by RW_MULTIVERSION: for AVX2 (one
 * 256-bit register per v8f) and for the baseline (two SSE registers); the
 * caller picks by cpuid once per call. Both versions do the same IEEE
 * operations in the same order, and the build does not contract a*b+c into
 * FMA (ISO C mode), so results are bit-identical whichever version runs.
 *
 * Helpers take and return vectors through pointers: passing a 32-byte
 * vector by value to a function compiled without AVX changes the ABI,
 * which GCC rightly warns about.
 */
#ifndef RW_VEC_H
#define RW_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

#define RW_INLINE static inline __attribute__((always_inline))

RW_INLINE void v8_load(v8f *v, const float *p)
{
    memcpy(v, p, sizeof *v);
}

RW_INLINE void v8_store(float *p, const v8f *v)
{
    memcpy(p, v, sizeof *v);
}

RW_INLINE void v8_splat(v8f *v, float x)
{
    *v = (v8f){x, x, x, x, x, x, x, x};
}

/* Lanes of a where mask (a comparison's result) is set, else of b. A macro,
 * so no vector is passed by value. */
#define V8_SELECT(mask, a, b) ((v8f)(((mask) & (v8i)(a)) | (~(mask) & (v8i)(b))))

/* *x = sqrt(x), correctly rounded like sqrtf: SSE's sqrtps on each half
 * where there is SSE (every x86-64), lane by lane elsewhere. */
RW_INLINE void v8_sqrt(v8f *x)
{
#if defined(__SSE__)
    typedef float v4f __attribute__((vector_size(16)));
    v4f lo, hi;
    memcpy(&lo, x, 16);
    memcpy(&hi, (char *)x + 16, 16);
    lo = __builtin_ia32_sqrtps(lo);
    hi = __builtin_ia32_sqrtps(hi);
    memcpy(x, &lo, 16);
    memcpy((char *)x + 16, &hi, 16);
#else
    for (int i = 0; i < 8; i++)
        (*x)[i] = __builtin_sqrtf((*x)[i]);
#endif
}

/* Horizontal sum in a fixed order (lanes 0..7). */
RW_INLINE float v8_sum(const v8f *v)
{
    float s = 0.0f;
    for (int i = 0; i < 8; i++)
        s += (*v)[i];
    return s;
}

/* *x = e^x, lane by lane: exactly rw_fast_expf (fastmath.h) in eight lanes. */
RW_INLINE void v8_exp(v8f *x)
{
    v8f lo, hi, zero, v = *x, k, r, p, scale, t;
    v8_splat(&lo, -87.0f);
    v8_splat(&hi, 88.0f);
    v8_splat(&zero, 0.0f);
    v = V8_SELECT(v < lo, lo, v);
    v = V8_SELECT(v > hi, hi, v);
    k = (v * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    t = k;
    k = V8_SELECT(k == t, t, zero); /* NaN: r below carries it, the shift must not */
    r = v - k * 0.693359375f + k * 2.12194440e-4f;
    p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    scale = (v8f)((__builtin_convertvector(k, v8i) + 127) << 23);
    *x = p * scale;
}

/* *x = tanh(x) = 1 - 2 / (e^(2x) + 1), as rw_fast_tanhf. */
RW_INLINE void v8_tanh(v8f *x)
{
    v8f e = *x * 2.0f;
    v8_exp(&e);
    *x = 1.0f - 2.0f / (e + 1.0f);
}

int rw__have_avx2(void);

/* Defines `storage void name(params)` (storage: static or nothing) from the
 * always-inline function body, compiled for AVX2 and for the baseline; args
 * repeats the parameter names. */
#define RW_MULTIVERSION(storage, name, body, params, args)                                         \
    __attribute__((target("avx2"))) static void name##_avx2 params                                 \
    {                                                                                              \
        body args;                                                                                 \
    }                                                                                              \
    static void name##_base params                                                                 \
    {                                                                                              \
        body args;                                                                                 \
    }                                                                                              \
    storage void name params                                                                       \
    {                                                                                              \
        if (rw__have_avx2())                                                                       \
            name##_avx2 args;                                                                      \
        else                                                                                       \
            name##_base args;                                                                      \
    }

#endif
