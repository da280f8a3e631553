/* util.c — argument helpers shared by the subcommands. */
#include "cli.h"

#include "dataset.h"
#include "err.h"
#include "lines.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

rw_lines_t *cli_stdin_lines(const char *cmd)
{
    int err, fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        cli_say(cmd, "stdin: cannot read line 1: %s", strerror(errno));
        return NULL;
    }
    rw_lines_t *r = rw_lines_fd(fd, 0, &err);
    if (!r)
        cli_say(cmd, "stdin: cannot read line 1: %s", rw_strerror(err));
    return r;
}

int cli_stdin_next(rw_lines_t *r, const char *cmd, const char **line, size_t *len, long *lineno,
                   size_t *bad)
{
    for (;;) {
        int rc = rw_lines_next(r, line, len);
        *lineno = (long)rw_lines_lineno(r);
        if (rc >= 0)
            return rc;
        if (rc != RW_ETOOBIG) {
            cli_say(cmd, "stdin: cannot read line %ld: %s", *lineno, rw_lines_errmsg(r));
            return -1;
        }
        fprintf(stderr, "stdin:%ld: a line over the %zu MiB limit; skipped\n", *lineno,
                RW_LINES_DEFAULT_MAX >> 20);
        (*bad)++;
    }
}

void cli_say(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cli_last_error, sizeof cli_last_error, fmt, ap);
    va_end(ap);
    fprintf(stderr, "rewire %s: %s\n", cmd, cli_last_error);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "rewire %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    va_start(ap, fmt);
    vsnprintf(cli_last_error, sizeof cli_last_error, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see rewire %s --help)\n", cmd);
    return 2;
}

/* Whether path is the file stdout writes to (/dev/stdout, /proc/self/fd/1,
 * or the file it is redirected to). */
static bool is_stdout(const char *path)
{
    struct stat a, b;
    return fstat(STDOUT_FILENO, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

int cli_data_out(const char *cmd, const char **out, int json)
{
    bool dash = strcmp(*out, "-") == 0;
    if (json && (dash || is_stdout(*out)))
        return cli_usage_error(cmd,
                               "-o %s writes the pairs on stdout, where --json prints the "
                               "report: give one of them a file",
                               *out);
    if (dash)
        *out = "/dev/stdout";
    return 0;
}

int cli_getopt(int argc, char *const *argv, const char *shortopts, const struct option *longopts)
{
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (c != -1 && c != ':' && c != '?' && optarg && optarg == argv[optind - 1] &&
        rw_arg_is_option(optarg)) {
        optind--;
        return ':';
    }
    return c;
}

int cli_read_data(const char *cmd, const char *const *paths, size_t n, struct rw_dataset *ds)
{
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    int rc = rw_dataset_read(ds, paths, n, NULL, &rep);
    if (rep.file_errors) { /* a figure from part of the data would pass for the whole */
        cli_say(cmd, "%zu of the %zu data file(s) unreadable or cut short (above)", rep.file_errors,
                n);
        rw_import_report_fini(&rep);
        return 1;
    }
    if (ds->n == 0) {
        cli_say(cmd, "no usable pairs in %zu file(s)%s%s", n, rc < 0 ? ": " : "",
                rc < 0 ? rw_strerror(rc) : "");
        rw_import_report_fini(&rep);
        return 1;
    }
    RW_INFO(cmd, "read %zu pairs from %zu file(s) (%zu bad, %zu duplicates, %zu file errors)",
            rep.kept, n, rep.bad, rep.duplicates, rep.file_errors);
    rw_import_report_fini(&rep);
    return 0;
}

bool cli_json_printed;
char cli_last_error[512];

void cli_print_json(struct json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (s)
        printf("%s\n", s);
    free(s);
    cli_json_printed = true;
}

json_t *cli_json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

const char *cli_bytes_str(size_t n, char buf[32])
{
    static const char *const units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
    if (n == SIZE_MAX)
        return snprintf(buf, 32, "beyond any address space"), buf;
    double v = (double)n;
    size_t u = 0;
    while (v >= 1000 && u + 1 < sizeof units / sizeof units[0])
        v /= 1000, u++;
    snprintf(buf, 32, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}
