/* bring.c — a new domain's data, imported and split into what stays and
 * what travels; see bring.h. */
#include "bring.h"

#include "dataset.h"
#include "err.h"
#include "log.h"
#include "store.h"

#include <stdio.h>
#include <string.h>

/* Saves ds into st as an artifact; returns 0 with *id (and *bytes). */
static int put(store_t *st, const rw_dataset_t *ds, uint64_t *id, uint64_t *bytes)
{
    char tmp[STORE_PATH_MAX], path[STORE_PATH_MAX];
    int rc = rw_dataset_save(ds, store_tmp_path(st, tmp, sizeof tmp));
    if (rc == 0)
        rc = store_adopt(st, tmp, 0, id);
    if (rc == 0 && bytes)
        rc = store_checksum_file(store_path(st, *id, path, sizeof path), NULL, bytes);
    return rc;
}

/* The upload: held-out pairs whole, train pairs as their prompts alone. */
static void travelling(const rw_dataset_t *ds, rw_dataset_t *up)
{
    static const char chosen[] = BRING_WITHHELD_CHOSEN, rejected[] = BRING_WITHHELD_REJECTED;
    for (size_t i = 0; i < ds->n; i++) {
        const rw_pair_t *p = &ds->pairs[i];
        rw_pair_t *q = p->split == RW_SPLIT_EVAL
                           ? rw_dataset_add(up, p->prompt, p->prompt_len, p->chosen, p->chosen_len,
                                            p->rejected, p->rejected_len, p->domain)
                           : rw_dataset_add(up, p->prompt, p->prompt_len, chosen, sizeof chosen - 1,
                                            rejected, sizeof rejected - 1, p->domain);
        q->split = p->split;
    }
}

int bring_prepare(const char *domain, const char *file, bool strict, const char *cache_dir,
                  bring_t *b, char *why, size_t whylen)
{
    memset(b, 0, sizeof *b);
    b->domain = domain;
    rw_dataset_t ds, up;
    rw_dataset_init(&ds);
    rw_dataset_init(&up);
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    rw_import_opts_t io;
    rw_import_opts_init(&io);
    io.domain = domain;
    store_t *st = NULL;
    /* as the job's own --data is read: a normalized file keeps its split */
    int rc = rw_dataset_read(&ds, &file, 1, &io, &rep);
    if (rep.file_errors) { /* a domain brought in part would pass for the whole */
        snprintf(why, whylen, "%s: unreadable or cut short; domain %s not brought", file, domain);
        rc = rc < 0 ? rc : RW_EIO;
        goto done;
    }
    if (strict && rep.bad) {
        snprintf(why, whylen, "%s: --strict: %zu bad record%s; domain %s not brought", file,
                 rep.bad, rep.bad == 1 ? "" : "s", domain);
        rc = RW_EBADREC;
        goto done;
    }
    if (ds.n == 0) {
        snprintf(why, whylen, "%s: no good pair%s%s", file, rc < 0 ? ": " : "",
                 rc < 0 ? rw_strerror(rc) : "");
        rc = rc < 0 ? rc : RW_EEMPTY;
        goto done;
    }
    rc = 0;
    for (size_t i = 0; i < ds.n && rc == 0; i++) {
        if (strcmp(ds.pairs[i].domain, domain) != 0) {
            snprintf(why, whylen, "%s holds pairs of domain %s; --domain %s brings that one alone",
                     file, ds.pairs[i].domain, domain);
            rc = RW_EINVAL;
        }
        ++*(ds.pairs[i].split == RW_SPLIT_EVAL ? &b->eval : &b->train);
    }
    if (rc == 0 && (b->train == 0 || b->eval == 0)) {
        snprintf(why, whylen, "%s: domain %s needs train and held-out pairs (it has %llu and %llu)",
                 file, domain, (unsigned long long)b->train, (unsigned long long)b->eval);
        rc = RW_EEMPTY;
    }
    if (rc < 0)
        goto done;
    b->pairs = ds.n;
    if (!(st = store_open(cache_dir, &rc))) {
        snprintf(why, whylen, "cannot open the cache %s: %s", cache_dir, rw_strerror(rc));
        goto done;
    }
    travelling(&ds, &up);
    if ((rc = put(st, &ds, &b->shard, &b->bytes)) < 0 || (rc = put(st, &up, &b->upload, NULL)) < 0)
        snprintf(why, whylen, "cannot keep domain %s's data in %s: %s", domain, cache_dir,
                 rw_strerror(rc));
    else
        RW_INFO("worker",
                "domain %s: %llu train pairs stay here; %llu held-out pairs and the "
                "train prompts go to the coordinator",
                domain, (unsigned long long)b->train, (unsigned long long)b->eval);
done:
    store_destroy(&st);
    rw_import_report_fini(&rep);
    rw_dataset_fini(&up);
    rw_dataset_fini(&ds);
    return rc;
}
