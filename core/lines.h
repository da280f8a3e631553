/* lines.h — a line reader over a plain or gzip-compressed file.
 *
 * The first two bytes tell them apart (gzip's 1f 8b), so callers never
 * look at the file name; a gzip file may hold several members. Lines come
 * back one at a time with their 1-based number, without the '\n' (a "\r"
 * before it is left for the caller) and, on line 1, without a UTF-8
 * byte-order mark (EF BB BF). A line longer than the
 * limit is skipped to its newline without being held in memory and reported
 * as RW_ETOOBIG; reading then carries on. A gzip stream that ends early is
 * RW_ETRUNC, and bytes after a member that are not another member RW_EIO,
 * never a silent end of file: the lines before either have already been
 * returned.
 */
#ifndef RW_LINES_H
#define RW_LINES_H

#include <stddef.h>

#define RW_LINES_DEFAULT_MAX ((size_t)16 << 20) /* 16 MiB */

typedef struct rw_lines rw_lines_t;

/* Opens path for reading with lines of at most max_line bytes (0: the
 * default). Returns the reader, or NULL with *err set to -errno (missing,
 * unreadable, or a directory); the message is rw_strerror(*err). */
rw_lines_t *rw_lines_new(const char *path, size_t max_line, int *err);
/* The same over an open descriptor (a pipe: stdin, say), which the reader
 * takes: rw_lines_destroy closes it, and so does a failure here. */
rw_lines_t *rw_lines_fd(int fd, size_t max_line, int *err);
/* Closes the reader; accepts NULL and NULLs *self_p. */
void rw_lines_destroy(rw_lines_t **self_p);

/* Reads the next line. Returns 1 with *line (NUL-terminated, owned by the
 * reader, valid until the next call) and *len; 0 at the end of the file;
 * RW_ETOOBIG for a line over the limit (skipped: call again for the next);
 * RW_ETRUNC when a gzip stream ends early, RW_EIO for corrupt gzip data, or
 * -errno for a failed read — these three are final, every later call
 * returns the same code, and rw_lines_errmsg() says what happened. */
int rw_lines_next(rw_lines_t *r, const char **line, size_t *len);
/* Number of the line last returned, or when an error is returned, of the
 * line the reader had reached (the one it could not finish). */
size_t rw_lines_lineno(const rw_lines_t *r);
/* Why the last call failed ("truncated gzip stream (unexpected end of
 * file)"); "" when nothing failed. Owned by the reader. */
const char *rw_lines_errmsg(const rw_lines_t *r);

#endif
