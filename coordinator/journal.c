/* journal.c — append-only JSON Lines with replay; see journal.h. */
#include "journal.h"

#include "alloc.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

struct journal {
    int fd;
    bool sync;
    bool dirty; /* appended since the last sync */
    size_t appended;
    off_t end; /* where the last whole record ends */
};

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads the whole file at fd. */
static int slurp(int fd, char **buf, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *b = rw_malloc(cap);
    for (;;) {
        if (n + 1 >= cap)
            b = rw_realloc(b, cap *= 2);
        ssize_t k = read(fd, b + n, cap - n - 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int rc = -errno;
            free(b);
            return rc;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* Replays buf[0..len); *good is the length of the records that parsed. */
static int replay_all(const char *buf, size_t len, journal_replay_fn fn, void *ctx, size_t *good,
                      size_t *count)
{
    size_t off = 0;
    *good = 0;
    *count = 0;
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - buf) : len;
        json_error_t jerr;
        json_t *rec = json_loadb(buf + off, end - off, 0, &jerr);
        if (!rec || !json_is_object(rec) || !nl) {
            json_decref(rec);
            if (!nl || end + 1 >= len)
                return 0; /* a torn last record: cut off */
            RW_ERROR("journal", "record %zu is not a JSON object: %s", *count + 1, jerr.text);
            return RW_EPARSE;
        }
        int rc = fn ? fn(ctx, rec) : 0;
        json_decref(rec);
        if (rc < 0)
            return rc;
        off = end + 1;
        *good = off;
        ++*count;
    }
    return 0;
}

int journal_open(const char *path, bool sync, journal_replay_fn replay, void *ctx, journal_t **out,
                 size_t *replayed)
{
    int rc;
    char *buf = NULL;
    size_t len = 0, good = 0, count = 0;
    struct stat st;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) { /* a FIFO would hold the replay in read() for good */
        rc = RW_ENOTFILE;
        goto fail;
    }
    if ((rc = slurp(fd, &buf, &len)) < 0)
        goto fail;
    if ((rc = replay_all(buf, len, replay, ctx, &good, &count)) < 0)
        goto fail;
    if (good < len) {
        RW_WARN("journal", "%s: cut off a torn last record (%zu bytes)", path, len - good);
        if (ftruncate(fd, (off_t)good) != 0) {
            rc = -errno;
            goto fail;
        }
    }
    if (lseek(fd, 0, SEEK_END) < 0) {
        rc = -errno;
        goto fail;
    }
    free(buf);
    journal_t *j = rw_new(journal_t);
    j->fd = fd;
    j->sync = sync;
    j->end = (off_t)good;
    *out = j;
    if (replayed)
        *replayed = count;
    return 0;

fail:
    free(buf);
    close(fd);
    return rc;
}

void journal_destroy(journal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    journal_sync(*self_p);
    close((*self_p)->fd);
    free(*self_p);
    *self_p = NULL;
}

int journal_append(journal_t *j, const char *ev, json_t *fields)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    json_t *rec = json_object();
    json_object_set_new(rec, "ev", json_string(ev));
    json_object_set_new(rec, "ts", json_real((double)tv.tv_sec + tv.tv_usec / 1e6));
    if (fields) {
        json_object_update(rec, fields);
        json_decref(fields);
    }
    char *line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(rec);
    if (!line)
        return RW_ENOMEM;
    size_t n = strlen(line);
    line = rw_realloc(line, n + 2);
    line[n] = '\n';
    int rc = write_all(j->fd, line, n + 1);
    free(line);
    if (rc == 0) {
        j->appended++;
        j->dirty = true;
        j->end += (off_t)n + 1;
    } else if (ftruncate(j->fd, j->end) != 0 || lseek(j->fd, j->end, SEEK_SET) < 0) {
        /* what was written of it stays: the next record would follow a
         * torn line, and no replay could read past it */
        RW_ERROR("journal", "cannot cut back a record written in part: %s", strerror(errno));
    }
    return rc;
}

int journal_sync(journal_t *j)
{
    if (!j->dirty || !j->sync)
        return 0;
    j->dirty = false;
    return fdatasync(j->fd) == 0 ? 0 : -errno;
}

size_t journal_count(const journal_t *j)
{
    return j->appended;
}
