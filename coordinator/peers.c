/* peers.c — the workers a coordinator knows; see peers.h.
 *
 * A job has a handful of peers: lookups scan the array.
 */
#include "peers.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

void peer_end_out(peer_t *p)
{
    xfer_send_destroy(&p->out);
    xfer_file_source_close(&p->out_src);
    p->out_src.fd = -1;
}

void peer_end_in(peer_t *p)
{
    xfer_recv_destroy(&p->in);
    xfer_file_sink_fini(&p->in_sink);
    if (p->in_tmp[0])
        unlink(p->in_tmp);
    p->in_tmp[0] = '\0';
    p->in_artifact = 0;
}
