/* afile.c — write to a temporary file, rename on commit; see afile.h. */
#include "afile.h"

#include "alloc.h"
#include "err.h"

#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The temporary files open in this process, where a signal handler may read
 * them: fixed arrays and lock-free flags, no heap, no lock. A slot goes
 * FREE -> FILLING (one thread owns it) -> LIVE -> FREE on commit or abort;
 * the handler takes a LIVE slot to DYING before it unlinks, so no thread can
 * free and refill the name it is reading. pid: a forked child inherits the
 * table but must not remove its parent's files. */
enum { SLOT_FREE, SLOT_FILLING, SLOT_LIVE, SLOT_DYING };

static struct {
    atomic_int state;
    pid_t pid;
    char tmp[PATH_MAX];
} tracked[RW_AFILE_TRACKED];

void rw_afile_unlink_all(void)
{
    pid_t self = getpid();
    for (int i = 0; i < RW_AFILE_TRACKED; i++) {
        int live = SLOT_LIVE;
        if (atomic_compare_exchange_strong(&tracked[i].state, &live, SLOT_DYING) &&
            tracked[i].pid == self)
            unlink(tracked[i].tmp);
    }
}

static void on_signal(int sig)
{
    rw_afile_unlink_all();
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig); /* blocked until the handler returns, then the default: death */
}

/* Catches each of the signals still at its default action: what is ignored
 * (a background job's SIGINT) stays ignored, what the program handles itself
 * stays its own. */
static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaddset(&sa.sa_mask, sigs[i]); /* one cleanup at a time */
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
            old.sa_handler == SIG_DFL)
            sigaction(sigs[i], &sa, NULL);
    }
}

/* Enters tmp in the table; returns 1 + its slot, or 0 when it cannot be
 * (table full, name too long: the file is then left on a signal). */
static int track(const char *tmp)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, catch_signals);
    size_t n = strlen(tmp) + 1;
    if (n > sizeof tracked[0].tmp)
        return 0;
    for (int i = 0; i < RW_AFILE_TRACKED; i++) {
        int free_ = SLOT_FREE;
        if (atomic_compare_exchange_strong(&tracked[i].state, &free_, SLOT_FILLING)) {
            memcpy(tracked[i].tmp, tmp, n);
            tracked[i].pid = getpid();
            atomic_store(&tracked[i].state, SLOT_LIVE);
            return i + 1;
        }
    }
    return 0;
}

/* After the temporary file is renamed or removed. A slot a handler holds
 * (DYING) stays so: the process is ending. */
static void untrack(int slot)
{
    int live = SLOT_LIVE;
    if (slot > 0)
        atomic_compare_exchange_strong(&tracked[slot - 1].state, &live, SLOT_FREE);
}

static void afile_clear(rw_afile_t *af)
{
    untrack(af->slot);
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
    af->slot = track(af->tmp);
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
