/* hash.h — a fast, stable 64-bit hash.
 *
 * FNV-1a over the bytes, finished with MurmurHash3's fmix64 so the high bits
 * are well mixed (the train/eval split thresholds on them). The value is
 * part of rewire's data format — a record's split depends on it — so it
 * must never change between versions or machines.
 */
#ifndef RW_HASH_H
#define RW_HASH_H

#include <stddef.h>
#include <stdint.h>

#define RW_HASH_SEED 0xcbf29ce484222325ULL

/* Continues hash h over n bytes at p (start with RW_HASH_SEED). */
uint64_t rw_hash_update(uint64_t h, const void *p, size_t n);
/* The finished value of a running hash. */
uint64_t rw_hash_final(uint64_t h);
/* rw_hash_final(rw_hash_update(RW_HASH_SEED, p, n)). */
uint64_t rw_hash(const void *p, size_t n);
/* The hash as a number in [0, 1). */
double rw_hash_unit(uint64_t h);

#endif
