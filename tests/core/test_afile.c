/* test_afile.c — files appear whole or not at all. */
#include "afile.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

static size_t entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(afile, commit_replaces_and_abort_keeps_the_old_file)
{
    char *dir = rwt_tmpdir();
    const char *p = rwt_path(dir, "f.txt");
    cr_assert_eq(rw_afile_write(p, "old\n", 4), 0);
    rw_afile_t af;
    cr_assert_eq(rw_afile_open(&af, p), 0);
    fputs("new but unfinished", af.f);
    cr_assert_eq(entries(dir), 2, "the temporary file sits beside the destination");
    rw_afile_abort(&af);
    char *text = rwt_read_file(p, NULL);
    cr_assert_str_eq(text, "old\n");
    free(text);
    cr_assert_eq(entries(dir), 1, "abort leaves no temporary file");
    cr_assert_eq(rw_afile_open(&af, p), 0);
    fputs("new\n", af.f);
    cr_assert_eq(rw_afile_commit(&af), 0);
    text = rwt_read_file(p, NULL);
    cr_assert_str_eq(text, "new\n");
    free(text);
    cr_assert_eq(entries(dir), 1);
    rw_afile_abort(&af); /* safe after commit */
    rwt_rmdir(dir);
    free(dir);
}

Test(afile, unwritable_destination_is_an_error)
{
    rw_afile_t af;
    cr_assert_lt(rw_afile_open(&af, "/nonexistent-dir/f.txt"), 0);
    cr_assert_null(af.f);
    cr_assert_lt(rw_afile_write("/nonexistent-dir/f.txt", "x", 1), 0);
}

Test(afile, a_link_keeps_pointing_and_a_device_is_written_in_place)
{
    char *dir = rwt_tmpdir();
    char target[600], link[600];
    snprintf(target, sizeof target, "%s", rwt_path(dir, "target.txt"));
    snprintf(link, sizeof link, "%s", rwt_path(dir, "link.txt"));
    cr_assert_eq(rw_afile_write(target, "old\n", 4), 0);
    cr_assert_eq(symlink(target, link), 0);
    cr_assert_eq(rw_afile_write(link, "new\n", 4), 0);
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the link is still a link");
    char *text = rwt_read_file(target, NULL);
    cr_assert_str_eq(text, "new\n", "what it points to was replaced");
    free(text);
    cr_assert_eq(entries(dir), 2, "no temporary file left");
    /* a character device is not replaced by a file */
    cr_assert_eq(rw_afile_write("/dev/null", "gone\n", 5), 0);
    cr_assert_eq(stat("/dev/null", &st), 0);
    cr_assert(S_ISCHR(st.st_mode), "/dev/null is still a device");
    rw_afile_t af;
    cr_assert_eq(rw_afile_open(&af, "/dev/null"), 0);
    fputs("never kept", af.f);
    rw_afile_abort(&af);
    cr_assert_eq(stat("/dev/null", &st), 0);
    cr_assert(S_ISCHR(st.st_mode));
    rwt_rmdir(dir);
    free(dir);
}
