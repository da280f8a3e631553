/* afile.c — write to a temporary file, rename on commit; see afile.h. */
#include "afile.h"

#include "alloc.h"
#include "err.h"

#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void afile_clear(rw_afile_t *af)
{
    free(af->tmp);
    free(af->path);
    memset(af, 0, sizeof *af);
}

/* Whether path is to be written in place: 1 or 2 when it is this
 * process's own stdout or stderr (through /dev/stdout, /proc/self/fd or
 * its name: replacing, or reopening and so truncating, the file they go to
 * would lose what is in it), -1 for what is no regular file (a pipe, a
 * device), 0 for a file to replace whole. */
static int in_place(const char *path)
{
    struct stat st, fd;
    if (stat(path, &st) != 0)
        return 0;
    for (int i = 1; i <= 2; i++)
        if (fstat(i, &fd) == 0 && fd.st_dev == st.st_dev && fd.st_ino == st.st_ino)
            return i;
    return !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) ? -1 : 0;
}

/* Where a link at path points, as a path to create or replace (a relative
 * target taken from the link's folder), or NULL for no link (caller frees). */
static char *link_target(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode))
        return NULL;
    char *real = realpath(path, NULL);
    if (real)
        return real;
    char buf[4096]; /* dangling: where it points, to be created */
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    const char *slash = strrchr(path, '/');
    if (buf[0] == '/' || !slash)
        return rw_strdup(buf);
    size_t dl = (size_t)(slash - path) + 1, tl = (size_t)n + 1;
    char *out = rw_malloc(dl + tl);
    memcpy(out, path, dl);
    memcpy(out + dl, buf, tl);
    return out;
}

int rw_afile_open(rw_afile_t *af, const char *path)
{
    int rc;
    memset(af, 0, sizeof *af);
    int where = in_place(path);
    if (where) {
        af->path = rw_strdup(path);
        int own = where > 0 ? dup(where) : -1; /* written where it goes, as the process writes */
        if (!(af->f = where > 0 ? (own >= 0 ? fdopen(own, "w") : NULL) : fopen(path, "w"))) {
            rc = -errno;
            if (own >= 0)
                close(own);
            afile_clear(af);
            return rc;
        }
        return 0;
    }
    char *real = link_target(path); /* replaced in its own folder; the link stays */
    if (real)
        path = real;
    size_t n = strlen(path) + sizeof ".tmp.XXXXXX";
    af->tmp = rw_malloc(n);
    snprintf(af->tmp, n, "%s.tmp.XXXXXX", path);
    af->path = rw_strdup(path);
    free(real);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        rc = -errno;
        goto fail_mkstemp;
    }
    /* mkstemp makes 0600; what rewire writes is no secret */
    if (fchmod(fd, 0644) != 0 || !(af->f = fdopen(fd, "w"))) {
        rc = -errno;
        close(fd);
        goto fail_fdopen;
    }
    return 0;

fail_fdopen:
    unlink(af->tmp);
fail_mkstemp:
    afile_clear(af);
    return rc;
}

int rw_afile_commit(rw_afile_t *af)
{
    int rc = 0;
    if (!af->f)
        return RW_EINVAL;
    errno = 0;
    if (fflush(af->f) != 0 || ferror(af->f) || (af->tmp && fsync(fileno(af->f)) != 0))
        rc = errno ? -errno : RW_EIO;
    if (fclose(af->f) != 0 && rc == 0)
        rc = errno ? -errno : RW_EIO;
    af->f = NULL;
    if (af->tmp && rc == 0 && rename(af->tmp, af->path) != 0)
        rc = -errno;
    if (af->tmp && rc != 0)
        unlink(af->tmp);
    afile_clear(af);
    return rc;
}

void rw_afile_abort(rw_afile_t *af)
{
    if (af->f) {
        fclose(af->f);
        if (af->tmp)
            unlink(af->tmp);
    }
    afile_clear(af);
}

int rw_afile_write(const char *path, const void *data, size_t n)
{
    rw_afile_t af;
    int rc = rw_afile_open(&af, path);
    if (rc < 0)
        return rc;
    if (fwrite(data, 1, n, af.f) != n) {
        rc = errno ? -errno : RW_EIO;
        rw_afile_abort(&af);
        return rc;
    }
    return rw_afile_commit(&af);
}

int rw_open_regular(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block the open */
    if (fd < 0)
        return -errno;
    struct stat sb;
    int rc = fstat(fd, &sb) == 0 ? 0 : -errno;
    if (rc == 0 && !S_ISREG(sb.st_mode))
        rc = RW_ENOTFILE;
    if (rc == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

FILE *rw_fopen_regular(const char *path, int *err)
{
    int fd = rw_open_regular(path);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (fd >= 0 && !f) {
        int e = -errno;
        close(fd);
        fd = e;
    }
    if (!f && err)
        *err = fd;
    return f;
}

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

void rw_remove_tree(const char *path)
{
    nftw(path, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
}
