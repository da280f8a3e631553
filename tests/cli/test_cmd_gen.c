/* test_cmd_gen.c — `rewire data gen`: the JSON Lines it writes, its
 * determinism, its summary, and its usage errors. Runs the built binary. */
#include "support.h"
#include "svc_support.h"
#include "synth.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs `rewire data gen ARGS` with OUT standing for dir/out.jsonl; returns
 * the exit status, output in *out and *err (caller frees; either may be
 * NULL). */
static int gen(const char *dir, const char *args, char **out, char **err)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' data gen -o '%s' %s", rwt_bin("rewire"),
             rwt_path(dir, "out.jsonl"), args);
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

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return n;
}

/* Checks every line of text is a JSON object of exactly the four string
 * fields with a known domain; returns the number of lines and counts each
 * domain (in rw_synth_domains order) into per_domain. */
static size_t check_lines(char *text, size_t *per_domain)
{
    const char *const *names;
    size_t nd = rw_synth_domains(&names), lines = 0;
    cr_assert(text[0] && text[strlen(text) - 1] == '\n', "the file ends a line");
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), lines++) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        cr_assert(json_is_object(o), "line %zu: %s", lines + 1, jerr.text);
        cr_assert_eq(json_object_size(o), 5);
        const char *keys[5] = {"prompt", "chosen", "rejected", "domain", "split"};
        for (int k = 0; k < 5; k++) {
            json_t *v = json_object_get(o, keys[k]);
            cr_assert(json_is_string(v) && json_string_length(v) > 0, "line %zu: %s", lines + 1,
                      keys[k]);
        }
        const char *dom = json_string_value(json_object_get(o, "domain"));
        size_t d = 0;
        while (d < nd && strcmp(names[d], dom) != 0)
            d++;
        cr_assert_lt(d, nd, "unknown domain %s", dom);
        per_domain[d]++;
        json_decref(o);
    }
    return lines;
}

Test(cmd_gen, writes_json_lines_with_the_four_fields)
{
    char *dir = rwt_tmpdir();
    char *err = NULL;
    cr_assert_eq(gen(dir, "--seed 3 --pairs-per-domain 20", NULL, &err), 0, "%s", err);
    cr_assert(strstr(err, "wrote 100 pairs"), "%s", err);
    char *text = rwt_read_file(rwt_path(dir, "out.jsonl"), NULL);
    cr_assert_not_null(text);
    size_t per[8] = {0};
    cr_assert_eq(check_lines(text, per), 100);
    for (int d = 0; d < 5; d++)
        cr_assert_eq(per[d], 20);
    cr_assert_eq(dir_entries(dir), 1, "the temporary file is gone");
    free(text);
    free(err);
    rwt_rmdir(dir);
    free(dir);
}

Test(cmd_gen, same_seed_gives_the_same_bytes)
{
    char *dir = rwt_tmpdir();
    size_t na, nb, nc;
    cr_assert_eq(gen(dir, "--seed 12 --pairs-per-domain 200 --noise 0.2", NULL, NULL), 0);
    char *a = rwt_read_file(rwt_path(dir, "out.jsonl"), &na);
    cr_assert_eq(gen(dir, "--seed 12 --pairs-per-domain 200 --noise 0.2", NULL, NULL), 0);
    char *b = rwt_read_file(rwt_path(dir, "out.jsonl"), &nb);
    cr_assert_eq(gen(dir, "--seed 13 --pairs-per-domain 200 --noise 0.2", NULL, NULL), 0);
    char *c = rwt_read_file(rwt_path(dir, "out.jsonl"), &nc);
    cr_assert(na == nb && memcmp(a, b, na) == 0, "same seed, different bytes");
    cr_assert(na != nc || memcmp(a, c, na) != 0, "different seed, same bytes");
    free(a);
    free(b);
    free(c);
    rwt_rmdir(dir);
    free(dir);
}

Test(cmd_gen, json_summary_counts_the_asked_domains_in_order)
{
    char *dir = rwt_tmpdir();
    char *out = NULL;
    cr_assert_eq(gen(dir, "--json --domains safety,arithmetic --pairs-per-domain=7", &out, NULL),
                 0);
    json_error_t jerr;
    json_t *s = json_loads(out, 0, &jerr);
    cr_assert(json_is_object(s), "%s: %s", jerr.text, out);
    cr_assert_eq(json_integer_value(json_object_get(s, "pairs")), 14);
    cr_assert_str_eq(json_string_value(json_object_get(s, "output")), rwt_path(dir, "out.jsonl"));
    json_t *doms = json_object_get(s, "domains");
    cr_assert_eq(json_object_size(doms), 2);
    cr_assert_eq(json_integer_value(json_object_get(doms, "safety")), 7);
    cr_assert_eq(json_integer_value(json_object_get(doms, "arithmetic")), 7);
    json_decref(s);
    char *text = rwt_read_file(rwt_path(dir, "out.jsonl"), NULL);
    const char *first = strstr(text, "\"domain\":\"safety\"");
    const char *last = strstr(text, "\"domain\":\"arithmetic\"");
    cr_assert(first && last && first < last, "safety comes first");
    free(text);
    free(out);
    rwt_rmdir(dir);
    free(dir);
}

Test(cmd_gen, bad_usage_exits_2_with_a_clear_message)
{
    static const struct {
        const char *args, *says;
    } cases[] = {
        {"--bogus", "unknown argument '--bogus'"},
        {"--noise 1.5", "--noise wants a fraction"},
        {"--noise", "--noise wants a value"},
        {"--noise 0x0.8", "--noise wants a fraction"},
        {"--noise nan", "--noise wants a fraction"},
        {"--noise --seed 1", "--noise wants a value"},
        {"--pairs-per-domain 0", "--pairs-per-domain wants"},
        {"--pairs-per-domain ten", "--pairs-per-domain wants"},
        {"--seed -4", "--seed wants"},
        {"--domains concise,poetry", "valid domains: concise, detailed, safety, compliance, "
                                     "arithmetic"},
        {"--domains safety,safety", "listed twice"},
        {"--domains ,safety", "comma-separated"},
        {"stray", "unknown argument 'stray'"},
    };
    char *dir = rwt_tmpdir();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        cr_assert_eq(gen(dir, cases[i].args, NULL, &err), 2, "%s", cases[i].args);
        cr_assert(strstr(err, cases[i].says), "%s: %s", cases[i].args, err);
        free(err);
    }
    cr_assert_eq(dir_entries(dir), 0, "nothing written on bad usage");
    char cmd[1024], *err = NULL, *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' data gen --seed 1", rwt_bin("rewire"));
    cr_assert_eq(rwt_run(cmd, NULL, &err), 2);
    cr_assert(strstr(err, "-o OUT is required"), "%s", err);
    snprintf(cmd, sizeof cmd, "'%s' data gen --help", rwt_bin("rewire"));
    cr_assert_eq(rwt_run(cmd, &out, NULL), 0);
    cr_assert(strstr(out, "usage: rewire data gen") && strstr(out, "arithmetic"), "%s", out);
    free(err);
    free(out);
    rwt_rmdir(dir);
    free(dir);
}

Test(cmd_gen, unwritable_output_exits_1)
{
    char cmd[1024], *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' data gen -o /nonexistent-rwtest/out.jsonl", rwt_bin("rewire"));
    cr_assert_eq(rwt_run(cmd, NULL, &err), 1);
    cr_assert(strstr(err, "cannot write /nonexistent-rwtest/out.jsonl"), "%s", err);
    free(err);
}

/* -o - writes the pairs on stdout (and no file named "-"); with --json,
 * which prints the report there, it is a usage error. */
Test(cmd_gen, dash_writes_the_pairs_on_stdout)
{
    char *dir = rwt_tmpdir(), cmd[2048], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' data gen -o - --pairs-per-domain 3", dir,
             rwt_bin("rewire"));
    cr_assert_eq(rwt_run(cmd, &out, NULL), 0);
    size_t lines = 0;
    for (char *line = out, *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
        json_t *j = json_loadb(line, (size_t)(nl - line), 0, NULL);
        cr_assert(json_is_object(j) && json_object_get(j, "chosen"), "%.*s", (int)(nl - line),
                  line);
        json_decref(j);
    }
    cr_assert_gt(lines, 0);
    cr_assert_eq(dir_entries(dir), 0, "no file named '-'");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' data gen -o - --json", dir, rwt_bin("rewire"));
    cr_assert_eq(rwt_run(cmd, NULL, &err), 2);
    cr_assert(strstr(err, "--json"), "%s", err);
    free(err);
    /* so does any name of the same file (it made stdout invalid JSON) */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' data gen -o /dev/stdout --json", dir,
             rwt_bin("rewire"));
    cr_assert_eq(rwt_run(cmd, NULL, &err), 2);
    cr_assert(strstr(err, "--json"), "%s", err);
    free(out);
    free(err);
    rwt_rmdir(dir);
    free(dir);
}

/* Whether dir holds a temporary file of core/afile.h ("NAME.tmp.XXXXXX"). */
static bool has_temporary(const char *dir)
{
    DIR *d = opendir(dir);
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d));)
        found = strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return found;
}

/* Sends sig to a `rewire data gen` once it is writing its (216 MB) output:
 * it dies of sig as before, and takes its temporary file with it. */
static void signal_while_writing(int sig)
{
    char *dir = rwt_tmpdir(), out[600];
    snprintf(out, sizeof out, "%s", rwt_path(dir, "g.jsonl"));
    const char *argv[] = {rwt_bin("rewire"),    "data",   "gen", "-o", out,
                          "--pairs-per-domain", "100000", NULL};
    int pid = rwt_spawn(argv, NULL);
    cr_assert_gt(pid, 0);
    for (int i = 0; i < 6000 && !has_temporary(dir); i++)
        svc_sleep_ms(10);
    cr_assert(has_temporary(dir), "the output was never being written");
    kill(pid, sig);
    int rc = svc_wait(pid, 20000);
    if (rc == -1)
        svc_kill(pid);
    cr_assert_eq(rc, 128 + sig, "killed by signal %d: %d", sig, rc);
    cr_assert_not(has_temporary(dir), "the temporary file is left behind");
    cr_assert_eq(dir_entries(dir), 0);
    rwt_rmdir(dir);
    free(dir);
}

Test(cmd_gen, sigterm_leaves_no_temporary_file, .timeout = 120)
{
    signal_while_writing(SIGTERM);
}

Test(cmd_gen, sigint_leaves_no_temporary_file, .timeout = 120)
{
    signal_while_writing(SIGINT);
}
