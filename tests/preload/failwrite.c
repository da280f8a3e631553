/* failwrite.c — an LD_PRELOAD library that makes chosen write(2) calls fail
 * with ENOSPC, so a test can run a real binary on a disk that fills up at a
 * moment it picks (a journal record of some kind, say).
 *
 * Controlled by the environment it finds when it is loaded:
 *   RWT_FAILWRITE_MATCH   a write whose bytes hold this text fails, each
 *                         time, with nothing written (unset or empty: no
 *                         write fails);
 *   RWT_FAILWRITE_STICKY  if set, the file a failed write went to stays full:
 *                         every later write to that file descriptor fails
 *                         too, as on a disk with no room left.
 * Writes that fail set errno to ENOSPC and return -1. Only write(2) itself is
 * caught: writev, pwrite and stdio's own writes inside libc pass untouched.
 *
 * Built for the tests only (never installed). Under AddressSanitizer the
 * ASan runtime must come first in LD_PRELOAD; svc_preload() says so.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int fd, const void *buf, size_t n);

static write_fn real_write;
static const char *match; /* NULL: fail nothing */
static size_t match_len;
static bool sticky;
static atomic_int full_fd = -1; /* the file descriptor that stays full, or -1 */

/* Runs before main (or at the first write, if another library's
 * constructor writes first), while the process has one thread: the
 * environment read is the one the binary started with, and write() needs
 * neither getenv nor a lock. */
__attribute__((constructor)) static void failwrite_init(void)
{
    real_write = (write_fn)dlsym(RTLD_NEXT, "write");
    const char *m = getenv("RWT_FAILWRITE_MATCH");
    if (m && *m) {
        match = m;
        match_len = strlen(m);
    }
    sticky = getenv("RWT_FAILWRITE_STICKY") != NULL;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (!real_write)
        failwrite_init();
    bool fail = fd == atomic_load(&full_fd);
    if (!fail && match && memmem(buf, n, match, match_len)) {
        fail = true;
        if (sticky)
            atomic_store(&full_fd, fd);
    }
    if (fail) {
        errno = ENOSPC;
        return -1;
    }
    return real_write(fd, buf, n);
}
