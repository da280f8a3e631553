/* schedule.c — benchmark: how close the coordinator gets to the ideal
 * schedule when tasks are short, so that the wire, not the work, shows.
 *
 * A real coordinator service (coordinator/service.h: its libuv loop, its
 * journal, its artifact store) runs a plan of N independent tasks on W
 * workers, each a real agent (worker/agent.h) on its own thread with its
 * own ZeroMQ context, as a process would have, over ipc:// or TCP loopback.
 * What differs from a job is the work only, and it is this file's own: the
 * plan is N "seed" tasks with no inputs, and the executor sleeps MS
 * milliseconds, then writes a small output that is uploaded, stored and
 * acknowledged like any task's. So every task pays the whole protocol:
 * LEASE, PROGRESS, upload (ART_BEGIN, credit, chunk, end, ack), RESULT,
 * journal records. The ideal is N * MS / W; the run prints the wall time
 * from the first lease to the last result, the ideal, and their ratio.
 *
 * Usage: bench/schedule [--tasks N] [--ms MS] [--workers W] [--tcp]
 *                       [--no-sync] [--lease-ahead K]
 * (defaults 200 10 2; ipc; journal fsync'd as in a job; lease-ahead as a
 * job's default). Prints one JSON line last: {"bench":"schedule", "tasks",
 * "ms", "workers", "transport", "sync", "wall_s", "ideal_s", "ratio",
 * "leases", "results"}.
 */
#include "agent.h"
#include "service.h"

#include "afile.h"
#include "blas.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct bench {
    long tasks, ms, workers, lease_ahead;
    bool tcp, no_sync;
    double first_lease, last_result;
    double slept;    /* seconds the executors actually slept, all together */
    double run_span; /* from the first task's start to the last task's end */
    double first_run, last_run;
    pthread_mutex_t mu;
} bench_t;

/* ---- the job: N tasks that need nothing ---- */

static int job_start(void *job, coord_t *c)
{
    bench_t *b = job;
    for (long i = 0; i < b->tasks; i++)
        if (!coord_add_task(c, MSG_TASK_SEED, NULL, "train", NULL, 0))
            return RW_EINVAL;
    return 0;
}

static int job_lease(void *job, const plan_task_t *t, msg_lease_t *l)
{
    bench_t *b = job;
    (void)t;
    pthread_mutex_lock(&b->mu);
    if (!b->first_lease)
        b->first_lease = rw_now_s();
    pthread_mutex_unlock(&b->mu);
    l->config = "{\"bench\":\"sleep\"}";
    return 0;
}

static void job_result(void *job, const plan_task_t *t, const msg_result_t *m, json_t *rec)
{
    bench_t *b = job;
    (void)t, (void)m, (void)rec;
    b->last_result = rw_now_s();
}

static const struct coord_job_ops bench_job_ops = {
    .start = job_start,
    .lease = job_lease,
    .result = job_result,
};

/* ---- the executor: sleep, then write a small output ---- */

/* One worker's executor: its bench, and when its last task ended. */
typedef struct exec_ctx {
    bench_t *b;
    double last_end, gaps;
} exec_ctx_t;

static int sleep_run(void *ctx, const agent_work_t *w, agent_progress_fn progress, void *pctx,
                     agent_outcome_t *res, char *why, size_t whylen)
{
    exec_ctx_t *x = ctx;
    bench_t *b = x->b;
    struct timespec ts = {b->ms / 1000, (b->ms % 1000) * 1000000L};
    double t0 = rw_now_s();
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    double t1 = rw_now_s();
    if (x->last_end)
        x->gaps += t0 - x->last_end;
    x->last_end = t1;
    pthread_mutex_lock(&b->mu);
    b->slept += t1 - t0;
    if (!b->first_run || t0 < b->first_run)
        b->first_run = t0;
    if (t1 > b->last_run)
        b->last_run = t1;
    pthread_mutex_unlock(&b->mu);
    agent_step_t st = {.step = 1, .steps = 1, .loss = 0.5, .accuracy = 0.5, .pairs_per_s = 1};
    if (progress(pctx, &st))
        return -ECANCELED;
    char text[128];
    int n = snprintf(text, sizeof text, "task %llu attempt %u\n", (unsigned long long)w->task,
                     w->attempt);
    FILE *f = fopen(w->out, "w");
    if (!f || fwrite(text, 1, (size_t)n, f) != (size_t)n) {
        if (f)
            fclose(f);
        snprintf(why, whylen, "cannot write %s", w->out);
        return RW_EIO;
    }
    fclose(f);
    res->metrics[res->n_metrics++] = (msg_metric_t){"seconds", (double)b->ms / 1000};
    return 0;
}

static const struct agent_exec_ops sleep_ops = {.run = sleep_run};

typedef struct worker_thread {
    pthread_t th;
    agent_t *a;
    exec_ctx_t x;
} worker_thread_t;

static void *worker_main_thread(void *arg)
{
    worker_thread_t *w = arg;
    agent_run(w->a);
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench/schedule [--tasks N] [--ms MS] [--workers W] [--tcp] "
                    "[--no-sync] [--lease-ahead K]\n");
    return 2;
}

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    bench_t b = {.tasks = 200, .ms = 10, .workers = 2, .lease_ahead = -1};
    pthread_mutex_init(&b.mu, NULL);
    for (int i = 1; i < argc; i++) {
        long *dst = strcmp(argv[i], "--tasks") == 0         ? &b.tasks
                    : strcmp(argv[i], "--ms") == 0          ? &b.ms
                    : strcmp(argv[i], "--workers") == 0     ? &b.workers
                    : strcmp(argv[i], "--lease-ahead") == 0 ? &b.lease_ahead
                                                            : NULL;
        if (dst && i + 1 < argc)
            *dst = atol(argv[++i]);
        else if (strcmp(argv[i], "--tcp") == 0)
            b.tcp = true;
        else if (strcmp(argv[i], "--no-sync") == 0)
            b.no_sync = true;
        else
            return usage();
    }
    if (b.tasks < 1 || b.ms < 0 || b.workers < 1 || b.workers > 64)
        return usage();
    if (!getenv("RW_LOG"))
        rw_log_set_level(RW_LOG_WARN);

    char dir[] = "/tmp/rw-bench-schedule.XXXXXX", bind[256], why[256];
    if (!mkdtemp(dir))
        return 1;
    if (b.tcp)
        snprintf(bind, sizeof bind, "tcp://127.0.0.1:*");
    else
        snprintf(bind, sizeof bind, "ipc://%s/coord.sock", dir);
    coord_opts_t co = {.bind = bind, .state_dir = dir, .no_sync = b.no_sync};
    if (b.lease_ahead >= 0) {
        co.lease_ahead = (uint32_t)b.lease_ahead;
        co.has_lease_ahead = true;
    }
    coord_t *c;
    if (coord_new(&co, &bench_job_ops, &b, &c, why, sizeof why) < 0) {
        fprintf(stderr, "schedule: %s\n", why);
        return 1;
    }
    worker_thread_t *ws = calloc((size_t)b.workers, sizeof *ws);
    const char *caps[] = {"train"};
    for (long i = 0; i < b.workers; i++) {
        char id[32], cache[512];
        snprintf(id, sizeof id, "bench%ld", i + 1);
        snprintf(cache, sizeof cache, "%s/cache-%s", dir, id);
        agent_opts_t o = {.connect = coord_endpoint(c),
                          .id = id,
                          .caps = caps,
                          .n_caps = 1,
                          .threads = 1,
                          .cache_dir = cache,
                          .exec = &sleep_ops,
                          .exec_ctx = &ws[i].x};
        ws[i].x.b = &b;
        int err;
        if (!(ws[i].a = agent_new(&o, &err))) {
            fprintf(stderr, "schedule: worker: %s\n", rw_strerror(err));
            return 1;
        }
        pthread_create(&ws[i].th, NULL, worker_main_thread, &ws[i]);
    }
    int rc = coord_run(c);
    coord_stats_t st;
    coord_stats(c, &st);
    double gaps = 0;
    for (long i = 0; i < b.workers; i++) {
        gaps += ws[i].x.gaps;
        agent_stop(ws[i].a);
        pthread_join(ws[i].th, NULL);
        agent_destroy(&ws[i].a);
    }
    coord_destroy(&c);
    free(ws);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "schedule: could not remove %s\n", dir);

    double wall = b.last_result - b.first_lease;
    double ideal = (double)b.tasks * (double)b.ms / 1000.0 / (double)b.workers;
    printf("%ld tasks of %ld ms on %ld workers over %s, journal %s: %.3f s, ideal %.3f s, "
           "ratio %.3f (%llu leases, %llu results)\n",
           b.tasks, b.ms, b.workers, b.tcp ? "tcp" : "ipc", b.no_sync ? "unsynced" : "fsync'd",
           wall, ideal, wall / ideal, (unsigned long long)st.leases,
           (unsigned long long)st.results);
    /* a busy machine stretches the sleeps themselves: say how much */
    printf("  the executors slept %.3f s in all (%.3f s a worker; asked for %.3f s); "
           "first start to last end %.3f s;\n  between one task's end and the next one's start a "
           "worker "
           "waited %.3f ms on average\n",
           b.slept, b.slept / (double)b.workers, ideal, b.last_run - b.first_run,
           1000 * gaps / (double)(b.tasks - b.workers));
    printf("{\"bench\":\"schedule\",\"tasks\":%ld,\"ms\":%ld,\"workers\":%ld,\"transport\":\"%s\","
           "\"sync\":%s,\"wall_s\":%.4f,\"ideal_s\":%.4f,\"ratio\":%.4f,\"leases\":%llu,"
           "\"results\":%llu,\"slept_s\":%.4f}\n",
           b.tasks, b.ms, b.workers, b.tcp ? "tcp" : "ipc", b.no_sync ? "false" : "true", wall,
           ideal, wall / ideal, (unsigned long long)st.leases, (unsigned long long)st.results,
           b.slept);
    return rc == 0 ? 0 : 1;
}
