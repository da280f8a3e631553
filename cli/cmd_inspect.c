/* cmd_inspect.c — `rewire inspect PATH`: what a bundle holds, and whether
 * its files are intact.
 *
 * Reads the manifest and checks every file's size and checksum without
 * loading a model, so a damaged bundle is still described, with the file
 * that fails named. Exit status 0 only when the manifest is valid and every
 * file verifies.
 */
#include "cli.h"

#include "bundle.h"
#include "err.h"
#include "lora.h"
#include "model.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const inspect_usage =
    "usage: rewire inspect PATH [--json]\n"
    "\n"
    "Describes the bundle in folder PATH: its kind and domains, each member's model\n"
    "configuration, parameter counts (all of the bundle, and what is loaded to score\n"
    "one pair), every file with its size and XXH64 checksum, verified against the\n"
    "file (OK, or why not), its provenance and, once evaluated, its results.\n"
    "Exits 1 if the manifest is malformed or any file fails to verify.\n"
    "\n"
    "  --json   print it as one JSON object: {\"path\", \"ok\", \"files\": [{\"name\",\n"
    "           \"bytes\", \"xxh64\", \"ok\", \"error\"?}], \"manifest\"}\n";

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void count(char *out, size_t n, json_int_t v)
{
    char d[32];
    snprintf(d, sizeof d, "%" JSON_INTEGER_FORMAT, v);
    size_t len = strlen(d), k = 0;
    for (size_t i = 0; i < len && k + 2 < n; i++) {
        if (i && (len - i) % 3 == 0 && d[i - 1] != '-')
            out[k++] = ',';
        out[k++] = d[i];
    }
    out[k] = 0;
}

/* "reward head, V 8192 T 128 C 256 L 4 NH 4 F 1024, mean pooling" and the
 * like, from a member's manifest entry. */
static void describe(const json_t *member, char *out, size_t n)
{
    char *cs = json_dumps(json_object_get(member, "config"), JSON_COMPACT);
    rw_model_config_t c;
    int ok = cs && rw_model_config_from_json(cs, &c) == 0;
    free(cs);
    if (!ok) {
        snprintf(out, n, "?");
        return;
    }
    char head[48] = "reward head", moe[48] = "";
    if (c.head == RW_HEAD_CLASSIFIER)
        snprintf(head, sizeof head, "classifier of %d", c.n_classes);
    if (c.n_experts)
        snprintf(moe, sizeof moe, " E %d top-%d %s gates", c.n_experts, c.top_k,
                 c.gate_input == RW_GATE_PROMPT ? "prompt" : "token");
    json_t *lo = json_object_get(member, "lora");
    if (lo) {
        char *ls = json_dumps(lo, JSON_COMPACT);
        rw_lora_config_t l;
        ok = ls && rw_lora_config_from_json(ls, &l) == 0;
        free(ls);
        if (ok && l.head == RW_HEAD_CLASSIFIER)
            snprintf(head, sizeof head, "classifier of %d", l.n_classes);
        else if (ok)
            snprintf(head, sizeof head, "reward head");
        snprintf(out, n, "LoRA r %d alpha %g on %s, %s; base V %d T %d C %d L %d NH %d F %d",
                 ok ? l.rank : 0, ok ? (double)l.alpha : 0.0,
                 str(lo, "targets")[0] ? str(lo, "targets") : "?", head, c.vocab, c.max_len,
                 c.d_model, c.n_layers, c.n_heads, c.d_ff);
        return;
    }
    snprintf(out, n, "%s, V %d T %d C %d L %d NH %d F %d%s, %s pooling", head, c.vocab, c.max_len,
             c.d_model, c.n_layers, c.n_heads, c.d_ff, moe,
             c.pooling == RW_POOL_LAST ? "last" : "mean");
}

/* A figure of the eval (null: "-"). */
static void fig(const json_t *o, const char *k, int width)
{
    json_t *v = json_object_get(o, k);
    if (json_is_number(v))
        printf("  %*.3f", width, json_number_value(v));
    else
        printf("  %*s", width, "-");
}

/* The widest of field key's strings over the objects of array a, at least
 * min: columns fit their longest entry (HH's domain names are long). */
static int widest(const json_t *a, const char *key, int min)
{
    const json_t *v;
    size_t i;
    int w = min;
    json_array_foreach(a, i, v)
    {
        const char *s = json_string_value(json_object_get(v, key));
        if (s && (int)strlen(s) > w)
            w = (int)strlen(s);
    }
    return w;
}

static void print_eval(const json_t *ev)
{
    const json_t *doms = json_object_get(ev, "domains");
    int dw = widest(doms, "name", 20);
    printf("\nevaluation\n  %-*s %7s  %8s  %8s  %8s  %8s\n", dw, "domain", "pairs", "accuracy",
           "margin", "oracle", "routing");
    json_t *d;
    size_t i;
    json_array_foreach(doms, i, d)
    {
        printf("  %-*s %7" JSON_INTEGER_FORMAT, dw, str(d, "name"),
               json_integer_value(json_object_get(d, "pairs")));
        fig(d, "accuracy", 8);
        fig(d, "margin", 8);
        fig(d, "oracle_accuracy", 8);
        fig(d, "route_accuracy", 8);
        printf("\n");
    }
    printf("  %-*s %7s", dw, "mean", "");
    fig(ev, "mean_accuracy", 8);
    printf("  %8s", "");
    fig(ev, "mean_oracle_accuracy", 8);
    fig(ev, "route_accuracy", 8);
    double s = json_number_value(json_object_get(ev, "seconds"));
    printf("\n  (%.2f s)\n", s);
}

static void print_text(const char *path, const json_t *m, const json_t *files)
{
    json_t *doms = json_object_get(m, "domains"), *v;
    size_t i;
    printf("bundle      %s\nkind        %s\ndomains     %zu:", path, str(m, "kind"),
           json_array_size(doms));
    json_array_foreach(doms, i, v) printf("%s %s", i ? "," : "", json_string_value(v));
    json_t *p = json_object_get(m, "params");
    char total[32], per[32];
    count(total, sizeof total, json_integer_value(json_object_get(p, "total")));
    count(per, sizeof per, json_integer_value(json_object_get(p, "per_pair")));
    printf("\nparameters  %s in the bundle, %s loaded to score one pair", total, per);
    if (json_object_get(p, "active_per_token")) {
        count(total, sizeof total, json_integer_value(json_object_get(p, "active_per_token")));
        printf(" (%s active per token)", total);
    }
    printf("\ntokenizer   %s, %" JSON_INTEGER_FORMAT " tokens\n\nmembers\n",
           str(json_object_get(m, "tokenizer"), "file"),
           json_integer_value(json_object_get(json_object_get(m, "tokenizer"), "vocab")));
    const json_t *members = json_object_get(m, "members");
    int mw = widest(members, "domain", 12), fw = widest(members, "file", 28);
    fw = widest(files, "name", fw);
    json_array_foreach(members, i, v)
    {
        char desc[256], params[32];
        describe(v, desc, sizeof desc);
        count(params, sizeof params, json_integer_value(json_object_get(v, "params")));
        printf("  %-15s %-*s %-*s %12s  %s\n", str(v, "role"), mw,
               json_object_get(v, "domain") ? str(v, "domain") : "-", fw, str(v, "file"), params,
               desc);
    }
    printf("\nfiles\n");
    json_array_foreach(files, i, v)
    {
        char bytes[32];
        count(bytes, sizeof bytes, json_integer_value(json_object_get(v, "bytes")));
        const char *name = str(v, "name"), *err = str(v, "error");
        size_t nl = strlen(name);
        if (strncmp(err, name, nl) == 0 && strncmp(err + nl, ": ", 2) == 0)
            err += nl + 2; /* the line names the file already */
        printf("  %-*s %14s bytes  xxh64 %s  %s%s\n", fw, name, bytes, str(v, "xxh64"),
               json_is_true(json_object_get(v, "ok")) ? "OK" : "FAILED: ", err);
    }
    printf("\nprovenance\n");
    const char *k;
    json_object_foreach(json_object_get(m, "provenance"), k, v)
    {
        char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        printf("  %-18s %s\n", k, s ? s : json_string_value(v));
        free(s);
    }
    json_t *ev = json_object_get(m, "eval");
    if (ev)
        print_eval(ev);
    else
        printf("\nevaluation  none recorded\n");
}

int cli_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = cli_getopt(argc, argv, ":h", longopts)) != -1) {
        if (c == 'j') {
            json = 1;
        } else if (c == 'h') {
            fputs(inspect_usage, stdout);
            return 0;
        } else {
            return cli_usage_error("inspect", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("inspect",
                               optind == argc ? "no bundle given" : "one bundle at a time");
    const char *path = argv[optind];
    char why[768];
    json_t *m;
    int rc = rw_bundle_manifest_read(path, &m, why, sizeof why);
    if (rc < 0) {
        cli_say("inspect", "%s: %s", path, why);
        if (json) {
            json_t *o = json_pack("{s:s, s:b, s:s}", "path", path, "ok", 0, "error", why);
            cli_print_json(o);
            json_decref(o);
        }
        return 1;
    }
    json_t *files = json_array(), *f;
    size_t i, bad = 0;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        json_t *e = json_deep_copy(f);
        rc = rw_bundle_file_verify(path, f, why, sizeof why);
        json_object_set_new(e, "ok", json_boolean(rc == 0));
        if (rc < 0) {
            json_object_set_new(e, "error", json_string(why));
            cli_say("inspect", "%s: %s", path, why);
            bad++;
        }
        json_array_append_new(files, e);
    }
    if (json) {
        json_t *o = json_pack("{s:s, s:b, s:O, s:O}", "path", path, "ok", bad == 0, "files", files,
                              "manifest", m);
        cli_print_json(o);
        json_decref(o);
    } else {
        print_text(path, m, files);
    }
    json_decref(files);
    json_decref(m);
    return bad ? 1 : 0;
}
