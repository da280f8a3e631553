/* test_hash.c — the hash is stable (it decides splits) and spreads well. */
#include "hash.h"

#include <criterion/criterion.h>
#include <stdio.h>

Test(hash, values_are_fixed_forever)
{
    /* 0x82a2... computed independently in Python. These values are part of the data format: a record's train/eval split
     * depends on them. If this test fails, splits changed. */
    cr_assert_eq(rw_hash("", 0), rw_hash_final(RW_HASH_SEED));
    cr_assert_eq(rw_hash("rewire", 6), rw_hash("rewire", 6));
    cr_assert_eq(rw_hash_update(rw_hash_update(RW_HASH_SEED, "re", 2), "wire", 4),
                 rw_hash_update(RW_HASH_SEED, "rewire", 6));
    cr_assert_eq(rw_hash("a", 1), 0x82a2a958a9bece5bULL, "got %#llx",
                 (unsigned long long)rw_hash("a", 1));
}

Test(hash, unit_interval_is_uniform)
{
    int bins[10] = {0};
    char buf[32];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(buf, sizeof buf, "record-%d", i);
        double u = rw_hash_unit(rw_hash(buf, (size_t)n));
        cr_assert(u >= 0 && u < 1);
        bins[(int)(u * 10)]++;
    }
    for (int b = 0; b < 10; b++)
        cr_assert(bins[b] > 9500 && bins[b] < 10500, "bin %d has %d", b, bins[b]);
}
