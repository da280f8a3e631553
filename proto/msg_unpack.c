/* msg_unpack.c — bytes off the wire into a checked msg_t.
 *
 * Three steps, each trusting only what the one before proved. First a scan
 * walks the MessagePack headers without building anything and checks every
 * claimed length and count against the bytes actually there and against
 * MSG_MAX_ITEMS: msgpack-c allocates count * sizeof(msgpack_object) for an
 * array header before it reads one element, so five bytes claiming four
 * billion elements would ask it for 64 GiB. Then msgpack_unpack_next builds
 * the tree (in a zone now bounded by the scan). Then the fields are read
 * into the message's struct, each list's count checked against its cap
 * before its array is allocated, and msg_check applies the table's rules.
 */
#include "msg_int.h"

#include "err.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Big-endian integer of k bytes at p. */
static uint64_t be(const uint8_t *p, size_t k)
{
    uint64_t v = 0;
    for (size_t i = 0; i < k; i++)
        v = v << 8 | p[i];
    return v;
}

/* What one header byte announces: the bytes of its length field (lenlen),
 * bytes that follow the length field besides what it counts (skip), and for
 * a container its count and items per element (per: 1 array, 2 map). */
typedef struct head {
    size_t lenlen, skip, per;
    uint64_t count;
} head_t;

/* {lenlen, skip, per} of the header bytes 0xc0..0xdf; 0xc1 is never used. */
// clang-format off
static const uint8_t heads[32][3] = {
    {0, 0, 0}, {9, 9, 9}, {0, 0, 0}, {0, 0, 0}, /* nil, (unused), false, true */
    {1, 0, 0}, {2, 0, 0}, {4, 0, 0},            /* bin 8, 16, 32 */
    {1, 1, 0}, {2, 1, 0}, {4, 1, 0},            /* ext 8, 16, 32 (+ type byte) */
    {0, 4, 0}, {0, 8, 0},                       /* float 32, 64 */
    {0, 1, 0}, {0, 2, 0}, {0, 4, 0}, {0, 8, 0}, /* uint 8..64 */
    {0, 1, 0}, {0, 2, 0}, {0, 4, 0}, {0, 8, 0}, /* int 8..64 */
    {0, 2, 0}, {0, 3, 0}, {0, 5, 0}, {0, 9, 0}, {0, 17, 0}, /* fixext 1..16 (+ type) */
    {1, 0, 0}, {2, 0, 0}, {4, 0, 0},            /* str 8, 16, 32 */
    {2, 0, 1}, {4, 0, 1},                       /* array 16, 32 */
    {2, 0, 2}, {4, 0, 2},                       /* map 16, 32 */
};
// clang-format on

static bool head_of(uint8_t b, head_t *h)
{
    memset(h, 0, sizeof *h);
    if (b <= 0x7f || b >= 0xe0)
        return true; /* fixint */
    if (b <= 0x9f) { /* fixmap, fixarray */
        h->per = b <= 0x8f ? 2 : 1;
        h->count = b & 0x0f;
        return true;
    }
    if (b <= 0xbf) {
        h->skip = b & 0x1f; /* fixstr */
        return true;
    }
    const uint8_t *t = heads[b - 0xc0];
    if (t[0] == 9)
        return false;
    h->lenlen = t[0];
    h->skip = t[1];
    h->per = t[2];
    return true;
}

/* Walks one MessagePack object at p[0..len) without building it. Returns 0
 * when it fills the buffer exactly; RW_ETOOBIG for a claim over the caps,
 * RW_ETRUNC for one past the end, RW_EPROTO for an invalid byte or bytes
 * after the object. */
static int scan(const uint8_t *p, size_t len, char *why)
{
    size_t pos = 0, pending = 1, items = 1;
    while (pending > 0) {
        if (pos >= len)
            return msg__fail(why, RW_ETRUNC, NULL, NULL, "ends inside an object at byte %zu", pos);
        head_t h;
        uint8_t b = p[pos++];
        pending--;
        if (!head_of(b, &h))
            return msg__fail(why, RW_EPROTO, NULL, NULL, "byte 0x%02x at %zu", b, pos - 1);
        if (h.lenlen > len - pos)
            return msg__fail(why, RW_ETRUNC, NULL, NULL, "ends inside a header at %zu", pos);
        uint64_t n = be(p + pos, h.lenlen);
        pos += h.lenlen;
        if (h.per == 0) { /* a scalar, or n bytes of str/bin/ext after skip */
            uint64_t need = h.skip + (h.lenlen ? n : 0);
            if (need > MSG_MAX_BYTES)
                return msg__fail(why, RW_ETOOBIG, NULL, NULL, "claims %llu bytes",
                                 (unsigned long long)need);
            if (need > len - pos)
                return msg__fail(why, RW_ETRUNC, NULL, NULL, "claims %llu bytes, %zu left",
                                 (unsigned long long)need, len - pos);
            pos += need;
            continue;
        }
        uint64_t elems = (h.lenlen ? n : h.count) * h.per; /* n < 2^32: no overflow */
        if (elems > MSG_MAX_ITEMS || items + elems > MSG_MAX_ITEMS)
            return msg__fail(why, RW_ETOOBIG, NULL, NULL, "claims %llu more items",
                             (unsigned long long)elems);
        if (pending + elems > len - pos) /* every item takes at least a byte */
            return msg__fail(why, RW_ETRUNC, NULL, NULL, "claims %llu items, %zu bytes left",
                             (unsigned long long)elems, len - pos);
        pending += elems;
        items += elems;
    }
    if (pos != len)
        return msg__fail(why, RW_EPROTO, NULL, NULL, "%zu bytes after the message", len - pos);
    return 0;
}

static const char *type_name(msgpack_object_type t)
{
    switch (t) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return "unsigned integer";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "negative integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "float";
    case MSGPACK_OBJECT_STR:
        return "str";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_ARRAY:
        return "array";
    case MSGPACK_OBJECT_MAP:
        return "map";
    default:
        return "ext";
    }
}

/* What one field's decoding needs: where it is, and the arena. */
typedef struct field_ctx {
    const msg_desc_t *d;
    const msg_field_t *f;
    msgpack_zone *z;
    char *why;
} field_ctx_t;

static int wrong_type(const field_ctx_t *c, const char *want, const msgpack_object *o)
{
    return msg__fail(c->why, RW_EFIELD, c->d, c->f, "expected %s, got %s", want,
                     type_name(o->type));
}

static void *zalloc(const field_ctx_t *c, size_t n)
{
    void *p = msgpack_zone_malloc(c->z, n ? n : 1);
    if (!p)
        msg__fail(c->why, RW_ENOMEM, c->d, c->f, "no memory for %zu bytes", n);
    return p;
}

/* A NUL-terminated copy of a str object of at most max bytes. */
static int get_str(const field_ctx_t *c, const msgpack_object *o, size_t max, const char **out)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return wrong_type(c, "str", o);
    size_t n = o->via.str.size;
    if (n > max)
        return msg__fail(c->why, RW_ETOOBIG, c->d, c->f, "string of %zu bytes, at most %zu", n,
                         max);
    if (memchr(o->via.str.ptr, '\0', n))
        return msg__fail(c->why, RW_EFIELD, c->d, c->f, "string holds a NUL byte");
    char *s = zalloc(c, n + 1);
    if (!s)
        return RW_ENOMEM;
    memcpy(s, o->via.str.ptr, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

static int get_u64(const field_ctx_t *c, const msgpack_object *o, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return wrong_type(c, "unsigned integer", o);
    *out = o->via.u64;
    return 0;
}

/* Floats, and integers a double holds exactly. */
static int get_f64(const field_ctx_t *c, const msgpack_object *o, double *out)
{
    const double exact = 9007199254740992.0; /* 2^53 */
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        *out = o->via.f64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && (double)o->via.u64 <= exact)
        *out = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && (double)o->via.i64 >= -exact)
        *out = (double)o->via.i64;
    else
        return wrong_type(c, "number", o);
    return 0;
}

/* An array (or map, per 2) of at most f->n_max items, and zone room for
 * its items of size each. */
static int get_array(const field_ctx_t *c, const msgpack_object *o, bool map, size_t size,
                     size_t *n, void **v)
{
    if (o->type != (map ? MSGPACK_OBJECT_MAP : MSGPACK_OBJECT_ARRAY))
        return wrong_type(c, map ? "map" : "array", o);
    *n = map ? o->via.map.size : o->via.array.size;
    if (*n > c->f->n_max)
        return msg__fail(c->why, RW_ETOOBIG, c->d, c->f, "%zu items, at most %zu", *n, c->f->n_max);
    *v = zalloc(c, *n * size);
    return *v ? 0 : RW_ENOMEM;
}

static int get_tensor(const field_ctx_t *c, const msgpack_object *o, msg_tensor_t *t)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2)
        return msg__fail(c->why, RW_EFIELD, c->d, c->f, "a tensor is [name, [dims]]");
    const msgpack_object *dims = &o->via.array.ptr[1];
    int rc = get_str(c, &o->via.array.ptr[0], c->f->len_max, &t->name);
    if (rc < 0)
        return rc;
    if (dims->type != MSGPACK_OBJECT_ARRAY)
        return wrong_type(c, "array of dimensions", dims);
    if (dims->via.array.size < 1 || dims->via.array.size > MSG_RANK_MAX)
        return msg__fail(c->why, RW_EFIELD, c->d, c->f, "tensor %s has rank %u, not 1..%d", t->name,
                         (unsigned)dims->via.array.size, MSG_RANK_MAX);
    t->rank = dims->via.array.size;
    for (uint32_t k = 0; rc == 0 && k < t->rank; k++)
        rc = get_u64(c, &dims->via.array.ptr[k], &t->dim[k]);
    return rc;
}

static int get_list(const field_ctx_t *c, const msgpack_object *o, void *p)
{
    const msg_field_t *f = c->f;
    size_t n = 0;
    void *v = NULL;
    bool map = f->type == MSG_FT_METRICS;
    static const size_t item[] = {
        [MSG_FT_NAMES] = sizeof(char *),        [MSG_FT_STRS] = sizeof(char *),
        [MSG_FT_U64S] = sizeof(uint64_t),       [MSG_FT_F64S] = sizeof(double),
        [MSG_FT_F32S] = sizeof(float),          [MSG_FT_METRICS] = sizeof(msg_metric_t),
        [MSG_FT_TENSORS] = sizeof(msg_tensor_t)};
    int rc = get_array(c, o, map, item[f->type], &n, &v);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const msgpack_object *e = map ? NULL : &o->via.array.ptr[i];
        double x = 0.0;
        switch (f->type) {
        case MSG_FT_NAMES:
        case MSG_FT_STRS:
            rc = get_str(c, e, f->len_max, &((const char **)v)[i]);
            break;
        case MSG_FT_U64S:
            rc = get_u64(c, e, &((uint64_t *)v)[i]);
            break;
        case MSG_FT_F64S:
            rc = get_f64(c, e, &((double *)v)[i]);
            break;
        case MSG_FT_F32S:
            rc = get_f64(c, e, &x);
            if (rc == 0 && !(fabs(x) <= FLT_MAX))
                rc = msg__fail(c->why, RW_EFIELD, c->d, f, "%g is not a finite float", x);
            if (rc == 0)
                ((float *)v)[i] = (float)x;
            break;
        case MSG_FT_METRICS: {
            msg_metric_t *mt = &((msg_metric_t *)v)[i];
            rc = get_str(c, &o->via.map.ptr[i].key, f->len_max, &mt->name);
            rc = rc ? rc : get_f64(c, &o->via.map.ptr[i].val, &mt->value);
            break;
        }
        default:
            rc = get_tensor(c, e, &((msg_tensor_t *)v)[i]);
            break;
        }
    }
    if (rc < 0)
        return rc;
    switch (f->type) {
    case MSG_FT_NAMES:
    case MSG_FT_STRS:
        *(msg_strs_t *)p = (msg_strs_t){v, n};
        break;
    case MSG_FT_U64S:
        *(msg_u64s_t *)p = (msg_u64s_t){v, n};
        break;
    case MSG_FT_F64S:
        *(msg_f64s_t *)p = (msg_f64s_t){v, n};
        break;
    case MSG_FT_F32S:
        *(msg_f32s_t *)p = (msg_f32s_t){v, n};
        break;
    case MSG_FT_METRICS:
        *(msg_metrics_t *)p = (msg_metrics_t){v, n};
        break;
    default:
        *(msg_tensors_t *)p = (msg_tensors_t){v, n};
        break;
    }
    return 0;
}

static int get_enum(const field_ctx_t *c, const msgpack_object *o, void *p)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return wrong_type(c, "str", o);
    for (size_t i = 1; i < c->f->n_names; i++) {
        const char *name = c->f->names[i];
        if (strlen(name) == o->via.str.size && memcmp(name, o->via.str.ptr, o->via.str.size) == 0) {
            int v = (int)i;
            memcpy(p, &v, sizeof v);
            return 0;
        }
    }
    return msg__fail(c->why, RW_EFIELD, c->d, c->f, "unknown kind '%.*s'",
                     (int)(o->via.str.size < 32 ? o->via.str.size : 32), o->via.str.ptr);
}

static int get_field(const field_ctx_t *c, const msgpack_object *o, char *body)
{
    const msg_field_t *f = c->f;
    void *p = body + f->offset;
    if (f->has_offset)
        *(bool *)(body + f->has_offset) = true;
    switch (f->type) {
    case MSG_FT_U64:
        return get_u64(c, o, p);
    case MSG_FT_I64:
        if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
            (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)) {
            *(int64_t *)p = o->via.i64;
            return 0;
        }
        return wrong_type(c, "signed 64-bit integer", o);
    case MSG_FT_F64:
        return get_f64(c, o, p);
    case MSG_FT_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return wrong_type(c, "bool", o);
        *(bool *)p = o->via.boolean;
        return 0;
    case MSG_FT_ENUM:
        return get_enum(c, o, p);
    case MSG_FT_NAME:
    case MSG_FT_STR:
    case MSG_FT_JSON:
        return get_str(c, o, f->len_max, p);
    case MSG_FT_BIN:
        if (o->type != MSGPACK_OBJECT_BIN)
            return wrong_type(c, "bin", o);
        if (o->via.bin.size > f->len_max)
            return msg__fail(c->why, RW_ETOOBIG, c->d, f, "%u bytes, at most %zu",
                             (unsigned)o->via.bin.size, f->len_max);
        *(msg_bin_t *)p = (msg_bin_t){o->via.bin.ptr, o->via.bin.size};
        return 0;
    default:
        return get_list(c, o, p);
    }
}

static const msg_field_t *find_field(const msg_desc_t *d, const msgpack_object *key)
{
    for (size_t i = 0; i < d->n_fields; i++) {
        const char *name = d->fields[i].name;
        if (strlen(name) == key->via.str.size &&
            memcmp(name, key->via.str.ptr, key->via.str.size) == 0)
            return &d->fields[i];
    }
    return NULL;
}

/* The field map of a message of type d into m's struct. */
static int get_fields(msg_t *m, const msg_desc_t *d, const msgpack_object *map, char *why)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return msg__fail(why, RW_EPROTO, d, NULL, "fields are a %s, not a map",
                         type_name(map->type));
    field_ctx_t c = {d, NULL, m->hold_->up.zone, why};
    uint64_t seen = 0; /* a bit per field; no message has 64 */
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *key = &map->via.map.ptr[i].key;
        if (key->type != MSGPACK_OBJECT_STR)
            return msg__fail(why, RW_EFIELD, d, NULL, "a field name is a %s", type_name(key->type));
        c.f = find_field(d, key);
        if (!c.f)
            return msg__fail(why, RW_EFIELD, d, NULL, "unknown field '%.*s'",
                             (int)(key->via.str.size < 32 ? key->via.str.size : 32),
                             key->via.str.ptr);
        uint64_t bit = 1ull << (c.f - d->fields);
        if (seen & bit)
            return msg__fail(why, RW_EFIELD, d, c.f, "given twice");
        seen |= bit;
        int rc = get_field(&c, &map->via.map.ptr[i].val, msg__body(m));
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < d->n_fields; i++)
        if (d->fields[i].required && !(seen & (1ull << i)))
            return msg__fail(why, RW_EFIELD, d, &d->fields[i], "missing");
    return msg_check(m, why);
}

/* [version, type, fields] of the tree in m->hold_. */
static int get_envelope(msg_t *m, char *why)
{
    const msgpack_object *root = &m->hold_->up.data;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 1)
        return msg__fail(why, RW_EPROTO, NULL, NULL, "not a [version, type, fields] envelope");
    const msgpack_object *e = root->via.array.ptr;
    if (e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return msg__fail(why, RW_EPROTO, NULL, NULL, "the version is a %s", type_name(e[0].type));
    m->version = e[0].via.u64;
    if (root->via.array.size >= 2 && e[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        e[1].via.u64 < MSG_CODE_LIMIT)
        m->type = (msg_type_t)e[1].via.u64;
    if (m->version != PROTO_VERSION)
        return msg__fail(why, RW_EVERSION, NULL, NULL, "protocol version %llu, this peer speaks %d",
                         (unsigned long long)m->version, PROTO_VERSION);
    if (root->via.array.size != 3 || e[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return msg__fail(why, RW_EPROTO, NULL, NULL, "not a [version, type, fields] envelope");
    const msg_desc_t *d = msg_desc(m->type);
    if (e[1].via.u64 >= MSG_CODE_LIMIT || !d) {
        m->type = e[1].via.u64 <= INT32_MAX ? (msg_type_t)e[1].via.u64 : MSG_NONE;
        return msg__fail(why, RW_EMSGTYPE, NULL, NULL, "unknown type %llu",
                         (unsigned long long)e[1].via.u64);
    }
    return get_fields(m, d, &e[2], why);
}

int msg_decode(msg_t *m, const void *buf, size_t len, char *why)
{
    int rc;
    msg_type_t type;
    uint64_t version;
    msg_init(m, MSG_NONE);
    m->version = 0;
    if (why)
        why[0] = '\0';
    if (len > MSG_MAX_BYTES)
        return msg__fail(why, RW_ETOOBIG, NULL, NULL, "%zu bytes, at most %zu", len, MSG_MAX_BYTES);
    rc = scan(buf, len, why);
    if (rc < 0)
        return rc;
    msg_hold(m, NULL, NULL);
    if (msgpack_unpack_next(&m->hold_->up, buf, len, NULL) != MSGPACK_UNPACK_SUCCESS) {
        rc = msg__fail(why, RW_EPROTO, NULL, NULL, "not MessagePack (nested too deep?)");
        goto fail_unpack;
    }
    rc = get_envelope(m, why);
    if (rc < 0)
        goto fail_unpack;
    return 0;

fail_unpack:
    type = m->type;
    version = m->version;
    msg_fini(m);
    m->type = type;
    m->version = version;
    return rc;
}
