/* add_domain.c — benchmark: adding a domain against running the whole job.
 *
 * A real job on this machine, as `rewire run --keep-serving` starts it: a
 * coordinator (kept serving), a router service and W workers, each a forked
 * process running its binary's main, over ipc://, on the synthetic data of
 * the job's domains (all but the last of --domains). Once version 1 of the
 * bundles is written, one more worker brings the last domain
 * (`rewire-worker --domain NAME --data FILE`, its own pairs), and the run
 * waits for version 2. It prints both wall times — the job from the
 * coordinator's start (data stage included) to version 1; the domain from
 * its worker's start to version 2 — and their ratio, then per earlier
 * domain the held-out accuracy of the router and adapter bundles in both
 * versions and the drop. Logs and every output stay in --dir.
 *
 * Usage: bench/add_domain [--domains A,B,...] [--pairs-per-domain N]
 *                         [--workers W] [--threads T] [--config FILE]
 *                         [--dir DIR]
 * (defaults: the five synthetic domains, concise last; the generator's
 * pairs per domain; 2 workers of 1 thread; the domain's worker gets T
 * threads, default the cores; a fresh folder under /tmp). Prints one JSON
 * line last: {"bench":"add_domain", "domains", "added", "job_s", "add_s",
 * "ratio", "accuracy": {bundle: {domain: [v1, v2]}}, "max_drop"}.
 */
#include "cli.h"
#include "coord_cli.h"
#include "log.h"
#include "router_cli.h"
#include "worker_cli.h"

#include <errno.h>
#include <fcntl.h>
#include "report.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int (*main_fn)(int argc, char **argv);

typedef struct args {
    char domains[512];
    const char *pairs, *config, *dir;
    char workers[24], threads[24];
} args_t;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Forks fn(argv) with its output in log; returns the pid. */
static pid_t spawn(main_fn fn, const char *log, char **argv)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0)
        dup2(fd, 1), dup2(fd, 2), close(fd);
    int argc = 0;
    while (argv[argc])
        argc++;
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
}

static int gen(const char *domains, const char *pairs, const char *path, const char *log)
{
    char *v[] = {"gen", "--domains", (char *)domains, "-o", (char *)path, NULL, NULL, NULL};
    if (pairs)
        v[5] = "--pairs-per-domain", v[6] = (char *)pairs;
    int st;
    pid_t pid = spawn(cli_data_gen, log, v);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Waits until status.json says done and results.json has version v; returns
 * the results (caller decrefs), or NULL when the coordinator exited. */
static json_t *await_version(const char *state, pid_t coord, int v)
{
    char st_path[1200], res_path[1200];
    snprintf(st_path, sizeof st_path, "%s/status.json", state);
    snprintf(res_path, sizeof res_path, "%s/results.json", state);
    for (;;) {
        json_t *st = json_load_file(st_path, 0, NULL);
        const char *s = json_string_value(json_object_get(st, "state"));
        bool done = s && strcmp(s, "done") == 0;
        json_decref(st);
        json_t *r = done ? json_load_file(res_path, 0, NULL) : NULL;
        if (json_integer_value(json_object_get(json_object_get(r, "job"), "version")) == v)
            return r;
        json_decref(r);
        if (waitpid(coord, NULL, WNOHANG) == coord)
            return NULL;
        sleep_ms(100);
    }
}

static int parse(int argc, char **argv, args_t *a)
{
    snprintf(a->domains, sizeof a->domains, "arithmetic,compliance,detailed,safety,concise");
    snprintf(a->workers, sizeof a->workers, "2");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(a->threads, sizeof a->threads, "%ld", cores > 0 ? cores : 1);
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "add_domain: %s wants a value\n", f);
            return 2;
        }
        if (strcmp(f, "--domains") == 0)
            snprintf(a->domains, sizeof a->domains, "%s", v);
        else if (strcmp(f, "--pairs-per-domain") == 0)
            a->pairs = v;
        else if (strcmp(f, "--workers") == 0)
            snprintf(a->workers, sizeof a->workers, "%s", v);
        else if (strcmp(f, "--threads") == 0)
            snprintf(a->threads, sizeof a->threads, "%s", v);
        else if (strcmp(f, "--config") == 0)
            a->config = v;
        else if (strcmp(f, "--dir") == 0)
            a->dir = v;
        else {
            fprintf(stderr, "add_domain: unknown option %s\n", f);
            return 2;
        }
        i++;
    }
    if (!strchr(a->domains, ',')) {
        fprintf(stderr, "add_domain: --domains wants at least three names, the last added\n");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    args_t a = {0};
    if (parse(argc, argv, &a))
        return 2;
    char tmpl[] = "/tmp/rw-add-domain.XXXXXX", dir[600], state[700], out[700], ep[800];
    char job_data[700], new_data[700], log[800], cfg[700];
    snprintf(dir, sizeof dir, "%s", a.dir ? a.dir : mkdtemp(tmpl));
    if (a.dir && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "add_domain: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(ep, sizeof ep, "ipc://%s/coord.sock", dir);
    snprintf(job_data, sizeof job_data, "%s/job.jsonl", dir);
    snprintf(new_data, sizeof new_data, "%s/new.jsonl", dir);
    char *added = strrchr(a.domains, ',') + 1;
    added[-1] = '\0';
    snprintf(log, sizeof log, "%s/gen.log", dir);
    if (gen(a.domains, a.pairs, job_data, log) < 0 || gen(added, a.pairs, new_data, log) < 0) {
        fprintf(stderr, "add_domain: cannot make the data (see %s)\n", log);
        return 1;
    }
    snprintf(cfg, sizeof cfg, "%s", a.config ? a.config : "");
    char *cv[] = {"rewire-coordinator",
                  "serve",
                  "--state",
                  state,
                  "--out",
                  out,
                  "--bind",
                  ep,
                  "--data",
                  job_data,
                  "--keep-serving",
                  a.config ? "--config" : NULL,
                  cfg,
                  NULL};
    double t0 = rw_now_s();
    snprintf(log, sizeof log, "%s/coordinator.log", dir);
    pid_t coord = spawn(coord_main, log, cv);
    pid_t kids[66];
    int nk = 0;
    char bundles[800], cache[800], id[16];
    snprintf(bundles, sizeof bundles, "%s/bundles", out);
    snprintf(cache, sizeof cache, "%s/cache-router", dir);
    char rep[800];
    snprintf(rep, sizeof rep, "ipc://%s/router.sock", dir);
    char *rv[] = {"rewire-router", "--connect", ep,     "--bind", rep,
                  "--bundles",     bundles,     "--id", "router", "--cache",
                  cache,           "--threads", "1",    NULL};
    snprintf(log, sizeof log, "%s/router.log", dir);
    kids[nk++] = spawn(router_main, log, rv);
    for (int w = 1; w <= atoi(a.workers) && nk < 64; w++) {
        char wcache[800];
        snprintf(id, sizeof id, "w%d", w);
        snprintf(wcache, sizeof wcache, "%s/cache-%s", dir, id);
        char *wv[] = {"rewire-worker", "--connect", ep,          "--id", id,
                      "--cache",       wcache,      "--threads", "1",    NULL};
        snprintf(log, sizeof log, "%s/worker-%s.log", dir, id);
        kids[nk++] = spawn(worker_main, log, wv);
    }
    int rc = 1;
    json_t *v1 = await_version(state, coord, 1), *v2 = NULL;
    double job_s = rw_now_s() - t0;
    if (!v1) {
        fprintf(stderr, "add_domain: the job failed (see %s)\n", dir);
        goto done;
    }
    printf("job of %s: version 1 in %.1f s\n", a.domains, job_s);
    fflush(stdout);
    double t1 = rw_now_s();
    snprintf(cache, sizeof cache, "%s/cache-new", dir);
    char *nv[] = {"rewire-worker", "--connect", ep,         "--id", "new",    "--cache", cache,
                  "--threads",     a.threads,   "--domain", added,  "--data", new_data,  NULL};
    snprintf(log, sizeof log, "%s/worker-new.log", dir);
    kids[nk++] = spawn(worker_main, log, nv);
    v2 = await_version(state, coord, 2);
    double add_s = rw_now_s() - t1;
    if (!v2) {
        fprintf(stderr, "add_domain: the domain was not added (see %s)\n", dir);
        goto done;
    }
    printf("domain %s added: version 2 in %.1f s (%.2f of the job)\n", added, add_s, add_s / job_s);
    json_t *acc = json_object();
    double max_drop = 0;
    const char *kinds[] = {"router", "adapter"};
    printf("%-12s %-8s %8s %8s %8s\n", "domain", "bundle", "v1", "v2", "drop");
    for (int k = 0; k < 2; k++) {
        json_t *per = json_object();
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(json_object_get(v1, "job"), "domains"), i, d)
        {
            const char *name = json_string_value(d);
            double x = rw_report_accuracy(v1, kinds[k], name, 0),
                   y = rw_report_accuracy(v2, kinds[k], name, 0);
            printf("%-12s %-8s %8.4f %8.4f %+8.4f\n", name, kinds[k], x, y, x - y);
            if (x - y > max_drop)
                max_drop = x - y;
            json_object_set_new(per, name, json_pack("[f,f]", x, y));
        }
        json_object_set_new(acc, kinds[k], per);
    }
    printf("%-12s %-8s %8s %8.4f  (baseline %.4f)\n", added, "router", "-",
           rw_report_accuracy(v2, "router", added, 0),
           rw_report_accuracy(v2, "baseline", added, 0));
    json_t *line = json_pack("{s:s,s:s,s:s,s:f,s:f,s:f,s:o,s:f}", "bench", "add_domain", "domains",
                             a.domains, "added", added, "job_s", job_s, "add_s", add_s, "ratio",
                             add_s / job_s, "accuracy", acc, "max_drop", max_drop);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", text);
    free(text);
    json_decref(line);
    rc = 0;
done:
    json_decref(v1);
    json_decref(v2);
    kill(coord, SIGTERM);
    for (int waited = 0; waited < 10000 && waitpid(coord, NULL, WNOHANG) == 0; waited += 50)
        sleep_ms(50);
    kill(coord, SIGKILL);
    waitpid(coord, NULL, 0);
    for (int i = 0; i < nk; i++) {
        for (int waited = 0; waited < 3000 && waitpid(kids[i], NULL, WNOHANG) == 0; waited += 50)
            sleep_ms(50);
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    fprintf(stderr, "add_domain: logs and outputs in %s\n", dir);
    return rc;
}
