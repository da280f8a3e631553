/* test_engine.c — what an engine allocates: rw_engine_bytes says it before
 * any allocation, and a shape whose buffers cannot be had is RW_ENOMEM, not
 * an abort (it was: a --max-len 8192 run died asking for 73 GB). */
#include "engine.h"
#include "err.h"
#include "lora.h"
#include "model.h"
#include "train.h"

#include <criterion/criterion.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model_fixture.h"
#include "support.h"

#ifdef RWT_ASAN
/* ASan aborts on a request past its largest allocation; the engine must see
 * the NULL malloc gives, as it does without ASan. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}
#endif

#ifndef RWT_ASAN
/* Bytes malloc has handed out and not had back. */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* rw_engine_new allocates what rw_engine_bytes says, give or take the
 * engine's own struct and malloc's bookkeeping. */
static void expect_bytes_allocated(rw_model_t *m, rw_lora_t *lo, size_t B, int train)
{
    size_t T = (size_t)m->cfg.max_len;
    size_t want = rw_engine_bytes(&m->cfg, lo ? &lo->cfg : NULL, B, T, 1, train);
    size_t before = heap_in_use();
    rw_engine_t *e;
    cr_assert_eq(rw_engine_new(&e, m, lo, B, T, 1, train), 0);
    size_t got = heap_in_use() - before;
    cr_assert(got >= want && got - want < 8192,
              "B %zu train %d lora %d: said %zu bytes, allocated %zu", B, train, lo != NULL, want,
              got);
    rw_engine_destroy(&e);
}
#endif

Test(engine, bytes_are_what_it_allocates)
{
#ifdef RWT_ASAN
    cr_skip_test("ASan's allocator keeps no mallinfo");
#else
    rw_model_config_t c;
    fx_tiny_config(&c);
    c.max_len = 64;
    rw_model_t *m, *moe;
    cr_assert_eq(rw_model_new(&m, &c), 0);
    c.n_experts = 4;
    cr_assert_eq(rw_model_new(&moe, &c), 0);
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 4;
    rw_lora_t *lo;
    cr_assert_eq(rw_lora_new(&lo, m, &lc), 0);
    for (int train = 0; train < 2; train++) {
        expect_bytes_allocated(m, NULL, 64, train);
        expect_bytes_allocated(moe, NULL, 64, train);
        expect_bytes_allocated(m, lo, 64, train);
    }
    rw_lora_destroy(&lo);
    rw_model_destroy(&m);
    rw_model_destroy(&moe);
#endif
}

Test(engine, bytes_of_the_run_that_died)
{
    /* `rewire train --max-len 8192 --vocab 1000`: the default shape, 16
     * pairs a step; its activations alone were the 73293365248 bytes the
     * allocator could not find */
    rw_model_config_t c;
    rw_model_config_default(&c);
    c.vocab = 1000, c.max_len = 8192, c.d_model = 128, c.n_layers = 2, c.d_ff = 512;
    cr_assert_eq(rw_model_config_validate(&c), 0);
    size_t b = rw_engine_bytes(&c, NULL, 32, 8192, 1, 1);
    cr_assert(b > 73293365248u && b < 80000000000u, "%zu bytes", b);
    /* attention's scratch is quadratic in the length */
    cr_assert_lt(rw_engine_bytes(&c, NULL, 32, 192, 1, 1), b / 40);
    /* a trainer adds its moments and the batch to the engine */
    rw_train_config_t tc;
    rw_train_config_default(&tc);
    tc.max_batch = 32, tc.threads = 1;
    cr_assert_gt(rw_trainer_bytes(&c, NULL, &tc), b);
    /* sizes past any address space say so rather than wrap around */
    c.max_len = 65536, c.d_model = 256, c.n_heads = 256, c.n_layers = 16;
    cr_assert_eq(rw_model_config_validate(&c), 0);
    cr_assert_eq(rw_engine_bytes(&c, NULL, 1u << 20, 65536, 1, 1), SIZE_MAX);
    tc.max_batch = 1u << 20;
    cr_assert_eq(rw_trainer_bytes(&c, NULL, &tc), SIZE_MAX);
}

Test(engine, a_shape_past_any_address_space_is_enomem)
{
    /* every product of these fits in size_t but attention's (L, B, NH, T,
     * T), which used to wrap around into a small, wrong allocation */
    rw_model_config_t c;
    fx_tiny_config(&c);
    c.max_len = 65536, c.d_model = 256, c.n_heads = 256, c.n_layers = 16, c.vocab = 100;
    rw_model_t *m;
    cr_assert_eq(rw_model_new(&m, &c), 0);
    rw_engine_t *e = (rw_engine_t *)1;
    cr_assert_eq(rw_engine_new(&e, m, NULL, 1u << 20, 65536, 1, 1), RW_ENOMEM);
    cr_assert_null(e);
    rw_model_destroy(&m);
}

#ifndef RWT_ASAN
/* Under a limit of 256 MiB more than the child has: a 2 GB engine and
 * trainer; then, with 1 MiB more left, an adapter's 75 MB of activations;
 * 0, or the number of the step that went wrong. */
static int allocations_fail_gracefully(void)
{
    /* every large block its own mapping, which the limit counts, never
     * space a freed block left in the heap (a thread's arena reserves 64
     * MiB, so the adapter's block is larger than that) */
    mallopt(M_MMAP_THRESHOLD, 64 << 10);
    rw_model_config_t c;
    fx_tiny_config(&c);
    c.max_len = 16, c.d_model = 16, c.n_heads = 1, c.d_ff = 16;
    rw_model_t *m;
    rw_lora_t *lo;
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 16;
    if (rw_model_new(&m, &c) != 0 || rw_lora_new(&lo, m, &lc) != 0)
        return 1;
    rw_batch_t b;
    rw_batch_init(&b, 2, 16);
    fx_random_pairs(&b, 1, c.vocab, 1, 1);
    float out[2], again[2];
    rw_engine_t *e;
    size_t B = 12288;
    if (rw_engine_new(&e, m, NULL, B, 16, 1, 0) != 0 || rw_engine_forward(e, &b, out) != 0)
        return 2; /* a first pass: BLAS has its buffers before any limit */
    if (rw_engine_bytes(&c, NULL, 65536, 16, 1, 1) < (1u << 30) ||
        rwt_limit_address_space(256u << 20))
        return 3;
    rw_engine_t *big = (rw_engine_t *)1;
    if (rw_engine_new(&big, m, NULL, 65536, 16, 1, 1) != RW_ENOMEM || big)
        return 4;
    rw_train_config_t tc;
    rw_train_config_default(&tc);
    tc.max_batch = 65536, tc.threads = 1;
    rw_trainer_t *tr = (rw_trainer_t *)1;
    if (rw_trainer_new(&tr, m, NULL, &tc) != RW_ENOMEM || tr)
        return 5;
    /* the adapter's activations do not fit: the engine keeps scoring with
     * the model's own head, as before */
    size_t lora = rw_engine_bytes(&c, &lc, B, 16, 1, 0) - rw_engine_bytes(&c, NULL, B, 16, 1, 0);
    if (lora < (72u << 20) || rwt_limit_address_space(1u << 20))
        return 6;
    if (rw_engine_set_lora(e, lo) != RW_ENOMEM || rw_engine_lora(e) || rw_engine_outputs(e) != 1)
        return 7;
    if (rw_engine_forward(e, &b, again) != 0 || memcmp(out, again, sizeof out) != 0)
        return 8;
    return 0;
}
#endif

Test(engine, what_cannot_be_allocated_is_enomem)
{
#ifdef RWT_ASAN
    cr_skip_test("ASan reserves more address space than any limit leaves");
#else
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(allocations_fail_gracefully());
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "step %d failed", WEXITSTATUS(status));
#endif
}
