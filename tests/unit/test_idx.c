// SPDX-License-Identifier: MIT
// test_idx - IDX loading from files the tests write, plain and gzip.
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "common/idx.h"
#include "tests/unit/suites.h"
#include "tests/unit/tmpdir.h"

static char s_dir[64]; // per-test temporary directory

static void
s_setup(void)
{
    ut_tmpdir_make(s_dir, sizeof s_dir, "ds_idx");
}

static void
s_teardown(void)
{
    ut_tmpdir_remove(s_dir);
}

static const char *
s_path(const char *name)
{
    static char p[4][256];
    static int  next;
    char       *out = p[next++ % 4];
    snprintf(out, sizeof p[0], "%s/%s", s_dir, name);
    return out;
}

static void
s_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

// s_write writes header words hdr[0..nh) big-endian followed by data, keeps
// only the first keep bytes of that (SIZE_MAX: all), plain or gzip.
static void
s_write(const char *path, int gz, const uint32_t *hdr, int nh,
        const unsigned char *data, size_t len, size_t keep)
{
    size_t         total = 4 * (size_t)nh + len;
    unsigned char *buf = malloc(total);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < nh; i++) {
        s_be32(buf + 4 * i, hdr[i]);
    }
    if (len > 0) {
        memcpy(buf + 4 * nh, data, len);
    }
    if (keep < total) {
        total = keep;
    }
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (total > 0) {
            ck_assert_int_eq(gzwrite(f, buf, (unsigned)total), (int)total);
        }
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(buf, 1, total, f), total);
        ck_assert_int_eq(fclose(f), 0);
    }
    free(buf);
}

// s_pixel is the value of pixel j of image i in the generated files: the
// first two pixels spell the image index, so a loaded row names itself.
static unsigned char
s_pixel(size_t i, size_t j)
{
    if (j == 0) {
        return (unsigned char)(i & 0xff);
    }
    if (j == 1) {
        return (unsigned char)(i >> 8);
    }
    return (unsigned char)((i * 31 + j * 7) % 256);
}

static unsigned char
s_label(size_t i)
{
    return (unsigned char)((i * 7 + 3) % 10);
}

// s_make writes an n-image rows x cols dataset to images/labels (gzip when
// gz), with labels from label(i) and the image file cut to img_keep bytes.
static void
s_make(const char *images, const char *labels, int gz, uint32_t n,
       uint32_t rows, uint32_t cols, unsigned char (*label)(size_t),
       size_t img_keep)
{
    size_t         dim = (size_t)rows * cols;
    unsigned char *px = malloc(n * dim + 1);
    unsigned char *lb = malloc(n + 1);
    ck_assert_ptr_nonnull(px);
    ck_assert_ptr_nonnull(lb);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < dim; j++) {
            px[i * dim + j] = s_pixel(i, j);
        }
        lb[i] = label(i);
    }
    uint32_t ih[4] = {0x00000803, n, rows, cols};
    uint32_t lh[2] = {0x00000801, n};
    s_write(images, gz, ih, 4, px, n * dim, img_keep);
    s_write(labels, gz, lh, 2, lb, n, SIZE_MAX);
    free(px);
    free(lb);
}

// s_check_rows asserts that d holds exactly images first..first+d->n-1 of
// the generated data, with their labels.
static void
s_check_rows(const ds_dataset_t *d, size_t first,
             unsigned char (*label)(size_t))
{
    for (size_t r = 0; r < d->n; r++) {
        size_t i = first + r;
        for (size_t j = 0; j < d->dim; j++) {
            float want = (float)s_pixel(i, j) / 255.0f;
            ck_assert_float_eq(d->x[r * d->dim + j], want);
        }
        ck_assert_uint_eq(d->y[r], label(i));
    }
}

static void
s_roundtrip(int gz)
{
    const char *im = s_path(gz ? "im.gz" : "im");
    const char *lb = s_path(gz ? "lb.gz" : "lb");
    s_make(im, lb, gz, 300, 4, 3, s_label, SIZE_MAX);

    ds_dataset_t d;
    char         err[256] = "junk";
    ck_assert_int_eq(ds_idx_load(&d, im, lb, 0, 0, 1, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_uint_eq(d.n, 300);
    ck_assert_uint_eq(d.dim, 12);
    ck_assert_int_eq(d.classes, 10);
    s_check_rows(&d, 0, s_label);
    // Spot values against hand-computed ones: image 1 is 1, 0, then
    // (31 + 7j) % 256 for j = 2..; pixel 51 is 0.2 and 255 would be 1.
    ck_assert_float_eq(d.x[12 + 0], 1.0f / 255.0f);
    ck_assert_float_eq(d.x[12 + 1], 0.0f);
    ck_assert_float_eq(d.x[12 + 2], 45.0f / 255.0f);
    ck_assert_float_eq_tol(d.x[12 + 3], 52.0f / 255.0f, 1e-7);
    ck_assert_uint_eq(d.y[0], 3);
    ck_assert_uint_eq(d.y[1], 0);
    ck_assert_uint_eq(d.y[299], (299 * 7 + 3) % 10);
    ds_dataset_fini(&d);
    ck_assert_ptr_null(d.x);
    ck_assert_ptr_null(d.y);
    ck_assert_uint_eq(d.n, 0);
    ds_dataset_fini(&d);
}

START_TEST(test_roundtrip_plain)
{
    s_roundtrip(0);
}
END_TEST

START_TEST(test_roundtrip_gzip)
{
    s_roundtrip(1);
}
END_TEST

// Pixel 0 and 255 map to exactly 0 and 1.
START_TEST(test_pixel_scale)
{
    const unsigned char px[4] = {0, 51, 128, 255};
    const unsigned char lb[1] = {1};
    uint32_t            ih[4] = {0x00000803, 1, 2, 2};
    uint32_t            lh[2] = {0x00000801, 1};
    s_write(s_path("im"), 0, ih, 4, px, 4, SIZE_MAX);
    s_write(s_path("lb"), 0, lh, 2, lb, 1, SIZE_MAX);
    ds_dataset_t d;
    char         err[256];
    ck_assert_int_eq(
        ds_idx_load(&d, s_path("im"), s_path("lb"), 0, 0, 1, err, sizeof err),
        0);
    ck_assert_float_eq(d.x[0], 0.0f);
    ck_assert_float_eq_tol(d.x[1], 0.2f, 1e-7);
    ck_assert_float_eq_tol(d.x[2], 128.0f / 255.0f, 1e-7);
    ck_assert_float_eq(d.x[3], 1.0f);
    ck_assert_int_eq(d.classes, 2);
    ds_dataset_fini(&d);
}
END_TEST

// Every partition count splits the first m examples into contiguous slices
// that cover each example exactly once, sizes differing by at most one, and
// all agree on the number of classes of the whole file.
static void
s_partitions(int gz, size_t limit, size_t want_m)
{
    const char *im = s_path("pim");
    const char *lb = s_path("plb");
    s_make(im, lb, gz, 103, 2, 2, s_label, SIZE_MAX);
    const unsigned counts[] = {1, 2, 3, 7, 10, 13};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        unsigned P = counts[c];
        size_t   next = 0;
        for (unsigned p = 0; p < P; p++) {
            ds_dataset_t d;
            char         err[256];
            int rc = ds_idx_load(&d, im, lb, limit, p, P, err, sizeof err);
            ck_assert_msg(rc == 0, "P=%u p=%u: %d %s", P, p, rc, err);
            ck_assert_int_eq(d.classes, 10);
            ck_assert_uint_ge(d.n, want_m / P);
            ck_assert_uint_le(d.n, want_m / P + 1);
            // Rows name their own index: contiguous, in order, no gaps.
            s_check_rows(&d, next, s_label);
            next += d.n;
            ds_dataset_fini(&d);
        }
        ck_assert_uint_eq(next, want_m);
    }
}

// A range and the header count: what a validation split is made of.
START_TEST(test_range_and_count)
{
    const char *im = s_path("im.gz");
    const char *lb = s_path("lb.gz");
    s_make(im, lb, 1, 50, 2, 2, s_label, SIZE_MAX);
    uint64_t n = 0;
    char     err[256] = "";
    ck_assert_int_eq(ds_idx_count(im, &n, err, sizeof err), 0);
    ck_assert_uint_eq(n, 50);
    ds_dataset_t d;
    ck_assert_int_eq(ds_idx_load_range(&d, im, lb, 40, 50, err, sizeof err), 0);
    ck_assert_uint_eq(d.n, 10);
    s_check_rows(&d, 40, s_label);
    ds_dataset_fini(&d);
    ck_assert_int_eq(ds_idx_load_range(&d, im, lb, 40, 51, err, sizeof err),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "[40, 51)"));
    ck_assert_int_eq(ds_idx_load_range(&d, im, lb, 5, 5, err, sizeof err),
                     -EINVAL);
    ck_assert_int_eq(ds_idx_count(s_path("nope"), &n, err, sizeof err),
                     -ENOENT);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_partitions_cover_once)
{
    s_partitions(0, 0, 103);
    s_partitions(1, 0, 103);
}
END_TEST

START_TEST(test_limit)
{
    s_partitions(0, 50, 50);
    s_partitions(1, 1000, 103);

    ds_dataset_t d;
    char         err[256];
    ck_assert_int_eq(
        ds_idx_load(&d, s_path("pim"), s_path("plb"), 5, 0, 1, err, sizeof err),
        0);
    ck_assert_uint_eq(d.n, 5);
    s_check_rows(&d, 0, s_label);
    ds_dataset_fini(&d);
}
END_TEST

static unsigned char
s_label_max_last(size_t i)
{
    return i == 99 ? 6 : (unsigned char)(i % 2);
}

// The number of classes comes from the whole label file, even when the
// limit or the partition never sees the largest label.
START_TEST(test_classes_from_whole_file)
{
    s_make(s_path("im"), s_path("lb"), 0, 100, 1, 2, s_label_max_last,
           SIZE_MAX);
    ds_dataset_t d;
    char         err[256];
    ck_assert_int_eq(
        ds_idx_load(&d, s_path("im"), s_path("lb"), 10, 0, 2, err, sizeof err),
        0);
    ck_assert_uint_eq(d.n, 5);
    ck_assert_int_eq(d.classes, 7);
    s_check_rows(&d, 0, s_label_max_last);
    ds_dataset_fini(&d);
}
END_TEST

static unsigned char
s_label_zero(size_t i)
{
    (void)i;
    return 0;
}

START_TEST(test_at_least_two_classes)
{
    s_make(s_path("im"), s_path("lb"), 1, 4, 1, 1, s_label_zero, SIZE_MAX);
    ds_dataset_t d;
    char         err[256];
    ck_assert_int_eq(
        ds_idx_load(&d, s_path("im"), s_path("lb"), 0, 0, 1, err, sizeof err),
        0);
    ck_assert_int_eq(d.classes, 2);
    ds_dataset_fini(&d);
}
END_TEST

// s_expect_fail loads images/labels and asserts the return code, that d is
// left empty, and that err contains both substrings (NULL: skip).
static void
s_expect_fail(const char *im, const char *lb, size_t limit, unsigned part,
              unsigned nparts, int want_rc, const char *sub1, const char *sub2)
{
    ds_dataset_t d;
    char         err[512];
    memset(err, 'x', sizeof err);
    int rc = ds_idx_load(&d, im, lb, limit, part, nparts, err, sizeof err);
    ck_assert_msg(rc == want_rc, "rc %d, want %d (%s)", rc, want_rc, err);
    ck_assert_ptr_nonnull(memchr(err, '\0', sizeof err));
    ck_assert_ptr_null(d.x);
    ck_assert_ptr_null(d.y);
    ck_assert_uint_eq(d.n, 0);
    if (sub1 != NULL) {
        ck_assert_msg(strstr(err, sub1) != NULL, "'%s' not in '%s'", sub1, err);
    }
    if (sub2 != NULL) {
        ck_assert_msg(strstr(err, sub2) != NULL, "'%s' not in '%s'", sub2, err);
    }
}

// A cut image file fails in every partition, including those whose slice
// is complete, so workers agree on whether the file is usable.
START_TEST(test_truncated_images)
{
    for (int gz = 0; gz <= 1; gz++) {
        const char *im = s_path("tim");
        const char *lb = s_path("tlb");
        // 40 images of 4 pixels; the file stops inside image 30.
        s_make(im, lb, gz, 40, 2, 2, s_label, 16 + 30 * 4 + 2);
        for (unsigned p = 0; p < 4; p++) {
            s_expect_fail(im, lb, 0, p, 4, -EPROTO, im, "truncated");
        }
        // The limit excludes the cut, yet the file is still wrong.
        s_expect_fail(im, lb, 20, 0, 1, -EPROTO, im, "truncated");
        // Header cut short.
        s_make(im, lb, gz, 40, 2, 2, s_label, 10);
        s_expect_fail(im, lb, 0, 0, 1, -EPROTO, im, "header");
    }
}
END_TEST

START_TEST(test_truncated_labels)
{
    unsigned char lb[5] = {1, 2, 3, 4, 5};
    uint32_t      lh[2] = {0x00000801, 10};
    s_make(s_path("im"), s_path("lb"), 0, 10, 2, 2, s_label, SIZE_MAX);
    s_write(s_path("lb"), 0, lh, 2, lb, 5, SIZE_MAX);
    s_expect_fail(s_path("im"), s_path("lb"), 0, 0, 1, -EPROTO, s_path("lb"),
                  "truncated");
}
END_TEST

// A gzip file cut in the middle of its compressed stream.
START_TEST(test_truncated_gzip_stream)
{
    const char *im = s_path("cim.gz");
    const char *lb = s_path("clb.gz");
    s_make(im, lb, 1, 2000, 28, 28, s_label, SIZE_MAX);
    struct stat st;
    ck_assert_int_eq(stat(im, &st), 0);
    ck_assert_int_eq(truncate(im, st.st_size / 2), 0);
    s_expect_fail(im, lb, 0, 0, 1, -EPROTO, im, NULL);
    s_expect_fail(im, lb, 0, 0, 3, -EPROTO, im, NULL);
}
END_TEST

START_TEST(test_bad_magic)
{
    const char *im = s_path("im");
    const char *lb = s_path("lb");
    s_make(im, lb, 0, 10, 2, 2, s_label, SIZE_MAX);
    // Files swapped: each has the other's magic.
    s_expect_fail(lb, im, 0, 0, 1, -EPROTO, lb, "magic");
    s_expect_fail(im, im, 0, 0, 1, -EPROTO, im, "0x00000801");

    // Not an IDX file at all, plain or gzip.
    const unsigned char text[] = "hello, this is not an idx file";
    uint32_t            none[1] = {0x7f454c46};
    s_write(s_path("junk"), 0, none, 1, text, sizeof text, SIZE_MAX);
    s_expect_fail(s_path("junk"), lb, 0, 0, 1, -EPROTO, "junk", "magic");
    s_write(s_path("junk.gz"), 1, none, 1, text, sizeof text, SIZE_MAX);
    s_expect_fail(s_path("junk.gz"), lb, 0, 0, 1, -EPROTO, "junk.gz", "magic");
}
END_TEST

START_TEST(test_bad_dims)
{
    const char *im = s_path("im");
    const char *lb = s_path("lb");
    s_make(im, lb, 0, 10, 2, 2, s_label, SIZE_MAX);
    uint32_t zero_rows[4] = {0x00000803, 10, 0, 28};
    s_write(im, 0, zero_rows, 4, NULL, 0, SIZE_MAX);
    s_expect_fail(im, lb, 0, 0, 1, -EPROTO, im, "0x28");
    uint32_t zero_cols[4] = {0x00000803, 10, 28, 0};
    s_write(im, 0, zero_cols, 4, NULL, 0, SIZE_MAX);
    s_expect_fail(im, lb, 0, 0, 1, -EPROTO, im, "28x0");
    // n * rows * cols overflows 64 bits; no allocation is attempted.
    uint32_t huge[4] = {0x00000803, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    s_write(im, 0, huge, 4, NULL, 0, SIZE_MAX);
    s_expect_fail(im, lb, 0, 0, 1, -EPROTO, im, "too large");
}
END_TEST

START_TEST(test_count_mismatch)
{
    const char *im = s_path("im");
    const char *lb = s_path("lb");
    s_make(im, lb, 1, 10, 2, 2, s_label, SIZE_MAX);
    unsigned char labels[9] = {0};
    uint32_t      lh[2] = {0x00000801, 9};
    s_write(lb, 1, lh, 2, labels, 9, SIZE_MAX);
    s_expect_fail(im, lb, 0, 0, 1, -EINVAL, "10 images", "9 labels");
}
END_TEST

START_TEST(test_missing_file)
{
    const char *im = s_path("im");
    const char *lb = s_path("lb");
    s_make(im, lb, 0, 10, 2, 2, s_label, SIZE_MAX);
    const char *nope = s_path("no-such-file.gz");
    s_expect_fail(nope, lb, 0, 0, 1, -ENOENT, nope, NULL);
    s_expect_fail(im, nope, 0, 0, 1, -ENOENT, nope, NULL);
    // A directory is not a file either; the read fails cleanly.
    s_expect_fail(s_dir, lb, 0, 0, 1, -EISDIR, s_dir, NULL);
}
END_TEST

START_TEST(test_bad_arguments)
{
    const char *im = s_path("im");
    const char *lb = s_path("lb");
    s_make(im, lb, 0, 3, 2, 2, s_label, SIZE_MAX);
    s_expect_fail(im, lb, 0, 0, 0, -EINVAL, "partition", NULL);
    s_expect_fail(im, lb, 0, 2, 2, -EINVAL, "partition", NULL);
    // Three examples in four parts leave part 0 empty.
    s_expect_fail(im, lb, 0, 0, 4, -EINVAL, "empty", NULL);
    char err[8];
    ck_assert_int_eq(ds_idx_load(NULL, im, lb, 0, 0, 1, err, sizeof err),
                     -EINVAL);
    ck_assert_uint_lt(strlen(err), sizeof err);
    // A tiny err buffer is still terminated; a NULL one is allowed.
    ds_dataset_t d;
    ck_assert_int_eq(ds_idx_load(&d, im, s_path("x"), 0, 0, 1, err, 4),
                     -ENOENT);
    ck_assert_uint_eq(strlen(err), 3);
    ck_assert_int_eq(ds_idx_load(&d, im, s_path("x"), 0, 0, 1, NULL, 0),
                     -ENOENT);
}
END_TEST

// s_find expects ds_idx_find(s_dir, name) to return rc with err exactly
// want (want_path: the path it chose).
static void
s_find(const char *name, int rc, const char *want_path, const char *want)
{
    char path[256], err[512];
    ck_assert_int_eq(
        ds_idx_find(s_dir, name, path, sizeof path, err, sizeof err), rc);
    ck_assert_str_eq(path, want_path);
    ck_assert_str_eq(err, want);
}

START_TEST(test_find_reports_real_errno)
{
    char want[512];
    // Neither file: the install advice.
    snprintf(want, sizeof want,
             "missing dataset file %s(.gz): install the Debian package "
             "dataset-fashion-mnist (make deps) or set data.data_dir",
             s_path("none"));
    s_find("none", -ENOENT, s_path("none"), want);
    // The plain file, then the compressed one first.
    s_make(s_path("im"), s_path("lb"), 0, 3, 2, 2, s_label, SIZE_MAX);
    s_find("im", 0, s_path("im"), "");
    s_make(s_path("im.gz"), s_path("lb.gz"), 1, 3, 2, 2, s_label, SIZE_MAX);
    s_find("im", 0, s_path("im.gz"), "");
    // There but unreadable: its own error, no advice, and no falling back
    // to the plain file beside it.
    ck_assert_int_eq(mkdir(s_path("lb.gz.gz"), 0755), 0);
    snprintf(want, sizeof want, "cannot read %s: %s", s_path("lb.gz.gz"),
             strerror(EISDIR));
    s_find("lb.gz", -EISDIR, s_path("lb.gz.gz"), want);
    ck_assert_int_eq(symlink(s_path("loop"), s_path("loop")), 0);
    snprintf(want, sizeof want, "cannot read %s: %s", s_path("loop"),
             strerror(ELOOP));
    s_find("loop", -ELOOP, s_path("loop"), want);
}
END_TEST

// A file without read permission is "Permission denied", not missing. The
// tests run as root, which reads any file, so a child process drops to
// nobody (uid 65534) first and reports through a pipe.
START_TEST(test_find_permission_denied)
{
    const char *im = s_path("im");
    s_make(im, s_path("lb"), 0, 3, 2, 2, s_label, SIZE_MAX);
    ck_assert_int_eq(chmod(s_dir, 0755), 0);
    ck_assert_int_eq(chmod(im, 0), 0);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
            _exit(255);
        }
        char path[256], err[512] = "";
        int  rc = ds_idx_find(s_dir, "im", path, sizeof path, err, sizeof err);
        ssize_t n = write(fds[1], err, strlen(err));
        _exit(n >= 0 ? -rc : 254);
    }
    close(fds[1]);
    char    err[512];
    ssize_t n = read(fds[0], err, sizeof err - 1);
    close(fds[0]);
    err[n > 0 ? n : 0] = '\0';
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), EACCES);
    char want[512];
    snprintf(want, sizeof want, "cannot read %s: %s", im, strerror(EACCES));
    ck_assert_str_eq(err, want);
}
END_TEST

Suite *
ds_idx_suite(void)
{
    Suite *s = suite_create("idx");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_roundtrip_plain);
    tcase_add_test(tc, test_roundtrip_gzip);
    tcase_add_test(tc, test_pixel_scale);
    tcase_add_test(tc, test_partitions_cover_once);
    tcase_add_test(tc, test_limit);
    tcase_add_test(tc, test_range_and_count);
    tcase_add_test(tc, test_classes_from_whole_file);
    tcase_add_test(tc, test_at_least_two_classes);
    tcase_add_test(tc, test_truncated_images);
    tcase_add_test(tc, test_truncated_labels);
    tcase_add_test(tc, test_truncated_gzip_stream);
    tcase_add_test(tc, test_bad_magic);
    tcase_add_test(tc, test_bad_dims);
    tcase_add_test(tc, test_count_mismatch);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_find_reports_real_errno);
    tcase_add_test(tc, test_find_permission_denied);
    suite_add_tcase(s, tc);
    return s;
}
