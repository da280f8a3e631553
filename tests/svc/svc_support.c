/* svc_support.c — helpers for the services' multi-process tests. */
#include "svc_support.h"

#include "prepare.h"
#include "support.h"
#include "worker_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void svc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Forks; in the child, stdout and stderr go to log (may be NULL) and argv
 * becomes {name, args...}. Returns the pid in the parent, 0 in the child. */
static pid_t fork_logged(const char *name, const char *log, const char *const *args, char *argv[64],
                         int *argc)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (log) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
    }
    int n = 0;
    argv[n++] = (char *)name;
    for (; args && args[n - 1] && n < 63; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    *argc = n;
    return 0;
}

pid_t svc_spawn(svc_main_fn fn, const char *name, const char *log, const char *const *args)
{
    char *argv[64];
    int argc;
    pid_t pid = fork_logged(name, log, args, argv, &argc);
    if (pid != 0)
        return pid;
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
}

pid_t svc_exec(const char *bin, const char *log, const char *const *args, const char *const *env)
{
    char path[1024], *argv[64];
    snprintf(path, sizeof path, "%s", rwt_bin(bin));
    int argc;
    pid_t pid = fork_logged(path, log, args, argv, &argc);
    if (pid != 0)
        return pid;
    for (size_t i = 0; env && env[i]; i++)
        putenv((char *)env[i]);
    execv(path, argv);
    fprintf(stderr, "cannot run %s: %s\n", path, strerror(errno));
    _exit(127);
}

const char *svc_preload(const char *lib)
{
    static char value[2048];
#ifdef RW_ASAN_RUNTIME
    snprintf(value, sizeof value, "LD_PRELOAD=%s:%s", RW_ASAN_RUNTIME, lib);
#else
    snprintf(value, sizeof value, "LD_PRELOAD=%s", lib);
#endif
    return value;
}

int svc_wait(pid_t pid, int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0)
            return -1;
        if (waited >= timeout_ms)
            return -1;
        svc_sleep_ms(10);
    }
}

void svc_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
}

bool svc_wait_file(const char *path, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (access(path, F_OK) == 0)
            return true;
        svc_sleep_ms(10);
    }
    return false;
}

int svc_prepare(const char *state_dir, int pairs_per_domain)
{
    coord_prep_opts_t o;
    coord_prep_opts_init(&o);
    o.pairs_per_domain = (size_t)pairs_per_domain;
    o.vocab_size = 1000;
    o.state_dir = state_dir;
    coord_prep_t p;
    int rc = coord_prepare(&o, &p);
    if (rc == 0)
        coord_prep_fini(&p);
    coord_prep_opts_fini(&o);
    return rc;
}

void svc_dump(const char *log)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return;
    char line[1024];
    fprintf(stderr, "---- %s\n", log);
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

const char *svc_tiny_config(const char *dir, int steps, int seed_steps)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/job.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fprintf(f,
            "{\"all\": {\"model\": {\"d_model\": 16, \"n_layers\": 1, \"n_heads\": 2, "
            "\"d_ff\": 32, \"max_len\": 32}, \"train\": {\"max_batch\": 8}, "
            "\"epochs\": 1000, \"max_steps\": %d},\n"
            " \"seed\": {\"max_steps\": %d}}\n",
            steps, seed_steps);
    fclose(f);
    return path;
}

pid_t svc_worker(const char *dir, const char *endpoint, const char *id, const char *caps,
                 const char *timeout_ms, const char *const *more)
{
    char cache[700], log[700];
    snprintf(cache, sizeof cache, "%s/cache-%s", dir, id);
    snprintf(log, sizeof log, "%s/%s.log", dir, id);
    const char *args[32] = {"--connect", endpoint, "--id",         id,         "--caps", caps,
                            "--cache",   cache,    "--timeout-ms", timeout_ms, NULL};
    size_t n = 10;
    for (size_t i = 0; more && more[i] && n < 31; i++)
        args[n++] = more[i];
    args[n] = NULL;
    return svc_spawn(worker_main, "rewire-worker", log, args);
}
