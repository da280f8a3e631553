/* test_cmd_inspect.c — `rewire inspect` run as a user runs it: what it says
 * of a good bundle, in text and JSON, and how it names a damaged file. */
#include "support.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

TestSuite(cmd_inspect, .init = setup, .fini = teardown);

typedef struct run {
    int status;
    char *out, *err;
} run_t;

static run_t inspect(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' inspect %s", rwt_bin("rewire"), args);
    run_t r;
    r.status = rwt_run(cmd, &r.out, &r.err);
    cr_assert(r.out && r.err);
    return r;
}

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

Test(cmd_inspect, describes_a_router_bundle)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s", bfx_write(&F, RW_BUNDLE_ROUTER, "router"));
    run_t r = inspect(dir);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, "kind        router\n"), "%s", r.out);
    cr_assert(strstr(r.out, "domains     3: alpha, beta, gamma\n"), "%s", r.out);
    cr_assert(strstr(r.out, "loaded to score one pair"));
    cr_assert(strstr(r.out, "classifier of 3, V "), "%s", r.out);
    cr_assert(strstr(r.out, "reward head, V "), "%s", r.out);
    cr_assert(strstr(r.out, "domain-gamma.safetensors"));
    cr_assert(strstr(r.out, "job_id             fixture\n"), "%s", r.out);
    cr_assert(strstr(r.out, "evaluation  none recorded"));
    /* every file verified */
    const char *names[] = {"tokenizer.json", "router.safetensors", "domain-alpha.safetensors",
                           "domain-beta.safetensors", "domain-gamma.safetensors"};
    for (size_t i = 0; i < 5; i++) {
        const char *line = strstr(r.out, names[i]);
        line = line ? strstr(line, "bytes  xxh64 ") : NULL;
        cr_assert(line, "no file line for %s", names[i]);
        const char *end = strchr(line, '\n');
        cr_assert(end && end - line > 4 && strncmp(end - 2, "OK", 2) == 0, "%s not OK", names[i]);
    }
    run_free(&r);
}

Test(cmd_inspect, json_holds_the_manifest_and_each_files_verdict)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s", bfx_write(&F, RW_BUNDLE_ADAPTER, "adapter"));
    char args[800];
    snprintf(args, sizeof args, "'%s' --json", dir);
    run_t r = inspect(args);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    json_error_t jerr;
    json_t *o = json_loads(r.out, 0, &jerr);
    cr_assert_not_null(o, "not JSON: %s\n%s", jerr.text, r.out);
    cr_assert(json_is_true(json_object_get(o, "ok")));
    cr_assert_str_eq(json_string_value(json_object_get(o, "path")), dir);
    json_t *m = json_object_get(o, "manifest");
    cr_assert_str_eq(json_string_value(json_object_get(m, "kind")), "adapter");
    json_t *files = json_object_get(o, "files"), *f;
    size_t i;
    cr_assert_eq(json_array_size(files), 3 + BFX_ND); /* tokenizer, base, router adapter */
    json_array_foreach(files, i, f) cr_assert(json_is_true(json_object_get(f, "ok")));
    json_decref(o);
    run_free(&r);
}

Test(cmd_inspect, names_the_file_that_fails_and_exits_1)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s", bfx_write(&F, RW_BUNDLE_ROUTER, "router"));
    const char *victim = rwt_path(dir, "domain-alpha.safetensors");
    size_t n;
    char *data = rwt_read_file(victim, &n);
    data[n - 1] ^= 0x40;
    cr_assert_eq(rwt_write_file(victim, data, n), 0);
    free(data);
    run_t r = inspect(dir);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "domain-alpha.safetensors: checksum"), "stderr: %s", r.err);
    const char *line = strstr(r.out, "\nfiles\n");
    line = line ? strstr(line, "domain-alpha.safetensors") : NULL;
    cr_assert(line && strstr(line, "FAILED: checksum") < strchr(line, '\n'), "%s", r.out);
    cr_assert(strstr(r.out, "domain-beta.safetensors"));
    run_free(&r);

    char args[800];
    snprintf(args, sizeof args, "'%s' --json", dir);
    r = inspect(args);
    cr_assert_eq(r.status, 1);
    json_error_t jerr;
    json_t *o = json_loads(r.out, 0, &jerr);
    cr_assert_not_null(o);
    cr_assert(json_is_false(json_object_get(o, "ok")));
    json_t *f = json_array_get(json_object_get(o, "files"), 2);
    cr_assert_str_eq(json_string_value(json_object_get(f, "name")), "domain-alpha.safetensors");
    cr_assert(json_is_false(json_object_get(f, "ok")));
    cr_assert(strstr(json_string_value(json_object_get(f, "error")), "checksum"));
    json_decref(o);
    run_free(&r);

    /* a malformed manifest: nothing to describe, the reason on stderr */
    cr_assert_eq(rwt_write_file(rwt_path(dir, "manifest.json"), "{\"format\": 1}", 13), 0);
    r = inspect(dir);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "manifest.json: \"format\""), "stderr: %s", r.err);
    run_free(&r);
}

Test(cmd_inspect, shows_recorded_evaluations_and_usage_errors)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s", bfx_write(&F, RW_BUNDLE_ROUTER, "router"));
    rw_bundle_t *b;
    char why[256];
    cr_assert_eq(rw_bundle_open(dir, &b, why, sizeof why), 0, "%s", why);
    rw_bundle_eval_t ev;
    cr_assert_eq(rw_bundle_eval(b, &F.ds, RW_SPLIT_EVAL, &ev), 0);
    cr_assert_eq(rw_bundle_record_eval(dir, &ev), 0);
    run_t r = inspect(dir);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    char want[128];
    snprintf(want, sizeof want, "  alpha                     12  %8.3f", ev.domains[0].accuracy);
    cr_assert(strstr(r.out, want), "no '%s' in\n%s", want, r.out);
    cr_assert(strstr(r.out, "   1.000\n"), "%s", r.out); /* perfect routing */
    run_free(&r);
    rw_bundle_eval_fini(&ev);
    rw_bundle_destroy(&b);

    r = inspect("");
    cr_assert_eq(r.status, 2);
    run_free(&r);
    r = inspect("--frobnicate x");
    cr_assert_eq(r.status, 2);
    run_free(&r);
    r = inspect("--help");
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "usage: rewire inspect PATH"));
    run_free(&r);
    r = inspect(rwt_path(rwt_dir, "nothing-here"));
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "No such file"), "%s", r.err);
    run_free(&r);
}
