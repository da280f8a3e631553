/* agent_int.h — what agent.c (connection, loop, training thread) and
 * agent_task.c (messages, leases, transfers) share. Internal. */
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
/* FETCH inputs, RUN on the training thread */
typedef enum { AGENT_T_NONE = 0, AGENT_T_FETCH, AGENT_T_RUN } agent_tstate_t;

#define AGENT_INPUTS_MAX (MSG_DOMAINS_MAX + 3)
#define AGENT_QUEUE_MAX  8 /* leases waiting behind the one being worked on */

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

/* The task being fetched or trained. */
typedef struct agent_task {
    agent_tstate_t state;
    agent_lease_t l;
    /* fetching: the inputs the cache lacks, one at a time */
    uint64_t need[AGENT_INPUTS_MAX];
    size_t n_need, i_need;
    xfer_recv_t *in;
    store_sink_t sink;
    /* running */
    pthread_t th;
    bool th_live;
    agent_work_t work;
    char paths[4][STORE_PATH_MAX]; /* tokenizer, data, base, out */
    char **expert_paths;           /* owned */
    agent_outcome_t res;
    char why[256];
    uint64_t progress_ms; /* when the last PROGRESS went */
} agent_task_t;

/* A trained task whose output waits for the upload slot. */
typedef struct agent_done {
    uint64_t task;
    uint32_t attempt;
    char out[STORE_PATH_MAX];
    agent_outcome_t res;
} agent_done_t;

/* A finished task's output on its way to the coordinator, while the next
 * task already trains. */
typedef struct agent_upload {
    bool active;
    uint64_t task;
    uint32_t attempt;
    xfer_send_t *up;
    xfer_file_source_t src;
    uint64_t id;
    agent_outcome_t res;
} agent_upload_t;

struct agent {
    agent_opts_t o;
    const char **caps; /* owned copies */
    char id[MSG_NAME_MAX + 1];
    store_t *cache;
    void *zctx, *sock;
    wire_t *w;
    int efd;
    volatile sig_atomic_t stop;
    bool done;  /* SHUTDOWN or REFUSE came */
    int result; /* agent_run's return */

    agent_conn_t conn;
    bool hello_sent;
    uint64_t next_try, attempt_deadline;
    uint32_t backoff;
    uint32_t hb_ms, timeout_ms;
    uint64_t last_heard, next_hb, hb_seq;

    agent_task_t t;
    agent_upload_t u;
    agent_lease_t q[AGENT_QUEUE_MAX]; /* leases not started, oldest first */
    size_t n_q;
    agent_done_t dq[AGENT_QUEUE_MAX]; /* trained, waiting to upload, oldest first */
    size_t n_dq;
    pthread_mutex_t mu; /* guards slot */
    struct {
        agent_step_t step;
        bool fresh, cancel, done;
        int rc;
    } slot;
    agent_stats_t st;
};

uint64_t agent__now(void);
/* Sends m on the DEALER without blocking; -ENOTCONN when there is none. */
int agent__send(agent_t *a, const msg_t *m);
/* Closes the socket; the next connect is after the backoff (or now). */
void agent__disconnect(agent_t *a, bool backoff);
/* One message from the coordinator (agent_task.c). */
void agent__handle(agent_t *a, const msg_t *m);
/* Starts the training thread on a->t.work. Returns 0 or -errno. */
int agent__start_training(agent_t *a);
void agent__cancel_training(agent_t *a);
/* Training ended with rc (0: the output is at a->t.paths[3]). */
void agent__trained(agent_t *a, int rc, bool cancelled);
/* Drops every task and lease: transfers aborted, training cancelled and
 * joined. The coordinator is not told (it is gone, or we are). */
void agent__drop_all(agent_t *a);
/* The lease the heartbeat names: the task worked on or uploaded, or NULL. */
bool agent__current(const agent_t *a, uint64_t *task, uint32_t *attempt);

#endif
