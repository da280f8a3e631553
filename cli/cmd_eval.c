/* cmd_eval.c — `rewire eval`: how well a model does on held-out pairs.
 *
 * A reward model (dense, moe, or an adapter on its base) is judged by
 * pairwise accuracy — how often r(chosen) > r(rejected), a tie counting as
 * wrong — and the mean margin r(chosen) - r(rejected); a router by how often
 * it routes a prompt to its own domain. Both per domain and over all pairs,
 * on the eval split unless told otherwise. `--rule longer` scores the
 * domain-blind baseline "the longer reply wins" (in characters) the same
 * way, so a table of models and the rule needs nothing but rewire.
 */
#include "cli.h"
#include "rmodel.h"

#include "alloc.h"
#include "dataset.h"
#include "err.h"
#include "eval.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *const eval_usage =
    "usage: rewire eval --model PATH [--base PATH] --data FILE... [options]\n"
    "       rewire eval --bundle DIR --data FILE... [--oracle] [--json]\n"
    "       rewire eval --rule longer --data FILE... [options]\n"
    "\n"
    "Pairwise accuracy and mean reward margin of a model on held-out pairs, per\n"
    "domain and overall (a router: how often it routes a prompt to its domain).\n"
    "\n"
    "  --model PATH           what `rewire train` wrote (a model, router or adapter)\n"
    "  --base PATH            an adapter's base model (default: the path it records)\n"
    "  --bundle DIR           a bundle (baseline, moe, router or adapter), routed as it\n"
    "                         routes; --oracle adds accuracy with true-domain routing\n"
    "  --rule longer          score the rule \"the longer reply wins\" instead of a model\n"
    "  --data FILE            preference data (normalized or importable; repeatable)\n"
    "  --split S              eval (default), train or all\n"
    "  --domain NAME          only this domain (repeatable; not for a router)\n"
    "  --batch N              sequences per forward pass (64)\n"
    "  --threads N            threads (one per CPU)\n"
    "  --json                 print the result as JSON\n";

typedef struct eval_opts {
    const char **data, **domains;
    size_t n_data, n_domains;
    const char *model, *base, *rule, *bundle;
    rw_select_t split;
    long batch, threads;
    int json, oracle;
} eval_opts_t;

static int parse(int argc, char **argv, eval_opts_t *o)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"base", required_argument, NULL, 'b'},
        {"rule", required_argument, NULL, 'r'},
        {"bundle", required_argument, NULL, 'u'},
        {"oracle", no_argument, NULL, 'o'},
        {"data", required_argument, NULL, 'd'},
        {"split", required_argument, NULL, 's'},
        {"domain", required_argument, NULL, 'D'},
        {"batch", required_argument, NULL, 'B'},
        {"threads", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "eval";
    int c;
    bool model_only = false; /* --split, --domain, --batch or --threads */
    opterr = 0;
    optind = 1;
    while ((c = cli_getopt(argc, argv, ":h", longopts)) != -1) {
        model_only |= c == 's' || c == 'D' || c == 'B' || c == 't';
        switch (c) {
        case 'm':
            o->model = optarg;
            break;
        case 'b':
            o->base = optarg;
            break;
        case 'u':
            o->bundle = optarg;
            break;
        case 'o':
            o->oracle = 1;
            break;
        case 'r':
            if (strcmp(optarg, "longer") != 0)
                return cli_usage_error(cmd, "--rule knows only 'longer', not '%s'", optarg);
            o->rule = optarg;
            break;
        case 'd':
            o->data[o->n_data++] = optarg;
            break;
        case 'D':
            o->domains[o->n_domains++] = optarg;
            break;
        case 's':
            if (strcmp(optarg, "eval") == 0)
                o->split = RW_SEL_EVAL;
            else if (strcmp(optarg, "train") == 0)
                o->split = RW_SEL_TRAIN;
            else if (strcmp(optarg, "all") == 0)
                o->split = RW_SEL_ALL;
            else
                return cli_usage_error(cmd, "--split is eval, train or all, not '%s'", optarg);
            break;
        case 'B':
            if (rw_arg_long(optarg, 2, 4096, &o->batch))
                return cli_usage_error(cmd, "--batch wants 2 to 4096, not '%s'", optarg);
            break;
        case 't':
            if (rw_arg_long(optarg, 0, 256, &o->threads))
                return cli_usage_error(cmd, "--threads wants 0 to 256, not '%s'", optarg);
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            return fputs(eval_usage, stdout), 0;
        case ':':
            return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++)
        o->data[o->n_data++] = argv[i];
    if (!!o->model + !!o->rule + !!o->bundle != 1)
        return cli_usage_error(cmd, "give one of a model (--model PATH), a bundle (--bundle DIR) "
                                    "or a rule (--rule longer)");
    if (o->base && !o->model)
        return cli_usage_error(cmd, "--base goes with --model");
    if (o->bundle && model_only)
        return cli_usage_error(cmd, "--split, --domain, --batch and --threads go with --model or "
                                    "--rule: a bundle is judged on the eval split of every domain");
    if (o->oracle && !o->bundle)
        return cli_usage_error(cmd, "--oracle goes with --bundle");
    if (!o->n_data)
        return cli_usage_error(cmd, "no data (--data FILE)");
    return -1;
}

/* Characters of UTF-8 text: every byte but continuation bytes. */
static size_t chars(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* "The longer reply wins" on the selected pairs, as a report like a
 * model's; the margin is in characters. */
static json_t *rule_report(const rw_dataset_t *ds, const eval_opts_t *o)
{
    const char **names;
    size_t nd = o->n_domains ? o->n_domains : rw_dataset_domains(ds, &names);
    if (o->n_domains)
        names = rw_new_array(const char *, nd), memcpy(names, o->domains, nd * sizeof *names);
    rw_eval_stats_t all = {0}, *per = rw_new_array(rw_eval_stats_t, nd + 1);
    for (size_t i = 0; i < ds->n; i++) {
        const rw_pair_t *p = &ds->pairs[i];
        if (o->split != RW_SEL_ALL && (rw_select_t)p->split != o->split)
            continue;
        size_t d = 0;
        while (d < nd && strcmp(names[d], p->domain) != 0)
            d++;
        if (d == nd)
            continue;
        double m =
            (double)chars(p->chosen, p->chosen_len) - (double)chars(p->rejected, p->rejected_len);
        rw_eval_stats_t *s[2] = {&all, &per[d]};
        for (int k = 0; k < 2; k++)
            s[k]->n++, s[k]->correct += m > 0, s[k]->margin_sum += m;
    }
    rw_eval_finish(&all, 1);
    rw_eval_finish(per, nd);
    json_t *r = cli_eval_json(0, &all, per, names, nd);
    free(per);
    free(names);
    return r;
}

/* The model's report on the selected pairs; NULL after saying why. */
static json_t *model_report(const rw_dataset_t *ds, const eval_opts_t *o, cli_rmodel_t *m)
{
    int router = cli_rmodel_head(m) == RW_HEAD_CLASSIFIER;
    rw_trainset_opts_t to = {o->split, o->domains, o->n_domains, 0, (size_t)m->model->cfg.max_len};
    if (router) /* the classes, in the router's order */
        to = (rw_trainset_opts_t){o->split, m->domains, m->n_domains, 1, to.max_len};
    rw_trainset_t ts;
    rw_trainset_init(&ts);
    rw_engine_t *e = NULL;
    json_t *r = NULL;
    int rc = rw_trainset_build(&ts, ds, m->bpe, &to);
    if (rc < 0) {
        cli_say("eval", "cannot tokenize the data: %s", rw_strerror(rc));
        goto done;
    }
    long B = o->batch ? o->batch : 64;
    if (cli_rmodel_engine(m, "eval", B, o->threads, &e) == 0)
        r = cli_eval_report(e, &ts);
done:
    rw_engine_destroy(&e);
    rw_trainset_fini(&ts);
    return r;
}

int cli_eval(int argc, char **argv)
{
    eval_opts_t o = {0};
    o.data = rw_new_array(const char *, (size_t)argc + 1);
    o.domains = rw_new_array(const char *, (size_t)argc + 1);
    o.split = RW_SEL_EVAL;
    cli_rmodel_t m = {0};
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    json_t *r = NULL;
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        goto done;
    if (o.bundle) {
        rc = cli_eval_bundle(o.bundle, o.data, o.n_data, o.json, o.oracle);
        goto done;
    }
    rc = 0;
    if (o.model)
        rc = cli_rmodel_open(&m, "eval", o.model, o.base);
    if (rc == 0 && o.n_domains && o.model && cli_rmodel_head(&m) == RW_HEAD_CLASSIFIER)
        rc = cli_usage_error("eval", "--domain is not for a router: it is judged on its classes");
    if (rc == 0)
        rc = cli_read_data("eval", o.data, o.n_data, &ds);
    if (rc == 0 && !(r = o.rule ? rule_report(&ds, &o) : model_report(&ds, &o, &m)))
        rc = 1;
    static const char *const splits[] = {"train", "eval", "all"};
    json_int_t judged = rc ? 0
                           : json_integer_value(json_object_get(r, "pairs")) +
                                 json_integer_value(json_object_get(r, "prompts"));
    if (rc == 0 && judged == 0) {
        /* an accuracy of nothing is no figure: a truncated file, a wrong
         * --split or --domain */
        cli_say("eval", "the data holds no pair of the %s split%s to judge", splits[o.split],
                o.n_domains ? " and the --domain ones" : "");
        rc = 1;
    }
    if (rc)
        goto done;
    json_t *head =
        json_pack("{s:s, s:s}", "model", o.model ? o.model : "rule: the longer reply wins", "split",
                  splits[o.split]);
    if (o.model) {
        json_object_set_new(head, "variant", json_string(m.variant));
        json_object_set_new(head, "parameters", json_integer((json_int_t)cli_rmodel_params(&m)));
    }
    json_object_update(head, r);
    if (o.json) {
        cli_print_json(head);
    } else {
        if (o.model)
            printf("%s (%s, %.2f M parameters), %s split:\n", o.model, m.variant,
                   (double)cli_rmodel_params(&m) / 1e6, splits[o.split]);
        else
            printf("the longer reply wins (margin in characters), %s split:\n", splits[o.split]);
        cli_eval_print(stdout, r);
    }
    json_decref(head);
done:
    json_decref(r);
    rw_dataset_fini(&ds);
    cli_rmodel_close(&m);
    free(o.data);
    free(o.domains);
    return rc;
}
