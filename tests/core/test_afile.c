/* test_afile.c — files appear whole or not at all. */
#include "afile.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
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

Test(afile, links_are_followed_and_pipes_and_stdout_written_in_place)
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
    /* a dangling link: the file is made where it points, the link stays */
    char far[600], dangling[600];
    snprintf(far, sizeof far, "%s", rwt_path(dir, "later.txt"));
    snprintf(dangling, sizeof dangling, "%s", rwt_path(dir, "dangling.txt"));
    cr_assert_eq(symlink("later.txt", dangling), 0); /* relative, to nothing yet */
    cr_assert_eq(rw_afile_write(dangling, "made\n", 5), 0);
    cr_assert_eq(lstat(dangling, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the dangling link is still a link");
    text = rwt_read_file(far, NULL);
    cr_assert_str_eq(text, "made\n");
    free(text);
    /* a pipe is written in place, not replaced by a file */
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s", rwt_path(dir, "fifo"));
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    int rd = open(fifo, O_RDONLY | O_NONBLOCK);
    cr_assert_geq(rd, 0);
    cr_assert_eq(rw_afile_write(fifo, "piped\n", 6), 0);
    char buf[16] = {0};
    cr_assert_eq(read(rd, buf, sizeof buf), 6);
    cr_assert_str_eq(buf, "piped\n");
    close(rd);
    cr_assert_eq(lstat(fifo, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode), "the pipe is still a pipe");
    /* this process's stdout, redirected to a file: appended to, through
     * /dev/stdout, never replaced or truncated */
    char out[600];
    snprintf(out, sizeof out, "%s", rwt_path(dir, "stdout.txt"));
    fflush(stdout);
    int saved = dup(1), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(saved >= 0 && fd >= 0);
    cr_assert_eq(write(fd, "before\n", 7), 7);
    dup2(fd, 1);
    close(fd);
    struct stat was;
    cr_assert_eq(stat(out, &was), 0);
    int rc = rw_afile_write("/dev/stdout", "written\n", 8);
    dup2(saved, 1);
    close(saved);
    cr_assert_eq(rc, 0);
    cr_assert_eq(stat(out, &st), 0);
    cr_assert_eq(st.st_ino, was.st_ino, "the file stdout went to was replaced");
    text = rwt_read_file(out, NULL);
    cr_assert_str_eq(text, "before\nwritten\n");
    free(text);
    rwt_rmdir(dir);
    free(dir);
}
