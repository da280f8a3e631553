/* test_batch.c — input sequences: layout, truncation from the prompt's start,
 * padding and pairs. */
#include "batch.h"
#include "err.h"
#include "model.h"

#include <criterion/criterion.h>

static const int32_t prompt[] = {10, 11, 12, 13, 14, 15};
static const int32_t reply[] = {20, 21, 22, 23};

static void expect_ids(const int32_t *got, size_t n, const int32_t *want, size_t wn)
{
    cr_assert_eq(n, wn, "length %zu, want %zu", n, wn);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "id %zu: %d, want %d", i, got[i], want[i]);
}

Test(batch, sequence_is_cls_prompt_sep_reply_sep)
{
    int32_t out[32];
    size_t n = rw_input_encode(out, 32, prompt, 6, reply, 4);
    const int32_t want[] = {1, 10, 11, 12, 13, 14, 15, 2, 20, 21, 22, 23, 2};
    expect_ids(out, n, want, 13);
}

Test(batch, too_long_cuts_the_prompt_from_its_start)
{
    int32_t out[32];
    size_t n = rw_input_encode(out, 10, prompt, 6, reply, 4);
    const int32_t want[] = {1, 13, 14, 15, 2, 20, 21, 22, 23, 2};
    expect_ids(out, n, want, 10);
    n = rw_input_encode(out, 7, prompt, 6, reply, 4); /* no room left for the prompt */
    const int32_t want2[] = {1, 2, 20, 21, 22, 23, 2};
    expect_ids(out, n, want2, 7);
    n = rw_input_encode(out, 5, prompt, 6, reply, 4); /* the reply alone is too long */
    const int32_t want3[] = {1, 2, 20, 21, 2};
    expect_ids(out, n, want3, 5);
    n = rw_input_encode(out, 3, NULL, 0, NULL, 0);
    const int32_t want4[] = {1, 2, 2};
    expect_ids(out, n, want4, 3);
}

Test(batch, pairs_are_chosen_then_rejected_and_padded)
{
    rw_batch_t b;
    rw_batch_init(&b, 4, 16);
    const int32_t chosen[] = {30}, rejected[] = {40, 41, 42};
    rw_tok_pair_t p = {prompt, chosen, rejected, 2, 1, 3, 7};
    cr_assert_eq(rw_batch_add_pair(&b, &p), 0);
    cr_assert_eq(b.B, 2);
    cr_assert_eq(b.lens[0], 6); /* cls 10 11 sep 30 sep */
    cr_assert_eq(b.lens[1], 8);
    cr_assert_eq(b.T, 8);
    cr_assert_eq(b.ids[4], 30);
    cr_assert_eq(b.ids[16 + 4], 40);
    cr_assert_eq(b.labels[0], 7);
    cr_assert_eq(b.labels[1], 7);
    for (size_t t = 6; t < 16; t++)
        cr_assert_eq(b.ids[t], RW_TOK_PAD);
    uint8_t mask[16];
    rw_batch_mask(&b, mask);
    for (size_t t = 0; t < 8; t++) {
        cr_assert_eq(mask[t], t < 6);
        cr_assert_eq(mask[8 + t], 1);
    }
    cr_assert_eq(rw_batch_add_pair(&b, &p), 1);
    cr_assert_eq(rw_batch_add_pair(&b, &p), RW_ETOOBIG);
    rw_tok_pair_t two[3] = {p, p, p};
    cr_assert_eq(rw_batch_from_pairs(&b, two, 3), RW_ETOOBIG);
    cr_assert_eq(rw_batch_from_pairs(&b, two, 2), 0);
    cr_assert_eq(b.B, 4);
    rw_batch_fini(&b);
}
