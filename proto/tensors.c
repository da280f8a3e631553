/* tensors.c — the shapes a result declares, against the shapes it should have.
 *
 * A RESULT lists the tensors of its artifact by name and shape; the
 * coordinator derives the shapes a task's model configuration implies and
 * refuses a result whose tensors differ, before it trusts the artifact's
 * bytes. The size check is the other half: the elements the shapes declare,
 * times the element size, must be what the artifact holds.
 */
#include "msg.h"

#include "err.h"

#include <stdio.h>
#include <string.h>

/* "64x256" into buf (n bytes). */
static const char *shape_str(const msg_tensor_t *t, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t k = 0; k < t->rank && k < MSG_RANK_MAX && used < n; k++) {
        int w =
            snprintf(buf + used, n - used, "%s%llu", k ? "x" : "", (unsigned long long)t->dim[k]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

static bool same_shape(const msg_tensor_t *a, const msg_tensor_t *b)
{
    if (a->rank != b->rank || a->rank > MSG_RANK_MAX)
        return false;
    for (uint32_t k = 0; k < a->rank; k++)
        if (a->dim[k] != b->dim[k])
            return false;
    return true;
}

static const msg_tensor_t *find(const msg_tensors_t *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return &t->v[i];
    return NULL;
}

static int mismatch(char *why, const char *fmt, const char *name, const char *a, const char *b)
{
    if (why)
        snprintf(why, MSG_WHY_MAX, fmt, name, a, b);
    return RW_EFIELD;
}

int msg_tensors_match(const msg_tensors_t *want, const msg_tensors_t *got, char *why)
{
    char a[96], b[96];
    for (size_t i = 0; i < want->n; i++) {
        const msg_tensor_t *w = &want->v[i];
        const msg_tensor_t *g = find(got, w->name);
        if (!g)
            return mismatch(why, "tensor %s: missing%s%s", w->name, "", "");
        if (!same_shape(w, g))
            return mismatch(why, "tensor %s: got %s, want %s", w->name, shape_str(g, a, sizeof a),
                            shape_str(w, b, sizeof b));
    }
    for (size_t i = 0; i < got->n; i++)
        if (!find(want, got->v[i].name))
            return mismatch(why, "tensor %s: not in the configuration%s%s", got->v[i].name, "", "");
    return 0;
}

int msg_tensors_bytes(const msg_tensors_t *t, size_t elem_size, uint64_t *bytes)
{
    uint64_t total = 0;
    for (size_t i = 0; i < t->n; i++) {
        uint64_t e = elem_size;
        for (uint32_t k = 0; k < t->v[i].rank && k < MSG_RANK_MAX; k++) {
            uint64_t d = t->v[i].dim[k];
            if (d != 0 && e > UINT64_MAX / d)
                return RW_ETOOBIG;
            e *= d;
        }
        if (e > UINT64_MAX - total)
            return RW_ETOOBIG;
        total += e;
    }
    *bytes = total;
    return 0;
}
