/* msg_pack.c — a msg_t into its MessagePack envelope, walking the table.
 *
 * Encoding runs twice over the message: once with a writer that only counts
 * bytes, then once into a buffer of exactly that size from the caller's
 * allocator. So wire_send can encode straight into a ZeroMQ frame and a
 * megabyte chunk is copied once, from the caller's memory into the frame.
 */
#include "msg_int.h"

#include "err.h"

#include <string.h>

/* Writers for msgpack_packer: one counts, one fills a sized buffer. */
static int count_write(void *data, const char *buf, size_t len)
{
    (void)buf;
    *(size_t *)data += len;
    return 0;
}

typedef struct pack_buf {
    char *p;
    size_t left;
} pack_buf_t;

static int buf_write(void *data, const char *buf, size_t len)
{
    pack_buf_t *b = data;
    if (len > b->left)
        return -1;
    if (len) /* an empty bin comes with a NULL pointer */
        memcpy(b->p, buf, len);
    b->p += len;
    b->left -= len;
    return 0;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str_with_body(pk, s, n);
}

static int pack_list(msgpack_packer *pk, const msg_field_t *f, const void *p)
{
    int rc = 0;
    switch (f->type) {
    case MSG_FT_NAMES:
    case MSG_FT_STRS: {
        const msg_strs_t *l = p;
        rc = msgpack_pack_array(pk, l->n);
        for (size_t i = 0; rc == 0 && i < l->n; i++)
            rc = pack_str(pk, l->v[i]);
        return rc;
    }
    case MSG_FT_U64S: {
        const msg_u64s_t *l = p;
        rc = msgpack_pack_array(pk, l->n);
        for (size_t i = 0; rc == 0 && i < l->n; i++)
            rc = msgpack_pack_uint64(pk, l->v[i]);
        return rc;
    }
    case MSG_FT_F64S: {
        const msg_f64s_t *l = p;
        rc = msgpack_pack_array(pk, l->n);
        for (size_t i = 0; rc == 0 && i < l->n; i++)
            rc = msgpack_pack_double(pk, l->v[i]);
        return rc;
    }
    case MSG_FT_F32S: {
        const msg_f32s_t *l = p;
        rc = msgpack_pack_array(pk, l->n);
        for (size_t i = 0; rc == 0 && i < l->n; i++)
            rc = msgpack_pack_float(pk, l->v[i]);
        return rc;
    }
    case MSG_FT_METRICS: {
        const msg_metrics_t *l = p;
        rc = msgpack_pack_map(pk, l->n);
        for (size_t i = 0; rc == 0 && i < l->n; i++) {
            rc = pack_str(pk, l->v[i].name);
            if (rc == 0)
                rc = msgpack_pack_double(pk, l->v[i].value);
        }
        return rc;
    }
    default: { /* MSG_FT_TENSORS: [[name, [dim...]]...] */
        const msg_tensors_t *l = p;
        rc = msgpack_pack_array(pk, l->n);
        for (size_t i = 0; rc == 0 && i < l->n; i++) {
            const msg_tensor_t *t = &l->v[i];
            rc = msgpack_pack_array(pk, 2);
            rc = rc ? rc : pack_str(pk, t->name);
            rc = rc ? rc : msgpack_pack_array(pk, t->rank);
            for (uint32_t k = 0; rc == 0 && k < t->rank; k++)
                rc = msgpack_pack_uint64(pk, t->dim[k]);
        }
        return rc;
    }
    }
}

static int pack_field(msgpack_packer *pk, const msg_field_t *f, const void *p)
{
    switch (f->type) {
    case MSG_FT_U64:
        return msgpack_pack_uint64(pk, *(const uint64_t *)p);
    case MSG_FT_I64:
        return msgpack_pack_int64(pk, *(const int64_t *)p);
    case MSG_FT_F64:
        return msgpack_pack_double(pk, *(const double *)p);
    case MSG_FT_BOOL:
        return *(const bool *)p ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case MSG_FT_ENUM: {
        int v;
        memcpy(&v, p, sizeof v);
        return pack_str(pk, f->names[v]);
    }
    case MSG_FT_NAME:
    case MSG_FT_STR:
    case MSG_FT_JSON:
        return pack_str(pk, *(const char *const *)p);
    case MSG_FT_BIN: {
        const msg_bin_t *b = p;
        return msgpack_pack_bin_with_body(pk, b->p, b->n);
    }
    default:
        return pack_list(pk, f, p);
    }
}

/* Writes the envelope of a checked message. Returns 0, or -1 if the
 * writer failed. */
static int pack_msg(msgpack_packer *pk, const msg_desc_t *d, const msg_t *m)
{
    const char *body = msg__cbody(m);
    size_t present = 0;
    for (size_t i = 0; i < d->n_fields; i++)
        present += msg__present(&d->fields[i], body);
    int rc = msgpack_pack_array(pk, 3);
    rc = rc ? rc : msgpack_pack_uint64(pk, PROTO_VERSION);
    rc = rc ? rc : msgpack_pack_uint64(pk, (uint64_t)d->type);
    rc = rc ? rc : msgpack_pack_map(pk, present);
    for (size_t i = 0; rc == 0 && i < d->n_fields; i++) {
        const msg_field_t *f = &d->fields[i];
        if (!msg__present(f, body))
            continue;
        rc = pack_str(pk, f->name);
        rc = rc ? rc : pack_field(pk, f, body + f->offset);
    }
    return rc;
}

int msg_encode_with(const msg_t *m, void *(*alloc)(void *ctx, size_t len), void *ctx, size_t *len,
                    char *why)
{
    int rc = msg_check(m, why);
    if (rc < 0)
        return rc;
    const msg_desc_t *d = msg_desc(m->type);
    size_t n = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &n, count_write);
    pack_msg(&pk, d, m);
    if (n > MSG_MAX_BYTES)
        return msg__fail(why, RW_ETOOBIG, d, NULL, "%zu bytes encoded, at most %zu", n,
                         MSG_MAX_BYTES);
    char *buf = alloc(ctx, n);
    if (!buf)
        return msg__fail(why, RW_ENOMEM, d, NULL, "no buffer for %zu bytes", n);
    pack_buf_t b = {buf, n};
    msgpack_packer_init(&pk, &b, buf_write);
    if (pack_msg(&pk, d, m) != 0 || b.left != 0)
        return msg__fail(why, RW_EINVAL, d, NULL, "message changed while it was encoded");
    *len = n;
    return 0;
}

typedef struct fixed_buf {
    void *p;
    size_t cap;
} fixed_buf_t;

static void *fixed_alloc(void *ctx, size_t len)
{
    fixed_buf_t *f = ctx;
    return len <= f->cap ? f->p : NULL;
}

int msg_encode(const msg_t *m, void *buf, size_t cap, size_t *len, char *why)
{
    fixed_buf_t f = {buf, cap};
    int rc = msg_encode_with(m, fixed_alloc, &f, len, why);
    if (rc == RW_ENOMEM)
        return msg__fail(why, RW_ETOOBIG, msg_desc(m->type), NULL, "does not fit in %zu bytes",
                         cap);
    return rc;
}
