/* store.c — artifacts at rest, named by their checksum; see store.h. */
#include "store.h"

#include "afile.h"
#include "alloc.h"
#include "checksum.h"
#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct store {
    char *dir;
    _Atomic uint64_t next_tmp; /* the coordinator's loop and its work threads take names */
};

static int mkdir_p(const char *dir)
{
    char buf[STORE_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Whether tmp/ file name ("PID-N", store_tmp_path) belongs to a process
 * alive on this host other than this one: another store on the same
 * folder (two workers sharing a cache) is writing it. */
static bool tmp_in_use(const char *name)
{
    char *end;
    errno = 0;
    long pid = strtol(name, &end, 10);
    if (errno || end == name || *end != '-' || pid <= 0 || pid > INT_MAX || pid == getpid())
        return false;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Removes the files a crash left in tmp/ (not those of a live process). */
static void clear_tmp(const char *tmp)
{
    DIR *d = opendir(tmp);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] != '.' && !tmp_in_use(e->d_name))
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

store_t *store_open(const char *dir, int *err)
{
    char tmp[STORE_PATH_MAX];
    int rc;
    if (snprintf(tmp, sizeof tmp, "%s/tmp", dir) >= (int)sizeof tmp - 32) {
        rc = -ENAMETOOLONG;
        goto fail;
    }
    if ((rc = mkdir_p(tmp)) < 0)
        goto fail;
    if (access(tmp, W_OK) != 0) {
        rc = -errno;
        goto fail;
    }
    clear_tmp(tmp);
    store_t *s = rw_new(store_t);
    s->dir = rw_strdup(dir);
    if (err)
        *err = 0;
    return s;

fail:
    if (err)
        *err = rc;
    return NULL;
}

void store_destroy(store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->dir);
    free(*self_p);
    *self_p = NULL;
}

const char *store_dir(const store_t *s)
{
    return s->dir;
}

const char *store_path(const store_t *s, uint64_t id, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%016" PRIx64, s->dir, id);
    return buf;
}

bool store_has(const store_t *s, uint64_t id)
{
    char path[STORE_PATH_MAX];
    struct stat st;
    return stat(store_path(s, id, path, sizeof path), &st) == 0 && S_ISREG(st.st_mode);
}

int store_checksum_file(const char *path, uint64_t *sum, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    proto_checksum_t c;
    proto_checksum_init(&c);
    static __thread uint8_t buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = -errno;
            break;
        }
        if (k == 0)
            break;
        proto_checksum_update(&c, buf, (size_t)k);
    }
    close(fd);
    if (rc == 0) {
        if (sum)
            *sum = proto_checksum_final(&c);
        if (size)
            *size = c.total;
    }
    return rc;
}

int store_verify(const store_t *s, uint64_t id, uint64_t *size)
{
    char path[STORE_PATH_MAX];
    uint64_t sum;
    int rc = store_checksum_file(store_path(s, id, path, sizeof path), &sum, size);
    if (rc == -ENOENT)
        return RW_ENOTFOUND;
    if (rc < 0)
        return rc;
    if (sum != id) {
        unlink(path);
        return RW_ECHECKSUM;
    }
    return 0;
}

void store_touch(const store_t *s, uint64_t id)
{
    char path[STORE_PATH_MAX];
    utimensat(AT_FDCWD, store_path(s, id, path, sizeof path), NULL, 0);
}

/* An artifact's id from its file name (16 hex digits), or 0. */
static uint64_t name_id(const char *name)
{
    uint64_t id = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        id = id << 4 | (uint64_t)d;
    }
    return name[16] ? 0 : id;
}

typedef struct {
    uint64_t id, size;
    struct timespec used;
} trim_entry_t;

static int by_use(const void *a, const void *b)
{
    const struct timespec *x = &((const trim_entry_t *)a)->used;
    const struct timespec *y = &((const trim_entry_t *)b)->used;
    if (x->tv_sec != y->tv_sec)
        return x->tv_sec < y->tv_sec ? -1 : 1;
    return (x->tv_nsec > y->tv_nsec) - (x->tv_nsec < y->tv_nsec);
}

int64_t store_trim(const store_t *s, uint64_t max, const uint64_t *keep, size_t n_keep,
                   unsigned min_age_s, void (*gone)(void *ctx, uint64_t id), void *ctx)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return -errno;
    trim_entry_t *v = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d))) {
        uint64_t id = name_id(e->d_name);
        if (!id || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        total += (uint64_t)st.st_size;
        rw_grow(&v, &cap, n + 1);
        v[n++] = (trim_entry_t){id, (uint64_t)st.st_size, st.st_mtim};
    }
    if (n)
        qsort(v, n, sizeof *v, by_use);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (size_t i = 0; i < n && total > max; i++) {
        bool spared = v[i].used.tv_sec + (time_t)min_age_s > now.tv_sec;
        for (size_t k = 0; k < n_keep && !spared; k++)
            spared = keep[k] == v[i].id;
        char name[17];
        snprintf(name, sizeof name, "%016" PRIx64, v[i].id);
        if (spared || unlinkat(dirfd(d), name, 0) != 0)
            continue;
        total -= v[i].size;
        if (gone)
            gone(ctx, v[i].id);
    }
    free(v);
    closedir(d);
    return (int64_t)total;
}

const char *store_tmp_path(store_t *s, char *buf, size_t n)
{
    snprintf(buf, n, "%s/tmp/%ld-%" PRIu64, s->dir, (long)getpid(), ++s->next_tmp);
    return buf;
}

int store_adopt(store_t *s, const char *path, uint64_t want, uint64_t *id)
{
    uint64_t sum;
    char dst[STORE_PATH_MAX];
    int rc = store_checksum_file(path, &sum, NULL);
    if (rc < 0)
        goto done;
    if (sum == 0) {
        rc = RW_EINVAL;
        goto done;
    }
    if (want && sum != want) {
        rc = RW_ECHECKSUM;
        goto done;
    }
    if (store_has(s, sum))
        goto done; /* the same bytes are there already */
    if (rename(path, store_path(s, sum, dst, sizeof dst)) != 0)
        rc = -errno;
done:
    unlink(path);
    if (rc == 0 && id)
        *id = sum;
    return rc;
}

int store_put_mem(store_t *s, const void *p, size_t n, uint64_t *id)
{
    char tmp[STORE_PATH_MAX];
    int rc = rw_afile_write(store_tmp_path(s, tmp, sizeof tmp), p, n);
    if (rc < 0)
        return rc;
    return store_adopt(s, tmp, 0, id);
}

int store_put_file(store_t *s, const char *src, uint64_t *id)
{
    char tmp[STORE_PATH_MAX];
    int rc, in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    rw_afile_t af;
    if ((rc = rw_afile_open(&af, store_tmp_path(s, tmp, sizeof tmp))) < 0)
        goto fail_open;
    char buf[1 << 16];
    for (;;) {
        ssize_t k = read(in, buf, sizeof buf);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = -errno;
            goto fail_copy;
        }
        if (k == 0)
            break;
        if (fwrite(buf, 1, (size_t)k, af.f) != (size_t)k) {
            rc = -EIO;
            goto fail_copy;
        }
    }
    close(in);
    if ((rc = rw_afile_commit(&af)) < 0)
        return rc;
    return store_adopt(s, tmp, 0, id);

fail_copy:
    rw_afile_abort(&af);
fail_open:
    close(in);
    return rc;
}

/* ---- a sink into the store's tmp/ ---- */

static int sink_open(void *sink, const msg_art_begin_t *begin)
{
    store_sink_t *k = sink;
    (void)begin;
    if (k->fd >= 0)
        close(k->fd);
    k->fd = open(k->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return k->fd < 0 ? -errno : 0;
}

static int sink_write(void *sink, uint64_t off, const void *p, size_t n)
{
    store_sink_t *k = sink;
    const char *b = p;
    while (n) {
        ssize_t w = pwrite(k->fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        b += w, off += (uint64_t)w, n -= (size_t)w;
    }
    return 0;
}

static int sink_commit(void *sink)
{
    store_sink_t *k = sink;
    int rc = close(k->fd) == 0 ? 0 : -errno;
    k->fd = -1;
    k->committed = rc == 0;
    return rc;
}

static void sink_abort(void *sink)
{
    store_sink_t *k = sink;
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    unlink(k->path);
}

const struct xfer_sink_ops store_sink_ops = {
    .open = sink_open, .write = sink_write, .commit = sink_commit, .abort = sink_abort};

void store_sink_init(store_sink_t *k, store_t *s)
{
    memset(k, 0, sizeof *k);
    k->fd = -1;
    store_tmp_path(s, k->path, sizeof k->path);
}

void store_sink_fini(store_sink_t *k)
{
    if (!k->path[0])
        return; /* zeroed, or finished */
    if (k->fd >= 0)
        close(k->fd);
    unlink(k->path); /* adopted since (gone already), or never taken */
    memset(k, 0, sizeof *k);
    k->fd = -1;
}
