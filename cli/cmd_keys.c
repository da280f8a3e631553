/* cmd_keys.c — `rewire keys new NAME`: a CURVE key pair (proto/curve.h). */
#include "cli.h"

#include "curve.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: rewire keys new NAME\n\n"
               "Writes a CURVE key pair: NAME.key (public and secret key, mode 0600; give it\n"
               "to the process it names with --key) and NAME.pub (the public key alone: give\n"
               "a service's to its clients as --server-key, a client's to a service's --allow\n"
               "folder). Existing files are never overwritten.\n");
}

int cli_keys_new(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-' || !argv[1][0]) {
        usage(stderr);
        return 2;
    }
    char why[512];
    if (curve_key_new(argv[1], why, sizeof why) < 0) {
        cli_say("keys new", "%s", why);
        return 1;
    }
    printf("wrote %s.key (secret: keep it to the process it names) and %s.pub\n", argv[1], argv[1]);
    return 0;
}
