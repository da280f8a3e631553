/* cmd_run.c — `rewire run`: a whole job on this machine.
 *
 * Today a job is its data stage (coordinator/prepare.h): the data — the
 * built-in synthetic domains unless --data is given — imported and split,
 * the shared tokenizer trained, and the statistics printed; everything lands
 * in OUT/state. Training stages join it as the coordinator grows them.
 */
#include "cli.h"

#include "prepare.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: rewire run [--data FILE]... --out DIR [options]\n\n"
            "Runs a job: data in (the built-in synthetic domains unless --data is given),\n"
            "a train/eval split per domain, the shared tokenizer, per-domain statistics.\n"
            "Writes DIR/state/{data.jsonl,tokenizer.json,stats.json}.\n\n"
            "  -o, --out DIR          where the job's results go (created if missing)\n%s",
            coord_prep_flags_help);
}

int cli_run(int argc, char **argv)
{
    const char *cmd = "run", *out = NULL;
    coord_prep_opts_t o;
    coord_prep_opts_init(&o);
    char **rest = calloc((size_t)argc, sizeof *rest), state[PATH_MAX];
    int nrest, rc = coord_prep_parse(cmd, argc - 1, argv + 1, &o, rest, &nrest);
    for (int i = 0; rc == 0 && i < nrest; i++) {
        if ((strcmp(rest[i], "--out") == 0 || strcmp(rest[i], "-o") == 0) && i + 1 < nrest) {
            out = rest[++i];
        } else if (strcmp(rest[i], "--help") == 0 || strcmp(rest[i], "-h") == 0) {
            run_usage(stdout);
            goto done;
        } else {
            rc = cli_usage_error(cmd, "unknown option '%s'", rest[i]);
        }
    }
    if (rc == 0 && !out)
        rc = cli_usage_error(cmd, "no output folder (--out DIR)");
    if (rc)
        goto done;
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "rewire run: cannot create %s: %s\n", out, strerror(errno));
        rc = 1;
        goto done;
    }
    snprintf(state, sizeof state, "%s/state", out);
    o.state_dir = state;
    coord_prep_t p;
    double t0 = cli_now();
    rc = coord_prepare(&o, &p) < 0 ? 1 : 0;
    if (rc == 0 && o.json) {
        json_t *j = coord_prep_json(&o, &p);
        json_object_set_new(j, "wall_seconds", json_real(cli_now() - t0));
        cli_print_json(j);
        json_decref(j);
    } else if (rc == 0) {
        coord_prep_print(&o, &p, stdout);
        printf("job done in %.2f s\n", cli_now() - t0);
    }
    coord_prep_fini(&p);
done:
    free(rest);
    coord_prep_opts_fini(&o);
    return rc;
}
