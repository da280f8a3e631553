/* checksum.h — the checksum of an artifact: XXH64, seed 0.
 *
 * An artifact of gigabytes is checked on both ends while it streams, so the
 * checksum must run far faster than loopback TCP: XXH64 does about 10 GB/s
 * on one core where zlib's crc32 does under 4 and FNV-1a (core/hash.h) about
 * 1. Its values are xxHash's published ones (`xxh64sum` prints the same), so
 * an artifact on disk can be checked with standard tools.
 *
 * It lives in core because both sides use it: proto checks artifacts on the
 * wire, and a bundle's manifest (bundle.h) records the same value for every
 * file it holds, so a member's checksum is that of the artifact a task
 * uploaded. The names keep their proto_ prefix, which the wire code was
 * written against.
 */
#ifndef RW_CHECKSUM_H
#define RW_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* A running checksum; start with proto_checksum_init, feed any split. */
typedef struct proto_checksum {
    uint64_t v[4];   /* the four lanes */
    uint64_t total;  /* bytes fed so far */
    uint8_t buf[32]; /* a partial stripe */
    size_t buf_len;
} proto_checksum_t;

void proto_checksum_init(proto_checksum_t *c);
void proto_checksum_update(proto_checksum_t *c, const void *p, size_t n);
/* The value of everything fed so far; c may be fed more afterwards. */
uint64_t proto_checksum_final(const proto_checksum_t *c);
/* The checksum of n bytes at p in one call. */
uint64_t proto_checksum(const void *p, size_t n);

#endif
