/* prepare.h — the job's data stage, run by the coordinator before any task.
 *
 * Reads the preference data (files in any format the importer knows, or
 * the built-in synthetic domains when none is given), splits every domain
 * into train and eval, trains the one tokenizer every model of the job
 * shares, and measures the data. Its products land in the state directory:
 *   data.jsonl      the normalized pairs with their splits
 *   tokenizer.json  the shared tokenizer (Hugging Face BPE layout)
 *   stats.json      pairs per domain and token-length percentiles
 */
#ifndef RW_COORD_PREPARE_H
#define RW_COORD_PREPARE_H

#include "bpe.h"
#include "import.h"
#include "pair.h"
#include "stats.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct coord_prep_opts {
    const char **data; /* array owned (coord_prep_opts_fini), strings borrowed;
                        * ndata == 0: the synthetic default data */
    size_t ndata;
    uint64_t seed;           /* for the synthetic data */
    size_t pairs_per_domain; /* for the synthetic data (0: its default) */
    double eval_fraction;
    size_t vocab_size;
    const char *state_dir; /* borrowed; created if missing */
    int json;              /* report as JSON on stdout */
    unsigned given;        /* COORD_PREP_GIVEN_*: the options given on the command line */
} coord_prep_opts_t;

enum {
    COORD_PREP_GIVEN_SEED = 1,
    COORD_PREP_GIVEN_PAIRS = 2,
    COORD_PREP_GIVEN_EVAL = 4,
    COORD_PREP_GIVEN_VOCAB = 8,
};

typedef struct coord_prep {
    rw_dataset_t ds;
    rw_bpe_t *bpe; /* owned */
    rw_stats_t stats;
    rw_import_report_t report; /* what importing the files gave (empty for synthetic) */
    double import_s, tokenizer_s, stats_s;
} coord_prep_t;

/* Defaults: synthetic data, seed 0, eval fraction 0.1, vocabulary 8192. */
void coord_prep_opts_init(coord_prep_opts_t *o);
void coord_prep_opts_fini(coord_prep_opts_t *o);
/* Parses the data-stage flags of argv (--data FILE (repeatable), --seed,
 * --pairs-per-domain, --eval-fraction, --vocab, --json) into *o, leaving the
 * others; writes what it does not know into rest[] (*nrest of them).
 * Returns 0, or 2 after a usage error naming cmd. */
int coord_prep_parse(const char *cmd, int argc, char **argv, coord_prep_opts_t *o, char **rest,
                     int *nrest);
/* The options as one line, "seed=S pairs-per-domain=P eval-fraction=F
 * vocab=V", to keep beside a prepared state. */
void coord_prep_opts_line(const coord_prep_opts_t *o, char *buf, size_t n);
/* Whether an option given to o differs from what line (as
 * coord_prep_opts_line wrote it) holds: 1 with why ("--vocab 1000, not
 * --vocab 2000"), else 0 (also for a line it cannot read: an older state). */
int coord_prep_opts_differ(const coord_prep_opts_t *o, const char *line, char *why, size_t n);
/* STATE/prepared-from, the record of what a state was prepared from: the
 * data on one line ("synthetic", or the files by their full paths, comma
 * separated), the options (coord_prep_opts_line) on the next, and once the
 * stage has written its files, a line for each with its size and checksum
 * (XXH64, core/checksum.h), data.jsonl with its pairs:
 *   data.jsonl bytes=87323 xxh64=5f0e1c4b9a7d2e13 pairs=200
 *   tokenizer.json bytes=18062 xxh64=...
 *   stats.json bytes=1492 xxh64=...
 * A start on a prepared state compares the first two with what it was
 * given, and checks the files against the rest before anything is trained:
 * a cut or altered data.jsonl otherwise ran the job on less data, or failed
 * it with a reason that was not one. */
#define COORD_PREP_NFILES 3
extern const char *const coord_prep_files[COORD_PREP_NFILES];

typedef struct coord_prep_sum {
    unsigned long long bytes, xxh64, lines; /* lines: whole ones, a pair each in data.jsonl */
} coord_prep_sum_t;

typedef struct coord_prep_record {
    char data[1024]; /* "" when there is no record (a state older than it) */
    char opts[256];  /* "" when the record does not say (an older build's) */
    bool summed;     /* false: no sums (an older build's, or a stage stopped before them) */
    coord_prep_sum_t sums[COORD_PREP_NFILES]; /* of coord_prep_files, in that order */
} coord_prep_record_t;

/* Writes the record of state (data, and o's options; with sums, those of
 * the stage's files as they are in state) whole or not at all
 * (core/afile.h): a cut record would refuse a good state with a reason
 * that is not one. Returns 0, or a negative error (none written). */
int coord_prep_record_save(const char *state, const char *data, const coord_prep_opts_t *o,
                           bool sums);
/* Checks the files of state against the sums of r (r->summed). Returns 0,
 * or RW_ECHECKSUM (a file missing, cut or altered: RW_ENOTFOUND, or the
 * error reading it) with why naming the file, what differs, and what to
 * do. */
int coord_prep_record_check(const char *state, const coord_prep_record_t *r, char *why, size_t n);
/* Reads the record of state into *r. Returns 0 (fields "" where it does
 * not say; all of them when there is none, or when it is not a regular
 * file), or RW_EPARSE with why, naming the file, when it is damaged: cut
 * short, or not what coord_prep_record_save writes. */
int coord_prep_record_load(const char *state, coord_prep_record_t *r, char *why, size_t n);
/* Help text for the flags coord_prep_parse knows. */
extern const char coord_prep_flags_help[];

/* Runs the data stage. Returns 0 with *out filled (coord_prep_fini frees
 * it), or a negative error after logging what failed; no partial file is
 * left in the state directory. */
int coord_prepare(const coord_prep_opts_t *o, coord_prep_t *out);
void coord_prep_fini(coord_prep_t *p);
/* The stage's outcome for people (a stats table and the paths written) on
 * f, or as a new JSON object. */
void coord_prep_print(const coord_prep_opts_t *o, const coord_prep_t *p, FILE *f);
json_t *coord_prep_json(const coord_prep_opts_t *o, const coord_prep_t *p);

#endif
