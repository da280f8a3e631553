/* store.h — artifacts at rest: files in one folder, named by their checksum.
 *
 * An artifact's id is its proto_checksum (XXH64), so the id a coordinator
 * leases is also the proof of the bytes: a file enters the store only after
 * its checksum was computed from what is on disk, and a read can verify it
 * again. The coordinator keeps the job's artifacts (shards, tokenizer,
 * every task's output) in one; a worker keeps what it fetched in another, so
 * it never fetches the same bytes twice. Files appear whole or not at all:
 * they are written beside the store's folder under tmp/ and renamed in.
 *
 *   dir/0123456789abcdef    an artifact, its id in 16 hex digits
 *   dir/tmp/                files on their way in (cleared on open)
 */
#ifndef RW_PROTO_STORE_H
#define RW_PROTO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xfer.h"

#define STORE_PATH_MAX 4096

typedef struct store store_t;

/* Opens (creating) the store in dir and empties dir/tmp. Returns NULL with
 * *err = -errno when dir cannot be made or is not writable. */
store_t *store_open(const char *dir, int *err);
/* Accepts NULL; NULLs *self_p. */
void store_destroy(store_t **self_p);
const char *store_dir(const store_t *s);

/* The path artifact id has (whether or not it is there) in buf (n bytes);
 * returns buf. */
const char *store_path(const store_t *s, uint64_t id, char *buf, size_t n);
/* Whether the artifact is present (not verified). */
bool store_has(const store_t *s, uint64_t id);
/* Reads the artifact and checks its checksum. Returns 0 with *size (may be
 * NULL); RW_ENOTFOUND; RW_ECHECKSUM (the file is removed, so it can be
 * fetched again); or -errno. */
int store_verify(const store_t *s, uint64_t id, uint64_t *size);

/* Marks artifact id as used now (its modification time), for store_trim. */
void store_touch(const store_t *s, uint64_t id);
/* Removes artifacts, least recently used first (by modification time,
 * which store_touch and every write set), until those left total at most
 * max bytes. Spares the n_keep ids in keep and every artifact used less
 * than min_age_s seconds ago: another process sharing the folder may be
 * about to read it. gone (may be NULL) hears each id removed, with ctx.
 * Returns the bytes the artifacts total afterwards (over max when what is
 * spared is), or -errno when the folder cannot be read. */
int64_t store_trim(const store_t *s, uint64_t max, const uint64_t *keep, size_t n_keep,
                   unsigned min_age_s, void (*gone)(void *ctx, uint64_t id), void *ctx);

/* A fresh path under dir/tmp for a file on its way in (not created). */
const char *store_tmp_path(store_t *s, char *buf, size_t n);
/* Takes the finished file at path (under dir/tmp, or anywhere on the same
 * file system) into the store: computes its checksum and renames it to its
 * id. want 0 takes any content; otherwise the checksum must be want, or the
 * file is removed and RW_ECHECKSUM returned. Returns 0 with *id (may be
 * NULL), RW_EINVAL for content whose checksum is 0 (no artifact id is), or
 * -errno. path is gone afterwards in every case. */
int store_adopt(store_t *s, const char *path, uint64_t want, uint64_t *id);
/* Copies the file at src (left alone) into the store. Returns as
 * store_adopt. */
int store_put_file(store_t *s, const char *src, uint64_t *id);
/* Stores n bytes at p. Returns as store_adopt. */
int store_put_mem(store_t *s, const void *p, size_t n, uint64_t *id);

/* A sink (xfer.h) that receives an artifact into a file under dir/tmp;
 * once committed, store_adopt(s, path, id, ...) takes it in. Commit does
 * not fsync: an artifact is verified against its id whenever it is read,
 * so one a crash tore is found out and fetched or made again, and a
 * transfer is not held up by the disk. Zero it, then store_sink_init. */
typedef struct store_sink {
    char path[STORE_PATH_MAX];
    int fd;
    bool committed;
} store_sink_t;
extern const struct xfer_sink_ops store_sink_ops;
/* Picks a fresh path under s's tmp/ for the sink. */
void store_sink_init(store_sink_t *k, store_t *s);
/* Closes the file and removes it unless committed (and adopted since);
 * safe on a zeroed or finished sink. */
void store_sink_fini(store_sink_t *k);

/* The checksum of a whole file. Returns 0 with *sum and *size (may be
 * NULL), or -errno. */
int store_checksum_file(const char *path, uint64_t *sum, uint64_t *size);

#endif
