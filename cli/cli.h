/* cli.h — the `rewire` command line: one function per subcommand.
 *
 * Each command gets argv starting at its own name (argv[0] is "import" for
 * `rewire data import ...`) and returns the process exit status: 0 success,
 * 1 failure, 2 bad usage. Every command takes --help, and every command that
 * reports results takes --json.
 */
#ifndef RW_CLI_H
#define RW_CLI_H

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
int cli_run(int argc, char **argv);
/* `rewire data import` (cmd_data.c). */
int cli_data_import(int argc, char **argv);
int cli_data_gen(int argc, char **argv);
/* `rewire train`, `rewire eval`, `rewire score` (cmd_train.c, cmd_eval.c,
 * cmd_score.c). */
int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_score(int argc, char **argv);

/* Prints "rewire GROUP NAME: MSG" and a pointer to --help; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a whole decimal/float argument; returns 0 or RW_EINVAL. */
int cli_parse_long(const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *s, double lo, double hi, double *out);

/* Reads preference files (normalized or any importable format) into ds,
 * reporting bad records on stderr and a one-line count of what was read.
 * Returns 0, or 1 after saying why nothing usable was read. */
struct rw_dataset;
int cli_read_data(const char *cmd, const char *const *paths, size_t n, struct rw_dataset *ds);
/* Prints a JSON value (borrowed) on stdout, indented. */
struct json_t;
void cli_print_json(struct json_t *v);
/* Seconds on a monotonic clock. */
double cli_now(void);

#endif
