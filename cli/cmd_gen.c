/* cmd_gen.c — `rewire data gen`: writes the synthetic preference data.
 *
 * Generates the pairs of core/synth.h, gives each the split `data import`
 * would, and writes them with rw_dataset_save (whole or not at all). The
 * same options always give the same bytes.
 */
#include "cli.h"

#include "dataset.h"
#include "err.h"
#include "import.h"
#include "synth.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CMD "data gen"

static void usage(FILE *f)
{
    const char *const *names;
    size_t nd = rw_synth_domains(&names);
    fprintf(f,
            "usage: rewire data gen -o OUT [--seed N] [--pairs-per-domain N] [--domains A,B,...]\n"
            "                       [--noise F] [--json]\n\n"
            "Writes synthetic preference pairs as normalized JSON Lines\n"
            "{\"prompt\",\"chosen\",\"rejected\",\"domain\",\"split\"} (the split import gives).\n"
            "The same options always give the same file.\n\n"
            "  -o, --output OUT       file to write (replaced only once complete; - for stdout;\n"
            "                         --out too)\n"
            "  --seed N               0 to %ld (default 0)\n"
            "  --pairs-per-domain N   1 to %d (default %d)\n"
            "  --domains A,B,...      which domains, in this order (default all)\n"
            "  --noise F              fraction of each domain with chosen and rejected\n"
            "                         swapped, 0 to 1 (default 0)\n"
            "  --json                 print the summary as JSON on stdout\n\n"
            "domains:\n",
            LONG_MAX, RW_SYNTH_MAX_PAIRS, RW_SYNTH_DEFAULT_PAIRS);
    for (size_t i = 0; i < nd; i++)
        fprintf(f, "  %-12s %s\n", names[i], rw_synth_domain_rule(names[i]));
}

/* If argv[*i] is flag (as "FLAG VALUE" or "FLAG=VALUE"), sets *val and
 * returns 1 (*val NULL when the value is missing), moving *i past it. */
static int flag_value(int argc, char **argv, int *i, const char *flag, const char **val)
{
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *val = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    *val = rw_arg_next(argc, argv, *i);
    *i += *val != NULL;
    return 1;
}

/* Splits the comma list s into names[] (pointers into the copy *buf, which
 * the caller frees) after checking each is a domain named once. Returns
 * the count, or -1 after printing the usage error. */
static int parse_domains(const char *s, char **buf, const char **names, size_t cap)
{
    *buf = NULL;
    if (!*s || s[0] == ',' || s[strlen(s) - 1] == ',' || strstr(s, ",,")) {
        cli_usage_error(CMD, "--domains wants a comma-separated list of names, got '%s'", s);
        return -1;
    }
    const char *const *valid;
    size_t nvalid = rw_synth_domains(&valid), n = 0;
    *buf = strdup(s);
    for (char *save = NULL, *tok = strtok_r(*buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (!rw_synth_domain_rule(tok)) {
            fprintf(stderr, "rewire " CMD ": unknown domain '%s'; valid domains:", tok);
            for (size_t i = 0; i < nvalid; i++)
                fprintf(stderr, "%s%s", i ? ", " : " ", valid[i]);
            fprintf(stderr, "\n");
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            if (strcmp(names[i], tok) == 0) {
                cli_usage_error(CMD, "domain '%s' is listed twice", tok);
                return -1;
            }
        if (n < cap) /* always: cap is the number of domains and none repeats */
            names[n++] = tok;
    }
    return (int)n;
}

/* Prints how many pairs each domain got: text on stderr, or JSON on stdout. */
static void summary(const rw_dataset_t *ds, const char *out, const rw_synth_opts_t *o,
                    double seconds, int json)
{
    json_t *doms = json_object();
    for (size_t i = 0; i < ds->n;) {
        size_t j = i;
        while (j < ds->n && strcmp(ds->pairs[j].domain, ds->pairs[i].domain) == 0)
            j++;
        json_object_set_new(doms, ds->pairs[i].domain, json_integer((json_int_t)(j - i)));
        i = j;
    }
    if (json) {
        json_t *r = json_pack("{s:s, s:I, s:I, s:I, s:f, s:O, s:f}", "output", out, "seed",
                              (json_int_t)o->seed, "pairs", (json_int_t)ds->n, "pairs_per_domain",
                              (json_int_t)o->pairs_per_domain, "noise", o->noise, "domains", doms,
                              "seconds", seconds);
        cli_print_json(r);
        json_decref(r);
    } else {
        cli_say(CMD, "wrote %zu pairs to %s (seed %llu, noise %g) in %.3f s", ds->n, out,
                (unsigned long long)o->seed, o->noise, seconds);
        const char *name;
        json_t *v;
        json_object_foreach(doms, name, v)
        {
            fprintf(stderr, "  %-12s %lld\n", name, (long long)json_integer_value(v));
        }
    }
    json_decref(doms);
}

enum { OPT_OUT, OPT_SEED, OPT_PAIRS, OPT_DOMAINS, OPT_NOISE };

static const struct {
    const char *flag;
    int opt;
} value_flags[] = {
    {"-o", OPT_OUT},
    {"--out", OPT_OUT},
    {"--output", OPT_OUT}, /* as data import and tokenizer train spell it */
    {"--seed", OPT_SEED},
    {"--pairs-per-domain", OPT_PAIRS},
    {"--domains", OPT_DOMAINS},
    {"--noise", OPT_NOISE},
};

/* Applies one option that takes a value; returns 0, or 2 after the usage
 * error. */
static int apply(int opt, const char *val, rw_synth_opts_t *o, const char **out,
                 const char **domains)
{
    long n;
    switch (opt) {
    case OPT_OUT:
        *out = val;
        return 0;
    case OPT_SEED:
        if (rw_arg_long(val, 0, LONG_MAX, &n) < 0)
            return cli_usage_error(CMD, "--seed wants an integer from 0 to %ld, got '%s'", LONG_MAX,
                                   val);
        o->seed = (uint64_t)n;
        return 0;
    case OPT_PAIRS:
        if (rw_arg_long(val, 1, RW_SYNTH_MAX_PAIRS, &n) < 0)
            return cli_usage_error(CMD, "--pairs-per-domain wants 1 to %d, got '%s'",
                                   RW_SYNTH_MAX_PAIRS, val);
        o->pairs_per_domain = (size_t)n;
        return 0;
    case OPT_DOMAINS:
        *domains = val;
        return 0;
    default:
        if (rw_arg_real(val, 0, 1, &o->noise) < 0)
            return cli_usage_error(CMD, "--noise wants a fraction from 0 to 1, got '%s'", val);
        return 0;
    }
}

/* Parses argv into *o, *out and *domains; returns -1 to go on, or the exit
 * status (0 after --help, 2 after a usage error). */
static int parse_args(int argc, char **argv, rw_synth_opts_t *o, const char **out,
                      const char **domains, int *json)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            *json = 1;
            continue;
        }
        const char *val = NULL, *arg = argv[i];
        size_t k = 0, nflags = sizeof value_flags / sizeof value_flags[0];
        while (k < nflags && !flag_value(argc, argv, &i, value_flags[k].flag, &val))
            k++;
        if (k == nflags)
            return cli_usage_error(CMD, "unknown argument '%s'", arg);
        if (!val)
            return cli_usage_error(CMD, "%s wants a value", value_flags[k].flag);
        if (apply(value_flags[k].opt, val, o, out, domains) != 0)
            return 2;
    }
    if (!*out)
        return cli_usage_error(CMD, "-o OUT is required");
    return cli_data_out(CMD, out, *json) ? 2 : -1;
}

int cli_data_gen(int argc, char **argv)
{
    rw_synth_opts_t o = {.pairs_per_domain = RW_SYNTH_DEFAULT_PAIRS};
    const char *out = NULL, *domains = NULL, *names[32];
    int json = 0, rc = parse_args(argc, argv, &o, &out, &domains, &json);
    if (rc >= 0)
        return rc;
    char *buf = NULL;
    if (domains) {
        int nd = parse_domains(domains, &buf, names, sizeof names / sizeof names[0]);
        if (nd < 0) {
            free(buf);
            return 2;
        }
        o.domains = names;
        o.n_domains = (size_t)nd;
    }

    rw_dataset_t ds;
    rw_dataset_init(&ds);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = rw_synth_generate(&o, &ds);
    rw_dataset_assign_splits(&ds, RW_IMPORT_EVAL_FRACTION); /* the split import would give */
    if (rc < 0)
        cli_say(CMD, "%s", rw_strerror(rc));
    else if ((rc = rw_dataset_save(&ds, out)) < 0)
        cli_say(CMD, "cannot write %s: %s", out, rw_strerror(rc));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0)
        summary(&ds, out, &o,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, json);
    rw_dataset_fini(&ds);
    free(buf);
    return rc == 0 ? 0 : 1;
}
