/* test_report.c — a job's report: markdown tables that carry the results'
 * figures, the results as JSON, and well-formed SVG plots; partial results
 * still render. */
#include "err.h"
#include "report.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

TestSuite(report, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

static const char *const sample =
    "{\"job\": {\"id\": \"j-42\", \"seed\": 7, \"data\": \"hh.jsonl\","
    "  \"domains\": [\"helpful\", \"q&a\"], \"started\": \"2026-11-26T10:00:00Z\", \"wall_s\": "
    "321.5},"
    " \"stages\": [{\"name\": \"prepare\", \"seconds\": 2.25}, {\"name\": \"stage0\", \"seconds\": "
    "100},"
    "  {\"name\": \"stage1\", \"seconds\": 150.5}, {\"name\": \"router\", \"seconds\": 20},"
    "  {\"name\": \"merge\", \"seconds\": 1.5}, {\"name\": \"eval\", \"seconds\": 30}],"
    " \"tasks\": ["
    "  {\"id\": 1, \"kind\": \"seed\", \"domain\": null, \"attempts\": 1, \"worker\": \"w1\","
    "   \"seconds\": 100, \"pairs_per_s\": 850.25, \"steps\": 40, \"epochs\": 2,"
    "   \"loss_curve\": [[0, 0.69], [10, 0.6], [20, 0.55], [30, 0.52], [40, 0.5]],"
    "   \"train_accuracy\": 0.71, \"params\": 1000000},"
    "  {\"id\": 2, \"kind\": \"domain_rm\", \"domain\": \"helpful\", \"attempts\": 2,"
    "   \"worker\": \"w2\", \"seconds\": 50, \"pairs_per_s\": 900, \"epochs\": 5,"
    "   \"kept_epoch\": 3,"
    "   \"loss_curve\": [[0, 0.7], [5, 0.4], [10, 0.35]], \"train_accuracy\": 0.8},"
    "  {\"id\": 3, \"kind\": \"adapter\", \"domain\": \"q&a\", \"attempts\": 1, \"worker\": \"w1\","
    "   \"seconds\": 20, \"pairs_per_s\": 1200.5, \"loss_curve\": []}],"
    " \"workers\": [{\"id\": \"w1\", \"threads\": 4, \"tasks\": 2, \"pairs_per_s\": 1025.4},"
    "  {\"id\": \"w2\", \"threads\": 2, \"tasks\": 1, \"pairs_per_s\": 900}],"
    " \"bundles\": ["
    "  {\"kind\": \"baseline\", \"path\": \"b/baseline\", \"params_total\": 1000000,"
    "   \"params_per_pair\": 1000000, \"eval\": {\"domains\": ["
    "    {\"name\": \"helpful\", \"pairs\": 120, \"accuracy\": 0.6125, \"margin\": 0.2,"
    "     \"oracle_accuracy\": null, \"route_accuracy\": null},"
    "    {\"name\": \"q&a\", \"pairs\": 80, \"accuracy\": 0.5, \"margin\": 0.01,"
    "     \"oracle_accuracy\": null, \"route_accuracy\": null}],"
    "    \"mean_accuracy\": 0.55625, \"mean_oracle_accuracy\": null, \"route_accuracy\": null,"
    "    \"seconds\": 1.5}},"
    "  {\"kind\": \"router\", \"path\": \"b/router\", \"params_total\": 2100000,"
    "   \"params_per_pair\": 1100000, \"eval\": {\"domains\": ["
    "    {\"name\": \"helpful\", \"pairs\": 120, \"accuracy\": 0.675, \"margin\": 0.3,"
    "     \"oracle_accuracy\": 0.7, \"route_accuracy\": 0.95},"
    "    {\"name\": \"q&a\", \"pairs\": 80, \"accuracy\": 0.6375, \"margin\": 0.25,"
    "     \"oracle_accuracy\": 0.65, \"route_accuracy\": 0.9}],"
    "    \"mean_accuracy\": 0.65625, \"mean_oracle_accuracy\": 0.675, \"route_accuracy\": 0.925,"
    "    \"seconds\": 2}},"
    "  {\"kind\": \"adapter\", \"path\": \"b/adapter\", \"params_total\": 1050000,"
    "   \"params_per_pair\": 1030000, \"eval\": {\"domains\": ["
    "    {\"name\": \"helpful\", \"pairs\": 120, \"accuracy\": 0.65, \"margin\": 0.3,"
    "     \"oracle_accuracy\": 0.66, \"route_accuracy\": 0.93}],"
    "    \"mean_accuracy\": 0.65, \"mean_oracle_accuracy\": 0.66, \"route_accuracy\": 0.93,"
    "    \"seconds\": 2}}]}";

/* 1 if text is well-formed enough: tags balanced and properly nested, one
 * <svg> root, attribute values quoted, every '&' an entity. */
static int well_formed(const char *s, char *err, size_t n)
{
    char stack[64][32];
    int depth = 0, roots = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '&') {
            if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) &&
                strncmp(p, "&quot;", 6) && strncmp(p, "&apos;", 6))
                return snprintf(err, n, "bare & at %zu", (size_t)(p - s)), 0;
            continue;
        }
        if (*p != '<')
            continue;
        if (p[1] == '?') {
            p = strstr(p, "?>");
            if (!p)
                return snprintf(err, n, "unclosed <?"), 0;
            p++;
            continue;
        }
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t len = strcspn(name, " \t\n/>");
        if (len == 0 || len >= 32)
            return snprintf(err, n, "bad tag name at %zu", (size_t)(p - s)), 0;
        const char *q = name + len;
        int quote = 0;
        for (; *q && (quote || *q != '>'); q++)
            if (*q == '"')
                quote = !quote;
            else if (*q == '<' && !quote)
                return snprintf(err, n, "'<' inside a tag at %zu", (size_t)(q - s)), 0;
        if (!*q)
            return snprintf(err, n, "unclosed tag"), 0;
        if (closing) {
            if (depth == 0 || strncmp(stack[depth - 1], name, len) || stack[depth - 1][len])
                return snprintf(err, n, "</%.*s> does not close <%s>", (int)len, name,
                                depth ? stack[depth - 1] : "(nothing)"),
                       0;
            depth--;
        } else if (q[-1] != '/') {
            if (depth == 0)
                roots++;
            if (depth == 64)
                return snprintf(err, n, "too deep"), 0;
            snprintf(stack[depth++], 32, "%.*s", (int)len, name);
        } else if (depth == 0) {
            roots++;
        }
        p = q;
    }
    if (depth)
        return snprintf(err, n, "<%s> never closed", stack[depth - 1]), 0;
    if (roots != 1)
        return snprintf(err, n, "%d root elements", roots), 0;
    return 1;
}

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static const char *out_dir; /* where the test rendered */

static char *read_out(const char *name)
{
    char *s = rwt_read_file(rwt_path(out_dir ? out_dir : rwt_dir, name), NULL);
    cr_assert_not_null(s, "%s was not written", name);
    return s;
}

static void assert_svg(const char *name)
{
    char *s = read_out(name), err[128] = "";
    cr_assert(strncmp(s, "<?xml", 5) == 0);
    cr_assert(strstr(s, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    cr_assert(well_formed(s, err, sizeof err), "%s: %s", name, err);
    free(s);
}

static json_t *load_sample(void)
{
    json_error_t jerr;
    json_t *r = json_loads(sample, 0, &jerr);
    cr_assert_not_null(r, "sample: %s (col %d)", jerr.text, jerr.column);
    return r;
}

Test(report, renders_tables_json_and_plots_from_results)
{
    json_t *r = load_sample();
    char why[256] = "";
    char *out = strdup(rwt_path(rwt_dir, "report"));
    cr_assert_eq(rw_report_render(r, out, why, sizeof why), 0, "%s", why);
    out_dir = out;

    char *md = read_out("report.md");
    cr_assert(strstr(md, "# rewire report: job j-42\n"));
    /* accuracy: baseline, router and its oracle, adapter and its oracle */
    cr_assert(strstr(md, "| domain | pairs | baseline | router | router (oracle) | adapter | "
                         "adapter (oracle) |\n"),
              "%s", md);
    cr_assert(strstr(md, "| helpful | 120 | 0.613 | 0.675 | 0.700 | 0.650 | 0.660 |\n"), "%s", md);
    cr_assert(strstr(md, "| q&a | 80 | 0.500 | 0.637 | 0.650 | n/a | n/a |\n") ||
                  strstr(md, "| q&a | 80 | 0.500 | 0.638 | 0.650 | n/a | n/a |\n"),
              "%s", md);
    cr_assert(strstr(md, "| **mean** |  | 0.556 | 0.656 | 0.675 | 0.650 | 0.660 |\n"), "%s", md);
    /* the router's 0.925 is the mean of its domains' 0.95 and 0.9, where
     * the share of all 200 prompts is 0.93: the label says which */
    cr_assert(strstr(md, "Router accuracy (share of each domain's prompts sent to it, mean over "
                         "domains): router 0.925, adapter 0.930.\n"),
              "%s", md);
    /* parameters and the adapter/router ratio */
    cr_assert(strstr(md, "| router | 2,100,000 | 1,100,000 | 2.10 |\n"), "%s", md);
    cr_assert(strstr(md, "| adapter | 1,050,000 | 1,030,000 | 1.05 |\n"), "%s", md);
    cr_assert(strstr(md, "holds 0.50 of the router bundle's parameters (1,050,000 / 2,100,000)"));
    /* time, workers, tasks */
    cr_assert(strstr(md, "| prepare | 2.2 |\n") || strstr(md, "| prepare | 2.3 |\n"), "%s", md);
    cr_assert(strstr(md, "| **job (wall)** | 321.5 |\n"), "%s", md);
    cr_assert(strstr(md, "| w1 | 4 | 2 | 1025.4 |\n"), "%s", md);
    cr_assert(strstr(md, "| 1 | seed | all | w1 | 1 | 100.0 | 850.2 | 2.0 | 0.710 |\n") ||
                  strstr(md, "| 1 | seed | all | w1 | 1 | 100.0 | 850.3 | 2.0 | 0.710 |\n"),
              "%s", md);
    /* stopped early: the epochs run and the one kept; none known: n/a */
    cr_assert(
        strstr(md, "| 2 | domain_rm | helpful | w2 | 2 | 50.0 | 900.0 | 5 (kept 3) | 0.800 |\n"),
        "%s", md);
    cr_assert(strstr(md, "(loss.svg)") && strstr(md, "(accuracy.svg)"));
    free(md);

    char *js = read_out("report.json");
    json_error_t jerr;
    json_t *back = json_loads(js, 0, &jerr);
    cr_assert(json_equal(back, r), "report.json is not the results");
    json_decref(back);
    free(js);

    assert_svg("loss.svg");
    assert_svg("accuracy.svg");
    char *loss = read_out("loss.svg");
    cr_assert_eq(count(loss, "<polyline"), 2); /* the third task has no curve */
    cr_assert(strstr(loss, "domain_rm helpful (task 2)"));
    cr_assert(strstr(loss, ">step<") && strstr(loss, ">loss<"));
    free(loss);
    char *accs = read_out("accuracy.svg");
    cr_assert(strstr(accs, ">q&amp;a</text>"));
    /* bars: baseline 2+mean, router 2+mean, adapter 1+mean */
    cr_assert_eq(count(accs, "<rect x="), 3 + 3 + 2);
    cr_assert(strstr(accs, "<title>router helpful: 0.675</title>"));
    free(accs);
    json_decref(r);
    out_dir = NULL;
    free(out);
}

Test(report, partial_results_still_render)
{
    json_t *r = json_pack("{s:{s:s}}", "job", "id", "empty");
    char why[256] = "";
    cr_assert_eq(rw_report_render(r, rwt_dir, why, sizeof why), 0, "%s", why);
    char *md = read_out("report.md");
    cr_assert(strstr(md, "No bundle was evaluated."));
    free(md);
    assert_svg("loss.svg");
    assert_svg("accuracy.svg");
    char *loss = read_out("loss.svg");
    cr_assert(strstr(loss, "no loss curves"));
    free(loss);
    json_decref(r);

    /* wrong types count as missing */
    r = json_pack("{s:i, s:s, s:[{s:i, s:s}], s:[i]}", "job", 3, "stages", "x", "bundles", "kind",
                  4, "eval", "no", "tasks", 1);
    cr_assert_eq(rw_report_render(r, rwt_dir, why, sizeof why), 0, "%s", why);
    assert_svg("accuracy.svg");
    json_decref(r);
}

Test(report, refuses_what_it_cannot_render)
{
    char why[256] = "";
    json_t *a = json_array();
    cr_assert_eq(rw_report_render(a, rwt_dir, why, sizeof why), RW_EINVAL);
    cr_assert(strstr(why, "not a JSON object"));
    json_decref(a);
    json_t *r = json_object();
    cr_assert_lt(rw_report_render(r, "/nonexistent/dir/report", why, sizeof why), 0);
    cr_assert(strstr(why, "/nonexistent/dir/report"), "%s", why);
    json_decref(r);
}
