/* bundle_cmds.c — what `rewire eval --bundle` and `rewire score --bundle`
 * do with a bundle; the commands parse their arguments and call these.
 *
 * Scoring reads JSON Lines from stdin and answers each good line with one
 * JSON line on stdout, in order, numbered by its input line so answers can
 * be matched to questions even when bad lines are skipped. Lines are scored
 * in blocks, so the bundle batches its forward passes.
 */
#include "cli.h"

#include "bundle.h"
#include "dataset.h"
#include "err.h"
#include "lines.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rw_bundle_t *open_bundle(const char *cmd, const char *path)
{
    rw_bundle_t *b;
    char why[768];
    int rc = rw_bundle_open(path, &b, why, sizeof why);
    if (rc < 0) {
        cli_say(cmd, "bundle %s: %s", path, why);
        return NULL;
    }
    return b;
}

static void print_eval_text(const rw_bundle_t *b, const char *path, const rw_bundle_eval_t *ev,
                            int oracle)
{
    printf("%s bundle %s\n\n%-20s %7s  %8s  %8s", rw_bundle_kind_name(rw_bundle_kind(b)), path,
           "domain", "pairs", "accuracy", "margin");
    if (oracle)
        printf("  %8s  %8s", "oracle", "routing");
    printf("\n");
    size_t pairs = 0;
    for (size_t d = 0; d < ev->n_domains; d++) {
        const rw_bundle_domain_eval_t *x = &ev->domains[d];
        pairs += x->pairs;
        printf("%-20s %7zu  %8.3f  %8.3f", x->name, x->pairs, x->accuracy, x->margin);
        if (oracle) {
            if (x->oracle_accuracy >= 0)
                printf("  %8.3f  %8.3f", x->oracle_accuracy, x->route_accuracy);
            else
                printf("  %8s  %8s", "-", "-");
        }
        printf("\n");
    }
    printf("%-20s %7zu  %8.3f  %8s", "mean", pairs, ev->mean_accuracy, "");
    if (oracle && ev->mean_oracle_accuracy >= 0)
        printf("  %8.3f  %8.3f", ev->mean_oracle_accuracy, ev->route_accuracy);
    printf("\n\n%.2f s\n", ev->seconds);
}

int cli_eval_bundle(const char *path, const char *const *data, size_t ndata, int json, int oracle)
{
    rw_bundle_t *b = open_bundle("eval", path);
    if (!b)
        return 1;
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    int status = cli_read_data("eval", data, ndata, &ds);
    if (status)
        goto done;
    size_t held = 0;
    for (size_t i = 0; i < ds.n; i++)
        held += ds.pairs[i].split == RW_SPLIT_EVAL;
    if (held == 0) {
        cli_say("eval", "the data has no eval split; evaluating all %zu pairs", ds.n);
        for (size_t i = 0; i < ds.n; i++)
            ds.pairs[i].split = RW_SPLIT_EVAL;
    }
    rw_bundle_eval_t ev;
    int rc = rw_bundle_eval(b, &ds, RW_SPLIT_EVAL, &ev);
    if (rc < 0) {
        cli_say("eval", "%s: %s", path, rw_strerror(rc));
        status = 1;
        goto done;
    }
    if (json) {
        json_t *o =
            json_pack("{s:s, s:s}", "bundle", path, "kind", rw_bundle_kind_name(rw_bundle_kind(b)));
        json_t *e = rw_bundle_eval_json(&ev);
        json_object_update(o, e);
        json_decref(e);
        cli_print_json(o);
        json_decref(o);
    } else {
        print_eval_text(b, path, &ev, oracle);
    }
    rw_bundle_eval_fini(&ev);
done:
    rw_dataset_fini(&ds);
    rw_bundle_destroy(&b);
    return status;
}

/* Lines scored together. */
#define SCORE_BLOCK 64

/* A good input line: one response, or a chosen and a rejected one. */
typedef struct sline {
    long line;
    json_t *rec; /* owned; the strings below point into it */
    const char *prompt, *a, *b;
    size_t np, na, nb;
    int pair;
} sline_t;

/* Checks rec; fills l or returns why not. */
static const char *take_line(json_t *rec, sline_t *l)
{
    if (!json_is_object(rec))
        return "not a JSON object";
    json_t *p = json_object_get(rec, "prompt"), *r = json_object_get(rec, "response");
    json_t *c = json_object_get(rec, "chosen"), *j = json_object_get(rec, "rejected");
    if (!json_is_string(p))
        return "\"prompt\" must be a string";
    if (r && (c || j))
        return "give \"response\", or \"chosen\" and \"rejected\", not both";
    if (!r && !(c && j))
        return "needs \"response\", or \"chosen\" and \"rejected\"";
    if ((r && !json_is_string(r)) || (c && !json_is_string(c)) || (j && !json_is_string(j)))
        return "\"response\", \"chosen\" and \"rejected\" must be strings";
    l->rec = rec;
    l->prompt = json_string_value(p);
    l->np = json_string_length(p);
    l->pair = r == NULL;
    json_t *x = r ? r : c;
    l->a = json_string_value(x);
    l->na = json_string_length(x);
    l->b = j ? json_string_value(j) : NULL;
    l->nb = j ? json_string_length(j) : 0;
    return NULL;
}

/* Scores lines[0..n) and prints their answers. Returns 0 or an error. */
static int score_block(rw_bundle_t *b, sline_t *lines, size_t n)
{
    const char *pr[2 * SCORE_BLOCK] = {0}, *re[2 * SCORE_BLOCK] = {0};
    size_t pl[2 * SCORE_BLOCK] = {0}, rl[2 * SCORE_BLOCK] = {0}, k = 0;
    double r[2 * SCORE_BLOCK];
    int route[2 * SCORE_BLOCK];
    for (size_t i = 0; i < n; i++) {
        pr[k] = lines[i].prompt, pl[k] = lines[i].np, re[k] = lines[i].a, rl[k++] = lines[i].na;
        if (lines[i].pair)
            pr[k] = lines[i].prompt, pl[k] = lines[i].np, re[k] = lines[i].b, rl[k++] = lines[i].nb;
    }
    int rc = rw_bundle_score(b, pr, pl, re, rl, k, NULL, r, route);
    k = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *o = json_object(), *id = json_object_get(lines[i].rec, "id");
        if (id) /* as score --model: the input's id comes back */
            json_object_set(o, "id", id);
        json_object_set_new(o, "line", json_integer((json_int_t)lines[i].line));
        int d = route[k];
        if (lines[i].pair) {
            json_object_set_new(o, "chosen_reward", cli_json_num(r[k]));
            json_object_set_new(o, "rejected_reward", cli_json_num(r[k + 1]));
            json_object_set_new(o, "margin", cli_json_num(r[k] - r[k + 1]));
            k += 2;
        } else {
            json_object_set_new(o, "reward", cli_json_num(r[k++]));
        }
        json_object_set_new(o, "domain",
                            d >= 0 ? json_string(rw_bundle_domain(b, (size_t)d)) : json_null());
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        printf("%s\n", s);
        free(s);
        json_decref(o);
    }
    for (size_t i = 0; i < n; i++)
        json_decref(lines[i].rec);
    fflush(stdout);
    return rc;
}

int cli_score_bundle(const char *path, int json)
{
    (void)json; /* answers are JSON Lines either way */
    rw_bundle_t *b = open_bundle("score", path);
    if (!b)
        return 1;
    rw_lines_t *in = cli_stdin_lines("score");
    if (!in) {
        rw_bundle_destroy(&b);
        return 1;
    }
    sline_t lines[SCORE_BLOCK];
    size_t n = 0, bad = 0, good = 0, len;
    long lineno = 0;
    const char *buf;
    int rc = 0, more;
    while (rc == 0 && (more = cli_stdin_next(in, "score", &buf, &len, &lineno, &bad)) > 0) {
        if (strspn(buf, " \t\r") == len)
            continue; /* blank */
        json_error_t jerr;
        json_t *rec = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        const char *why = rec ? take_line(rec, &lines[n]) : NULL;
        if (!rec || why) {
            fprintf(stderr, "stdin:%ld: %s%s%s\n", lineno, rec ? why : "not JSON (",
                    rec ? "" : jerr.text, rec ? "" : ")");
            json_decref(rec);
            bad++;
            continue;
        }
        lines[n++].line = lineno;
        good++;
        if (n == SCORE_BLOCK) {
            rc = score_block(b, lines, n);
            n = 0;
        }
    }
    bool read_err = rc == 0 && more < 0; /* said; every line before it is answered */
    if (rc == 0 && n)
        rc = score_block(b, lines, n);
    rw_lines_destroy(&in);
    if (rc < 0)
        cli_say("score", "%s: %s", path, rw_strerror(rc));
    else if (bad && !read_err)
        cli_say("score", "%zu line(s) scored, %zu skipped", good, bad);
    rw_bundle_destroy(&b);
    return rc < 0 || read_err || bad ? 1 : 0;
}
