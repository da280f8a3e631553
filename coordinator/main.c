/* main.c — `rewire-coordinator`: owns a job. For now it runs the job's data
 * stage (import, split, shared tokenizer, statistics) into a state folder. */
#include "prepare.h"

#include "blas.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rewire-coordinator prepare --state DIR [options]\n\n"
            "Runs a job's data stage into DIR: data.jsonl, tokenizer.json, stats.json.\n\n"
            "  --state DIR            the coordinator's state directory\n%s",
            coord_prep_flags_help);
}

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "prepare") != 0) {
        usage(stderr);
        return 2;
    }
    coord_prep_opts_t o;
    coord_prep_opts_init(&o);
    char **rest = calloc((size_t)argc, sizeof *rest);
    int nrest, rc = coord_prep_parse("coordinator", argc - 2, argv + 2, &o, rest, &nrest);
    for (int i = 0; rc == 0 && i < nrest; i++) {
        if (strcmp(rest[i], "--state") == 0 && i + 1 < nrest) {
            o.state_dir = rest[++i];
        } else if (strcmp(rest[i], "--help") == 0) {
            usage(stdout);
            goto done;
        } else {
            fprintf(stderr, "rewire-coordinator: unknown option '%s'\n", rest[i]);
            rc = 2;
        }
    }
    if (rc == 0 && !o.state_dir) {
        fprintf(stderr, "rewire-coordinator: no --state DIR\n");
        rc = 2;
    }
    if (rc == 0) {
        coord_prep_t p;
        rc = coord_prepare(&o, &p) < 0 ? 1 : 0;
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
