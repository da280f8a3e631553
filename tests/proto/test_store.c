/* test_store.c — artifacts named by their checksum, verified in and out. */
#include "store.h"

#include "checksum.h"
#include "err.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

TestSuite(store, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

Test(store, content_gets_its_checksum_as_id)
{
    int err;
    store_t *s = store_open(rwt_path(rwt_dir, "a/b/artifacts"), &err);
    cr_assert_not_null(s, "%d", err);
    const char *text = "hello, artifacts";
    uint64_t id, size;
    cr_assert_eq(store_put_mem(s, text, strlen(text), &id), 0);
    cr_assert_eq(id, proto_checksum(text, strlen(text)));
    cr_assert(store_has(s, id));
    cr_assert_eq(store_verify(s, id, &size), 0);
    cr_assert_eq(size, strlen(text));
    char path[STORE_PATH_MAX];
    size_t n;
    char *back = rwt_read_file(store_path(s, id, path, sizeof path), &n);
    cr_assert_str_eq(back, text);
    free(back);
    /* the same bytes from a file: the same id, and the source stays */
    const char *src = rwt_path(rwt_dir, "src.txt");
    rwt_write_file(src, text, strlen(text));
    uint64_t id2;
    cr_assert_eq(store_put_file(s, src, &id2), 0);
    cr_assert_eq(id2, id);
    cr_assert_eq(access(src, F_OK), 0);
    cr_assert_eq(store_verify(s, 12345, NULL), RW_ENOTFOUND);
    store_destroy(&s);
    store_destroy(&s);
}

Test(store, adopt_checks_what_was_promised)
{
    store_t *s = store_open(rwt_path(rwt_dir, "st"), NULL);
    char tmp[STORE_PATH_MAX];
    store_tmp_path(s, tmp, sizeof tmp);
    rwt_write_file(tmp, "abc", 3);
    uint64_t id = 0;
    cr_assert_eq(store_adopt(s, tmp, 777, &id), RW_ECHECKSUM);
    cr_assert_neq(access(tmp, F_OK), 0, "a refused file is removed");
    store_tmp_path(s, tmp, sizeof tmp);
    rwt_write_file(tmp, "abc", 3);
    cr_assert_eq(store_adopt(s, tmp, proto_checksum("abc", 3), &id), 0);
    cr_assert_eq(id, proto_checksum("abc", 3));
    store_destroy(&s);
}

Test(store, corruption_on_disk_is_caught_on_read)
{
    store_t *s = store_open(rwt_path(rwt_dir, "st"), NULL);
    uint64_t id;
    cr_assert_eq(store_put_mem(s, "payload", 7, &id), 0);
    char path[STORE_PATH_MAX];
    rwt_write_file(store_path(s, id, path, sizeof path), "pAyload", 7);
    cr_assert_eq(store_verify(s, id, NULL), RW_ECHECKSUM);
    cr_assert_not(store_has(s, id), "removed, to be fetched again");
    store_destroy(&s);
    int err;
    cr_assert_null(store_open("/proc/rw-no-store", &err));
    cr_assert_lt(err, 0);
}

/* Opening a store removes what a crash left in tmp/, but not the files a
 * live process is writing there (two workers sharing one cache). */
Test(store, opening_keeps_the_temporary_files_of_a_live_process)
{
    char tmp[600], live[700], dead[700], odd[700];
    snprintf(tmp, sizeof tmp, "%s/tmp", rwt_dir);
    cr_assert_eq(mkdir(tmp, 0755), 0);
    snprintf(live, sizeof live, "%s/%ld-3", tmp, (long)getppid());
    snprintf(dead, sizeof dead, "%s/%d-1", tmp, INT_MAX); /* above any pid_max */
    snprintf(odd, sizeof odd, "%s/left-over", tmp);
    const char *files[] = {live, dead, odd};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(files[i], "w");
        cr_assert_not_null(f);
        fclose(f);
    }
    int err;
    store_t *s = store_open(rwt_dir, &err);
    cr_assert_not_null(s);
    cr_assert_eq(access(live, F_OK), 0, "a live process's file was removed");
    cr_assert_neq(access(dead, F_OK), 0, "a crash's file was kept");
    cr_assert_neq(access(odd, F_OK), 0, "a crash's file was kept");
    store_destroy(&s);
}

/* Sets the artifact's last use to age seconds ago. */
static void used_ago(store_t *s, uint64_t id, time_t age)
{
    char path[STORE_PATH_MAX];
    struct timespec t[2];
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= age;
    t[1] = t[0];
    cr_assert_eq(utimensat(AT_FDCWD, store_path(s, id, path, sizeof path), t, 0), 0);
}

static uint64_t put(store_t *s, const char *text)
{
    uint64_t id;
    cr_assert_eq(store_put_mem(s, text, strlen(text), &id), 0);
    return id;
}

static uint64_t trimmed[8];
static size_t n_trimmed;

static void heard(void *ctx, uint64_t id)
{
    cr_assert_eq(ctx, &n_trimmed);
    trimmed[n_trimmed++] = id;
}

/* Trimming removes the least recently used first, and stops once the rest
 * fits; it spares what it is told to keep and what was used lately. */
Test(store, trimming_removes_the_least_recently_used_first)
{
    store_t *s = store_open(rwt_path(rwt_dir, "st"), NULL);
    uint64_t a = put(s, "aaaaaaaaaa"), b = put(s, "bbbbbbbbbb"), c = put(s, "cccccccccc"),
             d = put(s, "dddddddddd"), e = put(s, "eeeeeeeeee");
    used_ago(s, a, 500); /* the oldest, but kept */
    used_ago(s, b, 400);
    used_ago(s, c, 100);
    used_ago(s, d, 300);
    used_ago(s, e, 5); /* recent */
    rwt_write_file(rwt_path(rwt_dir, "st/notes.txt"), "not an artifact", 15);
    uint64_t keep[] = {a};
    cr_assert_eq(store_trim(s, 1000, keep, 1, 60, heard, &n_trimmed), 50, "under the limit");
    cr_assert_eq(n_trimmed, 0);
    /* 50 bytes down to 30: b, then d go; c (100 s ago) is left */
    cr_assert_eq(store_trim(s, 30, keep, 1, 60, heard, &n_trimmed), 30);
    cr_assert_eq(n_trimmed, 2);
    cr_assert(trimmed[0] == b && trimmed[1] == d, "removed in order of last use");
    cr_assert(store_has(s, a) && !store_has(s, b) && store_has(s, c) && !store_has(s, d));
    /* nothing fits: all but the kept and the recent go, and it says how much is left */
    cr_assert_eq(store_trim(s, 0, keep, 1, 60, heard, &n_trimmed), 20);
    cr_assert(store_has(s, a) && !store_has(s, c) && store_has(s, e));
    cr_assert_eq(access(rwt_path(rwt_dir, "st/notes.txt"), F_OK), 0, "a stranger was removed");
    /* a use (touch) makes an artifact the newest; with no grace, e goes */
    store_touch(s, a);
    cr_assert_eq(store_trim(s, 10, NULL, 0, 0, heard, &n_trimmed), 10);
    cr_assert(store_has(s, a) && !store_has(s, e));
    store_destroy(&s);
    /* a folder it cannot read is an error, not an empty store */
    s = store_open(rwt_path(rwt_dir, "gone"), NULL);
    cr_assert_eq(rmdir(rwt_path(rwt_dir, "gone/tmp")), 0);
    cr_assert_eq(rmdir(rwt_path(rwt_dir, "gone")), 0);
    cr_assert_eq(store_trim(s, 0, NULL, 0, 0, NULL, NULL), -ENOENT);
    store_destroy(&s);
}
