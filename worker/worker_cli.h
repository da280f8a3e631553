/* worker_cli.h — `rewire-worker`'s command line, as a function.
 *
 * main.c is one call to worker_main; tests call it too (in a forked child),
 * so they run exactly what the binary runs.
 */
#ifndef RW_WORKER_CLI_H
#define RW_WORKER_CLI_H

#include "agent.h"

/* Runs `rewire-worker ARGS...` (argv[0] is the program). Returns the exit
 * status: 0 shut down, 1 failed or refused, 2 bad usage. */
int worker_main(int argc, char **argv);

/* The flags every agent takes (--connect, --id, --threads, --cache,
 * --cache-max, --timeout-ms, --backoff-max-ms), parsed into *o; what it does not know
 * goes to rest[] (*nrest). Strings point into argv. Returns 0, or 2 after
 * a usage error naming prog. */
int agent_parse_flags(const char *prog, int argc, char **argv, agent_opts_t *o, char **rest,
                      int *nrest);
extern const char agent_flags_help[];
/* Without --cache, o->cache_dir becomes this process's own folder
 * ($TMPDIR or /tmp, rewire-cache-PID) in buf; returns whether it did, so
 * the caller removes the folder (rw_remove_tree) when it ends. Making it,
 * it first removes (and logs) the rewire-cache-PID folders there of this
 * user's processes that are gone, which a killed one leaves behind. */
bool agent_own_cache(agent_opts_t *o, char *buf, size_t n);

/* Sets SIGINT and SIGTERM to stop a (and SIGPIPE to be ignored). */
void agent_catch_signals(agent_t *a);

#endif
