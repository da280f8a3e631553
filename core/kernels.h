/* kernels.h — the layers' forward and backward kernels (internal to rwcore).
 *
 * Each kernel works on n token rows of one thread's slice of the batch and
 * states its shapes. Matrices are row-major; linear weights are (out, in).
 * Backward kernels accumulate into parameter gradients (+=) and skip any
 * gradient pointer that is NULL (a frozen tensor); what they do to input
 * gradients is stated per kernel. No kernel allocates.
 */
#ifndef RW_KERNELS_H
#define RW_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define RW_LN_EPS 1e-5f

/* out (n,C) = wte[ids] + wpe[t] for row r = b*T + t. */
void rw__encoder_forward(float *out, const int32_t *ids, size_t ld, const float *wte,
                         const float *wpe, size_t B, size_t T, size_t C);
/* dwte[ids] += dout, dwpe[t] += dout over the valid rows (t < lens[b]);
 * either gradient may be NULL. */
void rw__encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids,
                          size_t ld, const int32_t *lens, size_t B, size_t T, size_t C);
/* LoRA on the token embedding: out (B*T, C) += s * b (C,r) @ a[ids] (r); its
 * gradients da[ids] += s * b^T @ dout and db += s * dout @ a[ids]^T over
 * each sequence's first lens[b] tokens, as rw__encoder_backward. */
void rw__lora_embed_forward(float *out, const int32_t *ids, size_t ld, const float *a,
                            const float *b, size_t B, size_t T, size_t C, size_t r, float s);
void rw__lora_embed_backward(float *da, float *db, const float *dout, const int32_t *ids, size_t ld,
                             const int32_t *lens, const float *a, const float *b, size_t B,
                             size_t T, size_t C, size_t r, float s);

/* out (n,C) = (inp - mean) * rstd * w + b; mean, rstd (n) kept for backward. */
void rw__layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, size_t n, size_t C);
/* dinp (n,C) += the gradient through the norm; dw, db (C) +=. */
void rw__layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, size_t n,
                            size_t C);

/* out (n,OC), row stride ldo, = [res +] inp (n,IC) @ w (OC,IC)^T [+ bias (OC)].
 * res (same stride as out) and bias may be NULL; res may equal out. */
void rw__matmul_forward(float *out, size_t ldo, const float *res, const float *inp, const float *w,
                        const float *bias, size_t n, size_t IC, size_t OC);
/* From dout (n,OC), row stride ldd: dinp (n,IC) = (or += if accumulate)
 * dout @ w; dw (OC,IC) += dout^T @ inp; dbias (OC) += column sums of dout.
 * Any of dinp, dw, dbias may be NULL. */
void rw__matmul_backward(float *dinp, int accumulate, float *dw, float *dbias, const float *dout,
                         size_t ldd, const float *inp, const float *w, size_t n, size_t IC,
                         size_t OC);

/* out (n) = gelu(inp), the tanh approximation (GPT-2's). */
void rw__gelu_forward(float *out, const float *inp, size_t n);
/* The same for training: out (n) = gelu(inp), and inp becomes gelu'(inp),
 * all that the backward pass needs of it. */
void rw__gelu_forward_keep(float *out, float *inp, size_t n);
/* dinp (rows,cols) = deriv * dout, deriv as left by rw__gelu_forward_keep;
 * dinp may be dout. With dbias, also dbias (cols) += the column sums of
 * dinp, the gradient of the bias before the GELU, as rw__matmul_backward
 * would add them. */
void rw__gelu_backward(float *dinp, float *dbias, const float *deriv, const float *dout,
                       size_t rows, size_t cols);

/* Bidirectional multi-head attention over B sequences of padded length T
 * (sequence b has lens[b] real tokens; padded keys are masked, padded query
 * rows give zeros). qkv (B*T, 3C) holds q | k | v; out (B*T, C);
 * att (B, NH, T, T) keeps the softmax probabilities for backward. */
void rw__attention_forward(float *out, float *att, const float *qkv, const int32_t *lens, size_t B,
                           size_t T, size_t C, size_t NH);
/* dqkv (B*T, 3C) = the gradient from dout (B*T, C); scratch holds (T, T). */
void rw__attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                            const float *att, const int32_t *lens, size_t B, size_t T, size_t C,
                            size_t NH);

/* LoRA update of a linear layer: out (n,OUT), row stride ldo,
 * += s * (x (n,IN) @ a (r,IN)^T) @ b (OUT,r)^T; u (n,r) = x @ a^T is kept. */
void rw__lora_forward(float *out, size_t ldo, float *u, const float *x, const float *a,
                      const float *b, size_t n, size_t IN, size_t OUT, size_t r, float s);
/* From dout (n,OUT), row stride ldd: da (r,IN) +=, db (OUT,r) +=, and
 * dx (n,IN) += (dx may be NULL); du (n,r) is scratch. */
void rw__lora_backward(float *dx, float *da, float *db, float *du, const float *dout, size_t ldd,
                       const float *x, const float *u, const float *a, const float *b, size_t n,
                       size_t IN, size_t OUT, size_t r, float s);

/* x (n) = softmax(x) in place; returns nothing, never divides by zero. */
void rw__softmax(float *x, size_t n);
/* sum_i a[i] * b[i] over n floats, accumulated in float. */
float rw__dot(const float *a, const float *b, size_t n);
/* y (n) += a * x (n). */
void rw__axpy(float *y, float a, const float *x, size_t n);

#endif
