/* cmd_score.c — `rewire score`: rewards for JSON Lines on stdin.
 *
 * Each input line is {"prompt", "response"} (one reward) or {"prompt",
 * "chosen", "rejected"} (both rewards and their margin); each gets one JSON
 * line out, in input order, carrying its input line number (and its "id",
 * if it had one). A router model answers with the domain it picks and how
 * sure it is. A bad line is reported as `stdin:LINE: reason`, skipped, and
 * scoring goes on. Inputs are gathered into batches as large as the engine
 * takes, so the forward passes run batched and threaded.
 */
#include "cli.h"
#include "rmodel.h"

#include "alloc.h"
#include "err.h"
#include "lines.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *const score_usage =
    "usage: rewire score --model PATH [--base PATH] [--batch N] [--threads N] [--json]\n"
    "       rewire score --bundle DIR\n"
    "\n"
    "Reads JSON Lines on stdin, one object a line:\n"
    "  {\"prompt\": ..., \"response\": ...}                  -> {\"line\", \"reward\"}\n"
    "  {\"prompt\": ..., \"chosen\": ..., \"rejected\": ...}   -> {\"line\", \"chosen_reward\",\n"
    "                                                        \"rejected_reward\", \"margin\"}\n"
    "and writes one JSON line per input on stdout, in order (an input's \"id\" is\n"
    "copied). A router model answers {\"line\", \"domain\", \"confidence\", \"probs\"}:\n"
    "the domain it picks, that domain's probability, and every domain's. A bad\n"
    "line is reported on stderr as stdin:LINE: reason and skipped, and the exit\n"
    "status is then 1 (every good line is still answered).\n"
    "\n"
    "  --model PATH           what `rewire train` wrote\n"
    "  --base PATH            an adapter's base model (default: the path it records)\n"
    "  --bundle DIR           a bundle of any kind: answers also name the routed\n"
    "                         \"domain\" (null for baseline and moe)\n"
    "  --batch N              sequences per forward pass (64)\n"
    "  --threads N            threads (one per CPU)\n"
    "  --json                 accepted for uniformity: the output is always JSON Lines\n";

/* One input waiting in the batch. */
typedef struct item {
    long line;
    int pair;       /* 1: chosen and rejected; 0: one response (or a prompt to route) */
    size_t p[2];    /* prompt ids [p0, p1) in the shared buffer */
    size_t r[2][2]; /* replies' ids */
    json_t *id;     /* the input's "id" (owned reference), or NULL */
} item_t;

typedef struct scorer {
    cli_rmodel_t m;
    rw_engine_t *e;
    rw_batch_t b;
    float *out;
    int router;
    size_t O;
    item_t *items;
    size_t n_items, seqs;
    int32_t *ids;
    size_t n_ids, cap_ids;
    long scored, bad;
} scorer_t;

/* The name of a router's class c: its domain, or "#c" where the model names
 * no domain for it (or one an earlier class has), so every class is there
 * once in "probs". */
static const char *class_name(const scorer_t *s, size_t c, char *buf, size_t n)
{
    const char *name = c < s->m.n_domains ? s->m.domains[c] : NULL;
    for (size_t k = 0; name && k < c; k++)
        if (!strcmp(s->m.domains[k], name))
            name = NULL;
    if (name)
        return name;
    snprintf(buf, n, "#%zu", c);
    return buf;
}

static void emit(scorer_t *s, const item_t *it, const float *x)
{
    json_t *o = json_object();
    if (it->id)
        json_object_set(o, "id", it->id);
    json_object_set_new(o, "line", json_integer(it->line));
    if (s->router) {
        size_t arg = 0;
        for (size_t c = 1; c < s->O; c++)
            arg = x[c] > x[arg] ? c : arg;
        double z = 0;
        for (size_t c = 0; c < s->O; c++)
            z += exp((double)x[c] - (double)x[arg]);
        char buf[32];
        json_object_set_new(o, "domain", json_string(class_name(s, arg, buf, sizeof buf)));
        json_object_set_new(o, "confidence", cli_json_num(1.0 / z));
        json_t *pr = json_object();
        for (size_t c = 0; c < s->O; c++)
            json_object_set_new(pr, class_name(s, c, buf, sizeof buf),
                                cli_json_num(exp((double)x[c] - (double)x[arg]) / z));
        json_object_set_new(o, "probs", pr);
    } else if (it->pair) {
        json_object_set_new(o, "chosen_reward", cli_json_num(x[0]));
        json_object_set_new(o, "rejected_reward", cli_json_num(x[1]));
        json_object_set_new(o, "margin", cli_json_num((double)x[0] - (double)x[1]));
    } else {
        json_object_set_new(o, "reward", cli_json_num(x[0]));
    }
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
    puts(line);
    free(line);
    json_decref(o);
}

/* Scores every waiting input and prints them in order. Returns 0 or 1. */
static int flush_batch(scorer_t *s)
{
    if (!s->n_items)
        return 0;
    rw_batch_clear(&s->b);
    for (size_t i = 0; i < s->n_items; i++) {
        const item_t *it = &s->items[i];
        for (int k = 0; k < 1 + it->pair; k++)
            rw_batch_add(&s->b, s->ids + it->p[0], it->p[1] - it->p[0], s->ids + it->r[k][0],
                         it->r[k][1] - it->r[k][0], -1);
    }
    int rc = rw_engine_forward(s->e, &s->b, s->out);
    if (rc < 0) {
        cli_say("score", "the model failed on a batch: %s", rw_strerror(rc));
        return 1;
    }
    size_t seq = 0;
    for (size_t i = 0; i < s->n_items; i++) {
        emit(s, &s->items[i], s->out + seq * s->O);
        seq += 1 + (size_t)s->items[i].pair;
        json_decref(s->items[i].id);
    }
    fflush(stdout);
    s->scored += (long)s->n_items;
    s->n_items = s->seqs = s->n_ids = 0;
    return 0;
}

static void encode(scorer_t *s, const char *text, size_t span[2])
{
    span[0] = s->n_ids;
    rw_bpe_encode(s->m.bpe, text, strlen(text), &s->ids, &s->n_ids, &s->cap_ids);
    span[1] = s->n_ids;
}

/* Checks one input line and queues it; a bad one is said and counted. */
static int take_line(scorer_t *s, const char *text, size_t len, long line)
{
    json_error_t jerr;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *why = NULL;
    json_t *p = json_object_get(o, "prompt"), *r = json_object_get(o, "response");
    json_t *c = json_object_get(o, "chosen"), *j = json_object_get(o, "rejected");
    char msg[sizeof jerr.text + 16];
    if (!o)
        why = (snprintf(msg, sizeof msg, "not JSON: %s", jerr.text), msg);
    else if (!json_is_object(o))
        why = "not a JSON object";
    else if (!json_is_string(p))
        why = "no \"prompt\" string";
    else if ((c || j) && !(json_is_string(c) && json_is_string(j)))
        why = "\"chosen\" and \"rejected\" must both be strings";
    else if (!c && !s->router && !json_is_string(r))
        why = "needs a \"response\" string, or \"chosen\" and \"rejected\"";
    if (why) {
        fprintf(stderr, "stdin:%ld: %s\n", line, why);
        s->bad++;
        json_decref(o);
        return 0;
    }
    int pair = !s->router && c != NULL;
    if (s->seqs + 1 + (size_t)pair > rw_engine_max_batch(s->e) && flush_batch(s))
        return json_decref(o), 1;
    item_t *it = &s->items[s->n_items++];
    memset(it, 0, sizeof *it);
    it->line = line;
    it->pair = pair;
    it->id = json_incref(json_object_get(o, "id"));
    encode(s, json_string_value(p), it->p);
    if (s->router) {
        it->r[0][0] = it->r[0][1] = 0;
    } else {
        encode(s, json_string_value(pair ? c : r), it->r[0]);
        if (pair)
            encode(s, json_string_value(j), it->r[1]);
    }
    s->seqs += 1 + (size_t)pair;
    json_decref(o);
    return 0;
}

static int parse(int argc, char **argv, const char **model, const char **base, const char **bundle,
                 long *batch, long *threads)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},   {"bundle", required_argument, NULL, 'u'},
        {"base", required_argument, NULL, 'b'},    {"batch", required_argument, NULL, 'B'},
        {"threads", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int c;
    bool tuned = false; /* --batch or --threads: a model's engine */
    opterr = 0;
    optind = 1;
    while ((c = cli_getopt(argc, argv, ":h", longopts)) != -1) {
        tuned |= c == 'B' || c == 't';
        if (c == 'm')
            *model = optarg;
        else if (c == 'u')
            *bundle = optarg;
        else if (c == 'b')
            *base = optarg;
        else if (c == 'B' && rw_arg_long(optarg, 2, 4096, batch))
            return cli_usage_error("score", "--batch wants 2 to 4096, not '%s'", optarg);
        else if (c == 't' && rw_arg_long(optarg, 0, 256, threads))
            return cli_usage_error("score", "--threads wants 0 to 256, not '%s'", optarg);
        else if (c == 'h')
            return fputs(score_usage, stdout), 0;
        else if (c == ':')
            return cli_usage_error("score", "%s needs a value", argv[optind - 1]);
        else if (c == '?')
            return cli_usage_error("score", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind < argc)
        return cli_usage_error("score", "unexpected argument '%s' (inputs come on stdin)",
                               argv[optind]);
    if (!*model == !*bundle)
        return cli_usage_error("score", "give a model (--model PATH) or a bundle (--bundle DIR)");
    if (*bundle && (tuned || *base))
        return cli_usage_error("score", "--base, --batch and --threads go with --model: a bundle "
                                        "holds its own base and runs its members as it is");
    return -1;
}

int cli_score(int argc, char **argv)
{
    const char *model = NULL, *base = NULL, *bundle = NULL;
    long batch = 64, threads = 0;
    int rc = parse(argc, argv, &model, &base, &bundle, &batch, &threads);
    if (rc >= 0)
        return rc;
    if (bundle)
        return cli_score_bundle(bundle, 1);
    scorer_t s = {0};
    rw_lines_t *in = NULL;
    const char *line;
    rc = cli_rmodel_open(&s.m, "score", model, base);
    if (rc)
        goto done;
    s.router = cli_rmodel_head(&s.m) == RW_HEAD_CLASSIFIER;
    rc = cli_rmodel_engine(&s.m, "score", batch, threads, &s.e);
    if (rc)
        goto done;
    s.O = (size_t)rw_engine_outputs(s.e);
    rw_batch_init(&s.b, (size_t)batch, (size_t)s.m.model->cfg.max_len);
    s.out = rw_new_array(float, rw_array_size((size_t)batch, s.O));
    s.items = rw_new_array(item_t, (size_t)batch);
    if (!(in = cli_stdin_lines("score"))) {
        rc = 1;
        goto done;
    }
    long n = 0;
    size_t len, too_long = 0;
    int more;
    while (rc == 0 && (more = cli_stdin_next(in, "score", &line, &len, &n, &too_long)) > 0) {
        if (strspn(line, " \t\r") == len)
            continue; /* blank lines are no input */
        rc = take_line(&s, line, len, n);
    }
    s.bad += (long)too_long;
    if (rc == 0)
        rc = flush_batch(&s);
    /* what is said last is the reason --json gives (cli_last_error): a read
     * error, or a failed batch, is that reason; the count of bad lines is
     * only when nothing else stopped the run */
    if (rc == 0 && more < 0) { /* said; every line before it is answered */
        rc = 1;
    } else if (rc == 0 && s.bad) { /* every good line is answered; the status says some were not */
        cli_say("score", "%ld scored, %ld bad line(s) skipped", s.scored, s.bad);
        rc = 1;
    }
done:
    rw_lines_destroy(&in);
    for (size_t i = 0; i < s.n_items; i++)
        json_decref(s.items[i].id);
    free(s.items);
    free(s.out);
    free(s.ids);
    rw_batch_fini(&s.b);
    rw_engine_destroy(&s.e);
    cli_rmodel_close(&s.m);
    return rc;
}
