/* test_bundle_cmds.c — what `rewire eval --bundle` and `rewire score
 * --bundle` do: called as the commands call them, stdin and stdout being
 * files (each Criterion test runs in a process of its own). */
#include "cli.h"
#include "dataset.h"
#include "support.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bundle_fixture.h"

static bfx_t F;

static void setup(void)
{
    rwt_dir_setup();
    bfx_build(&F, rwt_dir);
}

static void teardown(void)
{
    bfx_free(&F);
    rwt_dir_teardown();
}

TestSuite(bundle_cmds, .init = setup, .fini = teardown);

/* Runs fn with stdin from `in` (may be NULL) and stdout and stderr into
 * files; returns its status, *out and *err the text (caller frees). */
static int capture(int (*fn)(void *), void *ctx, const char *in, char **out, char **err)
{
    char op[700], ep[700];
    snprintf(op, sizeof op, "%s/stdout.txt", rwt_dir);
    snprintf(ep, sizeof ep, "%s/stderr.txt", rwt_dir);
    if (in) {
        char ip[700];
        snprintf(ip, sizeof ip, "%s/stdin.txt", rwt_dir);
        cr_assert_eq(rwt_write_file(ip, in, strlen(in)), 0);
        cr_assert_not_null(freopen(ip, "r", stdin));
    }
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644),
        fe = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    int status = fn(ctx);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(fo), close(fe), close(so), close(se);
    *out = rwt_read_file(op, NULL);
    *err = rwt_read_file(ep, NULL);
    return status;
}

typedef struct args {
    const char *path;
    const char *const *data;
    size_t ndata;
    int json, oracle;
} args_t;

static int do_eval(void *ctx)
{
    args_t *a = ctx;
    return cli_eval_bundle(a->path, a->data, a->ndata, a->json, a->oracle);
}

static int do_score(void *ctx)
{
    args_t *a = ctx;
    return cli_score_bundle(a->path, a->json);
}

Test(bundle_cmds, eval_prints_the_bundles_figures)
{
    char dir[700], data[700];
    snprintf(dir, sizeof dir, "%s", bfx_write(&F, RW_BUNDLE_ROUTER, "router"));
    snprintf(data, sizeof data, "%s/data.jsonl", rwt_dir);
    cr_assert_eq(rw_dataset_save(&F.ds, data), 0);
    rw_bundle_t *b;
    char why[256];
    cr_assert_eq(rw_bundle_open(dir, &b, why, sizeof why), 0);
    rw_bundle_eval_t ev;
    cr_assert_eq(rw_bundle_eval(b, &F.ds, RW_SPLIT_EVAL, &ev), 0);
    rw_bundle_destroy(&b);

    const char *files[] = {data};
    args_t a = {dir, files, 1, 1, 0};
    char *out, *err;
    cr_assert_eq(capture(do_eval, &a, NULL, &out, &err), 0, "stderr: %s", err);
    json_error_t jerr;
    json_t *o = json_loads(out, 0, &jerr);
    cr_assert_not_null(o, "%s: %s", jerr.text, out);
    cr_assert_str_eq(json_string_value(json_object_get(o, "kind")), "router");
    cr_assert_eq(json_array_size(json_object_get(o, "domains")), BFX_ND);
    cr_assert_float_eq(json_number_value(json_object_get(o, "mean_accuracy")), ev.mean_accuracy,
                       1e-5);
    cr_assert_float_eq(json_number_value(json_object_get(o, "route_accuracy")), 1.0, 1e-9);
    json_decref(o);
    free(out);
    free(err);

    a.json = 0;
    a.oracle = 1;
    cr_assert_eq(capture(do_eval, &a, NULL, &out, &err), 0, "stderr: %s", err);
    char want[160];
    snprintf(want, sizeof want, "%-20s %7d  %8.3f  %8.3f  %8.3f  %8.3f\n", "beta", BFX_PAIRS,
             ev.domains[1].accuracy, ev.domains[1].margin, ev.domains[1].oracle_accuracy, 1.0);
    cr_assert(strstr(out, want), "no '%s' in\n%s", want, out);
    free(out);
    free(err);
    rw_bundle_eval_fini(&ev);

    a.path = rwt_path(rwt_dir, "no-bundle");
    cr_assert_eq(capture(do_eval, &a, NULL, &out, &err), 1);
    cr_assert(strstr(err, "no-bundle"), "%s", err);
    free(out);
    free(err);
}

Test(bundle_cmds, score_answers_each_line_and_skips_bad_ones)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s", bfx_write(&F, RW_BUNDLE_ROUTER, "router"));
    const rw_pair_t *p0 = &F.ds.pairs[0], *p1 = &F.ds.pairs[BFX_PAIRS + 1];
    char in[4096];
    snprintf(in, sizeof in,
             "{\"prompt\": \"%s\", \"response\": \"%s\"}\n"
             "not json\n"
             "\n"
             "{\"prompt\": \"%s\", \"chosen\": \"%s\", \"rejected\": \"%s\", \"domain\": \"x\"}\n"
             "{\"prompt\": 3, \"response\": \"a\"}\n"
             "{\"prompt\": \"p\"}\n"
             "[1, 2]\n",
             p0->prompt, p0->chosen, p1->prompt, p1->chosen, p1->rejected);
    args_t a = {dir, NULL, 0, 1, 0};
    char *out, *err;
    cr_assert_eq(capture(do_score, &a, in, &out, &err), 1); /* some lines were bad */
    cr_assert(strstr(err, "stdin:2: not JSON"), "%s", err);
    cr_assert(strstr(err, "stdin:5: \"prompt\" must be a string"), "%s", err);
    cr_assert(strstr(err, "stdin:6: needs \"response\""), "%s", err);
    cr_assert(strstr(err, "stdin:7: not a JSON object"), "%s", err);
    cr_assert(strstr(err, "2 line(s) scored, 4 skipped"), "%s", err);
    cr_assert_null(strstr(err, "stdin:3"), "a blank line is no error");

    /* the answers: line 1 one reward, line 4 a pair, both routed right */
    rw_bundle_t *b;
    char why[256];
    cr_assert_eq(rw_bundle_open(dir, &b, why, sizeof why), 0);
    const char *pr[3] = {p0->prompt, p1->prompt, p1->prompt};
    const char *re[3] = {p0->chosen, p1->chosen, p1->rejected};
    size_t pl[3], rl[3];
    for (int i = 0; i < 3; i++)
        pl[i] = strlen(pr[i]), rl[i] = strlen(re[i]);
    double r[3];
    int route[3];
    cr_assert_eq(rw_bundle_score(b, pr, pl, re, rl, 3, NULL, r, route), 0);
    rw_bundle_destroy(&b);
    char *nl = strchr(out, '\n');
    cr_assert_not_null(nl);
    *nl = 0;
    json_error_t jerr;
    json_t *o1 = json_loads(out, 0, &jerr), *o2 = json_loads(nl + 1, 0, &jerr);
    cr_assert(o1 && o2, "%s", out);
    cr_assert_eq(json_integer_value(json_object_get(o1, "line")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(o1, "domain")), "alpha");
    cr_assert_float_eq(json_number_value(json_object_get(o1, "reward")), r[0], 1e-6);
    cr_assert_eq(json_integer_value(json_object_get(o2, "line")), 4);
    cr_assert_str_eq(json_string_value(json_object_get(o2, "domain")), "beta");
    cr_assert_float_eq(json_number_value(json_object_get(o2, "chosen_reward")), r[1], 1e-6);
    cr_assert_float_eq(json_number_value(json_object_get(o2, "rejected_reward")), r[2], 1e-6);
    cr_assert_float_eq(json_number_value(json_object_get(o2, "margin")), r[1] - r[2], 1e-6);
    json_decref(o1);
    json_decref(o2);
    free(out);
    free(err);
    /* stdin that cannot be read (a folder) is an error, not an empty input */
    cr_assert_not_null(freopen(rwt_dir, "r", stdin));
    cr_assert_eq(capture(do_score, &a, NULL, &out, &err), 1);
    cr_assert(strstr(err, "stdin: cannot read line 1: Is a directory"), "%s", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);
}

Test(bundle_cmds, score_of_many_lines_goes_in_blocks_in_order)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s", bfx_write(&F, RW_BUNDLE_MOE, "moe"));
    size_t n = 150, cap = 64 * 1024, k = 0;
    char *in = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        const rw_pair_t *p = &F.ds.pairs[i % F.ds.n];
        k += (size_t)snprintf(in + k, cap - k, "{\"prompt\": \"%s\", \"response\": \"%s\"}\n",
                              p->prompt, p->chosen);
    }
    args_t a = {dir, NULL, 0, 0, 0};
    char *out, *err;
    cr_assert_eq(capture(do_score, &a, in, &out, &err), 0, "stderr: %s", err);
    size_t lines = 0;
    for (char *s = out, *e; (e = strchr(s, '\n')); s = e + 1, lines++) {
        *e = 0;
        json_error_t jerr;
        json_t *o = json_loads(s, 0, &jerr);
        cr_assert_not_null(o);
        cr_assert_eq(json_integer_value(json_object_get(o, "line")), (json_int_t)lines + 1);
        cr_assert(json_is_null(json_object_get(o, "domain")));
        json_decref(o);
    }
    cr_assert_eq(lines, n);
    free(in);
    free(out);
    free(err);
}

/* The commands a user types reach the same code. */
Test(bundle_cmds, rewire_eval_and_score_take_a_bundle)
{
    char dir[700], data[700], cmd[2400];
    snprintf(dir, sizeof dir, "%s", bfx_write(&F, RW_BUNDLE_ADAPTER, "adapter"));
    snprintf(data, sizeof data, "%s/data.jsonl", rwt_dir);
    cr_assert_eq(rw_dataset_save(&F.ds, data), 0);
    char *out, *err;
    snprintf(cmd, sizeof cmd, "%s eval --bundle %s --data %s --json", rwt_bin("rewire"), dir, data);
    cr_assert_eq(rwt_run(cmd, &out, &err), 0, "%s", err);
    json_t *o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(o, "kind")), "adapter");
    json_decref(o);
    free(out), free(err);
    snprintf(
        cmd, sizeof cmd,
        "printf '%%s\\n' '{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"id\":\"q7\"}' | "
        "%s score --bundle %s",
        rwt_bin("rewire"), dir);
    cr_assert_eq(rwt_run(cmd, &out, &err), 0, "%s", err);
    o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "%s", out);
    cr_assert(json_is_number(json_object_get(o, "chosen_reward")), "%s", out);
    cr_assert(json_is_string(json_object_get(o, "domain")), "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(o, "id")), "q7", "the id comes back: %s",
                     out);
    json_decref(o);
    free(out), free(err);
    snprintf(cmd, sizeof cmd, "%s eval --bundle %s --model x --data %s", rwt_bin("rewire"), dir,
             data);
    cr_assert_eq(rwt_run(cmd, NULL, NULL), 2, "a bundle and a model at once is bad usage");
    /* a model's options are refused with a bundle, not ignored */
    const char *for_models[] = {"--split train", "--domain concise", "--batch 8", "--threads 1"};
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "%s eval --bundle %s --data %s %s", rwt_bin("rewire"), dir, data,
                 for_models[i]);
        cr_assert_eq(rwt_run(cmd, NULL, NULL), 2, "eval --bundle %s", for_models[i]);
    }
    const char *for_score[] = {"--batch 8", "--threads 1", "--base x"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "%s score --bundle %s %s </dev/null", rwt_bin("rewire"), dir,
                 for_score[i]);
        cr_assert_eq(rwt_run(cmd, NULL, NULL), 2, "score --bundle %s", for_score[i]);
    }
}

/* A model and the bundle it is in are judged alike, with the same keys. */
Test(bundle_cmds, eval_of_a_model_and_of_its_bundle_agree_key_for_key)
{
    char dir[700], data[700], cmd[2400];
    snprintf(dir, sizeof dir, "%s", bfx_write(&F, RW_BUNDLE_BASELINE, "baseline"));
    snprintf(data, sizeof data, "%s/data.jsonl", rwt_dir);
    cr_assert_eq(rw_dataset_save(&F.ds, data), 0);
    json_t *r[2];
    for (int k = 0; k < 2; k++) {
        char *out, *err;
        snprintf(cmd, sizeof cmd, "%s eval %s %s%s --data %s --json", rwt_bin("rewire"),
                 k ? "--bundle" : "--model", dir, k ? "" : "/model.safetensors", data);
        cr_assert_eq(rwt_run(cmd, &out, &err), 0, "%s", err);
        cr_assert_not_null(r[k] = json_loads(out, 0, NULL), "%s", out);
        free(out), free(err);
    }
    json_t *dm = json_object_get(r[0], "domains"), *db = json_object_get(r[1], "domains");
    cr_assert_eq(json_array_size(dm), BFX_ND);
    cr_assert_eq(json_array_size(db), BFX_ND);
    cr_assert_float_eq(json_number_value(json_object_get(r[0], "mean_accuracy")),
                       json_number_value(json_object_get(r[1], "mean_accuracy")), 1e-6);
    static const char *const keys[] = {"pairs", "accuracy", "margin"};
    for (size_t i = 0; i < BFX_ND; i++) {
        json_t *a = json_array_get(dm, i), *b = json_array_get(db, i);
        cr_assert_str_eq(json_string_value(json_object_get(a, "name")),
                         json_string_value(json_object_get(b, "name")));
        for (int k = 0; k < 3; k++) {
            json_t *x = json_object_get(a, keys[k]), *y = json_object_get(b, keys[k]);
            cr_assert(json_is_number(x) && json_is_number(y), "domain %zu: %s", i, keys[k]);
            cr_assert_float_eq(json_number_value(x), json_number_value(y), 1e-4, "domain %zu: %s",
                               i, keys[k]);
        }
    }
    json_decref(r[0]);
    json_decref(r[1]);
}
