/* msg.c — the table of msg.h made into data, and the checks it declares.
 *
 * Each F(...) line of MSG_TABLE becomes a msg_field_t (its offset in the
 * message's struct, its type and limits); msg_check walks them. The encoder
 * (msg_pack.c) checks before it writes and the decoder (msg_unpack.c) checks
 * after it reads, through the same msg_check, so both ends hold every
 * message to one set of rules.
 */
#include "msg.h"

#include "msg_int.h"

#include "alloc.h"
#include "err.h"
#include "format.h" /* rw_name_ok: the data's domains are checked as the wire checks */
#include "utf8.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

_Static_assert(MSG_NAME_MAX == RW_NAME_MAX, "a name is the same on the wire and in the data");
#include <string.h>

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const msg__task_kind_names[] = {NULL,
#define XX(id, name) name,
                                                   MSG_TASK_KIND_MAP(XX)
#undef XX
};
static const char *const msg__art_kind_names[] = {NULL,
#define XX(id, name) name,
                                                  MSG_ART_KIND_MAP(XX)
#undef XX
};

/* Each type's part of a msg_field_t initializer. */
#define MSG__D_MT_U64(lo, hi) .type = MSG_FT_U64, .u_lo = (lo), .u_hi = (hi)
#define MSG__D_MT_I64(lo, hi) .type = MSG_FT_I64, .i_lo = (lo), .i_hi = (hi)
#define MSG__D_MT_F64(lo, hi) .type = MSG_FT_F64, .f_lo = (lo), .f_hi = (hi)
#define MSG__D_MT_BOOL()      .type = MSG_FT_BOOL
#define MSG__D_MT_ENUM(set)                                                                        \
    .type = MSG_FT_ENUM, .names = msg__##set##_names, .n_names = COUNT_OF(msg__##set##_names)
#define MSG__D_MT_NAME(max)     .type = MSG_FT_NAME, .len_min = 1, .len_max = (max)
#define MSG__D_MT_STR(min, max) .type = MSG_FT_STR, .len_min = (min), .len_max = (max)
#define MSG__D_MT_JSON(max)     .type = MSG_FT_JSON, .len_min = 2, .len_max = (max)
#define MSG__D_MT_BIN(max)      .type = MSG_FT_BIN, .len_max = (max)
#define MSG__D_MT_NAMES(min, max, len)                                                             \
    .type = MSG_FT_NAMES, .n_min = (min), .n_max = (max), .len_min = 1, .len_max = (len)
#define MSG__D_MT_STRS(min, max, len)                                                              \
    .type = MSG_FT_STRS, .n_min = (min), .n_max = (max), .len_max = (len)
#define MSG__D_MT_U64S(min, max)                                                                   \
    .type = MSG_FT_U64S, .n_min = (min), .n_max = (max), .u_hi = UINT64_MAX
#define MSG__D_MT_F64S(min, max, lo, hi)                                                           \
    .type = MSG_FT_F64S, .n_min = (min), .n_max = (max), .f_lo = (lo), .f_hi = (hi)
#define MSG__D_MT_F32S(min, max, lo, hi)                                                           \
    .type = MSG_FT_F32S, .n_min = (min), .n_max = (max), .f_lo = (lo), .f_hi = (hi)
#define MSG__D_MT_METRICS(max)                                                                     \
    .type = MSG_FT_METRICS, .n_max = (max), .len_min = 1, .len_max = MSG_NAME_MAX,                 \
    .f_lo = -DBL_MAX, .f_hi = DBL_MAX
#define MSG__D_MT_TENSORS(max)                                                                     \
    .type = MSG_FT_TENSORS, .n_max = (max), .len_min = 1, .len_max = MSG_TENSOR_NAME_MAX

#define MSG__REQ_REQ                   true
#define MSG__REQ_OPT                   false
#define MSG__OFF(mn, fld)              offsetof(msg_##mn##_t, has_##fld)
#define MSG__NOOFF(mn, fld)            0
#define MSG__HASOFF_REQ(type, mn, fld) 0
#define MSG__HASOFF_OPT(type, mn, fld) MSG__SCALAR_##type(MSG__OFF, MSG__NOOFF)(mn, fld)

#define MSG__FIELDS(ID, mn, code, rule, doc) static const msg_field_t mn##_fields[] = {
#define MSG__FIELD(mn, fld, req, type)                                                             \
    {.name = #fld,                                                                                 \
     .required = MSG__REQ_##req,                                                                   \
     .offset = offsetof(msg_##mn##_t, fld),                                                        \
     .has_offset = MSG__HASOFF_##req(type, mn, fld),                                               \
     MSG__D_##type},
#define MSG__FIELDS_END(mn)                                                                        \
    }                                                                                              \
    ;
MSG_TABLE(MSG__FIELDS, MSG__FIELD, MSG__FIELDS_END)

#define MSG__RULE_RULE(mn)   msg__rule_##mn
#define MSG__RULE_NORULE(mn) NULL
#define MSG__DESC(ID, mn, code, rule, doc)                                                         \
    [code] = {MSG_##ID, #ID, doc, mn##_fields, COUNT_OF(mn##_fields), MSG__RULE_##rule(mn)},
static const msg_desc_t msg_descs[MSG_CODE_LIMIT] = {MSG_TABLE(MSG__DESC, MSG__SKIP, MSG__SKIP)};

/* Never called: a code used twice in the table is a duplicate case label. */
#define MSG__CASE(ID, mn, code, rule, doc)                                                         \
    case code:                                                                                     \
        break;
__attribute__((unused)) static void msg_codes_are_unique(int code)
{
    switch (code) {
        MSG_TABLE(MSG__CASE, MSG__SKIP, MSG__SKIP)
    default:
        break;
    }
}

_Static_assert(sizeof(msg_task_kind_t) == sizeof(int), "enum fields are stored as int");
_Static_assert(sizeof(msg_art_kind_t) == sizeof(int), "enum fields are stored as int");

const msg_desc_t *msg_desc(msg_type_t type)
{
    if ((unsigned)type >= MSG_CODE_LIMIT || !msg_descs[type].name)
        return NULL;
    return &msg_descs[type];
}

const char *msg_type_name(msg_type_t type)
{
    const msg_desc_t *d = msg_desc(type);
    return d ? d->name : "UNKNOWN";
}

const char *msg_task_kind_name(msg_task_kind_t kind)
{
    return kind > 0 && kind < MSG_TASK__COUNT ? msg__task_kind_names[kind] : NULL;
}

const char *msg_art_kind_name(msg_art_kind_t kind)
{
    return kind > 0 && kind < MSG_ARTIFACT__COUNT ? msg__art_kind_names[kind] : NULL;
}

static int kind_parse(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 1; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return 0;
}

msg_task_kind_t msg_task_kind_parse(const char *name)
{
    return (msg_task_kind_t)kind_parse(msg__task_kind_names, COUNT_OF(msg__task_kind_names), name);
}

msg_art_kind_t msg_art_kind_parse(const char *name)
{
    return (msg_art_kind_t)kind_parse(msg__art_kind_names, COUNT_OF(msg__art_kind_names), name);
}

void msg_init(msg_t *m, msg_type_t type)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->version = PROTO_VERSION;
}

void msg_fini(msg_t *m)
{
    struct msg__hold *h = m->hold_;
    if (h) {
        msgpack_unpacked_destroy(&h->up);
        if (h->release)
            h->release(h->owner);
        free(h);
    }
    memset(m, 0, sizeof *m);
}

void msg_hold(msg_t *m, void *owner, void (*release)(void *owner))
{
    if (!m->hold_) {
        m->hold_ = rw_new(struct msg__hold);
        msgpack_unpacked_init(&m->hold_->up);
    }
    if (m->hold_->release)
        m->hold_->release(m->hold_->owner);
    m->hold_->owner = owner;
    m->hold_->release = release;
}

void msg_refuse_version(msg_t *m, uint64_t peer_version, char *buf)
{
    msg_init(m, MSG_REFUSE);
    snprintf(buf, MSG_WHY_MAX, "protocol version %llu not supported (this peer speaks %d)",
             (unsigned long long)peer_version, PROTO_VERSION);
    m->refuse.code = RW_EVERSION;
    m->refuse.reason = buf;
}

int msg__fail(char *why, int code, const msg_desc_t *d, const msg_field_t *f, const char *fmt, ...)
{
    if (!why)
        return code;
    int n = snprintf(why, MSG_WHY_MAX, "%s%s%s: ", d ? d->name : "message", f ? "." : "",
                     f ? f->name : "");
    if (n < 0 || n >= (int)MSG_WHY_MAX)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + n, MSG_WHY_MAX - (size_t)n, fmt, ap);
    va_end(ap);
    /* a reason may quote a peer's bytes (an unknown field's name), cut
     * anywhere: it is logged and sent back in ERROR.text, so it is kept
     * printable ASCII, and so valid UTF-8 */
    for (char *c = why + n; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            *c = '?';
    return code;
}

/* Items in the list or bytes in the bin of field f at p. */
static size_t list_count(const msg_field_t *f, const void *p)
{
    switch (f->type) {
    case MSG_FT_BIN:
        return ((const msg_bin_t *)p)->n;
    case MSG_FT_NAMES:
    case MSG_FT_STRS:
        return ((const msg_strs_t *)p)->n;
    case MSG_FT_U64S:
        return ((const msg_u64s_t *)p)->n;
    case MSG_FT_F64S:
        return ((const msg_f64s_t *)p)->n;
    case MSG_FT_F32S:
        return ((const msg_f32s_t *)p)->n;
    case MSG_FT_METRICS:
        return ((const msg_metrics_t *)p)->n;
    case MSG_FT_TENSORS:
        return ((const msg_tensors_t *)p)->n;
    default:
        return 0;
    }
}

bool msg__present(const msg_field_t *f, const char *body)
{
    const void *p = body + f->offset;
    if (f->has_offset)
        return *(const bool *)(body + f->has_offset);
    switch (f->type) {
    case MSG_FT_U64:
    case MSG_FT_I64:
    case MSG_FT_F64:
    case MSG_FT_BOOL:
    case MSG_FT_ENUM:
        return true; /* required: it has no flag */
    case MSG_FT_NAME:
    case MSG_FT_STR:
    case MSG_FT_JSON:
        return *(const char *const *)p != NULL;
    default:
        return f->required || list_count(f, p) > 0;
    }
}

/* One string of field f (the field itself, or an element of its list). */
static int check_string(const msg_desc_t *d, const msg_field_t *f, msg_ftype_t kind, const char *s,
                        size_t max, char *why)
{
    if (!s)
        return msg__fail(why, RW_EFIELD, d, f, "NULL string");
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return msg__fail(why, RW_ETOOBIG, d, f, "string longer than %zu bytes", max);
    if (n < f->len_min)
        return msg__fail(why, RW_EFIELD, d, f, "string shorter than %zu bytes", f->len_min);
    if (kind == MSG_FT_NAME && !rw_name_ok(s, n, n)) /* the length is checked apart */
        return msg__fail(why, RW_EFIELD, d, f, "'%.40s' is not a name ([A-Za-z0-9._:-])", s);
    if (kind != MSG_FT_NAME) {
        size_t bad = rw_utf8_check(s, n);
        if (bad != n)
            return msg__fail(why, RW_EFIELD, d, f, "invalid UTF-8 at byte %zu", bad);
    }
    if (kind == MSG_FT_JSON) {
        json_error_t jerr;
        json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, &jerr);
        bool obj = j && json_is_object(j);
        json_decref(j);
        if (!obj)
            return msg__fail(why, RW_EFIELD, d, f, "not a JSON object (%s)",
                             j ? "another JSON value" : jerr.text);
    }
    return 0;
}

static int check_number(const msg_desc_t *d, const msg_field_t *f, double v, char *why)
{
    if (!isfinite(v))
        return msg__fail(why, RW_EFIELD, d, f, "%g is not finite", v);
    if (v < f->f_lo || v > f->f_hi)
        return msg__fail(why, RW_EFIELD, d, f, "%g not in %g..%g", v, f->f_lo, f->f_hi);
    return 0;
}

/* n items of a list field, and a non-NULL array when there are any. */
static int check_count(const msg_desc_t *d, const msg_field_t *f, const void *v, size_t n,
                       char *why)
{
    if (n > f->n_max)
        return msg__fail(why, RW_ETOOBIG, d, f, "%zu items, at most %zu", n, f->n_max);
    if (n < f->n_min)
        return msg__fail(why, RW_EFIELD, d, f, "%zu items, at least %zu", n, f->n_min);
    if (n > 0 && !v)
        return msg__fail(why, RW_EFIELD, d, f, "NULL array of %zu items", n);
    return 0;
}

static int check_metrics(const msg_desc_t *d, const msg_field_t *f, const msg_metrics_t *mt,
                         char *why)
{
    int rc = check_count(d, f, mt->v, mt->n, why);
    for (size_t i = 0; rc == 0 && i < mt->n; i++) {
        rc = check_string(d, f, MSG_FT_NAME, mt->v[i].name, f->len_max, why);
        if (rc == 0)
            rc = check_number(d, f, mt->v[i].value, why);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(mt->v[i].name, mt->v[j].name) == 0)
                rc = msg__fail(why, RW_EFIELD, d, f, "metric %s twice", mt->v[i].name);
    }
    return rc;
}

static int check_tensors(const msg_desc_t *d, const msg_field_t *f, const msg_tensors_t *t,
                         char *why)
{
    int rc = check_count(d, f, t->v, t->n, why);
    for (size_t i = 0; rc == 0 && i < t->n; i++) {
        const msg_tensor_t *x = &t->v[i];
        rc = check_string(d, f, MSG_FT_NAME, x->name, f->len_max, why);
        if (rc < 0)
            break;
        if (x->rank < 1 || x->rank > MSG_RANK_MAX)
            return msg__fail(why, RW_EFIELD, d, f, "tensor %s has rank %u, not 1..%d", x->name,
                             (unsigned)x->rank, MSG_RANK_MAX);
        uint64_t elems = 1;
        for (uint32_t k = 0; k < x->rank; k++) {
            if (x->dim[k] < 1 || x->dim[k] > MSG_ELEMS_MAX / elems)
                return msg__fail(why, RW_EFIELD, d, f,
                                 "tensor %s: dimension %u is %llu (empty or over %llu elements)",
                                 x->name, (unsigned)k, (unsigned long long)x->dim[k],
                                 (unsigned long long)MSG_ELEMS_MAX);
            elems *= x->dim[k];
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(x->name, t->v[j].name) == 0)
                return msg__fail(why, RW_EFIELD, d, f, "tensor %s twice", x->name);
    }
    return rc;
}

static int check_list(const msg_desc_t *d, const msg_field_t *f, const void *p, char *why)
{
    int rc = 0;
    switch (f->type) {
    case MSG_FT_NAMES:
    case MSG_FT_STRS: {
        const msg_strs_t *l = p;
        msg_ftype_t kind = f->type == MSG_FT_NAMES ? MSG_FT_NAME : MSG_FT_STR;
        rc = check_count(d, f, l->v, l->n, why);
        for (size_t i = 0; rc == 0 && i < l->n; i++)
            rc = check_string(d, f, kind, l->v[i], f->len_max, why);
        return rc;
    }
    case MSG_FT_U64S: {
        const msg_u64s_t *l = p;
        return check_count(d, f, l->v, l->n, why);
    }
    case MSG_FT_F64S: {
        const msg_f64s_t *l = p;
        rc = check_count(d, f, l->v, l->n, why);
        for (size_t i = 0; rc == 0 && i < l->n; i++)
            rc = check_number(d, f, l->v[i], why);
        return rc;
    }
    case MSG_FT_F32S: {
        const msg_f32s_t *l = p;
        rc = check_count(d, f, l->v, l->n, why);
        for (size_t i = 0; rc == 0 && i < l->n; i++)
            rc = check_number(d, f, l->v[i], why);
        return rc;
    }
    case MSG_FT_METRICS:
        return check_metrics(d, f, p, why);
    default:
        return check_tensors(d, f, p, why);
    }
}

static int check_field(const msg_desc_t *d, const msg_field_t *f, const void *p, char *why)
{
    switch (f->type) {
    case MSG_FT_U64: {
        uint64_t v = *(const uint64_t *)p;
        if (v < f->u_lo || v > f->u_hi)
            return msg__fail(why, RW_EFIELD, d, f, "%llu not in %llu..%llu", (unsigned long long)v,
                             (unsigned long long)f->u_lo, (unsigned long long)f->u_hi);
        return 0;
    }
    case MSG_FT_I64: {
        int64_t v = *(const int64_t *)p;
        if (v < f->i_lo || v > f->i_hi)
            return msg__fail(why, RW_EFIELD, d, f, "%lld not in %lld..%lld", (long long)v,
                             (long long)f->i_lo, (long long)f->i_hi);
        return 0;
    }
    case MSG_FT_F64:
        return check_number(d, f, *(const double *)p, why);
    case MSG_FT_BOOL:
        return 0;
    case MSG_FT_ENUM: {
        int v;
        memcpy(&v, p, sizeof v);
        if (v < 1 || (size_t)v >= f->n_names)
            return msg__fail(why, RW_EFIELD, d, f, "%d is no kind", v);
        return 0;
    }
    case MSG_FT_NAME:
    case MSG_FT_STR:
    case MSG_FT_JSON:
        return check_string(d, f, f->type, *(const char *const *)p, f->len_max, why);
    case MSG_FT_BIN: {
        const msg_bin_t *b = p;
        if (b->n > f->len_max)
            return msg__fail(why, RW_ETOOBIG, d, f, "%zu bytes, at most %zu", b->n, f->len_max);
        if (b->n > 0 && !b->p)
            return msg__fail(why, RW_EFIELD, d, f, "NULL data of %zu bytes", b->n);
        return 0;
    }
    default:
        return check_list(d, f, p, why);
    }
}

int msg_check(const msg_t *m, char *why)
{
    const msg_desc_t *d = msg_desc(m->type);
    if (!d)
        return msg__fail(why, RW_EMSGTYPE, NULL, NULL, "unknown type %d", (int)m->type);
    const char *body = msg__cbody(m);
    for (size_t i = 0; i < d->n_fields; i++) {
        const msg_field_t *f = &d->fields[i];
        if (!msg__present(f, body)) {
            if (f->required)
                return msg__fail(why, RW_EFIELD, d, f, "missing");
            continue;
        }
        int rc = check_field(d, f, body + f->offset, why);
        if (rc < 0)
            return rc;
    }
    return d->rule ? d->rule(m, why) : 0;
}
