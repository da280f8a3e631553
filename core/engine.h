/* engine.h — where the model runs: activations, threads, scoring.
 *
 * An engine holds everything a forward (and, for training, backward) pass
 * over a batch of up to max_B sequences of max_T tokens needs, allocated
 * once: activations, gradient scratch, one gradient block per thread and the
 * thread team. Nothing is allocated while a batch runs.
 *
 * Threads: with threads > 1 the batch's sequences are split between the
 * team's members, each running the whole pass over its slice with
 * single-threaded BLAS (OpenBLAS is set to one thread while the engine
 * runs, and set back after). With threads == 1 the engine runs on the
 * calling thread and OpenBLAS keeps its own thread count, so every matmul is
 * one multi-threaded sgemm over the whole batch. Either way BLAS threads and
 * batch threads never run at once. Results depend on the thread count only
 * through the order of float additions: the same count gives bit-identical
 * results. OpenBLAS's thread count is process-wide, so run one engine at a
 * time in a process (a worker runs one task at a time).
 */
#ifndef RW_ENGINE_H
#define RW_ENGINE_H

#include "batch.h"
#include "lora.h"
#include "model.h"

typedef struct rw_engine rw_engine_t;

/* An engine for model (borrowed; must outlive the engine), with lora
 * attached (borrowed, may be NULL). train != 0 also allocates what backward
 * passes need. threads <= 0: one per online CPU. Returns 0, RW_EINVAL (an
 * adapter made for another configuration, sizes out of range), RW_ENOMEM
 * (its buffers, rw_engine_bytes of them, cannot be allocated) or a negated
 * errno if threads could not start. */
int rw_engine_new(rw_engine_t **engine_p, rw_model_t *model, rw_lora_t *lora, size_t max_B,
                  size_t max_T, int threads, int train);
/* Bytes of the buffers rw_engine_new allocates for a model of cfg (valid, as
 * rw_model_config_validate says) with an adapter of lc (valid for cfg; NULL:
 * none) and the other arguments as given there; the weights themselves are
 * not counted. SIZE_MAX when that is more than an address space holds. An
 * engine's activations grow with max_B * max_T (attention's with max_B *
 * max_T^2), training's with the layers too, so a caller can refuse a shape
 * before it costs anything. */
size_t rw_engine_bytes(const rw_model_config_t *cfg, const rw_lora_config_t *lc, size_t max_B,
                       size_t max_T, int threads, int train);
/* Accepts NULL; nulls *engine_p. */
void rw_engine_destroy(rw_engine_t **engine_p);
/* Attaches another adapter (borrowed) or none (NULL), reallocating the
 * buffers that depend on it. Returns 0, RW_EINVAL (made for another
 * configuration) or RW_ENOMEM (the engine keeps the adapter it had). */
int rw_engine_set_lora(rw_engine_t *e, rw_lora_t *lora);
rw_lora_t *rw_engine_lora(const rw_engine_t *e);
int rw_engine_threads(const rw_engine_t *e);
size_t rw_engine_max_batch(const rw_engine_t *e);
/* Longest sequence the engine takes. */
size_t rw_engine_max_len(const rw_engine_t *e);
/* Outputs per sequence and head kind: the attached adapter's head, else
 * the model's. */
int rw_engine_outputs(const rw_engine_t *e);
rw_head_t rw_engine_head(const rw_engine_t *e);

/* Runs the model over batch; out (B, O) gets each sequence's reward (O = 1)
 * or class logits. Returns 0, or RW_EINVAL if the batch is larger than the
 * engine, empty, longer than the model's max_len, or holds a token id
 * outside the vocabulary. */
int rw_engine_forward(rw_engine_t *e, const rw_batch_t *batch, float *out);

#endif
