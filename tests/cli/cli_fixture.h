/* cli_fixture.h — running `rewire` in a test's folder, for the train, eval
 * and score tests: synthetic data and tiny models that train in a second. */
#ifndef RW_TEST_CLI_FIXTURE_H
#define RW_TEST_CLI_FIXTURE_H

#include "support.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A model small enough to train on 500 pairs in well under a second. */
#define TINY "--d-model 32 --layers 1 --heads 2 --max-len 64 --vocab 1000 --threads 2"

/* Runs `rewire ARGS` (printf-formatted) in rwt_dir; returns the exit status
 * with stdout and stderr in *out and *err (caller frees; either may be
 * NULL). */
static int rw(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rw(char **out, char **err, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", rwt_dir, rwt_bin("rewire"), args);
    char *o = NULL, *e = NULL;
    int st = rwt_run(cmd, &o, &e);
    if (out)
        *out = o;
    else
        free(o);
    if (err)
        *err = e;
    else
        free(e);
    return st;
}

/* Runs `rewire ARGS` and asserts it exits 0; returns its stdout parsed as
 * JSON (caller decrefs) when json is set, else NULL. */
static json_t *rw_ok(int json, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *rw_ok(int json, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char *out, *err;
    int st = rw(&out, &err, "%s", args);
    cr_assert_eq(st, 0, "rewire %s exited %d:\n%s", args, st, err);
    json_t *v = NULL;
    if (json) {
        json_error_t jerr;
        v = json_loads(out, 0, &jerr);
        cr_assert(v, "rewire %s: stdout is not JSON (%s):\n%s", args, jerr.text, out);
    }
    free(out);
    free(err);
    return v;
}

/* Runs `rewire ARGS` and asserts it exits with status; returns its stderr
 * (caller frees). */
__attribute__((unused)) static char *rw_exits(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
__attribute__((unused)) static char *rw_exits(int status, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char *err;
    int st = rw(NULL, &err, "%s", args);
    cr_assert_eq(st, status, "rewire %s exited %d, not %d:\n%s", args, st, status, err);
    return err;
}

/* The synthetic five domains, 100 pairs each, as rwt_dir/syn.jsonl. */
__attribute__((unused)) static void gen_data(void)
{
    json_decref(rw_ok(0, "data gen --pairs-per-domain 100 --seed 7 -o syn.jsonl"));
}

/* A per-domain entry of an eval report, or NULL. */
__attribute__((unused)) static json_t *report_domain(json_t *report, const char *name)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(report, "domains"), i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "name")), name) == 0)
            return d;
    }
    return NULL;
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_number(v), "no number %s", key);
    return json_number_value(v);
}

#endif
