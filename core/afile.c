/* afile.c — write to a temporary file, rename on commit; see afile.h. */
#include "afile.h"

#include "alloc.h"
#include "err.h"

#include <errno.h>
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

int rw_afile_open(rw_afile_t *af, const char *path)
{
    int rc;
    memset(af, 0, sizeof *af);
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        af->path = rw_strdup(path);
        if (!(af->f = fopen(path, "w"))) {
            rc = -errno;
            afile_clear(af);
            return rc;
        }
        return 0;
    }
    char *real = NULL; /* a link's target, replaced in its own directory */
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && (real = realpath(path, NULL)))
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
