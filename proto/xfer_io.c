/* xfer_io.c — where transferred bytes come from and go to: memory or files.
 *
 * The memory source hands out pointers into the caller's buffer, so a chunk
 * is copied once, into its frame. The memory sink grows with the bytes that
 * actually arrived, never to a size a peer merely declared. The file sink
 * writes through core/afile, so an artifact appears at its path whole, and
 * only after its checksum matched.
 */
#include "xfer.h"

#include "alloc.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int xfer_artifact_of(const msg_t *m, uint64_t *id)
{
    switch (m->type) {
    case MSG_ART_BEGIN:
        *id = m->art_begin.artifact;
        return 0;
    case MSG_ART_CHUNK:
        *id = m->art_chunk.artifact;
        return 0;
    case MSG_ART_CREDIT:
        *id = m->art_credit.artifact;
        return 0;
    case MSG_ART_END:
        *id = m->art_end.artifact;
        return 0;
    case MSG_ART_ACK:
        *id = m->art_ack.artifact;
        return 0;
    default:
        return RW_EMSGTYPE;
    }
}

static int mem_read(const void *src, uint64_t off, size_t n, void *scratch, const void **p)
{
    (void)n, (void)scratch;
    *p = (const uint8_t *)src + off;
    return 0;
}

const struct xfer_source_ops xfer_mem_source_ops = {.read = mem_read, .needs_scratch = false};

static int file_read(const void *src, uint64_t off, size_t n, void *scratch, const void **p)
{
    const xfer_file_source_t *s = src;
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(s->fd, (char *)scratch + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            return RW_ETRUNC; /* the file shrank under us */
        done += (size_t)k;
    }
    *p = scratch;
    return 0;
}

const struct xfer_source_ops xfer_file_source_ops = {.read = file_read, .needs_scratch = true};

int xfer_file_source_open(xfer_file_source_t *s, const char *path)
{
    struct stat st;
    s->size = 0;
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0)
        return -errno;
    if (fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int rc = S_ISREG(st.st_mode) ? -errno : -EINVAL;
        close(s->fd);
        s->fd = -1;
        return rc;
    }
    s->size = (uint64_t)st.st_size;
    return 0;
}

void xfer_file_source_close(xfer_file_source_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

static int mem_open(void *sink, const msg_art_begin_t *b)
{
    xfer_mem_sink_t *s = sink;
    s->len = 0;
    s->size = b->size;
    s->committed = false;
    return 0;
}

static int mem_write(void *sink, uint64_t off, const void *p, size_t n)
{
    xfer_mem_sink_t *s = sink;
    if (off != s->len)
        return RW_ESTATE;
    if (n > s->size - s->len)
        return RW_ETOOBIG;
    if (s->len + n > s->cap) {
        /* double, but never past the declared size (already checked by the receiver) */
        size_t cap = s->cap ? s->cap : 64 << 10;
        while (cap < s->len + n)
            cap *= 2;
        if (cap > s->size)
            cap = (size_t)s->size;
        s->data = rw_realloc(s->data, cap); /* glibc grows big blocks by mremap: no copy */
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
    return 0;
}

static int mem_commit(void *sink)
{
    ((xfer_mem_sink_t *)sink)->committed = true;
    return 0;
}

static void mem_abort(void *sink)
{
    ((xfer_mem_sink_t *)sink)->len = 0;
}

const struct xfer_sink_ops xfer_mem_sink_ops = {
    .open = mem_open, .write = mem_write, .commit = mem_commit, .abort = mem_abort};

void xfer_mem_sink_fini(xfer_mem_sink_t *s)
{
    free(s->data);
    memset(s, 0, sizeof *s);
}

static int file_open(void *sink, const msg_art_begin_t *b)
{
    xfer_file_sink_t *s = sink;
    (void)b;
    if (s->open)
        rw_afile_abort(&s->af);
    s->open = s->committed = false;
    int rc = rw_afile_open(&s->af, s->path);
    s->open = rc == 0;
    return rc;
}

static int file_write(void *sink, uint64_t off, const void *p, size_t n)
{
    xfer_file_sink_t *s = sink;
    (void)off; /* the receiver writes in order */
    if (!s->open)
        return RW_ESTATE;
    if (n && fwrite(p, 1, n, s->af.f) != n)
        return RW_EIO;
    return 0;
}

static int file_commit(void *sink)
{
    xfer_file_sink_t *s = sink;
    if (!s->open)
        return RW_ESTATE;
    s->open = false;
    int rc = rw_afile_commit(&s->af);
    s->committed = rc == 0;
    return rc;
}

static void file_abort(void *sink)
{
    xfer_file_sink_t *s = sink;
    if (s->open)
        rw_afile_abort(&s->af);
    s->open = false;
}

const struct xfer_sink_ops xfer_file_sink_ops = {
    .open = file_open, .write = file_write, .commit = file_commit, .abort = file_abort};

void xfer_file_sink_init(xfer_file_sink_t *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->path = rw_strdup(path);
}

void xfer_file_sink_fini(xfer_file_sink_t *s)
{
    file_abort(s);
    free(s->path);
    memset(s, 0, sizeof *s);
}
