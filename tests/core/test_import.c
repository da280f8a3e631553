/* test_import.c — importing files: each format, every kind of bad record
 * with its message and line, duplicates, splits, broken files, and the real
 * HH-RLHF and summarize-from-feedback data. */
#include "err.h"
#include "import.h"
#include "log.h"
#include "support.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

TestSuite(import, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

/* Rejections collected through on_reject. */
typedef struct seen {
    size_t n;
    struct {
        char path[256];
        size_t line;
        rw_reject_t why;
        char msg[256];
    } r[64];
} seen_t;

static void collect(void *ctx, const char *path, size_t line, const rw_rejection_t *rj)
{
    seen_t *s = ctx;
    cr_assert_lt(s->n, 64);
    snprintf(s->r[s->n].path, sizeof s->r[0].path, "%s", path);
    s->r[s->n].line = line;
    s->r[s->n].why = rj->why;
    snprintf(s->r[s->n].msg, sizeof s->r[0].msg, "%s", rj->msg);
    s->n++;
}

static rw_import_opts_t opts_with(seen_t *s)
{
    rw_import_opts_t o;
    rw_import_opts_init(&o);
    o.on_reject = collect;
    o.ctx = s;
    memset(s, 0, sizeof *s);
    return o;
}

static void expect_seen(const seen_t *s, size_t i, size_t line, rw_reject_t why, const char *msg)
{
    cr_assert_lt(i, s->n, "only %zu rejections", s->n);
    cr_assert_eq(s->r[i].line, line, "rejection %zu at line %zu, want %zu (%s)", i, s->r[i].line,
                 line, s->r[i].msg);
    cr_assert_eq(s->r[i].why, why, "rejection %zu is %s, want %s", i, rw_reject_name(s->r[i].why),
                 rw_reject_name(why));
    cr_assert_str_eq(s->r[i].msg, msg);
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

static int import1(rw_dataset_t *ds, const char *path, const rw_import_opts_t *o,
                   rw_import_report_t *rep)
{
    return rw_import_files(ds, &path, 1, o, rep);
}

#define HH(prompt, a, b)                                                                           \
    "{\"chosen\":\"" prompt "\\n\\nAssistant: " a "\",\"rejected\":\"" prompt                      \
    "\\n\\nAssistant: " b "\"}\n"
#define SUM(sub, post, a, b, choice)                                                               \
    "{\"info\":{\"id\":\"t3_x\",\"post\":\"" post "\",\"title\":\"T\",\"subreddit\":\"" sub        \
    "\"},\"summaries\":[{\"text\":\"" a "\",\"policy\":\"p1\"},{\"text\":\"" b "\"}],"             \
    "\"choice\":" #choice ",\"worker\":\"w\"}\n"

Test(import, rewire_records_with_domains_and_recomputed_splits)
{
    const char *p = rwt_path(rwt_dir, "prefs.jsonl");
    write_text(p, "{\"prompt\":\"2+2?\",\"chosen\":\"4\",\"rejected\":\"5\",\"domain\":\"math\","
                  "\"split\":\"eval\"}\n"
                  "{\"prompt\":\"Hi\",\"chosen\":\"Hello!\",\"rejected\":\"Go away.\","
                  "\"domain\":\"chat\"}\n");
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    o.eval_fraction = 0.5;
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    cr_assert_eq(import1(&ds, p, &o, &rep), 0);
    cr_assert_eq(s.n, 0);
    cr_assert_eq(ds.n, 2);
    cr_assert_str_eq(ds.pairs[0].prompt, "2+2?");
    cr_assert_str_eq(ds.pairs[0].domain, "math");
    cr_assert_str_eq(ds.pairs[1].chosen, "Hello!");
    for (size_t i = 0; i < ds.n; i++)
        cr_assert_eq(ds.pairs[i].split, rw_pair_split(&ds.pairs[i], 0.5));
    cr_assert_eq(rep.files, 1);
    cr_assert_eq(rep.read, 2);
    cr_assert_eq(rep.kept, 2);
    cr_assert_eq(rep.bad + rep.duplicates + rep.file_errors, 0);
    cr_assert_eq(rep.n_domains, 2);
    cr_assert_str_eq(rep.domains[0].name, "chat");
    cr_assert_str_eq(rep.domains[1].name, "math");
    cr_assert_eq(rep.domains[0].train + rep.domains[0].eval, 1);
    rw_import_report_fini(&rep);
    rw_dataset_fini(&ds);
}

Test(import, hh_gzip_takes_its_domain_from_the_file_name)
{
    const char *p = rwt_path(rwt_dir, "helpful-base.jsonl.gz");
    write_gz(p, HH("\\n\\nHuman: Hi", "Hello, how can I help?", "What?")
                    HH("\\n\\nHuman: Name a color.\\n\\nAssistant: Red.\\n\\nHuman: Another?",
                       "Blue.", "No."));
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    cr_assert_eq(import1(&ds, p, &o, NULL), 0);
    cr_assert_eq(s.n, 0, "%s", s.r[0].msg);
    cr_assert_eq(ds.n, 2);
    cr_assert_str_eq(ds.pairs[0].prompt, "\n\nHuman: Hi");
    cr_assert_str_eq(ds.pairs[0].chosen, "Hello, how can I help?");
    cr_assert_str_eq(ds.pairs[0].rejected, "What?");
    cr_assert_str_eq(ds.pairs[1].prompt,
                     "\n\nHuman: Name a color.\n\nAssistant: Red.\n\nHuman: Another?");
    cr_assert_str_eq(ds.pairs[1].domain, "helpful-base");
    rw_dataset_fini(&ds);

    /* the domain option wins over the file name */
    rw_dataset_init(&ds);
    o.domain = "assistant";
    cr_assert_eq(import1(&ds, p, &o, NULL), 0);
    cr_assert_str_eq(ds.pairs[0].domain, "assistant");
    cr_assert_str_eq(ds.pairs[1].domain, "assistant");
    rw_dataset_fini(&ds);
}

Test(import, summarize_gzip_posts_and_articles)
{
    const char *p = rwt_path(rwt_dir, "batch1.json.gz");
    write_gz(p,
             SUM("tifu", "I broke it.", " broke it", " did a thing", 1)
                 SUM("AskReddit", "Why?", " asks why", " why",
                     0) "{\"info\":{\"id\":\"n1\",\"article\":\"A long story.\",\"site\":\"cnn\"},"
                        "\"summaries\":[{\"text\":\"short\"},{\"text\":\"long\"}],\"choice\":0}\n");
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    cr_assert_eq(import1(&ds, p, &o, &rep), 0);
    cr_assert_eq(s.n, 0, "%s", s.r[0].msg);
    cr_assert_eq(ds.n, 3);
    cr_assert_str_eq(ds.pairs[0].prompt,
                     "SUBREDDIT: r/tifu\nTITLE: T\nPOST: I broke it.\n\nTL;DR:");
    cr_assert_str_eq(ds.pairs[0].chosen, " did a thing");
    cr_assert_str_eq(ds.pairs[0].rejected, " broke it");
    cr_assert_str_eq(ds.pairs[0].domain, "tifu");
    cr_assert_str_eq(ds.pairs[1].chosen, " asks why");
    cr_assert_str_eq(ds.pairs[2].prompt, "ARTICLE: A long story.\n\nTL;DR:");
    cr_assert_str_eq(ds.pairs[2].domain, "news");
    cr_assert_eq(rep.n_domains, 3);
    cr_assert_str_eq(rep.domains[0].name, "AskReddit"); /* byte order */
    rw_import_report_fini(&rep);
    rw_dataset_fini(&ds);
}

Test(import, each_file_gets_its_own_format)
{
    const char *a = rwt_path(rwt_dir, "a.jsonl");
    const char *b = rwt_path(rwt_dir, "harmless.jsonl");
    const char *c = rwt_path(rwt_dir, "c.json");
    write_text(a, "{\"prompt\":\"p\",\"chosen\":\"x\",\"rejected\":\"y\",\"domain\":\"d\"}\n");
    write_text(b, "not json\n" HH("\\n\\nHuman: q", "good", "bad"));
    write_text(c, SUM("self", "post", "one", "two", 0));
    const char *paths[] = {a, b, c};
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    cr_assert_eq(rw_import_files(&ds, paths, 3, &o, NULL), 0);
    cr_assert_eq(ds.n, 3);
    cr_assert_str_eq(ds.pairs[0].domain, "d");
    cr_assert_str_eq(ds.pairs[1].domain, "harmless");
    cr_assert_str_eq(ds.pairs[2].domain, "self");
    /* a line that is not JSON cannot decide the format: it is just bad */
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.r[0].path, b);
    expect_seen(&s, 0, 1, RW_REJECT_MALFORMED_JSON,
                "malformed JSON at column 3: invalid token near 'not'");
    rw_dataset_fini(&ds);
}

Test(import, a_forced_format_overrides_detection)
{
    const char *p = rwt_path(rwt_dir, "x.jsonl");
    write_text(p, "{\"prompt\":\"p\",\"chosen\":\"\\n\\nHuman: a\\n\\nAssistant: x\","
                  "\"rejected\":\"\\n\\nHuman: a\\n\\nAssistant: y\"}\n");
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    o.format = RW_FORMAT_HH;
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    cr_assert_eq(import1(&ds, p, &o, NULL), 0);
    cr_assert_eq(ds.n, 1);
    cr_assert_str_eq(ds.pairs[0].prompt, "\n\nHuman: a");
    cr_assert_str_eq(ds.pairs[0].domain, "x");
    rw_dataset_fini(&ds);
}

Test(import, every_bad_record_is_reported_with_its_line_and_skipped)
{
    char big[400];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char text[4096];
    snprintf(text, sizeof text,
             "{\"prompt\":\"p1\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\"}\n" /* 1 */
             "{\"prompt\":\"p\",\"chosen\":\"a\"\n"                                       /* 2 */
             "{\"prompt\":\"p\xff\",\"chosen\":\"a\",\"rejected\":\"b\"}\n"               /* 3 */
             "{\"prompt\":\"p\",\"rejected\":\"b\",\"domain\":\"d\"}\n"                   /* 4 */
             "{\"prompt\":\"p\",\"chosen\":\"\",\"rejected\":\"b\",\"domain\":\"d\"}\n"   /* 5 */
             "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":2,\"domain\":\"d\"}\n"      /* 6 */
             "   \t\r\n"                                                                  /* 7 */
             "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"a\",\"domain\":\"d\"}\n"  /* 8 */
             "[\"prompt\",\"chosen\"]\n"                                                  /* 9 */
             "{\"prompt\":\"p\",\"prompt\":\"q\",\"chosen\":\"a\",\"rejected\":\"b\"}\n"  /* 10 */
             "{\"prompt\":\"%s\",\"chosen\":\"a\",\"rejected\":\"b\"}\n"                  /* 11 */
             "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\"}\n"                   /* 12 */
             "{\"prompt\":\"p\",\"chosen\":\"a\\u0000\",\"rejected\":\"b\"}\n"            /* 13 */
             "{\"prompt\":\"p2\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\"}",  /* 14 */
             big);
    const char *p = rwt_path(rwt_dir, "bad.jsonl");
    write_text(p, text);
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    o.max_line = 300;
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    cr_assert_eq(import1(&ds, p, &o, &rep), 0);
    cr_assert_eq(s.n, 11);
    expect_seen(&s, 0, 2, RW_REJECT_MALFORMED_JSON,
                "malformed JSON at column 26: '}' expected near end of file");
    expect_seen(&s, 1, 3, RW_REJECT_INVALID_UTF8, "invalid UTF-8 at byte offset 12");
    expect_seen(&s, 2, 4, RW_REJECT_MISSING_FIELD, "missing field \"chosen\"");
    expect_seen(&s, 3, 5, RW_REJECT_EMPTY_FIELD, "empty field \"chosen\"");
    expect_seen(&s, 4, 6, RW_REJECT_WRONG_TYPE, "field \"rejected\" is not a string");
    expect_seen(&s, 5, 8, RW_REJECT_SAME_REPLIES, "chosen and rejected are identical");
    expect_seen(&s, 6, 9, RW_REJECT_WRONG_TYPE, "record is not a JSON object");
    expect_seen(&s, 7, 10, RW_REJECT_MALFORMED_JSON,
                "malformed JSON at column 22: duplicate object key near '\"prompt\"'");
    expect_seen(&s, 8, 11, RW_REJECT_LINE_TOO_LONG, "line longer than 300 bytes");
    expect_seen(&s, 9, 12, RW_REJECT_MISSING_FIELD, "missing field \"domain\"");
    expect_seen(&s, 10, 13, RW_REJECT_MALFORMED_JSON,
                "malformed JSON at column 32: \\u0000 (NUL) is not allowed in strings");
    for (size_t i = 0; i < s.n; i++)
        cr_assert_str_eq(s.r[i].path, p);
    cr_assert_eq(ds.n, 2);
    cr_assert_str_eq(ds.pairs[0].prompt, "p1");
    cr_assert_str_eq(ds.pairs[1].prompt, "p2");
    cr_assert_eq(rep.read, 13); /* the blank line is no record */
    cr_assert_eq(rep.kept, 2);
    cr_assert_eq(rep.bad, 11);
    cr_assert_eq(rep.read, rep.kept + rep.duplicates + rep.bad);
    cr_assert_eq(rep.rejected[RW_REJECT_MALFORMED_JSON], 3);
    cr_assert_eq(rep.rejected[RW_REJECT_MISSING_FIELD], 2);
    cr_assert_eq(rep.rejected[RW_REJECT_WRONG_TYPE], 2);
    cr_assert_eq(rep.rejected[RW_REJECT_INVALID_UTF8], 1);
    cr_assert_eq(rep.rejected[RW_REJECT_EMPTY_FIELD], 1);
    cr_assert_eq(rep.rejected[RW_REJECT_SAME_REPLIES], 1);
    cr_assert_eq(rep.rejected[RW_REJECT_LINE_TOO_LONG], 1);
    rw_import_report_fini(&rep);
    rw_dataset_fini(&ds);
}

Test(import, the_domain_option_rescues_records_without_one)
{
    const char *p = rwt_path(rwt_dir, "nodomain.jsonl");
    write_text(p, "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\"}\n"
                  "{\"prompt\":\"q\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"own\"}\n");
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    o.domain = "given";
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    cr_assert_eq(import1(&ds, p, &o, NULL), 0);
    cr_assert_eq(s.n, 0);
    cr_assert_str_eq(ds.pairs[0].domain, "given");
    cr_assert_str_eq(ds.pairs[1].domain, "own");
    rw_dataset_fini(&ds);
}

Test(import, hh_and_summarize_bad_records)
{
    const char *h = rwt_path(rwt_dir, "hh.jsonl");
    write_text(h, HH("\\n\\nHuman: a", "x", "y")                                   /* 1 */
               "{\"chosen\":\"\\n\\nHuman: a\\n\\nAssistant: x\","                 /* 2 */
               "\"rejected\":\"\\n\\nHuman: b\\n\\nAssistant: y\"}\n"              /* 2 */
               HH("\\n\\nHuman: a", "", "y")                                       /* 3 */
               "{\"chosen\":\"\\n\\nHuman: a\",\"rejected\":\"\\n\\nHuman: a\"}\n" /* 4 */
               HH("\\n\\nHuman: c", "same", "same"));                              /* 5 */
    const char *m = rwt_path(rwt_dir, "sum.json");
    write_text(m, SUM("tifu", "p", "a", "b", 2)                                  /* 1 */
               "{\"info\":{\"post\":\"p\",\"title\":\"t\",\"subreddit\":\"s\"}," /* 2 */
               "\"summaries\":[{\"text\":\"a\"}],\"choice\":0}\n"                /* 2 */
               SUM("tifu", "p", "a", "b", 1));                                   /* 3 */
    const char *paths[] = {h, m};
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    cr_assert_eq(rw_import_files(&ds, paths, 2, &o, NULL), 0);
    cr_assert_eq(ds.n, 2);
    cr_assert_eq(s.n, 6);
    expect_seen(&s, 0, 2, RW_REJECT_PROMPTS_DIFFER, "prompts of chosen and rejected differ");
    expect_seen(&s, 1, 3, RW_REJECT_EMPTY_FIELD, "empty reply in \"chosen\"");
    expect_seen(&s, 2, 4, RW_REJECT_NO_ASSISTANT_TURN,
                "no \"\\n\\nAssistant:\" turn in \"chosen\"");
    expect_seen(&s, 3, 5, RW_REJECT_SAME_REPLIES, "chosen and rejected are identical");
    expect_seen(&s, 4, 1, RW_REJECT_BAD_CHOICE, "choice is not 0 or 1");
    expect_seen(&s, 5, 2, RW_REJECT_BAD_SUMMARIES, "summaries is not an array of 2");
    cr_assert_str_eq(s.r[4].path, m);
    rw_dataset_fini(&ds);
}

/* the suite's setup and teardown run around the test's own .init */
Test(import, rejections_go_to_stderr_as_path_line_reason, .init = cr_redirect_stderr)
{
    const char *p = rwt_path(rwt_dir, "x.jsonl");
    write_text(p, "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\"}\n"
                  "{\"prompt\":\"p\",\"rejected\":\"b\",\"domain\":\"d\"}\n");
    const char *missing = rwt_path(rwt_dir, "missing.jsonl");
    const char *paths[] = {p, missing};
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    cr_assert_eq(rw_import_files(&ds, paths, 2, NULL, NULL), -ENOENT);
    fflush(stderr);
    char want[1024];
    snprintf(want, sizeof want,
             "%s:2: missing field \"chosen\"\n%s: cannot open: No such file or directory\n", p,
             missing);
    cr_assert_stderr_eq_str(want);
    rw_dataset_fini(&ds);
}

Test(import, exact_duplicates_are_dropped_and_counted)
{
    const char *a = rwt_path(rwt_dir, "a.jsonl");
    const char *b = rwt_path(rwt_dir, "b.jsonl");
    const char *r1 = "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\"}\n";
    char text[1024];
    snprintf(text, sizeof text, "%s%s%s%s%s", r1, r1,
             /* same texts, other domain: not a duplicate */
             "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"e\"}\n",
             /* chosen and rejected swapped: not a duplicate */
             "{\"prompt\":\"p\",\"chosen\":\"b\",\"rejected\":\"a\",\"domain\":\"d\"}\n",
             /* a split does not make it different */
             "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\","
             "\"split\":\"eval\"}\n");
    write_text(a, text);
    write_text(b, r1);
    const char *paths[] = {a, b};
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    cr_assert_eq(rw_import_files(&ds, paths, 2, &o, &rep), 0);
    cr_assert_eq(ds.n, 3);
    cr_assert_eq(rep.read, 6);
    cr_assert_eq(rep.kept, 3);
    cr_assert_eq(rep.duplicates, 3);
    cr_assert_eq(rep.bad, 0);
    /* pairs already in the dataset count too; reports add up */
    cr_assert_eq(rw_import_files(&ds, paths, 1, &o, &rep), 0);
    cr_assert_eq(ds.n, 3);
    cr_assert_eq(rep.files, 3);
    cr_assert_eq(rep.duplicates, 8);
    rw_import_report_fini(&rep);
    rw_dataset_fini(&ds);
}

/* Writes n rewire records "q<from>".."q<from+n-1>" to path. */
static void write_many(const char *path, int from, int n)
{
    size_t cap = (size_t)n * 100 + 1, len = 0;
    char *t = malloc(cap);
    for (int i = from; i < from + n; i++)
        len += (size_t)snprintf(t + len, cap - len,
                                "{\"prompt\":\"q%d\",\"chosen\":\"yes\",\"rejected\":\"no\","
                                "\"domain\":\"d%d\"}\n",
                                i, i % 3);
    cr_assert_eq(rwt_write_file(path, t, len), 0);
    free(t);
}

Test(import, a_pair_keeps_its_split_when_other_records_are_added)
{
    const char *small = rwt_path(rwt_dir, "small.jsonl");
    const char *more = rwt_path(rwt_dir, "more.jsonl");
    write_many(small, 0, 500);
    write_many(more, 300, 1000); /* overlaps 300..499, adds 500..1299 */
    rw_dataset_t a, b;
    rw_dataset_init(&a);
    rw_dataset_init(&b);
    cr_assert_eq(import1(&a, small, NULL, NULL), 0);
    const char *both[] = {more, small};
    cr_assert_eq(rw_import_files(&b, both, 2, NULL, NULL), 0);
    cr_assert_eq(a.n, 500);
    cr_assert_eq(b.n, 1300);
    size_t eval = 0, matched = 0;
    for (size_t i = 0; i < a.n; i++) {
        for (size_t j = 0; j < b.n; j++) {
            if (strcmp(a.pairs[i].prompt, b.pairs[j].prompt) == 0) {
                cr_assert_eq(a.pairs[i].split, b.pairs[j].split, "%s moved", a.pairs[i].prompt);
                matched++;
            }
        }
        eval += a.pairs[i].split == RW_SPLIT_EVAL;
    }
    cr_assert_eq(matched, 500);
    cr_assert(eval > 20 && eval < 90, "%zu of 500 held out at 0.1", eval);
    rw_dataset_fini(&a);
    rw_dataset_fini(&b);
}

Test(import, eval_fraction_bounds)
{
    const char *p = rwt_path(rwt_dir, "m.jsonl");
    write_many(p, 0, 50);
    rw_import_opts_t o;
    rw_import_opts_init(&o);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    o.eval_fraction = 0;
    cr_assert_eq(import1(&ds, p, &o, NULL), 0);
    for (size_t i = 0; i < ds.n; i++)
        cr_assert_eq(ds.pairs[i].split, RW_SPLIT_TRAIN);
    rw_dataset_fini(&ds);
    o.eval_fraction = 1;
    cr_assert_eq(import1(&ds, p, &o, NULL), 0);
    for (size_t i = 0; i < ds.n; i++)
        cr_assert_eq(ds.pairs[i].split, RW_SPLIT_EVAL);
    rw_dataset_fini(&ds);
    o.eval_fraction = 1.5;
    cr_assert_eq(import1(&ds, p, &o, NULL), RW_EINVAL);
    cr_assert_eq(ds.n, 0);
}

Test(import, a_truncated_gzip_keeps_the_lines_before_the_cut)
{
    size_t cap = 1 << 20, len = 0;
    char *t = malloc(cap);
    for (int i = 1; i <= 3000; i++)
        len += (size_t)snprintf(t + len, cap - len,
                                "{\"chosen\":\"\\n\\nHuman: question %d?\\n\\nAssistant: answer "
                                "%u\",\"rejected\":\"\\n\\nHuman: question %d?\\n\\nAssistant: "
                                "no\"}\n",
                                i, (unsigned)i * 2654435761u, i);
    const char *p = rwt_path(rwt_dir, "cut.jsonl.gz");
    write_gz(p, t);
    free(t);
    size_t n;
    char *gz = rwt_read_file(p, &n);
    cr_assert_eq(rwt_write_file(p, gz, n / 2), 0);
    free(gz);

    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    cr_assert_eq(import1(&ds, p, &o, &rep), RW_ETRUNC);
    cr_assert(ds.n > 100 && ds.n < 3000, "kept %zu", ds.n);
    cr_assert_eq(s.n, 1);
    expect_seen(&s, 0, ds.n + 1, RW_REJECT_TRUNCATED_FILE,
                "truncated gzip stream (unexpected end of file)");
    cr_assert_eq(rep.file_errors, 1);
    cr_assert_eq(rep.rejected[RW_REJECT_TRUNCATED_FILE], 1);
    cr_assert_eq(rep.bad, 0);
    cr_assert_eq(rep.read, ds.n);
    char want[64];
    snprintf(want, sizeof want, "\n\nHuman: question %zu?", ds.n);
    cr_assert_str_eq(ds.pairs[ds.n - 1].prompt, want);
    rw_import_report_fini(&rep);
    rw_dataset_fini(&ds);
}

Test(import, unreadable_files_are_reported_and_the_rest_still_imported)
{
    const char *good = rwt_path(rwt_dir, "good.jsonl");
    write_many(good, 0, 3);
    const char *missing = rwt_path(rwt_dir, "missing.jsonl.gz");
    const char *paths[] = {missing, rwt_dir, good};
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    cr_assert_eq(rw_import_files(&ds, paths, 3, &o, &rep), -ENOENT);
    cr_assert_eq(ds.n, 3);
    cr_assert_eq(s.n, 2);
    expect_seen(&s, 0, 0, RW_REJECT_UNREADABLE_FILE, "cannot open: No such file or directory");
    expect_seen(&s, 1, 0, RW_REJECT_UNREADABLE_FILE, "cannot open: Is a directory");
    cr_assert_str_eq(s.r[0].path, missing);
    cr_assert_eq(rep.file_errors, 2);
    cr_assert_eq(rep.rejected[RW_REJECT_UNREADABLE_FILE], 2);
    rw_import_report_fini(&rep);
    rw_dataset_fini(&ds);
}

Test(import, a_file_of_unknown_shape_is_skipped_after_its_first_object)
{
    const char *p = rwt_path(rwt_dir, "odd.jsonl");
    write_text(p, "\n{\"question\":\"q\",\"answer\":\"a\"}\n"
                  "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\"}\n");
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    cr_assert_eq(import1(&ds, p, &o, &rep), RW_EFORMAT);
    cr_assert_eq(ds.n, 0);
    cr_assert_eq(s.n, 1);
    expect_seen(&s, 0, 2, RW_REJECT_UNKNOWN_FORMAT,
                "cannot tell the file's format from this record: expected \"prompt\", "
                "\"chosen\" and \"rejected\", or \"info\" and \"summaries\"");
    cr_assert_eq(rep.read, 1);
    cr_assert_eq(rep.bad, 1);
    rw_import_report_fini(&rep);
    rw_dataset_fini(&ds);
}

Test(import, the_report_as_json)
{
    const char *p = rwt_path(rwt_dir, "r.jsonl");
    write_text(p, "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\"}\n"
                  "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\"}\n"
                  "{\"prompt\":\"p\"}\n");
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    o.eval_fraction = 0;
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    cr_assert_eq(import1(&ds, p, &o, &rep), 0);
    json_t *j = rw_import_report_json(&rep);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_t *want = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:{s:{s:i,s:i}}}", "files", 1, "read", 3,
                             "kept", 1, "duplicates", 1, "bad", 1, "file_errors", 0, "domains", "d",
                             "train", 1, "eval", 0);
    json_t *kinds = json_object();
    for (int k = 0; k < RW_REJECT__COUNT; k++)
        json_object_set_new(kinds, rw_reject_name((rw_reject_t)k),
                            json_integer(k == RW_REJECT_MISSING_FIELD));
    json_object_set_new(want, "rejected", kinds);
    cr_assert(json_equal(j, want), "got %s", text);
    free(text);
    json_decref(want);
    json_decref(j);
    rw_import_report_fini(&rep);
    rw_dataset_fini(&ds);
}

static const rw_import_domain_t *domain(const rw_import_report_t *rep, const char *name)
{
    for (size_t i = 0; i < rep->n_domains; i++)
        if (strcmp(rep->domains[i].name, name) == 0)
            return &rep->domains[i];
    cr_assert_fail("no domain %s", name);
    return NULL;
}

static size_t kept(const rw_import_report_t *rep, const char *name)
{
    const rw_import_domain_t *d = domain(rep, name);
    return d->train + d->eval;
}

Test(import, real_hh_rlhf)
{
    RWT_REQUIRE_SHARED_DATA();
    const char *names[] = {"helpful-base", "helpful-online", "helpful-rejection-sampled",
                           "harmless-base"};
    char paths[4][512];
    const char *pp[4];
    for (int i = 0; i < 4; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/hh-rlhf/%s.jsonl.gz", rwt_shared_data(), names[i]);
        pp[i] = paths[i];
    }
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    double t0 = rw_now_s();
    cr_assert_eq(rw_import_files(&ds, pp, 4, &o, &rep), 0);
    double secs = rw_now_s() - t0;
    cr_log_info("hh-rlhf: %zu records in %.3f s", rep.read, secs);
#if !defined(__SANITIZE_ADDRESS__)
    cr_assert_lt(secs, 3.0, "importing hh-rlhf took %.3f s", secs);
#endif
    cr_assert_eq(rep.files, 4);
    cr_assert_eq(rep.read, 7280);
    cr_assert_eq(rep.kept, 7228);
    cr_assert_eq(rep.bad, 52);
    cr_assert_eq(rep.duplicates, 0);
    cr_assert_eq(rep.file_errors, 0);
    cr_assert_eq(rep.rejected[RW_REJECT_PROMPTS_DIFFER], 16);
    cr_assert_eq(rep.rejected[RW_REJECT_EMPTY_FIELD], 11);
    cr_assert_eq(rep.rejected[RW_REJECT_SAME_REPLIES], 25);
    cr_assert_eq(rep.n_domains, 4);
    cr_assert_eq(kept(&rep, "helpful-base"), 1994);              /* of 2,009 */
    cr_assert_eq(kept(&rep, "helpful-online"), 948);             /* of 953 */
    cr_assert_eq(kept(&rep, "helpful-rejection-sampled"), 2335); /* of 2,359 */
    cr_assert_eq(kept(&rep, "harmless-base"), 1951);             /* of 1,959 */
    cr_assert_eq(domain(&rep, "helpful-base")->eval, 219);
    cr_assert_eq(domain(&rep, "helpful-online")->eval, 96);
    cr_assert_eq(domain(&rep, "helpful-rejection-sampled")->eval, 205);
    cr_assert_eq(domain(&rep, "harmless-base")->eval, 196);
    /* known defects, by file and line */
    cr_assert_eq(s.n, 52);
    expect_seen(&s, 0, 107, RW_REJECT_EMPTY_FIELD, "empty reply in \"rejected\"");
    expect_seen(&s, 1, 147, RW_REJECT_PROMPTS_DIFFER, "prompts of chosen and rejected differ");
    cr_assert(strstr(s.r[0].path, "helpful-base.jsonl.gz"));
    rw_import_report_fini(&rep);
    rw_dataset_fini(&ds);
}

Test(import, real_summarize_from_feedback)
{
    RWT_REQUIRE_SHARED_DATA();
    const char *names[] = {"batch13", "batch18", "cnndm0"};
    size_t want_read[] = {1097, 674, 437};
    rw_import_report_t total;
    rw_import_report_init(&total);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    seen_t s;
    rw_import_opts_t o = opts_with(&s);
    for (int i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/summarize-from-feedback/%s.json.gz", rwt_shared_data(),
                 names[i]);
        size_t before = total.read;
        cr_assert_eq(import1(&ds, path, &o, &total), 0);
        cr_assert_eq(total.read - before, want_read[i], "%s", names[i]);
    }
    cr_assert_eq(total.read, 2208);
    cr_assert_eq(total.kept, 1879);
    cr_assert_eq(total.duplicates, 317); /* the same comparison judged again */
    cr_assert_eq(total.bad, 12);
    cr_assert_eq(total.rejected[RW_REJECT_EMPTY_FIELD], 12); /* empty summaries in cnndm0 */
    expect_seen(&s, 0, 22, RW_REJECT_EMPTY_FIELD, "empty field \"summaries[0].text\"");
    cr_assert(strstr(s.r[0].path, "cnndm0.json.gz"));
    cr_assert_eq(total.n_domains, 29);
    cr_assert_eq(kept(&total, "news"), 299);
    cr_assert_eq(kept(&total, "relationships"), 830);
    cr_assert_eq(kept(&total, "AskReddit"), 201);
    cr_assert_eq(kept(&total, "tifu"), 129);
    cr_assert_eq(kept(&total, "relationship_advice"), 101);
    rw_import_report_fini(&total);
    rw_dataset_fini(&ds);
}
