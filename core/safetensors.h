/* safetensors.h — reading and writing the safetensors format (F32 only).
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON, then
 * the tensors' raw little-endian bytes. The JSON maps each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
 * data section) and may hold "__metadata__", a string-to-string map.
 *
 * The reader trusts nothing: the header length must fit the file and stay
 * under RW_ST_MAX_HEADER, the JSON must be an object without duplicate
 * keys, every dtype must be F32, every shape's byte size must equal its
 * offsets' span, and the tensors must tile the data section exactly — no
 * overlap, no hole, nothing past its end. Files are written to a temporary
 * name and renamed, so a reader never sees half a checkpoint.
 */
#ifndef RW_SAFETENSORS_H
#define RW_SAFETENSORS_H

#include <stddef.h>

#define RW_ST_MAX_HEADER ((size_t)100 << 20) /* as the reference implementation */
#define RW_ST_MAX_DIMS   8

typedef struct rw_st_tensor {
    const char *name; /* owned by the file object */
    int ndim;
    size_t shape[RW_ST_MAX_DIMS];
    size_t n;          /* elements */
    const float *data; /* n floats in host order, owned by the file object */
} rw_st_tensor_t;

typedef struct rw_st rw_st_t;

/* Reads and validates path. Returns 0, a negated errno, RW_ETRUNC (shorter
 * than its header says), RW_ETOOBIG (header too long), RW_EPARSE (header
 * not JSON) or RW_EFORMAT (anything else malformed or not F32). */
int rw_st_read(rw_st_t **st_p, const char *path);
/* Only the header, checked against the file's size: tensors' names,
 * shapes and places and the metadata, every tensor's data NULL. For a look
 * at a file that may be large, on a thread that must not wait long. */
int rw_st_read_header(rw_st_t **st_p, const char *path);
/* The same from n bytes in memory (copied). */
int rw_st_parse(rw_st_t **st_p, const void *buf, size_t n);
/* Accepts NULL; nulls *st_p. */
void rw_st_destroy(rw_st_t **st_p);
size_t rw_st_count(const rw_st_t *st);
/* Tensor i, in data-offset order. */
const rw_st_tensor_t *rw_st_at(const rw_st_t *st, size_t i);
/* The tensor called name, or NULL. */
const rw_st_tensor_t *rw_st_get(const rw_st_t *st, const char *name);
/* The metadata value of key (owned by the file object), or NULL. */
const char *rw_st_meta(const rw_st_t *st, const char *key);

/* A tensor to write: data (borrowed) holds the product of shape floats. */
typedef struct rw_st_entry {
    const char *name;
    int ndim;
    size_t shape[RW_ST_MAX_DIMS];
    const float *data;
} rw_st_entry_t;

typedef struct rw_st_kv {
    const char *key, *value;
} rw_st_kv_t;

/* Writes tensors t[0..n) in that order with metadata meta[0..n_meta) to
 * path, whole or not at all (afile.h). Returns 0, RW_EINVAL (duplicate or
 * empty name, too many dims) or a negated errno. */
int rw_st_write(const char *path, const rw_st_entry_t *t, size_t n, const rw_st_kv_t *meta,
                size_t n_meta);

#endif
