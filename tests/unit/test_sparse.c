// SPDX-License-Identifier: MIT
// test_sparse - LIBSVM loading, feature hashing, sparse logistic regression
// and the synthetic data of `descent datagen`.
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cli/datagen.h"
#include "common/libsvm.h"
#include "common/logreg.h"
#include "common/rng.h"
#include "tests/unit/suites.h"
#include "tests/unit/tmpdir.h"

static char s_dir[64]; // per-test temporary directory

static void
s_setup(void)
{
    ut_tmpdir_make(s_dir, sizeof s_dir, "ds_sparse");
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

// s_write writes len bytes of text to path, gzip-compressed when gz.
static void
s_write(const char *path, int gz, const char *text, size_t len)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (len > 0) {
            ck_assert_int_eq(gzwrite(f, text, (unsigned)len), (int)len);
        }
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(text, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
    }
}

// s_read_all returns the bytes of a file (NUL-terminated; caller frees) and
// its size in *len.
static char *
s_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static ds_libsvm_opts_t
s_opts(unsigned bits, bool no_hash)
{
    return (ds_libsvm_opts_t){
        .hash_bits = bits, .no_hash = no_hash, .nparts = 1};
}

// s_row_is asserts that row i of d has label y and exactly the m given
// keys and values.
static void
s_row_is(const ds_sparse_t *d, size_t i, int y, size_t m, const uint64_t *keys,
         const float *vals)
{
    ck_assert_uint_lt(i, d->n);
    ck_assert_int_eq(d->y[i], y);
    ck_assert_uint_eq(d->offsets[i + 1] - d->offsets[i], m);
    for (size_t k = 0; k < m; k++) {
        ck_assert_uint_eq(d->keys[d->offsets[i] + k], keys[k]);
        ck_assert_float_eq(d->vals[d->offsets[i] + k], vals[k]);
    }
}

// The reference file: comments, blank lines, every label spelling, a query
// id, CRLF, tabs, a label-only row, repeated indices, no final newline.
static const char s_small[] = "# a header comment\n"
                              "+1 3:0.5 1:2 # trailing comment\n"
                              "\n"
                              "-1 2:1.5e1\t7:-0.25\n"
                              "   \t\n"
                              "   # indented comment\n"
                              "0 qid:4 5:1\r\n"
                              "1.0\n"
                              "1 4:3 4:1 2:0";

static void
s_parse_small(int gz)
{
    const char *p = s_path(gz ? "small.svm.gz" : "small.svm");
    s_write(p, gz, s_small, strlen(s_small));
    ds_sparse_t      d;
    ds_libsvm_opts_t o = s_opts(4, true);
    char             err[256] = "junk";
    ck_assert_int_eq(ds_libsvm_load(&d, p, &o, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_uint_eq(d.n, 5);
    ck_assert_uint_eq(d.nnz, 7);
    const size_t off[] = {0, 2, 4, 5, 5, 7};
    for (size_t i = 0; i <= 5; i++) {
        ck_assert_uint_eq(d.offsets[i], off[i]);
    }
    s_row_is(&d, 0, 1, 2, (uint64_t[]){1, 3}, (float[]){2.0f, 0.5f});
    s_row_is(&d, 1, 0, 2, (uint64_t[]){2, 7}, (float[]){15.0f, -0.25f});
    s_row_is(&d, 2, 0, 1, (uint64_t[]){5}, (float[]){1.0f});
    s_row_is(&d, 3, 1, 0, NULL, NULL);
    // 4:3 and 4:1 are summed; an explicit zero is kept.
    s_row_is(&d, 4, 1, 2, (uint64_t[]){2, 4}, (float[]){0.0f, 4.0f});
    ds_sparse_fini(&d);
    ck_assert_ptr_null(d.keys);
    ck_assert_uint_eq(d.n, 0);
    ds_sparse_fini(&d);
}

START_TEST(test_parse_plain)
{
    s_parse_small(0);
}
END_TEST

START_TEST(test_parse_gzip)
{
    s_parse_small(1);
}
END_TEST

// Hashed keys: what ds_libsvm_hash says, sorted per row, and entries whose
// indices collide are summed.
START_TEST(test_hashed_duplicates_summed)
{
    // Two indices with the same 4-bit key and a third with another.
    uint64_t a = 1, b = 0, c = 0;
    for (uint64_t i = 2; b == 0 || c == 0; i++) {
        if (ds_libsvm_hash(i, 4) == ds_libsvm_hash(a, 4)) {
            b = b == 0 ? i : b;
        } else if (c == 0) {
            c = i;
        }
    }
    char text[256];
    snprintf(text, sizeof text, "1 %llu:1 %llu:10 %llu:100\n-1 1:1 2:2 3:4\n",
             (unsigned long long)a, (unsigned long long)b,
             (unsigned long long)c);
    s_write(s_path("h.svm"), 0, text, strlen(text));
    ds_sparse_t      d;
    ds_libsvm_opts_t o = s_opts(4, false);
    char             err[256];
    ck_assert_int_eq(ds_libsvm_load(&d, s_path("h.svm"), &o, err, sizeof err),
                     0);
    uint64_t ka = ds_libsvm_hash(a, 4), kc = ds_libsvm_hash(c, 4);
    uint64_t keys[2] = {ka < kc ? ka : kc, ka < kc ? kc : ka};
    float    vals[2] = {ka < kc ? 11.0f : 100.0f, ka < kc ? 100.0f : 11.0f};
    s_row_is(&d, 0, 1, 2, keys, vals);
    ds_sparse_fini(&d);

    // One bit of hash: every feature is key 1, the bias key 0 stays free.
    o = s_opts(1, false);
    ck_assert_int_eq(ds_libsvm_load(&d, s_path("h.svm"), &o, err, sizeof err),
                     0);
    s_row_is(&d, 0, 1, 1, (uint64_t[]){1}, (float[]){111.0f});
    s_row_is(&d, 1, 0, 1, (uint64_t[]){1}, (float[]){7.0f});
    ds_sparse_fini(&d);
}
END_TEST

START_TEST(test_zero_based)
{
    const char *text = "1 0:1 3:2\n";
    s_write(s_path("z.svm"), 0, text, strlen(text));
    ds_sparse_t      d;
    ds_libsvm_opts_t o = s_opts(4, true);
    o.zero_based = true;
    char err[256];
    ck_assert_int_eq(ds_libsvm_load(&d, s_path("z.svm"), &o, err, sizeof err),
                     0);
    s_row_is(&d, 0, 1, 2, (uint64_t[]){1, 4}, (float[]){1.0f, 2.0f});
    ds_sparse_fini(&d);
    // Hashing uses the 1-based id, so both numberings give the same keys.
    o = s_opts(20, false);
    o.zero_based = true;
    ck_assert_int_eq(ds_libsvm_load(&d, s_path("z.svm"), &o, err, sizeof err),
                     0);
    ck_assert_uint_eq(d.nnz, 2);
    uint64_t k1 = ds_libsvm_hash(1, 20), k4 = ds_libsvm_hash(4, 20);
    ck_assert_uint_eq(d.keys[0], k1 < k4 ? k1 : k4);
    ck_assert_uint_eq(d.keys[1], k1 < k4 ? k4 : k1);
    ds_sparse_fini(&d);
}
END_TEST

// s_numbered writes a file whose data line k is "+1 1:k" (k = 0..n-1),
// with comments and blank lines between, and returns its path.
static const char *
s_numbered(int gz, size_t n)
{
    size_t cap = 64 * n + 64, len = 0;
    char  *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    for (size_t k = 0; k < n; k++) {
        if (k % 5 == 0) {
            len += (size_t)snprintf(text + len, cap - len, "# block %zu\n\n",
                                    k / 5);
        }
        len += (size_t)snprintf(text + len, cap - len, "%s 1:%zu\n",
                                k % 2 ? "-1" : "+1", k);
    }
    const char *p = s_path(gz ? "num.svm.gz" : "num.svm");
    s_write(p, gz, text, len);
    free(text);
    return p;
}

// s_cover loads every partition of `limit` data lines of the numbered
// file in P parts and checks that partition p holds exactly the lines
// k with k % P == p, in order, so that all cover each line once.
static void
s_cover(const char *p, size_t n, size_t limit, unsigned P)
{
    size_t m = limit != 0 && limit < n ? limit : n;
    char  *seen = calloc(m, 1);
    ck_assert_ptr_nonnull(seen);
    for (unsigned part = 0; part < P; part++) {
        ds_sparse_t      d;
        ds_libsvm_opts_t o = s_opts(8, true);
        o.part = part;
        o.nparts = P;
        o.limit = limit;
        char err[256];
        int  rc = ds_libsvm_load(&d, p, &o, err, sizeof err);
        if (part >= m) {
            ck_assert_int_eq(rc, -EINVAL);
            ck_assert_ptr_nonnull(strstr(err, "is empty"));
            continue;
        }
        ck_assert_msg(rc == 0, "P=%u p=%u: %s", P, part, err);
        ck_assert_uint_eq(d.n, (m - part + P - 1) / P);
        for (size_t i = 0; i < d.n; i++) {
            size_t k = (size_t)d.vals[d.offsets[i]];
            ck_assert_uint_eq(k, part + i * P);
            ck_assert_int_eq(d.y[i], k % 2 == 0);
            ck_assert_int_eq(seen[k], 0);
            seen[k] = 1;
        }
        ds_sparse_fini(&d);
    }
    for (size_t k = 0; k < m; k++) {
        ck_assert_msg(seen[k] == 1, "line %zu not covered (P=%u)", k, P);
    }
    free(seen);
}

START_TEST(test_partitions_cover_once)
{
    for (int gz = 0; gz <= 1; gz++) {
        const char    *p = s_numbered(gz, 37);
        const unsigned counts[] = {1, 2, 3, 5, 8, 36, 37, 40};
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            s_cover(p, 37, 0, counts[c]);
        }
    }
}
END_TEST

START_TEST(test_limit)
{
    const char *p = s_numbered(0, 37);
    s_cover(p, 37, 10, 1);
    s_cover(p, 37, 10, 3);
    s_cover(p, 37, 1000, 4);
}
END_TEST

// s_expect_bad writes "# c\n\n1 1:1\n<bad>\n1 2:1\n", so the bad line is
// line 4 of the file and data line 1, and asserts the exact error.
static void
s_expect_bad(int gz, const char *bad, size_t badlen, unsigned bits,
             bool no_hash, int want_rc, const char *want)
{
    char text[512];
    int  n = snprintf(text, sizeof text, "# c\n\n1 1:1\n");
    memcpy(text + n, bad, badlen);
    n += (int)badlen;
    n += snprintf(text + n, sizeof text - (size_t)n, "\n1 2:1\n");
    const char *p = s_path(gz ? "bad.svm.gz" : "bad.svm");
    s_write(p, gz, text, (size_t)n);

    ds_sparse_t      d;
    ds_libsvm_opts_t o = s_opts(bits, no_hash);
    char             err[512], full[600];
    memset(err, 'x', sizeof err);
    int rc = ds_libsvm_load(&d, p, &o, err, sizeof err);
    snprintf(full, sizeof full, "%s:4: %s", p, want);
    ck_assert_msg(rc == want_rc, "%s: rc %d, want %d (%s)", bad, rc, want_rc,
                  err);
    ck_assert_str_eq(err, full);
    ck_assert_ptr_null(d.keys);
    ck_assert_ptr_null(d.offsets);
    ck_assert_uint_eq(d.n, 0);

    // The bad line is data line 1: partition 0 of 2 never parses it.
    o.nparts = 2;
    ck_assert_int_eq(ds_libsvm_load(&d, p, &o, err, sizeof err), 0);
    ck_assert_uint_eq(d.n, 2);
    ds_sparse_fini(&d);
}

// s_bad_case is one malformed line and its exact error after "path:4: ".
typedef struct {
    const char *line; // the bad line
    int         rc;   // expected return
    const char *err;  // expected message after "path:4: "
} s_bad_case;

static const s_bad_case s_bad_cases[] = {
    {"3:1 4:1", -EPROTO, "missing label: the line starts with \"3:1\""},
    {"2 3:1", -EPROTO, "bad label \"2\": must be 1, 0 or -1"},
    {"yes 3:1", -EPROTO, "bad label \"yes\": not a number"},
    {"1x 3:1", -EPROTO, "bad label \"1x\": not a number"},
    {"1 3x:1", -EPROTO, "bad feature \"3x:1\": index is not a number"},
    {"1 x:1", -EPROTO, "bad feature \"x:1\": index is not a number"},
    {"1 -3:1", -EPROTO, "bad feature \"-3:1\": negative index"},
    {"1 99999999999999999999:1", -EPROTO,
     "bad feature \"99999999999999999999:1\": index is too large"},
    {"1 3", -EPROTO, "bad feature \"3\": missing ':'"},
    {"1 3:", -EPROTO, "bad feature \"3:\": missing value"},
    {"1 3:abc", -EPROTO, "bad feature \"3:abc\": value is not a number"},
    {"1 3:1.5x", -EPROTO, "bad feature \"3:1.5x\": junk after the value"},
    {"1 3:1:2", -EPROTO, "bad feature \"3:1:2\": junk after the value"},
    {"1 3:nan", -EPROTO, "bad feature \"3:nan\": value is not a finite float"},
    {"1 3:-inf", -EPROTO,
     "bad feature \"3:-inf\": value is not a finite float"},
    {"1 3:1e39", -EPROTO,
     "bad feature \"3:1e39\": value is not a finite float"},
    {"1 3:1 junk", -EPROTO, "bad feature \"junk\": index is not a number"},
    {"1 qid:x 3:1", -EPROTO, "bad query id \"qid:x\": not a number"},
    {"1 3:3e38 3:3e38", -EPROTO,
     "the values of key 3 sum to a non-finite float"},
    {"1 0:1", -EINVAL, "bad feature \"0:1\": index 0 in a 1-based file"},
    {"1 1:0.5 "
     "123456789012345678901234567890123456789012345678901234567890:1",
     -EPROTO,
     "bad feature \"123456789012345678901234567890123456789012345678...\": "
     "index is too large"},
};

START_TEST(test_malformed_lines)
{
    for (int gz = 0; gz <= 1; gz++) {
        for (size_t i = 0; i < sizeof s_bad_cases / sizeof s_bad_cases[0];
             i++) {
            const s_bad_case *c = &s_bad_cases[i];
            s_expect_bad(gz, c->line, strlen(c->line), 4, true, c->rc, c->err);
        }
        // Without hashing a feature must fit the key space.
        s_expect_bad(gz, "1 16:1", 6, 4, true, -EINVAL,
                     "bad feature \"16:1\": feature 16 does not fit "
                     "hash_bits 4 without hashing");
        // A NUL would cut the line short; it is an error instead.
        s_expect_bad(gz, "1 3:1\0 5:1", 10, 4, true, -EPROTO,
                     "NUL byte in line");
    }
}
END_TEST

START_TEST(test_missing_file)
{
    ds_sparse_t      d;
    ds_libsvm_opts_t o = s_opts(10, false);
    char             err[256], want[300];
    const char      *p = s_path("nope.svm");
    ck_assert_int_eq(ds_libsvm_load(&d, p, &o, err, sizeof err), -ENOENT);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory",
             p);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(d.keys);
}
END_TEST

START_TEST(test_bad_options)
{
    s_write(s_path("ok.svm"), 0, "1 1:1\n", 6);
    ds_sparse_t      d;
    char             err[256];
    ds_libsvm_opts_t o = s_opts(0, false);
    ck_assert_int_eq(ds_libsvm_load(&d, s_path("ok.svm"), &o, err, sizeof err),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "hash_bits 0 is not within [1, 40]"));
    o.hash_bits = 41;
    ck_assert_int_eq(ds_libsvm_load(&d, s_path("ok.svm"), &o, err, sizeof err),
                     -EINVAL);
    o = s_opts(40, false);
    o.nparts = 0;
    ck_assert_int_eq(ds_libsvm_load(&d, s_path("ok.svm"), &o, err, sizeof err),
                     -EINVAL);
    o.nparts = 2;
    o.part = 2;
    ck_assert_int_eq(ds_libsvm_load(&d, s_path("ok.svm"), &o, err, sizeof err),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "bad partition 2 of 2"));
    ck_assert_int_eq(ds_libsvm_load(&d, NULL, &o, err, sizeof err), -EINVAL);
    ck_assert_uint_eq(d.n, 0);
    // A file of comments has no data: partition 0 of 1 is empty.
    s_write(s_path("empty.svm"), 0, "# nothing\n\n", 11);
    o = s_opts(10, false);
    ck_assert_int_eq(
        ds_libsvm_load(&d, s_path("empty.svm"), &o, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "has 0 data lines"));
    // 40 bits, the most, hashes into [1, 2^40).
    o = s_opts(40, false);
    ck_assert_int_eq(ds_libsvm_load(&d, s_path("ok.svm"), &o, err, sizeof err),
                     0);
    ck_assert_uint_eq(d.keys[0], ds_libsvm_hash(1, 40));
    ck_assert_uint_lt(d.keys[0], 1ULL << 40);
    ds_sparse_fini(&d);
}
END_TEST

START_TEST(test_corrupt_gzip)
{
    const char *p = s_path("c.svm.gz");
    char        text[4096];
    size_t      len = 0;
    for (int i = 0; i < 200; i++) {
        len +=
            (size_t)snprintf(text + len, sizeof text - len, "1 %d:1\n", i + 1);
    }
    s_write(p, 1, text, len);
    size_t n = 0;
    char  *gz = s_read_all(p, &n);
    s_write(p, 0, gz, n / 2); // cut the compressed stream in half
    free(gz);
    ds_sparse_t      d;
    ds_libsvm_opts_t o = s_opts(10, false);
    char             err[256], want[300];
    ck_assert_int_eq(ds_libsvm_load(&d, p, &o, err, sizeof err), -EPROTO);
    snprintf(want, sizeof want, "%s: bad gzip data", p);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
}
END_TEST

// Lines longer than zlib's and the reader's chunks are assembled; lines
// up to DS_LIBSVM_MAX_LINE bytes are fine and longer ones fail by number.
START_TEST(test_long_lines)
{
    size_t cap = 3 * DS_LIBSVM_MAX_LINE;
    char  *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    size_t len = (size_t)snprintf(text, cap, "1 1:1\n-1");
    size_t line2 = len - 2;
    int    nfeat = 0;
    // Line 2 is exactly DS_LIBSVM_MAX_LINE bytes: features, then blanks.
    while (len - line2 + 16 < DS_LIBSVM_MAX_LINE) {
        len += (size_t)snprintf(text + len, cap - len, " %d:1", ++nfeat);
    }
    while (len - line2 < DS_LIBSVM_MAX_LINE) {
        text[len++] = ' ';
    }
    text[len++] = '\n';
    for (int gz = 0; gz <= 1; gz++) {
        const char *p = s_path(gz ? "long.svm.gz" : "long.svm");
        s_write(p, gz, text, len);
        ds_sparse_t      d;
        ds_libsvm_opts_t o = s_opts(24, true);
        char             err[256];
        ck_assert_int_eq(ds_libsvm_load(&d, p, &o, err, sizeof err), 0);
        ck_assert_uint_eq(d.n, 2);
        ck_assert_int_eq(d.y[1], 0);
        ck_assert_uint_eq(d.offsets[2] - d.offsets[1], (size_t)nfeat);
        for (size_t e = d.offsets[1]; e < d.offsets[2]; e++) {
            ck_assert_uint_eq(d.keys[e], e - d.offsets[1] + 1);
        }
        ds_sparse_fini(&d);
    }
    // One more byte is too long.
    text[len - 1] = ' ';
    text[len++] = '\n';
    len += (size_t)snprintf(text + len, cap - len, "1 1:1\n");
    for (int gz = 0; gz <= 1; gz++) {
        const char *p = s_path(gz ? "long.svm.gz" : "long.svm");
        s_write(p, gz, text, len);
        ds_sparse_t      d;
        ds_libsvm_opts_t o = s_opts(24, false);
        char             err[256], want[300];
        ck_assert_int_eq(ds_libsvm_load(&d, p, &o, err, sizeof err), -EMSGSIZE);
        snprintf(want, sizeof want, "%s:2: line longer than 1048576 bytes", p);
        ck_assert_str_eq(err, want);
    }
    free(text);
}
END_TEST

// s_ref_hash is the documented key, written out again here: with h the
// mixed id, floor(h * (2^b - 1) / 2^64) = floor((h * 2^b - h) / 2^64),
// which is the top b bits of h, less one when the low word h << b is
// smaller than the h it loses.
static uint64_t
s_ref_hash(uint64_t id, unsigned bits)
{
    uint64_t z = id + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    uint64_t top = z >> (64 - bits);
    uint64_t low = z << bits;
    return 1 + (low >= z ? top : top - 1);
}

START_TEST(test_hash)
{
    const unsigned bits[] = {1, 2, 4, 12, 20, 32, 40};
    for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++) {
        uint64_t top = 1ULL << bits[b];
        for (uint64_t id = 0; id < 20000; id++) {
            uint64_t id2 = id * 0x1000193ULL + (id >> 3); // spread ids too
            uint64_t k = ds_libsvm_hash(id2, bits[b]);
            ck_assert_uint_ge(k, 1);
            ck_assert_uint_lt(k, top);
            ck_assert_uint_eq(k, ds_libsvm_hash(id2, bits[b]));
            ck_assert_uint_eq(k, s_ref_hash(id2, bits[b]));
        }
    }
    // Pinned values: a change of the hash silently reshuffles every model.
    ck_assert_uint_eq(ds_libsvm_hash(1, 20), 594083);
    ck_assert_uint_eq(ds_libsvm_hash(12345, 40), 146322643114ULL);
    // Consecutive ids spread evenly over the 15 feature keys of 4 bits.
    size_t count[16] = {0};
    for (uint64_t id = 1; id <= 150000; id++) {
        count[ds_libsvm_hash(id, 4)]++;
    }
    ck_assert_uint_eq(count[0], 0);
    for (int k = 1; k < 16; k++) {
        ck_assert_msg(count[k] > 9600 && count[k] < 10400, "key %d: %zu", k,
                      count[k]);
    }
}
END_TEST

// s_random_sparse fills d with n rows of up to maxrow distinct keys in
// [1, maxkey) with values in [-1, 1) and random labels.
static void
s_random_sparse(ds_sparse_t *d, ds_rng_t *r, size_t n, uint64_t maxkey,
                size_t maxrow)
{
    d->n = n;
    d->offsets = malloc((n + 1) * sizeof *d->offsets);
    d->keys = malloc(n * maxrow * sizeof *d->keys);
    d->vals = malloc(n * maxrow * sizeof *d->vals);
    d->y = malloc(n);
    char *used = calloc(maxkey, 1);
    ck_assert_ptr_nonnull(used);
    d->nnz = 0;
    d->offsets[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t m = (size_t)ds_rng_below(r, maxrow + 1);
        memset(used, 0, maxkey);
        for (size_t t = 0; t < m; t++) {
            used[1 + ds_rng_below(r, maxkey - 1)] = 1;
        }
        for (uint64_t k = 1; k < maxkey; k++) {
            if (used[k]) {
                d->keys[d->nnz] = k;
                d->vals[d->nnz] = (float)(2.0 * ds_rng_uniform(r) - 1.0);
                d->nnz++;
            }
        }
        d->offsets[i + 1] = d->nnz;
        d->y[i] = (uint8_t)ds_rng_below(r, 2);
    }
    free(used);
}

START_TEST(test_batch_keys)
{
    ds_rng_t r;
    ds_rng_seed(&r, 42, 0);
    ds_sparse_t d;
    s_random_sparse(&d, &r, 60, 300, 12);
    uint64_t *keys = NULL;
    size_t    cap = 0, nkeys = 0;
    for (int trial = 0; trial < 20; trial++) {
        uint32_t idx[16];
        size_t   n = 1 + (size_t)ds_rng_below(&r, 16);
        char     want[300] = {0};
        want[0] = 1; // the bias
        for (size_t k = 0; k < n; k++) {
            idx[k] = (uint32_t)ds_rng_below(&r, d.n); // repeats allowed
            for (size_t e = d.offsets[idx[k]]; e < d.offsets[idx[k] + 1]; e++) {
                want[d.keys[e]] = 1;
            }
        }
        ck_assert_int_eq(ds_logreg_batch_keys(&d, idx, n, &keys, &cap, &nkeys),
                         0);
        ck_assert_uint_ge(cap, nkeys);
        ck_assert_uint_eq(keys[0], DS_LOGREG_BIAS_KEY);
        size_t nwant = 0;
        for (int k = 0; k < 300; k++) {
            nwant += want[k];
        }
        ck_assert_uint_eq(nkeys, nwant);
        for (size_t j = 0; j < nkeys; j++) {
            ck_assert_uint_lt(keys[j], 300);
            ck_assert_int_eq(want[keys[j]], 1);
            if (j > 0) {
                ck_assert_uint_lt(keys[j - 1], keys[j]);
            }
        }
    }
    // The buffer is reused while it is large enough.
    uint64_t *before = keys;
    size_t    capb = cap;
    uint32_t  one = 3;
    ck_assert_int_eq(ds_logreg_batch_keys(&d, &one, 1, &keys, &cap, &nkeys), 0);
    ck_assert_ptr_eq(keys, before);
    ck_assert_uint_eq(cap, capb);
    ck_assert_uint_eq(nkeys, 1 + d.offsets[4] - d.offsets[3]);
    // idx NULL: every row.
    ck_assert_int_eq(ds_logreg_batch_keys(&d, NULL, d.n, &keys, &cap, &nkeys),
                     0);
    size_t nall = 1;
    char   all[300] = {0};
    for (size_t e = 0; e < d.nnz; e++) {
        nall += !all[d.keys[e]];
        all[d.keys[e]] = 1;
    }
    ck_assert_uint_eq(nkeys, nall);
    free(keys);
    ds_sparse_fini(&d);
}
END_TEST

// s_ref_loss is the mean log-loss of rows idx[0..n) under the double
// weights w[j] of keys[j], computed the naive way; fine for |z| < 30.
static double
s_ref_loss(const ds_sparse_t *d, const uint32_t *idx, size_t n,
           const uint64_t *keys, size_t nkeys, const double *w)
{
    double sum = 0.0;
    for (size_t k = 0; k < n; k++) {
        size_t i = idx[k];
        double z = w[0];
        for (size_t e = d->offsets[i]; e < d->offsets[i + 1]; e++) {
            size_t j = 0;
            while (j < nkeys && keys[j] != d->keys[e]) {
                j++;
            }
            ck_assert_uint_lt(j, nkeys);
            z += w[j] * (double)d->vals[e];
        }
        double p = 1.0 / (1.0 + exp(-z));
        sum += d->y[i] ? -log(p) : -log(1.0 - p);
    }
    return sum / (double)n;
}

START_TEST(test_grad_finite_differences)
{
    ds_rng_t r;
    ds_rng_seed(&r, 7, 0);
    ds_sparse_t d;
    s_random_sparse(&d, &r, 40, 64, 10);
    uint32_t idx[24];
    for (size_t k = 0; k < 24; k++) {
        idx[k] = (uint32_t)ds_rng_below(&r, d.n);
    }
    uint64_t *keys = NULL;
    size_t    cap = 0, nkeys = 0;
    ck_assert_int_eq(ds_logreg_batch_keys(&d, idx, 24, &keys, &cap, &nkeys), 0);
    float  *w = malloc(nkeys * sizeof *w);
    float  *g = malloc(nkeys * sizeof *g);
    double *wd = malloc(nkeys * sizeof *wd);
    for (size_t j = 0; j < nkeys; j++) {
        w[j] = (float)(0.8 * ds_rng_normal(&r));
        wd[j] = w[j];
    }
    size_t correct = 99;
    double loss = ds_logreg_grad(&d, idx, 24, keys, w, nkeys, g, &correct);
    double ref = s_ref_loss(&d, idx, 24, keys, nkeys, wd);
    ck_assert_double_eq_tol(loss, ref, 1e-12 * (1.0 + ref));
    ck_assert_uint_le(correct, 24);
    const double h = 1e-5;
    for (size_t j = 0; j < nkeys; j++) {
        double save = wd[j];
        wd[j] = save + h;
        double up = s_ref_loss(&d, idx, 24, keys, nkeys, wd);
        wd[j] = save - h;
        double down = s_ref_loss(&d, idx, 24, keys, nkeys, wd);
        wd[j] = save;
        double fd = (up - down) / (2 * h);
        ck_assert_msg(fabs(fd - g[j]) <= 1e-6 + 1e-5 * fabs(fd),
                      "key %llu: grad %.9g, finite difference %.9g",
                      (unsigned long long)keys[j], (double)g[j], fd);
    }
    // Keys listed but not in the batch get a zero gradient, and the listed
    // keys of the batch get the same gradient as before.
    uint64_t *wide = malloc((nkeys + 3) * sizeof *wide);
    float    *ww = malloc((nkeys + 3) * sizeof *ww);
    float    *gw = malloc((nkeys + 3) * sizeof *gw);
    size_t    nw = 0;
    for (size_t j = 0; j < nkeys; j++) {
        ww[nw] = w[j];
        wide[nw++] = keys[j];
        if (j + 1 == nkeys || keys[j + 1] > keys[j] + 1) {
            ww[nw] = 9.0f; // a key no row of the batch holds
            wide[nw++] = keys[j] + 1;
        }
        if (nw - (j + 1) == 2) {
            for (size_t t = j + 1; t < nkeys; t++) {
                ww[nw] = w[t];
                wide[nw++] = keys[t];
            }
            break;
        }
    }
    ck_assert_uint_eq(nw, nkeys + 2);
    double loss2 = ds_logreg_grad(&d, idx, 24, wide, ww, nw, gw, NULL);
    ck_assert_double_eq(loss2, loss);
    for (size_t j = 0, t = 0; j < nw; j++) {
        if (t < nkeys && wide[j] == keys[t]) {
            ck_assert_float_eq(gw[j], g[t]);
            t++;
        } else {
            ck_assert_float_eq(ww[j], 9.0f);
            ck_assert_float_eq(gw[j], 0.0f);
        }
    }
    free(wide);
    free(ww);
    free(gw);
    free(w);
    free(g);
    free(wd);
    free(keys);
    ds_sparse_fini(&d);
}
END_TEST

// Large margins neither overflow nor lose the loss of a wrong prediction.
START_TEST(test_loss_extremes)
{
    ds_sparse_t d = {0};
    size_t      off[5] = {0, 1, 2, 3, 4};
    uint64_t    keys[4] = {1, 1, 2, 2};
    float       vals[4] = {1, 1, 1, 1};
    uint8_t     y[4] = {1, 0, 1, 0};
    d.n = 4;
    d.nnz = 4;
    d.offsets = off;
    d.keys = keys;
    d.vals = vals;
    d.y = y;
    uint64_t k[3] = {0, 1, 2};
    float    w[3] = {0.0f, 1000.0f, -1000.0f}, g[3];
    size_t   correct = 0;
    uint32_t idx[1] = {0};
    // z = 1000, y = 1: loss e^-1000, nothing to learn.
    ck_assert_double_eq_tol(ds_logreg_grad(&d, idx, 1, k, w, 3, g, &correct),
                            0.0, 1e-300);
    ck_assert_uint_eq(correct, 1);
    ck_assert_float_eq(g[1], 0.0f);
    // z = 1000, y = 0: loss 1000, gradient 1 (per unit value).
    idx[0] = 1;
    ck_assert_double_eq_tol(ds_logreg_grad(&d, idx, 1, k, w, 3, g, &correct),
                            1000.0, 1e-9);
    ck_assert_uint_eq(correct, 0);
    ck_assert_float_eq(g[0], 1.0f);
    ck_assert_float_eq(g[1], 1.0f);
    ck_assert_float_eq(g[2], 0.0f);
    // All four rows: mean of 0, 1000, 1000, 0; rows 0 and 3 right.
    double loss = ds_logreg_grad(&d, NULL, 4, k, w, 3, g, &correct);
    ck_assert_double_eq_tol(loss, 500.0, 1e-9);
    ck_assert_uint_eq(correct, 2);
    ck_assert_float_eq(g[0], 0.0f);
    ck_assert_float_eq(g[1], 0.25f);
    ck_assert_float_eq(g[2], -0.25f);
    // The dense evaluation agrees; z = 0 predicts 0.
    ck_assert_double_eq_tol(ds_logreg_eval(&d, w, 3, &correct), 500.0, 1e-9);
    ck_assert_uint_eq(correct, 2);
    float zero[3] = {0};
    ck_assert_double_eq_tol(ds_logreg_eval(&d, zero, 3, &correct), log(2.0),
                            1e-15);
    ck_assert_uint_eq(correct, 2);
}
END_TEST

// Broken contracts give NaN, not a crash or a silent wrong answer.
START_TEST(test_contract_nan)
{
    ds_rng_t r;
    ds_rng_seed(&r, 3, 0);
    ds_sparse_t d;
    s_random_sparse(&d, &r, 10, 50, 6);
    uint64_t *keys = NULL;
    size_t    cap = 0, nkeys = 0;
    ck_assert_int_eq(ds_logreg_batch_keys(&d, NULL, d.n, &keys, &cap, &nkeys),
                     0);
    float *w = calloc(nkeys, sizeof *w), *g = calloc(nkeys, sizeof *g);
    size_t correct = 77;
    ck_assert(isfinite(ds_logreg_grad(&d, NULL, d.n, keys, w, nkeys, g, NULL)));
    ck_assert(isnan(ds_logreg_grad(&d, NULL, 0, keys, w, nkeys, g, &correct)));
    ck_assert(isnan(
        ds_logreg_grad(&d, NULL, d.n, keys + 1, w, nkeys - 1, g, &correct)));
    ck_assert(
        isnan(ds_logreg_grad(&d, NULL, d.n, keys, w, nkeys - 1, g, &correct)));
    ck_assert_uint_eq(correct, 77);
    float dense[50] = {0};
    ck_assert(isfinite(ds_logreg_eval(&d, dense, 50, NULL)));
    ck_assert(isnan(ds_logreg_eval(&d, dense, keys[nkeys - 1], &correct)));
    ck_assert_uint_eq(correct, 77);
    free(w);
    free(g);
    free(keys);
    ds_sparse_fini(&d);
}
END_TEST

// The dense evaluation and the keyed one agree on every row.
START_TEST(test_eval_matches_grad)
{
    ds_rng_t r;
    ds_rng_seed(&r, 11, 0);
    ds_sparse_t d;
    s_random_sparse(&d, &r, 200, 128, 9);
    float dense[128];
    for (int k = 0; k < 128; k++) {
        dense[k] = (float)ds_rng_normal(&r);
    }
    uint64_t *keys = NULL;
    size_t    cap = 0, nkeys = 0;
    ck_assert_int_eq(ds_logreg_batch_keys(&d, NULL, d.n, &keys, &cap, &nkeys),
                     0);
    float *w = malloc(nkeys * sizeof *w);
    for (size_t j = 0; j < nkeys; j++) {
        w[j] = dense[keys[j]];
    }
    size_t c1 = 0, c2 = 0;
    double l1 = ds_logreg_eval(&d, dense, 128, &c1);
    double l2 = ds_logreg_grad(&d, NULL, d.n, keys, w, nkeys, NULL, &c2);
    ck_assert_double_eq(l1, l2);
    ck_assert_uint_eq(c1, c2);
    ck_assert_uint_gt(c1, 0);
    free(w);
    free(keys);
    ds_sparse_fini(&d);
}
END_TEST

// Rows longer than the positions logreg remembers per row (512) take its
// second search path; the gradient is the same as a dense reference.
START_TEST(test_grad_long_rows)
{
    ds_rng_t r;
    ds_rng_seed(&r, 5, 0);
    ds_sparse_t d;
    s_random_sparse(&d, &r, 6, 4000, 2000);
    size_t longest = 0;
    for (size_t i = 0; i < d.n; i++) {
        size_t m = d.offsets[i + 1] - d.offsets[i];
        longest = m > longest ? m : longest;
    }
    ck_assert_uint_gt(longest, 600);
    uint64_t *keys = NULL;
    size_t    cap = 0, nkeys = 0;
    ck_assert_int_eq(ds_logreg_batch_keys(&d, NULL, d.n, &keys, &cap, &nkeys),
                     0);
    float  *w = malloc(nkeys * sizeof *w), *g = malloc(nkeys * sizeof *g);
    double *dense_w = calloc(4000, sizeof *dense_w);
    double *dense_g = calloc(4000, sizeof *dense_g);
    for (size_t j = 0; j < nkeys; j++) {
        w[j] = (float)(0.05 * ds_rng_normal(&r));
        dense_w[keys[j]] = w[j];
    }
    for (size_t i = 0; i < d.n; i++) {
        double z = dense_w[0];
        for (size_t e = d.offsets[i]; e < d.offsets[i + 1]; e++) {
            z += dense_w[d.keys[e]] * d.vals[e];
        }
        double res = (1.0 / (1.0 + exp(-z)) - d.y[i]) / (double)d.n;
        dense_g[0] += res;
        for (size_t e = d.offsets[i]; e < d.offsets[i + 1]; e++) {
            dense_g[d.keys[e]] += res * d.vals[e];
        }
    }
    ck_assert(isfinite(ds_logreg_grad(&d, NULL, d.n, keys, w, nkeys, g, NULL)));
    for (size_t j = 0; j < nkeys; j++) {
        ck_assert_double_eq_tol(g[j], dense_g[keys[j]], 1e-6);
    }
    free(w);
    free(g);
    free(dense_w);
    free(dense_g);
    free(keys);
    ds_sparse_fini(&d);
}
END_TEST

// s_json_num returns the number after "key": in a sidecar.
static double
s_json_num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    ck_assert_msg(p != NULL, "%s not in %s", key, json);
    return strtod(p + strlen(pat), NULL);
}

static ds_datagen_opts_t
s_gen_opts(uint64_t n, uint64_t features, unsigned nnz, double noise,
           uint64_t seed)
{
    ds_datagen_opts_t o;
    ds_datagen_defaults(&o);
    o.n = n;
    o.features = features;
    o.nnz = nnz;
    o.noise = noise;
    o.seed = seed;
    return o;
}

static bool
s_same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char  *x = s_read_all(a, &na);
    char  *y = s_read_all(b, &nb);
    bool   same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

START_TEST(test_datagen_deterministic)
{
    ds_datagen_opts_t o = s_gen_opts(2000, 5000, 12, 0.1, 5);
    o.test_n = 300;
    char err[256];
    for (int gz = 0; gz <= 1; gz++) {
        const char *a = gz ? "a.svm.gz" : "a.svm",
                   *b = gz ? "b.svm.gz" : "b.svm";
        char pa[256], pb[256], ta[256], tb[256];
        snprintf(pa, sizeof pa, "%s", s_path(a));
        snprintf(pb, sizeof pb, "%s", s_path(b));
        snprintf(ta, sizeof ta, "%s", s_path("ta.svm"));
        snprintf(tb, sizeof tb, "%s", s_path("tb.svm"));
        ck_assert_int_eq(
            ds_datagen_write(&o, pa, ta, NULL, NULL, err, sizeof err), 0);
        ck_assert_int_eq(
            ds_datagen_write(&o, pb, tb, NULL, NULL, err, sizeof err), 0);
        ck_assert(s_same_file(pa, pb));
        ck_assert(s_same_file(ta, tb));
        char ja[300], jb[300];
        snprintf(ja, sizeof ja, "%s.json", pa);
        snprintf(jb, sizeof jb, "%s.json", pb);
        ck_assert(s_same_file(ja, jb));
        // Test rows come from another stream than training rows.
        ck_assert(!s_same_file(pa, ta));
    }
    // Another seed, other bytes.
    ds_datagen_opts_t o2 = o;
    o2.seed = 6;
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "%s", s_path("a.svm"));
    snprintf(pb, sizeof pb, "%s", s_path("c.svm"));
    ck_assert_int_eq(
        ds_datagen_write(&o2, pb, NULL, NULL, NULL, err, sizeof err), 0);
    ck_assert(!s_same_file(pa, pb));
}
END_TEST

// s_check_planted loads a datagen file without hashing, recomputes the
// planted model from the documented recipe (w*_j = ds_rng_key_normal(seed,
// j), the bias from the sidecar) and asserts the sidecar's accuracy.
static void
s_check_planted(const char *path, const ds_datagen_opts_t *o,
                const ds_datagen_stats_t *st)
{
    char   json[300];
    size_t jlen = 0;
    snprintf(json, sizeof json, "%s.json", path);
    char *js = s_read_all(json, &jlen);
    ck_assert_uint_eq((uint64_t)s_json_num(js, "n"), st->n);
    ck_assert_uint_eq((uint64_t)s_json_num(js, "features"), o->features);
    ck_assert_uint_eq((uint64_t)s_json_num(js, "flips"), st->flips);
    ck_assert_uint_eq((uint64_t)s_json_num(js, "entries"), st->entries);
    ck_assert_double_eq(s_json_num(js, "bias"), st->bias);
    double acc = s_json_num(js, "planted_accuracy");
    ck_assert_double_eq_tol(acc, 1.0 - (double)st->flips / (double)st->n,
                            1e-14);
    ck_assert_double_eq_tol(acc, st->planted_accuracy, 1e-14);

    ds_sparse_t      d;
    ds_libsvm_opts_t lo = s_opts(20, true);
    char             err[256];
    ck_assert_int_eq(ds_libsvm_load(&d, path, &lo, err, sizeof err), 0);
    ck_assert_uint_eq(d.n, st->n);
    ck_assert_uint_eq(d.nnz, st->entries);
    size_t agree = 0, pos = 0;
    for (size_t i = 0; i < d.n; i++) {
        double z = s_json_num(js, "bias");
        for (size_t e = d.offsets[i]; e < d.offsets[i + 1]; e++) {
            ck_assert_uint_le(d.keys[e], o->features);
            z += ds_rng_key_normal(o->seed, d.keys[e]) * (double)d.vals[e];
        }
        agree += (z > 0) == (d.y[i] == 1);
        pos += d.y[i];
    }
    ck_assert_uint_eq(agree, d.n - st->flips);
    ck_assert_uint_eq(pos, st->positives);
    ds_sparse_fini(&d);
    free(js);
}

START_TEST(test_datagen_planted_accuracy)
{
    char err[256];
    // Noise-free: every label is the planted model's.
    ds_datagen_opts_t  o = s_gen_opts(3000, 400, 15, 0.0, 9);
    ds_datagen_stats_t st;
    const char        *p = s_path("clean.svm");
    ck_assert_int_eq(ds_datagen_write(&o, p, NULL, &st, NULL, err, sizeof err),
                     0);
    ck_assert_uint_eq(st.flips, 0);
    ck_assert_double_eq(st.planted_accuracy, 1.0);
    s_check_planted(p, &o, &st);
    // The bias balances the classes.
    ck_assert_uint_gt(st.positives, 1200);
    ck_assert_uint_lt(st.positives, 1800);

    // 10% noise with uniform values, training and test files.
    o = s_gen_opts(3000, 400, 15, 0.1, 9);
    o.uniform = true;
    o.test_n = 1000;
    ds_datagen_stats_t tst;
    char               tp[256];
    snprintf(tp, sizeof tp, "%s", s_path("noisy_test.svm"));
    p = s_path("noisy.svm.gz");
    ck_assert_int_eq(ds_datagen_write(&o, p, tp, &st, &tst, err, sizeof err),
                     0);
    // 300 flips expected, sd 16.4.
    ck_assert_uint_gt(st.flips, 220);
    ck_assert_uint_lt(st.flips, 380);
    ck_assert_uint_eq(tst.n, 1000);
    ck_assert_double_eq(tst.bias, st.bias);
    s_check_planted(p, &o, &st);
    s_check_planted(tp, &o, &tst);
}
END_TEST

// Rows hold K distinct features and frequencies fall with rank (Zipf).
START_TEST(test_datagen_rows)
{
    char               err[256];
    ds_datagen_opts_t  o = s_gen_opts(4000, 1000, 10, 0.0, 2);
    ds_datagen_stats_t st;
    const char        *p = s_path("rows.svm");
    ck_assert_int_eq(ds_datagen_write(&o, p, NULL, &st, NULL, err, sizeof err),
                     0);
    ck_assert_uint_eq(st.entries, 4000 * 10);
    ds_sparse_t      d;
    ds_libsvm_opts_t lo = s_opts(12, true);
    ck_assert_int_eq(ds_libsvm_load(&d, p, &lo, err, sizeof err), 0);
    size_t count[1001] = {0};
    for (size_t i = 0; i < d.n; i++) {
        ck_assert_uint_eq(d.offsets[i + 1] - d.offsets[i], 10);
        for (size_t e = d.offsets[i]; e < d.offsets[i + 1]; e++) {
            ck_assert_float_eq(d.vals[e], 1.0f);
            count[d.keys[e]]++;
        }
    }
    ck_assert_uint_gt(count[1], count[10]);
    ck_assert_uint_gt(count[10], count[100]);
    ck_assert_uint_gt(count[100], 0);
    // Feature 1 (P ~ 0.13 per draw) is in most rows; 1000 is rare.
    ck_assert_uint_gt(count[1], 2000);
    ck_assert_uint_lt(count[1000], 200);
    ds_sparse_fini(&d);
}
END_TEST

// s_sgd trains w (2^bits floats, dense) by plain minibatch SGD the way a
// worker would: batch keys, pull w at them, gradient, push back.
static void
s_sgd(const ds_sparse_t *d, float *w, int epochs, size_t batch, double lr)
{
    uint32_t *idx = malloc(d->n * sizeof *idx);
    uint64_t *keys = NULL;
    size_t    cap = 0, nkeys = 0, gcap = 0;
    float    *wk = NULL, *g = NULL;
    ds_rng_t  r;
    ds_rng_seed(&r, 99, 0);
    for (size_t i = 0; i < d->n; i++) {
        idx[i] = (uint32_t)i;
    }
    for (int e = 0; e < epochs; e++) {
        ds_rng_shuffle(&r, idx, d->n);
        for (size_t s = 0; s < d->n; s += batch) {
            size_t n = d->n - s < batch ? d->n - s : batch;
            ck_assert_int_eq(
                ds_logreg_batch_keys(d, idx + s, n, &keys, &cap, &nkeys), 0);
            if (nkeys > gcap) {
                gcap = cap;
                wk = realloc(wk, gcap * sizeof *wk);
                g = realloc(g, gcap * sizeof *g);
            }
            for (size_t j = 0; j < nkeys; j++) {
                wk[j] = w[keys[j]];
            }
            double loss =
                ds_logreg_grad(d, idx + s, n, keys, wk, nkeys, g, NULL);
            ck_assert(isfinite(loss));
            for (size_t j = 0; j < nkeys; j++) {
                w[keys[j]] -= (float)(lr * g[j]);
            }
        }
    }
    free(idx);
    free(keys);
    free(wk);
    free(g);
}

// s_train generates 5000 training and 2000 test rows, trains on hashed
// keys and returns the test accuracy; *planted gets the planted one.
static double
s_train(double noise, uint64_t seed, double *planted)
{
    ds_datagen_opts_t o = s_gen_opts(5000, 50, 8, noise, seed);
    o.test_n = 2000;
    ds_datagen_stats_t st, tst;
    char               err[256], tp[256];
    snprintf(tp, sizeof tp, "%s", s_path("sgd_test.svm"));
    const char *p = s_path("sgd.svm");
    ck_assert_int_eq(ds_datagen_write(&o, p, tp, &st, &tst, err, sizeof err),
                     0);
    ds_sparse_t      tr, te;
    ds_libsvm_opts_t lo = s_opts(16, false);
    ck_assert_int_eq(ds_libsvm_load(&tr, p, &lo, err, sizeof err), 0);
    ck_assert_int_eq(ds_libsvm_load(&te, tp, &lo, err, sizeof err), 0);
    float *w = calloc(1u << 16, sizeof *w);
    size_t before = 0, correct = 0;
    ds_logreg_eval(&te, w, 1u << 16, &before);
    s_sgd(&tr, w, 20, 10, 0.5);
    double loss = ds_logreg_eval(&te, w, 1u << 16, &correct);
    ck_assert(isfinite(loss));
    ck_assert_double_lt(loss, log(2.0));
    free(w);
    ds_sparse_fini(&tr);
    ds_sparse_fini(&te);
    *planted = tst.planted_accuracy;
    return (double)correct / 2000.0;
}

START_TEST(test_datagen_sgd_reaches_planted)
{
    double planted = 0;
    // Noise-free labels: within 2 points of the planted model's 100%.
    double acc = s_train(0.0, 1, &planted);
    ck_assert_double_eq(planted, 1.0);
    ck_assert_msg(acc >= planted - 0.02, "accuracy %.4f, planted %.4f", acc,
                  planted);
    // With 5% flipped labels the planted model is the best classifier, and
    // logistic regression (which misfits a noisy step) lands a few points
    // under it (measured: 2.4 to 6.1 over seeds 1-5; seed 1: 3.05), far
    // above chance. docs/data.md explains why.
    acc = s_train(0.05, 1, &planted);
    ck_assert_double_gt(planted, 0.93);
    ck_assert_msg(acc >= planted - 0.05 && acc <= planted + 0.01,
                  "accuracy %.4f, planted %.4f", acc, planted);
}
END_TEST

// s_quiet runs ds_datagen_main with stdout and stderr sent to /dev/null.
static int
s_quiet(int argc, char **argv)
{
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), errfd = dup(2);
    int null = open("/dev/null", O_WRONLY);
    ck_assert_int_ge(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    int rc = ds_datagen_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(errfd, 2);
    close(out);
    close(errfd);
    close(null);
    return rc;
}

START_TEST(test_datagen_cli)
{
    char out[256], tout[256];
    snprintf(out, sizeof out, "%s", s_path("cli.svm"));
    snprintf(tout, sizeof tout, "%s", s_path("cli_test.svm"));
    char *ok[] = {"datagen",    "--out",  out,        "--n",
                  "100",        "--seed", "3",        "--features=40",
                  "--nnz",      "5",      "--noise",  "0.25",
                  "--test-out", tout,     "--test-n", "7"};
    ck_assert_int_eq(s_quiet(16, ok), 0);
    char json[300];
    snprintf(json, sizeof json, "%s.json", out);
    size_t len = 0;
    char  *js = s_read_all(json, &len);
    ck_assert_double_eq(s_json_num(js, "n"), 100);
    ck_assert_double_eq(s_json_num(js, "features"), 40);
    ck_assert_double_eq(s_json_num(js, "nnz"), 5);
    ck_assert_double_eq(s_json_num(js, "noise"), 0.25);
    ck_assert_ptr_nonnull(strstr(js, "\"values\":\"binary\""));
    free(js);
    snprintf(json, sizeof json, "%s.json", tout);
    js = s_read_all(json, &len);
    ck_assert_double_eq(s_json_num(js, "n"), 7);
    free(js);

    char *no_out[] = {"datagen", "--n", "10"};
    ck_assert_int_eq(s_quiet(3, no_out), 2);
    char *bad_noise[] = {"datagen", "--out", out, "--noise", "2"};
    ck_assert_int_eq(s_quiet(5, bad_noise), 2);
    char *bad_num[] = {"datagen", "--out", out, "--n", "1x"};
    ck_assert_int_eq(s_quiet(5, bad_num), 2);
    char *missing[] = {"datagen", "--out"};
    ck_assert_int_eq(s_quiet(2, missing), 2);
    char *unknown[] = {"datagen", "--out", out, "--bogus"};
    ck_assert_int_eq(s_quiet(4, unknown), 2);
    char *lone_test_n[] = {"datagen", "--out", out, "--test-n", "5"};
    ck_assert_int_eq(s_quiet(5, lone_test_n), 2);
    char *too_many[] = {"datagen", "--out", out, "--features",
                        "5",       "--nnz", "6"};
    ck_assert_int_eq(s_quiet(7, too_many), 2);
    char *help[] = {"datagen", "--help"};
    ck_assert_int_eq(s_quiet(2, help), 0);
    char *unwritable[] = {"datagen", "--out", "/nonexistent-dir/x.svm"};
    ck_assert_int_eq(s_quiet(3, unwritable), 1);
}
END_TEST

Suite *
ds_sparse_suite(void)
{
    Suite *s = suite_create("sparse");
    TCase *tc = tcase_create("libsvm");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_parse_plain);
    tcase_add_test(tc, test_parse_gzip);
    tcase_add_test(tc, test_hashed_duplicates_summed);
    tcase_add_test(tc, test_zero_based);
    tcase_add_test(tc, test_partitions_cover_once);
    tcase_add_test(tc, test_limit);
    tcase_add_test(tc, test_malformed_lines);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_corrupt_gzip);
    tcase_add_test(tc, test_long_lines);
    tcase_add_test(tc, test_hash);
    suite_add_tcase(s, tc);

    tc = tcase_create("logreg");
    tcase_add_test(tc, test_batch_keys);
    tcase_add_test(tc, test_grad_finite_differences);
    tcase_add_test(tc, test_loss_extremes);
    tcase_add_test(tc, test_contract_nan);
    tcase_add_test(tc, test_eval_matches_grad);
    tcase_add_test(tc, test_grad_long_rows);
    suite_add_tcase(s, tc);

    tc = tcase_create("datagen");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_datagen_deterministic);
    tcase_add_test(tc, test_datagen_planted_accuracy);
    tcase_add_test(tc, test_datagen_rows);
    tcase_add_test(tc, test_datagen_sgd_reaches_planted);
    tcase_add_test(tc, test_datagen_cli);
    suite_add_tcase(s, tc);
    return s;
}
