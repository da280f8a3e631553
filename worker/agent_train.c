/* agent_train.c — the agent's training thread.
 *
 * One persistent thread runs ready jobs in order through the executor. It
 * never touches the socket: its progress and its finished jobs go into
 * fields under the agent's mutex, and an eventfd wakes the loop, which
 * sends what there is to send. A cancel is a flag the progress callback
 * reads, so the executor stops at its next report.
 */
#include "agent_int.h"

#include "err.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void wake(agent_t *a)
{
    uint64_t one = 1;
    if (write(a->efd, &one, sizeof one) < 0) {
        /* the counter is full: the loop is awake anyway */
    }
}

static int on_progress(void *pctx, const agent_step_t *st)
{
    agent_job_t *j = pctx;
    agent_t *a = j->agent;
    pthread_mutex_lock(&a->mu);
    j->step = *st;
    j->fresh = true;
    int cancel = j->cancel;
    pthread_mutex_unlock(&a->mu);
    wake(a);
    return cancel;
}

static void *trainer_main(void *arg)
{
    agent_t *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->trainer_quit && a->n_ready == 0)
            pthread_cond_wait(&a->cv, &a->mu);
        if (a->trainer_quit)
            break;
        agent_job_t *j = a->ready[0];
        memmove(a->ready, a->ready + 1, --a->n_ready * sizeof a->ready[0]);
        a->running = j;
        j->started = true;
        j->fresh = true; /* step 0: the coordinator hears it runs */
        j->step = (agent_step_t){.step = 0, .steps = 1};
        bool cancel = j->cancel;
        pthread_mutex_unlock(&a->mu);
        wake(a);
        int rc = cancel ? -ECANCELED
                        : a->o.exec->run(a->o.exec_ctx, &j->work, on_progress, j, &j->res, j->why,
                                         sizeof j->why);
        pthread_mutex_lock(&a->mu);
        j->rc = rc;
        a->running = NULL;
        a->finished[a->n_finished++] = j;
        pthread_mutex_unlock(&a->mu);
        wake(a);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

int agent__trainer_start(agent_t *a)
{
    a->trainer_quit = false;
    int rc = pthread_create(&a->trainer, NULL, trainer_main, a);
    if (rc != 0)
        return -rc;
    a->trainer_live = true;
    return 0;
}

void agent__trainer_stop(agent_t *a)
{
    if (!a->trainer_live)
        return;
    agent__trainer_drop(a);
    pthread_mutex_lock(&a->mu);
    a->trainer_quit = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->trainer, NULL);
    a->trainer_live = false;
    for (size_t i = 0; i < a->n_finished; i++) {
        unlink(a->finished[i]->paths[3]);
        agent__job_free(a->finished[i]);
    }
    a->n_finished = 0;
}

void agent__trainer_push(agent_t *a, agent_job_t *j)
{
    j->agent = a;
    pthread_mutex_lock(&a->mu);
    a->ready[a->n_ready++] = j;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

size_t agent__trainer_load(agent_t *a)
{
    pthread_mutex_lock(&a->mu);
    size_t n = a->n_ready + (a->running != NULL) + a->n_finished;
    pthread_mutex_unlock(&a->mu);
    return n;
}

int agent__trainer_cancel(agent_t *a, uint64_t task, uint32_t attempt)
{
    agent_job_t *gone = NULL;
    int where = 0;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->n_ready && !gone; i++) {
        if (a->ready[i]->l.id == task && a->ready[i]->l.attempt == attempt) {
            gone = a->ready[i];
            memmove(&a->ready[i], &a->ready[i + 1], (a->n_ready - i - 1) * sizeof a->ready[0]);
            a->n_ready--;
            where = 1;
        }
    }
    if (!gone && a->running && a->running->l.id == task && a->running->l.attempt == attempt) {
        a->running->cancel = true;
        where = 2;
    }
    pthread_mutex_unlock(&a->mu);
    if (gone) {
        agent__tell_error(a, task, attempt, -ECANCELED, "cancelled");
        agent__job_free(gone);
    }
    return where;
}

void agent__trainer_drop(agent_t *a)
{
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->n_ready; i++)
        agent__job_free(a->ready[i]);
    a->n_ready = 0;
    if (a->running)
        a->running->cancel = a->running->orphan = true;
    for (size_t i = 0; i < a->n_finished; i++)
        a->finished[i]->orphan = true;
    pthread_mutex_unlock(&a->mu);
}

static void send_progress(agent_t *a, uint64_t task, uint32_t attempt, const agent_step_t *s)
{
    msg_t m;
    msg_init(&m, MSG_PROGRESS);
    m.progress.task = task;
    m.progress.attempt = attempt;
    m.progress.steps = s->steps ? s->steps : 1;
    m.progress.step = s->step > m.progress.steps ? m.progress.steps : s->step;
    m.progress.loss = s->loss >= 0 && s->loss <= 1e9 ? s->loss : 1e9;
    m.progress.accuracy = s->accuracy >= 0 && s->accuracy <= 1 ? s->accuracy : 0;
    m.progress.pairs_per_s = s->pairs_per_s >= 0 && s->pairs_per_s <= 1e12 ? s->pairs_per_s : 0;
    agent__send(a, &m);
}

void agent__trainer_events(agent_t *a)
{
    uint64_t n;
    if (read(a->efd, &n, sizeof n) < 0 && errno != EAGAIN)
        RW_WARN("worker", "eventfd: %s", strerror(errno));
    uint64_t now = rw_now_ms();
    agent_job_t *done[AGENT_QUEUE_MAX + 1], *run;
    agent_step_t step = {0};
    uint64_t task = 0;
    uint32_t attempt = 0;
    bool send = false;
    pthread_mutex_lock(&a->mu);
    size_t nd = a->n_finished;
    memcpy(done, a->finished, nd * sizeof done[0]);
    a->n_finished = 0;
    run = a->running;
    if (run && run->fresh && !run->cancel &&
        (run->step.step == 0 || now - a->progress_ms >= a->o.progress_ms)) {
        step = run->step;
        run->fresh = false;
        task = run->l.id;
        attempt = run->l.attempt;
        send = true;
    }
    pthread_mutex_unlock(&a->mu);
    for (size_t i = 0; i < nd; i++) {
        if (done[i]->fresh && done[i]->rc == 0 && !done[i]->orphan)
            send_progress(a, done[i]->l.id, done[i]->l.attempt, &done[i]->step); /* the last */
        agent__finished(a, done[i]);
    }
    if (send) {
        send_progress(a, task, attempt, &step);
        a->progress_ms = now;
    }
}
