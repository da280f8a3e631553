/* run_view.c — a running job as people see it: a live table on a terminal,
 * or a line per change elsewhere (logs, CI, pipes).
 *
 * The table is redrawn in place: the cursor goes up over the last drawing
 * and everything below it is cleared (VT100 codes every terminal knows).
 */
#include "run.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void run_view_init(run_view_t *v, FILE *f, bool tty, double t0)
{
    memset(v, 0, sizeof *v);
    v->f = f;
    v->tty = tty;
    v->t0 = t0;
    v->last_done = -1;
}

const char *run_clock(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 359999)
        snprintf(buf, n, "--:--");
    else if (s >= 3600)
        snprintf(buf, n, "%d:%02d:%02d", (int)s / 3600, ((int)s / 60) % 60, (int)s % 60);
    else
        snprintf(buf, n, "%d:%02d", (int)s / 60, (int)s % 60);
    return buf;
}

static const char *task_name(const json_t *w, char *buf, size_t n)
{
    const char *kind = json_string_value(json_object_get(w, "kind"));
    const char *dom = json_string_value(json_object_get(w, "domain"));
    if (!kind)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%s%s%s", kind, dom ? ":" : "", dom ? dom : "");
    return buf;
}

static void draw_table(run_view_t *v, const json_t *st, double now)
{
    char a[32], b[32];
    json_t *tasks = json_object_get(st, "tasks");
    long done = (long)json_integer_value(json_object_get(tasks, "done"));
    long total = (long)json_integer_value(json_object_get(tasks, "total"));
    const char *state = json_string_value(json_object_get(st, "state"));
    double progress = json_number_value(json_object_get(st, "progress"));
    json_t *eta = json_object_get(st, "eta_s");
    if (v->drawn)
        fprintf(v->f, "\033[%dA\033[J", v->drawn);
    int lines = 0;
    fprintf(v->f, "rewire run: %s, %ld/%ld tasks, %3.0f%%, %s elapsed, %s left\n",
            state ? state : "starting", done, total, 100 * progress, run_clock(now - v->t0, a, 32),
            eta ? run_clock(json_number_value(eta), b, 32) : "--:--");
    lines++;
    fprintf(v->f, "  %-14s %-26s %13s %9s %9s\n", "worker", "task", "step", "loss", "pairs/s");
    lines++;
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(st, "workers"), i, w)
    {
        char task[96], step[32] = "", loss[16] = "";
        task_name(w, task, sizeof task);
        if (json_object_get(w, "kind")) {
            snprintf(step, sizeof step, "%lld/%lld",
                     (long long)json_integer_value(json_object_get(w, "step")),
                     (long long)json_integer_value(json_object_get(w, "steps")));
            snprintf(loss, sizeof loss, "%.4f", json_number_value(json_object_get(w, "loss")));
        }
        fprintf(v->f, "  %-14.14s %-26.26s %13s %9s %9.0f\n",
                json_string_value(json_object_get(w, "id")), task, step, loss,
                json_number_value(json_object_get(w, "pairs_per_s")));
        lines++;
    }
    const char *who;
    json_t *n;
    json_t *waiting = json_object_get(st, "waiting_for");
    if (json_is_object(waiting))
        json_object_foreach(waiting, who, n)
        {
            fprintf(v->f,
                    "  waiting for worker %s: %lld tasks run only there, where its pairs are\n",
                    who, (long long)json_integer_value(n));
            lines++;
        }
    size_t k;
    json_array_foreach(json_object_get(st, "waiting_for_cap"), k, n)
    {
        fprintf(v->f, "  task %lld (%s) waits for a worker with the %s capability: none is here\n",
                (long long)json_integer_value(json_object_get(n, "task")),
                json_string_value(json_object_get(n, "kind")),
                json_string_value(json_object_get(n, "cap")));
        lines++;
    }
    fflush(v->f);
    v->drawn = lines;
}

static void plain_lines(run_view_t *v, const json_t *st, double now)
{
    char a[32], b[32], held[4096] = "";
    json_t *tasks = json_object_get(st, "tasks");
    long done = (long)json_integer_value(json_object_get(tasks, "done"));
    long total = (long)json_integer_value(json_object_get(tasks, "total"));
    size_t i, used = 0;
    json_t *w;
    json_array_foreach(json_object_get(st, "workers"), i, w)
    {
        char task[96];
        used += (size_t)snprintf(
            held + used, used < sizeof held ? sizeof held - used : 0, "%s%s=%s", i ? " " : "",
            json_string_value(json_object_get(w, "id")), task_name(w, task, sizeof task));
        if (used >= sizeof held)
            break;
    }
    const char *who;
    json_t *n;
    json_t *waiting = json_object_get(st, "waiting_for");
    if (json_is_object(waiting))
        json_object_foreach(waiting, who, n)
        {
            if (used < sizeof held)
                used += (size_t)snprintf(held + used, sizeof held - used,
                                         "; waiting for worker %s (%lld tasks only it runs)", who,
                                         (long long)json_integer_value(n));
        }
    size_t k;
    json_array_foreach(json_object_get(st, "waiting_for_cap"), k, n)
    {
        if (used < sizeof held)
            used += (size_t)snprintf(held + used, sizeof held - used,
                                     "; task %lld (%s) waits for a worker with the %s capability",
                                     (long long)json_integer_value(json_object_get(n, "task")),
                                     json_string_value(json_object_get(n, "kind")),
                                     json_string_value(json_object_get(n, "cap")));
    }
    if (done == v->last_done && strcmp(held, v->last_tasks) == 0)
        return;
    json_t *eta = json_object_get(st, "eta_s");
    fprintf(v->f, "[%s] %ld/%ld tasks done, %s left; %s\n", run_clock(now - v->t0, a, 32), done,
            total, eta ? run_clock(json_number_value(eta), b, 32) : "--:--", held);
    fflush(v->f);
    v->last_done = done;
    snprintf(v->last_tasks, sizeof v->last_tasks, "%s", held);
}

void run_view_update(run_view_t *v, const json_t *st, double now)
{
    if (!st)
        return;
    if (v->tty)
        draw_table(v, st, now);
    else
        plain_lines(v, st, now);
}

void run_view_end(run_view_t *v)
{
    v->drawn = 0;
    fflush(v->f);
}
