/* svc_peer.h — the test as a coordinator's peer, for tests that run a
 * coordinator service in a thread with a job of their own.
 *
 * A DEALER socket that says HELLO, waits for a message of one type, and
 * sends a task's RESULT; every failure fails the test (Criterion).
 */
#ifndef RW_TEST_SVC_PEER_H
#define RW_TEST_SVC_PEER_H

#include "service.h"
#include "store.h"
#include "wire.h"

#include <pthread.h>
#include <stdint.h>

typedef struct svc_peer {
    void *ctx, *sock;
    wire_t *w;
} svc_peer_t;

/* Connects p to endpoint (id names it in the log of what it drops). */
void svc_peer_connect(svc_peer_t *p, const char *endpoint, const char *id);
/* Says HELLO as id offering cap (one thread). */
void svc_peer_hello(svc_peer_t *p, const char *id, const char *cap);
/* svc_peer_connect, then svc_peer_hello. */
void svc_peer_open(svc_peer_t *p, const char *endpoint, const char *id, const char *cap);
/* Closes what svc_peer_connect opened. */
void svc_peer_close(svc_peer_t *p);
/* Receives until a message of type comes (others skipped) or ms pass.
 * Returns 0 with *m (caller msg_fini's it), or -1. */
int svc_peer_expect(svc_peer_t *p, msg_type_t type, msg_t *m, int ms);
/* Sends the RESULT of task's attempt, naming an artifact put into st (the
 * coordinator's store, borrowed) for it. */
void svc_peer_result(svc_peer_t *p, store_t *st, uint64_t task, uint32_t attempt);
/* A job's ops for the tests: a start that plans one seed task, and a lease
 * that gives it an empty configuration. */
int svc_one_task_start(void *job, coord_t *c);
int svc_empty_lease(void *job, const plan_task_t *t, msg_lease_t *l);
/* coord_new on o with ops (a job of NULL), then coord_run on a thread of
 * its own, *th: join it once the coordinator is stopped. *rc, when rc is not
 * NULL, is -1 until coord_run returns, then what it returned. */
coord_t *svc_coord_thread(const coord_opts_t *o, const struct coord_job_ops *ops, pthread_t *th,
                          int *rc);
/* How many times text is in the file at path (0 when it cannot be read). */
int svc_count_in_file(const char *path, const char *text);

#endif
