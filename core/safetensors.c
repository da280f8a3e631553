/* safetensors.c — the validating safetensors reader and the writer; see
 * safetensors.h. */
#include "safetensors.h"

#include "afile.h"
#include "alloc.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rw_st {
    unsigned char *data; /* owned: the data section, malloc-aligned */
    size_t data_len;
    rw_st_tensor_t *t; /* owned, n of them; names owned */
    size_t n;
    char **keys, **vals; /* owned metadata */
    size_t n_meta;
};

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void swap4(void *p, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t0 = b[0], t1 = b[1];
        b[0] = b[3];
        b[1] = b[2];
        b[2] = t1;
        b[3] = t0;
    }
}

void rw_st_destroy(rw_st_t **st_p)
{
    rw_st_t *st = st_p ? *st_p : NULL;
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        free((char *)st->t[i].name);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->keys[i]);
        free(st->vals[i]);
    }
    free(st->t);
    free(st->keys);
    free(st->vals);
    free(st->data);
    free(st);
    *st_p = NULL;
}

static int read_meta(rw_st_t *st, json_t *obj)
{
    if (!json_is_object(obj))
        return RW_EFORMAT;
    size_t n = json_object_size(obj);
    st->keys = rw_new_array(char *, n ? n : 1);
    st->vals = rw_new_array(char *, n ? n : 1);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (!json_is_string(v))
            return RW_EFORMAT;
        st->keys[st->n_meta] = rw_strdup(k);
        st->vals[st->n_meta] = rw_strndup(json_string_value(v), json_string_length(v));
        st->n_meta++;
    }
    return 0;
}

/* A non-negative JSON integer that fits size_t, or -1. */
static long long nonneg(json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    return (long long)json_integer_value(v);
}

/* One tensor entry; its byte range goes to *begin, *end. */
static int read_entry(rw_st_t *st, const char *name, json_t *o, size_t *begin, size_t *end)
{
    rw_st_tensor_t *t = &st->t[st->n];
    json_t *dtype = json_object_get(o, "dtype"), *shape = json_object_get(o, "shape");
    json_t *offs = json_object_get(o, "data_offsets");
    if (!json_is_object(o) || !json_is_string(dtype) || strcmp(json_string_value(dtype), "F32") ||
        !json_is_array(shape) || json_array_size(shape) > RW_ST_MAX_DIMS || !json_is_array(offs) ||
        json_array_size(offs) != 2) {
        RW_ERROR("safetensors",
                 "tensor %.64s: not an F32 entry with a shape of at most %d dims "
                 "and two data_offsets",
                 name, RW_ST_MAX_DIMS);
        return RW_EFORMAT;
    }
    long long b = nonneg(json_array_get(offs, 0)), e = nonneg(json_array_get(offs, 1));
    if (b < 0 || e < b) {
        RW_ERROR("safetensors", "tensor %.64s: data_offsets are not a byte range", name);
        return RW_EFORMAT;
    }
    if ((unsigned long long)e > st->data_len) { /* the file stops before its data does */
        RW_ERROR("safetensors", "tensor %.64s: its bytes end at %lld, the data at %zu", name, e,
                 st->data_len);
        return RW_ETRUNC;
    }
    size_t n = 1, limit = st->data_len / 4;
    t->ndim = (int)json_array_size(shape);
    for (int i = 0; i < t->ndim; i++) {
        long long d = nonneg(json_array_get(shape, (size_t)i));
        if (d < 0 || (d > 0 && n > limit / (unsigned long long)d))
            return RW_EFORMAT; /* would not fit the file: also rules out overflow */
        t->shape[i] = (size_t)d;
        n *= (size_t)d;
    }
    if ((size_t)(e - b) != n * 4) {
        RW_ERROR("safetensors", "tensor %.64s: %lld bytes for %zu floats", name, e - b, n);
        return RW_EFORMAT;
    }
    t->name = rw_strdup(name);
    t->n = n;
    *begin = (size_t)b;
    *end = (size_t)e;
    st->n++;
    return 0;
}

typedef struct span {
    size_t begin, end, index;
} span_t;

static int by_begin(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* The tensors must tile [0, data_len) exactly; then they are put in offset
 * order and pointed at their data. */
static int tile(rw_st_t *st, span_t *spans)
{
    qsort(spans, st->n, sizeof *spans, by_begin);
    size_t at = 0;
    for (size_t i = 0; i < st->n; i++) {
        if (spans[i].begin != at)
            return RW_EFORMAT; /* a hole or an overlap */
        at = spans[i].end;
    }
    if (at != st->data_len)
        return RW_EFORMAT;
    rw_st_tensor_t *sorted = rw_new_array(rw_st_tensor_t, st->n ? st->n : 1);
    for (size_t i = 0; i < st->n; i++) {
        sorted[i] = st->t[spans[i].index];
        sorted[i].data = st->data ? (const float *)(st->data + spans[i].begin) : NULL;
    }
    free(st->t);
    st->t = sorted;
    return 0;
}

/* Validates the header hdr (hn bytes) against st->data (already read). */
static int build(rw_st_t *st, const char *hdr, size_t hn)
{
    json_error_t jerr;
    json_t *root = json_loadb(hdr, hn, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return RW_EPARSE;
    }
    size_t cap = json_object_size(root);
    st->t = rw_new_array(rw_st_tensor_t, cap ? cap : 1);
    span_t *spans = rw_new_array(span_t, cap ? cap : 1);
    int rc = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0) {
            rc = read_meta(st, val);
        } else {
            spans[st->n].index = st->n;
            rc = read_entry(st, key, val, &spans[st->n].begin, &spans[st->n].end);
        }
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = tile(st, spans);
    if (rc == 0 && st->data && !host_is_little_endian())
        swap4(st->data, st->data_len / 4);
    free(spans);
    json_decref(root);
    return rc;
}

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

int rw_st_parse(rw_st_t **st_p, const void *buf, size_t n)
{
    *st_p = NULL;
    const unsigned char *b = buf;
    if (n < 8)
        return RW_ETRUNC;
    uint64_t hn = le64(b);
    if (hn > RW_ST_MAX_HEADER)
        return RW_ETOOBIG;
    if (hn > n - 8)
        return RW_ETRUNC;
    rw_st_t *st = rw_new(rw_st_t);
    st->data_len = n - 8 - (size_t)hn;
    st->data = rw_malloc(st->data_len ? st->data_len : 1);
    memcpy(st->data, b + 8 + hn, st->data_len);
    int rc = build(st, (const char *)b + 8, (size_t)hn);
    if (rc < 0) {
        rw_st_destroy(&st);
        return rc;
    }
    *st_p = st;
    return 0;
}

/* Reads exactly n bytes; RW_ETRUNC on early end of file. */
static int read_all(FILE *f, void *p, size_t n)
{
    if (fread(p, 1, n, f) == n)
        return 0;
    return ferror(f) ? -EIO : RW_ETRUNC;
}

/* rw_st_read, or with data 0 rw_st_read_header. */
static int read_file(rw_st_t **st_p, const char *path, int data)
{
    *st_p = NULL;
    int rc;
    FILE *f = rw_fopen_regular(path, &rc); /* a pipe or device has no size to check against */
    if (!f)
        return rc;
    struct stat sb;
    unsigned char len8[8];
    char *hdr = NULL;
    rw_st_t *st = NULL;
    rc = fstat(fileno(f), &sb) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = read_all(f, len8, 8);
    uint64_t hn = rc == 0 ? le64(len8) : 0, size = (uint64_t)sb.st_size;
    if (rc == 0 && hn > RW_ST_MAX_HEADER)
        rc = RW_ETOOBIG;
    if (rc == 0 && (size < 8 || hn > size - 8))
        rc = RW_ETRUNC;
    if (rc < 0)
        goto done;
    hdr = rw_malloc(hn ? (size_t)hn : 1);
    st = rw_new(rw_st_t);
    st->data_len = (size_t)(size - 8 - hn);
    if (data)
        st->data = rw_malloc(st->data_len ? st->data_len : 1);
    rc = read_all(f, hdr, (size_t)hn);
    if (rc == 0 && data)
        rc = read_all(f, st->data, st->data_len);
    if (rc == 0)
        rc = build(st, hdr, (size_t)hn);
done:
    free(hdr);
    fclose(f);
    if (rc < 0)
        rw_st_destroy(&st);
    *st_p = st;
    return rc;
}

int rw_st_read(rw_st_t **st_p, const char *path)
{
    return read_file(st_p, path, 1);
}

int rw_st_read_header(rw_st_t **st_p, const char *path)
{
    return read_file(st_p, path, 0);
}

size_t rw_st_count(const rw_st_t *st)
{
    return st->n;
}

const rw_st_tensor_t *rw_st_at(const rw_st_t *st, size_t i)
{
    return i < st->n ? &st->t[i] : NULL;
}

const rw_st_tensor_t *rw_st_get(const rw_st_t *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->t[i].name, name) == 0)
            return &st->t[i];
    return NULL;
}

const char *rw_st_meta(const rw_st_t *st, const char *key)
{
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->keys[i], key) == 0)
            return st->vals[i];
    return NULL;
}

static size_t entry_elems(const rw_st_entry_t *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n = rw_array_size(n, t->shape[i]);
    return n;
}

/* The header JSON, padded with spaces so the data starts 8-byte aligned. */
static char *header_json(const rw_st_entry_t *t, size_t n, const rw_st_kv_t *meta, size_t n_meta,
                         size_t *len)
{
    json_t *root = json_object();
    if (n_meta) {
        json_t *m = json_object();
        for (size_t i = 0; i < n_meta; i++)
            json_object_set_new(m, meta[i].key, json_string(meta[i].value));
        json_object_set_new(root, "__metadata__", m);
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t[i].shape[d]));
        size_t bytes = rw_array_size(entry_elems(&t[i]), 4);
        json_object_set_new(root, t[i].name,
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + bytes)));
        off += bytes;
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        abort(); /* jansson fails only when out of memory */
    size_t k = strlen(s), padded = (k + 7) / 8 * 8;
    char *out = rw_malloc(padded + 1);
    memcpy(out, s, k);
    memset(out + k, ' ', padded - k);
    out[padded] = '\0';
    free(s);
    *len = padded;
    return out;
}

/* The error of a short fwrite: what the system said (ENOSPC, EDQUOT...), for
 * errno is cleared before writing; EIO when it said nothing. */
static int short_write(void)
{
    return errno ? -errno : -EIO;
}

/* Writes n floats little-endian, through a bounce buffer on big-endian hosts. */
static int write_floats(FILE *f, const float *x, size_t n)
{
    if (n == 0)
        return 0;
    if (host_is_little_endian())
        return fwrite(x, 4, n, f) == n ? 0 : short_write();
    float buf[1024];
    for (size_t i = 0; i < n; i += 1024) {
        size_t k = n - i < 1024 ? n - i : 1024;
        memcpy(buf, x + i, k * 4);
        swap4(buf, k);
        if (fwrite(buf, 4, k, f) != k)
            return short_write();
    }
    return 0;
}

static int check_entries(const rw_st_entry_t *t, size_t n, const rw_st_kv_t *meta, size_t n_meta)
{
    for (size_t i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0] || strcmp(t[i].name, "__metadata__") == 0 ||
            t[i].ndim < 0 || t[i].ndim > RW_ST_MAX_DIMS)
            return RW_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(t[i].name, t[j].name) == 0)
                return RW_EINVAL;
    }
    for (size_t i = 0; i < n_meta; i++)
        if (!meta[i].key || !meta[i].value)
            return RW_EINVAL;
    return 0;
}

int rw_st_write(const char *path, const rw_st_entry_t *t, size_t n, const rw_st_kv_t *meta,
                size_t n_meta)
{
    int rc = check_entries(t, n, meta, n_meta);
    if (rc < 0)
        return rc;
    size_t hlen;
    char *hdr = header_json(t, n, meta, n_meta, &hlen);
    rw_afile_t af;
    if ((rc = rw_afile_open(&af, path)) < 0) {
        free(hdr);
        return rc;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    errno = 0;
    rc = fwrite(len8, 1, 8, af.f) == 8 && fwrite(hdr, 1, hlen, af.f) == hlen ? 0 : short_write();
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = write_floats(af.f, t[i].data, entry_elems(&t[i]));
    if (rc == 0)
        rc = rw_afile_commit(&af);
    else
        rw_afile_abort(&af);
    free(hdr);
    return rc;
}
