/* team.c — a fixed team of threads woken per job; see team.h.
 *
 * One mutex and two condition variables: members sleep until the generation
 * counter moves, run the job, and the last one to finish wakes the caller.
 * A job in the training step lasts milliseconds, so a sleeping hand-off (tens
 * of microseconds) costs nothing measurable and spins no core.
 */
#include "team.h"

#include "alloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define RW_TEAM_MAX 256

struct rw_team {
    int n;
    pthread_t *threads; /* n - 1 of them; member 0 is the caller */
    int started;        /* threads successfully created */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    unsigned long gen; /* bumped per job */
    int pending;       /* members still running the current job */
    int stop;
    rw_team_fn fn;
    void *ctx;
};

typedef struct member_arg {
    rw_team_t *team;
    int tid;
} member_arg_t;

static void *member_main(void *p)
{
    member_arg_t *arg = p;
    rw_team_t *t = arg->team;
    int tid = arg->tid;
    free(arg);
    unsigned long seen = 0;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (t->gen == seen && !t->stop)
            pthread_cond_wait(&t->wake, &t->mu);
        if (t->stop)
            break;
        seen = t->gen;
        rw_team_fn fn = t->fn;
        void *ctx = t->ctx;
        pthread_mutex_unlock(&t->mu);
        fn(ctx, tid, t->n);
        pthread_mutex_lock(&t->mu);
        if (--t->pending == 0)
            pthread_cond_signal(&t->done);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int rw_team_size_for(int n)
{
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    return n > RW_TEAM_MAX ? RW_TEAM_MAX : n;
}

int rw_team_new(rw_team_t **team_p, int n)
{
    *team_p = NULL;
    n = rw_team_size_for(n);
    rw_team_t *t = rw_new(rw_team_t);
    t->n = n;
    t->threads = rw_new_array(pthread_t, (size_t)n);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->wake, NULL);
    pthread_cond_init(&t->done, NULL);
    for (int i = 1; i < n; i++) {
        member_arg_t *arg = rw_new(member_arg_t);
        arg->team = t;
        arg->tid = i;
        int rc = pthread_create(&t->threads[i - 1], NULL, member_main, arg);
        if (rc != 0) {
            free(arg);
            rw_team_destroy(&t);
            return -rc;
        }
        t->started++;
    }
    *team_p = t;
    return 0;
}

void rw_team_destroy(rw_team_t **team_p)
{
    rw_team_t *t = team_p ? *team_p : NULL;
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < t->started; i++)
        pthread_join(t->threads[i], NULL);
    pthread_cond_destroy(&t->done);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->mu);
    free(t->threads);
    free(t);
    *team_p = NULL;
}

int rw_team_size(const rw_team_t *team)
{
    return team->n;
}

void rw_team_run(rw_team_t *t, rw_team_fn fn, void *ctx)
{
    if (t->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&t->mu);
    t->fn = fn;
    t->ctx = ctx;
    t->pending = t->n - 1;
    t->gen++;
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->mu);
    fn(ctx, 0, t->n);
    pthread_mutex_lock(&t->mu);
    while (t->pending > 0)
        pthread_cond_wait(&t->done, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

void rw_team_range(size_t n, int parts, int i, size_t *lo, size_t *hi)
{
    *lo = n * (size_t)i / (size_t)parts;
    *hi = n * (size_t)(i + 1) / (size_t)parts;
}
