/* lines.c — the line reader of lines.h.
 *
 * Bytes come from the file (or from zlib's inflate over it, for gzip) in
 * chunks into one buffer that holds the line being assembled; a line is
 * handed out in place, with its '\n' replaced by a NUL. The buffer never
 * grows much past the line limit: once a partial line exceeds it, the rest
 * of that line is read and dropped chunk by chunk.
 *
 * inflate is driven here rather than through gzread(), which ends quietly
 * where a gzip member is followed by bytes that are not another member (a
 * damaged second member loses the rest of the file without a word): here
 * every member must end cleanly and be followed by another or by the end
 * of the file.
 */
#include "lines.h"

#include "alloc.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define LINES_CHUNK  ((size_t)64 << 10)
#define LINES_GZ_BUF (128u << 10)

struct rw_lines {
    int fd;
    int gzip;                    /* the file is gzip: its bytes go through inflate */
    z_stream z;                  /* gzip only */
    int member_ended;            /* a gzip member ended; another or the file's end follows */
    unsigned char *in;           /* gzip only: read from fd, not yet inflated (NULL else) */
    int in_eof;                  /* fd has nothing more */
    unsigned long long consumed; /* file bytes inflated so far (for messages) */
    size_t max_line;
    char *buf;  /* bytes [start, end) are read but not yet returned */
    size_t cap; /* allocated bytes of buf */
    size_t start, end;
    size_t scan; /* bytes after start already searched for '\n' */
    size_t lineno;
    int eof; /* the stream ended cleanly */
    int err; /* final error, 0 while reading */
    char msg[256];
};

/* read(2) without EINTR; returns bytes, 0 at the end, or -errno. */
static ssize_t read_some(int fd, void *buf, size_t n)
{
    for (;;) {
        ssize_t k = read(fd, buf, n);
        if (k >= 0 || errno != EINTR)
            return k < 0 ? -errno : k;
    }
}

rw_lines_t *rw_lines_new(const char *path, size_t max_line, int *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err)
            *err = -errno;
        return NULL;
    }
    return rw_lines_fd(fd, max_line, err);
}

rw_lines_t *rw_lines_fd(int fd, size_t max_line, int *err)
{
    int code = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        code = -errno;
        goto fail_stat;
    }
    if (S_ISDIR(st.st_mode)) {
        code = -EISDIR;
        goto fail_stat;
    }
    rw_lines_t *r = rw_new(rw_lines_t);
    r->fd = fd;
    r->max_line = max_line ? max_line : RW_LINES_DEFAULT_MAX;
    /* the first bytes tell gzip (1f 8b) from plain text */
    unsigned char magic[2];
    ssize_t k = read_some(fd, magic, 2);
    if (k == 1 && (k = read_some(fd, magic + 1, 1)) >= 0)
        k += 1;
    if (k < 0) {
        code = (int)k;
        goto fail_read;
    }
    r->gzip = k == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (r->gzip) {
        r->in = rw_malloc(LINES_GZ_BUF);
        memcpy(r->in, magic, 2);
        r->z.next_in = r->in;
        r->z.avail_in = (uInt)k;
        if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK) {
            code = RW_ENOMEM;
            goto fail_read;
        }
    } else { /* plain: the bytes read are the first of the text */
        rw_grow(&r->buf, &r->cap, LINES_CHUNK + 1);
        memcpy(r->buf, magic, (size_t)k);
        r->end = (size_t)k;
        r->in_eof = k < 2;
    }
    if (err)
        *err = 0;
    return r;

fail_read:
    free(r->in);
    free(r->buf);
    free(r);
fail_stat:
    close(fd);
    if (err)
        *err = code;
    return NULL;
}

void rw_lines_destroy(rw_lines_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rw_lines_t *r = *self_p;
    if (r->gzip)
        inflateEnd(&r->z);
    close(r->fd);
    free(r->in);
    free(r->buf);
    free(r);
    *self_p = NULL;
}

size_t rw_lines_lineno(const rw_lines_t *r)
{
    return r->lineno;
}

const char *rw_lines_errmsg(const rw_lines_t *r)
{
    return r->msg;
}

/* Records a final error on the line being read; returns code. */
static int lines_fail(rw_lines_t *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int lines_fail(rw_lines_t *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->lineno++;
    r->err = code;
    return code;
}

/* More file bytes after the unread ones in r->in; sets in_eof at the end.
 * Returns 0 or a final error. */
static int refill_in(rw_lines_t *r)
{
    if (r->z.avail_in > 0 && r->z.next_in != r->in)
        memmove(r->in, r->z.next_in, r->z.avail_in);
    r->z.next_in = r->in;
    ssize_t k = read_some(r->fd, r->in + r->z.avail_in, LINES_GZ_BUF - r->z.avail_in);
    if (k < 0)
        return lines_fail(r, (int)k, "read error: %s", strerror((int)-k));
    r->z.avail_in += (uInt)k;
    r->in_eof = k == 0;
    return 0;
}

/* Up to n bytes of the gzip file's text at dst. Returns how many (> 0), 0
 * at a clean end, or a final error. */
static int inflate_some(rw_lines_t *r, char *dst, size_t n)
{
    z_stream *z = &r->z;
    z->next_out = (unsigned char *)dst;
    z->avail_out = (uInt)n;
    while (z->avail_out == n) {
        if (z->avail_in < 2 && !r->in_eof) { /* 2: the next member's magic */
            int rc = refill_in(r);
            if (rc < 0)
                return rc;
            continue;
        }
        if (r->member_ended) {
            if (z->avail_in == 0)
                return 0; /* the end of the file, after a whole member */
            if (z->avail_in < 2 || z->next_in[0] != 0x1f || z->next_in[1] != 0x8b)
                return lines_fail(r, RW_EIO,
                                  "corrupt gzip data (the bytes from %llu on are not gzip)",
                                  r->consumed);
            inflateReset(z);
            r->member_ended = 0;
        }
        uInt before = z->avail_in;
        int zr = inflate(z, Z_NO_FLUSH);
        r->consumed += before - z->avail_in;
        if (zr == Z_STREAM_END) {
            r->member_ended = 1;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            return lines_fail(r, RW_EIO, "corrupt gzip data (%s)", z->msg ? z->msg : "?");
        } else if (z->avail_in == 0 && z->avail_out == n) { /* it wants more */
            if (r->in_eof)
                return lines_fail(r, RW_ETRUNC, "truncated gzip stream (unexpected end of file)");
            int rc = refill_in(r);
            if (rc < 0)
                return rc;
        }
    }
    return (int)(n - z->avail_out);
}

/* Appends the next chunk after the unread bytes. Returns 1 when bytes came,
 * 0 at a clean end of the stream, or a final error. */
static int lines_fill(rw_lines_t *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    /* + 1 keeps room for the NUL after a last line without '\n' */
    rw_grow(&r->buf, &r->cap, r->end + LINES_CHUNK + 1);
    int n;
    if (r->gzip) {
        n = inflate_some(r, r->buf + r->end, LINES_CHUNK);
    } else if (r->in_eof) {
        n = 0;
    } else {
        ssize_t k = read_some(r->fd, r->buf + r->end, LINES_CHUNK);
        if (k < 0)
            return lines_fail(r, (int)k, "read error: %s", strerror((int)-k));
        n = (int)k;
        r->in_eof = k == 0;
    }
    if (n < 0)
        return n;
    if (n > 0) {
        r->end += (size_t)n;
        return 1;
    }
    r->eof = 1;
    return 0;
}

/* Drops bytes through the next '\n' (or the end of the stream). Returns 0
 * or a final error. */
static int lines_skip(rw_lines_t *r)
{
    for (;;) {
        char *base = r->buf + r->start;
        char *nl = memchr(base, '\n', r->end - r->start);
        if (nl) {
            r->start += (size_t)(nl - base) + 1;
            r->scan = 0;
            return 0;
        }
        r->start = r->end = 0;
        int rc = lines_fill(r);
        if (rc <= 0)
            return rc;
    }
}

int rw_lines_next(rw_lines_t *r, const char **line, size_t *len)
{
    if (r->err)
        return r->err;
    for (;;) {
        char *base = r->buf + r->start;
        size_t have = r->end - r->start;
        char *nl = have > r->scan ? memchr(base + r->scan, '\n', have - r->scan) : NULL;
        if (nl || (r->eof && have > 0)) {
            size_t n = nl ? (size_t)(nl - base) : have;
            r->start += n + (nl ? 1 : 0);
            r->scan = 0;
            r->lineno++;
            if (n > r->max_line)
                return RW_ETOOBIG;
            base[n] = '\0';
            if (r->lineno == 1 && n >= 3 && memcmp(base, "\xEF\xBB\xBF", 3) == 0)
                base += 3, n -= 3; /* a byte-order mark, as some editors write */
            *line = base;
            *len = n;
            return 1;
        }
        if (r->eof)
            return 0;
        if (have > r->max_line) {
            int rc = lines_skip(r);
            if (rc < 0)
                return rc;
            r->lineno++;
            return RW_ETOOBIG;
        }
        r->scan = have;
        int rc = lines_fill(r);
        if (rc < 0)
            return rc;
    }
}
