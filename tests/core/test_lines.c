/* test_lines.c — the plain/gzip line reader: numbering, limits, truncation. */
#include "err.h"
#include "lines.h"
#include "support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

TestSuite(lines, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

static void write_gz(const char *path, const char *data, size_t n)
{
    gzFile gz = gzopen(path, "wb");
    cr_assert_not_null(gz);
    cr_assert_eq(gzwrite(gz, data, (unsigned)n), (int)n);
    cr_assert_eq(gzclose(gz), Z_OK);
}

static rw_lines_t *open_ok(const char *path, size_t max)
{
    int err = 1;
    rw_lines_t *r = rw_lines_new(path, max, &err);
    cr_assert_not_null(r, "open %s: %s", path, rw_strerror(err));
    cr_assert_eq(err, 0);
    return r;
}

static void expect_line(rw_lines_t *r, const char *want, size_t lineno)
{
    const char *l = NULL;
    size_t n = 0;
    int rc = rw_lines_next(r, &l, &n);
    cr_assert_eq(rc, 1, "line %zu: rc %d (%s)", lineno, rc, rw_err_name(rc));
    cr_assert_eq(n, strlen(want));
    cr_assert_str_eq(l, want);
    cr_assert_eq(rw_lines_lineno(r), lineno);
}

static void expect_code(rw_lines_t *r, int code, size_t lineno)
{
    const char *l;
    size_t n;
    int rc = rw_lines_next(r, &l, &n);
    cr_assert_eq(rc, code, "want %s, got %d (%s)", rw_err_name(code), rc, rw_err_name(rc));
    cr_assert_eq(rw_lines_lineno(r), lineno, "at line %zu, want %zu", rw_lines_lineno(r), lineno);
}

Test(lines, numbers_plain_lines_and_keeps_a_last_line_without_newline)
{
    const char *p = rwt_path(rwt_dir, "a.txt");
    const char text[] = "first\n\nthird\r\nlast";
    cr_assert_eq(rwt_write_file(p, text, sizeof text - 1), 0);
    rw_lines_t *r = open_ok(p, 0);
    expect_line(r, "first", 1);
    expect_line(r, "", 2);
    expect_line(r, "third\r", 3);
    expect_line(r, "last", 4);
    expect_code(r, 0, 4);
    expect_code(r, 0, 4);
    rw_lines_destroy(&r);
    cr_assert_null(r);
    rw_lines_destroy(&r);
}

Test(lines, a_final_newline_adds_no_empty_line)
{
    const char *p = rwt_path(rwt_dir, "b.txt");
    cr_assert_eq(rwt_write_file(p, "x\ny\n", 4), 0);
    rw_lines_t *r = open_ok(p, 0);
    expect_line(r, "x", 1);
    expect_line(r, "y", 2);
    expect_code(r, 0, 2);
    rw_lines_destroy(&r);

    cr_assert_eq(rwt_write_file(p, "", 0), 0);
    r = open_ok(p, 0);
    expect_code(r, 0, 0);
    rw_lines_destroy(&r);
}

Test(lines, a_byte_order_mark_starting_the_file_is_dropped)
{
    const char *p = rwt_path(rwt_dir, "bom.txt");
    const char text[] = "\xEF\xBB\xBF{\"a\": 1}\n\xEF\xBB\xBFkept\n";
    cr_assert_eq(rwt_write_file(p, text, sizeof text - 1), 0);
    rw_lines_t *r = open_ok(p, 0);
    expect_line(r, "{\"a\": 1}", 1);
    expect_line(r, "\xEF\xBB\xBFkept", 2); /* inside the file it is text, for the caller */
    rw_lines_destroy(&r);
    write_gz(rwt_path(rwt_dir, "bom.gz"), text, sizeof text - 1);
    r = open_ok(rwt_path(rwt_dir, "bom.gz"), 0);
    expect_line(r, "{\"a\": 1}", 1);
    rw_lines_destroy(&r);
}

Test(lines, reads_gzip_transparently)
{
    const char *p = rwt_path(rwt_dir, "c.jsonl.gz");
    write_gz(p, "one\ntwo\nthree\n", 14);
    rw_lines_t *r = open_ok(p, 0);
    expect_line(r, "one", 1);
    expect_line(r, "two", 2);
    expect_line(r, "three", 3);
    expect_code(r, 0, 3);
    rw_lines_destroy(&r);
}

Test(lines, skips_a_line_over_the_limit_and_carries_on)
{
    const char *p = rwt_path(rwt_dir, "d.txt");
    const char text[] = "0123456789\n0123456789A\nok\n0123456789ABCDEF";
    cr_assert_eq(rwt_write_file(p, text, sizeof text - 1), 0);
    rw_lines_t *r = open_ok(p, 10);
    expect_line(r, "0123456789", 1); /* exactly the limit is fine */
    expect_code(r, RW_ETOOBIG, 2);
    expect_line(r, "ok", 3);
    expect_code(r, RW_ETOOBIG, 4); /* last line, no newline */
    expect_code(r, 0, 4);
    rw_lines_destroy(&r);
}

Test(lines, skips_long_lines_spanning_many_chunks_in_gzip)
{
    /* 3 MB lines, far past the 64 KiB read chunk, under a 1 MB limit */
    size_t big = (size_t)3 << 20;
    size_t n = 0;
    char *text = malloc(2 * big + 64);
    n += (size_t)sprintf(text + n, "head\n");
    memset(text + n, 'x', big);
    n += big;
    n += (size_t)sprintf(text + n, "\nmiddle\n");
    memset(text + n, 'y', big);
    n += big;
    n += (size_t)sprintf(text + n, "\ntail\n");
    const char *p = rwt_path(rwt_dir, "e.jsonl.gz");
    write_gz(p, text, n);
    free(text);

    rw_lines_t *r = open_ok(p, (size_t)1 << 20);
    expect_line(r, "head", 1);
    expect_code(r, RW_ETOOBIG, 2);
    expect_line(r, "middle", 3);
    expect_code(r, RW_ETOOBIG, 4);
    expect_line(r, "tail", 5);
    expect_code(r, 0, 5);
    rw_lines_destroy(&r);
}

Test(lines, long_lines_under_the_limit_come_back_whole)
{
    size_t big = (size_t)1 << 20;
    char *text = malloc(big + 8);
    memset(text, 'z', big);
    memcpy(text + big, "\nend\n", 5);
    const char *p = rwt_path(rwt_dir, "f.txt");
    cr_assert_eq(rwt_write_file(p, text, big + 5), 0);
    rw_lines_t *r = open_ok(p, 0);
    const char *l;
    size_t n;
    cr_assert_eq(rw_lines_next(r, &l, &n), 1);
    cr_assert_eq(n, big);
    cr_assert_eq(memcmp(l, text, big), 0);
    cr_assert_eq(l[n], '\0');
    expect_line(r, "end", 2);
    rw_lines_destroy(&r);
    free(text);
}

Test(lines, a_truncated_gzip_is_an_error_after_the_lines_before_it)
{
    /* 2,000 distinct lines compress poorly enough that half the file is
     * hundreds of lines in */
    size_t cap = 200000, n = 0;
    char *text = malloc(cap);
    for (int i = 1; i <= 2000; i++)
        n += (size_t)snprintf(text + n, cap - n, "line %d %u\n", i, (unsigned)i * 2654435761u);
    const char *p = rwt_path(rwt_dir, "g.jsonl.gz");
    write_gz(p, text, n);
    free(text);
    size_t len;
    char *gz = rwt_read_file(p, &len);
    cr_assert_eq(rwt_write_file(p, gz, len / 2), 0);
    free(gz);

    rw_lines_t *r = open_ok(p, 0);
    const char *l;
    size_t ln;
    int rc;
    size_t got = 0;
    char want[64];
    while ((rc = rw_lines_next(r, &l, &ln)) == 1) {
        got++;
        snprintf(want, sizeof want, "line %zu %u", got, (unsigned)got * 2654435761u);
        cr_assert_str_eq(l, want);
    }
    cr_assert_eq(rc, RW_ETRUNC, "got %d (%s)", rc, rw_err_name(rc));
    cr_assert(got > 100 && got < 2000, "kept %zu lines", got);
    cr_assert_eq(rw_lines_lineno(r), got + 1);
    cr_assert_str_eq(rw_lines_errmsg(r), "truncated gzip stream (unexpected end of file)");
    expect_code(r, RW_ETRUNC, got + 1); /* final */
    rw_lines_destroy(&r);
}

Test(lines, a_gzip_cut_just_before_its_trailer_is_truncated_too)
{
    const char *p = rwt_path(rwt_dir, "h.jsonl.gz");
    write_gz(p, "a\nb\n", 4);
    size_t len;
    char *gz = rwt_read_file(p, &len);
    cr_assert_eq(rwt_write_file(p, gz, len - 4), 0); /* drop the length field */
    free(gz);
    rw_lines_t *r = open_ok(p, 0);
    expect_line(r, "a", 1);
    expect_line(r, "b", 2);
    expect_code(r, RW_ETRUNC, 3);
    rw_lines_destroy(&r);
}

Test(lines, corrupt_gzip_data_is_an_error)
{
    const char *p = rwt_path(rwt_dir, "i.jsonl.gz");
    write_gz(p, "alpha\nbeta\n", 11);
    size_t len;
    unsigned char *gz = (unsigned char *)rwt_read_file(p, &len);
    gz[len - 8] ^= 0xff; /* the CRC */
    cr_assert_eq(rwt_write_file(p, gz, len), 0);
    free(gz);
    rw_lines_t *r = open_ok(p, 0);
    const char *l;
    size_t n;
    int rc;
    while ((rc = rw_lines_next(r, &l, &n)) == 1)
        ;
    cr_assert_eq(rc, RW_EIO, "got %s", rw_err_name(rc));
    cr_assert_str_eq(rw_lines_errmsg(r), "corrupt gzip data (incorrect data check)");
    rw_lines_destroy(&r);
}

/* Members one after another are one text; a member followed by bytes that
 * are not another (here one whose magic was damaged) is an error after the
 * lines before it, where gzread() ended quietly and lost the rest. */
Test(lines, gzip_members_follow_each_other_and_garbage_after_one_is_an_error)
{
    const char *p1 = rwt_path(rwt_dir, "a.gz"), *p2 = rwt_path(rwt_dir, "b.gz");
    write_gz(p1, "alpha\nbe", 8);
    write_gz(p2, "ta\ngamma\n", 9);
    size_t n1, n2;
    char *a = rwt_read_file(p1, &n1), *b = rwt_read_file(p2, &n2);
    char *both = malloc(n1 + n2);
    memcpy(both, a, n1);
    memcpy(both + n1, b, n2);
    const char *p = rwt_path(rwt_dir, "ab.gz");
    cr_assert_eq(rwt_write_file(p, both, n1 + n2), 0);
    rw_lines_t *r = open_ok(p, 0);
    expect_line(r, "alpha", 1);
    expect_line(r, "beta", 2);
    expect_line(r, "gamma", 3);
    const char *l;
    size_t n;
    cr_assert_eq(rw_lines_next(r, &l, &n), 0);
    rw_lines_destroy(&r);

    both[n1] = 'X'; /* the second member's magic */
    cr_assert_eq(rwt_write_file(p, both, n1 + n2), 0);
    r = open_ok(p, 0);
    expect_line(r, "alpha", 1);
    cr_assert_eq(rw_lines_next(r, &l, &n), RW_EIO);
    char want[128];
    snprintf(want, sizeof want, "corrupt gzip data (the bytes from %zu on are not gzip)", n1);
    cr_assert_str_eq(rw_lines_errmsg(r), want);
    rw_lines_destroy(&r);
    free(both);
    free(a);
    free(b);
}

Test(lines, missing_files_and_folders_are_errno_errors)
{
    int err = 0;
    cr_assert_null(rw_lines_new(rwt_path(rwt_dir, "nope.jsonl"), 0, &err));
    cr_assert_eq(err, -ENOENT);
    cr_assert_null(rw_lines_new(rwt_dir, 0, &err));
    cr_assert_eq(err, -EISDIR);
}
