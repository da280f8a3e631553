/* lines.c — the line reader of lines.h.
 *
 * Bytes come from gzread() in chunks into one buffer that holds the line
 * being assembled; a line is handed out in place, with its '\n' replaced by
 * a NUL. The buffer never grows much past the line limit: once a partial
 * line exceeds it, the rest of that line is read and dropped chunk by chunk.
 * zlib reports a gzip stream that stops early as a zero-byte read with
 * Z_BUF_ERROR in gzerror() (bytes decoded before the cut come back first),
 * so every zero-byte read is checked before it is taken as the end.
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
    gzFile gz;
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

rw_lines_t *rw_lines_new(const char *path, size_t max_line, int *err)
{
    int code = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        code = -errno;
        goto fail_open;
    }
    if (fstat(fd, &st) != 0) {
        code = -errno;
        goto fail_stat;
    }
    if (S_ISDIR(st.st_mode)) {
        code = -EISDIR;
        goto fail_stat;
    }
    gzFile gz = gzdopen(fd, "rb"); /* owns fd from here on */
    if (!gz) {
        code = RW_ENOMEM;
        goto fail_stat;
    }
    gzbuffer(gz, LINES_GZ_BUF);
    rw_lines_t *r = rw_new(rw_lines_t);
    r->gz = gz;
    r->max_line = max_line ? max_line : RW_LINES_DEFAULT_MAX;
    if (err)
        *err = 0;
    return r;

fail_stat:
    close(fd);
fail_open:
    if (err)
        *err = code;
    return NULL;
}

void rw_lines_destroy(rw_lines_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rw_lines_t *r = *self_p;
    gzclose_r(r->gz);
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

/* gzerror()'s text without the "<fd:3>: " that gzdopen() puts before it. */
static const char *lines_zmsg(const char *m)
{
    const char *colon = strncmp(m, "<fd:", 4) == 0 ? strstr(m, ": ") : NULL;
    return colon ? colon + 2 : m;
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
    errno = 0;
    int n = gzread(r->gz, r->buf + r->end, (unsigned)LINES_CHUNK);
    int saved = errno;
    if (n > 0) {
        r->end += (size_t)n;
        return 1;
    }
    int zerr = Z_OK;
    const char *zmsg = lines_zmsg(gzerror(r->gz, &zerr));
    if (n == 0 && zerr == Z_OK) {
        r->eof = 1;
        return 0;
    }
    if (zerr == Z_BUF_ERROR)
        return lines_fail(r, RW_ETRUNC, "truncated gzip stream (%s)", zmsg);
    if (zerr == Z_ERRNO) {
        int e = saved ? saved : EIO;
        return lines_fail(r, -e, "read error: %s", strerror(e));
    }
    return lines_fail(r, RW_EIO, "corrupt gzip data (%s)", zmsg);
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
