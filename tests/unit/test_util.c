// SPDX-License-Identifier: MIT
// test_util - the checked result-file helpers: appends that fail whole and
// name the file and errno, the output directory's lock, temporary files.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/tmpdir.h"

static char s_dir[64];

static void
s_setup(void)
{
    ut_tmpdir_make(s_dir, sizeof s_dir, "descent_util");
}

static void
s_teardown(void)
{
    ut_tmpdir_remove(s_dir);
}

static long
s_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

START_TEST(test_append)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/m.jsonl", s_dir);
    ck_assert_int_eq(ds_append(path, "a\n", 2, err, sizeof err), 0);
    ck_assert_int_eq(ds_append(path, "bc\n", 3, err, sizeof err), 0);
    ck_assert_int_eq(s_size(path), 5);
    // A file size limit of 8 bytes: the next 6-byte record fails with
    // EFBIG after a short write, and the file is cut back to 5 bytes.
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {8, 8};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    ck_assert_int_eq(ds_append(path, "defgh\n", 6, err, sizeof err), -EFBIG);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "write"));
    ck_assert_ptr_nonnull(strstr(err, strerror(EFBIG)));
    ck_assert_int_eq(s_size(path), 5);
    // The same limit makes ds_write_atomic fail and name the file.
    char sum[128];
    snprintf(sum, sizeof sum, "%s/summary.json", s_dir);
    ck_assert_int_eq(ds_write_atomic(sum, &(ds_part_t){"0123456789", 10}, 1,
                                     err, sizeof err),
                     -EFBIG);
    ck_assert_ptr_nonnull(strstr(err, sum));
    ck_assert_int_eq(access(sum, F_OK), -1);
    // A directory cannot be opened for writing.
    ck_assert_int_eq(ds_append(s_dir, "x", 1, err, sizeof err), -EISDIR);
    ck_assert_ptr_nonnull(strstr(err, s_dir));
}
END_TEST

START_TEST(test_append_full_device)
{
    char err[256];
    if (access("/dev/full", W_OK) != 0) {
        return; // no /dev/full here: test_append covers the failure path
    }
    int rc = ds_append("/dev/full", "x\n", 2, err, sizeof err);
    ck_assert_int_eq(rc, -ENOSPC);
    ck_assert_ptr_nonnull(strstr(err, "/dev/full: write: "));
    ck_assert_ptr_nonnull(strstr(err, strerror(ENOSPC)));
}
END_TEST

START_TEST(test_lock)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/run.lock", s_dir);
    int fd =
        ds_lock_file(path, "pid 42 on host h: descent run", err, sizeof err);
    ck_assert_int_ge(fd, 0);
    // A second lock (another open file, as another process has) is refused
    // and names the holder.
    int again = ds_lock_file(path, "pid 43", err, sizeof err);
    ck_assert_int_eq(again, -EBUSY);
    ck_assert_ptr_nonnull(strstr(err, "pid 42 on host h: descent run"));
    ck_assert_ptr_nonnull(strstr(err, path));
    // The holder's record is unchanged by the refused attempt.
    char  *rec = NULL;
    FILE  *f = fopen(path, "r");
    size_t cap = 0;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_gt(getline(&rec, &cap, f), 0);
    fclose(f);
    ck_assert_str_eq(rec, "pid 42 on host h: descent run\n");
    free(rec);
    // Released: the next one takes it.
    close(fd);
    fd = ds_lock_file(path, "pid 44", err, sizeof err);
    ck_assert_int_ge(fd, 0);
    close(fd);
}
END_TEST

START_TEST(test_remove_temps)
{
    const char *names[] = {"summary.json.tmp.a1B2c3",
                           "range-0.ckpt.tmp.XyZ789",
                           "keep.tmp",
                           "keep.tmp.abc",
                           "keep.tmp.abcdefg",
                           "keep.tmp.ab-def",
                           "range-1.ckpt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", s_dir, names[i]);
        FILE *f = fopen(p, "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
    }
    // A directory with a temporary file's name is not ours: left alone.
    char d[128];
    snprintf(d, sizeof d, "%s/x.tmp.qwerty", s_dir);
    ck_assert_int_eq(mkdir(d, 0700), 0);
    ck_assert_int_eq(ds_remove_temps(s_dir), 2);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", s_dir, names[i]);
        ck_assert_int_eq(access(p, F_OK) == 0, i >= 2);
    }
    ck_assert_int_eq(access(d, F_OK), 0);
    ck_assert_int_eq(ds_remove_temps(s_dir), 0);
    snprintf(d, sizeof d, "%s/none", s_dir);
    ck_assert_int_eq(ds_remove_temps(d), -ENOENT);
}
END_TEST

Suite *
ds_util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_append);
    tcase_add_test(tc, test_append_full_device);
    tcase_add_test(tc, test_lock);
    tcase_add_test(tc, test_remove_temps);
    suite_add_tcase(s, tc);
    return s;
}
