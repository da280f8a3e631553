/* afile.h — files that appear whole or not at all.
 *
 * Every file rewire writes (datasets, tokenizers, checkpoints, bundles) goes
 * through a temporary file beside its destination that is flushed, fsynced
 * and renamed over it only on commit. A crash, a full disk or an abort leaves
 * the old file (or none) and no temporary file behind.
 *
 * So does a signal: on the first open, SIGINT, SIGTERM and SIGHUP — those of
 * them the process left at their default action — get a handler that removes
 * the temporary files open in this process, then dies of the signal as it
 * would have. A handler the program installed itself is never replaced; one
 * that ends the process can call rw_afile_unlink_all first. Kept for up to
 * RW_AFILE_TRACKED files open at once (further ones are left, as before).
 *
 * A symbolic link is followed: the file it names is replaced and the link
 * stays. What is not a regular file — a pipe, a device such as /dev/stdout
 * — cannot be replaced whole and is written in place instead.
 */
#ifndef RW_AFILE_H
#define RW_AFILE_H

#include <stddef.h>
#include <stdio.h>

#define RW_AFILE_TRACKED 32

typedef struct rw_afile {
    FILE *f;          /* write here between open and commit/abort */
    char *tmp, *path; /* tmp NULL: path is written in place */
    int slot;         /* internal: 1 + its entry among the tracked, 0 none */
} rw_afile_t;

/* Creates the temporary file for path (mode 0644). Returns 0, or -errno with
 * *af zeroed. */
int rw_afile_open(rw_afile_t *af, const char *path);
/* Flushes, fsyncs, closes and renames over path. Returns 0, or -errno (or
 * RW_EIO) after removing the temporary file. *af is finished either way. */
int rw_afile_commit(rw_afile_t *af);
/* Drops the temporary file; safe on a zeroed or finished rw_afile_t. */
void rw_afile_abort(rw_afile_t *af);
/* Writes data[0..n) to path through the above. Returns 0 or -errno. */
int rw_afile_write(const char *path, const void *data, size_t n);
/* Removes the temporary file of every rw_afile_t this process has open (its
 * streams stay open, so only a process about to end should call it).
 * Async-signal-safe: for a program's own handler of a signal that ends it. */
void rw_afile_unlink_all(void);

/* Opens path for reading when it is a regular file: a FIFO (or a device)
 * given where a model or tokenizer belongs is RW_ENOTFILE at once, never a
 * read that blocks or never ends. Returns the descriptor, or a negative
 * error. */
int rw_open_regular(const char *path);
/* The same as a stdio stream ("rb"); NULL with *err set. */
FILE *rw_fopen_regular(const char *path, int *err);
/* Removes path and, if it is a folder, all it holds (symbolic links are
 * removed, not followed). Best effort: what cannot go stays. */
void rw_remove_tree(const char *path);

#endif
