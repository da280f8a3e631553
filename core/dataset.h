/* dataset.h — a dataset's normalized file: what training reads.
 *
 * JSON Lines, one {"prompt","chosen","rejected","domain","split"} object a
 * line in that key order, split "train" or "eval", UTF-8, in the dataset's
 * order — so the same dataset always gives the same bytes. A save goes to a
 * temporary file beside the target and is renamed over it only once it is
 * complete, so a reader never sees a partial file.
 */
#ifndef RW_DATASET_H
#define RW_DATASET_H

#include "import.h"
#include "pair.h"

/* Writes ds (borrowed) to path. Returns 0, or -errno (the folder is missing
 * or not writable, the disk is full, ...) or RW_EUTF8 for a pair whose text
 * is not valid UTF-8; on failure neither path nor a temporary file is left
 * changed or behind. */
int rw_dataset_save(const rw_dataset_t *ds, const char *path);

/* Appends the pairs of the normalized file at path to ds, keeping each
 * line's split. Bad lines are reported, counted and skipped as by
 * rw_import_files(), whose opts (NULL: defaults; format and domain are
 * ignored) and rep (may be NULL) this takes, and whose return values it
 * has. */
int rw_dataset_load(rw_dataset_t *ds, const char *path, const rw_import_opts_t *opts,
                    rw_import_report_t *rep);

/* Appends the pairs of n files to ds: a normalized file (its first record
 * has a "split") through rw_dataset_load, keeping its splits; any other
 * through rw_import_files. opts and rep as there; returns 0 or the first
 * error, after reading every file. */
int rw_dataset_read(rw_dataset_t *ds, const char *const *paths, size_t n,
                    const rw_import_opts_t *opts, rw_import_report_t *rep);

#endif
