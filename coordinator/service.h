/* service.h — the coordinator: one libuv loop that runs a plan over workers.
 *
 * The loop owns a ROUTER socket bound to the job's endpoint (uv_poll on its
 * ZMQ_FD, drained while ZMQ_EVENTS says so, since that fd is
 * edge-triggered), a heartbeat timer, a status timer and SIGINT/SIGTERM.
 * Workers say HELLO and are leased ready tasks that match their
 * capabilities; they FETCH the artifacts a lease names, which the service
 * streams from its store with credit flow control; they report PROGRESS,
 * upload their output and send RESULT. Heartbeats go both ways: a worker
 * silent past the timeout is lost and its task leased again with the next
 * attempt number; anything that comes back for an old attempt is refused.
 *
 * What the tasks are, what a lease carries and what happens once every
 * task is done belong to a job (the DESIGN.md job is coordinator/job.h; a
 * benchmark brings its own) through coord_job_ops. Every change of state is
 * a record that is journaled (STATE/journal.jsonl) and then applied, the
 * same way a replay on start applies it, so a restarted coordinator carries
 * on where it stopped. A status file (STATE/status.json, rewritten a few
 * times a second) tells `rewire run` what every worker is doing.
 *
 * Nothing a peer sends can crash it: bad messages are dropped by wire.h;
 * valid messages out of place are refused, counted and logged once.
 */
#ifndef RW_COORD_SERVICE_H
#define RW_COORD_SERVICE_H

#include "curve.h"
#include "plan.h"
#include "store.h"
#include "wire.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct coord coord_t;

/* Messages queued for one peer before sends to it fail (ZMQ_SNDHWM): a
 * window of chunks at most, with room for the rest. */
#define COORD_QUEUE_MAX (MSG_WINDOW_MAX + 64)

/* A new domain a worker brings (what its HELLO said), while it joins. */
typedef struct coord_domain {
    char name[MSG_NAME_MAX + 1];
    uint64_t pairs, bytes;
    uint64_t shard;  /* proto_checksum of its data: an artifact on that worker only */
    uint64_t upload; /* what travels: held-out pairs and train prompts */
} coord_domain_t;

/* What the job's read of a domain's upload found, for its domain_add. */
typedef struct coord_domain_read {
    uint64_t train, eval; /* its train prompts and held-out pairs */
    uint64_t artifact;    /* one the job made of it, or 0 */
} coord_domain_read_t;

/* What the service asks of a job. All but lease may be NULL. */
struct coord_job_ops {
    /* Called once after the journal's replay: a job with an empty plan
     * plans it now with coord_add_task (and records what else it must
     * remember with coord_record). Returns 0 or a negative error. */
    int (*start)(void *job, coord_t *c);
    /* Every record, replayed or live (rec borrowed), after the service
     * applied its own part. Returns 0 or a negative error (fails a replay). */
    int (*apply)(void *job, const json_t *rec);
    /* Fills l for task t: config, domain and input artifacts (borrowed
     * from the job until the next call; task, attempt, kind and deadline
     * are the service's). Returns 0, or a negative error that fails the
     * task's attempt. */
    int (*lease)(void *job, const plan_task_t *t, msg_lease_t *l);
    /* A live task's progress (m borrowed). */
    void (*progress)(void *job, const plan_task_t *t, const msg_progress_t *m);
    /* Adds the job's fields to the "done" record of t (rec borrowed) before
     * it is journaled. */
    void (*result)(void *job, const plan_task_t *t, const msg_result_t *m, json_t *rec);
    /* A RESULT for t names the stored artifact at path: 0 when it is what t
     * makes, else a negative error with why filled in (the result is
     * refused and the attempt spent, so a bad output never reaches the
     * merge). NULL: any artifact will do. */
    int (*check_result)(void *job, const plan_task_t *t, const char *path, char *why,
                        size_t whylen);
    /* Runs on a thread off the loop once every task is done (heartbeats go
     * on meanwhile): merges, evaluates, reports. Returns 0 or a negative
     * error with why filled in. */
    int (*finish)(void *job, const plan_t *p, char *why, size_t whylen);
    /* Adds the job's own fields to the status object (borrowed). */
    void (*status)(void *job, json_t *st);
    /* A worker brings domain d (borrowed). Returns 0 when it may join (its
     * upload is wanted next), 1 when this worker brought it before (it is in
     * the job; nothing to upload), or a negative error with why filled in:
     * the refusal the worker gets. NULL: no job takes a domain. */
    int (*domain_check)(void *job, const char *worker, const coord_domain_t *d, char *why,
                        size_t whylen);
    /* d's upload is in the store (st): reads and checks it, and stores what
     * the job needs of it (r->artifact). Runs on a thread off the loop, one
     * at a time and never beside the finish: it may read the job, never
     * change it. Returns 0 with *r filled in, or a negative error with why
     * filled in (the refusal the worker gets). */
    int (*domain_read)(void *job, store_t *st, const coord_domain_t *d, coord_domain_read_t *r,
                       char *why, size_t whylen);
    /* Back on the loop with what domain_read found: records the domain and
     * plans its tasks (coord_record, coord_add_task_on). Returns 0, or a
     * negative error with why filled in (nothing recorded). Never called
     * while the finish runs. */
    int (*domain_add)(void *job, coord_t *c, const char *worker, const coord_domain_t *d,
                      const coord_domain_read_t *r, char *why, size_t whylen);
};

typedef struct coord_opts {
    const char *bind;      /* "tcp://0.0.0.0:5555", "ipc:///run/rw.sock" */
    const char *state_dir; /* journal, artifacts/, status.json */
    uint32_t heartbeat_ms; /* both ways (0: 1000) */
    uint32_t timeout_ms;   /* a peer silent this long is lost (0: 5 heartbeats) */
    uint64_t lease_ms;     /* a lease's deadline (0: one hour) */
    uint32_t max_attempts; /* leases of one task before the job fails (0: 3) */
    bool keep_serving;     /* stay up once the job is done (until a signal) */
    bool stop_peers;       /* a stop (a signal, coord_stop) also tells every peer to go
                            * (SHUTDOWN); else they wait and reconnect to the next run */
    bool no_sync;          /* journal without fsync: benchmarks only */
    uint32_t status_ms;    /* status file period (0: 250) */
    uint32_t lease_ahead;  /* leases a busy peer may hold beyond its running one */
    bool has_lease_ahead;  /* lease_ahead was set (else: 1) */
    curve_opts_t curve;    /* --key, --allow (curve.h); zeroed: no CURVE */
} coord_opts_t;

/* Opens the state (store, journal — replayed through the job's apply),
 * binds the socket and prepares the loop; the job (borrowed) is started
 * by coord_run. Returns 0 with *out, or a negative error with why filled
 * in. */
int coord_new(const coord_opts_t *o, const struct coord_job_ops *ops, void *job, coord_t **out,
              char *why, size_t whylen);
/* Accepts NULL; NULLs *self_p. */
void coord_destroy(coord_t **self_p);

/* Runs until the job is done (or for good with keep_serving) or a signal
 * came. Every peer is sent SHUTDOWN when the job is done or failed; a stop
 * (a signal, coord_stop) sends it only with stop_peers, so that workers
 * and the router service kept by a supervisor wait for the coordinator
 * started next, as after a crash. With keep_serving, once the job is done
 * the peers without the "router" capability are told so (nothing left for
 * them: an added domain trains on the worker that brought it and on router
 * peers). Returns 0 when the job finished (or a signal stopped it
 * cleanly), 1 when it failed, or a negative error from the job's start. */
int coord_run(coord_t *c);
/* Asks a running loop to shut down, from any thread, as a signal does. */
void coord_stop(coord_t *c);

/* The job's side of the state (valid while c is). */
store_t *coord_store(coord_t *c);
const plan_t *coord_plan(const coord_t *c);
/* The endpoint the socket is bound to (with the real port for "tcp://...:*"). */
const char *coord_endpoint(const coord_t *c);

/* Adds a task (journaled). Returns its id, or 0 as plan_add. */
uint64_t coord_add_task(coord_t *c, msg_task_kind_t kind, const char *domain, const char *cap,
                        const uint64_t *deps, size_t n_deps);
/* A start (or a domain's planning) cut short completes itself: from now
 * on, the tasks asked for with coord_add_task[_on] are first matched, in
 * order, against those the journal holds from task first on (the id of
 * each, or 0 for one that differs), and only those past them are added.
 * first 0 ends it. */
void coord_redeclare(coord_t *c, uint64_t first);
/* As coord_add_task, for a task only worker on may run (NULL: any). */
uint64_t coord_add_task_on(coord_t *c, msg_task_kind_t kind, const char *domain, const char *cap,
                           const char *on, const uint64_t *deps, size_t n_deps);
/* Journals {"ev": ev, ...fields} (fields stolen; may be NULL) and hands it
 * to the job's apply. Returns 0 or a negative error. */
int coord_record(coord_t *c, const char *ev, json_t *fields);

typedef struct coord_stats {
    wire_stats_t wire;
    uint64_t leases, results, stale, lost, fetches, uploads;
} coord_stats_t;
void coord_stats(const coord_t *c, coord_stats_t *st);

#endif
