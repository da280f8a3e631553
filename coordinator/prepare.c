/* prepare.c — the data stage of a job; see prepare.h. */
#include "prepare.h"

#include "afile.h"
#include "alloc.h"
#include "args.h"
#include "checksum.h"
#include "corpus.h"
#include "dataset.h"
#include "err.h"
#include "log.h"
#include "synth.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char coord_prep_flags_help[] =
    "  --data FILE            preference data, any format `rewire data import` reads;\n"
    "                         repeatable (default: the built-in synthetic domains)\n"
    "  --seed N               seed of the synthetic data (0)\n"
    "  --pairs-per-domain N   synthetic pairs per domain (1000)\n"
    "  --eval-fraction F      share of each domain held out for evaluation (0.1)\n"
    "  --vocab N              tokenizer vocabulary, 1000 to 65536 (8192)\n"
    "  --json                 print the outcome as JSON on stdout\n";

void coord_prep_opts_init(coord_prep_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->eval_fraction = RW_IMPORT_EVAL_FRACTION;
    o->vocab_size = RW_BPE_TRAIN_OPTS_DEFAULT.vocab_size;
}

void coord_prep_opts_fini(coord_prep_opts_t *o)
{
    free(o->data);
    o->data = NULL;
    o->ndata = 0;
}

static int parse_num(const char *cmd, const char *flag, const char *val, double lo, double hi,
                     double *out)
{
    double v = 0;
    if (rw_arg_real(val, lo, hi, &v) < 0) {
        fprintf(stderr, "rewire %s: %s wants a number from %g to %g, not '%s'\n", cmd, flag, lo, hi,
                val ? val : "");
        return 2;
    }
    *out = v;
    return 0;
}

int coord_prep_parse(const char *cmd, int argc, char **argv, coord_prep_opts_t *o, char **rest,
                     int *nrest)
{
    char who[64];
    snprintf(who, sizeof who, "rewire %s", cmd);
    *nrest = 0;
    free(o->data);
    o->data = rw_new_array(const char *, (size_t)argc + 1);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = rw_arg_next(argc, argv, i);
        long l;
        int rc = 0;
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--data") == 0) {
            if (!val) {
                fprintf(stderr, "rewire %s: --data wants a file\n", cmd);
                rc = 2;
            } else {
                o->data[o->ndata++] = val;
            }
        } else if (strcmp(a, "--seed") == 0) {
            if (!(rc = rw_arg_flag_long(who, a, val, 0, LONG_MAX, &l)))
                o->seed = (uint64_t)l, o->given |= COORD_PREP_GIVEN_SEED;
        } else if (strcmp(a, "--pairs-per-domain") == 0) {
            if (!(rc = rw_arg_flag_long(who, a, val, 10, RW_SYNTH_MAX_PAIRS, &l)))
                o->pairs_per_domain = (size_t)l, o->given |= COORD_PREP_GIVEN_PAIRS;
        } else if (strcmp(a, "--eval-fraction") == 0) {
            if (!(rc = parse_num(cmd, a, val, 0.01, 0.9, &o->eval_fraction)))
                o->given |= COORD_PREP_GIVEN_EVAL;
        } else if (strcmp(a, "--vocab") == 0) {
            if (!(rc = rw_arg_flag_long(who, a, val, RW_BPE_MIN_VOCAB, RW_BPE_MAX_VOCAB, &l)))
                o->vocab_size = (size_t)l, o->given |= COORD_PREP_GIVEN_VOCAB;
        } else {
            rest[(*nrest)++] = argv[i];
            continue;
        }
        if (rc)
            return rc;
        i++; /* the value */
    }
    return 0;
}

void coord_prep_opts_line(const coord_prep_opts_t *o, char *buf, size_t n)
{
    snprintf(buf, n, "seed=%llu pairs-per-domain=%zu eval-fraction=%.17g vocab=%zu",
             (unsigned long long)o->seed,
             o->pairs_per_domain ? o->pairs_per_domain : (size_t)RW_SYNTH_DEFAULT_PAIRS,
             o->eval_fraction, o->vocab_size);
}

/* Whether line is all one options line, as coord_prep_opts_line writes it;
 * its values into the rest. */
static bool opts_scan(const char *line, unsigned long long *seed, size_t *pairs, double *eval,
                      size_t *vocab)
{
    int end = -1;
    return sscanf(line, "seed=%llu pairs-per-domain=%zu eval-fraction=%lg vocab=%zu%n", seed, pairs,
                  eval, vocab, &end) == 4 &&
           end > 0 && line[end] == '\0';
}

int coord_prep_opts_differ(const coord_prep_opts_t *o, const char *line, char *why, size_t n)
{
    unsigned long long seed;
    size_t pairs, vocab;
    double eval;
    if (!opts_scan(line, &seed, &pairs, &eval, &vocab))
        return 0;
    size_t mine = o->pairs_per_domain ? o->pairs_per_domain : (size_t)RW_SYNTH_DEFAULT_PAIRS;
    if ((o->given & COORD_PREP_GIVEN_SEED) && o->seed != seed)
        snprintf(why, n, "--seed %llu, not --seed %llu", seed, (unsigned long long)o->seed);
    else if ((o->given & COORD_PREP_GIVEN_PAIRS) && !o->ndata && mine != pairs)
        snprintf(why, n, "--pairs-per-domain %zu, not --pairs-per-domain %zu", pairs, mine);
    else if ((o->given & COORD_PREP_GIVEN_EVAL) && o->eval_fraction != eval)
        snprintf(why, n, "--eval-fraction %g, not --eval-fraction %g", eval, o->eval_fraction);
    else if ((o->given & COORD_PREP_GIVEN_VOCAB) && o->vocab_size != vocab)
        snprintf(why, n, "--vocab %zu, not --vocab %zu", vocab, o->vocab_size);
    else
        return 0;
    return 1;
}

const char *const coord_prep_files[COORD_PREP_NFILES] = {"data.jsonl", "tokenizer.json",
                                                         "stats.json"};

/* The size, checksum and whole lines of the file at path into *s. Returns
 * 0 or a negative error. */
static int file_sum(const char *path, coord_prep_sum_t *s)
{
    int fd = rw_open_regular(path);
    if (fd < 0)
        return fd;
    proto_checksum_t c;
    proto_checksum_init(&c);
    memset(s, 0, sizeof *s);
    char *buf = rw_malloc(1 << 16);
    ssize_t k;
    while ((k = read(fd, buf, 1 << 16)) > 0 || (k < 0 && errno == EINTR)) {
        proto_checksum_update(&c, buf, k > 0 ? (size_t)k : 0);
        for (ssize_t i = 0; i < k; i++)
            s->lines += buf[i] == '\n';
    }
    int rc = k < 0 ? -errno : 0;
    free(buf);
    close(fd);
    s->bytes = c.total;
    s->xxh64 = proto_checksum_final(&c);
    return rc;
}

int coord_prep_record_save(const char *state, const char *data, const coord_prep_opts_t *o,
                           bool sums)
{
    char path[PATH_MAX], opts[256], text[2048];
    coord_prep_opts_line(o, opts, sizeof opts);
    int len = snprintf(text, sizeof text, "%s\n%s\n", data, opts);
    for (int i = 0; sums && i < COORD_PREP_NFILES && len > 0 && (size_t)len < sizeof text; i++) {
        coord_prep_sum_t s;
        snprintf(path, sizeof path, "%s/%s", state, coord_prep_files[i]);
        int rc = file_sum(path, &s);
        if (rc < 0)
            return rc;
        len += snprintf(text + len, sizeof text - (size_t)len, "%s bytes=%llu xxh64=%016llx",
                        coord_prep_files[i], s.bytes, s.xxh64);
        if (i == 0 && (size_t)len < sizeof text)
            len += snprintf(text + len, sizeof text - (size_t)len, " pairs=%llu", s.lines);
        if ((size_t)len < sizeof text)
            len += snprintf(text + len, sizeof text - (size_t)len, "\n");
    }
    if (len < 0 || (size_t)len >= sizeof text)
        return RW_ETOOBIG;
    snprintf(path, sizeof path, "%s/prepared-from", state);
    return rw_afile_write(path, text, (size_t)len);
}

int coord_prep_record_check(const char *state, const coord_prep_record_t *r, char *why, size_t n)
{
    for (int i = 0; r->summed && i < COORD_PREP_NFILES; i++) {
        char path[PATH_MAX], what[256];
        const coord_prep_sum_t *want = &r->sums[i];
        coord_prep_sum_t got;
        snprintf(path, sizeof path, "%s/%s", state, coord_prep_files[i]);
        int rc = file_sum(path, &got);
        if (rc < 0)
            snprintf(what, sizeof what, "%s", rc == -ENOENT ? "it is missing" : rw_strerror(rc));
        else if (got.bytes != want->bytes && i == 0)
            snprintf(what, sizeof what,
                     "%llu bytes with %llu whole line%s, where %llu bytes with %llu pairs were "
                     "prepared",
                     got.bytes, got.lines, got.lines == 1 ? "" : "s", want->bytes, want->lines);
        else if (got.bytes != want->bytes)
            snprintf(what, sizeof what, "%llu bytes, where %llu were prepared", got.bytes,
                     want->bytes);
        else if (got.xxh64 != want->xxh64)
            snprintf(what, sizeof what, "its checksum is %016llx, where %016llx was prepared",
                     got.xxh64, want->xxh64);
        else
            continue;
        snprintf(why, n,
                 "%s is damaged (%s): the job would run on other data than was prepared; remove "
                 "%s to prepare the data again, or give another folder",
                 path, what, state);
        return rc == -ENOENT ? RW_ENOTFOUND : rc < 0 ? rc : RW_ECHECKSUM;
    }
    return 0;
}

/* Says in why that the record at path is damaged, and what to do. */
static int damaged(const char *path, const char *state, const char *what, char *why, size_t n)
{
    snprintf(why, n,
             "%s is damaged (%s): what the state was prepared from cannot be told; remove %s to "
             "prepare the data again, or give another folder",
             path, what, state);
    return RW_EPARSE;
}

int coord_prep_record_load(const char *state, coord_prep_record_t *r, char *why, size_t n)
{
    char path[PATH_MAX], text[4096];
    snprintf(path, sizeof path, "%s/prepared-from", state);
    memset(r, 0, sizeof *r);
    FILE *f = rw_fopen_regular(path, NULL); /* a FIFO would hold the start in open() */
    if (!f)
        return 0; /* none: a state older than the record */
    size_t len = fread(text, 1, sizeof text - 1, f);
    bool more = len == sizeof text - 1, bad = ferror(f) != 0;
    fclose(f);
    text[len] = '\0';
    if (bad)
        return damaged(path, state, "it cannot be read", why, n);
    if (len == 0)
        return damaged(path, state, "it is empty", why, n);
    if (more)
        return damaged(path, state, "longer than any record", why, n);
    if (text[len - 1] != '\n' || strlen(text) != len)
        return damaged(path, state, "cut short", why, n);
    /* "data\n", by a build before the options were kept, "data\nopts\n",
     * or that and a line for each file */
    char *line[2 + COORD_PREP_NFILES + 1] = {0}, *at = text;
    size_t nl = 0;
    for (; *at && nl < sizeof line / sizeof line[0]; nl++) {
        line[nl] = at;
        at = strchr(at, '\n');
        *at++ = '\0';
    }
    if (*at)
        return damaged(path, state, "more lines than a record has", why, n);
    unsigned long long seed;
    size_t pairs, vocab;
    double eval;
    if (!*line[0] || strlen(line[0]) >= sizeof r->data)
        return damaged(path, state, "its first line names no data", why, n);
    if (nl > 1 && !opts_scan(line[1], &seed, &pairs, &eval, &vocab))
        return damaged(path, state, "its second line is not the data options", why, n);
    if (nl > 2 && nl != 2 + COORD_PREP_NFILES)
        return damaged(path, state, "not a line for each prepared file", why, n);
    for (size_t i = 2; i < nl; i++) {
        coord_prep_sum_t *s = &r->sums[i - 2];
        const char *name = coord_prep_files[i - 2];
        size_t k = strlen(name);
        int end = -1;
        if (strncmp(line[i], name, k) == 0) {
            if (i == 2)
                sscanf(line[i] + k, " bytes=%llu xxh64=%16llx pairs=%llu%n", &s->bytes, &s->xxh64,
                       &s->lines, &end);
            else
                sscanf(line[i] + k, " bytes=%llu xxh64=%16llx%n", &s->bytes, &s->xxh64, &end);
        }
        if (end < 0 || line[i][k + (size_t)end] != '\0')
            return damaged(path, state, "a line of sums is not one", why, n);
    }
    snprintf(r->data, sizeof r->data, "%s", line[0]);
    snprintf(r->opts, sizeof r->opts, "%s", nl > 1 ? line[1] : "");
    r->summed = nl > 2;
    return 0;
}

/* Fills p->ds from the files, or from the synthetic generator. */
static int load_data(const coord_prep_opts_t *o, coord_prep_t *p)
{
    if (o->ndata > 0) {
        rw_import_opts_t io;
        rw_import_opts_init(&io);
        io.eval_fraction = o->eval_fraction;
        int rc = rw_dataset_read(&p->ds, o->data, o->ndata, &io, &p->report);
        if (p->report.file_errors) { /* the job would run without part of its data */
            RW_ERROR("prepare", "%zu of the %zu data file(s) unreadable or cut short (above)",
                     p->report.file_errors, o->ndata);
            return rc < 0 ? rc : RW_EIO;
        }
        if (p->ds.n == 0) {
            RW_ERROR("prepare", "no usable pairs in the %zu data file(s)%s%s", o->ndata,
                     rc < 0 ? ": " : "", rc < 0 ? rw_strerror(rc) : "");
            return rc < 0 ? rc : RW_EEMPTY;
        }
        return 0;
    }
    rw_synth_opts_t so = {.seed = o->seed, .pairs_per_domain = o->pairs_per_domain};
    int rc = rw_synth_generate(&so, &p->ds);
    if (rc < 0)
        return rc;
    rw_dataset_assign_splits(&p->ds, o->eval_fraction);
    return 0;
}

int coord_prepare(const coord_prep_opts_t *o, coord_prep_t *p)
{
    memset(p, 0, sizeof *p);
    rw_dataset_init(&p->ds);
    rw_import_report_init(&p->report);
    char path[PATH_MAX];
    int rc;
    if (mkdir(o->state_dir, 0755) != 0 && errno != EEXIST) {
        rc = -errno;
        RW_ERROR("prepare", "cannot create state directory %s: %s", o->state_dir, rw_strerror(rc));
        return rc;
    }
    double t = rw_now_s();
    if ((rc = load_data(o, p)) < 0)
        return rc;
    const char **names;
    size_t nd = rw_dataset_domains(&p->ds, &names);
    if (nd < 2) { /* nothing to route between: refused before any state is written */
        RW_ERROR("prepare",
                 "a job needs at least two domains; the data has one (%s): train its model with "
                 "`rewire train`, or add the data of another domain",
                 nd ? names[0] : "?");
        free(names);
        return RW_EINVAL;
    }
    free(names);
    snprintf(path, sizeof path, "%s/data.jsonl", o->state_dir);
    if ((rc = rw_dataset_save(&p->ds, path)) < 0)
        goto fail_write;
    p->import_s = rw_now_s() - t;

    t = rw_now_s();
    rw_bpe_train_opts_t to = RW_BPE_TRAIN_OPTS_DEFAULT;
    to.vocab_size = o->vocab_size;
    if ((rc = rw_corpus_train_bpe(&p->ds, &to, &p->bpe)) < 0)
        return rc;
    snprintf(path, sizeof path, "%s/tokenizer.json", o->state_dir);
    if ((rc = rw_bpe_save(p->bpe, path)) < 0)
        goto fail_write;
    p->tokenizer_s = rw_now_s() - t;

    t = rw_now_s();
    if ((rc = rw_stats_compute(&p->ds, p->bpe, &p->stats)) < 0)
        return rc;
    p->stats_s = rw_now_s() - t;
    json_t *js = rw_stats_json(&p->stats);
    char *text = json_dumps(js, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(js);
    snprintf(path, sizeof path, "%s/stats.json", o->state_dir);
    rc = rw_afile_write(path, text, strlen(text));
    free(text);
    if (rc < 0)
        goto fail_write;
    return 0;

fail_write:
    RW_ERROR("prepare", "cannot write %s: %s", path, rw_strerror(rc));
    return rc;
}

void coord_prep_fini(coord_prep_t *p)
{
    rw_dataset_fini(&p->ds);
    rw_bpe_destroy(&p->bpe);
    rw_stats_fini(&p->stats);
    rw_import_report_fini(&p->report);
}

void coord_prep_print(const coord_prep_opts_t *o, const coord_prep_t *p, FILE *f)
{
    if (o->ndata)
        fprintf(f, "data: %zu pairs from %zu file(s) (%zu bad records skipped, %zu duplicates)\n",
                p->ds.n, o->ndata, p->report.bad, p->report.duplicates);
    else
        fprintf(f, "data: %zu synthetic pairs (seed %llu)\n", p->ds.n, (unsigned long long)o->seed);
    fprintf(f, "tokenizer: %zu tokens, trained in %.2f s\n\n", rw_bpe_vocab_size(p->bpe),
            p->tokenizer_s);
    rw_stats_print(&p->stats, f);
    fprintf(f, "\nwrote %s/data.jsonl, %s/tokenizer.json, %s/stats.json\n", o->state_dir,
            o->state_dir, o->state_dir);
}

json_t *coord_prep_json(const coord_prep_opts_t *o, const coord_prep_t *p)
{
    return json_pack("{s:s,s:s,s:I,s:I,s:o,s:o,s:{s:f,s:f,s:f}}", "state_dir", o->state_dir, "data",
                     o->ndata ? "files" : "synthetic", "pairs", (json_int_t)p->ds.n, "vocab_size",
                     (json_int_t)rw_bpe_vocab_size(p->bpe), "import",
                     rw_import_report_json(&p->report), "stats", rw_stats_json(&p->stats),
                     "seconds", "data", p->import_s, "tokenizer", p->tokenizer_s, "stats",
                     p->stats_s);
}
