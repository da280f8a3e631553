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
typedef enum { AGENT_T_NONE = 0, AGENT_T_FETCH, AGENT_T_RUN, AGENT_T_UPLOAD } agent_tstate_t;

#define AGENT_INPUTS_MAX (MSG_DOMAINS_MAX + 3)

typedef struct agent_task {
    agent_tstate_t state;
    uint64_t id;
    uint32_t attempt;
    msg_task_kind_t kind;
    char domain[MSG_NAME_MAX + 1];
    char *config; /* owned */
    uint64_t tokenizer, data, base;
    uint64_t *experts; /* owned */
    size_t n_experts;
    /* fetching: the inputs the cache lacks, one at a time */
    uint64_t need[AGENT_INPUTS_MAX];
    size_t n_need, i_need;
    xfer_recv_t *in;
    xfer_file_sink_t sink;
    char in_tmp[STORE_PATH_MAX];
    /* running */
    pthread_t th;
    bool th_live;
    agent_work_t work;
    char paths[4][STORE_PATH_MAX]; /* tokenizer, data, base, out */
    char **expert_paths;           /* owned */
    agent_outcome_t res;
    char why[256];
    uint64_t progress_ms; /* when the last PROGRESS went */
    /* uploading */
    xfer_send_t *up;
    xfer_file_source_t up_src;
    uint64_t up_id;
} agent_task_t;

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
/* The task's output is at a->t.paths[3]: into the cache and up it goes. */
void agent__upload(agent_t *a);
/* The task failed (or was cancelled) here: ERROR to the coordinator, and
 * the task is dropped. */
void agent__fail_task(agent_t *a, int code, const char *why);
/* Drops the task: transfers aborted, training cancelled and joined; with
 * tell, the coordinator hears nothing (it is gone). */
void agent__drop_task(agent_t *a, bool coordinator_gone);

#endif
