/* test_safetensors.c — the writer's files read back, and the reader rejects
 * every kind of malformed file instead of trusting it. */
#include "err.h"
#include "safetensors.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support.h"

Test(safetensors, round_trip_with_metadata)
{
    char *dir = rwt_tmpdir();
    const char *path = rwt_path(dir, "t.safetensors");
    float a[6] = {1, 2, 3, 4, 5, 6}, b[1] = {-0.5f};
    rw_st_entry_t t[3] = {
        {"a", 2, {2, 3}, a},
        {"b", 0, {0}, b},
        {"empty", 1, {0}, NULL},
    };
    rw_st_kv_t kv[2] = {{"k", "v"}, {"json", "{\"x\": [1, 2]}"}};
    cr_assert_eq(rw_st_write(path, t, 3, kv, 2), 0);
    size_t n;
    char *raw = rwt_read_file(path, &n);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = hn << 8 | (unsigned char)raw[i];
    cr_assert_eq((8 + hn) % 8, 0, "data section not 8-byte aligned");
    cr_assert_eq(n, 8 + hn + 7 * 4);
    free(raw);
    rw_st_t *st;
    cr_assert_eq(rw_st_read(&st, path), 0);
    cr_assert_eq(rw_st_count(st), 3);
    const rw_st_tensor_t *ta = rw_st_get(st, "a"), *tb = rw_st_get(st, "b");
    cr_assert_eq(ta->ndim, 2);
    cr_assert_eq(ta->shape[1], 3);
    cr_assert_eq(memcmp(ta->data, a, sizeof a), 0);
    cr_assert_eq(tb->ndim, 0);
    cr_assert_eq(tb->n, 1);
    cr_assert_eq(tb->data[0], -0.5f);
    cr_assert_eq(rw_st_get(st, "empty")->n, 0);
    cr_assert_str_eq(rw_st_meta(st, "json"), "{\"x\": [1, 2]}");
    cr_assert_null(rw_st_meta(st, "nope"));
    rw_st_destroy(&st);
    /* the header alone: names, shapes and metadata, no data read */
    cr_assert_eq(rw_st_read_header(&st, path), 0);
    cr_assert_eq(rw_st_count(st), 3);
    cr_assert_eq(rw_st_get(st, "a")->shape[1], 3);
    cr_assert_null(rw_st_get(st, "a")->data);
    cr_assert_str_eq(rw_st_meta(st, "k"), "v");
    rw_st_destroy(&st);
    raw = rwt_read_file(path, &n); /* a file cut short is still found out */
    cr_assert_eq(rwt_write_file(rwt_path(dir, "cut"), raw, n - 4), 0);
    free(raw);
    cr_assert_lt(rw_st_read_header(&st, rwt_path(dir, "cut")), 0);
    cr_assert_null(st);
    rw_st_entry_t dup[2] = {{"a", 1, {1}, a}, {"a", 1, {1}, a}};
    cr_assert_eq(rw_st_write(path, dup, 2, NULL, 0), RW_EINVAL);
    rwt_rmdir(dir);
    free(dir);
}

/* A file of header h and data_len zero bytes of data. */
static int parse(const char *h, size_t data_len)
{
    size_t hn = strlen(h), n = 8 + hn + data_len;
    unsigned char *buf = calloc(1, n);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hn >> (8 * i));
    memcpy(buf + 8, h, hn);
    rw_st_t *st = NULL;
    int rc = rw_st_parse(&st, buf, n);
    cr_assert(rc < 0 ? st == NULL : st != NULL);
    rw_st_destroy(&st);
    free(buf);
    return rc;
}

Test(safetensors, reader_validates_everything)
{
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    cr_assert_eq(parse(ok, 8), 0);
    cr_assert_eq(parse(ok, 12), RW_EFORMAT, "trailing bytes nobody owns");
    cr_assert_eq(parse(ok, 4), RW_ETRUNC, "offsets past the end: the file was cut short");
    cr_assert_eq(parse("{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8),
                 RW_EFORMAT);
    cr_assert_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
                 RW_EFORMAT, "shape and offsets disagree");
    cr_assert_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8),
                 RW_EFORMAT);
    cr_assert_eq(
        parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,"
              "8]}}",
              8),
        RW_EFORMAT, "shape product overflows");
    cr_assert_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                       12),
                 RW_EFORMAT, "overlap");
    cr_assert_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
                 RW_EFORMAT, "hole");
    cr_assert_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8),
                 RW_EFORMAT, "reversed offsets");
    cr_assert_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), RW_EFORMAT);
    cr_assert_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                       8),
                 RW_EPARSE, "duplicate name");
    cr_assert_eq(parse("{\"__metadata__\":{\"k\":1}}", 0), RW_EFORMAT, "non-string metadata");
    cr_assert_eq(parse("{\"__metadata__\":{\"k\":\"v\"}}", 0), 0);
    cr_assert_eq(parse("{\"a\":", 0), RW_EPARSE);
    cr_assert_eq(parse("[]", 0), RW_EPARSE);
    unsigned char tiny[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    rw_st_t *st;
    cr_assert_eq(rw_st_parse(&st, tiny, 12), RW_ETOOBIG);
    tiny[7] = 0;
    tiny[0] = 100;
    tiny[1] = tiny[2] = tiny[3] = tiny[4] = tiny[5] = tiny[6] = 0;
    cr_assert_eq(rw_st_parse(&st, tiny, 12), RW_ETRUNC);
    cr_assert_eq(rw_st_parse(&st, tiny, 5), RW_ETRUNC);
}

Test(safetensors, reader_reports_missing_and_truncated_files, .timeout = 10)
{
    char *dir = rwt_tmpdir();
    rw_st_t *st;
    cr_assert_lt(rw_st_read(&st, rwt_path(dir, "none")), 0);
    const char *path = rwt_path(dir, "short");
    cr_assert_eq(rwt_write_file(path, "\x40\0\0\0\0\0\0\0{}", 10), 0);
    cr_assert_eq(rw_st_read(&st, path), RW_ETRUNC);
    cr_assert_null(st);
    cr_assert_eq(rwt_write_file(path, "\0\0\0", 3), 0); /* shorter than the length */
    cr_assert_eq(rw_st_read(&st, path), RW_ETRUNC);
    /* a device or pipe has no size to check the header's against: its size
     * 0 once made the data length wrap to 2^64 - 8 */
    cr_assert_eq(rw_st_read(&st, "/dev/zero"), RW_ENOTFILE);
    cr_assert_eq(rw_st_read_header(&st, "/dev/null"), RW_ENOTFILE);
    cr_assert_null(st);
    /* a FIFO with no writer: refused at once, where opening it blocked for
     * ever (the test's timeout catches a hang) */
    const char *fifo = rwt_path(dir, "fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(rw_st_read(&st, fifo), RW_ENOTFILE);
    rwt_rmdir(dir);
    free(dir);
}
