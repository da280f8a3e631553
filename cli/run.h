/* run.h — what cmd_run.c (the launcher) and run_view.c (its display) share.
 *
 * `rewire run` starts a coordinator, a router service and workers as child
 * processes and watches the coordinator's status file (STATE/status.json)
 * until the job is done; the view turns each status into a live table on a
 * terminal, or into plain log lines otherwise.
 */
#ifndef RW_CLI_RUN_H
#define RW_CLI_RUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct run_view {
    FILE *f;
    bool tty;
    int drawn;             /* lines of the last table drawn (tty) */
    long last_done;        /* tasks done at the last plain line */
    char last_tasks[4096]; /* what each worker held at the last plain line */
    double t0;
} run_view_t;

void run_view_init(run_view_t *v, FILE *f, bool tty, double t0);
/* Shows status (borrowed; may be NULL while the coordinator starts). */
void run_view_update(run_view_t *v, const json_t *status, double now);
/* Leaves the terminal as a log would: the last table stays, the cursor
 * below it. */
void run_view_end(run_view_t *v);

/* "1:05" for 65 seconds. */
const char *run_clock(double seconds, char *buf, size_t n);

#endif
