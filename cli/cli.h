/* cli.h — the `rewire` command line: one function per subcommand.
 *
 * Each command gets argv starting at its own name (argv[0] is "import" for
 * `rewire data import ...`) and returns the process exit status: 0 success,
 * 1 failure, 2 bad usage. Every command takes --help, and every command that
 * reports results takes --json.
 */
#ifndef RW_CLI_H
#define RW_CLI_H

#include "args.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct cli_cmd {
    const char *group;   /* "data", "tokenizer", or NULL for a top-level command */
    const char *name;    /* "import" */
    const char *summary; /* one line for `rewire --help` */
    int (*run)(int argc, char **argv);
} cli_cmd_t;

/* The command table, ended by a zeroed entry (cli/main.c). */
extern const cli_cmd_t cli_commands[];

int cli_version(int argc, char **argv);
int cli_data_stats(int argc, char **argv);
int cli_tokenizer_train(int argc, char **argv);
int cli_tokenizer_encode(int argc, char **argv);
int cli_tokenizer_decode(int argc, char **argv);
int cli_keys_new(int argc, char **argv);
int cli_run(int argc, char **argv);
/* `rewire data import` (cmd_data.c). */
int cli_data_import(int argc, char **argv);
int cli_data_gen(int argc, char **argv);
/* `rewire inspect PATH [--json]` (cmd_inspect.c). */
int cli_inspect(int argc, char **argv);

/* Bundles (bundle_cmds.c), for `rewire eval --bundle` and `rewire score
 * --bundle`; both return the exit status.
 *
 * cli_eval_bundle: evaluates the bundle at path on the eval split of the
 * preference files data[0..ndata) (all their pairs when none is held out),
 * per domain: pairwise accuracy and margin as the bundle routes; with
 * oracle, the text table also shows the accuracy with every pair routed to
 * its true domain and the router's accuracy (router and adapter bundles;
 * the JSON always holds them, null where they do not apply). json prints
 * rw_bundle_eval_json's object with "bundle" and "kind" added.
 *
 * cli_score_bundle: scores JSON Lines from stdin, {"prompt","response"} or
 * {"prompt","chosen","rejected"} (other keys ignored), answering each with
 * one JSON line on stdout: {"line", "reward", "domain"} or {"line",
 * "chosen_reward", "rejected_reward", "margin", "domain"}, domain being the one routed
 * to (null for baseline and moe). A bad line is reported on stderr as
 * "stdin:LINE: reason" and skipped; the exit status is then 1. Answers are
 * JSON Lines whatever json says. */
int cli_eval_bundle(const char *path, const char *const *data, size_t ndata, int json, int oracle);
int cli_score_bundle(const char *path, int json);
/* `rewire train`, `rewire eval`, `rewire score` (cmd_train.c, cmd_eval.c,
 * cmd_score.c). */
int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_score(int argc, char **argv);

/* Prints "rewire GROUP NAME: MSG" and a pointer to --help; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "rewire CMD: message" on stderr; the message is also kept as the error a
 * failed --json command reports (cli_last_error), the last said being the
 * reason it stopped. */
void cli_say(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* stdin as lines (plain or gzip) of at most RW_LINES_DEFAULT_MAX bytes, a
 * longer one passed over without being held. Returns the reader, or NULL
 * after saying why stdin cannot be read (a folder, say). */
struct rw_lines;
struct rw_lines *cli_stdin_lines(const char *cmd);
/* The next line of stdin: 1 with *line and *len (and its number in
 * *lineno), 0 at the end, or -1 after saying why reading stopped. A line
 * over the limit is said ("stdin:N: a line over ..."), counted in *bad and
 * passed over. */
int cli_stdin_next(struct rw_lines *r, const char *cmd, const char **line, size_t *len,
                   long *lineno, size_t *bad);
/* A data command's -o: "-" becomes /dev/stdout (written in place), unless
 * --json (json) prints its report there; returns 0, or 2 after the usage
 * error. */
int cli_data_out(const char *cmd, const char **out, int json);
/* getopt_long, except that an option's value that is itself an option
 * ("-o --json") is taken as a missing value: returns ':' then, with
 * argv[optind - 1] the option that wanted it. */
struct option;
int cli_getopt(int argc, char *const *argv, const char *shortopts, const struct option *longopts);

/* Reads preference files (normalized or any importable format) into ds,
 * reporting bad records on stderr and a one-line count of what was read.
 * Returns 0, or 1 after saying why nothing usable was read. */
struct rw_dataset;
int cli_read_data(const char *cmd, const char *const *paths, size_t n, struct rw_dataset *ds);
/* "73.3 GB": a byte count for people, written to buf; returns buf. SIZE_MAX,
 * the count of a size too large to hold, says so. */
const char *cli_bytes_str(size_t n, char buf[32]);
/* Prints a JSON value (borrowed) on stdout, indented. */
struct json_t;
void cli_print_json(struct json_t *v);
/* Whether a command printed its JSON report (cli_print_json): with --json,
 * main prints an error object for a command that failed without one. */
extern bool cli_json_printed;
/* The last usage error's text, for that object. */
extern char cli_last_error[512];
/* A number, or null for one that is not finite (jansson makes no number of
 * it, and the field would silently go missing). */
struct json_t *cli_json_num(double v);

#endif
