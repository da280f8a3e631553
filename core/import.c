/* import.c — the importer of import.h.
 *
 * One pass per file: lines from the line reader, each checked for UTF-8
 * before jansson sees it (so the reason says "invalid UTF-8" and where,
 * rather than jansson's decoding error), parsed with duplicate keys
 * rejected (a record saying "chosen" twice is ambiguous, not something to
 * resolve silently), turned into a pair by format.c, and kept unless the
 * duplicate set has seen it. Everything is linear in the input.
 */
#include "import.h"

#include "alloc.h"
#include "err.h"
#include "lines.h"
#include "pairset.h"
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void rw_import_opts_init(rw_import_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->format = RW_FORMAT_AUTO;
    o->eval_fraction = RW_IMPORT_EVAL_FRACTION;
    o->max_line = RW_LINES_DEFAULT_MAX;
}

void rw_import_report_init(rw_import_report_t *r)
{
    memset(r, 0, sizeof *r);
}

void rw_import_report_fini(rw_import_report_t *r)
{
    for (size_t i = 0; i < r->n_domains; i++)
        free(r->domains[i].name);
    free(r->domains);
    memset(r, 0, sizeof *r);
}

/* The state of one rw_import_files() call. */
typedef struct import_run {
    rw_dataset_t *ds;
    const rw_import_opts_t *opts;
    rw_import_report_t *rep;
    rw_pairset_t seen;
    const char *path;     /* the file being read */
    rw_format_t format;   /* its format, once known */
    rw_format_ctx_t fctx; /* its domain option and file-name domain */
} import_run_t;

static void import_reject(import_run_t *run, size_t line, const rw_rejection_t *rj)
{
    run->rep->rejected[rj->why]++;
    if (rw_reject_is_file_level(rj->why))
        run->rep->file_errors++;
    else
        run->rep->bad++;
    if (run->opts->on_reject)
        run->opts->on_reject(run->opts->ctx, run->path, line, rj);
    else if (line)
        fprintf(stderr, "%s:%zu: %s\n", run->path, line, rj->msg);
    else
        fprintf(stderr, "%s: %s\n", run->path, rj->msg);
}

/* Adds *p to the dataset (taking its strings) unless it is a duplicate. */
static void import_keep(import_run_t *run, rw_pair_t *p)
{
    uint64_t h = rw_pair_hash(p);
    if (rw_pairset_find(&run->seen, p, h) != SIZE_MAX) {
        run->rep->duplicates++;
        rw_pair_fini(p);
        return;
    }
    if (run->format != RW_FORMAT_NORMALIZED) /* that one keeps the file's split */
        p->split = rw_pair_split(p, run->opts->eval_fraction);
    rw_dataset_push(run->ds, p);
    rw_pairset_add(&run->seen, run->ds->n - 1, h);
    run->rep->kept++;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* One record. Returns 0, or RW_EFORMAT when it shows that the file's
 * format cannot be told (the rest of the file is then skipped). */
static int import_line(import_run_t *run, const char *line, size_t len, size_t lineno)
{
    rw_rejection_t rj;
    json_error_t jerr;
    rw_pair_t p;
    json_t *rec = NULL;
    int rc = 0;
    size_t bad = rw_utf8_check(line, len);
    if (bad != len) {
        rw_reject(&rj, RW_REJECT_INVALID_UTF8, "invalid UTF-8 at byte offset %zu", bad);
        goto reject;
    }
    rec = json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!rec) {
        /* jansson names its own flag for this one; say what is wrong instead */
        const char *why = strncmp(jerr.text, "\\u0000", 6) == 0
                              ? "\\u0000 (NUL) is not allowed in strings"
                              : jerr.text;
        rw_reject(&rj, RW_REJECT_MALFORMED_JSON, "malformed JSON at column %d: %s", jerr.column,
                  why);
        goto reject;
    }
    if (!json_is_object(rec)) {
        rw_reject(&rj, RW_REJECT_WRONG_TYPE, "record is not a JSON object");
        goto reject;
    }
    if (run->format == RW_FORMAT_AUTO) {
        run->format = rw_format_detect(rec);
        if (run->format == RW_FORMAT_AUTO) {
            rw_reject(&rj, RW_REJECT_UNKNOWN_FORMAT,
                      "cannot tell the file's format from this record: expected \"prompt\", "
                      "\"chosen\" and \"rejected\", or \"info\" and \"summaries\"");
            rc = RW_EFORMAT;
            goto reject;
        }
    }
    if (rw_format_record(run->format, rec, &run->fctx, &p, &rj) != 0)
        goto reject;
    import_keep(run, &p);
    goto done;
reject:
    import_reject(run, lineno, &rj);
done:
    json_decref(rec);
    return rc;
}

/* Reads one file to its end (or its first file-level error). */
static int import_file(import_run_t *run, const char *path)
{
    rw_rejection_t rj;
    int rc = 0;
    char *file_domain = rw_format_file_domain(path);
    run->path = path;
    run->format = run->opts->format;
    run->fctx = (rw_format_ctx_t){.domain = run->opts->domain, .file_domain = file_domain};
    run->rep->files++;
    rw_lines_t *r = rw_lines_new(path, run->opts->max_line, &rc);
    if (!r) {
        rw_reject(&rj, RW_REJECT_UNREADABLE_FILE, "cannot open: %s", rw_strerror(rc));
        import_reject(run, 0, &rj);
        goto fail_open;
    }
    const char *line;
    size_t len;
    while ((rc = rw_lines_next(r, &line, &len)) != 0) {
        size_t lineno = rw_lines_lineno(r);
        if (rc == 1) {
            if (is_blank(line, len))
                continue;
            run->rep->read++;
            rc = import_line(run, line, len, lineno);
            if (rc)
                break;
        } else if (rc == RW_ETOOBIG) {
            run->rep->read++;
            rw_reject(&rj, RW_REJECT_LINE_TOO_LONG, "line longer than %zu bytes",
                      run->opts->max_line ? run->opts->max_line : RW_LINES_DEFAULT_MAX);
            import_reject(run, lineno, &rj);
        } else {
            rw_reject(&rj, rc == RW_ETRUNC ? RW_REJECT_TRUNCATED_FILE : RW_REJECT_UNREADABLE_FILE,
                      "%s", rw_lines_errmsg(r));
            import_reject(run, lineno, &rj);
            break;
        }
    }
    rw_lines_destroy(&r);
fail_open:
    free(file_domain);
    return rc;
}

static int cmp_pair_domain(const void *a, const void *b)
{
    return strcmp((*(const rw_pair_t *const *)a)->domain, (*(const rw_pair_t *const *)b)->domain);
}

/* The report's entry for domain name, inserted in order if new. */
static rw_import_domain_t *report_domain(rw_import_report_t *r, const char *name)
{
    size_t lo = 0, hi = r->n_domains;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->domains[mid].name, name);
        if (c == 0)
            return &r->domains[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    rw_grow(&r->domains, &r->cap_domains, r->n_domains + 1);
    memmove(&r->domains[lo + 1], &r->domains[lo], (r->n_domains - lo) * sizeof r->domains[0]);
    r->n_domains++;
    r->domains[lo] = (rw_import_domain_t){.name = rw_strdup(name)};
    return &r->domains[lo];
}

/* Counts pairs [first, ds->n) into the report's per-domain table. */
static void report_count_domains(rw_import_report_t *r, const rw_dataset_t *ds, size_t first)
{
    size_t n = ds->n - first;
    if (n == 0)
        return;
    const rw_pair_t **by = rw_new_array(const rw_pair_t *, n);
    for (size_t i = 0; i < n; i++)
        by[i] = &ds->pairs[first + i];
    qsort(by, n, sizeof *by, cmp_pair_domain);
    rw_import_domain_t *d = NULL;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(by[i - 1]->domain, by[i]->domain) != 0)
            d = report_domain(r, by[i]->domain);
        if (by[i]->split == RW_SPLIT_EVAL)
            d->eval++;
        else
            d->train++;
    }
    free(by);
}

int rw_import_files(rw_dataset_t *ds, const char *const *paths, size_t n,
                    const rw_import_opts_t *opts, rw_import_report_t *rep)
{
    rw_import_opts_t defaults;
    rw_import_report_t scratch;
    if (!opts) {
        rw_import_opts_init(&defaults);
        opts = &defaults;
    }
    if ((unsigned)opts->format >= RW_FORMAT__COUNT ||
        !(opts->eval_fraction >= 0 && opts->eval_fraction <= 1) || (n && !paths))
        return RW_EINVAL;
    rw_import_report_init(&scratch);
    import_run_t run = {.ds = ds, .opts = opts, .rep = rep ? rep : &scratch};
    rw_pairset_init(&run.seen, ds);
    for (size_t i = 0; i < ds->n; i++)
        rw_pairset_add(&run.seen, i, rw_pair_hash(&ds->pairs[i]));
    size_t first = ds->n;
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = import_file(&run, paths[i]);
        if (rc < 0 && ret == 0)
            ret = rc;
    }
    report_count_domains(run.rep, ds, first);
    rw_pairset_fini(&run.seen);
    rw_import_report_fini(&scratch);
    return ret;
}

json_t *rw_import_report_json(const rw_import_report_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "files", json_integer((json_int_t)r->files));
    json_object_set_new(o, "read", json_integer((json_int_t)r->read));
    json_object_set_new(o, "kept", json_integer((json_int_t)r->kept));
    json_object_set_new(o, "duplicates", json_integer((json_int_t)r->duplicates));
    json_object_set_new(o, "bad", json_integer((json_int_t)r->bad));
    json_object_set_new(o, "file_errors", json_integer((json_int_t)r->file_errors));
    json_t *kinds = json_object();
    for (int k = 0; k < RW_REJECT__COUNT; k++)
        json_object_set_new(kinds, rw_reject_name((rw_reject_t)k),
                            json_integer((json_int_t)r->rejected[k]));
    json_object_set_new(o, "rejected", kinds);
    json_t *doms = json_object();
    for (size_t i = 0; i < r->n_domains; i++) {
        const rw_import_domain_t *d = &r->domains[i];
        json_t *e = json_object();
        json_object_set_new(e, "train", json_integer((json_int_t)d->train));
        json_object_set_new(e, "eval", json_integer((json_int_t)d->eval));
        json_object_set_new(doms, d->name, e);
    }
    json_object_set_new(o, "domains", doms);
    return o;
}

void rw_import_report_print(const rw_import_report_t *r, FILE *f)
{
    fprintf(f, "import: %zu file%s, %zu records read: %zu kept, %zu bad, %zu duplicates dropped\n",
            r->files, r->files == 1 ? "" : "s", r->read, r->kept, r->bad, r->duplicates);
    if (r->file_errors)
        fprintf(f, "  %zu file%s not read to the end\n", r->file_errors,
                r->file_errors == 1 ? "" : "s");
    for (int k = 0; k < RW_REJECT__COUNT; k++)
        if (r->rejected[k])
            fprintf(f, "  %-24s %8zu\n", rw_reject_name((rw_reject_t)k), r->rejected[k]);
    if (r->n_domains == 0)
        return;
    fprintf(f, "  %-32s %8s %8s %8s\n", "domain", "train", "eval", "total");
    size_t train = 0, eval = 0;
    for (size_t i = 0; i < r->n_domains; i++) {
        const rw_import_domain_t *d = &r->domains[i];
        fprintf(f, "  %-32s %8zu %8zu %8zu\n", d->name, d->train, d->eval, d->train + d->eval);
        train += d->train;
        eval += d->eval;
    }
    fprintf(f, "  %-32s %8zu %8zu %8zu\n", "all", train, eval, train + eval);
}
