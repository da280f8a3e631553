/* test_cmd_data.c — `rewire data import` run as a user runs it: exit codes,
 * what reaches stdout and stderr, and when the output file appears. */
#include "support.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

TestSuite(cmd_data, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

/* rwt_dir/name in a buffer of its own: rwt_path's rotating buffers are reused
 * by rwt_run, so they do not survive a few runs. */
static const char *tpath(const char *name)
{
    static char buf[32][1024];
    static int n;
    cr_assert_lt(n, 32);
    snprintf(buf[n], sizeof buf[n], "%s/%s", rwt_dir, name);
    return buf[n++];
}

typedef struct run {
    int status;
    char *out, *err;
} run_t;

/* Runs `rewire data import ARGS` (printf-style); free with run_free. */
static run_t import(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static run_t import(const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' data import %s", rwt_bin("rewire"), args);
    run_t r;
    r.status = rwt_run(cmd, &r.out, &r.err);
    cr_assert_not_null(r.out);
    cr_assert_not_null(r.err);
    return r;
}

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

static void write_text(const char *path, const char *text)
{
    cr_assert_eq(rwt_write_file(path, text, strlen(text)), 0);
}

static void write_gz(const char *path, const char *text)
{
    gzFile gz = gzopen(path, "wb");
    cr_assert_not_null(gz);
    cr_assert_eq(gzwrite(gz, text, (unsigned)strlen(text)), (int)strlen(text));
    cr_assert_eq(gzclose(gz), Z_OK);
}

static size_t count_entries(const char *d)
{
    DIR *h = opendir(d);
    cr_assert_not_null(h);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(h)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(h);
    return n;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *c = text; *c; c++)
        n += *c == '\n';
    return n;
}

#define REC(prompt, domain)                                                                        \
    "{\"prompt\":\"" prompt "\",\"chosen\":\"good\",\"rejected\":\"bad\",\"domain\":\"" domain     \
    "\"}\n"
#define HH(prompt, a, b)                                                                           \
    "{\"chosen\":\"" prompt "\\n\\nAssistant: " a "\",\"rejected\":\"" prompt                      \
    "\\n\\nAssistant: " b "\"}\n"

/* Three files, one per format; returns them as one shell argument list. */
static const char *three_formats(void)
{
    static char args[2048];
    const char *a = tpath("mine.jsonl");
    const char *b = tpath("harmless-base.jsonl.gz");
    const char *c = tpath("batch9.json.gz");
    write_text(a, REC("one", "code") REC("two", "code"));
    write_gz(b, HH("\\n\\nHuman: hi", "hello", "go away") HH("\\n\\nHuman: yo", "hey", "no"));
    write_gz(c, "{\"info\":{\"id\":\"1\",\"post\":\"P\",\"title\":\"T\",\"subreddit\":\"tifu\"},"
                "\"summaries\":[{\"text\":\"s0\"},{\"text\":\"s1\"}],\"choice\":1}\n");
    snprintf(args, sizeof args, "'%s' '%s' '%s'", a, b, c);
    return args;
}

Test(cmd_data, imports_three_formats_and_summarizes_on_stderr)
{
    const char *out = tpath("out.jsonl");
    run_t r = import("%s -o '%s'", three_formats(), out);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert(strstr(r.err, "import: 3 files, 5 records read: 5 kept, 0 bad, 0 duplicates "
                            "dropped\n"),
              "%s", r.err);
    cr_assert(strstr(r.err, "harmless-base"), "%s", r.err);
    cr_assert(strstr(r.err, "tifu"), "%s", r.err);
    char want[512];
    snprintf(want, sizeof want, "wrote 5 pairs to %s\n", out);
    cr_assert(strstr(r.err, want), "%s", r.err);
    char *text = rwt_read_file(out, NULL);
    cr_assert_not_null(text);
    cr_assert_eq(count_lines(text), 5);
    cr_assert(strstr(text, "{\"prompt\":\"\\n\\nHuman: hi\",\"chosen\":\"hello\",\"rejected\":"
                           "\"go away\",\"domain\":\"harmless-base\",\"split\":"));
    cr_assert(strstr(text, "\"prompt\":\"SUBREDDIT: r/tifu\\nTITLE: T\\nPOST: P\\n\\nTL;DR:\","
                           "\"chosen\":\"s1\",\"rejected\":\"s0\",\"domain\":\"tifu\""));
    free(text);
    run_free(&r);
}

Test(cmd_data, json_report_on_stdout)
{
    const char *out = tpath("out.jsonl");
    const char *dup = tpath("dup.jsonl");
    write_text(dup, REC("one", "code") "{\"prompt\":\"x\"}\n");
    run_t r = import("%s '%s' -o '%s' --json --eval-fraction 0", three_formats(), dup, out);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    cr_assert_not_null(j, "stdout is not JSON: %s\n%s", e.text, r.out);
    cr_assert_eq(json_integer_value(json_object_get(j, "files")), 4);
    cr_assert_eq(json_integer_value(json_object_get(j, "read")), 7);
    cr_assert_eq(json_integer_value(json_object_get(j, "kept")), 5);
    cr_assert_eq(json_integer_value(json_object_get(j, "duplicates")), 1);
    cr_assert_eq(json_integer_value(json_object_get(j, "bad")), 1);
    json_t *rej = json_object_get(j, "rejected");
    cr_assert_eq(json_integer_value(json_object_get(rej, "missing_field")), 1);
    json_t *code = json_object_get(json_object_get(j, "domains"), "code");
    cr_assert_eq(json_integer_value(json_object_get(code, "train")), 2);
    cr_assert_eq(json_integer_value(json_object_get(code, "eval")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(j, "output")), out);
    cr_assert(json_is_true(json_object_get(j, "written")));
    cr_assert(json_is_null(json_object_get(j, "error")));
    json_decref(j);
    /* stderr has the bad record, not the summary */
    char want[512];
    snprintf(want, sizeof want, "%s:2: missing field \"chosen\"\n", dup);
    cr_assert_str_eq(r.err, want);
    run_free(&r);
}

Test(cmd_data, bad_records_are_reported_and_the_good_ones_written)
{
    const char *in = tpath("mixed.jsonl");
    write_text(in, REC("ok", "d") "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"a\","
                                  "\"domain\":\"d\"}\n"
                                  "{oops}\n" REC("ok2", "d"));
    const char *out = tpath("out.jsonl");
    run_t r = import("'%s' -o '%s'", in, out);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    char want[1024];
    snprintf(want, sizeof want,
             "%s:2: chosen and rejected are identical\n"
             "%s:3: malformed JSON at column 5: string or '}' expected near 'oops'\n",
             in, in);
    cr_assert_eq(strncmp(r.err, want, strlen(want)), 0, "%s", r.err);
    cr_assert(strstr(r.err, "  chosen_equals_rejected          1\n"), "%s", r.err);
    cr_assert(strstr(r.err, "  malformed_json                  1\n"), "%s", r.err);
    char *text = rwt_read_file(out, NULL);
    cr_assert_eq(count_lines(text), 2);
    free(text);
    run_free(&r);
}

Test(cmd_data, strict_fails_without_touching_the_output)
{
    const char *in = tpath("mixed.jsonl");
    write_text(in, REC("ok", "d") "{\"prompt\":\"p\",\"chosen\":\"a\"}\n");
    const char *out = tpath("out.jsonl");
    run_t r = import("'%s' -o '%s' --strict", in, out);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "rewire data import: --strict: 1 bad record and 0 unreadable files;"),
              "%s", r.err);
    cr_assert_eq(count_entries(rwt_dir), 1, "only the input: no output, no temporary file");
    run_free(&r);

    /* an existing output stays as it was */
    write_text(out, "previous\n");
    r = import("'%s' -o '%s' --strict --json", in, out);
    cr_assert_eq(r.status, 1);
    json_t *j = json_loads(r.out, 0, NULL);
    cr_assert_not_null(j, "%s", r.out);
    cr_assert(json_is_false(json_object_get(j, "written")));
    cr_assert(json_is_string(json_object_get(j, "error")));
    json_decref(j);
    char *text = rwt_read_file(out, NULL);
    cr_assert_str_eq(text, "previous\n");
    free(text);
    cr_assert_eq(count_entries(rwt_dir), 2);
    run_free(&r);

    /* strict and clean: written */
    write_text(in, REC("ok", "d"));
    r = import("'%s' -o '%s' --strict", in, out);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
}

Test(cmd_data, no_good_records_is_a_failure)
{
    const char *in = tpath("bad.jsonl");
    write_text(in, "{\"prompt\":\"\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\"}\n\n");
    const char *out = tpath("out.jsonl");
    run_t r = import("'%s' -o '%s'", in, out);
    cr_assert_eq(r.status, 1);
    char want[512];
    snprintf(want, sizeof want, "rewire data import: no good pairs in the input; %s not written\n",
             out);
    cr_assert(strstr(r.err, want), "%s", r.err);
    cr_assert_eq(count_entries(rwt_dir), 1);
    run_free(&r);

    write_text(in, "");
    r = import("'%s' -o '%s'", in, out);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, want), "%s", r.err);
    run_free(&r);
}

Test(cmd_data, domain_format_and_line_limit_options)
{
    const char *in = tpath("chat.jsonl");
    write_text(in, "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\"}\n"
                   "{\"prompt\":\"0123456789012345678901234567890123456789012345678901234567\","
                   "\"chosen\":\"a\",\"rejected\":\"b\"}\n");
    const char *out = tpath("out.jsonl");
    run_t r = import("'%s' -o '%s' --domain chat --max-line-bytes 60", in, out);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char want[512];
    snprintf(want, sizeof want, "%s:2: line longer than 60 bytes\n", in);
    cr_assert(strstr(r.err, want), "%s", r.err);
    char *text = rwt_read_file(out, NULL);
    const char *first =
        "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"chat\",";
    cr_assert_eq(strncmp(text, first, strlen(first)), 0, "%s", text);
    free(text);
    run_free(&r);

    /* without --domain those records have none, so nothing is good */
    r = import("'%s' -o '%s'", in, out);
    cr_assert_eq(r.status, 1, "%s", r.err);
    snprintf(want, sizeof want, "%s:1: missing field \"domain\"\n", in);
    cr_assert(strstr(r.err, want), "%s", r.err);
    run_free(&r);

    /* --format hh reads a prompt-keyed file as transcripts */
    const char *hh = tpath("odd.jsonl");
    write_text(hh, "{\"prompt\":1,\"chosen\":\"\\n\\nHuman: a\\n\\nAssistant: x\","
                   "\"rejected\":\"\\n\\nHuman: a\\n\\nAssistant: y\"}\n");
    r = import("'%s' -o '%s' --format hh", hh, out);
    cr_assert_eq(r.status, 0, "%s", r.err);
    text = rwt_read_file(out, NULL);
    cr_assert(strstr(text, "\"domain\":\"odd\""), "%s", text);
    free(text);
    run_free(&r);
}

Test(cmd_data, splits_are_deterministic_and_stable)
{
    const char *a = tpath("a.jsonl");
    const char *b = tpath("b.jsonl");
    char text[16384];
    size_t len = 0;
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "{\"prompt\":\"question %d\",\"chosen\":\"y\",\"rejected\":\"n\","
                                "\"domain\":\"d%d\"}\n",
                                i, i % 4);
    cr_assert_eq(rwt_write_file(a, text, len), 0);
    len = 0;
    for (int i = 100; i < 200; i++)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "{\"prompt\":\"question %d\",\"chosen\":\"y\",\"rejected\":\"n\","
                                "\"domain\":\"d%d\"}\n",
                                i, i % 4);
    cr_assert_eq(rwt_write_file(b, text, len), 0);
    const char *o1 = tpath("o1.jsonl");
    const char *o2 = tpath("o2.jsonl");
    const char *o3 = tpath("o3.jsonl");
    run_t r = import("'%s' -o '%s'", a, o1);
    cr_assert_eq(r.status, 0);
    run_free(&r);
    r = import("'%s' -o '%s'", a, o2);
    cr_assert_eq(r.status, 0);
    run_free(&r);
    r = import("'%s' '%s' -o '%s'", b, a, o3);
    cr_assert_eq(r.status, 0);
    run_free(&r);
    size_t n1, n2;
    char *t1 = rwt_read_file(o1, &n1), *t2 = rwt_read_file(o2, &n2), *t3 = rwt_read_file(o3, NULL);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(t1, t2, n1), 0, "same input, different bytes");
    /* every line of the first run is in the bigger run, split and all */
    size_t lines = 0;
    for (char *line = strtok(t1, "\n"); line; line = strtok(NULL, "\n")) {
        cr_assert(strstr(t3, line), "line moved: %s", line);
        lines++;
    }
    cr_assert_eq(lines, 100);
    cr_assert_eq(count_lines(t3), 200);
    free(t1);
    free(t2);
    free(t3);
}

Test(cmd_data, truncated_and_missing_inputs)
{
    size_t cap = 1 << 20, len = 0;
    char *t = malloc(cap);
    for (int i = 1; i <= 3000; i++)
        len += (size_t)snprintf(t + len, cap - len,
                                "{\"prompt\":\"q%d %u\",\"chosen\":\"y\",\"rejected\":\"n\","
                                "\"domain\":\"d\"}\n",
                                i, (unsigned)i * 2654435761u);
    const char *in = tpath("cut.jsonl.gz");
    write_gz(in, t);
    free(t);
    size_t n;
    char *gz = rwt_read_file(in, &n);
    cr_assert_eq(rwt_write_file(in, gz, n / 2), 0);
    free(gz);
    const char *missing = tpath("missing.jsonl");
    const char *out = tpath("out.jsonl");

    run_t r = import("'%s' '%s' -o '%s' --json", in, missing, out);
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    cr_assert_not_null(j);
    size_t kept = (size_t)json_integer_value(json_object_get(j, "kept"));
    cr_assert(kept > 100 && kept < 3000, "kept %zu", kept);
    cr_assert_eq(json_integer_value(json_object_get(j, "file_errors")), 2);
    json_decref(j);
    char want[1024];
    snprintf(want, sizeof want,
             "%s:%zu: truncated gzip stream (unexpected end of file)\n"
             "%s: cannot open: No such file or directory\n",
             in, kept + 1, missing);
    cr_assert_str_eq(r.err, want);
    char *text = rwt_read_file(out, NULL);
    cr_assert_eq(count_lines(text), kept);
    free(text);
    run_free(&r);

    r = import("'%s' -o '%s' --strict", in, tpath("strict.jsonl"));
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "0 bad records and 1 unreadable file;"), "%s", r.err);
    cr_assert_null(rwt_read_file(tpath("strict.jsonl"), NULL));
    run_free(&r);
}

Test(cmd_data, usage_errors_exit_2)
{
    const char *in = tpath("in.jsonl");
    write_text(in, REC("p", "d"));
    const char *out = tpath("out.jsonl");
    const struct {
        const char *args, *msg;
    } cases[] = {
        {"-o '%2$s'", "rewire data import: no input files\n"},
        {"'%1$s'", "rewire data import: no output file (-o OUT)\n"},
        {"'%1$s' -o '%2$s' --format csv", "rewire data import: unknown --format 'csv'\n"},
        {"'%1$s' -o '%2$s' --format normalized",
         "rewire data import: unknown --format 'normalized'\n"},
        {"'%1$s' -o '%2$s' --eval-fraction 1.5",
         "rewire data import: --eval-fraction wants a number in [0, 1], not '1.5'\n"},
        {"'%1$s' -o '%2$s' --max-line-bytes 0",
         "rewire data import: --max-line-bytes wants a positive size, not '0'\n"},
        {"'%1$s' -o '%2$s' --domain ''", "rewire data import: --domain '' is not a name (1 to 64"},
        {"'%1$s' -o '%2$s' --domain 'a b'", "rewire data import: --domain 'a b' is not a name"},
        {"'%1$s' -o '%2$s' --bogus", "rewire data import: unknown option '--bogus'\n"},
        {"'%1$s' -o", "rewire data import: -o needs a value\n"},
        {"'%1$s' -o --json", "rewire data import: -o needs a value\n"},
        {"'%1$s' -o '%2$s' --eval-fraction 0x0.1",
         "rewire data import: --eval-fraction wants a number in [0, 1], not '0x0.1'\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[1024];
        snprintf(args, sizeof args, cases[i].args, in, out);
        run_t r = import("%s", args);
        cr_assert_eq(r.status, 2, "%s: exit %d", args, r.status);
        cr_assert_eq(strncmp(r.err, cases[i].msg, strlen(cases[i].msg)), 0, "%s: %s", args, r.err);
        cr_assert(strstr(r.err, "(see rewire data import --help)"));
        run_free(&r);
    }
    cr_assert_eq(count_entries(rwt_dir), 1);
}

Test(cmd_data, help_and_the_command_table)
{
    run_t r = import("--help");
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "usage: rewire data import FILE... -o OUT"));
    run_free(&r);
    char *out, *err;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' --help", rwt_bin("rewire"));
    cr_assert_eq(rwt_run(cmd, &out, &err), 0);
    cr_assert(strstr(out, "  data import "), "%s", out);
    free(out);
    free(err);
    /* help that cannot be written is no success either */
    const char *full[] = {"--help", "data --help", "data import --help"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "'%s' %s >/dev/full", rwt_bin("rewire"), full[i]);
        cr_assert_eq(rwt_run(cmd, NULL, &err), 1, "%s", full[i]);
        cr_assert(strstr(err, "cannot write the output"), "%s: %s", full[i], err);
        free(err);
    }
}

Test(cmd_data, real_hh_rlhf)
{
    RWT_REQUIRE_SHARED_DATA();
    const char *out = tpath("hh.jsonl");
    run_t r = import("'%s'/hh-rlhf/*.jsonl.gz -o '%s' --json", rwt_shared_data(), out);
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    cr_assert_not_null(j);
    cr_assert_eq(json_integer_value(json_object_get(j, "read")), 7280);
    cr_assert_eq(json_integer_value(json_object_get(j, "kept")), 7228);
    cr_assert_eq(json_integer_value(json_object_get(j, "bad")), 52);
    json_t *d = json_object_get(j, "domains");
    const struct {
        const char *name;
        json_int_t train, eval;
    } want[] = {{"harmless-base", 1755, 196},
                {"helpful-base", 1775, 219},
                {"helpful-online", 852, 96},
                {"helpful-rejection-sampled", 2130, 205}};
    cr_assert_eq(json_object_size(d), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_object_get(d, want[i].name);
        cr_assert_eq(json_integer_value(json_object_get(e, "train")), want[i].train, "%s",
                     want[i].name);
        cr_assert_eq(json_integer_value(json_object_get(e, "eval")), want[i].eval, "%s",
                     want[i].name);
    }
    json_decref(j);
    cr_assert_eq(count_lines(r.err), 52, "one stderr line per bad record");
    char *text = rwt_read_file(out, NULL);
    cr_assert_eq(count_lines(text), 7228);
    free(text);
    run_free(&r);
}
