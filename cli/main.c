/* main.c — `rewire`: the user's command line. Dispatches to cli_commands. */
#include "cli.h"

#include "blas.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

const cli_cmd_t cli_commands[] = {
    {NULL, "run", "run a whole job on this machine (default: built-in synthetic data)", cli_run},
    {NULL, "train", "train a reward model, router or adapter on preference files", cli_train},
    {NULL, "eval", "pairwise accuracy (or routing accuracy) per domain on held-out pairs",
     cli_eval},
    {NULL, "score", "rewards for JSON Lines on stdin", cli_score},
    {NULL, "version", "print the versions of rewire and its libraries", cli_version},
    {NULL, "inspect", "describe a bundle and verify its files' checksums", cli_inspect},
    {"data", "import", "import preference pairs (rewire, HH-RLHF, summarize) into one file",
     cli_data_import},
    {"data", "gen", "write the synthetic multi-domain preference data (JSON Lines)", cli_data_gen},
    {"data", "stats", "pairs per domain and token-length percentiles of preference files",
     cli_data_stats},
    {"tokenizer", "train", "train the shared byte-level BPE tokenizer (tokenizer.json)",
     cli_tokenizer_train},
    {"tokenizer", "encode", "token ids of a text", cli_tokenizer_encode},
    {"tokenizer", "decode", "the text of token ids", cli_tokenizer_decode},
    {"keys", "new", "make a CURVE key pair (NAME.key, NAME.pub) for encrypted connections",
     cli_keys_new},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: rewire [--version] COMMAND [ARGS...]\n\n"
               "Trains domain-routed reward models (moe, router, adapter bundles).\n\n"
               "commands:\n");
    for (const cli_cmd_t *c = cli_commands; c->name; c++) {
        char full[64];
        snprintf(full, sizeof full, "%s%s%s", c->group ? c->group : "", c->group ? " " : "",
                 c->name);
        fprintf(f, "  %-20s %s\n", full, c->summary);
    }
    fprintf(f,
            "\nEvery command takes --help. Global: --no-blas-switch keeps OpenBLAS's own kernel\n"
            "choice; RW_LOG=error|warn|info|debug sets the log level.\n");
}

/* A command's exit status, unless what it wrote to stdout was lost (a
 * full disk, a closed stdout): then that is said, and the status is 1. */
/* With --json a failed command still prints one JSON object on stdout, on
 * one line: after `score`'s JSON Lines it is one more line of them. */
static int finish_json(int rc, bool json)
{
    if (json && rc != 0 && !cli_json_printed) {
        json_t *o = json_pack("{s:b, s:i, s:s}", "ok", 0, "exit", rc, "error",
                              cli_last_error[0] ? cli_last_error : "see the messages on stderr");
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    }
    return rc;
}

static int finish(int rc)
{
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "rewire: cannot write the output: %s\n",
                errno ? strerror(errno) : "write error");
        return rc ? rc : 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    /* drop global flags that rw_blas_setup has already read */
    int n = 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--no-blas-switch") != 0)
            argv[n++] = argv[i];
    argc = n;
    argv[argc] = NULL;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return finish(0);
    }
    if (strcmp(argv[1], "--version") == 0)
        return finish(cli_version(argc - 1, argv + 1));
    bool json = false;
    for (int i = 2; i < argc; i++)
        json |= strcmp(argv[i], "--json") == 0;
    for (const cli_cmd_t *c = cli_commands; c->name; c++) {
        if (!c->group && strcmp(argv[1], c->name) == 0)
            return finish(finish_json(c->run(argc - 1, argv + 1), json));
        if (c->group && strcmp(argv[1], c->group) == 0 && argc > 2 && strcmp(argv[2], c->name) == 0)
            return finish(finish_json(c->run(argc - 2, argv + 2), json));
    }
    int group = 0;
    for (const cli_cmd_t *c = cli_commands; c->name; c++)
        if (c->group && strcmp(argv[1], c->group) == 0)
            group = 1;
    if (group) { /* `rewire data --help` lists the group's commands */
        bool help = argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
        FILE *f = help ? stdout : stderr;
        if (help)
            fprintf(f, "usage: rewire %s COMMAND [ARGS...] (rewire %s COMMAND --help)\n\n", argv[1],
                    argv[1]);
        else
            fprintf(f, "rewire %s: expected one of:\n", argv[1]);
        for (const cli_cmd_t *c = cli_commands; c->name; c++)
            if (c->group && strcmp(argv[1], c->group) == 0)
                fprintf(f, "  %-10s %s\n", c->name, c->summary);
        return finish(help ? 0 : 2);
    }
    fprintf(stderr, "rewire: unknown command '%s' (see rewire --help)\n", argv[1]);
    return 2;
}
