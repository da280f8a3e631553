/* version.c — `rewire --version`: rewire and every library it links. */
#include "cli.h"

#include "blas.h"
#include "proto.h"
#include "rw_version.h"

#include <getopt.h>
#include <jansson.h>
#include <string.h>
#include <uv.h>
#include <zlib.h>
#include <zmq.h>

int cli_version(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: rewire --version [--json]\n\n"
                   "Prints the versions of rewire, its protocol and every linked library, and\n"
                   "the OpenBLAS kernel in use beside the best one this CPU supports.\n");
            return 0;
        } else {
            return cli_usage_error("version", "unknown option '%s'", argv[i]);
        }
    }
    int zmaj, zmin, zpat;
    zmq_version(&zmaj, &zmin, &zpat);
    char zmqv[32];
    snprintf(zmqv, sizeof zmqv, "%d.%d.%d", zmaj, zmin, zpat);
    struct {
        const char *key, *val;
    } rows[] = {
        {"rewire", RW_VERSION},
        {"protocol", NULL},
        {"libzmq", zmqv},
        {"msgpack-c", proto_msgpack_version()},
        {"openblas", rw_blas_config()},
        {"openblas_core", rw_blas_core()},
        {"openblas_best_core", rw_blas_best_core()},
        {"libuv", uv_version_string()},
        {"jansson", jansson_version_str()},
        {"zlib", zlibVersion()},
    };
    char proto[16];
    snprintf(proto, sizeof proto, "%d", PROTO_VERSION);
    rows[1].val = proto;
    size_t n = sizeof rows / sizeof rows[0];
    if (json) {
        json_t *o = json_object();
        for (size_t i = 0; i < n; i++)
            json_object_set_new(o, rows[i].key, json_string(rows[i].val));
        cli_print_json(o);
        json_decref(o);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%-19s %s\n", rows[i].key, rows[i].val);
    }
    return 0;
}
