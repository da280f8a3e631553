/* fastmath.h — exp and tanh for the element-wise loops (internal).
 *
 * libm's expf/tanhf are exact to the last bit but scalar calls; the GELU and
 * the attention softmax call them tens of millions of times a step. These
 * are Cephes' single-precision polynomial (relative error about 2e-7 over
 * the range used), written with plain float and integer operations so the
 * compiler can vectorize the loops that inline them. Results are the same
 * on every run of the same binary, so determinism is kept.
 */
#ifndef RW_FASTMATH_H
#define RW_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* e^x; x is clamped to [-87, 88], so the result is normal and finite,
 * except that NaN gives NaN (a poisoned step must stay visible). */
static inline float rw_fast_expf(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* x = k ln2 + r, |r| <= ln2/2; adding 1.5 * 2^23 rounds k to an integer */
    float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    k = k == k ? k : 0.0f; /* NaN: r below carries it, the shift must not */
    float r = x - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23; /* 2^k, k in [-126, 127] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh(x) = 1 - 2 / (e^(2x) + 1): absolute error below 3e-7. */
static inline float rw_fast_tanhf(float x)
{
    return 1.0f - 2.0f / (rw_fast_expf(2.0f * x) + 1.0f);
}

#endif
