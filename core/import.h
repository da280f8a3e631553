/* import.h — reading preference files into a dataset.
 *
 * Each file is plain or gzip JSON Lines in one of the shapes of format.h,
 * told apart by its first JSON object unless the caller names one. Nothing
 * bad stops an import: a bad record (malformed JSON, invalid UTF-8, a line
 * over the limit, a missing, mistyped or empty field, ...) is reported as
 * "path:line: reason", counted by kind and skipped; a file that cannot be
 * opened or stops early (a truncated .gz) is reported as "path: reason" or
 * "path:line: reason" and counted, keeping what was read before. Exact
 * duplicates (domain, prompt, chosen and rejected all equal, with each
 * other or with pairs already in the dataset) are dropped and counted. Each
 * kept pair gets its split from rw_pair_split(), so it never moves when
 * other records are added.
 *
 * The counts land in a report the caller prints (rw_import_report_print)
 * or serializes (rw_import_report_json).
 */
#ifndef RW_IMPORT_H
#define RW_IMPORT_H

#include "format.h"
#include "pair.h"
#include "reject.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Told about each rejection: line is 1-based, or 0 for a whole file that
 * could not be opened. path and rj are borrowed for the call. */
typedef void (*rw_import_reject_fn)(void *ctx, const char *path, size_t line,
                                    const rw_rejection_t *rj);

typedef struct rw_import_opts {
    rw_format_t format;            /* RW_FORMAT_AUTO: per file, from its first object */
    const char *domain;            /* borrowed, or NULL; see format.h for its role */
    double eval_fraction;          /* in [0, 1]: the share held out for eval */
    size_t max_line;               /* longest line in bytes (0: RW_LINES_DEFAULT_MAX) */
    rw_import_reject_fn on_reject; /* NULL: print "path:line: reason" to stderr */
    void *ctx;                     /* passed to on_reject */
} rw_import_opts_t;

#define RW_IMPORT_EVAL_FRACTION 0.1

/* Defaults: auto format, no domain, eval fraction 0.1, 16 MiB lines, stderr. */
void rw_import_opts_init(rw_import_opts_t *o);

typedef struct rw_import_domain {
    char *name; /* owned */
    size_t train, eval;
} rw_import_domain_t;

typedef struct rw_import_report {
    size_t files;                      /* files asked for */
    size_t read;                       /* records read: non-blank lines */
    size_t kept;                       /* added to the dataset */
    size_t duplicates;                 /* dropped as exact duplicates */
    size_t bad;                        /* bad records: read == kept + duplicates + bad */
    size_t file_errors;                /* files not read to their end (unreadable, truncated) */
    size_t rejected[RW_REJECT__COUNT]; /* by kind: bad + file_errors in all */
    rw_import_domain_t *domains;       /* owned: kept pairs by domain, sorted by name */
    size_t n_domains, cap_domains;
} rw_import_report_t;

/* init/fini pair, safe on a zeroed struct. A report adds up over calls. */
void rw_import_report_init(rw_import_report_t *r);
void rw_import_report_fini(rw_import_report_t *r);
/* The report as a JSON object {files, read, kept, duplicates, bad,
 * file_errors, rejected: {kind: n, ...}, domains: {name: {train, eval}}};
 * a new reference the caller owns. */
json_t *rw_import_report_json(const rw_import_report_t *r);
/* The closing summary for people: counts, bad records by kind, and a
 * train/eval table by domain. */
void rw_import_report_print(const rw_import_report_t *r, FILE *f);

/* Imports the n files at paths (borrowed) into ds, appending; opts may be
 * NULL for the defaults, rep NULL when the counts are not wanted. Returns 0
 * when every file was read to its end, else the error of the first that was
 * not (-errno when it could not be opened or read, RW_ETRUNC, RW_EIO for
 * corrupt gzip data, RW_EFORMAT when its format could not be told); the
 * pairs read before are kept either way. RW_EINVAL for bad options, before
 * anything is read. */
int rw_import_files(rw_dataset_t *ds, const char *const *paths, size_t n,
                    const rw_import_opts_t *opts, rw_import_report_t *rep);

#endif
