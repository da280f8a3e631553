/* format.h — the shapes of preference record rewire reads, one JSON object a
 * line, and how each becomes a pair.
 *
 *   rewire     {"prompt","chosen","rejected","domain"?}; a "split" is ignored
 *              (the importer recomputes it). Without "domain" the domain
 *              option is used; without either the record is bad.
 *   hh         Anthropic HH-RLHF: {"chosen","rejected"}, two whole transcripts
 *              "\n\nHuman: ...\n\nAssistant: ...". The prompt is everything
 *              before the last "\n\nAssistant:" (the same in both, or the
 *              record is bad), each reply what follows it less one leading
 *              space. Domain: the domain option, else the file's name.
 *   summarize  OpenAI summarize-from-feedback: {"info", "summaries": [2],
 *              "choice": 0|1}. A Reddit post (info.post) becomes
 *              "SUBREDDIT: r/S\nTITLE: T\nPOST: P\n\nTL;DR:", a news article
 *              (info.article) "TITLE: T\nARTICLE: A\n\nTL;DR:" (no TITLE
 *              line when it has none). Domain: the domain option, else the
 *              subreddit, or "news" for articles.
 *   normalized rewire's own output: all of prompt, chosen, rejected, domain
 *              and "split" ("train"|"eval"), which is kept.
 *
 * Everywhere: prompt, chosen, rejected and domain must be non-empty strings,
 * chosen must differ from rejected, and the domain must be a name
 * (rw_name_ok): it travels in the job's messages and names files.
 */
#ifndef RW_FORMAT_H
#define RW_FORMAT_H

#include "pair.h"
#include "reject.h"

#include <jansson.h>

/* A name — a domain, a worker id — is 1 to max of [A-Za-z0-9._:-],
 * starting with a letter or digit: what the job's messages accept. A
 * domain or a worker id has at most RW_NAME_MAX. */
#define RW_NAME_MAX  64
#define RW_NAME_RULE "1 to 64 of [A-Za-z0-9._:-], starting with a letter or digit"
int rw_name_ok(const char *s, size_t n, size_t max);

typedef enum {
    RW_FORMAT_AUTO = 0, /* decide from the first record (rw_format_detect) */
    RW_FORMAT_REWIRE,
    RW_FORMAT_HH,
    RW_FORMAT_SUMMARIZE,
    RW_FORMAT_NORMALIZED,
    RW_FORMAT__COUNT
} rw_format_t;

/* "auto", "rewire", "hh", "summarize", "normalized"; never NULL. */
const char *rw_format_name(rw_format_t f);
/* The format named name; returns it, or RW_EINVAL for an unknown name. */
int rw_format_from_name(const char *name);
/* The format a record's keys point to: info and summaries → summarize,
 * prompt → rewire, chosen and rejected → hh; RW_FORMAT_AUTO if none. */
rw_format_t rw_format_detect(const json_t *rec);
/* The domain a file's name gives: its base name less .jsonl.gz, .json.gz,
 * .jsonl or .json. Returns a string the caller frees, or NULL if the name
 * is not valid UTF-8. */
char *rw_format_file_domain(const char *path);

/* What a record's file and the caller add to it (all borrowed, may be NULL). */
typedef struct rw_format_ctx {
    const char *domain;      /* the domain option */
    const char *file_domain; /* rw_format_file_domain() of the record's file */
} rw_format_ctx_t;

/* Turns rec (a JSON object, borrowed) in format f (not AUTO) into *out,
 * whose strings the caller then owns (rw_pair_fini). out->split is set only
 * by the normalized format (RW_SPLIT_TRAIN otherwise). Returns 0, or
 * RW_EBADREC with *rj saying why (and *out zeroed); RW_EINVAL when f is
 * AUTO or out of range. */
int rw_format_record(rw_format_t f, const json_t *rec, const rw_format_ctx_t *ctx, rw_pair_t *out,
                     rw_rejection_t *rj);

#endif
