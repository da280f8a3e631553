/* svc_support.h — helpers for the services' multi-process tests.
 *
 * A service runs in a forked child through the same function its binary's
 * main calls (coord_main, worker_main, router_main), with its stderr in a
 * log file, so a test needs no binary and sees exactly what the binary
 * does. Children are killed by pid (never by name) and reaped.
 */
#ifndef RW_TEST_SVC_SUPPORT_H
#define RW_TEST_SVC_SUPPORT_H

#include <stdbool.h>
#include <sys/types.h>

typedef int (*svc_main_fn)(int argc, char **argv);

/* Forks a child running fn(argc, argv) with argv = {name, args...} (a NULL-
 * terminated list), stdout and stderr appended to log (may be NULL), and
 * exits with its return. Returns the child's pid. */
pid_t svc_spawn(svc_main_fn fn, const char *name, const char *log, const char *const *args);
/* Like svc_spawn, but the child runs the built binary bin (rwt_bin:
 * "rewire-coordinator") with env's "NAME=value" strings (NULL-terminated,
 * may be NULL) added to its environment, so that a library preloaded
 * (svc_preload) takes effect in it and in it alone. */
pid_t svc_exec(const char *bin, const char *log, const char *const *args, const char *const *env);
/* The "LD_PRELOAD=..." string, for svc_exec's env, that loads the shared
 * library at lib into a binary of this build: behind the ASan runtime in a
 * sanitizer build, as that must come first. Static buffer. */
const char *svc_preload(const char *lib);
/* A worker (worker_main) of the coordinator at endpoint, as id with caps,
 * its cache dir/cache-ID and its log dir/ID.log, a coordinator silent for
 * timeout_ms lost, and the flags in more (NULL-terminated, may be NULL). */
pid_t svc_worker(const char *dir, const char *endpoint, const char *id, const char *caps,
                 const char *timeout_ms, const char *const *more);
/* Waits up to timeout_ms for pid; returns its exit status, 128+signal if
 * killed, or -1 on a timeout (the child is then left running). */
int svc_wait(pid_t pid, int timeout_ms);
/* SIGKILLs pid (if alive) and reaps it. */
void svc_kill(pid_t pid);
/* Waits up to timeout_ms for path to exist. */
bool svc_wait_file(const char *path, int timeout_ms);
/* Runs the data stage into state_dir: synthetic data, pairs per domain,
 * a small vocabulary. Returns 0 or an error. */
int svc_prepare(const char *state_dir, int pairs_per_domain);
/* Writes a job configuration for tiny models into dir/job.json and returns
 * its path (static buffer): every task takes `steps` steps, the seed
 * seed_steps (so a test can catch it running). */
const char *svc_tiny_config(const char *dir, int steps, int seed_steps);
/* Prints a log file (for a failing test's message). */
void svc_dump(const char *log);
void svc_sleep_ms(int ms);

#endif
