/* agent_int.h — what the agent's files share (internal).
 *
 *   agent.c        connection, registration, heartbeats, the poll loop
 *   agent_task.c   messages from the coordinator: leases, inputs, uploads
 *   agent_train.c  the training thread and what it hands to the loop
 *
 * A lease moves: queued (q) -> fetching its inputs (one lease at a time)
 * -> ready -> running on the training thread -> finished -> uploading
 * (one at a time, dq waiting) -> RESULT. The training thread takes the
 * next ready job the moment one ends, so two tasks in a row cost it no
 * hand-over; the loop fetches ahead and uploads behind it.
 */
#ifndef RW_WORKER_AGENT_INT_H
#define RW_WORKER_AGENT_INT_H

#include "agent.h"
#include "store.h"
#include "wire.h"
#include "xfer.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { AGENT_DOWN = 0, AGENT_HELLO, AGENT_UP } agent_conn_t;

#define AGENT_INPUTS_MAX (MSG_DOMAINS_MAX + 3)
#define AGENT_QUEUE_MAX  8 /* leases in each stage of the pipeline */

/* What a LEASE said. */
typedef struct agent_lease {
    uint64_t id;
    uint32_t attempt;
    msg_task_kind_t kind;
    char domain[MSG_NAME_MAX + 1];
    char *config; /* owned */
    uint64_t tokenizer, data, base;
    uint64_t *experts; /* owned */
    size_t n_experts;
} agent_lease_t;

/* A lease whose inputs are in the cache: what the training thread runs. */
typedef struct agent_job {
    agent_t *agent; /* back, for the progress callback */
    agent_lease_t l;
    char paths[4][STORE_PATH_MAX]; /* tokenizer, data, base, out */
    char **expert_paths;           /* owned */
    agent_work_t work;
    /* under the agent's mutex while the job is ready or running */
    bool cancel;  /* asked to stop */
    bool orphan;  /* nobody is to hear of it (coordinator gone, agent stopping) */
    bool started; /* the thread took it (step 0 not reported yet: fresh) */
    agent_step_t step;
    bool fresh;
    /* the thread's outcome, once finished */
    int rc;
    agent_outcome_t res;
    char why[256];
} agent_job_t;

/* A trained task whose output waits for the upload slot. */
typedef struct agent_done {
    uint64_t task;
    uint32_t attempt;
    char out[STORE_PATH_MAX];
    agent_outcome_t res;
} agent_done_t;

/* A finished task's output on its way to the coordinator. */
typedef struct agent_upload {
    bool active;
    bool data; /* the domain's upload (no task, no RESULT) */
    uint64_t task;
    uint32_t attempt;
    xfer_send_t *up;
    uint64_t heard; /* when it began or its receiver last answered */
    int restarts;
    xfer_file_source_t src;
    uint64_t id;
    agent_outcome_t res;
} agent_upload_t;

struct agent {
    agent_opts_t o;
    const char **caps; /* owned copies */
    char id[MSG_NAME_MAX + 1];
    store_t *cache;
    /* cached artifacts this process checked against their id, or made: one
     * found in the cache is read again before its first use (a crash can
     * leave one cut short, as the store does not sync) */
    uint64_t *sound;
    size_t n_sound, cap_sound;
    void *zctx, *sock;
    void *mon; /* the socket's handshake failures (a PAIR), to say why no answer came */
    unsigned n_mon;
    bool curve; /* a CURVE client of curve_server */
    curve_key_t curve_own, curve_server;
    bool curve_has_own;
    wire_t *w;
    int efd; /* the training thread wakes the loop */
    volatile sig_atomic_t stop;
    bool done;                         /* SHUTDOWN or REFUSE came */
    int result;                        /* agent_run's return */
    char refusal[MSG_REASON_MAX + 64]; /* why it was turned away */

    agent_conn_t conn;
    bool hello_sent;
    uint64_t next_try, attempt_deadline;
    uint32_t backoff;
    uint32_t hb_ms, timeout_ms;
    uint64_t last_heard, next_hb, hb_seq;

    /* the loop's side of the pipeline */
    agent_lease_t q[AGENT_QUEUE_MAX]; /* leases waiting for their inputs */
    size_t n_q;
    agent_job_t *fetching; /* the lease whose inputs come now (owned) */
    uint64_t need[AGENT_INPUTS_MAX];
    size_t n_need, i_need;
    xfer_recv_t *in;
    uint64_t fetch_heard; /* when the FETCH went or a part of its answer came */
    store_sink_t sink;
    agent_done_t dq[AGENT_QUEUE_MAX];
    size_t n_dq;
    agent_upload_t u;
    bool upload_wanted;   /* the domain's upload waits for the upload slot */
    uint64_t progress_ms; /* when the last PROGRESS went */

    /* shared with the training thread, under mu */
    pthread_t trainer;
    bool trainer_live, trainer_quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    agent_job_t *ready[AGENT_QUEUE_MAX]; /* owned */
    size_t n_ready;
    agent_job_t *running; /* the thread's */
    agent_job_t *finished[AGENT_QUEUE_MAX + 1];
    size_t n_finished;

    agent_stats_t st;
};

/* Sends m on the DEALER without blocking; -ENOTCONN when there is none. */
int agent__send(agent_t *a, const msg_t *m);
/* Closes the socket; the next connect is after the backoff (or now). */
void agent__disconnect(agent_t *a, bool backoff);
/* One message from the coordinator (agent_task.c). */
void agent__handle(agent_t *a, const msg_t *m);
/* Drops every lease, whatever its stage; the coordinator is not told (it is
 * gone, or we are). The running job is told to stop and forgotten. */
void agent__drop_all(agent_t *a);
/* The lease a heartbeat names: the one running, fetched or uploaded. */
bool agent__current(agent_t *a, uint64_t *task, uint32_t *attempt);
/* Transfers that hear nothing for the coordinator's timeout: a lost
 * message would hold them, and the worker's heartbeats their lease, for
 * ever. A fetch is given up and its lease failed; an upload starts again
 * from its beginning (twice), then fails. */
void agent__xfer_watch(agent_t *a, uint64_t now);
/* Tells the coordinator a task ended here without a result. */
void agent__tell_error(agent_t *a, uint64_t task, uint32_t attempt, int code, const char *why);
/* Sends the upload of the domain the agent brings (WELCOME asked for it). */
void agent__upload_domain(agent_t *a);
/* Trims the cache to o.cache_max bytes (agent.h), least recently used
 * first, sparing every artifact a lease in the pipeline, the upload under
 * way or the domain it brings needs. */
void agent__trim(agent_t *a);
/* A job the training thread finished (agent_task.c takes it on). */
void agent__finished(agent_t *a, agent_job_t *j);
/* Frees a job (its files are the caller's business). */
void agent__job_free(agent_job_t *j);

/* ---- agent_train.c ---- */

/* Starts the training thread. Returns 0 or -errno. */
int agent__trainer_start(agent_t *a);
/* Stops it (the running job cancelled) and joins it. */
void agent__trainer_stop(agent_t *a);
/* Hands j (owned from now on by the pipeline) to the training thread. */
void agent__trainer_push(agent_t *a, agent_job_t *j);
/* Cancels the ready or running job of task/attempt. Returns 1 if it was
 * ready (it is freed, the coordinator told), 2 if running (it will finish
 * cancelled), 0 if neither. */
int agent__trainer_cancel(agent_t *a, uint64_t task, uint32_t attempt);
/* Orphans every ready and running job (ready ones are freed). */
void agent__trainer_drop(agent_t *a);
/* Takes what the thread left: sends the running job's progress (no more
 * often than progress_ms, step 0 at once) and hands finished jobs to
 * agent__finished. Called when the eventfd fires and on timers. */
void agent__trainer_events(agent_t *a);
/* Leases held by the training thread (ready and running). */
size_t agent__trainer_load(agent_t *a);

#endif
