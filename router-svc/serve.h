/* serve.h — routing and scoring with finished bundles, for any ZeroMQ client.
 *
 * A ROUTER socket answers ROUTE_REQ (which domain does each prompt belong
 * to?) and SCORE_REQ (the reward of each (prompt, response) pair) for the
 * bundles in one folder, named by their folder ("router", "adapter", ...).
 * A bundle is opened (and verified) on first use and opened again when its
 * manifest changes, so a job that rewrites its bundles is served the new
 * ones. Every bad request gets an ERROR reply carrying its req, and the
 * service goes on. A message that cannot be read at all is dropped by
 * wire.h and answered with an ERROR without req saying why ("cannot read
 * this SCORE_REQ: invalid field: ..."), unless it is from another protocol
 * version (wire.h answers REFUSE) or claims to be an answer itself.
 * HEALTH_REQ (proto/health.h) is answered with the bundles it can serve.
 * A request whose client has gone while it waited (or that holds
 * RSVC_ANSWERS_MAX answers unread) is skipped, not scored: ZeroMQ keeps
 * delivering what a peer sent before it went, and each such request would
 * otherwise take its full turn from the clients still there.
 *
 * A server is driven from its owner's loop: poll rsvc_socket() and call
 * rsvc_drain() when it has input (the router service does so on its
 * agent's loop, between heartbeats).
 */
#ifndef RW_RSVC_SERVE_H
#define RW_RSVC_SERVE_H

#include "curve.h"
#include "wire.h"

#include <stdint.h>

typedef struct rsvc rsvc_t;

/* Requests queued from one client before ZeroMQ stops reading from it. */
#define RSVC_QUEUE_MAX 8
/* Answers held for one client that does not read them; past it they are
 * dropped (it is not reading): a client that asks and never reads holds at
 * most this many answers here, not ZeroMQ's default 1,000. */
#define RSVC_ANSWERS_MAX 64

/* A server for the bundles in dir (copied), bound to bind on zctx
 * (borrowed; must outlive it), scoring on threads threads (bundle.h's
 * rw_bundle_set_threads), with CURVE as curve says (--key, --allow;
 * NULL: none). Returns NULL with why filled in. */
rsvc_t *rsvc_new(void *zctx, const char *bind, const char *dir, int threads,
                 const curve_opts_t *curve, char *why, size_t whylen);
/* Accepts NULL; NULLs *self_p. */
void rsvc_destroy(rsvc_t **self_p);

/* The socket to poll for input, and the endpoint it is bound to. */
void *rsvc_socket(rsvc_t *s);
const char *rsvc_endpoint(const rsvc_t *s);
/* Most milliseconds one rsvc_drain spends answering (it answers one
 * request at least). */
#define RSVC_DRAIN_MS 100
/* Answers the requests waiting on the socket, for RSVC_DRAIN_MS at most:
 * call it again while the socket has input (poll level-triggered). */
void rsvc_drain(rsvc_t *s);

typedef struct rsvc_stats {
    uint64_t routed, scored, errors; /* requests answered, and refused */
    uint64_t opens;                  /* bundles opened (or opened again) */
    uint64_t abandoned;              /* requests not worked on: their client was
                                      * gone, or not reading its answers */
    wire_stats_t wire;
} rsvc_stats_t;
void rsvc_stats(const rsvc_t *s, rsvc_stats_t *st);

#endif
