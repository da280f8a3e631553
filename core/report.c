/* report.c — report.md and report.json from a job's results; see report.h.
 *
 * Tables are GitHub-flavoured markdown. Accuracies are shown as fractions
 * with three decimals, as the eval JSON holds them, so a figure in the
 * table can be found in report.json as it is; what the results lack is
 * "n/a". The results are read leniently: a field of the wrong type counts
 * as missing, so a partial job still gets a report.
 */
#include "report.h"

#include "afile.h"
#include "alloc.h"
#include "bundle.h"
#include "err.h"
#include "report_impl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const rw_report__kinds[RW_REPORT_NKINDS] = {"baseline", "moe", "router", "adapter"};

double rw_report__num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

const char *rw_report__str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

json_t *rw_report__arr(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_array(v) ? v : NULL;
}

const json_t *rw_report__bundle(const json_t *results, const char *kind)
{
    json_t *bundles = rw_report__arr(results, "bundles"), *b;
    size_t i;
    json_array_foreach(bundles, i, b)
    {
        const char *k = rw_report__str(b, "kind");
        if (k && strcmp(k, kind) == 0)
            return b;
    }
    return NULL;
}

const json_t *rw_report__domain_eval(const json_t *bundle, const char *name)
{
    json_t *doms = rw_report__arr(json_object_get(bundle, "eval"), "domains"), *d;
    size_t i;
    json_array_foreach(doms, i, d)
    {
        const char *n = rw_report__str(d, "name");
        if (n && strcmp(n, name) == 0)
            return d;
    }
    return NULL;
}

static void add_name(const char ***names, size_t *n, size_t *cap, const char *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*names)[i], s) == 0)
            return;
    rw_grow(names, cap, *n + 1);
    (*names)[(*n)++] = s;
}

size_t rw_report__domains(const json_t *results, const char ***names)
{
    size_t n = 0, cap = 0, i, j;
    *names = NULL;
    json_t *v, *b;
    json_array_foreach(rw_report__arr(json_object_get(results, "job"), "domains"), i, v)
        add_name(names, &n, &cap, json_string_value(v));
    json_array_foreach(rw_report__arr(results, "bundles"), i, b)
        json_array_foreach(rw_report__arr(json_object_get(b, "eval"), "domains"), j, v)
            add_name(names, &n, &cap, rw_report__str(v, "name"));
    return n;
}

void rw_report__xml(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t' || *s == '\n')
                fputc(*s, f);
        }
    }
}

/* Text inside a table cell: '|' escaped, line breaks as spaces. */
static void md_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    }
}

static void cell(FILE *f, const char *s)
{
    fputs("| ", f);
    md_text(f, s);
    fputc(' ', f);
}

__attribute__((format(printf, 2, 3))) static void cellf(FILE *f, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cell(f, buf);
}

/* A number with "%.Nf", or n/a. */
static void cell_num(FILE *f, double v, int decimals)
{
    if (isfinite(v))
        cellf(f, "%.*f", decimals, v);
    else
        cell(f, "n/a");
}

/* A count with thousands separators: 1,234,567. */
static void fmt_count(char *out, size_t n, double v)
{
    if (!isfinite(v) || v < 0) {
        snprintf(out, n, "n/a");
        return;
    }
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", v);
    size_t len = strlen(digits), k = 0;
    for (size_t i = 0; i < len && k + 2 < n; i++) {
        if (i && (len - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = 0;
}

static void cell_count(FILE *f, double v)
{
    char buf[48];
    fmt_count(buf, sizeof buf, v);
    cell(f, buf);
}

/* A table's header; align has 'l' or 'r' per column (numbers go right;
 * columns past its end too). */
static void header(FILE *f, const char *const *cols, size_t n, const char *align)
{
    for (size_t i = 0; i < n; i++)
        cell(f, cols[i]);
    fputs("|\n", f);
    for (size_t i = 0; i < n; i++)
        fputs(i < strlen(align) && align[i] == 'l' ? "|---" : "|---:", f);
    fputs("|\n", f);
}

static void md_job(FILE *f, const json_t *results)
{
    const json_t *job = json_object_get(results, "job");
    const char *id = rw_report__str(job, "id");
    fprintf(f, "# rewire report%s%s\n\n", id ? ": job " : "", id ? id : "");
    if (!json_is_object(job))
        return;
    static const char *const cols[] = {"job", ""};
    header(f, cols, 2, "ll");
    if (id) {
        cell(f, "id");
        cell(f, id);
        fputs("|\n", f);
    }
    if (isfinite(rw_report__num(job, "seed"))) {
        cell(f, "seed");
        cellf(f, "%.0f", rw_report__num(job, "seed"));
        fputs("|\n", f);
    }
    const char *keys[] = {"data", "started"};
    for (size_t i = 0; i < 2; i++)
        if (rw_report__str(job, keys[i])) {
            cell(f, keys[i]);
            cell(f, rw_report__str(job, keys[i]));
            fputs("|\n", f);
        }
    json_t *doms = rw_report__arr(job, "domains"), *d;
    size_t i;
    if (doms) {
        cell(f, "domains");
        fputs("| ", f);
        json_array_foreach(doms, i, d)
        {
            fputs(i ? ", " : "", f);
            md_text(f, json_string_value(d) ? json_string_value(d) : "?");
        }
        fputs(" |\n", f);
    }
    if (isfinite(rw_report__num(job, "wall_s"))) {
        cell(f, "wall time (s)");
        cell_num(f, rw_report__num(job, "wall_s"), 1);
        fputs("|\n", f);
    }
    if (isfinite(rw_report__num(job, "version"))) {
        cell(f, "bundles version");
        cellf(f, "%.0f", rw_report__num(job, "version"));
        fputs("|\n", f);
    }
    json_array_foreach(rw_report__arr(job, "added"), i, d)
    {
        /* a domain a worker brought after the job started */
        cell(f, "domain added");
        fputs("| ", f);
        md_text(f, rw_report__str(d, "domain") ? rw_report__str(d, "domain") : "?");
        fprintf(f, " by worker ");
        md_text(f, rw_report__str(d, "worker") ? rw_report__str(d, "worker") : "?");
        fprintf(f,
                ": %.0f train pairs (stayed there), %.0f held-out; %.1f s (its tasks %.1f s, "
                "the router update %.1f s) |\n",
                rw_report__num(d, "train"), rw_report__num(d, "eval"), rw_report__num(d, "wall_s"),
                rw_report__num(d, "stage1_s"), rw_report__num(d, "router_s"));
    }
    fputc('\n', f);
}

/* Accuracy of bundle (may be NULL) on domain name; oracle picks which. */
static double acc(const json_t *bundle, const char *name, int oracle)
{
    const json_t *d = rw_report__domain_eval(bundle, name);
    return rw_report__num(d, oracle ? "oracle_accuracy" : "accuracy");
}

double rw_report_accuracy(const json_t *results, const char *kind, const char *domain, int oracle)
{
    return acc(rw_report__bundle(results, kind), domain, oracle);
}

static void md_accuracy(FILE *f, const json_t *results)
{
    fputs("## Held-out pairwise accuracy\n\n", f);
    const json_t *b[RW_REPORT_NKINDS];
    const char *cols[2 + 2 * RW_REPORT_NKINDS] = {"domain", "pairs"};
    size_t nc = 2;
    char names[RW_REPORT_NKINDS][32];
    for (int k = 0; k < RW_REPORT_NKINDS; k++) {
        b[k] = rw_report__bundle(results, rw_report__kinds[k]);
        if (!b[k])
            continue;
        cols[nc++] = rw_report__kinds[k];
        if (k >= 2) {
            snprintf(names[k], sizeof names[k], "%s (oracle)", rw_report__kinds[k]);
            cols[nc++] = names[k];
        }
    }
    if (nc == 2) {
        fputs("No bundle was evaluated.\n\n", f);
        return;
    }
    header(f, cols, nc, "l");
    const char **doms;
    size_t nd = rw_report__domains(results, &doms);
    for (size_t i = 0; i < nd; i++) {
        cell(f, doms[i]);
        double pairs = NAN;
        for (int k = 0; k < RW_REPORT_NKINDS && !isfinite(pairs); k++)
            pairs = rw_report__num(rw_report__domain_eval(b[k], doms[i]), "pairs");
        cell_count(f, pairs);
        for (int k = 0; k < RW_REPORT_NKINDS; k++) {
            if (!b[k])
                continue;
            cell_num(f, acc(b[k], doms[i], 0), 3);
            if (k >= 2)
                cell_num(f, acc(b[k], doms[i], 1), 3);
        }
        fputs("|\n", f);
    }
    free(doms);
    cell(f, "**mean**");
    cell(f, "");
    for (int k = 0; k < RW_REPORT_NKINDS; k++) {
        if (!b[k])
            continue;
        const json_t *ev = json_object_get(b[k], "eval");
        cell_num(f, rw_report__num(ev, "mean_accuracy"), 3);
        if (k >= 2)
            cell_num(f, rw_report__num(ev, "mean_oracle_accuracy"), 3);
    }
    fputs("|\n\n", f);
    int said = 0;
    for (int k = 2; k < RW_REPORT_NKINDS; k++) {
        double r = rw_report__num(json_object_get(b[k], "eval"), "route_accuracy");
        if (!b[k] || !isfinite(r))
            continue;
        /* the eval's route_accuracy is a mean over domains, as the table's
         * means are: not the share of all prompts, which weighs the larger
         * domains more (rewire eval --model ROUTER gives both) */
        fprintf(f, "%s%s %.3f",
                said++ ? ", "
                       : "Router accuracy (share of each domain's prompts "
                         "sent to it, mean over domains): ",
                rw_report__kinds[k], r);
    }
    if (said)
        fputs(".\n\n", f);
    fputs("![Per-domain accuracy of each bundle beside the baseline](accuracy.svg)\n\n", f);
}

static void md_params(FILE *f, const json_t *results)
{
    json_t *bundles = rw_report__arr(results, "bundles");
    if (!json_array_size(bundles))
        return;
    fputs("## Parameters\n\n", f);
    static const char *const cols[] = {"bundle", "total", "loaded per pair", "total / baseline"};
    header(f, cols, 4, "l");
    double base = rw_report__num(rw_report__bundle(results, "baseline"), "params_total");
    for (int k = 0; k < RW_REPORT_NKINDS; k++) {
        const json_t *b = rw_report__bundle(results, rw_report__kinds[k]);
        if (!b)
            continue;
        double total = rw_report__num(b, "params_total");
        cell(f, rw_report__kinds[k]);
        cell_count(f, total);
        cell_count(f, rw_report__num(b, "params_per_pair"));
        if (isfinite(total) && isfinite(base) && base > 0)
            cellf(f, "%.2f", total / base);
        else
            cell(f, "n/a");
        fputs("|\n", f);
    }
    double ad = rw_report__num(rw_report__bundle(results, "adapter"), "params_total");
    double ro = rw_report__num(rw_report__bundle(results, "router"), "params_total");
    if (isfinite(ad) && isfinite(ro) && ro > 0) {
        char a[48], r[48];
        fmt_count(a, sizeof a, ad);
        fmt_count(r, sizeof r, ro);
        fprintf(f, "\nThe adapter bundle holds %.2f of the router bundle's parameters (%s / %s).\n",
                ad / ro, a, r);
    }
    fputc('\n', f);
}

static void md_time(FILE *f, const json_t *results)
{
    json_t *stages = rw_report__arr(results, "stages"), *s;
    double wall = rw_report__num(json_object_get(results, "job"), "wall_s");
    if (!json_array_size(stages) && !isfinite(wall))
        return;
    fputs("## Time per stage\n\n", f);
    static const char *const cols[] = {"stage", "seconds"};
    header(f, cols, 2, "l");
    size_t i;
    json_array_foreach(stages, i, s)
    {
        const char *name = rw_report__str(s, "name");
        cell(f, name ? name : "?");
        cell_num(f, rw_report__num(s, "seconds"), 1);
        fputs("|\n", f);
    }
    if (isfinite(wall)) {
        cell(f, "**job (wall)**");
        cell_num(f, wall, 1);
        fputs("|\n", f);
    }
    fputc('\n', f);
}

static void md_workers(FILE *f, const json_t *results)
{
    json_t *workers = rw_report__arr(results, "workers"), *w;
    if (!json_array_size(workers))
        return;
    fputs("## Workers\n\n", f);
    static const char *const cols[] = {"worker", "threads", "tasks", "pairs/s"};
    header(f, cols, 4, "l");
    size_t i;
    json_array_foreach(workers, i, w)
    {
        const char *id = rw_report__str(w, "id");
        cell(f, id ? id : "?");
        cell_num(f, rw_report__num(w, "threads"), 0);
        cell_num(f, rw_report__num(w, "tasks"), 0);
        cell_num(f, rw_report__num(w, "pairs_per_s"), 1);
        fputs("|\n", f);
    }
    fputc('\n', f);
}

static void md_tasks(FILE *f, const json_t *results)
{
    json_t *tasks = rw_report__arr(results, "tasks"), *t;
    if (!json_array_size(tasks))
        return;
    fputs("## Tasks\n\n", f);
    static const char *const cols[] = {"id",      "kind",    "domain", "worker",        "attempts",
                                       "seconds", "pairs/s", "epochs", "train accuracy"};
    header(f, cols, 9, "rlll");
    size_t i;
    json_array_foreach(tasks, i, t)
    {
        cell_num(f, rw_report__num(t, "id"), 0);
        const char *kind = rw_report__str(t, "kind"), *dom = rw_report__str(t, "domain");
        const char *worker = rw_report__str(t, "worker");
        cell(f, kind ? kind : "?");
        cell(f, dom ? dom : "all");
        cell(f, worker ? worker : "?");
        cell_num(f, rw_report__num(t, "attempts"), 0);
        cell_num(f, rw_report__num(t, "seconds"), 1);
        cell_num(f, rw_report__num(t, "pairs_per_s"), 1);
        /* early stopping: the epochs run and the one kept */
        double ep = rw_report__num(t, "epochs"), kept = rw_report__num(t, "kept_epoch");
        if (isfinite(ep) && isfinite(kept) && kept > 0)
            cellf(f, "%.3g (kept %.0f)", ep, kept);
        else
            cell_num(f, ep, 1);
        cell_num(f, rw_report__num(t, "train_accuracy"), 3);
        fputs("|\n", f);
    }
    fputs("\n## Training loss\n\n![Training loss of each task](loss.svg)\n", f);
}

/* report.md as one string (caller frees). */
static char *report_md(const json_t *results)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort(); /* only out of memory */
    md_job(f, results);
    md_accuracy(f, results);
    md_params(f, results);
    md_time(f, results);
    md_workers(f, results);
    md_tasks(f, results);
    fclose(f);
    return buf;
}

__attribute__((format(printf, 4, 5))) static int fail(char *why, size_t whylen, int rc,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && whylen)
        vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return rc;
}

/* Writes text to out_dir/name. */
static int put(const char *out_dir, const char *name, char *text, char *why, size_t whylen)
{
    size_t n = strlen(out_dir) + strlen(name) + 2;
    char *path = rw_malloc(n);
    snprintf(path, n, "%s/%s", out_dir, name);
    int rc = rw_afile_write(path, text, strlen(text));
    if (rc < 0)
        fail(why, whylen, rc, "%s: %s", path, rw_strerror(rc));
    free(path);
    free(text);
    return rc;
}

json_t *rw_report_bundle_entry(const char *dir, char *why, size_t whylen)
{
    json_t *m;
    if (rw_bundle_manifest_read(dir, &m, why, whylen) < 0)
        return NULL;
    json_t *p = json_object_get(m, "params");
    json_t *o = json_pack("{s:O, s:s, s:O, s:O}", "kind", json_object_get(m, "kind"), "path", dir,
                          "params_total", json_object_get(p, "total"), "params_per_pair",
                          json_object_get(p, "per_pair"));
    if (json_object_get(m, "eval"))
        json_object_set(o, "eval", json_object_get(m, "eval"));
    json_decref(m);
    return o;
}

int rw_report_render(const json_t *results, const char *out_dir, char *why, size_t whylen)
{
    if (!json_is_object(results))
        return fail(why, whylen, RW_EINVAL, "the results are not a JSON object");
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        return fail(why, whylen, -errno, "%s: %s", out_dir, strerror(errno));
    char *js = json_dumps(results, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!js)
        abort(); /* only out of memory */
    char *text = rw_malloc(strlen(js) + 2);
    sprintf(text, "%s\n", js);
    free(js);
    int rc = put(out_dir, "report.json", text, why, whylen);
    if (rc == 0)
        rc = put(out_dir, "loss.svg", rw_report_loss_svg(results), why, whylen);
    if (rc == 0)
        rc = put(out_dir, "accuracy.svg", rw_report_accuracy_svg(results), why, whylen);
    if (rc == 0)
        rc = put(out_dir, "report.md", report_md(results), why, whylen);
    return rc;
}
