/* cmd_data.c — `rewire data import`: preference files in, one normalized
 * JSON Lines file out.
 *
 * The output is written only when the import is usable — at least one good
 * pair, and with --strict no bad record or unreadable file at all — and then
 * atomically (rw_dataset_save), so a failed run never leaves a partial or
 * stale-looking file behind.
 */
#include "cli.h"

#include "dataset.h"
#include "err.h"
#include "format.h"
#include "import.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char *const import_usage =
    "usage: rewire data import FILE... -o OUT [--domain NAME]\n"
    "                          [--format auto|rewire|hh|summarize] [--eval-fraction F]\n"
    "                          [--max-line-bytes N] [--strict] [--json]\n"
    "\n"
    "Reads preference pairs from each FILE (JSON Lines, plain or .gz) and writes them\n"
    "to OUT as {\"prompt\",\"chosen\",\"rejected\",\"domain\",\"split\"} lines.\n"
    "\n"
    "formats (auto: told apart by each file's first JSON object):\n"
    "  rewire     {\"prompt\",\"chosen\",\"rejected\",\"domain\"}; a \"split\" is recomputed\n"
    "  hh         Anthropic HH-RLHF transcripts {\"chosen\",\"rejected\"}; the domain is\n"
    "             the file name less .jsonl.gz/.json.gz/.jsonl/.json\n"
    "  summarize  OpenAI summarize-from-feedback comparisons; the domain is the\n"
    "             subreddit, or news for articles\n"
    "\n"
    "options:\n"
    "  -o, --output OUT       where to write (replaced only when the import succeeds;\n"
    "                         - for stdout)\n"
    "  --domain NAME          rewire: the domain of records without one;\n"
    "                         hh, summarize: the domain of every record\n"
    "  --format F             auto (default), rewire, hh or summarize\n"
    "  --eval-fraction F      share of each domain held out for evaluation (0.1);\n"
    "                         a pair's split depends only on the pair itself\n"
    "  --max-line-bytes N     longer lines are bad records (16777216)\n"
    "  --strict               any bad record or unreadable file: exit 1, write nothing\n"
    "  --json                 print the report as JSON on stdout\n"
    "  -h, --help             show this help\n"
    "\n"
    "Bad records are reported on stderr as FILE:LINE: REASON and skipped; exact\n"
    "duplicates are dropped. Exit status: 0 when OUT was written, 1 when it was not,\n"
    "2 for bad usage.\n";

typedef struct import_args {
    const char **files;
    size_t n_files;
    const char *out;
    int strict, json;
    rw_import_opts_t opts;
} import_args_t;

/* Parses argv into *a. Returns 0, 1 after --help (exit 0), or 2 (usage
 * error, already reported). */
static int import_parse(int argc, char **argv, import_args_t *a)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"domain", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"eval-fraction", required_argument, NULL, 'e'},
        {"max-line-bytes", required_argument, NULL, 'm'},
        {"strict", no_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "data import";
    long max_line;
    int c;
    rw_import_opts_init(&a->opts);
    opterr = 0;
    optind = 1;
    while ((c = cli_getopt(argc, argv, ":o:h", longopts)) != -1) {
        switch (c) {
        case 'o':
            a->out = optarg;
            break;
        case 'd':
            if (!rw_name_ok(optarg, strlen(optarg), RW_NAME_MAX))
                return cli_usage_error(cmd, "--domain '%s' is not a name (" RW_NAME_RULE ")",
                                       optarg);
            a->opts.domain = optarg;
            break;
        case 'f': {
            int f = rw_format_from_name(optarg);
            if (f < 0 || f == RW_FORMAT_NORMALIZED)
                return cli_usage_error(cmd, "unknown --format '%s'", optarg);
            a->opts.format = (rw_format_t)f;
            break;
        }
        case 'e':
            if (rw_arg_real(optarg, 0, 1, &a->opts.eval_fraction))
                return cli_usage_error(cmd, "--eval-fraction wants a number in [0, 1], not '%s'",
                                       optarg);
            break;
        case 'm':
            if (rw_arg_long(optarg, 1, 1L << 32, &max_line))
                return cli_usage_error(cmd, "--max-line-bytes wants a positive size, not '%s'",
                                       optarg);
            a->opts.max_line = (size_t)max_line;
            break;
        case 's':
            a->strict = 1;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'h':
            fputs(import_usage, stdout);
            return 1;
        case ':':
            return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    a->files = (const char **)argv + optind;
    a->n_files = (size_t)(argc - optind);
    if (a->n_files == 0)
        return cli_usage_error(cmd, "no input files");
    if (!a->out)
        return cli_usage_error(cmd, "no output file (-o OUT)");
    return cli_data_out(cmd, &a->out, a->json);
}

/* Prints the outcome: the report as JSON on stdout, or the summary and any
 * failure on stderr. */
static void import_print(const import_args_t *a, const rw_import_report_t *rep, int written,
                         const char *failure)
{
    if (a->json) {
        json_t *o = rw_import_report_json(rep);
        json_object_set_new(o, "output", json_string(a->out));
        json_object_set_new(o, "written", json_boolean(written));
        json_object_set_new(o, "error", failure ? json_string(failure) : json_null());
        cli_print_json(o);
        json_decref(o);
    } else {
        rw_import_report_print(rep, stderr);
        if (written)
            fprintf(stderr, "wrote %zu pairs to %s\n", rep->kept, a->out);
    }
    if (failure)
        cli_say("data import", "%s", failure);
}

int cli_data_import(int argc, char **argv)
{
    import_args_t a = {0};
    int rc = import_parse(argc, argv, &a);
    if (rc)
        return rc == 1 ? 0 : rc;
    rw_dataset_t ds;
    rw_import_report_t rep;
    char failure[512] = "";
    int written = 0;
    rw_dataset_init(&ds);
    rw_import_report_init(&rep);
    rc = rw_import_files(&ds, a.files, a.n_files, &a.opts, &rep);
    if (rc == RW_EINVAL) {
        snprintf(failure, sizeof failure, "invalid import options");
    } else if (a.strict && (rep.bad || rep.file_errors)) {
        snprintf(failure, sizeof failure,
                 "--strict: %zu bad record%s and %zu unreadable file%s; %s not written", rep.bad,
                 rep.bad == 1 ? "" : "s", rep.file_errors, rep.file_errors == 1 ? "" : "s", a.out);
    } else if (ds.n == 0) {
        snprintf(failure, sizeof failure, "no good pairs in the input; %s not written", a.out);
    } else {
        int wrc = rw_dataset_save(&ds, a.out);
        if (wrc)
            snprintf(failure, sizeof failure, "cannot write %s: %s", a.out, rw_strerror(wrc));
        else
            written = 1;
    }
    import_print(&a, &rep, written, failure[0] ? failure : NULL);
    rw_import_report_fini(&rep);
    rw_dataset_fini(&ds);
    return written ? 0 : 1;
}
