/* test_cmd_run.c — `rewire run` (a whole job), `data stats` and `tokenizer`
 * from the outside. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"
#include "svc_support.h"

TestSuite(cli_run, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

static int run(char **out, char **err, const char *fmt, const char *a, const char *b)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, rwt_bin("rewire"), a, b);
    return rwt_run(cmd, out, err);
}

/* `rewire run` needs the services beside it. */
static void require_services(void)
{
    cr_assert_eq(access(rwt_bin("rewire-coordinator"), X_OK), 0, "rewire-coordinator not built");
    cr_assert_eq(access(rwt_bin("rewire-worker"), X_OK), 0, "rewire-worker not built");
    cr_assert_eq(access(rwt_bin("rewire-router"), X_OK), 0, "rewire-router not built");
}

Test(cli_run, whole_job_on_tiny_models, .timeout = 120)
{
    require_services();
    char *out, *err;
    const char *cfg = svc_tiny_config(rwt_dir, 3, 3);
    char args[1024];
    snprintf(args, sizeof args, " --pairs-per-domain 40 --vocab 1000 --workers 2 --config %s", cfg);
    int rc = run(&out, &err, "%s run --out %s%s", rwt_dir, args);
    cr_assert_eq(rc, 0, "%s\n%s", out, err);
    cr_assert(strstr(out, "job done"), "%s", out);
    for (const char *k = "baseline\0moe\0router\0adapter\0"; *k; k += strlen(k) + 1) {
        char p[700];
        snprintf(p, sizeof p, "%s/bundles/%s/manifest.json", rwt_dir, k);
        cr_assert_eq(access(p, F_OK), 0, "no %s", p);
        cr_assert(strstr(out, k), "bundle %s missing from:\n%s", k, out);
    }
    cr_assert_eq(access(rwt_path(rwt_dir, "report.md"), F_OK), 0);
    cr_assert_eq(access(rwt_path(rwt_dir, "logs/coordinator.log"), F_OK), 0);
    cr_assert_eq(access(rwt_path(rwt_dir, "logs/worker-w2.log"), F_OK), 0);
    free(out), free(err);
    /* the same folder again: the finished job is replayed, not redone */
    cr_assert_eq(run(&out, &err, "%s run --out %s --json%s", rwt_dir, args), 0, "%s", err);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(j, "not JSON:\n%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "output")), rwt_dir);
    json_t *res = json_object_get(j, "results");
    cr_assert_eq(json_array_size(json_object_get(res, "bundles")), 4);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(res, "job"), "domains")), 5);
    json_decref(j);
    free(out), free(err);
    char *log = rwt_read_file(rwt_path(rwt_dir, "logs/coordinator.log"), NULL);
    cr_assert(strstr(log, "19 tasks (19 done)"), "resumed from the journal:\n%s", log);
    free(log);
    /* said as already done, not as a job done in 0:00 */
    cr_assert_eq(run(&out, &err, "%s run --out %s%s", rwt_dir, args), 0, "%s", err);
    cr_assert(strstr(out, "job already done: bundles in ") && !strstr(out, "job done in"), "%s",
              out);
    free(out), free(err);
    /* other data into the same folder: refused, not trained on the data
     * already there under the new data's name */
    char data[700];
    snprintf(data, sizeof data, "%s/other.jsonl", rwt_dir);
    cr_assert_eq(
        run(&out, &err, "%s data gen --domains concise --pairs-per-domain 40 -o %s%s", data, ""), 0,
        "%s", err);
    free(out), free(err);
    snprintf(args, sizeof args, " --data %s --vocab 1000 --config %s", data, cfg);
    rc = run(&out, &err, "%s run --out %s%s", rwt_dir, args);
    cr_assert_neq(rc, 0, "%s", out);
    cr_assert(strstr(err, "holds a job prepared from synthetic, not from "), "%s", err);
    free(out), free(err);
    /* other options, or another configuration: refused, not ignored */
    rc = run(&out, &err, "%s run --out %s --pairs-per-domain 50%s", rwt_dir, "");
    cr_assert_neq(rc, 0, "%s", out);
    cr_assert(strstr(err, "prepared with --pairs-per-domain 40, not --pairs-per-domain 50"), "%s",
              err);
    free(out), free(err);
    rc = run(&out, &err, "%s run --out %s --config %s", rwt_dir, svc_tiny_config(rwt_dir, 2, 3));
    cr_assert_neq(rc, 0, "%s", out);
    cr_assert(strstr(err, "was started with the configuration"), "%s", err);
    free(out), free(err);
    /* left out, every option is the job's own, --config too */
    cr_assert_eq(run(&out, &err, "%s run --out %s%s", rwt_dir, ""), 0, "%s", err);
    cr_assert(strstr(out, "job already done"), "%s", out);
    free(out), free(err);
}

/* A configuration that cannot be read stops the run before any data is
 * prepared, so the next run in that folder starts afresh. */
Test(cli_run, a_bad_config_prepares_nothing, .timeout = 60)
{
    require_services();
    char *out, *err, bad[700];
    snprintf(bad, sizeof bad, "%s/bad.json", rwt_dir);
    FILE *f = fopen(bad, "w");
    cr_assert_not_null(f);
    fputs("{", f);
    fclose(f);
    int rc = run(&out, &err, "%s run --out %s/job --pairs-per-domain 40 --vocab 1000 --config %s",
                 rwt_dir, bad);
    cr_assert_neq(rc, 0, "%s", out);
    cr_assert(strstr(err, "bad.json"), "the reason is not said:\n%s", err);
    cr_assert_neq(access(rwt_path(rwt_dir, "job/state/data.jsonl"), F_OK), 0,
                  "data was prepared for a run that could not start");
    free(out), free(err);
    /* a key given twice is refused, not settled by the last one; a folder
     * or a FIFO is not a configuration (a FIFO held the run in open()) */
    f = fopen(bad, "w");
    cr_assert_not_null(f);
    fputs("{\"all\": {\"max_steps\": 3},\n \"all\": {}}\n", f);
    fclose(f);
    char fifo[700];
    snprintf(fifo, sizeof fifo, "%s/fifo.json", rwt_dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    const char *cases[][2] = {{bad, "bad.json:2: duplicate object key"},
                              {rwt_dir, "not a regular file"},
                              {fifo, "fifo.json: not a regular file"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rc = run(&out, &err, "%s run --out %s/job --pairs-per-domain 40 --vocab 1000 --config %s",
                 rwt_dir, cases[i][0]);
        cr_assert_neq(rc, 0, "%s", out);
        cr_assert(strstr(err, cases[i][1]), "no '%s' in:\n%s", cases[i][1], err);
        cr_assert_neq(access(rwt_path(rwt_dir, "job/state/data.jsonl"), F_OK), 0);
        free(out), free(err);
    }
}

/* The coordinator's data stage alone, into rwt_dir/STATE: the synthetic
 * domains, 40 pairs each, a vocabulary of 1,000. */
static void prepare_state(const char *state)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' prepare --state %s/%s --pairs-per-domain 40 --vocab 1000 >/dev/null",
             rwt_bin("rewire-coordinator"), rwt_dir, state);
    cr_assert_eq(rwt_run(cmd, NULL, NULL), 0, "%s", cmd);
}

/* State files that are FIFOs hold neither `rewire run` nor its coordinator
 * in open() or read(): the lock and the record of what was prepared are
 * passed over, a journal is refused with its name. */
Test(cli_run, fifos_in_the_state_hold_nothing, .timeout = 60)
{
    require_services();
    char *out, *err;
    cr_assert_eq(mkdir(rwt_path(rwt_dir, "job"), 0755), 0);
    prepare_state("job/state");
    const char *names[] = {"lock", "prepared-from", "journal.jsonl", "status.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/job/state/%s", rwt_dir, names[i]);
        unlink(path);
        cr_assert_eq(mkfifo(path, 0600), 0, "%s", path);
    }
    int rc = run(&out, &err, "%s run --out %s/job --pairs-per-domain 40 --vocab 1000%s", rwt_dir,
                 " --workers 1");
    cr_assert_eq(rc, 1, "%s", err);
    cr_assert(strstr(err, "journal.jsonl: not a regular file"), "%s", err);
    free(out), free(err);
}

/* The coordinator's data stage run on its own records what it prepared,
 * so a later serve with other data is refused as after a run. */
Test(cli_run, a_state_prepared_alone_knows_its_data, .timeout = 60)
{
    require_services();
    char cmd[4096], *err;
    prepare_state("st");
    char *from = rwt_read_file(rwt_path(rwt_dir, "st/prepared-from"), NULL);
    const char *head = "synthetic\nseed=0 pairs-per-domain=40 "
                       "eval-fraction=0.10000000000000001 vocab=1000\ndata.jsonl bytes=";
    cr_assert(from && strncmp(from, head, strlen(head)) == 0, "%s", from ? from : "(none)");
    cr_assert(strstr(from, " pairs=200\ntokenizer.json bytes="), "%s", from);
    free(from);
    snprintf(cmd, sizeof cmd, "'%s' serve --state %s/st --out %s/o --vocab 2000",
             rwt_bin("rewire-coordinator"), rwt_dir, rwt_dir);
    cr_assert_eq(rwt_run(cmd, NULL, &err), 2, "%s", err);
    cr_assert(strstr(err, "holds a job prepared with --vocab 1000, not --vocab 2000"), "%s", err);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' serve --state %s/st --out %s/o --data %s/x.jsonl",
             rwt_bin("rewire-coordinator"), rwt_dir, rwt_dir, rwt_dir);
    cr_assert_eq(rwt_run(cmd, NULL, &err), 2, "%s", err);
    cr_assert(strstr(err, "holds a job prepared from synthetic, not from "), "%s", err);
    free(err);
    /* files are told apart by what they are, not how a path spells them */
    snprintf(
        cmd, sizeof cmd,
        "cd %s && '%s' data gen --domains concise,detailed --pairs-per-domain 40 -o d.jsonl && "
        "'%s' prepare --state st2 --data ./d.jsonl --vocab 1000 >/dev/null && "
        "timeout 2 '%s' serve --state st2 --out o2 --bind ipc://%s/c.sock --data %s/d.jsonl",
        rwt_dir, rwt_bin("rewire"), rwt_bin("rewire-coordinator"), rwt_bin("rewire-coordinator"),
        rwt_dir, rwt_dir);
    cr_assert_eq(rwt_run(cmd, NULL, &err), 124, "%s", err);
    cr_assert(strstr(err, "using the data already prepared"), "%s", err);
    free(err);
}

/* The record of what a state was prepared from is written whole or not at
 * all: a disk that fills up while the stage runs again leaves the one it
 * had, not a cut copy that refused the state next time ("prepared from
 * /tmp/…/aaa"). The disk is a file size limit of 512 bytes (sh's ulimit -f
 * 1), the record longer through a long path to its data. */
Test(cli_run, a_full_disk_leaves_the_record_whole, .timeout = 60)
{
    require_services();
    char dir[700], cmd[4096], *err;
    snprintf(dir, sizeof dir, "%s/%0200d/%0200d/%0150d", rwt_dir, 0, 0, 0);
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && cd %s && '%s' data gen --domains concise,detailed "
             "--pairs-per-domain 40 -o %s/d.jsonl >/dev/null && "
             "'%s' prepare --state st --data %s/d.jsonl --vocab 1000 >/dev/null",
             dir, rwt_dir, rwt_bin("rewire"), dir, rwt_bin("rewire-coordinator"), dir);
    cr_assert_eq(rwt_run(cmd, NULL, NULL), 0, "%s", cmd);
    size_t n;
    char *before = rwt_read_file(rwt_path(rwt_dir, "st/prepared-from"), &n);
    cr_assert(before && n > 600, "the record is not long enough to be cut: %zu bytes", n);
    snprintf(cmd, sizeof cmd,
             "cd %s && trap '' XFSZ && ulimit -f 1 && "
             "exec '%s' prepare --state st --data %s/d.jsonl --vocab 1000 >/dev/null",
             rwt_dir, rwt_bin("rewire-coordinator"), dir);
    cr_assert_eq(rwt_run(cmd, NULL, &err), 1, "%s", err);
    cr_assert(strstr(err, "cannot write st/prepared-from"), "%s", err);
    free(err);
    char *after = rwt_read_file(rwt_path(rwt_dir, "st/prepared-from"), NULL);
    cr_assert(after && strcmp(before, after) == 0, "the record was cut:\n%s",
              after ? after : "(none)");
    free(before), free(after);
}

/* A record of what the state was prepared from that is damaged — cut short
 * by a copy, say — is said to be damaged, not read as other data or other
 * options ("--vocab 1, not --vocab 1000"). */
Test(cli_run, a_damaged_record_is_said_to_be_damaged, .timeout = 60)
{
    require_services();
    char cmd[4096], *err;
    prepare_state("st");
    const char *path = rwt_path(rwt_dir, "st/prepared-from");
    size_t n;
    char *whole = rwt_read_file(path, &n);
    cr_assert_not_null(whole);
    /* cut in the data, in the options' names, in the vocabulary; empty */
    size_t cuts[] = {5, strlen("synthetic\nseed=0 pairs-per-do"), n - 3, 0};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert_eq(rwt_write_file(path, whole, cuts[i]), 0);
        snprintf(cmd, sizeof cmd,
                 "timeout 10 '%s' serve --state %s/st --out %s/o --bind ipc://%s/c.sock "
                 "--vocab 1000",
                 rwt_bin("rewire-coordinator"), rwt_dir, rwt_dir, rwt_dir);
        cr_assert_eq(rwt_run(cmd, NULL, &err), 1, "cut at %zu: %s", cuts[i], err);
        cr_assert(strstr(err, "st/prepared-from is damaged"), "cut at %zu: %s", cuts[i], err);
        cr_assert(!strstr(err, "holds a job prepared"), "cut at %zu: %s", cuts[i], err);
        free(err);
    }
    free(whole);
}

/* A prepared data.jsonl that is cut or altered is found before anything is
 * trained: cut mid-file the job ran on part of its data and exited 0, cut
 * to two lines it failed with "n_classes (1)". A state whose record has no
 * sums (an older build's) is still used, with a note. */
Test(cli_run, a_damaged_data_file_is_refused_before_training, .timeout = 60)
{
    require_services();
    char cmd[4096], *out, *err;
    const char *cfg = svc_tiny_config(rwt_dir, 3, 3);
    cr_assert_eq(mkdir(rwt_path(rwt_dir, "job"), 0755), 0);
    prepare_state("job/state");
    const char *path = rwt_path(rwt_dir, "job/state/data.jsonl");
    size_t n;
    char *data = rwt_read_file(path, &n);
    cr_assert(data && n > 30000);
    size_t cuts[] = {30000, 1000};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert_eq(rwt_write_file(path, data, cuts[i]), 0);
        int rc = run(&out, &err, "%s run --out %s/job --workers 1 --config %s", rwt_dir, cfg);
        cr_assert_eq(rc, 1, "cut at %zu: %s\n%s", cuts[i], out, err);
        cr_assert(strstr(err, "job/state/data.jsonl is damaged"), "cut at %zu: %s", cuts[i], err);
        cr_assert(strstr(err, "pairs were prepared"), "cut at %zu: %s", cuts[i], err);
        cr_assert_neq(access(rwt_path(rwt_dir, "job/bundles"), F_OK), 0, "trained on it");
        free(out), free(err);
    }
    /* whole again, under a record of an older build: used, with a note */
    cr_assert_eq(rwt_write_file(path, data, n), 0);
    free(data);
    const char *old = "synthetic\nseed=0 pairs-per-domain=40 eval-fraction=0.10000000000000001 "
                      "vocab=1000\n";
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "job/state/prepared-from"), old, strlen(old)), 0);
    snprintf(cmd, sizeof cmd,
             "timeout 2 '%s' serve --state %s/job/state --out %s/job --bind ipc://%s/c.sock",
             rwt_bin("rewire-coordinator"), rwt_dir, rwt_dir, rwt_dir);
    cr_assert_eq(rwt_run(cmd, NULL, &err), 124, "%s", err);
    cr_assert(strstr(err, "records no checksums"), "%s", err);
    cr_assert(strstr(err, "using the data already prepared"), "%s", err);
    free(err);
}

/* Starts `sh -c cmd` (a rewire run in the background of the test) and
 * waits until the job has a task leased; returns the shell's pid. */
static pid_t start_until_leased(const char *cmd)
{
    pid_t sh = fork();
    if (sh == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    bool running = false;
    for (int i = 0; i < 1500 && !running; i++) {
        svc_sleep_ms(20);
        json_t *st = json_load_file(rwt_path(rwt_dir, "state/status.json"), 0, NULL);
        running = json_integer_value(json_object_get(json_object_get(st, "tasks"), "leased")) > 0;
        json_decref(st);
    }
    cr_assert(running, "the job never started");
    return sh;
}

Test(cli_run, ctrl_c_stops_every_process, .timeout = 120)
{
    require_services();
    const char *cfg = svc_tiny_config(rwt_dir, 3, 1000000);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s run --out %s --pairs-per-domain 40 --vocab 1000 --workers 2 --config %s "
             ">%s/run.out 2>&1 & echo $! >%s/run.pid; wait",
             rwt_bin("rewire"), rwt_dir, cfg, rwt_dir, rwt_dir);
    pid_t sh = start_until_leased(cmd); /* the seed is being trained */
    /* a second run on the same folder is refused, and touches nothing of
     * the first (it used to remove its status file and sockets) */
    char *err;
    snprintf(cmd, sizeof cmd, "%s run --out %s --pairs-per-domain 40 --vocab 1000 --config %s",
             rwt_bin("rewire"), rwt_dir, cfg);
    cr_assert_eq(rwt_run(cmd, NULL, &err), 1, "%s", err);
    cr_assert(strstr(err, "is in use by another job's coordinator (pid "), "%s", err);
    free(err);
    const char *kept[] = {"state/status.json", "state/coord.sock", "router.sock"};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(access(rwt_path(rwt_dir, kept[i]), F_OK), 0, "%s is gone", kept[i]);
    char *pid = rwt_read_file(rwt_path(rwt_dir, "run.pid"), NULL);
    cr_assert_not_null(pid);
    kill((pid_t)atol(pid), SIGINT);
    free(pid);
    int rc = svc_wait(sh, 20000);
    cr_assert_neq(rc, -1, "rewire run did not stop");
    char *out = rwt_read_file(rwt_path(rwt_dir, "run.out"), NULL);
    cr_assert(strstr(out, "stopped"), "%s", out);
    free(out);
    const char *logs[] = {"coordinator.log", "worker-w1.log", "worker-w2.log", "router.log"};
    for (int i = 0; i < 4; i++) {
        char p[700];
        snprintf(p, sizeof p, "logs/%s", logs[i]);
        char *log = rwt_read_file(rwt_path(rwt_dir, p), NULL);
        cr_assert(log && strstr(log, "shutting down"), "%s did not shut down:\n%s", logs[i],
                  log ? log : "");
        free(log);
    }
}

/* A router service killed mid-job is started again under its id, and the
 * job finishes (it used to wait for ever on router tasks nobody could take). */
Test(cli_run, a_crashed_router_is_started_again_and_the_job_finishes, .timeout = 120)
{
    require_services();
    const char *cfg = svc_tiny_config(rwt_dir, 3, 5000); /* a seed long enough to kill in */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s run --out %s --pairs-per-domain 40 --vocab 1000 --workers 1 --config %s "
             ">%s/run.out 2>&1",
             rwt_bin("rewire"), rwt_dir, cfg, rwt_dir);
    pid_t sh = start_until_leased(cmd);
    /* [r]: the pattern does not match the shell that runs pkill */
    snprintf(cmd, sizeof cmd, "pkill -KILL -f '[r]ewire-router .*%s/bundles'", rwt_dir);
    cr_assert_eq(system(cmd), 0, "no router to kill");
    int rc = svc_wait(sh, 90000);
    char *out = rwt_read_file(rwt_path(rwt_dir, "run.out"), NULL);
    cr_assert_eq(rc, 0, "rewire run ended with %d:\n%s", rc, out);
    cr_assert(strstr(out, "router exited (status 137), starting it again"), "%s", out);
    cr_assert(strstr(out, "job done"), "%s", out);
    free(out);
}

Test(cli_run, usage_errors_exit_2)
{
    char *err;
    cr_assert_eq(run(NULL, &err, "%s run%s%s", "", ""), 2);
    cr_assert(strstr(err, "--out"), "%s", err);
    free(err);
    cr_assert_eq(run(NULL, &err, "%s run --out %s --vocab 5%s", rwt_dir, ""), 2);
    cr_assert(strstr(err, "--vocab"), "%s", err);
    free(err);
    cr_assert_eq(run(NULL, &err, "%s run --out %s --bogus%s", rwt_dir, ""), 2);
    free(err);
    cr_assert_eq(run(NULL, NULL, "%s run --help%s%s", "", ""), 0);
}

Test(cli_run, stats_and_tokenizer_commands)
{
    char *out, *err, data[600], tok[600];
    snprintf(data, sizeof data, "%s/d.jsonl", rwt_dir);
    snprintf(tok, sizeof tok, "%s/tok.json", rwt_dir);
    cr_assert_eq(run(NULL, NULL, "%s data gen -o %s --pairs-per-domain 50%s", data, ""), 0);
    cr_assert_eq(run(&out, &err, "%s data stats %s --vocab 1000 --json%s", data, ""), 0, "%s", err);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(j, "not JSON:\n%s", out);
    cr_assert_eq(json_array_size(json_object_get(j, "domains")), 5);
    json_decref(j);
    free(out), free(err);
    cr_assert_eq(run(NULL, &err, "%s tokenizer train %s -o %s --vocab 1000", data, tok), 0, "%s",
                 err);
    free(err);
    cr_assert_eq(run(&out, NULL, "%s tokenizer encode --tokenizer %s 'What is 2 + 2?'%s", tok, ""),
                 0);
    char ids[512];
    snprintf(ids, sizeof ids, "%s", out);
    ids[strcspn(ids, "\n")] = '\0';
    free(out);
    cr_assert_eq(run(&out, NULL, "%s tokenizer decode --tokenizer %s %s", tok, ids), 0);
    cr_assert_str_eq(out, "What is 2 + 2?\n");
    free(out);
    /* options may come after the text, as with every other command */
    cr_assert_eq(run(&out, NULL, "%s tokenizer encode 'What is 2 + 2?' --tokenizer %s%s", tok, ""),
                 0);
    cr_assert_eq(strncmp(out, ids, strlen(ids)), 0, "%s against %s", out, ids);
    free(out);
    cr_assert_eq(run(&out, NULL, "%s tokenizer --help%s%s", "", ""), 0, "tokenizer --help");
    cr_assert(strstr(out, "encode") && strstr(out, "decode"), "%s", out);
    free(out);
    cr_assert_eq(
        run(NULL, &err, "%s tokenizer encode --tokenizer %s/missing.json x%s", rwt_dir, ""), 1);
    cr_assert(strstr(err, "missing.json"), "%s", err);
    free(err);
    /* a stdin that cannot be read is an error, not an empty text */
    cr_assert_eq(run(&out, &err, "%s tokenizer encode --tokenizer %s < %s", tok, rwt_dir), 1);
    cr_assert(strstr(err, "stdin: cannot read: Is a directory"), "%s", err);
    cr_assert_str_eq(out, "");
    free(out), free(err);
    cr_assert_eq(run(NULL, &err, "%s data stats %s/none.jsonl%s", rwt_dir, ""), 1);
    free(err);
}

/* `rewire keys new` makes the pair the services' --key, --server-key and
 * --allow read; the services refuse a bad key before they start. */
Test(cli_run, keys_new_and_the_services_key_flags)
{
    char *out, *err, stem[600], cmd[4096];
    snprintf(stem, sizeof stem, "%s/coord", rwt_dir);
    cr_assert_eq(run(&out, &err, "%s keys new %s%s", stem, ""), 0, "%s", err);
    cr_assert(strstr(out, "coord.key") && strstr(out, "coord.pub"), "%s", out);
    free(out), free(err);
    cr_assert_eq(run(NULL, &err, "%s keys new %s%s", stem, ""), 1, "a key was overwritten");
    cr_assert(strstr(err, "coord.key exists"), "%s", err);
    free(err);
    cr_assert_eq(run(NULL, NULL, "%s keys new%s%s", "", ""), 2);
    cr_assert_eq(run(&out, NULL, "%s keys --help%s%s", "", ""), 0);
    cr_assert(strstr(out, "new"), "%s", out);
    free(out);
    /* a worker given the secret file's public half as its own key pair */
    snprintf(cmd, sizeof cmd, "'%s' --connect tcp://127.0.0.1:9 --server-key %s.pub --key %s.pub",
             rwt_bin("rewire-worker"), stem, stem);
    cr_assert_eq(rwt_run(cmd, NULL, &err), 2, "%s", err);
    cr_assert(strstr(err, "coord.pub holds a public key only"), "%s", err);
    free(err);
    /* a key of its own without the coordinator's: it would connect in the clear */
    snprintf(cmd, sizeof cmd, "'%s' --connect tcp://127.0.0.1:9 --key %s.key",
             rwt_bin("rewire-worker"), stem);
    cr_assert_eq(rwt_run(cmd, NULL, &err), 2, "%s", err);
    cr_assert(strstr(err, "give its public key with --server-key too"), "%s", err);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' serve --state %s/st --out %s/out --key %s.key --allow %s/none",
             rwt_bin("rewire-coordinator"), rwt_dir, rwt_dir, stem, rwt_dir);
    cr_assert_eq(rwt_run(cmd, NULL, &err), 2, "%s", err);
    cr_assert(strstr(err, "--allow") && strstr(err, "/none"), "%s", err);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' --bundles %s --allow %s.pub", rwt_bin("rewire-router"), rwt_dir,
             stem);
    cr_assert_eq(rwt_run(cmd, NULL, &err), 2, "%s", err);
    cr_assert(strstr(err, "--allow needs --key"), "%s", err);
    free(err);
}

/* Waits up to ms for needle in file; returns the file (caller frees). */
static char *await_text(const char *file, const char *needle, int ms)
{
    for (int waited = 0; waited < ms; waited += 100) {
        char *text = rwt_read_file(file, NULL);
        if (text && strstr(text, needle))
            return text;
        free(text);
        svc_sleep_ms(100);
    }
    return rwt_read_file(file, NULL);
}

Test(cli_run, keep_serving_takes_a_new_domain_from_a_worker, .timeout = 120)
{
    require_services();
    const char *cfg = svc_tiny_config(rwt_dir, 3, 3);
    char cmd[4096], data[600];
    snprintf(data, sizeof data, "%s/concise.jsonl", rwt_dir);
    snprintf(cmd, sizeof cmd, "%s data gen --domains concise --pairs-per-domain 40 -o %s",
             rwt_bin("rewire"), data);
    cr_assert_eq(rwt_run(cmd, NULL, NULL), 0);
    snprintf(cmd, sizeof cmd,
             "%s data gen --domains compliance,detailed,safety --pairs-per-domain 40 -o %s/three",
             rwt_bin("rewire"), rwt_dir);
    cr_assert_eq(rwt_run(cmd, NULL, NULL), 0);
    snprintf(cmd, sizeof cmd,
             "exec %s run --out %s --data %s/three --vocab 1000 --workers 1 --config %s "
             "--keep-serving >%s/run.out 2>&1",
             rwt_bin("rewire"), rwt_dir, rwt_dir, cfg, rwt_dir);
    pid_t sh = fork();
    if (sh == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    char *out = await_text(rwt_path(rwt_dir, "run.out"), "add a domain: rewire-worker", 60000);
    cr_assert(out && strstr(out, "add a domain: rewire-worker --connect "), "%s", out);
    char ep[600];
    const char *at = strstr(out, "--connect ") + strlen("--connect ");
    snprintf(ep, sizeof ep, "%.*s", (int)strcspn(at, " \n"), at);
    free(out);
    snprintf(cmd, sizeof cmd,
             "%s --connect %s --id w9 --cache %s/cache-w9 --domain concise --data %s "
             ">%s/w9.log 2>&1",
             rwt_bin("rewire-worker"), ep, rwt_dir, data, rwt_dir);
    pid_t w = fork();
    if (w == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    out = await_text(rwt_path(rwt_dir, "run.out"), "version 2 of the bundles", 60000);
    cr_assert(out && strstr(out, "version 2 of the bundles, with the new domain"), "%s", out);
    free(out);
    json_t *m = json_load_file(rwt_path(rwt_dir, "bundles/adapter/manifest.json"), 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(m, "domains")), 4);
    json_decref(m);
    kill(sh, SIGINT);
    cr_assert_neq(svc_wait(sh, 20000), -1, "rewire run stopped");
    cr_assert_neq(svc_wait(w, 10000), -1, "the domain's worker was told to stop");
    svc_kill(w);
    /* stopping a served job is not stopping the job: nothing to carry on */
    out = rwt_read_file(rwt_path(rwt_dir, "run.out"), NULL);
    cr_assert(strstr(out, "stopped; the job is done, its bundles in "), "%s", out);
    cr_assert_null(strstr(out, "to carry on"), "%s", out);
    free(out);
}
