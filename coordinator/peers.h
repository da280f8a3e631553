/* peers.h — the workers a coordinator knows: who, what they can do, what
 * they hold, when they were last heard, and the artifacts on their way to
 * or from them.
 *
 * A peer is found by its ZeroMQ routing id (how its messages arrive) or by
 * its worker id (the name it gave in HELLO; a worker that reconnects keeps
 * its name and gets a new routing id). The registry is bookkeeping only:
 * the service decides when a peer is lost and what its lease becomes.
 */
#ifndef RW_COORD_PEERS_H
#define RW_COORD_PEERS_H

#include "plan.h"
#include "service.h"
#include "store.h"
#include "wire.h"
#include "xfer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PEER_CAPS_MAX    4
#define PEER_FETCHES_MAX 16 /* FETCHes queued behind the one being sent */

#define PEER_LEASES_MAX 8 /* leases one peer holds: the running one and those queued */
#define PEER_FRESH_MAX  4 /* uploads remembered per lease (a task makes one) */

typedef struct peer_lease {
    uint64_t task;
    uint32_t attempt;
    msg_task_kind_t kind;
    char domain[MSG_NAME_MAX + 1];
    bool cancelling; /* told to CANCEL; kept until the peer says it stopped */
    bool started;    /* the peer said it works on it (PROGRESS, HEARTBEAT) */
    /* artifacts uploaded under it that the store did not hold before: what
     * no RESULT names is removed when the lease ends (coord__lease_end) */
    uint64_t fresh[PEER_FRESH_MAX];
    size_t n_fresh;
} peer_lease_t;

typedef struct peer {
    wire_peer_t addr;
    char name[MSG_NAME_MAX + 1];
    char caps[PEER_CAPS_MAX][PLAN_CAP_MAX];
    size_t n_caps;
    uint32_t threads;
    uint64_t session;
    uint64_t heard_ms, joined_ms;
    /* the leases it holds, oldest (the one it runs) first */
    peer_lease_t leases[PEER_LEASES_MAX];
    size_t n_leases;
    /* the last progress of a task it runs */
    uint64_t progress_task;
    uint64_t step, steps;
    double loss, accuracy, pairs_per_s;
    /* over its finished tasks */
    uint32_t tasks_done;
    double pairs_per_s_sum;
    /* an artifact it fetches (out) and one it uploads (in) */
    xfer_send_t *out;
    xfer_file_source_t out_src;
    uint64_t fetches[PEER_FETCHES_MAX];
    size_t n_fetches;
    xfer_recv_t *in;
    store_sink_t in_sink;
    uint64_t in_artifact;
    uint64_t in_task; /* the task it is uploaded under (0: a domain's data) */
    uint32_t in_attempt;
    /* the new domain it brings, while its upload is awaited or checked */
    coord_domain_t dom;
    bool dom_pending;  /* accepted at HELLO; its upload is wanted */
    bool dom_uploaded; /* the upload is in the store; the check waits for the finish */
    bool dom_reading;  /* ... and the job reads it now (coord.dom) */
    bool dom_in_job;   /* accepted: told to go once a version of the bundles holds it */
    bool dom_fresh;    /* its upload made the artifact (no other holds it): a refusal deletes it */
    bool released;     /* told to go (SHUTDOWN) while the job goes on: it is leaving */
} peer_t;

typedef struct peers {
    peer_t **v; /* owned */
    size_t n, cap;
} peers_t;

/* init/fini pair; fini drops every peer; both safe on a zeroed struct. */
void peers_init(peers_t *ps);
void peers_fini(peers_t *ps);

/* A new peer with routing id addr (copied), zeroed but for it. */
peer_t *peers_add(peers_t *ps, const wire_peer_t *addr);
/* Drops p (its transfers aborted, their temporary files removed). */
void peers_remove(peers_t *ps, peer_t *p);
peer_t *peers_by_addr(const peers_t *ps, const wire_peer_t *addr);
peer_t *peers_by_name(const peers_t *ps, const char *name);
/* Whether p offers cap. */
bool peer_has_cap(const peer_t *p, const char *cap);

/* Leases p holds that are not being cancelled. */
size_t peer_active(const peer_t *p);
/* The first lease not being cancelled (the one it runs), or NULL. */
const peer_lease_t *peer_running(const peer_t *p);
/* p's lease of task (any attempt when attempt is 0), or NULL. */
peer_lease_t *peer_lease_find(peer_t *p, uint64_t task, uint32_t attempt);
/* Adds a lease of t (its current attempt); false when p holds the most. */
bool peer_lease_add(peer_t *p, const plan_task_t *t);
/* Drops p's lease of task, if it holds one. */
void peer_lease_remove(peer_t *p, uint64_t task);

/* Ends p's outgoing or incoming transfer (safe when there is none). */
void peer_end_out(peer_t *p);
void peer_end_in(peer_t *p);

#endif
