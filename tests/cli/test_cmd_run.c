/* test_cmd_run.c — `rewire run`, `data stats` and `tokenizer` from the outside. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

TestSuite(cli_run, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

static int run(char **out, char **err, const char *fmt, const char *a, const char *b)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, rwt_bin("rewire"), a, b);
    return rwt_run(cmd, out, err);
}

Test(cli_run, default_job_on_synthetic_data)
{
    char *out, *err;
    cr_assert_eq(run(&out, &err, "%s run --out %s --pairs-per-domain 100%s", rwt_dir, ""), 0, "%s",
                 err);
    for (const char *d = "arithmetic\0compliance\0concise\0detailed\0safety\0"; *d;
         d += strlen(d) + 1)
        cr_assert(strstr(out, d), "domain %s missing from:\n%s", d, out);
    cr_assert(strstr(out, "tokenizer:"));
    free(out), free(err);
    cr_assert_eq(run(&out, &err, "%s run --out %s --pairs-per-domain 100 --json%s", rwt_dir, ""),
                 0);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(j, "not JSON:\n%s", out);
    cr_assert_eq(json_integer_value(json_object_get(j, "pairs")), 500);
    json_decref(j);
    free(out), free(err);
}

Test(cli_run, usage_errors_exit_2)
{
    char *err;
    cr_assert_eq(run(NULL, &err, "%s run%s%s", "", ""), 2);
    cr_assert(strstr(err, "--out"), "%s", err);
    free(err);
    cr_assert_eq(run(NULL, &err, "%s run --out %s --vocab 5%s", rwt_dir, ""), 2);
    cr_assert(strstr(err, "--vocab"), "%s", err);
    free(err);
    cr_assert_eq(run(NULL, &err, "%s run --out %s --bogus%s", rwt_dir, ""), 2);
    free(err);
    cr_assert_eq(run(NULL, NULL, "%s run --help%s%s", "", ""), 0);
}

Test(cli_run, stats_and_tokenizer_commands)
{
    char *out, *err, data[600], tok[600];
    snprintf(data, sizeof data, "%s/d.jsonl", rwt_dir);
    snprintf(tok, sizeof tok, "%s/tok.json", rwt_dir);
    cr_assert_eq(run(NULL, NULL, "%s data gen -o %s --pairs-per-domain 50%s", data, ""), 0);
    cr_assert_eq(run(&out, &err, "%s data stats %s --vocab 1000 --json%s", data, ""), 0, "%s", err);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(j, "not JSON:\n%s", out);
    cr_assert_eq(json_array_size(json_object_get(j, "domains")), 5);
    json_decref(j);
    free(out), free(err);
    cr_assert_eq(run(NULL, &err, "%s tokenizer train %s -o %s --vocab 1000", data, tok), 0, "%s",
                 err);
    free(err);
    cr_assert_eq(run(&out, NULL, "%s tokenizer encode --tokenizer %s 'What is 2 + 2?'%s", tok, ""),
                 0);
    char ids[512];
    snprintf(ids, sizeof ids, "%s", out);
    ids[strcspn(ids, "\n")] = '\0';
    free(out);
    cr_assert_eq(run(&out, NULL, "%s tokenizer decode --tokenizer %s %s", tok, ids), 0);
    cr_assert_str_eq(out, "What is 2 + 2?\n");
    free(out);
    cr_assert_eq(
        run(NULL, &err, "%s tokenizer encode --tokenizer %s/missing.json x%s", rwt_dir, ""), 1);
    cr_assert(strstr(err, "missing.json"), "%s", err);
    free(err);
    cr_assert_eq(run(NULL, &err, "%s data stats %s/none.jsonl%s", rwt_dir, ""), 1);
    free(err);
}
