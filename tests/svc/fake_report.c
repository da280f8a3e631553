/* fake_report.c — a test double of core/report.c for the services' tests.
 *
 * Linked into the test programs (never a library or binary) while
 * core/report.c is not in the tree; CMake drops it once it is. It writes
 * report.json (the results as given) and a report.md naming every bundle.
 */
#include "err.h"

#include <jansson.h>
#include <stdio.h>

int rw_report_render(const json_t *results, const char *out_dir, char *why, size_t whylen);

int rw_report_render(const json_t *results, const char *out_dir, char *why, size_t whylen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/report.json", out_dir);
    if (json_dump_file(results, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
        snprintf(why, whylen, "cannot write %s", path);
        return RW_EIO;
    }
    snprintf(path, sizeof path, "%s/report.md", out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(why, whylen, "cannot write %s", path);
        return RW_EIO;
    }
    fprintf(f, "# rewire job report (test double)\n\n");
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(results, "bundles"), i, b)
    {
        fprintf(f, "- %s\n", json_string_value(json_object_get(b, "kind")));
    }
    fclose(f);
    return 0;
}
