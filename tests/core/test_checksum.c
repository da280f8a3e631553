/* test_checksum.c — XXH64 gives xxHash's published values, in any split. */
#include "checksum.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(checksum, published_values)
{
    /* xxHash's reference vectors, seed 0 (the last one is longer than a stripe). */
    cr_assert_eq(proto_checksum("", 0), 0xEF46DB3751D8E999ULL);
    cr_assert_eq(proto_checksum("a", 1), 0xD24EC4F1A98C6E5BULL);
    cr_assert_eq(proto_checksum("abc", 3), 0x44BC2CF5AD770999ULL);
    const char *t = "Nobody inspects the spammish repetition";
    cr_assert_eq(proto_checksum(t, strlen(t)), 0xFBCEA83C8A378BF1ULL);
}

Test(checksum, any_split_gives_the_same_value)
{
    enum { N = 1000 };
    unsigned char *b = malloc(N);
    for (int i = 0; i < N; i++)
        b[i] = (unsigned char)(i * 131 + 7);
    for (size_t n = 0; n <= N; n += 37) {
        uint64_t whole = proto_checksum(b, n);
        for (size_t step = 1; step <= 70; step += 3) {
            proto_checksum_t c;
            proto_checksum_init(&c);
            for (size_t off = 0; off < n; off += step)
                proto_checksum_update(&c, b + off, off + step <= n ? step : n - off);
            cr_assert_eq(proto_checksum_final(&c), whole, "n=%zu step=%zu", n, step);
        }
    }
    free(b);
}
