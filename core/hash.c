/* hash.c — FNV-1a with an fmix64 finish; see hash.h. */
#include "hash.h"

uint64_t rw_hash_update(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t rw_hash_final(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t rw_hash(const void *p, size_t n)
{
    return rw_hash_final(rw_hash_update(RW_HASH_SEED, p, n));
}

double rw_hash_unit(uint64_t h)
{
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}
