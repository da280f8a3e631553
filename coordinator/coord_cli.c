/* coord_cli.c — `rewire-coordinator prepare|serve`; see coord_cli.h. */
#include "coord_cli.h"

#include "afile.h"
#include "args.h"
#include "bundle.h"
#include "curve.h"
#include "err.h"
#include "health.h"
#include "job.h"
#include "lines.h"
#include "log.h"
#include "prepare.h"
#include "service.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rewire-coordinator serve --state DIR --out DIR [options]\n"
            "       rewire-coordinator prepare --state DIR [data options]\n"
            "       rewire-coordinator health [--connect ENDPOINT] [--timeout-ms N] [--quiet]\n\n"
            "serve runs a whole job: the data stage (unless DIR holds it already: then its\n"
            "files are checked against the sums DIR/prepared-from recorded), then\n"
            "the tasks on whatever workers connect, then the bundles and the report.\n"
            "prepare runs the data stage alone: data.jsonl, tokenizer.json, stats.json.\n"
            "health asks a running coordinator (tcp://127.0.0.1:5555) whether it is up;\n"
            "it exits 0 if it answers and its job has not failed, 1 otherwise.\n"
            "A worker started with --domain NAME --data FILE adds a domain to the job, running\n"
            "or finished (--keep-serving): its tasks and a router update run, and the bundles\n"
            "come again as the next version, OUT/bundles/vN (OUT/bundles/<kind> is the latest).\n\n"
            "  --state DIR            the coordinator's state directory (journal, artifacts)\n"
            "  --out DIR              where bundles/ and the report go (serve)\n"
            "  --bind ENDPOINT        where workers connect (tcp://127.0.0.1:5555)\n"
            "  --config FILE          job configuration: {\"all\": {...}, \"seed\": {...}, ...},\n"
            "                         fragments of task specs by kind (see coordinator/job.h)\n"
            "  --heartbeat-ms N       heartbeat period, both ways (1000)\n"
            "  --timeout-ms N         a worker silent this long is lost (5 heartbeats)\n"
            "  --lease-ms N           a lease's deadline (3600000)\n"
            "  --max-attempts N       failed leases of one task before the job fails (3)\n"
            "  --keep-serving         stay up after the job is done, until a signal: serve\n"
            "                         route and score requests and take new domains (workers\n"
            "                         without --caps router are told the job is done)\n"
            "  --stop-peers           a signal also tells the connected workers and router\n"
            "                         service to go (as `rewire run` does); without it they\n"
            "                         wait, and register again with the coordinator started\n"
            "                         next, which carries on from its journal\n"
            "%s"
            "data options:\n%s",
            curve_server_help, coord_prep_flags_help);
}

typedef struct args {
    const char *state, *out, *bind, *config;
    curve_opts_t curve;
    long hb, timeout, lease, attempts;
    int keep, stop_peers;
} args_t;

static int parse(int n, char **v, args_t *a)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        const char *f = v[i], *val = rw_arg_next(n, v, i);
        const char **s = strcmp(f, "--state") == 0    ? &a->state
                         : strcmp(f, "--out") == 0    ? &a->out
                         : strcmp(f, "--bind") == 0   ? &a->bind
                         : strcmp(f, "--config") == 0 ? &a->config
                         : strcmp(f, "--key") == 0    ? &a->curve.key_file
                         : strcmp(f, "--allow") == 0  ? &a->curve.allow
                                                      : NULL;
        if (s && val) {
            *s = val;
            i++;
            if (s == &a->bind)
                rc = wire_endpoint_arg("rewire-coordinator", f, val, true);
        } else if (strcmp(f, "--heartbeat-ms") == 0) {
            rc = rw_arg_flag_long("rewire-coordinator", f, val, 10, 600000, &a->hb), i++;
        } else if (strcmp(f, "--timeout-ms") == 0) {
            rc = rw_arg_flag_long("rewire-coordinator", f, val, 20, 86400000, &a->timeout), i++;
        } else if (strcmp(f, "--lease-ms") == 0) {
            rc = rw_arg_flag_long("rewire-coordinator", f, val, 1000, 2592000000L, &a->lease), i++;
        } else if (strcmp(f, "--max-attempts") == 0) {
            rc = rw_arg_flag_long("rewire-coordinator", f, val, 1, 1000, &a->attempts), i++;
        } else if (strcmp(f, "--keep-serving") == 0) {
            a->keep = 1;
        } else if (strcmp(f, "--stop-peers") == 0) {
            a->stop_peers = 1;
        } else {
            fprintf(stderr, "rewire-coordinator: unknown option '%s'%s\n", f,
                    s ? " (it wants a value)" : "");
            rc = 2;
        }
    }
    return rc;
}

static bool prepared(const char *state)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/data.jsonl", state);
    if (access(p, R_OK) != 0)
        return false;
    snprintf(p, sizeof p, "%s/tokenizer.json", state);
    return access(p, R_OK) == 0;
}

/* Holds the state directory for this process (an flock on STATE/lock,
 * released when it exits): two coordinators on one state would interleave
 * their journal records and leave a journal no replay can read. Returns 0,
 * or 1 having said who holds it. */
static int lock_state(const char *dir)
{
    char path[PATH_MAX], pid[32] = "";
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "rewire-coordinator: cannot make %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "rewire-coordinator: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ssize_t n = read(fd, pid, sizeof pid - 1);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        fprintf(stderr,
                "rewire-coordinator: the state directory %s is in use by another coordinator%s%s%s "
                "(%s)\n",
                dir, *pid ? " (pid " : "", pid, *pid ? ")" : "",
                errno == EWOULDBLOCK ? "one job, one coordinator" : strerror(errno));
        close(fd);
        return 1;
    }
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        rw_log(RW_LOG_WARN, "coordinator", "cannot write its pid into %s", path);
    /* holding the lock, no one else writes here: a file half-written by a
     * coordinator killed mid-write (data.jsonl.tmp.XXXXXX) is litter */
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (t && strlen(t) == 11) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path) == 0)
                rw_log(RW_LOG_INFO, "coordinator", "removed %s, left by an interrupted write",
                       path);
        }
    }
    if (d)
        closedir(d);
    return 0; /* fd stays open, and the lock held, until the process ends */
}

/* The files of a list "a,b,c" with each one's full path where it exists
 * (so ../x.jsonl and /home/u/x.jsonl are one file), into out. */
static void canonical_list(const char *list, char *out, size_t n)
{
    char buf[4096], *save = NULL;
    snprintf(buf, sizeof buf, "%s", list);
    out[0] = '\0';
    for (char *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        char real[PATH_MAX];
        size_t used = strlen(out);
        int k =
            snprintf(out + used, n - used, "%s%s", used ? "," : "", realpath(f, real) ? real : f);
        if (k < 0 || (size_t)k >= n - used)
            break; /* the rest would not fit: a list cut alike each time */
    }
}

/* What the data options name ("synthetic", or the files), into desc. */
static void data_desc(const coord_prep_opts_t *po, char *desc, size_t n)
{
    snprintf(desc, n, "synthetic");
    for (size_t i = 0; i < po->ndata; i++) {
        size_t used = i ? strlen(desc) : 0;
        snprintf(desc + used, n - used, "%s%s", i ? "," : "", po->data[i]);
    }
    if (po->ndata) {
        char given[1024];
        snprintf(given, sizeof given, "%s", desc);
        canonical_list(given, desc, n);
    }
}

/* Runs the data stage into po->state_dir, its record (prepared-from)
 * written first, and again with the sums of the files once they are
 * there: a stage stopped after it wrote its files still leaves the record
 * beside them. Returns 0 with *p filled (coord_prep_fini frees it), or 1
 * having said why. */
static int prepare_state(const coord_prep_opts_t *po, const char *desc, coord_prep_t *p)
{
    memset(p, 0, sizeof *p); /* lock_state made the folder */
    int rc = coord_prep_record_save(po->state_dir, desc, po, false);
    if (rc == 0 && coord_prepare(po, p) < 0)
        return 1;
    if (rc == 0 && (rc = coord_prep_record_save(po->state_dir, desc, po, true)) < 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/data.jsonl", po->state_dir);
        unlink(path); /* not prepared: the next start prepares it again */
    }
    if (rc < 0) { /* a state prepared without it could not be checked when it is used */
        fprintf(stderr, "rewire-coordinator: cannot write %s/prepared-from: %s\n", po->state_dir,
                rw_strerror(rc));
        return 1;
    }
    return 0;
}

/* The configuration the job in state was started with (its journal's job
 * record), or NULL: no journal, or one an older rewire wrote. */
static json_t *journal_config(const char *state)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/journal.jsonl", state);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL; /* none; or a FIFO, which would hold open(), and which the replay refuses */
    int err;
    rw_lines_t *r = rw_lines_new(path, 0, &err);
    const char *line;
    size_t len;
    json_t *config = NULL;
    for (int i = 0; r && !config && i < 16 && rw_lines_next(r, &line, &len) == 1; i++) {
        json_t *rec = json_loadb(line, len, 0, NULL);
        const char *ev = json_string_value(json_object_get(rec, "ev"));
        if (ev && strcmp(ev, "job") == 0 && json_is_object(json_object_get(rec, "config")))
            config = json_incref(json_object_get(rec, "config"));
        json_decref(rec);
    }
    rw_lines_destroy(&r);
    return config;
}

static int serve(coord_prep_opts_t *po, const args_t *a)
{
    char why[512] = "", desc[1024];
    double prep_s = 0;
    int rc;
    data_desc(po, desc, sizeof desc);
    json_t *config = NULL; /* read first: a bad one leaves no prepared state behind */
    if (a->config) {
        json_error_t jerr;
        /* a FIFO would wait for a writer, and a folder reads as empty */
        FILE *f = rw_fopen_regular(a->config, &rc);
        if (!f) {
            fprintf(stderr, "rewire-coordinator: %s: %s\n", a->config, rw_strerror(rc));
            return 2;
        }
        /* a key given twice ("all" twice) is ambiguous: the last one won */
        config = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
        fclose(f);
        if (!config || !json_is_object(config)) {
            fprintf(stderr, "rewire-coordinator: %s:%d: %s\n", a->config, jerr.line,
                    config ? "not a JSON object" : jerr.text);
            json_decref(config);
            return 2;
        }
    } else if ((config = journal_config(a->state))) {
        rw_log(RW_LOG_INFO, "coordinator", "no --config: carrying on with the job's own");
    }
    if (!prepared(a->state)) {
        coord_prep_t p;
        double t0 = rw_now_s();
        if (prepare_state(po, desc, &p) != 0) {
            coord_prep_fini(&p);
            json_decref(config);
            return 1;
        }
        coord_prep_print(po, &p, stdout);
        fflush(stdout);
        coord_prep_fini(&p);
        prep_s = rw_now_s() - t0;
    } else {
        char was_real[1024], differ[256];
        coord_prep_record_t was;
        if (coord_prep_record_load(a->state, &was, why, sizeof why) < 0) {
            fprintf(stderr, "rewire-coordinator: %s\n", why);
            json_decref(config);
            return 1;
        }
        canonical_list(was.data, was_real, sizeof was_real); /* written by an older rewire */
        if (was.data[0] && strcmp(was.data, desc) != 0 && strcmp(was_real, desc) != 0) {
            fprintf(stderr,
                    "rewire-coordinator: %s holds a job prepared from %s, not from %s: run it "
                    "with the same data, or give another folder\n",
                    a->state, was.data, desc);
            json_decref(config);
            return 2;
        }
        if (coord_prep_opts_differ(po, was.opts, differ, sizeof differ)) {
            fprintf(stderr,
                    "rewire-coordinator: %s holds a job prepared with %s: run it with the same "
                    "options (or none), or give another folder\n",
                    a->state, differ);
            json_decref(config);
            return 2;
        }
        if (!was.summed)
            rw_log(RW_LOG_INFO, "coordinator",
                   "%s/prepared-from records no checksums (a state of an older rewire): its "
                   "files are used unchecked",
                   a->state);
        else if (coord_prep_record_check(a->state, &was, why, sizeof why) < 0) {
            fprintf(stderr, "rewire-coordinator: %s\n", why);
            json_decref(config);
            return 1;
        }
        rw_log(RW_LOG_INFO, "coordinator", "using the data already prepared in %s", a->state);
    }
    coord_job_opts_t jo = {.state_dir = a->state,
                           .out_dir = a->out,
                           .config = config,
                           .seed = po->seed,
                           .data = desc,
                           .prepare_s = prep_s};
    coord_job_t *job = NULL;
    coord_t *c = NULL;
    if ((rc = coord_job_new(&jo, &job, why, sizeof why)) < 0)
        goto fail;
    coord_opts_t co = {.bind = a->bind ? a->bind : "tcp://127.0.0.1:5555",
                       .state_dir = a->state,
                       .heartbeat_ms = (uint32_t)a->hb,
                       .timeout_ms = (uint32_t)a->timeout,
                       .lease_ms = (uint64_t)a->lease,
                       .max_attempts = (uint32_t)a->attempts,
                       .keep_serving = a->keep,
                       .stop_peers = a->stop_peers,
                       .curve = a->curve};
    if ((rc = coord_new(&co, &coord_job_ops, job, &c, why, sizeof why)) < 0)
        goto fail;
    rc = coord_run(c);
    coord_destroy(&c);
    coord_job_destroy(&job);
    json_decref(config);
    return rc < 0 ? 1 : rc;

fail:
    fprintf(stderr, "rewire-coordinator: %s\n", why);
    coord_job_destroy(&job);
    json_decref(config);
    return 1;
}

int coord_main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "health") == 0)
        return health_main("rewire-coordinator", "coordinator", "tcp://127.0.0.1:5555", false,
                           argc - 2, argv + 2);
    bool is_serve = argc > 1 && strcmp(argv[1], "serve") == 0;
    if (argc < 2 || (!is_serve && strcmp(argv[1], "prepare") != 0)) {
        usage(stderr);
        return 2;
    }
    coord_prep_opts_t o;
    coord_prep_opts_init(&o);
    char **rest = calloc((size_t)argc, sizeof *rest);
    args_t a = {0};
    int nrest, rc = coord_prep_parse("coordinator", argc - 2, argv + 2, &o, rest, &nrest);
    for (int i = 0; i < nrest && rc == 0; i++)
        if (strcmp(rest[i], "--help") == 0) {
            usage(stdout);
            goto done;
        }
    if (rc == 0)
        rc = parse(nrest, rest, &a);
    if (rc == 0 && !a.state) {
        fprintf(stderr, "rewire-coordinator: no --state DIR\n");
        rc = 2;
    }
    if (rc == 0 && is_serve && !a.out) {
        fprintf(stderr, "rewire-coordinator: no --out DIR\n");
        rc = 2;
    }
    char why[512];
    if (rc == 0 && curve_opts_check(&a.curve, true, why, sizeof why) < 0) {
        fprintf(stderr, "rewire-coordinator: %s\n", why);
        rc = 2;
    }
    if (rc)
        goto done;
    o.state_dir = a.state;
    if ((rc = lock_state(a.state)) != 0)
        goto done;
    if (is_serve) {
        char bundles[PATH_MAX];
        snprintf(bundles, sizeof bundles, "%s/bundles", a.out);
        rw_bundle_remove_litter(bundles); /* of a finish this state's last run did not end */
        rc = serve(&o, &a);
    } else {
        coord_prep_t p;
        char desc[1024];
        data_desc(&o, desc, sizeof desc);
        rc = prepare_state(&o, desc, &p);
        if (rc == 0 && o.json) {
            json_t *j = coord_prep_json(&o, &p);
            json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            printf("\n");
            json_decref(j);
        } else if (rc == 0) {
            coord_prep_print(&o, &p, stdout);
        }
        coord_prep_fini(&p);
    }
done:
    free(rest);
    coord_prep_opts_fini(&o);
    return rc;
}
