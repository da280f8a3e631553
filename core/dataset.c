/* dataset.c — saving and loading the normalized file of dataset.h. */
#include "dataset.h"

#include "afile.h"
#include "alloc.h"
#include "err.h"
#include "lines.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One pair as one line of f. Returns 0, RW_EUTF8, or -errno. */
static int save_pair(FILE *f, const rw_pair_t *p)
{
    static const char *const split[] = {[RW_SPLIT_TRAIN] = "train", [RW_SPLIT_EVAL] = "eval"};
    int rc = 0;
    json_t *o = json_object();
    json_t *v[5] = {
        json_stringn(p->prompt, p->prompt_len),        json_stringn(p->chosen, p->chosen_len),
        json_stringn(p->rejected, p->rejected_len),    json_string(p->domain),
        json_string(split[p->split == RW_SPLIT_EVAL]),
    };
    static const char *const key[5] = {"prompt", "chosen", "rejected", "domain", "split"};
    for (int i = 0; i < 5; i++) {
        if (!v[i]) /* jansson refuses invalid UTF-8 */
            rc = RW_EUTF8;
        else
            json_object_set_new(o, key[i], v[i]);
    }
    if (rc == 0 &&
        (json_dumpf(o, f, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 || fputc('\n', f) == EOF))
        rc = errno ? -errno : RW_EIO;
    json_decref(o);
    return rc;
}

int rw_dataset_save(const rw_dataset_t *ds, const char *path)
{
    rw_afile_t af;
    int rc = rw_afile_open(&af, path);
    if (rc < 0)
        return rc;
    errno = 0;
    for (size_t i = 0; i < ds->n && rc == 0; i++)
        rc = save_pair(af.f, &ds->pairs[i]);
    if (rc < 0) {
        rw_afile_abort(&af);
        return rc;
    }
    return rw_afile_commit(&af);
}

int rw_dataset_load(rw_dataset_t *ds, const char *path, const rw_import_opts_t *opts,
                    rw_import_report_t *rep)
{
    rw_import_opts_t o;
    if (opts)
        o = *opts;
    else
        rw_import_opts_init(&o);
    o.format = RW_FORMAT_NORMALIZED;
    o.domain = NULL;
    return rw_import_files(ds, &path, 1, &o, rep);
}

/* 1 if the first JSON object of path is in the normalized form (a "split",
 * a "prompt" and a "domain" key); 0 otherwise or if it cannot be told (the
 * import then reports why, and gives records without a domain the domain
 * option). */
static int is_normalized(const char *path, size_t max_line)
{
    int err = 0, found = 0;
    rw_lines_t *r = rw_lines_new(path, max_line, &err);
    const char *line;
    size_t len;
    while (r && rw_lines_next(r, &line, &len) == 1) {
        json_t *o = json_loadb(line, len, 0, NULL);
        if (json_is_object(o))
            found = json_object_get(o, "split") && json_object_get(o, "prompt") &&
                            json_object_get(o, "domain")
                        ? 1
                        : 0;
        int done = o != NULL;
        json_decref(o);
        if (done)
            break;
    }
    rw_lines_destroy(&r);
    return found;
}

int rw_dataset_read(rw_dataset_t *ds, const char *const *paths, size_t n,
                    const rw_import_opts_t *opts, rw_import_report_t *rep)
{
    rw_import_opts_t o;
    if (opts)
        o = *opts;
    else
        rw_import_opts_init(&o);
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = o.format == RW_FORMAT_AUTO && is_normalized(paths[i], o.max_line)
                     ? rw_dataset_load(ds, paths[i], &o, rep)
                     : rw_import_files(ds, &paths[i], 1, &o, rep);
        if (rc < 0 && first == 0)
            first = rc;
    }
    return first;
}
