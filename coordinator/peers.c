/* peers.c — the workers a coordinator knows; see peers.h.
 *
 * A job has a handful of peers: lookups scan the array.
 */
#include "peers.h"

#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void peers_init(peers_t *ps)
{
    memset(ps, 0, sizeof *ps);
}

static void peer_free(peer_t *p)
{
    peer_end_out(p);
    peer_end_in(p);
    free(p);
}

void peers_fini(peers_t *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        peer_free(ps->v[i]);
    free(ps->v);
    memset(ps, 0, sizeof *ps);
}

peer_t *peers_add(peers_t *ps, const wire_peer_t *addr)
{
    rw_grow(&ps->v, &ps->cap, ps->n + 1);
    peer_t *p = rw_new(peer_t);
    p->addr = *addr;
    p->out_src.fd = -1;
    ps->v[ps->n++] = p;
    return p;
}

void peers_remove(peers_t *ps, peer_t *p)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->v[i] == p) {
            memmove(&ps->v[i], &ps->v[i + 1], (ps->n - i - 1) * sizeof *ps->v);
            ps->n--;
            peer_free(p);
            return;
        }
    }
}

peer_t *peers_by_addr(const peers_t *ps, const wire_peer_t *addr)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i]->addr.id_len == addr->id_len &&
            memcmp(ps->v[i]->addr.id, addr->id, addr->id_len) == 0)
            return ps->v[i];
    return NULL;
}

peer_t *peers_by_name(const peers_t *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->v[i]->name, name) == 0)
            return ps->v[i];
    return NULL;
}

bool peer_has_cap(const peer_t *p, const char *cap)
{
    for (size_t i = 0; i < p->n_caps; i++)
        if (strcmp(p->caps[i], cap) == 0)
            return true;
    return false;
}

size_t peer_active(const peer_t *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_leases; i++)
        n += !p->leases[i].cancelling;
    return n;
}

const peer_lease_t *peer_running(const peer_t *p)
{
    for (size_t i = 0; i < p->n_leases; i++)
        if (!p->leases[i].cancelling)
            return &p->leases[i];
    return NULL;
}

peer_lease_t *peer_lease_find(peer_t *p, uint64_t task, uint32_t attempt)
{
    for (size_t i = 0; i < p->n_leases; i++)
        if (p->leases[i].task == task && (!attempt || p->leases[i].attempt == attempt))
            return &p->leases[i];
    return NULL;
}

bool peer_lease_add(peer_t *p, const plan_task_t *t)
{
    if (p->n_leases == PEER_LEASES_MAX)
        return false;
    peer_lease_t *l = &p->leases[p->n_leases++];
    memset(l, 0, sizeof *l);
    l->task = t->id;
    l->attempt = t->attempt;
    l->kind = t->kind;
    snprintf(l->domain, sizeof l->domain, "%s", t->domain);
    return true;
}

void peer_lease_remove(peer_t *p, uint64_t task)
{
    for (size_t i = 0; i < p->n_leases; i++) {
        if (p->leases[i].task == task) {
            memmove(&p->leases[i], &p->leases[i + 1], (p->n_leases - i - 1) * sizeof p->leases[0]);
            p->n_leases--;
            return;
        }
    }
}

void peer_end_out(peer_t *p)
{
    xfer_send_destroy(&p->out);
    xfer_file_source_close(&p->out_src);
    p->out_src.fd = -1;
}

void peer_end_in(peer_t *p)
{
    xfer_recv_destroy(&p->in);
    store_sink_fini(&p->in_sink);
    p->in_artifact = p->in_task = 0;
    p->in_attempt = 0;
}
