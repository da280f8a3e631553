/* format.c — record shapes (see format.h), one ops entry each.
 *
 * A parser fills a view: pointers into the JSON strings (or, for prompts it
 * has to assemble, a buffer of its own), so a record that turns out bad
 * costs no copies. Checks every format shares — chosen differs from
 * rejected — run once on the view, and only a good view is copied into a
 * pair.
 */
#include "format.h"

#include "alloc.h"
#include "err.h"
#include "utf8.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct format_view {
    const char *prompt, *chosen, *rejected, *domain;
    size_t prompt_len, chosen_len, rejected_len;
    char *prompt_buf; /* owned: an assembled prompt, or NULL */
    rw_split_t split;
} format_view_t;

typedef int (*format_record_fn)(const json_t *rec, const rw_format_ctx_t *ctx, format_view_t *v,
                                rw_rejection_t *rj);

/* Reads string field key of obj into *s and *n. label names it in messages.
 * Returns 0, or RW_EBADREC when it is absent, not a string, or empty (unless
 * allow_empty). */
static int get_string(const json_t *obj, const char *key, const char *label, int allow_empty,
                      const char **s, size_t *n, rw_rejection_t *rj)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return rw_reject(rj, RW_REJECT_MISSING_FIELD, "missing field \"%s\"", label);
    if (!json_is_string(v))
        return rw_reject(rj, RW_REJECT_WRONG_TYPE, "field \"%s\" is not a string", label);
    *s = json_string_value(v);
    *n = json_string_length(v);
    if (*n == 0 && !allow_empty)
        return rw_reject(rj, RW_REJECT_EMPTY_FIELD, "empty field \"%s\"", label);
    return 0;
}

/* The three text fields of the rewire and normalized shapes. */
static int get_texts(const json_t *rec, format_view_t *v, rw_rejection_t *rj)
{
    int rc = get_string(rec, "prompt", "prompt", 0, &v->prompt, &v->prompt_len, rj);
    if (rc == 0)
        rc = get_string(rec, "chosen", "chosen", 0, &v->chosen, &v->chosen_len, rj);
    if (rc == 0)
        rc = get_string(rec, "rejected", "rejected", 0, &v->rejected, &v->rejected_len, rj);
    return rc;
}

static int rewire_record(const json_t *rec, const rw_format_ctx_t *ctx, format_view_t *v,
                         rw_rejection_t *rj)
{
    int rc = get_texts(rec, v, rj);
    if (rc)
        return rc;
    const json_t *d = json_object_get(rec, "domain");
    if (d && !json_is_null(d)) {
        size_t n;
        return get_string(rec, "domain", "domain", 0, &v->domain, &n, rj);
    }
    if (!ctx->domain)
        return rw_reject(rj, RW_REJECT_MISSING_FIELD, "missing field \"domain\"");
    v->domain = ctx->domain;
    return 0;
}

static int normalized_record(const json_t *rec, const rw_format_ctx_t *ctx, format_view_t *v,
                             rw_rejection_t *rj)
{
    (void)ctx;
    const char *split = NULL;
    size_t n = 0;
    int rc = get_texts(rec, v, rj);
    if (rc == 0)
        rc = get_string(rec, "domain", "domain", 0, &v->domain, &n, rj);
    if (rc == 0)
        rc = get_string(rec, "split", "split", 0, &split, &n, rj);
    if (rc)
        return rc;
    if (strcmp(split, "train") == 0)
        v->split = RW_SPLIT_TRAIN;
    else if (strcmp(split, "eval") == 0)
        v->split = RW_SPLIT_EVAL;
    else
        return rw_reject(rj, RW_REJECT_BAD_SPLIT, "field \"split\" is not \"train\" or \"eval\"");
    return 0;
}

static const char HH_TURN[] = "\n\nAssistant:";
#define HH_TURN_LEN (sizeof HH_TURN - 1)

/* Offset of the last "\n\nAssistant:" in s[0..n), or -1. */
static long hh_last_turn(const char *s, size_t n)
{
    if (n < HH_TURN_LEN)
        return -1;
    size_t end = n - HH_TURN_LEN + 1; /* candidate starts are [0, end) */
    while (end > 0) {
        const char *p = memrchr(s, '\n', end);
        if (!p)
            return -1;
        size_t i = (size_t)(p - s);
        if (memcmp(p, HH_TURN, HH_TURN_LEN) == 0)
            return (long)i;
        end = i;
    }
    return -1;
}

/* Splits one transcript at its last Assistant turn: *cut is where the
 * prompt ends, *reply and *reply_len the reply less one leading space. */
static int hh_split(const char *t, size_t n, const char *field, size_t *cut, const char **reply,
                    size_t *reply_len, rw_rejection_t *rj)
{
    long at = hh_last_turn(t, n);
    if (at < 0)
        return rw_reject(rj, RW_REJECT_NO_ASSISTANT_TURN, "no \"\\n\\nAssistant:\" turn in \"%s\"",
                         field);
    *cut = (size_t)at;
    *reply = t + *cut + HH_TURN_LEN;
    *reply_len = n - *cut - HH_TURN_LEN;
    if (*reply_len > 0 && **reply == ' ') {
        (*reply)++;
        (*reply_len)--;
    }
    return 0;
}

static int hh_record(const json_t *rec, const rw_format_ctx_t *ctx, format_view_t *v,
                     rw_rejection_t *rj)
{
    const char *ct = NULL, *rt = NULL;
    size_t cn = 0, rn = 0, ccut, rcut;
    int rc = get_string(rec, "chosen", "chosen", 0, &ct, &cn, rj);
    if (rc == 0)
        rc = get_string(rec, "rejected", "rejected", 0, &rt, &rn, rj);
    if (rc == 0)
        rc = hh_split(ct, cn, "chosen", &ccut, &v->chosen, &v->chosen_len, rj);
    if (rc == 0)
        rc = hh_split(rt, rn, "rejected", &rcut, &v->rejected, &v->rejected_len, rj);
    if (rc)
        return rc;
    if (ccut != rcut || memcmp(ct, rt, ccut) != 0)
        return rw_reject(rj, RW_REJECT_PROMPTS_DIFFER, "prompts of chosen and rejected differ");
    if (ccut == 0)
        return rw_reject(rj, RW_REJECT_EMPTY_FIELD, "empty prompt");
    if (v->chosen_len == 0)
        return rw_reject(rj, RW_REJECT_EMPTY_FIELD, "empty reply in \"chosen\"");
    if (v->rejected_len == 0)
        return rw_reject(rj, RW_REJECT_EMPTY_FIELD, "empty reply in \"rejected\"");
    v->prompt = ct;
    v->prompt_len = ccut;
    v->domain = ctx->domain ? ctx->domain : ctx->file_domain;
    if (!v->domain)
        return rw_reject(rj, RW_REJECT_MISSING_FIELD,
                         "no domain: the file name is not valid UTF-8 and none was given");
    return 0;
}

/* A piece of text to join; PIECE() for a string literal. */
typedef struct piece {
    const char *s;
    size_t n;
} piece_t;
#define PIECE(lit)                                                                                 \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

/* Joins n pieces into a new NUL-terminated buffer; *len gets its length. */
static char *join(const piece_t *part, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += part[i].n;
    char *s = rw_malloc(total + 1);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(s + at, part[i].s, part[i].n);
        at += part[i].n;
    }
    s[at] = '\0';
    *len = total;
    return s;
}

/* Builds the prompt (and picks the domain) of a Reddit post. */
static int summarize_post(const json_t *info, format_view_t *v, rw_rejection_t *rj)
{
    const char *sub = NULL, *title = NULL, *post = NULL;
    size_t sub_n = 0, title_n = 0, post_n = 0;
    int rc = get_string(info, "post", "info.post", 0, &post, &post_n, rj);
    if (rc == 0)
        rc = get_string(info, "subreddit", "info.subreddit", 0, &sub, &sub_n, rj);
    if (rc == 0)
        rc = get_string(info, "title", "info.title", 1, &title, &title_n, rj);
    if (rc)
        return rc;
    const piece_t p[] = {PIECE("SUBREDDIT: r/"), {sub, sub_n},      PIECE("\nTITLE: "),
                         {title, title_n},       PIECE("\nPOST: "), {post, post_n},
                         PIECE("\n\nTL;DR:")};
    v->prompt_buf = join(p, sizeof p / sizeof p[0], &v->prompt_len);
    v->domain = sub;
    return 0;
}

/* Builds the prompt of a news article; its title is optional. */
static int summarize_article(const json_t *info, format_view_t *v, rw_rejection_t *rj)
{
    const char *title = NULL, *article = NULL;
    size_t title_n = 0, article_n = 0;
    int rc = get_string(info, "article", "info.article", 0, &article, &article_n, rj);
    const json_t *t = json_object_get(info, "title");
    if (rc == 0 && t && !json_is_null(t))
        rc = get_string(info, "title", "info.title", 1, &title, &title_n, rj);
    if (rc)
        return rc;
    const piece_t p[] = {PIECE("TITLE: "),   {title, title_n},     PIECE("\n"),
                         PIECE("ARTICLE: "), {article, article_n}, PIECE("\n\nTL;DR:")};
    size_t first = title_n ? 0 : 3; /* no TITLE line for an untitled article */
    v->prompt_buf = join(p + first, sizeof p / sizeof p[0] - first, &v->prompt_len);
    v->domain = "news";
    return 0;
}

/* The text of summaries[i]. */
static int summarize_text(const json_t *sums, size_t i, const char **s, size_t *n,
                          rw_rejection_t *rj)
{
    char label[32];
    const json_t *o = json_array_get(sums, i);
    if (!json_is_object(o))
        return rw_reject(rj, RW_REJECT_BAD_SUMMARIES, "summaries[%zu] is not an object", i);
    snprintf(label, sizeof label, "summaries[%zu].text", i);
    return get_string(o, "text", label, 0, s, n, rj);
}

static int summarize_record(const json_t *rec, const rw_format_ctx_t *ctx, format_view_t *v,
                            rw_rejection_t *rj)
{
    const json_t *info = json_object_get(rec, "info");
    const json_t *sums = json_object_get(rec, "summaries");
    const json_t *choice = json_object_get(rec, "choice");
    if (!info)
        return rw_reject(rj, RW_REJECT_MISSING_FIELD, "missing field \"info\"");
    if (!json_is_object(info))
        return rw_reject(rj, RW_REJECT_WRONG_TYPE, "field \"info\" is not an object");
    if (!sums)
        return rw_reject(rj, RW_REJECT_MISSING_FIELD, "missing field \"summaries\"");
    if (!json_is_array(sums) || json_array_size(sums) != 2)
        return rw_reject(rj, RW_REJECT_BAD_SUMMARIES, "summaries is not an array of 2");
    if (!choice)
        return rw_reject(rj, RW_REJECT_MISSING_FIELD, "missing field \"choice\"");
    if (!json_is_integer(choice) ||
        (json_integer_value(choice) != 0 && json_integer_value(choice) != 1))
        return rw_reject(rj, RW_REJECT_BAD_CHOICE, "choice is not 0 or 1");
    size_t c = (size_t)json_integer_value(choice);
    int rc = summarize_text(sums, c, &v->chosen, &v->chosen_len, rj);
    if (rc == 0)
        rc = summarize_text(sums, 1 - c, &v->rejected, &v->rejected_len, rj);
    if (rc)
        return rc;
    if (json_object_get(info, "post"))
        rc = summarize_post(info, v, rj);
    else if (json_object_get(info, "article"))
        rc = summarize_article(info, v, rj);
    else
        rc = rw_reject(rj, RW_REJECT_MISSING_FIELD,
                       "missing field \"info.post\" or \"info.article\"");
    if (rc == 0 && ctx->domain)
        v->domain = ctx->domain;
    return rc;
}

static const struct format_ops {
    const char *name;
    format_record_fn record; /* NULL for auto, which is not a shape */
} format_ops[RW_FORMAT__COUNT] = {
    [RW_FORMAT_AUTO] = {"auto", NULL},
    [RW_FORMAT_REWIRE] = {"rewire", rewire_record},
    [RW_FORMAT_HH] = {"hh", hh_record},
    [RW_FORMAT_SUMMARIZE] = {"summarize", summarize_record},
    [RW_FORMAT_NORMALIZED] = {"normalized", normalized_record},
};

const char *rw_format_name(rw_format_t f)
{
    return (unsigned)f < RW_FORMAT__COUNT ? format_ops[f].name : "unknown";
}

int rw_format_from_name(const char *name)
{
    for (int f = 0; f < RW_FORMAT__COUNT; f++)
        if (name && strcmp(name, format_ops[f].name) == 0)
            return f;
    return RW_EINVAL;
}

rw_format_t rw_format_detect(const json_t *rec)
{
    if (json_object_get(rec, "info") && json_object_get(rec, "summaries"))
        return RW_FORMAT_SUMMARIZE;
    if (json_object_get(rec, "prompt"))
        return RW_FORMAT_REWIRE;
    if (json_object_get(rec, "chosen") && json_object_get(rec, "rejected"))
        return RW_FORMAT_HH;
    return RW_FORMAT_AUTO;
}

int rw_name_ok(const char *s, size_t n, size_t max)
{
    static const char extra[] = "._:-";
    if (!s || n == 0 || n > max || !isalnum((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || (!isalnum(c) && (c == '\0' || !strchr(extra, c))))
            return 0;
    }
    return 1;
}

char *rw_format_file_domain(const char *path)
{
    static const char *const ext[] = {".jsonl.gz", ".json.gz", ".jsonl", ".json"};
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t n = strlen(base);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && memcmp(base + n - e, ext[i], e) == 0) {
            n -= e;
            break;
        }
    }
    if (rw_utf8_check(base, n) != n)
        return NULL;
    return rw_strndup(base, n);
}

int rw_format_record(rw_format_t f, const json_t *rec, const rw_format_ctx_t *ctx, rw_pair_t *out,
                     rw_rejection_t *rj)
{
    format_view_t v = {.split = RW_SPLIT_TRAIN};
    memset(out, 0, sizeof *out);
    if ((unsigned)f >= RW_FORMAT__COUNT || !format_ops[f].record)
        return RW_EINVAL;
    int rc = format_ops[f].record(rec, ctx, &v, rj);
    if (rc)
        goto done;
    if (v.chosen_len == v.rejected_len && memcmp(v.chosen, v.rejected, v.chosen_len) == 0) {
        rc = rw_reject(rj, RW_REJECT_SAME_REPLIES, "chosen and rejected are identical");
        goto done;
    }
    if (!rw_name_ok(v.domain, strlen(v.domain), RW_NAME_MAX)) {
        rc = rw_reject(rj, RW_REJECT_BAD_DOMAIN, "domain '%.40s' is not a name (" RW_NAME_RULE ")",
                       v.domain);
        goto done;
    }
    const char *prompt = v.prompt_buf ? v.prompt_buf : v.prompt;
    rw_pair_t p = {
        .prompt = v.prompt_buf ? v.prompt_buf : rw_strndup(prompt, v.prompt_len),
        .chosen = rw_strndup(v.chosen, v.chosen_len),
        .rejected = rw_strndup(v.rejected, v.rejected_len),
        .domain = rw_strdup(v.domain),
        .prompt_len = v.prompt_len,
        .chosen_len = v.chosen_len,
        .rejected_len = v.rejected_len,
        .split = v.split,
    };
    v.prompt_buf = NULL; /* now the pair's */
    *out = p;
done:
    free(v.prompt_buf);
    return rc;
}
