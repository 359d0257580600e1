// SPDX-License-Identifier: MIT
// test_safetensors - written files read back byte by byte.
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/safetensors.h"
#include "tests/unit/suites.h"
#include "tests/unit/tmpdir.h"

static char s_dir[64]; // per-test temporary directory

static void
s_setup(void)
{
    ut_tmpdir_make(s_dir, sizeof s_dir, "ds_st");
}

static void
s_teardown(void)
{
    ut_tmpdir_remove(s_dir);
}

static const char *
s_path(const char *name)
{
    static char p[2][256];
    static int  next;
    char       *out = p[next++ % 2];
    snprintf(out, sizeof p[0], "%s/%s", s_dir, name);
    return out;
}

// s_slurp returns the whole file (caller frees) and its size in *len.
static unsigned char *
s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

// s_entries counts the directory entries of s_dir besides . and ..
static int
s_entries(void)
{
    DIR *dir = opendir(s_dir);
    ck_assert_ptr_nonnull(dir);
    int            n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    }
    closedir(dir);
    return n;
}

// s_check_file asserts the layout of a safetensors file: a little-endian
// u64 header length N with 8 + N a multiple of 8, the header equal to json
// followed by at most 7 spaces, then exactly the data bytes given.
static void
s_check_file(const char *path, const char *json, const unsigned char *data,
             size_t data_len)
{
    size_t         len = 0;
    unsigned char *buf = s_slurp(path, &len);
    ck_assert_uint_ge(len, 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) {
        n = n << 8 | buf[i];
    }
    ck_assert_uint_eq((8 + n) % 8, 0);
    ck_assert_uint_eq(len, 8 + n + data_len);
    size_t jl = strlen(json);
    ck_assert_uint_ge(n, jl);
    ck_assert_uint_lt(n - jl, 8);
    ck_assert_msg(memcmp(buf + 8, json, jl) == 0, "header is '%.*s'", (int)n,
                  (const char *)buf + 8);
    for (size_t i = jl; i < n; i++) {
        ck_assert_int_eq(buf[8 + i], ' ');
    }
    ck_assert(data_len == 0 || memcmp(buf + 8 + n, data, data_len) == 0);
    free(buf);
}

// s_le32 appends the little-endian bytes of float v, built from its bit
// pattern by shifts so the expectation does not depend on the host.
static void
s_le32(unsigned char *out, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    for (int i = 0; i < 4; i++) {
        out[i] = (unsigned char)(bits >> (8 * i));
    }
}

START_TEST(test_two_tensors_with_metadata)
{
    const float       w[6] = {1.0f, -2.0f, 0.5f, 3.25f, -0.0f, 1e-3f};
    const float       b[3] = {0.25f, -1.5f, 100.0f};
    const ds_tensor_t t[2] = {
        {.name = "weight", .data = w, .ndim = 2, .shape = {2, 3}},
        {.name = "bias", .data = b, .ndim = 1, .shape = {3}},
    };
    const char *const meta[] = {"step", "42", "job", "fashion mnist", NULL};
    const char       *path = s_path("model.safetensors");
    char              err[256] = "junk";
    ck_assert_int_eq(ds_safetensors_write(path, t, 2, meta, err, sizeof err),
                     0);
    ck_assert_str_eq(err, "");

    const char *json =
        "{\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
        "\"data_offsets\":[0,24]},"
        "\"bias\":{\"dtype\":\"F32\",\"shape\":[3],"
        "\"data_offsets\":[24,36]},"
        "\"__metadata__\":{\"step\":\"42\",\"job\":\"fashion mnist\"}}";
    unsigned char data[36];
    for (int i = 0; i < 6; i++) {
        s_le32(data + 4 * i, w[i]);
    }
    for (int i = 0; i < 3; i++) {
        s_le32(data + 24 + 4 * i, b[i]);
    }
    // IEEE-754 by hand: 1.0f is 0x3f800000 and -2.0f is 0xc0000000.
    const unsigned char one[8] = {0x00, 0x00, 0x80, 0x3f,
                                  0x00, 0x00, 0x00, 0xc0};
    ck_assert(memcmp(data, one, 8) == 0);
    s_check_file(path, json, data, sizeof data);

    // The JSON is 171 bytes: 8 + 171 is padded to 184, a 176-byte header.
    size_t         len = 0;
    unsigned char *buf = s_slurp(path, &len);
    ck_assert_uint_eq(strlen(json), 171);
    ck_assert_uint_eq(buf[0], 176);
    ck_assert(memcmp(buf + 1, "\0\0\0\0\0\0\0", 7) == 0);
    free(buf);

    // Readable by others, as a checkpoint should be; no temporary left.
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644);
    ck_assert_int_eq(s_entries(), 1);
}
END_TEST

START_TEST(test_no_metadata)
{
    const float       v[1] = {2.0f};
    const ds_tensor_t t[1] = {
        {.name = "x", .data = v, .ndim = 1, .shape = {1}}};
    const char         *json = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],"
                               "\"data_offsets\":[0,4]}}";
    const unsigned char data[4] = {0x00, 0x00, 0x00, 0x40}; // 2.0f
    char                err[128];
    ck_assert_int_eq(
        ds_safetensors_write(s_path("a"), t, 1, NULL, err, sizeof err), 0);
    s_check_file(s_path("a"), json, data, 4);
    const char *const empty[] = {NULL};
    ck_assert_int_eq(
        ds_safetensors_write(s_path("b"), t, 1, empty, err, sizeof err), 0);
    s_check_file(s_path("b"), json, data, 4);
    // No tensors at all, only metadata.
    const char *const meta[] = {"k", "v", NULL};
    ck_assert_int_eq(
        ds_safetensors_write(s_path("c"), NULL, 0, meta, err, sizeof err), 0);
    s_check_file(s_path("c"), "{\"__metadata__\":{\"k\":\"v\"}}", NULL, 0);
}
END_TEST

// Shapes of up to four dimensions, and an empty tensor with no data.
START_TEST(test_shapes)
{
    float         v[24];
    unsigned char data[96];
    for (int i = 0; i < 24; i++) {
        v[i] = (float)i * 0.5f;
        s_le32(data + 4 * i, v[i]);
    }
    const ds_tensor_t t[2] = {
        {.name = "empty", .data = NULL, .ndim = 2, .shape = {0, 5}},
        {.name = "t4", .data = v, .ndim = 4, .shape = {1, 2, 3, 4}},
    };
    char err[128];
    ck_assert_int_eq(
        ds_safetensors_write(s_path("s"), t, 2, NULL, err, sizeof err), 0);
    s_check_file(s_path("s"),
                 "{\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],"
                 "\"data_offsets\":[0,0]},"
                 "\"t4\":{\"dtype\":\"F32\",\"shape\":[1,2,3,4],"
                 "\"data_offsets\":[0,96]}}",
                 data, sizeof data);
}
END_TEST

// Quotes, backslashes and control characters are escaped; UTF-8 passes.
START_TEST(test_json_escaping)
{
    const float       v[1] = {0.0f};
    const ds_tensor_t t[1] = {
        {.name = "a\"b\\c\nd", .data = v, .ndim = 1, .shape = {1}}};
    const char *const meta[] = {"note", "caf\xc3\xa9\ttab", NULL};
    char              err[128];
    ck_assert_int_eq(
        ds_safetensors_write(s_path("e"), t, 1, meta, err, sizeof err), 0);
    const unsigned char zero[4] = {0};
    s_check_file(s_path("e"),
                 "{\"a\\\"b\\\\c\\u000ad\":{\"dtype\":\"F32\",\"shape\":[1],"
                 "\"data_offsets\":[0,4]},"
                 "\"__metadata__\":{\"note\":\"caf\xc3\xa9\\u0009tab\"}}",
                 zero, 4);
}
END_TEST

// Every header length is padded so that the data starts 8-byte aligned.
START_TEST(test_padding_all_lengths)
{
    const float   v[1] = {1.0f};
    unsigned char data[4];
    s_le32(data, 1.0f);
    for (int len = 1; len <= 16; len++) {
        char name[17];
        memset(name, 'n', (size_t)len);
        name[len] = '\0';
        const ds_tensor_t t[1] = {
            {.name = name, .data = v, .ndim = 1, .shape = {1}}};
        char err[128];
        ck_assert_int_eq(
            ds_safetensors_write(s_path("p"), t, 1, NULL, err, sizeof err), 0);
        char json[128];
        snprintf(json, sizeof json,
                 "{\"%s\":{\"dtype\":\"F32\",\"shape\":[1],"
                 "\"data_offsets\":[0,4]}}",
                 name);
        s_check_file(s_path("p"), json, data, 4);
    }
}
END_TEST

// A second write replaces the first whole, and leaves no temporary file.
START_TEST(test_replace)
{
    const float       a[2] = {1.0f, 2.0f};
    const float       b[1] = {3.0f};
    const ds_tensor_t ta[1] = {
        {.name = "x", .data = a, .ndim = 1, .shape = {2}}};
    const ds_tensor_t tb[1] = {
        {.name = "x", .data = b, .ndim = 1, .shape = {1}}};
    char        err[128];
    const char *path = s_path("ckpt");
    ck_assert_int_eq(ds_safetensors_write(path, ta, 1, NULL, err, sizeof err),
                     0);
    ck_assert_int_eq(ds_safetensors_write(path, tb, 1, NULL, err, sizeof err),
                     0);
    unsigned char data[4];
    s_le32(data, 3.0f);
    s_check_file(path,
                 "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],"
                 "\"data_offsets\":[0,4]}}",
                 data, 4);
    ck_assert_int_eq(s_entries(), 1);
}
END_TEST

START_TEST(test_unwritable_directory)
{
    const float       v[1] = {1.0f};
    const ds_tensor_t t[1] = {
        {.name = "x", .data = v, .ndim = 1, .shape = {1}}};
    char err[256];

    const char *missing = s_path("no-such-dir/model.safetensors");
    ck_assert_int_eq(ds_safetensors_write(missing, t, 1, NULL, err, sizeof err),
                     -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, missing));

    // A path through a regular file.
    FILE *f = fopen(s_path("plain"), "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    const char *through = s_path("plain/model.safetensors");
    ck_assert_int_eq(ds_safetensors_write(through, t, 1, NULL, err, sizeof err),
                     -ENOTDIR);
    ck_assert_ptr_nonnull(strstr(err, through));

    // A read-only directory; root ignores the mode, so only as a user.
    if (geteuid() != 0) {
        ck_assert_int_eq(mkdir(s_path("ro"), 0500), 0);
        const char *ro = s_path("ro/model.safetensors");
        ck_assert_int_eq(ds_safetensors_write(ro, t, 1, NULL, err, sizeof err),
                         -EACCES);
        ck_assert_ptr_nonnull(strstr(err, ro));
    }
    // The target being a directory: the rename fails and the temporary
    // file is removed.
    ck_assert_int_eq(mkdir(s_path("isdir"), 0700), 0);
    ck_assert_int_eq(
        ds_safetensors_write(s_path("isdir"), t, 1, NULL, err, sizeof err),
        -EISDIR);
    ck_assert_ptr_nonnull(strstr(err, "rename"));
    ck_assert_int_eq(s_entries(), geteuid() != 0 ? 3 : 2);
}
END_TEST

// s_expect_einval writes t/meta and asserts -EINVAL, a message containing
// sub, and that no file was created.
static void
s_expect_einval(const ds_tensor_t *t, size_t n, const char *const *meta,
                const char *sub)
{
    char err[256];
    memset(err, 'x', sizeof err);
    ck_assert_int_eq(
        ds_safetensors_write(s_path("bad"), t, n, meta, err, sizeof err),
        -EINVAL);
    ck_assert_ptr_nonnull(memchr(err, '\0', sizeof err));
    ck_assert_msg(strstr(err, sub) != NULL, "'%s' not in '%s'", sub, err);
    ck_assert_int_eq(s_entries(), 0);
}

START_TEST(test_bad_arguments)
{
    const float v[4] = {0};
    ds_tensor_t t[2] = {
        {.name = "a", .data = v, .ndim = 1, .shape = {2}},
        {.name = "b", .data = v, .ndim = 1, .shape = {2}},
    };
    t[1].ndim = 0;
    s_expect_einval(t, 2, NULL, "dimensions");
    t[1].ndim = 5;
    s_expect_einval(t, 2, NULL, "dimensions");
    t[1].ndim = 1;
    t[1].name = "a";
    s_expect_einval(t, 2, NULL, "twice");
    t[1].name = "__metadata__";
    s_expect_einval(t, 2, NULL, "reserved");
    t[1].name = "";
    s_expect_einval(t, 2, NULL, "empty");
    t[1].name = NULL;
    s_expect_einval(t, 2, NULL, "NULL");
    t[1].name = "bad\xc3(";
    s_expect_einval(t, 2, NULL, "UTF-8");
    t[1].name = "\xed\xa0\x80"; // a UTF-16 surrogate
    s_expect_einval(t, 2, NULL, "UTF-8");
    t[1].name = "b";
    t[1].data = NULL;
    s_expect_einval(t, 2, NULL, "no data");
    t[1].data = v;
    const char *const meta_null_value[] = {"k", NULL, NULL};
    const char *const meta_dup[] = {"k", "1", "k", "2", NULL};
    s_expect_einval(t, 2, meta_null_value, "NULL value");
    s_expect_einval(t, 2, meta_dup, "twice");
    ck_assert_int_eq(ds_safetensors_write(NULL, t, 2, NULL, NULL, 0), -EINVAL);
    ck_assert_int_eq(ds_safetensors_write(s_path("z"), NULL, 1, NULL, NULL, 0),
                     -EINVAL);
    // A tensor whose byte size overflows 64 bits.
    t[1].ndim = 2;
    t[1].shape[0] = (uint64_t)1 << 62;
    t[1].shape[1] = 4;
    char err[128];
    ck_assert_int_eq(
        ds_safetensors_write(s_path("big"), t, 2, NULL, err, sizeof err),
        -EOVERFLOW);
    ck_assert_int_eq(s_entries(), 0);
}
END_TEST

Suite *
ds_safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_two_tensors_with_metadata);
    tcase_add_test(tc, test_no_metadata);
    tcase_add_test(tc, test_shapes);
    tcase_add_test(tc, test_json_escaping);
    tcase_add_test(tc, test_padding_all_lengths);
    tcase_add_test(tc, test_replace);
    tcase_add_test(tc, test_unwritable_directory);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
