/* test_format.c — record shapes: detection, the pairs each makes, and why
 * a record is refused. */
#include "err.h"
#include "format.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert_not_null(j, "fixture: %s", e.text);
    return j;
}

/* Runs f on text; returns the rc, with *p and *rj filled. */
static int record(rw_format_t f, const char *text, const char *domain, const char *file_domain,
                  rw_pair_t *p, rw_rejection_t *rj)
{
    json_t *j = parse(text);
    rw_format_ctx_t ctx = {.domain = domain, .file_domain = file_domain};
    memset(rj, 0, sizeof *rj);
    int rc = rw_format_record(f, j, &ctx, p, rj);
    json_decref(j);
    return rc;
}

static void expect_pair(const rw_pair_t *p, const char *prompt, const char *chosen,
                        const char *rejected, const char *domain)
{
    cr_assert_str_eq(p->prompt, prompt);
    cr_assert_eq(p->prompt_len, strlen(prompt));
    cr_assert_str_eq(p->chosen, chosen);
    cr_assert_eq(p->chosen_len, strlen(chosen));
    cr_assert_str_eq(p->rejected, rejected);
    cr_assert_eq(p->rejected_len, strlen(rejected));
    cr_assert_str_eq(p->domain, domain);
}

static void expect_reject(rw_format_t f, const char *text, const char *domain, rw_reject_t why,
                          const char *msg)
{
    rw_pair_t p;
    rw_rejection_t rj;
    int rc = record(f, text, domain, "file", &p, &rj);
    cr_assert_eq(rc, RW_EBADREC, "accepted %s", text);
    cr_assert_eq(rj.why, why, "%s: kind %s, want %s", text, rw_reject_name(rj.why),
                 rw_reject_name(why));
    cr_assert_str_eq(rj.msg, msg);
    cr_assert_null(p.prompt);
}

Test(format, names_round_trip)
{
    for (int f = 0; f < RW_FORMAT__COUNT; f++)
        cr_assert_eq(rw_format_from_name(rw_format_name((rw_format_t)f)), f);
    cr_assert_eq(rw_format_from_name("jsonl"), RW_EINVAL);
    cr_assert_eq(rw_format_from_name(NULL), RW_EINVAL);
}

Test(format, detects_from_keys)
{
    const struct {
        const char *text;
        rw_format_t want;
    } cases[] = {
        {"{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\"}", RW_FORMAT_REWIRE},
        {"{\"chosen\":\"a\",\"rejected\":\"b\"}", RW_FORMAT_HH},
        {"{\"info\":{},\"summaries\":[],\"choice\":0}", RW_FORMAT_SUMMARIZE},
        {"{\"chosen\":\"a\"}", RW_FORMAT_AUTO},
        {"{\"info\":{}}", RW_FORMAT_AUTO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = parse(cases[i].text);
        cr_assert_eq(rw_format_detect(j), cases[i].want, "%s", cases[i].text);
        json_decref(j);
    }
}

Test(format, file_domain_is_the_base_name_less_json_extensions)
{
    const char *cases[][2] = {
        {"/data/hh-rlhf/helpful-base.jsonl.gz", "helpful-base"},
        {"harmless-base.jsonl", "harmless-base"},
        {"x/batch13.json.gz", "batch13"},
        {"a.b.json", "a.b"},
        {"notes.txt", "notes.txt"},
        {"dir/.jsonl", ".jsonl"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *d = rw_format_file_domain(cases[i][0]);
        cr_assert_str_eq(d, cases[i][1]);
        free(d);
    }
    cr_assert_null(rw_format_file_domain("bad\xff.jsonl"));
}

Test(format, rewire_records_take_the_domain_option_only_when_they_have_none)
{
    rw_pair_t p;
    rw_rejection_t rj;
    cr_assert_eq(record(RW_FORMAT_REWIRE,
                        "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\","
                        "\"split\":\"eval\"}",
                        "opt", NULL, &p, &rj),
                 0);
    expect_pair(&p, "p", "a", "b", "d");
    cr_assert_eq(p.split, RW_SPLIT_TRAIN); /* the importer recomputes it */
    rw_pair_fini(&p);
    cr_assert_eq(record(RW_FORMAT_REWIRE, "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\"}",
                        "opt", NULL, &p, &rj),
                 0);
    expect_pair(&p, "p", "a", "b", "opt");
    rw_pair_fini(&p);
    expect_reject(RW_FORMAT_REWIRE, "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\"}", NULL,
                  RW_REJECT_MISSING_FIELD, "missing field \"domain\"");
}

Test(format, rewire_refusals)
{
    const char *d = "dom";
    expect_reject(RW_FORMAT_REWIRE, "{\"prompt\":\"p\",\"rejected\":\"b\"}", d,
                  RW_REJECT_MISSING_FIELD, "missing field \"chosen\"");
    expect_reject(RW_FORMAT_REWIRE, "{\"prompt\":\"p\",\"chosen\":1,\"rejected\":\"b\"}", d,
                  RW_REJECT_WRONG_TYPE, "field \"chosen\" is not a string");
    expect_reject(RW_FORMAT_REWIRE, "{\"prompt\":\"\",\"chosen\":\"a\",\"rejected\":\"b\"}", d,
                  RW_REJECT_EMPTY_FIELD, "empty field \"prompt\"");
    expect_reject(RW_FORMAT_REWIRE, "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"\"}", d,
                  RW_REJECT_EMPTY_FIELD, "empty field \"rejected\"");
    expect_reject(RW_FORMAT_REWIRE,
                  "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"\"}", d,
                  RW_REJECT_EMPTY_FIELD, "empty field \"domain\"");
    expect_reject(RW_FORMAT_REWIRE,
                  "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":[]}", d,
                  RW_REJECT_WRONG_TYPE, "field \"domain\" is not a string");
    expect_reject(RW_FORMAT_REWIRE, "{\"prompt\":\"p\",\"chosen\":\"same\",\"rejected\":\"same\"}",
                  d, RW_REJECT_SAME_REPLIES, "chosen and rejected are identical");
}

Test(format, hh_splits_at_the_last_assistant_turn)
{
    rw_pair_t p;
    rw_rejection_t rj;
    const char *text = "{\"chosen\":\"\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: how?"
                       "\\n\\nAssistant: Like this.\\n\\nAssistant:x\","
                       "\"rejected\":\"\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: how?"
                       "\\n\\nAssistant: Like this.\\n\\nAssistant:  No.\"}";
    cr_assert_eq(record(RW_FORMAT_HH, text, NULL, "helpful-base", &p, &rj), 0, "%s", rj.msg);
    expect_pair(&p, "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how?\n\nAssistant: Like this.",
                "x", " No.", "helpful-base");
    rw_pair_fini(&p);
    cr_assert_eq(record(RW_FORMAT_HH, text, "opt", "helpful-base", &p, &rj), 0);
    cr_assert_str_eq(p.domain, "opt");
    rw_pair_fini(&p);
}

Test(format, hh_refusals)
{
    expect_reject(RW_FORMAT_HH,
                  "{\"chosen\":\"\\n\\nHuman: a\\n\\nAssistant: x\","
                  "\"rejected\":\"\\n\\nHuman: b\\n\\nAssistant: y\"}",
                  NULL, RW_REJECT_PROMPTS_DIFFER, "prompts of chosen and rejected differ");
    expect_reject(RW_FORMAT_HH,
                  "{\"chosen\":\"\\n\\nHuman: a\\n\\nAssistant: \","
                  "\"rejected\":\"\\n\\nHuman: a\\n\\nAssistant: y\"}",
                  NULL, RW_REJECT_EMPTY_FIELD, "empty reply in \"chosen\"");
    expect_reject(RW_FORMAT_HH,
                  "{\"chosen\":\"\\n\\nHuman: a\\n\\nAssistant: x\","
                  "\"rejected\":\"\\n\\nHuman: a\\n\\nAssistant:\"}",
                  NULL, RW_REJECT_EMPTY_FIELD, "empty reply in \"rejected\"");
    expect_reject(RW_FORMAT_HH,
                  "{\"chosen\":\"\\n\\nHuman: a\\n\\nAssistant: x\","
                  "\"rejected\":\"\\n\\nHuman: a\\n\\nAssistant: x\"}",
                  NULL, RW_REJECT_SAME_REPLIES, "chosen and rejected are identical");
    expect_reject(RW_FORMAT_HH,
                  "{\"chosen\":\"\\n\\nAssistant: x\",\"rejected\":\"\\n\\nAssistant: y\"}", NULL,
                  RW_REJECT_EMPTY_FIELD, "empty prompt");
    expect_reject(RW_FORMAT_HH,
                  "{\"chosen\":\"\\n\\nHuman: a\\nAssistant: x\","
                  "\"rejected\":\"\\n\\nHuman: a\\n\\nAssistant: y\"}",
                  NULL, RW_REJECT_NO_ASSISTANT_TURN, "no \"\\n\\nAssistant:\" turn in \"chosen\"");
    expect_reject(RW_FORMAT_HH, "{\"chosen\":\"\\n\\nHuman: a\\n\\nAssistant: x\"}", NULL,
                  RW_REJECT_MISSING_FIELD, "missing field \"rejected\"");
    expect_reject(RW_FORMAT_HH, "{\"chosen\":\"\",\"rejected\":\"x\"}", NULL, RW_REJECT_EMPTY_FIELD,
                  "empty field \"chosen\"");
    expect_reject(RW_FORMAT_HH, "{\"chosen\":null,\"rejected\":\"x\"}", NULL, RW_REJECT_WRONG_TYPE,
                  "field \"chosen\" is not a string");
}

Test(format, summarize_posts_and_articles)
{
    rw_pair_t p;
    rw_rejection_t rj;
    cr_assert_eq(record(RW_FORMAT_SUMMARIZE,
                        "{\"info\":{\"id\":\"t3\",\"post\":\"My post.\",\"title\":\"Help\","
                        "\"subreddit\":\"tifu\"},\"summaries\":[{\"text\":\" first\"},"
                        "{\"text\":\" second\"}],\"choice\":1}",
                        NULL, "batch13", &p, &rj),
                 0, "%s", rj.msg);
    expect_pair(&p, "SUBREDDIT: r/tifu\nTITLE: Help\nPOST: My post.\n\nTL;DR:", " second", " first",
                "tifu");
    rw_pair_fini(&p);
    cr_assert_eq(record(RW_FORMAT_SUMMARIZE,
                        "{\"info\":{\"id\":\"x\",\"article\":\"Story.\",\"site\":\"cnn\","
                        "\"title\":\"Headline\"},\"summaries\":[{\"text\":\"a\"},"
                        "{\"text\":\"b\"}],\"choice\":0}",
                        NULL, NULL, &p, &rj),
                 0, "%s", rj.msg);
    expect_pair(&p, "TITLE: Headline\nARTICLE: Story.\n\nTL;DR:", "a", "b", "news");
    rw_pair_fini(&p);
    cr_assert_eq(record(RW_FORMAT_SUMMARIZE,
                        "{\"info\":{\"article\":\"Story.\",\"site\":\"cnn\"},"
                        "\"summaries\":[{\"text\":\"a\"},{\"text\":\"b\"}],\"choice\":0}",
                        "mine", NULL, &p, &rj),
                 0, "%s", rj.msg);
    expect_pair(&p, "ARTICLE: Story.\n\nTL;DR:", "a", "b", "mine");
    rw_pair_fini(&p);
}

Test(format, summarize_refusals)
{
    const rw_format_t S = RW_FORMAT_SUMMARIZE;
    const char *post = "\"info\":{\"post\":\"P\",\"title\":\"T\",\"subreddit\":\"s\"}";
    const char *two = "\"summaries\":[{\"text\":\"a\"},{\"text\":\"b\"}]";
    char buf[512];
    snprintf(buf, sizeof buf, "{%s,%s,\"choice\":2}", post, two);
    expect_reject(S, buf, NULL, RW_REJECT_BAD_CHOICE, "choice is not 0 or 1");
    snprintf(buf, sizeof buf, "{%s,%s,\"choice\":\"1\"}", post, two);
    expect_reject(S, buf, NULL, RW_REJECT_BAD_CHOICE, "choice is not 0 or 1");
    snprintf(buf, sizeof buf, "{%s,%s}", post, two);
    expect_reject(S, buf, NULL, RW_REJECT_MISSING_FIELD, "missing field \"choice\"");
    snprintf(buf, sizeof buf, "{%s,\"summaries\":[{\"text\":\"a\"}],\"choice\":0}", post);
    expect_reject(S, buf, NULL, RW_REJECT_BAD_SUMMARIES, "summaries is not an array of 2");
    snprintf(buf, sizeof buf, "{%s,\"summaries\":{},\"choice\":0}", post);
    expect_reject(S, buf, NULL, RW_REJECT_BAD_SUMMARIES, "summaries is not an array of 2");
    snprintf(buf, sizeof buf, "{%s,\"summaries\":[{\"text\":\"a\"},3],\"choice\":0}", post);
    expect_reject(S, buf, NULL, RW_REJECT_BAD_SUMMARIES, "summaries[1] is not an object");
    snprintf(buf, sizeof buf, "{%s,\"summaries\":[{\"text\":\"a\"},{\"text\":\"\"}],\"choice\":0}",
             post);
    expect_reject(S, buf, NULL, RW_REJECT_EMPTY_FIELD, "empty field \"summaries[1].text\"");
    snprintf(buf, sizeof buf, "{%s,\"summaries\":[{\"x\":\"a\"},{\"text\":\"b\"}],\"choice\":1}",
             post);
    expect_reject(S, buf, NULL, RW_REJECT_MISSING_FIELD, "missing field \"summaries[0].text\"");
    snprintf(buf, sizeof buf, "{\"info\":{\"title\":\"T\"},%s,\"choice\":0}", two);
    expect_reject(S, buf, NULL, RW_REJECT_MISSING_FIELD,
                  "missing field \"info.post\" or \"info.article\"");
    snprintf(buf, sizeof buf, "{\"info\":{\"post\":\"P\",\"title\":\"T\"},%s,\"choice\":0}", two);
    expect_reject(S, buf, NULL, RW_REJECT_MISSING_FIELD, "missing field \"info.subreddit\"");
    snprintf(buf, sizeof buf, "{\"info\":\"x\",%s,\"choice\":0}", two);
    expect_reject(S, buf, NULL, RW_REJECT_WRONG_TYPE, "field \"info\" is not an object");
    snprintf(buf, sizeof buf, "{%s,\"choice\":0}", two);
    expect_reject(S, buf, NULL, RW_REJECT_MISSING_FIELD, "missing field \"info\"");
    snprintf(buf, sizeof buf,
             "{%s,\"summaries\":[{\"text\":\"same\"},{\"text\":\"same\"}],\"choice\":0}", post);
    expect_reject(S, buf, NULL, RW_REJECT_SAME_REPLIES, "chosen and rejected are identical");
}

Test(format, normalized_keeps_the_split_and_needs_it)
{
    rw_pair_t p;
    rw_rejection_t rj;
    const char *base = "\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\"";
    char buf[256];
    snprintf(buf, sizeof buf, "{%s,\"split\":\"eval\"}", base);
    cr_assert_eq(record(RW_FORMAT_NORMALIZED, buf, "ignored", NULL, &p, &rj), 0);
    expect_pair(&p, "p", "a", "b", "d");
    cr_assert_eq(p.split, RW_SPLIT_EVAL);
    rw_pair_fini(&p);
    snprintf(buf, sizeof buf, "{%s,\"split\":\"test\"}", base);
    expect_reject(RW_FORMAT_NORMALIZED, buf, NULL, RW_REJECT_BAD_SPLIT,
                  "field \"split\" is not \"train\" or \"eval\"");
    snprintf(buf, sizeof buf, "{%s}", base);
    expect_reject(RW_FORMAT_NORMALIZED, buf, NULL, RW_REJECT_MISSING_FIELD,
                  "missing field \"split\"");
    expect_reject(RW_FORMAT_NORMALIZED,
                  "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"split\":\"train\"}",
                  "opt", RW_REJECT_MISSING_FIELD, "missing field \"domain\"");
}

Test(format, auto_is_not_a_shape)
{
    rw_pair_t p;
    rw_rejection_t rj;
    cr_assert_eq(record(RW_FORMAT_AUTO, "{}", NULL, NULL, &p, &rj), RW_EINVAL);
}

/* A domain travels in the job's messages and names files, so it must be a
 * name there too; the rule is the wire's. */
Test(format, a_domain_that_is_not_a_name_is_refused)
{
    static const char why[] =
        " is not a name (1 to 64 of [A-Za-z0-9._:-], starting with a letter or digit)";
    char want[160];
    const char *bad[] = {
        "a b",  "../../etc",
        "-x",   "caf\xc3\xa9",
        "x\ny", "a1234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "prompt", "p", "chosen", "a", "rejected", "b",
                              "domain", bad[i]);
        char *text = json_dumps(j, 0);
        snprintf(want, sizeof want, "domain '%.40s'%s", bad[i], why);
        expect_reject(RW_FORMAT_REWIRE, text, NULL, RW_REJECT_BAD_DOMAIN, want);
        free(text);
        json_decref(j);
    }
    /* an HH file's name is its records' domain */
    rw_pair_t p;
    rw_rejection_t rj;
    const char *hh = "{\"chosen\":\"\\n\\nHuman: a\\n\\nAssistant: x\","
                     "\"rejected\":\"\\n\\nHuman: a\\n\\nAssistant: y\"}";
    cr_assert_eq(record(RW_FORMAT_HH, hh, NULL, "helpful online (v2)", &p, &rj), RW_EBADREC);
    cr_assert_eq(rj.why, RW_REJECT_BAD_DOMAIN);
    cr_assert_eq(record(RW_FORMAT_HH, hh, "helpful-online.v2", "helpful online (v2)", &p, &rj), 0,
                 "--domain names it: %s", rj.msg);
    rw_pair_fini(&p);
    const char *good[] = {
        "a",       "helpful-base",
        "news",    "AskReddit",
        "x_1.2:3", "a123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_assert(rw_name_ok(good[i], strlen(good[i]), RW_NAME_MAX), "%s", good[i]);
}
