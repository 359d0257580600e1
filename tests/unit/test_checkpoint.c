// SPDX-License-Identifier: MIT
// test_checkpoint - range checkpoints: round trip, and every damaged file
// refused before it is trusted.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/checkpoint.h"
#include "tests/unit/suites.h"

static char s_path[64];

static void
s_setup(void)
{
    snprintf(s_path, sizeof s_path, "/tmp/descent-ckpt-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_path));
    strcat(s_path, "/r.ckpt");
}

static void
s_teardown(void)
{
    unlink(s_path);
    char dir[64];
    snprintf(dir, sizeof dir, "%s", s_path);
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
}

// s_write writes a checkpoint of 1,000 keys with two state arrays.
static void
s_write(float *w, float *a, float *b, uint64_t *seq)
{
    for (int i = 0; i < 1000; i++) {
        w[i] = (float)i * 0.5f - 3.0f;
        a[i] = (float)i;
        b[i] = -(float)i / 7.0f;
    }
    seq[0] = 17;
    seq[1] = 1ull << 40;
    seq[2] = 0;
    ds_ckpt_t c = {.range = 5,
                   .begin = 2000,
                   .end = 3000,
                   .epoch = 3,
                   .updates = 1234,
                   .t = 1234,
                   .rule = 6,
                   .nstate = 2,
                   .w = w,
                   .state = {a, b},
                   .nseq = 3,
                   .seq = seq};
    char      err[256];
    ck_assert_int_eq(ds_ckpt_write(s_path, &c, err, sizeof err), 0);
}

START_TEST(test_round_trip)
{
    static float w[1000], a[1000], b[1000];
    uint64_t     seq[3];
    s_write(w, a, b, seq);
    ds_ckpt_t c;
    char      err[256] = "";
    ck_assert_int_eq(ds_ckpt_read(s_path, &c, err, sizeof err), 0);
    ck_assert_uint_eq(c.range, 5);
    ck_assert_uint_eq(c.begin, 2000);
    ck_assert_uint_eq(c.end, 3000);
    ck_assert_uint_eq(c.epoch, 3);
    ck_assert_uint_eq(c.updates, 1234);
    ck_assert_uint_eq(c.t, 1234);
    ck_assert_int_eq(c.rule, 6);
    ck_assert_int_eq(c.nstate, 2);
    ck_assert_mem_eq(c.w, w, sizeof w);
    ck_assert_mem_eq(c.state[0], a, sizeof a);
    ck_assert_mem_eq(c.state[1], b, sizeof b);
    ck_assert_uint_eq(c.nseq, 3);
    ck_assert_mem_eq(c.seq, seq, sizeof seq);
    ck_assert_ptr_null(c.state[2]);
    ds_ckpt_fini(&c);
    ck_assert_ptr_null(c.w);
    // No temporary file is left beside it.
    char dir[64];
    snprintf(dir, sizeof dir, "%s", s_path);
    *strrchr(dir, '/') = '\0';
    char cmd[160];
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

// A snapshot keeps the values of the moment it was taken: the source's
// arrays change afterwards (pushes go on while it is written), and the
// file written from the copy holds the old values.
START_TEST(test_copy_is_a_snapshot)
{
    float     w[4] = {1, 2, 3, 4}, m[4] = {5, 6, 7, 8};
    uint64_t  seq[2] = {9, 10};
    ds_ckpt_t src = {.range = 1,
                     .begin = 10,
                     .end = 14,
                     .updates = 7,
                     .nstate = 1,
                     .w = w,
                     .state = {m},
                     .nseq = 2,
                     .seq = seq};
    ds_ckpt_t snap;
    ck_assert_int_eq(ds_ckpt_copy(&snap, &src), 0);
    w[0] = m[3] = -1;
    seq[1] = 99;
    char err[256];
    ck_assert_int_eq(ds_ckpt_write(s_path, &snap, err, sizeof err), 0);
    ds_ckpt_fini(&snap);
    ds_ckpt_t c;
    ck_assert_int_eq(ds_ckpt_read(s_path, &c, err, sizeof err), 0);
    const float    w0[4] = {1, 2, 3, 4}, m0[4] = {5, 6, 7, 8};
    const uint64_t s0[2] = {9, 10};
    ck_assert_uint_eq(c.updates, 7);
    ck_assert_mem_eq(c.w, w0, sizeof w0);
    ck_assert_mem_eq(c.state[0], m0, sizeof m0);
    ck_assert_mem_eq(c.seq, s0, sizeof s0);
    ds_ckpt_fini(&c);
}
END_TEST

// s_damage rewrites the byte at off (or truncates at off when truncate).
static void
s_damage(long off, int truncate_it)
{
    FILE *f = fopen(s_path, "r+b");
    ck_assert_ptr_nonnull(f);
    if (truncate_it) {
        ck_assert_int_eq(ftruncate(fileno(f), off), 0);
    } else {
        fseek(f, off, SEEK_SET);
        int ch = fgetc(f);
        fseek(f, off, SEEK_SET);
        fputc(ch ^ 0x40, f);
    }
    fclose(f);
}

START_TEST(test_damaged_files)
{
    static float w[1000], a[1000], b[1000];
    uint64_t     seq[3];
    ds_ckpt_t    c;
    char         err[256];
    // A flipped bit in the parameters: the CRC catches it.
    s_write(w, a, b, seq);
    s_damage(100, 0);
    ck_assert_int_eq(ds_ckpt_read(s_path, &c, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "damaged"));
    ck_assert_ptr_null(c.w);
    // Truncated: the sizes no longer match the header.
    s_write(w, a, b, seq);
    s_damage(5000, 1);
    ck_assert_int_eq(ds_ckpt_read(s_path, &c, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "does not match"));
    // A header claiming huge arrays is refused before any allocation.
    s_write(w, a, b, seq);
    s_damage(31, 0); // the high byte of end: 2^62 keys
    ck_assert_int_eq(ds_ckpt_read(s_path, &c, err, sizeof err), -EPROTO);
    // Not a checkpoint at all.
    s_write(w, a, b, seq);
    s_damage(0, 0);
    ck_assert_int_eq(ds_ckpt_read(s_path, &c, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "not a descent checkpoint"));
    // Empty, and cut inside the header (a write killed early): said so.
    FILE *f = fopen(s_path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(ds_ckpt_read(s_path, &c, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "empty/truncated checkpoint (0 bytes)"));
    s_write(w, a, b, seq);
    ck_assert_int_eq(truncate(s_path, 10), 0);
    ck_assert_int_eq(ds_ckpt_read(s_path, &c, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "empty/truncated checkpoint (10 bytes)"));
    unlink(s_path);
    ck_assert_int_eq(ds_ckpt_read(s_path, &c, err, sizeof err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, s_path));
}
END_TEST

Suite *
ds_checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_copy_is_a_snapshot);
    tcase_add_test(tc, test_damaged_files);
    suite_add_tcase(s, tc);
    return s;
}
