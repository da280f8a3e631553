/* service_health.c — the coordinator's answer to HEALTH_REQ (proto/health.h).
 *
 * Any client may ask, registered or not and in any state, stopping
 * included: a probe must learn that the loop turns, not join the job. The
 * answer is read from the loop's own state, so a reply proves the loop is
 * alive, and a worker is live only while it is registered and was heard
 * from within the timeout that would lose it.
 */
#include "service_int.h"

#include <string.h>

void coord__health(coord_t *c, const msg_health_req_t *r, const wire_peer_t *from)
{
    static const char *const states[] = {"running", "finishing", "done", "failed"};
    plan_counts_t pc;
    plan_count(c->plan, &pc);
    msg_t m;
    msg_init(&m, MSG_HEALTH_REP);
    m.health_rep.req = r->req;
    m.health_rep.service = "coordinator";
    m.health_rep.state = c->stopping ? "stopping" : states[c->state];
    m.health_rep.uptime_ms = coord__now(c) - c->started_ms;
    m.health_rep.workers = c->peers.n, m.health_rep.has_workers = true;
    m.health_rep.tasks_total = plan_size(c->plan), m.health_rep.has_tasks_total = true;
    m.health_rep.tasks_done = pc.done, m.health_rep.has_tasks_done = true;
    if (r->worker) {
        const peer_t *p = peers_by_name(&c->peers, r->worker);
        m.health_rep.worker = r->worker;
        m.health_rep.worker_live = p && coord__now(c) - p->heard_ms <= c->o.timeout_ms;
        m.health_rep.has_worker_live = true;
    }
    coord__send(c, from, &m);
}
