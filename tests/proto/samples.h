/* samples.h — messages made from the table, for tests.
 *
 * sample_fill gives any message type valid values in every field (only the
 * required ones, at their lower limits; or every one, at its upper limits),
 * so a round trip of every type needs no hand-written message. raw_encode
 * writes any msg_t with no validation at all, so a test can break one field
 * and watch the decoder refuse it. Header-only; allocations go to a pool
 * that sample_free releases.
 */
#ifndef RW_TEST_SAMPLES_H
#define RW_TEST_SAMPLES_H

#include "msg.h"
#include "mpw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *sample_pool[4096];
static size_t sample_pool_n;

static inline void *sample_alloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (sample_pool_n < sizeof sample_pool / sizeof sample_pool[0])
        sample_pool[sample_pool_n++] = p;
    return p;
}

static inline void sample_free(void)
{
    for (size_t i = 0; i < sample_pool_n; i++)
        free(sample_pool[i]);
    sample_pool_n = 0;
}

/* A string of n bytes: a name ("n0_aaa...") or text with multibyte UTF-8. */
static inline char *sample_str(size_t n, bool name, size_t salt)
{
    char *s = sample_alloc(n + 1);
    char head[32];
    int h = snprintf(head, sizeof head, "n%zu_", salt);
    for (size_t i = 0; i < n; i++)
        s[i] = (i < (size_t)h) ? head[i] : 'a' + (char)(i % 26);
    if (!name && n >= 2) /* "é" */
        s[n - 2] = (char)0xc3, s[n - 1] = (char)0xa9;
    return s;
}

static inline char *sample_json(size_t n)
{
    char *s = sample_alloc(n + 1);
    if (n < 10) {
        strcpy(s, "{}");
        return s;
    }
    memset(s, 'x', n);
    memcpy(s, "{\"k\":\"", 6);
    s[n - 2] = '"';
    s[n - 1] = '}';
    return s;
}

static inline void sample_list(const msg_field_t *f, void *p, bool full)
{
    size_t n = full ? f->n_max : (f->n_min ? f->n_min : 1);
    switch (f->type) {
    case MSG_FT_NAMES:
    case MSG_FT_STRS: {
        const char **v = sample_alloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++)
            v[i] = sample_str(full ? f->len_max : (f->len_min ? f->len_min : 3),
                              f->type == MSG_FT_NAMES, i);
        *(msg_strs_t *)p = (msg_strs_t){v, n};
        break;
    }
    case MSG_FT_U64S: {
        uint64_t *v = sample_alloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++)
            v[i] = full ? (i == 0 ? UINT64_MAX : i) : 0;
        *(msg_u64s_t *)p = (msg_u64s_t){v, n};
        break;
    }
    case MSG_FT_F64S: {
        double *v = sample_alloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++)
            v[i] = i % 2 ? f->f_hi : f->f_lo;
        *(msg_f64s_t *)p = (msg_f64s_t){v, n};
        break;
    }
    case MSG_FT_F32S: {
        float *v = sample_alloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++)
            v[i] = (float)(f->f_lo + (f->f_hi - f->f_lo) * (double)(i % 7) / 6.0);
        *(msg_f32s_t *)p = (msg_f32s_t){v, n};
        break;
    }
    case MSG_FT_METRICS: {
        msg_metric_t *v = sample_alloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++)
            v[i] = (msg_metric_t){sample_str(full ? f->len_max : 4, true, i), -1.5 * (double)i};
        *(msg_metrics_t *)p = (msg_metrics_t){v, n};
        break;
    }
    default: {
        msg_tensor_t *v = sample_alloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++) {
            v[i].name = sample_str(full ? f->len_max : 5, true, i);
            v[i].rank = full ? MSG_RANK_MAX : 2;
            for (uint32_t k = 0; k < v[i].rank; k++)
                v[i].dim[k] = full ? 2 + k : 64 * (k + 1);
        }
        *(msg_tensors_t *)p = (msg_tensors_t){v, n};
        break;
    }
    }
}

static inline void sample_field(const msg_field_t *f, char *body, bool full)
{
    void *p = body + f->offset;
    if (f->has_offset)
        *(bool *)(body + f->has_offset) = true;
    switch (f->type) {
    case MSG_FT_U64:
        *(uint64_t *)p = full ? f->u_hi : f->u_lo;
        break;
    case MSG_FT_I64:
        *(int64_t *)p = full ? f->i_hi : f->i_lo;
        break;
    case MSG_FT_F64:
        *(double *)p = full ? f->f_hi : f->f_lo;
        break;
    case MSG_FT_BOOL:
        *(bool *)p = full;
        break;
    case MSG_FT_ENUM: {
        int v = full ? (int)f->n_names - 1 : 1;
        memcpy(p, &v, sizeof v);
        break;
    }
    case MSG_FT_NAME:
    case MSG_FT_STR:
        *(const char **)p = sample_str(full ? f->len_max : (f->len_min ? f->len_min : 0),
                                       f->type == MSG_FT_NAME, 0);
        break;
    case MSG_FT_JSON:
        *(const char **)p = sample_json(full ? f->len_max : 2);
        break;
    case MSG_FT_BIN: {
        size_t n = full ? f->len_max : 0;
        unsigned char *b = sample_alloc(n);
        for (size_t i = 0; i < n; i++)
            b[i] = (unsigned char)(i * 7);
        *(msg_bin_t *)p = (msg_bin_t){n ? b : NULL, n};
        break;
    }
    default:
        sample_list(f, p, full);
        break;
    }
}

/* Makes the rules that tie fields together hold. */
static inline void sample_fix_rules(msg_t *m, bool full)
{
    switch (m->type) {
    case MSG_TRAIN_REQ:
        m->train_req.kind = MSG_TASK_ROUTER;
        break;
    case MSG_ART_ACK:
        m->art_ack.ok = !full;
        break;
    case MSG_ROUTE_REP: {
        uint64_t *c = (uint64_t *)m->route_rep.choice.v;
        for (size_t i = 0; i < m->route_rep.choice.n; i++)
            c[i] = i % m->route_rep.domains.n;
        break;
    }
    default:
        break;
    }
}

/* A valid message of type t: required fields at their lower limits, or
 * (full) every field at its upper limits. */
static inline void sample_fill(msg_t *m, msg_type_t t, bool full)
{
    const msg_desc_t *d = msg_desc(t);
    msg_init(m, t);
    for (size_t i = 0; i < d->n_fields; i++)
        if (full || d->fields[i].required)
            sample_field(&d->fields[i], (char *)&m->hello, full);
    sample_fix_rules(m, full);
}

/* Whether field f is present (as the codec sees it). */
static inline bool sample_present(const msg_field_t *f, const char *body)
{
    const void *p = body + f->offset;
    if (f->has_offset)
        return *(const bool *)(body + f->has_offset);
    switch (f->type) {
    case MSG_FT_NAME:
    case MSG_FT_STR:
    case MSG_FT_JSON:
        return *(const char *const *)p != NULL;
    case MSG_FT_BIN:
        return f->required || ((const msg_bin_t *)p)->n > 0;
    case MSG_FT_NAMES:
    case MSG_FT_STRS:
        return f->required || ((const msg_strs_t *)p)->n > 0;
    case MSG_FT_U64S:
        return f->required || ((const msg_u64s_t *)p)->n > 0;
    case MSG_FT_F64S:
        return f->required || ((const msg_f64s_t *)p)->n > 0;
    case MSG_FT_F32S:
        return f->required || ((const msg_f32s_t *)p)->n > 0;
    case MSG_FT_METRICS:
        return f->required || ((const msg_metrics_t *)p)->n > 0;
    case MSG_FT_TENSORS:
        return f->required || ((const msg_tensors_t *)p)->n > 0;
    default:
        return true;
    }
}

static inline void raw_list(mpw_t *w, const msg_field_t *f, const void *p)
{
    switch (f->type) {
    case MSG_FT_NAMES:
    case MSG_FT_STRS: {
        const msg_strs_t *l = p;
        mpw_array(w, (uint32_t)l->n);
        for (size_t i = 0; i < l->n; i++)
            mpw_str(w, l->v[i]);
        break;
    }
    case MSG_FT_U64S: {
        const msg_u64s_t *l = p;
        mpw_array(w, (uint32_t)l->n);
        for (size_t i = 0; i < l->n; i++)
            mpw_uint(w, l->v[i]);
        break;
    }
    case MSG_FT_F64S: {
        const msg_f64s_t *l = p;
        mpw_array(w, (uint32_t)l->n);
        for (size_t i = 0; i < l->n; i++)
            mpw_double(w, l->v[i]);
        break;
    }
    case MSG_FT_F32S: {
        const msg_f32s_t *l = p;
        mpw_array(w, (uint32_t)l->n);
        for (size_t i = 0; i < l->n; i++)
            mpw_double(w, l->v[i]);
        break;
    }
    case MSG_FT_METRICS: {
        const msg_metrics_t *l = p;
        mpw_map(w, (uint32_t)l->n);
        for (size_t i = 0; i < l->n; i++)
            mpw_str(w, l->v[i].name), mpw_double(w, l->v[i].value);
        break;
    }
    default: {
        const msg_tensors_t *l = p;
        mpw_array(w, (uint32_t)l->n);
        for (size_t i = 0; i < l->n; i++) {
            mpw_array(w, 2);
            mpw_str(w, l->v[i].name);
            mpw_array(w, l->v[i].rank);
            for (uint32_t k = 0; k < l->v[i].rank; k++)
                mpw_uint(w, l->v[i].dim[k]);
        }
        break;
    }
    }
}

/* Writes m's envelope with no validation: whatever the struct holds, less
 * the field skip (NULL: none). */
static inline void raw_encode_skip(const msg_t *m, mpw_t *w, const msg_field_t *skip)
{
    const msg_desc_t *d = msg_desc(m->type);
    const char *body = (const char *)&m->hello;
    uint32_t present = 0;
    for (size_t i = 0; i < d->n_fields; i++)
        present += &d->fields[i] != skip && sample_present(&d->fields[i], body);
    mpw_envelope(w, PROTO_VERSION, m->type, present);
    for (size_t i = 0; i < d->n_fields; i++) {
        const msg_field_t *f = &d->fields[i];
        const void *p = body + f->offset;
        if (f == skip || !sample_present(f, body))
            continue;
        mpw_str(w, f->name);
        switch (f->type) {
        case MSG_FT_U64:
            mpw_uint(w, *(const uint64_t *)p);
            break;
        case MSG_FT_I64:
            mpw_int(w, *(const int64_t *)p);
            break;
        case MSG_FT_F64:
            mpw_double(w, *(const double *)p);
            break;
        case MSG_FT_BOOL:
            mpw_byte(w, *(const bool *)p ? 0xc3 : 0xc2);
            break;
        case MSG_FT_ENUM: {
            int v;
            memcpy(&v, p, sizeof v);
            mpw_str(w, v > 0 && (size_t)v < f->n_names ? f->names[v] : "no-such-kind");
            break;
        }
        case MSG_FT_NAME:
        case MSG_FT_STR:
        case MSG_FT_JSON: {
            const char *s = *(const char *const *)p;
            mpw_str(w, s ? s : "");
            break;
        }
        case MSG_FT_BIN:
            mpw_bin(w, ((const msg_bin_t *)p)->p, ((const msg_bin_t *)p)->n);
            break;
        default:
            raw_list(w, f, p);
            break;
        }
    }
}

static inline void raw_encode(const msg_t *m, mpw_t *w)
{
    raw_encode_skip(m, w, NULL);
}

static inline bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static inline bool list_equal(const msg_field_t *f, const void *pa, const void *pb)
{
    switch (f->type) {
    case MSG_FT_NAMES:
    case MSG_FT_STRS: {
        const msg_strs_t *a = pa, *b = pb;
        for (size_t i = 0; a->n == b->n && i < a->n; i++)
            if (!str_eq(a->v[i], b->v[i]))
                return false;
        return a->n == b->n;
    }
    case MSG_FT_U64S: {
        const msg_u64s_t *a = pa, *b = pb;
        return a->n == b->n && (!a->n || !memcmp(a->v, b->v, a->n * sizeof *a->v));
    }
    case MSG_FT_F64S: {
        const msg_f64s_t *a = pa, *b = pb;
        return a->n == b->n && (!a->n || !memcmp(a->v, b->v, a->n * sizeof *a->v));
    }
    case MSG_FT_F32S: {
        const msg_f32s_t *a = pa, *b = pb;
        return a->n == b->n && (!a->n || !memcmp(a->v, b->v, a->n * sizeof *a->v));
    }
    case MSG_FT_METRICS: {
        const msg_metrics_t *a = pa, *b = pb;
        for (size_t i = 0; a->n == b->n && i < a->n; i++)
            if (!str_eq(a->v[i].name, b->v[i].name) || a->v[i].value != b->v[i].value)
                return false;
        return a->n == b->n;
    }
    default: {
        const msg_tensors_t *a = pa, *b = pb;
        for (size_t i = 0; a->n == b->n && i < a->n; i++) {
            const msg_tensor_t *x = &a->v[i], *y = &b->v[i];
            if (!str_eq(x->name, y->name) || x->rank != y->rank ||
                memcmp(x->dim, y->dim, x->rank * sizeof x->dim[0]))
                return false;
        }
        return a->n == b->n;
    }
    }
}

/* Whether a and b hold the same fields; the first that differs in *which. */
static inline bool sample_equal(const msg_t *a, const msg_t *b, const char **which)
{
    *which = "type";
    if (a->type != b->type)
        return false;
    const msg_desc_t *d = msg_desc(a->type);
    const char *ba = (const char *)&a->hello, *bb = (const char *)&b->hello;
    for (size_t i = 0; i < d->n_fields; i++) {
        const msg_field_t *f = &d->fields[i];
        const void *pa = ba + f->offset, *pb = bb + f->offset;
        *which = f->name;
        bool has = sample_present(f, ba);
        if (has != sample_present(f, bb))
            return false;
        if (!has)
            continue;
        bool eq;
        switch (f->type) {
        case MSG_FT_U64:
        case MSG_FT_I64:
        case MSG_FT_F64:
            eq = memcmp(pa, pb, 8) == 0;
            break;
        case MSG_FT_BOOL:
            eq = *(const bool *)pa == *(const bool *)pb;
            break;
        case MSG_FT_ENUM:
            eq = memcmp(pa, pb, sizeof(int)) == 0;
            break;
        case MSG_FT_NAME:
        case MSG_FT_STR:
        case MSG_FT_JSON:
            eq = str_eq(*(const char *const *)pa, *(const char *const *)pb);
            break;
        case MSG_FT_BIN: {
            const msg_bin_t *x = pa, *y = pb;
            eq = x->n == y->n && (!x->n || memcmp(x->p, y->p, x->n) == 0);
            break;
        }
        default:
            eq = list_equal(f, pa, pb);
            break;
        }
        if (!eq)
            return false;
    }
    return true;
}

#endif
