/* cmd_run.c — `rewire run`: a whole job on this machine.
 *
 * The same processes a cluster runs, started here on loopback: a
 * rewire-coordinator (which runs the data stage, then leases the tasks), a
 * rewire-router (router tasks, then serving the bundles) and N
 * rewire-worker processes, all found beside the rewire binary. Each child's
 * output goes to DIR/logs/; the coordinator's status file drives a live
 * table on a terminal (plain lines otherwise). The children run in their
 * own process group and die with this process (PR_SET_PDEATHSIG), so a
 * Ctrl-C here becomes one orderly SIGTERM to the coordinator, which tells
 * every peer to shut down (--stop-peers: this command owns them all). A
 * DIR that holds a stopped job's state is resumed: the coordinator replays
 * its journal.
 */
#include "afile.h"
#include "alloc.h"
#include "log.h"
#include "cli.h"
#include "run.h"

#include "prepare.h"

#include <errno.h>
#include <sys/file.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_CHILDREN_MAX 66

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: rewire run [--data FILE]... --out DIR [options]\n\n"
            "Runs a whole job on this machine: a coordinator, a router service and workers\n"
            "as local processes on loopback. Leaves the baseline and the moe, router and\n"
            "adapter bundles in DIR/bundles/, the report in DIR/report.md, the job's state\n"
            "in DIR/state/ and each process's log in DIR/logs/. A DIR holding a stopped\n"
            "job is resumed.\n\n"
            "  -o, --out DIR          where the job's results go (created if missing)\n"
            "  --workers N            worker processes (as many as cores)\n"
            "  --threads-per-worker N threads of each worker (1; workers then default to\n"
            "                         cores / N)\n"
            "  --config FILE          job configuration (see rewire-coordinator --help)\n"
            "  --keep-serving         once done, keep the coordinator and the router service\n"
            "                         up (route and score requests, and new domains: it prints\n"
            "                         the endpoint a `rewire-worker --domain` connects to)\n"
            "                         until Ctrl-C\n%s",
            coord_prep_flags_help);
}

typedef struct run_args {
    const char *out, *config;
    long workers, threads;
    int keep;
} run_args_t;

#define RUN_ARGS_MAX 16 /* a child's argv, NULL included */
#define RUN_RESTARTS 3  /* a child that crashes is started again this often */

typedef struct child {
    pid_t pid;
    char name[32];
    int status;               /* exit status once reaped, -1 before */
    const char *bin;          /* what spawn ran, for a restart (NULL: never) */
    char *argv[RUN_ARGS_MAX]; /* owned copies */
    char log[PATH_MAX];
    int restarts;
} child_t;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts bin with argv, its output appended to log, in its own process
 * group, dying with us. Returns the pid or -1. */
static pid_t spawn(const char *bin, char *const argv[], const char *log)
{
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int nul = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    if (nul >= 0)
        dup2(nul, 0);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execv(bin, argv);
    cli_say("run", "cannot run %s: %s", bin, strerror(errno));
    _exit(127);
}

/* Starts child k (a router or worker: its argv and log are kept, so it can
 * be started again with the same --id and cache). */
static void start_child(child_t *k, const char *name, const char *bin, char *const argv[],
                        const char *log)
{
    *k = (child_t){.status = -1, .bin = bin};
    snprintf(k->name, sizeof k->name, "%s", name);
    snprintf(k->log, sizeof k->log, "%s", log);
    for (int i = 0; argv[i] && i < RUN_ARGS_MAX - 1; i++)
        k->argv[i] = rw_strdup(argv[i]);
    k->pid = spawn(bin, k->argv, log);
}

static void free_child(child_t *k)
{
    for (int i = 0; i < RUN_ARGS_MAX; i++)
        free(k->argv[i]);
}

/* Reaps what exited; returns how many children are still running. */
static int reap(child_t *c, int n)
{
    int alive = 0;
    for (int i = 0; i < n; i++) {
        if (c[i].status >= 0)
            continue;
        int st;
        pid_t r = waitpid(c[i].pid, &st, WNOHANG);
        if (r == c[i].pid)
            c[i].status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        else
            alive++;
    }
    return alive;
}

/* Waits for every child up to ms, then TERMs and at last KILLs the rest. */
static void wait_children(child_t *c, int n, int ms)
{
    for (int waited = 0; reap(c, n) > 0 && waited < ms; waited += 20)
        sleep_ms(20);
    for (int sig = 0; sig < 2 && reap(c, n) > 0; sig++) {
        for (int i = 0; i < n; i++)
            if (c[i].status < 0)
                kill(c[i].pid, sig == 0 ? SIGTERM : SIGKILL);
        for (int waited = 0; reap(c, n) > 0 && waited < 3000; waited += 20)
            sleep_ms(20);
    }
}

/* The JSON of the state file at path, or NULL (a FIFO too: it would hold
 * the run in open() for good). */
static json_t *load_json(const char *path)
{
    FILE *f = rw_fopen_regular(path, NULL);
    json_t *o = f ? json_loadf(f, 0, NULL) : NULL;
    if (f)
        fclose(f);
    return o;
}

/* The folder this program lives in. */
static int exe_dir(char *buf, size_t n)
{
    ssize_t k = readlink("/proc/self/exe", buf, n - 1);
    if (k <= 0)
        return -1;
    buf[k] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

static int parse_args(const char *cmd, char **rest, int nrest, run_args_t *a)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < nrest; i++) {
        const char *f = rest[i], *val = rw_arg_next(nrest, rest, i);
        bool out = strcmp(f, "--out") == 0 || strcmp(f, "-o") == 0;
        if ((out || strcmp(f, "--config") == 0) && !val) {
            return cli_usage_error(cmd, "%s needs a value", f);
        } else if (out) {
            a->out = rest[++i];
        } else if (strcmp(f, "--config") == 0) {
            a->config = rest[++i];
        } else if (strcmp(f, "--workers") == 0) {
            if (!val || rw_arg_long(val, 1, RUN_CHILDREN_MAX - 2, &a->workers) < 0)
                return cli_usage_error(cmd, "--workers wants 1 to %d", RUN_CHILDREN_MAX - 2);
            i++;
        } else if (strcmp(f, "--threads-per-worker") == 0) {
            if (!val || rw_arg_long(val, 1, 1024, &a->threads) < 0)
                return cli_usage_error(cmd, "--threads-per-worker wants 1 to 1024");
            i++;
        } else if (strcmp(f, "--keep-serving") == 0) {
            a->keep = 1;
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", f);
        }
    }
    if (!a->out)
        return cli_usage_error(cmd, "no output folder (--out DIR)");
    if (cores < 1)
        cores = 1;
    if (!a->threads)
        a->threads = 1;
    if (!a->workers) /* a share of the cores each, never more threads than cores */
        a->workers = cores / a->threads > 0 ? cores / a->threads : 1;
    return 0;
}

/* An ipc:// endpoint at dir/name if the path fits, else tcp on loopback. */
static void endpoint(char *buf, size_t n, const char *dir, const char *name)
{
    if (strlen(dir) + strlen(name) + 8 < 100)
        snprintf(buf, n, "ipc://%s/%s", dir, name);
    else
        snprintf(buf, n, "tcp://127.0.0.1:*");
}

/* When state's results.json was last written; 0 if there is none. A job
 * found done is replayed and its results left as they were. */
static double results_stamp(const char *state)
{
    char path[PATH_MAX + 32];
    struct stat st;
    snprintf(path, sizeof path, "%s/results.json", state);
    return stat(path, &st) == 0 ? (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9 : 0.0;
}

static double results_before; /* results_stamp as the run began */

static void summary(const char *out, const char *state, double wall, int rc, bool as_json)
{
    char path[PATH_MAX + 32], a[32];
    snprintf(path, sizeof path, "%s/results.json", state);
    json_t *res = load_json(path);
    if (as_json) {
        if (rc != 0) { /* what the folder held before is not this run's */
            json_decref(res);
            res = NULL;
        }
        json_t *j = json_pack("{s:b,s:s,s:f,s:i,s:o}", "ok", rc == 0 && res, "output", out,
                              "wall_s", wall, "exit", rc, "results", res ? res : json_null());
        if (rc != 0)
            json_object_set_new(j, "error",
                                json_string(cli_last_error[0]
                                                ? cli_last_error
                                                : "see the logs of the job's processes"));
        cli_print_json(j);
        json_decref(j);
        return;
    }
    if (rc != 0 || !res) {
        printf("job failed after %s (exit %d); see %s/logs/\n", run_clock(wall, a, sizeof a), rc,
               out);
        json_decref(res);
        return;
    }
    if (results_before > 0 && results_stamp(state) == results_before) /* nothing was left */
        printf("job already done: bundles in %s/bundles/, report %s/report.md\n", out, out);
    else
        printf("job done in %s: bundles in %s/bundles/, report %s/report.md\n",
               run_clock(wall, a, sizeof a), out, out);
    printf("  %-10s %14s %14s %12s\n", "bundle", "mean accuracy", "route accuracy", "params");
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(res, "bundles"), i, b)
    {
        json_t *e = json_object_get(b, "eval");
        json_t *route = json_object_get(e, "route_accuracy"); /* null: no router */
        char rbuf[16] = "-";
        if (json_is_number(route) && json_number_value(route) >= 0)
            snprintf(rbuf, sizeof rbuf, "%.4f", json_number_value(route));
        const char *kind = json_string_value(json_object_get(b, "kind"));
        printf("  %-10s %14.4f %14s %12lld\n", kind ? kind : "?",
               json_number_value(json_object_get(e, "mean_accuracy")), rbuf,
               (long long)json_integer_value(json_object_get(b, "params_total")));
    }
    json_decref(res);
}

/* The last line of the file at path that says something, without its
 * newline (the log's last word on why a process ended); false if none. */
static bool last_line(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char tail[4096];
    size_t len = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long end = ftell(f);
        fseek(f, end > (long)sizeof tail - 1 ? end - (long)sizeof tail + 1 : 0, SEEK_SET);
        len = fread(tail, 1, sizeof tail - 1, f);
    }
    fclose(f);
    tail[len] = '\0';
    while (len && (tail[len - 1] == '\n' || tail[len - 1] == ' '))
        tail[--len] = '\0';
    const char *start = strrchr(tail, '\n');
    start = start ? start + 1 : tail;
    if (!*start)
        return false;
    snprintf(buf, n, "%s", start);
    return true;
}

/* The last ERROR line of the log at path (its text after the level) into
 * buf; false when it has none. */
static bool last_error(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[2048];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        const char *e = strstr(line, " ERROR ");
        if (!e)
            continue;
        e += strlen(" ERROR ");
        e += strspn(e, " ");
        snprintf(buf, n, "%s", e);
        buf[strcspn(buf, "\n")] = '\0';
        found = true;
    }
    fclose(f);
    return found;
}

/* Whether another process holds the state (its coordinator's lock,
 * STATE/lock): then its pid, if it wrote one, goes into pid. */
static bool state_in_use(const char *state, char *pid, size_t n)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/lock", state);
    pid[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0)
        return false;
    bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (held) {
        ssize_t k = read(fd, pid, n - 1);
        pid[k > 0 ? k : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
    }
    close(fd);
    return held;
}

/* The version of the bundles state/results.json describes (0: none). */
static json_int_t results_version(const char *state)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/results.json", state);
    json_t *res = load_json(path);
    json_int_t v = json_integer_value(json_object_get(json_object_get(res, "job"), "version"));
    json_decref(res);
    return v;
}

/* Builds the coordinator's argv into v (strings borrowed or in store). */
static int coord_argv(char **v, char store[][32], const char *bin, const char *state,
                      const char *out, const char *ep, const coord_prep_opts_t *o,
                      const run_args_t *a)
{
    int n = 0;
    v[n++] = (char *)bin;
    v[n++] = "serve";
    v[n++] = "--state", v[n++] = (char *)state;
    v[n++] = "--out", v[n++] = (char *)out;
    v[n++] = "--bind", v[n++] = (char *)ep;
    v[n++] = "--stop-peers"; /* its peers are ours: a stop ends them too */
    for (size_t i = 0; i < o->ndata && n < 200; i++)
        v[n++] = "--data", v[n++] = (char *)o->data[i];
    /* only the options given: the others are the prepared state's */
    if (o->given & COORD_PREP_GIVEN_SEED) {
        snprintf(store[0], 32, "%llu", (unsigned long long)o->seed);
        v[n++] = "--seed", v[n++] = store[0];
    }
    if (o->given & COORD_PREP_GIVEN_PAIRS) {
        snprintf(store[1], 32, "%zu", o->pairs_per_domain);
        v[n++] = "--pairs-per-domain", v[n++] = store[1];
    }
    if (o->given & COORD_PREP_GIVEN_EVAL) {
        snprintf(store[2], 32, "%.17g", o->eval_fraction);
        v[n++] = "--eval-fraction", v[n++] = store[2];
    }
    if (o->given & COORD_PREP_GIVEN_VOCAB) {
        snprintf(store[3], 32, "%zu", o->vocab_size);
        v[n++] = "--vocab", v[n++] = store[3];
    }
    if (a->config)
        v[n++] = "--config", v[n++] = (char *)a->config;
    if (a->keep)
        v[n++] = "--keep-serving";
    v[n] = NULL;
    return n;
}

/* Waits for the coordinator's first status (it binds after the data
 * stage). Returns the status (caller decrefs) or NULL if it exited. */
static json_t *await_coordinator(child_t *c, const char *status_path)
{
    for (;;) {
        json_t *st = load_json(status_path);
        if (st && json_integer_value(json_object_get(st, "pid")) == c->pid)
            return st;
        json_decref(st);
        if (reap(c, 1) == 0 || interrupted)
            return NULL;
        sleep_ms(50);
    }
}

static int launch(const run_args_t *a, coord_prep_opts_t *o)
{
    char out[PATH_MAX], state[PATH_MAX + 8], logs[PATH_MAX + 8], bins[PATH_MAX];
    char path[PATH_MAX + 64];
    if (mkdir(a->out, 0755) != 0 && errno != EEXIST) {
        cli_say("run", "cannot create %s: %s", a->out, strerror(errno));
        return 1;
    }
    if (!realpath(a->out, out) || exe_dir(bins, sizeof bins) < 0) {
        cli_say("run", "cannot resolve %s: %s", a->out, strerror(errno));
        return 1;
    }
    snprintf(state, sizeof state, "%s/state", out);
    snprintf(logs, sizeof logs, "%s/logs", out);
    mkdir(state, 0755);
    mkdir(logs, 0755);
    const char *names[] = {"rewire-coordinator", "rewire-router", "rewire-worker"};
    char bin[3][PATH_MAX + 32];
    for (int i = 0; i < 3; i++) {
        snprintf(bin[i], sizeof bin[i], "%s/%s", bins, names[i]);
        if (access(bin[i], X_OK) != 0) {
            cli_say("run", "%s is missing (it belongs beside rewire)", bin[i]);
            return 1;
        }
    }
    char status_path[PATH_MAX + 32], cep[PATH_MAX + 32], rep[PATH_MAX + 32], pid[32];
    if (state_in_use(state, pid, sizeof pid)) { /* its status and sockets are not ours */
        cli_say("run", "%s is in use by another job's coordinator%s%s%s", a->out,
                pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        return 1;
    }
    snprintf(status_path, sizeof status_path, "%s/status.json", state);
    unlink(status_path);
    endpoint(cep, sizeof cep, state, "coord.sock");
    endpoint(rep, sizeof rep, out, "router.sock");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    results_before = results_stamp(state);
    double t0 = rw_now_s();
    child_t kids[RUN_CHILDREN_MAX];
    int nk = 0;
    char *v[256], store[4][32];
    coord_argv(v, store, bin[0], state, out, cep, o, a);
    snprintf(path, sizeof path, "%s/coordinator.log", logs);
    kids[nk++] = (child_t){.pid = spawn(bin[0], v, path), .name = "coordinator", .status = -1};
    if (!o->json)
        printf("rewire run: %ld workers x %ld threads, a router service, and a coordinator "
               "(logs in %s)\n",
               a->workers, a->threads, logs);
    json_t *st = await_coordinator(&kids[0], status_path);
    if (st) {
        snprintf(cep, sizeof cep, "%s", json_string_value(json_object_get(st, "endpoint")));
        char threads[32], bundles[PATH_MAX + 16], cache[PATH_MAX + 32], id[16];
        snprintf(threads, sizeof threads, "%ld", a->threads);
        snprintf(bundles, sizeof bundles, "%s/bundles", out);
        snprintf(cache, sizeof cache, "%s/cache-router", state);
        char *rv[] = {bin[1], "--connect", cep,       "--bind", rep,         "--bundles", bundles,
                      "--id", "router",    "--cache", cache,    "--threads", "1",         NULL};
        snprintf(path, sizeof path, "%s/router.log", logs);
        start_child(&kids[nk++], "router", bin[1], rv, path);
        for (long w = 1; w <= a->workers; w++) {
            snprintf(id, sizeof id, "w%d", (int)w);
            snprintf(cache, sizeof cache, "%s/cache-%s", state, id);
            char *wv[] = {bin[2],    "--connect", cep,         "--id",  id,
                          "--cache", cache,       "--threads", threads, NULL};
            snprintf(path, sizeof path, "%s/worker-%s.log", logs, id);
            char name[32];
            snprintf(name, sizeof name, "worker %s", id);
            start_child(&kids[nk++], name, bin[2], wv, path);
        }
    }
    run_view_t view;
    run_view_init(&view, stdout, !o->json && isatty(1), t0);
    bool told_stop = false, announced = false;
    json_int_t version = 0; /* of the bundles last announced */
    while (st && reap(kids, 1) > 0) {
        json_t *now = load_json(status_path);
        if (now) {
            json_decref(st);
            st = now;
        }
        if (!o->json)
            run_view_update(&view, st, rw_now_s());
        const char *state_name = json_string_value(json_object_get(st, "state"));
        json_int_t built =
            a->keep && state_name && strcmp(state_name, "done") == 0 ? results_version(state) : 0;
        if (built > version) { /* the job, or a domain added since, is done */
            run_view_end(&view);
            if (!o->json) {
                if (announced)
                    printf("version %lld of the bundles, with the new domain:\n", (long long)built);
                summary(out, state, rw_now_s() - t0, 0, false);
                printf("serving: coordinator %s, router %s (Ctrl-C to stop)\n"
                       "add a domain: rewire-worker --connect %s --domain NAME --data FILE\n",
                       cep, rep, cep);
                fflush(stdout);
            }
            announced = true;
            version = built;
        }
        bool working = state_name && strcmp(state_name, "running") == 0 &&
                       !json_is_true(json_object_get(st, "stopping"));
        bool serving = working || (a->keep && state_name && strcmp(state_name, "done") == 0);
        for (int i = 1; i < nk; i++) { /* a clean exit is a SHUTDOWN obeyed */
            child_t *k = &kids[i];
            if (k->status < 0 && reap(k, 1) == 0 && !interrupted && k->status != 0) {
                /* one that crashed comes back under its id: the coordinator
                 * leases its lost task again, and the job does not wait for
                 * ever on a router or worker that is gone */
                bool again = serving && !told_stop && k->restarts < RUN_RESTARTS;
                cli_say("run", "%s exited (status %d)%s; see %s", k->name, k->status,
                        again ? ", starting it again" : "", logs);
                if (again) {
                    k->restarts++;
                    k->status = -1;
                    k->pid = spawn(k->bin, k->argv, k->log);
                }
            }
        }
        bool router = nk > 1 && kids[1].status < 0, trainer = false; /* left to do the work */
        for (int i = 2; i < nk; i++)
            trainer |= kids[i].status < 0;
        /* once a version is built the workers were told the job is done:
         * a domain added since trains on the worker that brought it */
        trainer |= version > 0;
        if ((!router || !trainer) && working && !told_stop && nk > 1) {
            cli_say("run", "%s; stopping the job",
                    !router ? "the router service is gone, and with it the router tasks"
                            : "every worker has exited");
            kill(kids[0].pid, SIGTERM);
            told_stop = true;
        }
        if (interrupted && !told_stop) {
            kill(kids[0].pid, SIGTERM);
            told_stop = true;
        }
        sleep_ms(250);
    }
    if (!st && !interrupted) {
        char why[1024];
        snprintf(path, sizeof path, "%s/coordinator.log", logs);
        if (last_line(path, why, sizeof why))
            cli_say("run", "the coordinator stopped before it served: %s (logs in %s)", why, logs);
        else
            cli_say("run", "the coordinator stopped before it served; see %s", logs);
    }
    if (interrupted && !told_stop)
        kill(kids[0].pid, SIGTERM);
    /* the coordinator told its peers to go; one that never connected is told here */
    wait_children(kids, nk, 500);
    if (st) { /* ipc:// socket files, if that is what they were (and ours) */
        unlink(cep + 6);
        unlink(rep + 6);
    }
    json_t *last = load_json(status_path);
    if (last && !o->json && !announced)
        run_view_update(&view, last, rw_now_s());
    run_view_end(&view);
    /* a Ctrl-C that stops a served job, or comes as its finish completes,
     * stops nothing left to do */
    const char *last_state = json_string_value(json_object_get(last, "state"));
    bool finished = results_version(state) > 0 && last_state && strcmp(last_state, "done") == 0;
    json_decref(last);
    json_decref(st);
    for (int i = 1; i < nk; i++)
        free_child(&kids[i]);
    int rc = kids[0].status == 0 ? 0 : 1;
    if (kids[0].status > 128 && !interrupted) /* not a failure of the job: it carries on */
        fprintf(stderr,
                "rewire run: the coordinator was killed (signal %d); run it again with --out %s "
                "to carry on from its journal\n",
                kids[0].status - 128, a->out);
    if (interrupted && !o->json) {
        if (finished && !announced)
            summary(out, state, rw_now_s() - t0, 0, false);
        if (finished)
            printf("rewire run: stopped; the job is done, its bundles in %s/bundles/\n", a->out);
        else
            printf("rewire run: stopped; run it again with --out %s to carry on\n", a->out);
    } else if (!announced) {
        summary(out, state, rw_now_s() - t0, rc, o->json);
        char why[1024];
        snprintf(path, sizeof path, "%s/coordinator.log", logs);
        if (rc != 0 && kids[0].status <= 128 && last_error(path, why, sizeof why))
            cli_say("run", "the coordinator said: %s", why);
    } else if (rc != 0) /* serving, it failed later (a domain added since) */
        fprintf(stderr,
                "rewire run: the coordinator ended with status %d after version %lld of the "
                "bundles; see %s\n",
                kids[0].status, (long long)version, logs);
    return interrupted ? 128 + (int)interrupted
                       : rc; /* as the shell says a signal, as train does */
}

int cli_run(int argc, char **argv)
{
    const char *cmd = "run";
    coord_prep_opts_t o;
    coord_prep_opts_init(&o);
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    run_args_t a = {0};
    int nrest, rc = coord_prep_parse(cmd, argc - 1, argv + 1, &o, rest, &nrest);
    for (int i = 0; rc == 0 && i < nrest; i++)
        if (strcmp(rest[i], "--help") == 0 || strcmp(rest[i], "-h") == 0) {
            run_usage(stdout);
            goto done;
        }
    if (rc == 0)
        rc = parse_args(cmd, rest, nrest, &a);
    if (rc == 0)
        rc = launch(&a, &o);
done:
    free(rest);
    coord_prep_opts_fini(&o);
    return rc;
}
