/* bring.h — the data of a new domain a worker brings to a job.
 *
 * `rewire-worker --domain NAME --data FILE` reads FILE through the importer
 * (any format `rewire data import` reads, with the same checks; --strict
 * turns any bad record or unreadable file into a refusal) and keeps two
 * files in its artifact cache:
 *
 *   the domain's data  every pair, with its train/eval split: the shard the
 *                      domain's tasks are leased with, so its pairs never
 *                      leave this machine (its checksum is HELLO.data_checksum)
 *   the upload         what travels to the coordinator (HELLO.data_upload):
 *                      the held-out pairs, for evaluating every bundle on
 *                      the domain, and the train prompts alone, for the
 *                      router, the router adapter and the MoE gates; their
 *                      replies are the stand-ins BRING_WITHHELD_*
 *
 * Every pair must be of domain NAME (a record without a domain gets it).
 */
#ifndef RW_WORKER_BRING_H
#define RW_WORKER_BRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The replies of an uploaded train prompt: not the pair's, which stays. */
#define BRING_WITHHELD_CHOSEN   "(reply withheld)"
#define BRING_WITHHELD_REJECTED "(other reply withheld)"

typedef struct bring {
    const char *domain; /* borrowed */
    uint64_t pairs, train, eval;
    uint64_t bytes;  /* of the domain's data */
    uint64_t shard;  /* its checksum: the artifact in the cache */
    uint64_t upload; /* the upload's artifact in the cache */
} bring_t;

/* Reads file as domain into the store at cache_dir (created) and fills *b.
 * Returns 0, or a negative error with why filled in: the file is unreadable
 * or holds no good pair, holds another domain, lacks train or held-out
 * pairs, or (strict) has a bad record ("FILE:LINE: reason" is printed on
 * stderr for each, as by `rewire data import`). */
int bring_prepare(const char *domain, const char *file, bool strict, const char *cache_dir,
                  bring_t *b, char *why, size_t whylen);

#endif
