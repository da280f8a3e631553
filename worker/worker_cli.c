/* worker_cli.c — `rewire-worker`; see worker_cli.h. */
#include "worker_cli.h"

#include "afile.h"
#include "args.h"
#include "bring.h"
#include "err.h"
#include "health.h"
#include "log.h"
#include "wire.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char agent_flags_help[] =
    "  --connect ENDPOINT     the coordinator (tcp://HOST:5555, ipc://PATH)\n"
    "  --id NAME              worker id (HOST:PID)\n"
    "  --threads N            threads to train with (1)\n"
    "  --caps LIST            what it runs: train, router, or both (a worker: train;\n"
    "                         the router service: router)\n"
    "  --cache DIR            artifact cache (rewire-cache-PID in $TMPDIR or /tmp,\n"
    "                         removed when it exits)\n"
    "  --cache-max SIZE       most the cache keeps, least recently used out first:\n"
    "                         bytes, or with K, M, G (10G; 0: no limit)\n"
    "  --cache-grace S        keeps what was used in the last S seconds over the limit,\n"
    "                         for another worker sharing the cache (60)\n"
    "  --timeout-ms N         a coordinator silent this long is gone (5 heartbeats)\n"
    "  --backoff-max-ms N     longest wait between reconnects (5000)\n"
    "  --server-key FILE      the coordinator's public key (NAME.pub), if it uses CURVE\n"
    "  --key FILE             this process's own key pair, for a coordinator's --allow\n";

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: rewire-worker --connect ENDPOINT [options]\n"
        "       rewire-worker --connect ENDPOINT --domain NAME --data FILE [--strict] [options]\n"
        "       rewire-worker health --connect ENDPOINT --id NAME [--timeout-ms N] [--quiet]\n\n"
        "Registers with a coordinator, trains the tasks it leases, uploads the results,\n"
        "and reconnects if the coordinator goes away, until it is told to shut down.\n"
        "With --domain it brings a new domain to the job (running or finished): FILE is\n"
        "read as the job's --data is (a normalized file keeps its split, any other is\n"
        "imported with `rewire data import`'s checks); its held-out pairs and train prompts\n"
        "go to the coordinator, its train pairs stay here, and the domain's models train\n"
        "here; it exits 0 once a version of the bundles holds the domain. A refused\n"
        "domain (its name is taken, its data is bad) exits 1 with why. Its id is\n"
        "HOST:NAME unless --id says otherwise, so the same command run again after it\n"
        "stopped takes its domain's work back.\n"
        "health asks the coordinator whether worker NAME is registered and live\n"
        "(exit 0) or not (exit 1); give workers an --id for it.\n\n%s"
        "  --domain NAME          the new domain's name\n"
        "  --data FILE            its preference pairs (any format data import reads)\n"
        "  --strict               any bad record in FILE refuses the domain\n",
        agent_flags_help);
}

/* A size in bytes, with an optional K, M or G (powers of 1024). */
static int size_arg(const char *prog, const char *flag, const char *val, uint64_t *out)
{
    char *end = NULL;
    int shift = -1;
    unsigned long long v = 0;
    errno = 0;
    if (val && *val >= '0' && *val <= '9') {
        v = strtoull(val, &end, 10);
        const char *units = "kmg", *u = *end ? strchr(units, tolower((unsigned char)*end)) : NULL;
        shift = !*end ? 0 : u && *u && !end[1] ? 10 * (int)(u - units + 1) : -1;
    }
    if (errno || shift < 0 || v > (UINT64_MAX >> shift)) {
        fprintf(stderr, "%s: %s wants a size in bytes, with K, M or G if you like (10G)\n", prog,
                flag);
        return 2;
    }
    *out = (uint64_t)v << shift;
    return 0;
}

/* Whether s is a name the wire takes (worker ids, domains): the table's
 * check of a WELCOME that carries it. */
static bool name_ok(const char *s)
{
    msg_t m;
    msg_init(&m, MSG_WELCOME);
    m.welcome.worker_id = s;
    m.welcome.session = 1;
    m.welcome.heartbeat_ms = 1000;
    return msg_check(&m, NULL) == 0;
}

int agent_parse_flags(const char *prog, int argc, char **argv, agent_opts_t *o, char **rest,
                      int *nrest)
{
    *nrest = 0;
    o->cache_max = AGENT_CACHE_MAX_DEFAULT;
    o->cache_grace_s = AGENT_CACHE_GRACE_DEFAULT;
    static const char *const paths[] = {"--connect",    "--id",   "--cache", "--key",
                                        "--server-key", "--caps", NULL};
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i], *val = rw_arg_next(argc, argv, i);
        long v = 0;
        int rc = rw_arg_missing(prog, f, val, paths);
        if (rc)
            return rc;
        if (strcmp(f, "--connect") == 0) {
            o->connect = argv[++i];
            rc = wire_endpoint_arg(prog, f, val, false);
        } else if (strcmp(f, "--id") == 0)
            o->id = argv[++i];
        else if (strcmp(f, "--cache") == 0)
            o->cache_dir = argv[++i];
        else if (strcmp(f, "--key") == 0)
            o->curve.key_file = argv[++i];
        else if (strcmp(f, "--server-key") == 0)
            o->curve.server_file = argv[++i];
        else if (strcmp(f, "--cache-max") == 0) {
            if (!(rc = size_arg(prog, f, val, &o->cache_max)))
                i++;
        } else if (strcmp(f, "--caps") == 0) {
            static __thread char buf[256];
            static __thread const char *caps[8];
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            o->n_caps = 0;
            for (char *sv, *c = strtok_r(buf, ",", &sv); c && o->n_caps < 8;
                 c = strtok_r(NULL, ",", &sv)) {
                if (strcmp(c, "train") != 0 && strcmp(c, "router") != 0) {
                    fprintf(stderr, "%s: --caps takes train and router, not '%s'\n", prog, c);
                    return 2;
                }
                caps[o->n_caps++] = c;
            }
            o->caps = caps;
            if (!o->n_caps) {
                fprintf(stderr, "%s: --caps wants train, router or both\n", prog);
                return 2;
            }
        } else if (strcmp(f, "--threads") == 0) {
            if (!(rc = rw_arg_flag_long(prog, f, val, 1, 1024, &v)))
                o->threads = (int)v, i++;
        } else if (strcmp(f, "--cache-grace") == 0) {
            if (!(rc = rw_arg_flag_long(prog, f, val, 0, 86400 * 365, &v)))
                o->cache_grace_s = (uint32_t)v, i++;
        } else if (strcmp(f, "--timeout-ms") == 0) {
            if (!(rc = rw_arg_flag_long(prog, f, val, 20, 86400000, &v)))
                o->timeout_ms = (uint32_t)v, i++;
        } else if (strcmp(f, "--backoff-max-ms") == 0) {
            if (!(rc = rw_arg_flag_long(prog, f, val, 10, 3600000, &v)))
                o->backoff_max_ms = (uint32_t)v, i++;
        } else {
            rest[(*nrest)++] = argv[i];
        }
        if (rc)
            return rc;
    }
    char why[512];
    if (curve_opts_check(&o->curve, false, why, sizeof why) < 0) {
        fprintf(stderr, "%s: %s\n", prog, why);
        return 2;
    }
    if (o->id && !name_ok(o->id)) {
        fprintf(stderr, "%s: --id wants 1 to 64 of A-Z a-z 0-9 . _ : - (first alphanumeric)\n",
                prog);
        return 2;
    }
    return 0;
}

/* Removes the rewire-cache-PID folders in tmp of this user's processes
 * that are gone: one killed (-9, the OOM killer) never removed its own, and
 * a restart makes a new one, so nobody else ever would. A PID another live
 * process has taken since keeps its folder; that errs on the side of
 * keeping. */
#define OWNER_FILE ".rewire-owner" /* in a default cache: the host that made it */

/* This host's name into buf ("" when it cannot be had). */
static void host_name(char *buf, size_t n)
{
    if (gethostname(buf, n) != 0)
        buf[0] = '\0';
    buf[n - 1] = '\0';
}

/* Whether the folder path was made by agent_own_cache on this host: a
 * folder given with --cache, or one another host or container made in a
 * shared TMPDIR (whose PIDs mean nothing here), has no such mark. */
static bool made_here(const char *path, const char *host)
{
    char p[4200], buf[300] = "";
    snprintf(p, sizeof p, "%s/" OWNER_FILE, path);
    FILE *f = fopen(p, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return ok && host[0] && strcmp(buf, host) == 0;
}

static void sweep_dead_caches(const char *tmp, const char *host)
{
    DIR *d = opendir(tmp);
    if (!d)
        return;
    const char *prefix = "rewire-cache-";
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *num = e->d_name + plen;
        if (strncmp(e->d_name, prefix, plen) != 0 || !*num || *num == '0' ||
            strspn(num, "0123456789") != strlen(num) || strlen(num) > 9)
            continue;
        long pid = strtol(num, NULL, 10);
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", tmp, e->d_name);
        if (pid == (long)getpid() || lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) ||
            st.st_uid != getuid() || !made_here(path, host) || kill((pid_t)pid, 0) == 0 ||
            errno != ESRCH)
            continue;
        rw_remove_tree(path);
        RW_INFO("worker", "removed %s: the default cache of process %ld, which is gone", path, pid);
    }
    closedir(d);
}

bool agent_own_cache(agent_opts_t *o, char *buf, size_t n)
{
    if (o->cache_dir)
        return false;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char host[256];
    host_name(host, sizeof host);
    sweep_dead_caches(tmp, host);
    snprintf(buf, n, "%s/rewire-cache-%ld", tmp, (long)getpid());
    o->cache_dir = buf;
    /* marked as this host's own, for the sweep of a later start */
    char mark[4200];
    snprintf(mark, sizeof mark, "%s/" OWNER_FILE, buf);
    FILE *f = mkdir(buf, 0700) == 0 || errno == EEXIST ? fopen(mark, "w") : NULL;
    if (f) {
        fprintf(f, "%s\n", host);
        fclose(f);
    }
    return true;
}

static agent_t *signalled;

static void on_signal(int sig)
{
    (void)sig;
    if (signalled)
        agent_stop(signalled);
}

void agent_catch_signals(agent_t *a)
{
    signalled = a;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: zmq_poll returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int worker_main(int argc, char **argv)
{
    const char *prog = "rewire-worker";
    if (argc > 1 && strcmp(argv[1], "health") == 0)
        return health_main(prog, "coordinator", "tcp://127.0.0.1:5555", true, argc - 2, argv + 2);
    char **rest = calloc((size_t)argc + 1, sizeof *rest), cache[256];
    const char *caps[] = {"train"}, *domain = NULL, *data = NULL;
    bool strict = false, own_cache = false;
    agent_opts_t o = {.caps = caps, .n_caps = 1, .threads = 1};
    int nrest, rc = agent_parse_flags(prog, argc - 1, argv + 1, &o, rest, &nrest);
    for (int i = 0; rc == 0 && i < nrest; i++) {
        if (strcmp(rest[i], "--help") == 0 || strcmp(rest[i], "-h") == 0) {
            usage(stdout);
            goto done;
        }
        static const char *const paths[] = {"--domain", "--data", NULL};
        if ((rc = rw_arg_missing(prog, rest[i], rw_arg_next(nrest, rest, i), paths))) {
            break;
        } else if (strcmp(rest[i], "--domain") == 0) {
            domain = rest[++i];
        } else if (strcmp(rest[i], "--data") == 0) {
            data = rest[++i];
        } else if (strcmp(rest[i], "--strict") == 0) {
            strict = true;
        } else {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, rest[i]);
            rc = 2;
        }
    }
    if (rc == 0 && !o.connect) {
        fprintf(stderr, "%s: no --connect ENDPOINT\n", prog);
        rc = 2;
    }
    if (rc == 0 && (!domain != !data || (strict && !domain))) {
        fprintf(stderr, "%s: --domain NAME and --data FILE go together (--strict with them)\n",
                prog);
        rc = 2;
    }
    bool trains = false;
    for (size_t i = 0; i < o.n_caps; i++)
        trains |= strcmp(o.caps[i], "train") == 0;
    if (rc == 0 && domain && !trains) {
        fprintf(stderr, "%s: --domain needs the train capability: its tasks run here\n", prog);
        rc = 2;
    }
    if (rc == 0 && domain && !name_ok(domain)) {
        fprintf(stderr, "%s: --domain wants 1 to 64 of A-Z a-z 0-9 . _ : - (first alphanumeric)\n",
                prog);
        rc = 2;
    }
    if (rc)
        goto done;
    if (o.curve.key_file && !o.curve.server_file) { /* it would connect in the clear */
        fprintf(stderr,
                "%s: --key is this worker's key for a coordinator that uses CURVE: give its "
                "public key with --server-key too\n",
                prog);
        rc = 2;
        goto done;
    }
    own_cache = agent_own_cache(&o, cache, sizeof cache);
    if (domain) {
        bring_t b;
        char why[512];
        if (bring_prepare(domain, data, strict, o.cache_dir, &b, why, sizeof why) < 0) {
            fprintf(stderr, "%s: %s\n", prog, why);
            rc = 1;
            goto done;
        }
        o.domain = domain;
        o.domain_pairs = b.pairs;
        o.domain_bytes = b.bytes;
        o.domain_shard = b.shard;
        o.domain_upload = b.upload;
    }
    int err;
    agent_t *a = agent_new(&o, &err);
    if (!a) {
        fprintf(stderr, "%s: cannot start: %s\n", prog, rw_strerror(err));
        rc = 1;
        goto done;
    }
    agent_catch_signals(a);
    rc = agent_run(a) < 0 ? 1 : 0;
    agent_catch_signals(NULL);
    if (rc && agent_refusal(a))
        fprintf(stderr, "%s: refused: %s\n", prog, agent_refusal(a));
    agent_destroy(&a);
done:
    if (own_cache)
        rw_remove_tree(cache);
    free(rest);
    return rc;
}
