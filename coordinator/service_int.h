/* service_int.h — what the coordinator's service files share (internal).
 *
 * service.c has the loop, its handles, the records and the status file;
 * service_msg.c answers what peers send; service_xfer.c moves artifacts.
 * Names with coord__ are internal to these files.
 */
#ifndef RW_COORD_SERVICE_INT_H
#define RW_COORD_SERVICE_INT_H

#include "journal.h"
#include "peers.h"
#include "plan.h"
#include "service.h"
#include "store.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define COORD_LOSS_POINTS 256 /* loss-curve points kept per task */

typedef enum {
    COORD_RUNNING = 0, /* leasing tasks */
    COORD_FINISHING,   /* every task done; the job's finish runs */
    COORD_DONE,        /* finished; serving on (keep_serving) or shutting down */
    COORD_FAILED       /* a task failed for good, or the finish did */
} coord_state_t;

/* A connection whose worker id a newer HELLO took (a reconnect, as a rule:
 * the old connection is dead). Should it speak again while the id's new
 * holder lives, two live workers share the id. */
typedef struct coord_replaced {
    wire_peer_t addr;
    char name[MSG_NAME_MAX + 1];
    uint64_t at_ms;
} coord_replaced_t;
#define COORD_REPLACED_MAX 8

struct coord {
    coord_opts_t o;
    const struct coord_job_ops *ops;
    void *job;
    char endpoint[256];
    char status_path[STORE_PATH_MAX];

    curve_auth_t *auth; /* --allow */
    /* coord_redeclare: the tasks asked for are the journal's first ones */
    uint64_t redeclare_upto, redeclared;

    uv_loop_t loop;
    uv_poll_t poll;
    uv_timer_t hb_timer, status_timer;
    uv_idle_t idle; /* drains what one poll callback left */
    uv_async_t stop_async;
    uv_signal_t sigint, sigterm;
    uv_work_t finish_work;
    /* the read of one peer's domain upload, off the loop (one at a time) */
    struct {
        uv_work_t work;
        bool running;
        char peer[MSG_NAME_MAX + 1];
        coord_domain_t d;
        coord_domain_read_t r;
        int rc;
        char why[MSG_REASON_MAX];
    } dom;
    int open_handles;

    void *zctx, *sock;
    wire_t *w;
    int zfd;

    store_t *store;
    journal_t *journal;
    plan_t *plan;
    peers_t peers;
    coord_replaced_t replaced[COORD_REPLACED_MAX]; /* a ring of the latest */
    size_t replaced_next;

    coord_state_t state;
    bool started, finish_running, status_dirty, replaying;
    bool stopping; /* SHUTDOWN sent, handles closing */
    char shutdown_reason[128];
    int exit_code;
    char error[1024];
    bool storage_failed; /* coord__storage_failed: stopping, workers not told */
    bool quiet;          /* stopping without telling the peers to go (a stop without
                          * stop_peers, or storage_failed): they reconnect to the next run */
    /* since when ready tasks wait for a capability no connected peer
     * offers (0: none do), and whether that was said (watch_caps) */
    uint64_t capless_since_ms;
    bool capless_warned;
    uint64_t session_next, hb_seq;
    uint64_t started_ms;
    double started_wall;
    coord_stats_t st;
};

/* The loop's clock, in milliseconds. */
uint64_t coord__now(coord_t *c);
/* Sends m to p's routing id without blocking. Returns wire_send's code. */
int coord__send(coord_t *c, const wire_peer_t *to, const msg_t *m);
/* The coordinator cannot write its state (what it tried, and why, rc): it
 * says so and stops with exit 1, the journal whole, so that starting it
 * again (once there is room, say) carries on where it stopped. */
void coord__storage_failed(coord_t *c, const char *what, int rc);
/* Journals and applies a record (fields stolen); as coord_record. */
int coord__record(coord_t *c, const char *ev, json_t *fields);
/* Leases ready tasks to idle peers. */
void coord__schedule(coord_t *c);
/* Releases attempt of task held by p (journaled), if it is the live one. */
void coord__release(coord_t *c, peer_t *p, uint64_t task, uint32_t attempt, const char *why,
                    bool spent);
/* Tells p to stop lease l and releases it; l stays until p confirms. */
void coord__cancel(coord_t *c, peer_t *p, peer_lease_t *l, const char *why, bool spent);
/* p's lease of task ends: what was uploaded under it, was new to the store
 * and is not keep (the artifact its RESULT named) is removed, unless the
 * task's live attempt or result may be those same bytes. */
void coord__lease_end(coord_t *c, peer_t *p, uint64_t task, uint64_t keep);
/* A peer is gone or replaced: its lease is released, it is dropped. */
void coord__lose(coord_t *c, peer_t *p, const char *why);
/* Every task is done, or some failed: moves the job on. */
void coord__check_done(coord_t *c);
/* Tells a peer that speaks while the coordinator stops to shut down. */
void coord__shutdown_again(coord_t *c, const wire_peer_t *to);
/* p's domain upload is in the store: the job reads and checks it off the
 * loop, then adds it (now, or once a running finish or another domain's
 * read is over). */
void coord__domain_uploaded(coord_t *c, peer_t *p);
/* Tells p, which brought a domain the bundles now hold, to end (SHUTDOWN). */
void coord__release_bringer(coord_t *c, peer_t *p);
/* The job is done and kept serving: tells p, when it has no "router"
 * capability and brings no domain, that the job is done (SHUTDOWN), since
 * nothing the job does from now on needs it. Returns whether it did. */
bool coord__release_done(coord_t *c, peer_t *p);
/* Handles one message from a peer (service_msg.c). */
void coord__handle(coord_t *c, const msg_t *m, const wire_peer_t *from);
/* Answers a HEALTH_REQ from anyone (service_health.c). */
void coord__health(coord_t *c, const msg_health_req_t *r, const wire_peer_t *from);
/* Artifacts (service_xfer.c): a FETCH to serve, an ART_* message in. */
void coord__fetch(coord_t *c, peer_t *p, uint64_t artifact);
void coord__art(coord_t *c, peer_t *p, const msg_t *m);
/* Sends what p's outgoing transfer may send now; starts the next FETCH. */
void coord__pump_out(coord_t *c, peer_t *p);

#endif
