/* support.c — test helpers: shared data, temporary folders, running binaries. */
#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int rwt_in_ci(void)
{
    const char *ci = getenv("CI");
    return ci && strcmp(ci, "true") == 0;
}

int rwt_limit_address_space(size_t extra)
{
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%lu", &pages) == 1;
    fclose(f);
    rlim_t lim = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + extra;
    struct rlimit rl = {lim, lim};
    return ok && setrlimit(RLIMIT_AS, &rl) == 0 ? 0 : -1;
}

const char *rwt_shared_data(void)
{
    static const char *dir = RW_SOURCE_DIR "/../shared/data";
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? dir : NULL;
}

char *rwt_tmpdir(void)
{
    char tmpl[] = "/tmp/rwtest.XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

void rwt_rmdir(const char *dir)
{
    if (!dir || strncmp(dir, "/tmp/rwtest.", 12) != 0)
        return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

char *rwt_dir;

void rwt_dir_setup(void)
{
    rwt_dir = rwt_tmpdir();
    if (!rwt_dir) {
        perror("mkdtemp");
        abort();
    }
}

void rwt_dir_teardown(void)
{
    rwt_rmdir(rwt_dir);
    free(rwt_dir);
    rwt_dir = NULL;
}

const char *rwt_path(const char *dir, const char *name)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

int rwt_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

char *rwt_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    size_t r;
    while ((r = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (cap - len - 1 == 0)
            b = realloc(b, cap *= 2);
    }
    fclose(f);
    b[len] = '\0';
    if (n)
        *n = len;
    return b;
}

int rwt_run(const char *cmd, char **out, char **err)
{
    char *dir = rwt_tmpdir();
    char full[8192];
    snprintf(full, sizeof full, "( %s ) >'%s/out' 2>'%s/err' </dev/null", cmd, dir, dir);
    int st = system(full);
    if (out)
        *out = rwt_read_file(rwt_path(dir, "out"), NULL);
    if (err)
        *err = rwt_read_file(rwt_path(dir, "err"), NULL);
    rwt_rmdir(dir);
    free(dir);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int rwt_spawn(const char *const *argv, const char *log)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int in = open("/dev/null", O_RDONLY),
        out = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(127);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

const char *rwt_bin(const char *name)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", RW_BINARY_DIR, name);
    return b;
}

uint64_t rwt_mangle(void *buf, size_t span, uint64_t *seed, const char *alphabet, int count)
{
    unsigned char *b = buf;
    size_t na = alphabet ? strlen(alphabet) : 0;
    for (int k = 0; k < count && span; k++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        b[(*seed >> 20) % span] =
            alphabet ? (unsigned char)alphabet[(*seed >> 8) % na] : (unsigned char)(*seed >> 8);
    }
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    return *seed >> 16;
}
