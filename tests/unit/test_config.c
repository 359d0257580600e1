// SPDX-License-Identifier: MIT
// test_config - defaults, value parsing, job files, environment and flags.
#include <check.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "tests/unit/suites.h"

#define S_ERR_MAX 512
#define S_ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

// s_write_file writes text to a new file /tmp/ds_config_XXXXXX and leaves
// its name in path (at least 32 bytes). The caller unlinks it.
static void
s_write_file(char *path, const char *text)
{
    strcpy(path, "/tmp/ds_config_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    ck_assert_int_eq(close(fd), 0);
}

// s_expect_at checks that err is exactly "path:line: rest".
static void
s_expect_at(const char *err, const char *path, int line, const char *rest)
{
    char want[S_ERR_MAX];
    snprintf(want, sizeof want, "%s:%d: %s", path, line, rest);
    ck_assert_str_eq(err, want);
}

// s_set sets one option on fresh defaults and returns the result code,
// leaving the config in *c and the message in err.
static int
s_set(ds_config_t *c, const char *section, const char *key, const char *value,
      char *err)
{
    ds_config_defaults(c);
    return ds_config_set(c, section, key, value, err, S_ERR_MAX);
}

START_TEST(test_defaults)
{
    ds_config_t c;
    memset(&c, 0xA5, sizeof c);
    ds_config_defaults(&c);
    ck_assert_str_eq(c.job, "descent");
    ck_assert_uint_eq(c.seed, 42);
    ck_assert_str_eq(c.out, "runs/latest");
    ck_assert_str_eq(c.log_level, "info");
    ck_assert_str_eq(c.progress, "auto");
    ck_assert_str_eq(c.scheduler, "tcp://127.0.0.1:7070");
    ck_assert_str_eq(c.bind, "tcp://0.0.0.0:*");
    ck_assert_str_eq(c.advertise, "127.0.0.1");
    ck_assert_int_eq(c.servers, 2);
    ck_assert_int_eq(c.workers, 2);
    ck_assert_int_eq(c.ranges_per_server, 2);
    ck_assert_int_eq(c.heartbeat_ms, 500);
    ck_assert_int_eq(c.timeout_ms, 10000);
    ck_assert_int_eq(c.join_timeout_ms, 30000);
    ck_assert_int_eq(c.request_timeout_ms, 30000);
    ck_assert_int_eq(c.max_message_mb, 256);
    ck_assert_str_eq(c.data_dir, "/usr/share/datasets/fashion-mnist");
    ck_assert_int_eq(c.limit, 0);
    ck_assert_int_eq(c.test_limit, 0);
    ck_assert(c.shuffle);
    ck_assert_str_eq(c.model, "softmax");
    ck_assert_str_eq(c.init, "auto");
    ck_assert_double_eq(c.init_scale, 0.01);
    ck_assert_str_eq(c.algorithm, "downpour");
    ck_assert_int_eq(c.epochs, 10);
    ck_assert_int_eq(c.batch_size, 64);
    ck_assert_int_eq(c.n_fetch, 1);
    ck_assert_int_eq(c.n_push, 1);
    ck_assert_str_eq(c.name, "sgd");
    ck_assert_double_eq(c.lr, 0.2);
    ck_assert_str_eq(c.schedule, "cosine");
    ck_assert_double_eq(c.lr_min, 0.0);
    ck_assert_int_eq(c.warmup, 0);
}
END_TEST

START_TEST(test_int_parsing)
{
    ds_config_t c;
    char        err[S_ERR_MAX];

    ck_assert_int_eq(s_set(&c, "train", "epochs", "7", err), 0);
    ck_assert_int_eq(c.epochs, 7);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(s_set(&c, "train", "epochs", "+100000", err), 0);
    ck_assert_int_eq(c.epochs, 100000);
    ck_assert_int_eq(s_set(&c, "train", "epochs", "1", err), 0);
    ck_assert_int_eq(c.epochs, 1);

    const char *junk[] = {"10x",  "",    " 10", "10 ", "1.5",
                          "0x10", "1e3", "-",   "ten"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        ck_assert_int_eq(s_set(&c, "train", "epochs", junk[i], err), -EINVAL);
        ck_assert_int_eq(c.epochs, 10); // unchanged on error
        char want[S_ERR_MAX];
        snprintf(want, sizeof want,
                 "[train] epochs: expected an integer (got \"%s\")", junk[i]);
        ck_assert_str_eq(err, want);
    }
    ck_assert_int_eq(s_set(&c, "train", "epochs", "0", err), -EINVAL);
    ck_assert_str_eq(err, "[train] epochs: must be between 1 and 100000 "
                          "(got \"0\")");
    ck_assert_int_eq(s_set(&c, "train", "epochs", "100001", err), -EINVAL);
    ck_assert_str_eq(err, "[train] epochs: must be between 1 and 100000 "
                          "(got \"100001\")");
    // Beyond int64: the same bounds message, never a wrapped value.
    ck_assert_int_eq(s_set(&c, "train", "epochs", "99999999999999999999", err),
                     -EINVAL);
    ck_assert_str_eq(err, "[train] epochs: must be between 1 and 100000 "
                          "(got \"99999999999999999999\")");
    // Beyond int but within int64 must not be truncated into range.
    ck_assert_int_eq(s_set(&c, "train", "epochs", "4294967297", err), -EINVAL);
    ck_assert_int_eq(c.epochs, 10);
    // An int with no stated upper bound.
    ck_assert_int_eq(s_set(&c, "optimizer", "warmup", "-1", err), -EINVAL);
    ck_assert_str_eq(err, "[optimizer] warmup: must be >= 0 (got \"-1\")");
    ck_assert_int_eq(s_set(&c, "optimizer", "warmup", "2147483647", err), 0);
    ck_assert_int_eq(c.warmup, 2147483647);
}
END_TEST

START_TEST(test_int64_parsing)
{
    ds_config_t c;
    char        err[S_ERR_MAX];

    ck_assert_int_eq(s_set(&c, "data", "limit", "9223372036854775807", err), 0);
    ck_assert_int_eq(c.limit, INT64_MAX);
    ck_assert_int_eq(s_set(&c, "data", "test_limit", "5000", err), 0);
    ck_assert_int_eq(c.test_limit, 5000);
    ck_assert_int_eq(s_set(&c, "data", "limit", "-1", err), -EINVAL);
    ck_assert_str_eq(err, "[data] limit: must be >= 0 (got \"-1\")");
    ck_assert_int_eq(s_set(&c, "data", "limit", "9223372036854775808", err),
                     -EINVAL);
    ck_assert_str_eq(err, "[data] limit: out of range for a 64-bit integer "
                          "(got \"9223372036854775808\")");
    ck_assert_int_eq(s_set(&c, "data", "limit", "12abc", err), -EINVAL);
    ck_assert_str_eq(err, "[data] limit: expected an integer (got \"12abc\")");
    ck_assert_int_eq(c.limit, 0);
}
END_TEST

START_TEST(test_uint64_parsing)
{
    ds_config_t c;
    char        err[S_ERR_MAX];

    ck_assert_int_eq(s_set(&c, "job", "seed", "18446744073709551615", err), 0);
    ck_assert_uint_eq(c.seed, UINT64_MAX);
    ck_assert_int_eq(s_set(&c, "job", "seed", "0", err), 0);
    ck_assert_uint_eq(c.seed, 0);
    ck_assert_int_eq(s_set(&c, "job", "seed", "18446744073709551616", err),
                     -EINVAL);
    ck_assert_str_eq(err, "[job] seed: out of range for a 64-bit unsigned "
                          "integer (got \"18446744073709551616\")");
    // strtoull would wrap "-1" to UINT64_MAX; it must be refused instead.
    ck_assert_int_eq(s_set(&c, "job", "seed", "-1", err), -EINVAL);
    ck_assert_str_eq(err, "[job] seed: expected an integer >= 0 (got \"-1\")");
    ck_assert_int_eq(s_set(&c, "job", "seed", "42x", err), -EINVAL);
    ck_assert_int_eq(s_set(&c, "job", "seed", "", err), -EINVAL);
    ck_assert_uint_eq(c.seed, 42);
}
END_TEST

START_TEST(test_double_parsing)
{
    ds_config_t c;
    char        err[S_ERR_MAX];

    ck_assert_int_eq(s_set(&c, "optimizer", "lr", "0.05", err), 0);
    ck_assert_double_eq(c.lr, 0.05);
    ck_assert_int_eq(s_set(&c, "optimizer", "lr", "1e-3", err), 0);
    ck_assert_double_eq(c.lr, 1e-3);
    ck_assert_int_eq(s_set(&c, "optimizer", "lr", "-1", err), -EINVAL);
    ck_assert_str_eq(err, "[optimizer] lr: must be > 0 (got \"-1\")");
    ck_assert_int_eq(s_set(&c, "optimizer", "lr", "0", err), -EINVAL);
    ck_assert_str_eq(err, "[optimizer] lr: must be > 0 (got \"0\")");
    ck_assert_int_eq(s_set(&c, "optimizer", "lr", "nan", err), -EINVAL);
    ck_assert_str_eq(err,
                     "[optimizer] lr: must be a finite number (got \"nan\")");
    ck_assert_int_eq(s_set(&c, "optimizer", "lr", "inf", err), -EINVAL);
    ck_assert_int_eq(s_set(&c, "optimizer", "lr", "1e999", err), -EINVAL);
    ck_assert_str_eq(err,
                     "[optimizer] lr: must be a finite number (got \"1e999\")");
    ck_assert_int_eq(s_set(&c, "optimizer", "lr", "0.1x", err), -EINVAL);
    ck_assert_str_eq(err, "[optimizer] lr: expected a number (got \"0.1x\")");
    ck_assert_int_eq(s_set(&c, "optimizer", "lr", " 0.1", err), -EINVAL);
    ck_assert_int_eq(s_set(&c, "optimizer", "lr", "", err), -EINVAL);
    ck_assert_double_eq(c.lr, 0.2);

    ck_assert_int_eq(s_set(&c, "model", "init_scale", "0", err), 0);
    ck_assert_double_eq(c.init_scale, 0.0);
    ck_assert_int_eq(s_set(&c, "optimizer", "lr_min", "-0.1", err), -EINVAL);
    ck_assert_str_eq(err, "[optimizer] lr_min: must be >= 0 (got \"-0.1\")");
    ck_assert_int_eq(s_set(&c, "optimizer", "lr_min", "0.001", err), 0);
    ck_assert_double_eq(c.lr_min, 0.001);
}
END_TEST

START_TEST(test_bool_parsing)
{
    ds_config_t c;
    char        err[S_ERR_MAX];
    const char *yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"};
    const char *no[] = {"false", "no", "off", "0", "False", "OFF"};

    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        ds_config_defaults(&c);
        c.shuffle = false;
        ck_assert_int_eq(
            ds_config_set(&c, "data", "shuffle", yes[i], err, sizeof err), 0);
        ck_assert(c.shuffle);
        ck_assert_int_eq(
            ds_config_set(&c, "data", "shuffle", no[i], err, sizeof err), 0);
        ck_assert(!c.shuffle);
    }
    ck_assert_int_eq(s_set(&c, "data", "shuffle", "maybe", err), -EINVAL);
    ck_assert_str_eq(err, "[data] shuffle: expected true/false, yes/no, "
                          "on/off or 1/0 (got \"maybe\")");
    ck_assert_int_eq(s_set(&c, "data", "shuffle", "", err), -EINVAL);
    ck_assert_int_eq(s_set(&c, "data", "shuffle", "2", err), -EINVAL);
    ck_assert(c.shuffle);
}
END_TEST

START_TEST(test_enum_parsing)
{
    ds_config_t c;
    char        err[S_ERR_MAX];

    ck_assert_int_eq(s_set(&c, "job", "log_level", "debug", err), 0);
    ck_assert_str_eq(c.log_level, "debug");
    ck_assert_int_eq(s_set(&c, "job", "progress", "off", err), 0);
    ck_assert_str_eq(c.progress, "off");
    ck_assert_int_eq(s_set(&c, "model", "init", "random", err), 0);
    ck_assert_str_eq(c.init, "random");
    ck_assert_int_eq(s_set(&c, "optimizer", "schedule", "constant", err), 0);
    ck_assert_str_eq(c.schedule, "constant");

    ck_assert_int_eq(s_set(&c, "job", "log_level", "loud", err), -EINVAL);
    ck_assert_str_eq(err, "[job] log_level: must be one of "
                          "debug|info|warn|error (got \"loud\")");
    ck_assert_int_eq(s_set(&c, "job", "log_level", "INFO", err), -EINVAL);
    // A prefix of a choice, or two choices, are not a choice.
    ck_assert_int_eq(s_set(&c, "job", "log_level", "inf", err), -EINVAL);
    ck_assert_int_eq(s_set(&c, "job", "log_level", "info|warn", err), -EINVAL);
    ck_assert_int_eq(s_set(&c, "model", "model", "cnn", err), -EINVAL);
    ck_assert_str_eq(
        err, "[model] model: must be one of softmax|mlp|logreg (got \"cnn\")");
    ck_assert_str_eq(c.log_level, "info");
}
END_TEST

START_TEST(test_string_parsing)
{
    ds_config_t c;
    char        err[S_ERR_MAX];
    char        v[DS_STR_MAX + 1];

    memset(v, 'a', 63);
    v[63] = '\0';
    ck_assert_int_eq(s_set(&c, "job", "job", v, err), 0);
    ck_assert_str_eq(c.job, v);
    v[63] = 'a';
    v[64] = '\0';
    ck_assert_int_eq(s_set(&c, "job", "job", v, err), -EINVAL);
    ck_assert_str_eq(err, "[job] job: too long: at most 63 characters "
                          "(got 64)");
    ck_assert_str_eq(c.job, "descent"); // not truncated, not changed

    memset(v, 'h', DS_STR_MAX - 1);
    v[DS_STR_MAX - 1] = '\0';
    ck_assert_int_eq(s_set(&c, "cluster", "advertise", v, err), 0);
    ck_assert_uint_eq(strlen(c.advertise), DS_STR_MAX - 1);
    v[DS_STR_MAX - 1] = 'h';
    v[DS_STR_MAX] = '\0';
    ck_assert_int_eq(s_set(&c, "cluster", "advertise", v, err), -EINVAL);
    ck_assert_str_eq(err, "[cluster] advertise: too long: at most 255 "
                          "characters (got 256)");

    ck_assert_int_eq(s_set(&c, "job", "out", "", err), -EINVAL);
    ck_assert_str_eq(err, "[job] out: must not be empty");
    ck_assert_int_eq(s_set(&c, "cluster", "scheduler", "tcp://10.0.0.1:9", err),
                     0);
    ck_assert_str_eq(c.scheduler, "tcp://10.0.0.1:9");
}
END_TEST

START_TEST(test_set_unknown_and_unprefixed)
{
    ds_config_t c;
    char        err[S_ERR_MAX];

    ck_assert_int_eq(s_set(&c, "train", "epoch", "3", err), -ENOENT);
    ck_assert_str_eq(err, "[train] epoch: unknown option");
    ck_assert_int_eq(s_set(&c, "trian", "epochs", "3", err), -ENOENT);
    ck_assert_str_eq(err, "[trian] epochs: unknown section");
    ck_assert_int_eq(s_set(&c, "model", "lr", "0.1", err), -ENOENT);
    ck_assert_str_eq(err, "[model] lr: unknown option");
    ck_assert_int_eq(s_set(&c, NULL, "nope", "1", err), -ENOENT);
    ck_assert_str_eq(err, "nope: unknown option");
    ck_assert_int_eq(s_set(&c, NULL, "lr", "0.5", err), 0);
    ck_assert_double_eq(c.lr, 0.5);
    ck_assert_int_eq(s_set(&c, NULL, "batch_size", "8", err), 0);
    ck_assert_int_eq(c.batch_size, 8);
}
END_TEST

START_TEST(test_error_text_is_bounded)
{
    ds_config_t c;
    char        err[S_ERR_MAX];
    char        v[200];

    // A long bad value is quoted up to 64 characters, then "...".
    memset(v, '9', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    v[0] = 'x';
    ck_assert_int_eq(s_set(&c, "train", "epochs", v, err), -EINVAL);
    char want[S_ERR_MAX];
    snprintf(want, sizeof want,
             "[train] epochs: expected an integer (got \"%.64s...\")", v);
    ck_assert_str_eq(err, want);

    // A short buffer gets a truncated, terminated message and nothing more.
    char small[16];
    memset(small, '#', sizeof small);
    ds_config_defaults(&c);
    ck_assert_int_eq(ds_config_set(&c, "optimizer", "lr", "-1", small, 10),
                     -EINVAL);
    ck_assert_str_eq(small, "[optimize");
    ck_assert_int_eq(small[10], '#');
    // No buffer at all is allowed.
    ck_assert_int_eq(ds_config_set(&c, "optimizer", "lr", "-1", NULL, 0),
                     -EINVAL);
    ck_assert_int_eq(ds_config_set(&c, "optimizer", "lr", "0.3", NULL, 0), 0);
    ck_assert_double_eq(c.lr, 0.3);
}
END_TEST

START_TEST(test_file_loads)
{
    char        path[32];
    char        err[S_ERR_MAX];
    ds_config_t c;

    s_write_file(path, "\xEF\xBB\xBF; a job file\n"
                       "# another comment\n"
                       "\n"
                       "[job]\n"
                       "job = mnist-1 ; inline comment\n"
                       "seed=7\r\n"
                       "[train]\n"
                       "epochs : 3\n"
                       "batch_size = 16\n"
                       "batch_size = 32\n"
                       "  ; an indented comment is fine\n"
                       "[optimizer]\n"
                       "lr = 0.05\n"
                       "schedule = constant\n"
                       "[data]\n"
                       "shuffle = off\n"
                       "[job]\n"
                       "out = /tmp/run x\n");
    ds_config_defaults(&c);
    ck_assert_int_eq(ds_config_load_file(&c, path, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(c.job, "mnist-1");
    ck_assert_uint_eq(c.seed, 7);
    ck_assert_int_eq(c.epochs, 3);
    ck_assert_int_eq(c.batch_size, 32); // the last one wins
    ck_assert_double_eq(c.lr, 0.05);
    ck_assert_str_eq(c.schedule, "constant");
    ck_assert(!c.shuffle);
    ck_assert_str_eq(c.out, "/tmp/run x");
    ck_assert_int_eq(c.workers, 2); // untouched options keep their value
    unlink(path);
}
END_TEST

// s_load_bad writes text, loads it over defaults, expects -EINVAL and an
// unchanged config, and checks err is "path:line: rest".
static void
s_load_bad(const char *text, int line, const char *rest)
{
    char        path[32];
    char        err[S_ERR_MAX];
    ds_config_t c;
    ds_config_t before;

    s_write_file(path, text);
    ds_config_defaults(&c);
    before = c;
    ck_assert_int_eq(ds_config_load_file(&c, path, err, sizeof err), -EINVAL);
    s_expect_at(err, path, line, rest);
    ck_assert_int_eq(memcmp(&c, &before, sizeof c), 0);
    unlink(path);
}

START_TEST(test_file_unknown_key)
{
    s_load_bad("[train]\n"
               "epochs = 3\n"
               "\n"
               "; comment\n"
               "[optimizer]\n"
               "[train]\n"
               "epoch = 4\n"
               "batch_size = 8\n",
               7, "[train] epoch: unknown option");
}
END_TEST

START_TEST(test_file_malformed_line)
{
    s_load_bad("[train]\n"
               "epochs = 3\n"
               "batch_size 8\n"
               "n_push = 2\n",
               3, "expected [section] or key = value");
    s_load_bad("[train\n"
               "epochs = 3\n",
               1, "expected [section] or key = value");
    // A syntax error is reported even when a bad value follows it, because
    // it is the first error in the file.
    s_load_bad("[train]\n"
               "oops\n"
               "epochs = 0\n",
               2, "expected [section] or key = value");
}
END_TEST

START_TEST(test_file_bad_value)
{
    s_load_bad("[train]\n"
               "epochs = 3\n"
               "[optimizer]\n"
               "lr = -1\n"
               "schedule = cosine\n",
               4, "[optimizer] lr: must be > 0 (got \"-1\")");
    s_load_bad("[data]\nlimit = 10 rows\n", 2,
               "[data] limit: expected an integer (got \"10 rows\")");
}
END_TEST

START_TEST(test_file_unknown_section)
{
    s_load_bad("[train]\n"
               "epochs = 3\n"
               "\n"
               "\n"
               "[trian]\n"
               "epochs = 4\n",
               5, "[trian]: unknown section");
    // Reported at its heading even when the section is empty.
    s_load_bad("[job]\nseed = 1\n[empty]\n", 3, "[empty]: unknown section");
}
END_TEST

START_TEST(test_file_indented_and_sectionless)
{
    // inih would set advertise to "servers = 4"; we refuse the line.
    s_load_bad("[cluster]\n"
               "advertise = 10.0.0.1\n"
               "  servers = 4\n",
               3,
               "indented line; inih would read it as part of the previous "
               "value");
    s_load_bad("seed = 5\n[job]\n", 1, "seed: option before any [section]");
}
END_TEST

START_TEST(test_file_line_length)
{
    // ini_max_line is the size of inih's line buffer, NUL included. A line
    // that fills it exactly (its newline not counted) loads; one character
    // more is refused instead of being split in two by inih.
    int         room = ini_max_line - 1;
    char        text[1024];
    char        path[32];
    char        err[S_ERR_MAX];
    ds_config_t c;

    ck_assert_int_lt(room + 64, (int)sizeof text);
    int n = snprintf(text, sizeof text, "[job]\nout = ");
    int value = room - (int)strlen("out = ");
    memset(text + n, 'x', (size_t)value);
    snprintf(text + n + value, sizeof text - (size_t)(n + value),
             "\nseed = 9\n");
    s_write_file(path, text);
    ds_config_defaults(&c);
    ck_assert_int_eq(ds_config_load_file(&c, path, err, sizeof err), 0);
    ck_assert_uint_eq(strlen(c.out), (size_t)value);
    ck_assert_uint_eq(c.seed, 9);
    unlink(path);

    memset(text + n, 'x', (size_t)value + 1);
    snprintf(text + n + value + 1, sizeof text - (size_t)(n + value + 1),
             "\nseed = 9\n");
    s_write_file(path, text);
    ds_config_defaults(&c);
    ck_assert_int_eq(ds_config_load_file(&c, path, err, sizeof err), -EINVAL);
    char want[S_ERR_MAX];
    snprintf(want, sizeof want, "%s:2: line too long (at most %d characters)",
             path, room);
    ck_assert_str_eq(err, want);
    ck_assert_str_eq(c.out, "runs/latest");
    unlink(path);
}
END_TEST

START_TEST(test_file_missing)
{
    char        err[S_ERR_MAX];
    ds_config_t c;

    ds_config_defaults(&c);
    ck_assert_int_eq(
        ds_config_load_file(&c, "/nonexistent/job.ini", err, sizeof err),
        -ENOENT);
    ck_assert_str_eq(err, "/nonexistent/job.ini: cannot open: No such file or "
                          "directory");
    // A directory opens but cannot be read.
    ck_assert_int_eq(ds_config_load_file(&c, "/tmp", err, sizeof err), -EISDIR);
    ck_assert_str_eq(err, "/tmp: cannot read: Is a directory");
}
END_TEST

START_TEST(test_env)
{
    char        err[S_ERR_MAX];
    ds_config_t c;
    char       *envp[] = {
              "PATH=/usr/bin",
              "DESCENT_OPTIMIZER_LR=0.125",
              "DESCENT_CLUSTER_SCHEDULER=tcp://10.1.2.3:7000",
              "DESCENT_TRAIN_BATCH_SIZE=128",
              "DESCENT_DATA_SHUFFLE=no",
              "DESCENT_BIN=/opt/descent",
              "DESCENT_CONFIG=/nonexistent.ini",
              "DESCENT_NO_EQUALS_SIGN",
              NULL,
    };

    ds_config_defaults(&c);
    ck_assert_int_eq(ds_config_load_env(&c, envp, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_double_eq(c.lr, 0.125);
    ck_assert_str_eq(c.scheduler, "tcp://10.1.2.3:7000");
    ck_assert_int_eq(c.batch_size, 128);
    ck_assert(!c.shuffle);
    ck_assert_int_eq(c.epochs, 10);
}
END_TEST

START_TEST(test_env_errors)
{
    char        err[S_ERR_MAX];
    ds_config_t c;
    ds_config_t before;
    char *unknown[] = {"DESCENT_OPTIMIZER_LR=0.5", "DESCENT_TRAIN_EPOCH=3",
                       NULL};
    char *bad[] = {"DESCENT_OPTIMIZER_LR=-1", NULL};
    char *lower[] = {"DESCENT_optimizer_lr=0.5", NULL};

    ds_config_defaults(&c);
    before = c;
    ck_assert_int_eq(ds_config_load_env(&c, unknown, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "DESCENT_TRAIN_EPOCH: unknown environment variable "
                          "(not an option)");
    ck_assert_int_eq(memcmp(&c, &before, sizeof c), 0); // all or nothing
    ck_assert_int_eq(ds_config_load_env(&c, bad, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "DESCENT_OPTIMIZER_LR: [optimizer] lr: must be > 0 "
                          "(got \"-1\")");
    ck_assert_int_eq(ds_config_load_env(&c, lower, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "DESCENT_optimizer_lr: unknown environment "
                          "variable (not an option)");
    ck_assert_double_eq(c.lr, 0.2);
}
END_TEST

START_TEST(test_precedence)
{
    char        path[32];
    char        err[S_ERR_MAX];
    ds_config_t c;
    bool        help = true;

    s_write_file(path, "[optimizer]\nlr = 0.3\n"
                       "[train]\nepochs = 5\nbatch_size = 32\n");
    char *envp[] = {"DESCENT_OPTIMIZER_LR=0.4", "DESCENT_TRAIN_EPOCHS=6", NULL};

    char *files_only[] = {"run", "--config", path, NULL};
    ck_assert_int_eq(ds_config_from_args(&c, S_ARGC(files_only), files_only,
                                         (char *[]){NULL}, false, &help, err,
                                         sizeof err),
                     0);
    ck_assert(!help);
    ck_assert_double_eq(c.lr, 0.3);
    ck_assert_int_eq(c.epochs, 5);

    ck_assert_int_eq(ds_config_from_args(&c, S_ARGC(files_only), files_only,
                                         envp, false, &help, err, sizeof err),
                     0);
    ck_assert_double_eq(c.lr, 0.4);     // environment over file
    ck_assert_int_eq(c.epochs, 6);      // environment over file
    ck_assert_int_eq(c.batch_size, 32); // file over defaults

    char *with_flags[] = {"run", "--optimizer.lr=0.5", "-c", path, NULL};
    ck_assert_int_eq(ds_config_from_args(&c, S_ARGC(with_flags), with_flags,
                                         envp, false, &help, err, sizeof err),
                     0);
    ck_assert_str_eq(err, "");
    ck_assert_double_eq(c.lr, 0.5); // flag over environment, wherever it is
    ck_assert_int_eq(c.epochs, 6);
    ck_assert_int_eq(c.batch_size, 32);
    ck_assert_int_eq(c.workers, 2);
    unlink(path);
}
END_TEST

START_TEST(test_descent_config)
{
    char        a[32];
    char        b[32];
    char        err[S_ERR_MAX];
    char        envcfg[64];
    ds_config_t c;
    bool        help;

    s_write_file(a, "[train]\nepochs = 11\n");
    s_write_file(b, "[train]\nepochs = 22\n");
    snprintf(envcfg, sizeof envcfg, "DESCENT_CONFIG=%s", a);
    char *envp[] = {envcfg, NULL};

    char *none[] = {"run", NULL};
    ck_assert_int_eq(ds_config_from_args(&c, S_ARGC(none), none, envp, true,
                                         &help, err, sizeof err),
                     0);
    ck_assert_int_eq(c.epochs, 11);

    char cfgflag[48];
    snprintf(cfgflag, sizeof cfgflag, "--config=%s", b);
    char *flag[] = {"run", cfgflag, NULL};
    ck_assert_int_eq(ds_config_from_args(&c, S_ARGC(flag), flag, envp, false,
                                         &help, err, sizeof err),
                     0);
    ck_assert_int_eq(c.epochs, 22);

    char *pos[] = {"run", b, NULL};
    ck_assert_int_eq(ds_config_from_args(&c, S_ARGC(pos), pos, envp, true,
                                         &help, err, sizeof err),
                     0);
    ck_assert_int_eq(c.epochs, 22);

    char *empty[] = {"DESCENT_CONFIG=", NULL};
    ck_assert_int_eq(ds_config_from_args(&c, S_ARGC(none), none, empty, true,
                                         &help, err, sizeof err),
                     0);
    ck_assert_int_eq(c.epochs, 10);
    unlink(a);
    unlink(b);
}
END_TEST

START_TEST(test_flag_forms)
{
    char        path[32];
    char        err[S_ERR_MAX];
    ds_config_t c;
    bool        help;

    s_write_file(path, "[job]\nseed = 3\n");
    char *argv[] = {"worker",
                    "--optimizer.lr=0.5",
                    "--train.epochs",
                    "3",
                    "--batch_size=16",
                    "--workers",
                    "8",
                    "--data.shuffle=off",
                    "--job.out",
                    "-",
                    "--lr_min",
                    "0.001",
                    "--",
                    path,
                    NULL};
    ck_assert_int_eq(ds_config_from_args(&c, S_ARGC(argv), argv,
                                         (char *[]){NULL}, true, &help, err,
                                         sizeof err),
                     0);
    ck_assert_str_eq(err, "");
    ck_assert(!help);
    ck_assert_double_eq(c.lr, 0.5);
    ck_assert_int_eq(c.epochs, 3);
    ck_assert_int_eq(c.batch_size, 16);
    ck_assert_int_eq(c.workers, 8);
    ck_assert(!c.shuffle);
    ck_assert_str_eq(c.out, "-"); // a single dash is a value, not a flag
    ck_assert_double_eq(c.lr_min, 0.001);
    ck_assert_uint_eq(c.seed, 3); // the positional after "--" is the file
    unlink(path);
}
END_TEST

// s_args_fail runs from_args with no environment and expects rc and err.
static void
s_args_fail(char **argv, int argc, bool allow_positional, int rc,
            const char *want)
{
    char        err[S_ERR_MAX];
    ds_config_t c;
    bool        help = true;

    ck_assert_int_eq(ds_config_from_args(&c, argc, argv, (char *[]){NULL},
                                         allow_positional, &help, err,
                                         sizeof err),
                     rc);
    ck_assert_str_eq(err, want);
    ck_assert(!help);
}

START_TEST(test_flag_errors)
{
    char *unknown[] = {"run", "--train.epoch=3", NULL};
    s_args_fail(unknown, 2, false, -EINVAL, "--train.epoch: unknown option");
    char *unknown2[] = {"run", "--epoch", "3", NULL};
    s_args_fail(unknown2, 3, false, -EINVAL, "--epoch: unknown option");
    char *section[] = {"run", "--trian.epochs=3", NULL};
    s_args_fail(section, 2, false, -EINVAL, "--trian.epochs: unknown section");
    char *dash[] = {"run", "-x", NULL};
    s_args_fail(dash, 2, false, -EINVAL, "-x: unknown flag");
    char *missing[] = {"run", "--lr", NULL};
    s_args_fail(missing, 2, false, -EINVAL, "--lr: missing value");
    char *next_flag[] = {"run", "--data.shuffle", "--epochs=3", NULL};
    s_args_fail(next_flag, 3, false, -EINVAL, "--data.shuffle: missing value");
    char *no_file[] = {"run", "-c", NULL};
    s_args_fail(no_file, 2, false, -EINVAL, "-c: missing FILE");
    char *bad[] = {"run", "--lr=-1", NULL};
    s_args_fail(bad, 2, false, -EINVAL,
                "--lr: [optimizer] lr: must be > 0 (got \"-1\")");
    char *bad2[] = {"run", "--train.epochs", "many", NULL};
    s_args_fail(bad2, 3, false, -EINVAL,
                "--train.epochs: [train] epochs: expected an integer "
                "(got \"many\")");
    // Only the first error is reported.
    char *two[] = {"run", "--nope=1", "--alsonope=2", NULL};
    s_args_fail(two, 3, false, -EINVAL, "--nope: unknown option");
}
END_TEST

START_TEST(test_positional)
{
    char        path[32];
    char        err[S_ERR_MAX];
    ds_config_t c;
    bool        help;

    s_write_file(path, "[train]\nepochs = 4\n");
    char *one[] = {"run", path, NULL};
    ck_assert_int_eq(ds_config_from_args(&c, 2, one, (char *[]){NULL}, true,
                                         &help, err, sizeof err),
                     0);
    ck_assert_int_eq(c.epochs, 4);

    char want[S_ERR_MAX];
    snprintf(want, sizeof want, "unexpected argument \"%s\"", path);
    s_args_fail(one, 2, false, -EINVAL, want);

    char *two[] = {"run", path, "extra.ini", NULL};
    snprintf(want, sizeof want,
             "unexpected second argument \"extra.ini\" (the job file is "
             "\"%s\")",
             path);
    s_args_fail(two, 3, true, -EINVAL, want);

    char *both[] = {"run", "--config", path, "other.ini", NULL};
    snprintf(want, sizeof want,
             "two job files: --config \"%s\" and argument \"other.ini\"", path);
    s_args_fail(both, 4, true, -EINVAL, want);

    char *twice[] = {"run", "-c", "a.ini", "--config=b.ini", NULL};
    s_args_fail(twice, 4, true, -EINVAL,
                "--config given twice (\"a.ini\" and \"b.ini\")");
    unlink(path);
}
END_TEST

START_TEST(test_missing_file_from_args)
{
    char *argv[] = {"run", "--config", "/nonexistent/job.ini", NULL};
    s_args_fail(argv, 3, false, -ENOENT,
                "/nonexistent/job.ini: cannot open: No such file or "
                "directory");
    char       *envp[] = {"DESCENT_CONFIG=/nonexistent/env.ini", NULL};
    char       *none[] = {"run", NULL};
    char        err[S_ERR_MAX];
    ds_config_t c;
    bool        help;
    ck_assert_int_eq(
        ds_config_from_args(&c, 1, none, envp, false, &help, err, sizeof err),
        -ENOENT);
    ck_assert_str_eq(err, "/nonexistent/env.ini: cannot open: No such file "
                          "or directory");
}
END_TEST

START_TEST(test_help)
{
    char        err[S_ERR_MAX];
    ds_config_t c;
    bool        help = false;

    // --help wins over anything wrong around it, and nothing is loaded.
    char *argv[] = {"run",     "-x",     "--config", "/nonexistent",
                    "--lr=-1", "--help", NULL};
    char *envp[] = {"DESCENT_BOGUS=1", NULL};
    ck_assert_int_eq(ds_config_from_args(&c, S_ARGC(argv), argv, envp, false,
                                         &help, err, sizeof err),
                     0);
    ck_assert(help);
    ck_assert_str_eq(err, "");
    ck_assert_double_eq(c.lr, 0.2);

    // "--lr" ends at the next "--" argument, so --help is still seen.
    char *short_h[] = {"server", "-x", "-h", NULL};
    help = false;
    ck_assert_int_eq(ds_config_from_args(&c, 3, short_h, envp, false, &help,
                                         err, sizeof err),
                     0);
    ck_assert(help);
    char *after_flag[] = {"server", "--lr", "--help", NULL};
    help = false;
    ck_assert_int_eq(ds_config_from_args(&c, 3, after_flag, envp, false, &help,
                                         err, sizeof err),
                     0);
    ck_assert(help);

    // After "--", -h is a positional argument, not a request for help.
    char *quoted[] = {"run", "--", "-h", NULL};
    s_args_fail(quoted, 3, false, -EINVAL, "unexpected argument \"-h\"");
}
END_TEST

// The table has no key in two sections today, so an unprefixed flag can
// never be ambiguous yet (the "ambiguous: [a] k, [b] k" path is unreachable
// through the public API). This test proves every key works unprefixed,
// and will fail, asking for an ambiguity test, the day a key is shared.
START_TEST(test_unprefixed_keys_unambiguous)
{
    char   usage[16384];
    size_t n = ds_config_usage(usage, sizeof usage);
    ck_assert_uint_lt(n, sizeof usage);
    int count = 0;
    for (char *line = strtok(usage, "\n"); line; line = strtok(NULL, "\n")) {
        char sec[32];
        char key[32];
        char def[DS_STR_MAX];
        if (sscanf(line, "  --%31[a-z_].%31[a-z_]=%255s", sec, key, def) != 3) {
            continue;
        }
        char flag[320];
        snprintf(flag, sizeof flag, "--%s=%s", key, def);
        char       *argv[] = {"run", flag, NULL};
        char        err[S_ERR_MAX];
        ds_config_t c;
        bool        help;
        ck_assert_msg(ds_config_from_args(&c, 2, argv, (char *[]){NULL}, false,
                                          &help, err, sizeof err) == 0,
                      "%s: %s", flag, err);
        ds_config_defaults(&c);
        ck_assert_int_eq(ds_config_set(&c, NULL, key, def, err, sizeof err), 0);
        count++;
    }
    ck_assert_int_eq(count, 87); // every field of ds_config_t
}
END_TEST

// Some defaults depend on the job ([train] algorithm, [model] model, and
// for lr the rule): an option no source sets follows them whatever the
// order of the sources, and a value any source gives always wins.
START_TEST(test_defaults_by_job)
{
    char        err[S_ERR_MAX];
    ds_config_t c;
    ds_config_defaults(&c);
    ck_assert_str_eq(c.name, "sgd");
    ck_assert_double_eq(c.lr, 0.2);
    ck_assert_int_eq(c.batch_size, 64);
    ck_assert_int_eq(c.tau, 4);
    ck_assert_double_eq(c.easgd_delta, 0.9);

    ck_assert_int_eq(
        ds_config_set(&c, "train", "algorithm", "easgd", err, sizeof err), 0);
    ck_assert_double_eq(c.lr, 0.1);
    ck_assert_int_eq(
        ds_config_set(&c, "model", "model", "mlp", err, sizeof err), 0);
    ck_assert_double_eq(c.lr, 0.1);
    ck_assert_int_eq(c.tau, 1);
    ck_assert_double_eq(c.easgd_delta, 0.95);
    ck_assert_str_eq(c.name, "sgd"); // easgd's servers apply no rule
    ck_assert_int_eq(
        ds_config_set(&c, "train", "algorithm", "downpour", err, sizeof err),
        0);
    ck_assert_str_eq(c.name, "adam");
    ck_assert_double_eq(c.lr, 0.001);
    ck_assert_int_eq(c.batch_size, 64);
    ck_assert_int_eq(
        ds_config_set(&c, "train", "algorithm", "dtadagrad", err, sizeof err),
        0);
    ck_assert_str_eq(c.name, "sgd");
    ck_assert_double_eq(c.lr, 0.2);
    ck_assert_int_eq(c.batch_size, 32);
    // Back to the default job: every default is the plain one again.
    ck_assert_int_eq(
        ds_config_set(&c, "train", "algorithm", "downpour", err, sizeof err),
        0);
    ck_assert_int_eq(
        ds_config_set(&c, "model", "model", "softmax", err, sizeof err), 0);
    ck_assert_str_eq(c.name, "sgd");
    ck_assert_double_eq(c.lr, 0.2);
    ck_assert_int_eq(c.batch_size, 64);
    ck_assert_int_eq(c.tau, 4);

    // A given rule picks its own rate; a given rate stays, before or after
    // the algorithm changes.
    ds_config_defaults(&c);
    ck_assert_int_eq(
        ds_config_set(&c, "optimizer", "name", "adam", err, sizeof err), 0);
    ck_assert_double_eq(c.lr, 0.001);
    ck_assert_int_eq(
        ds_config_set(&c, "optimizer", "lr", "0.3", err, sizeof err), 0);
    ck_assert_int_eq(
        ds_config_set(&c, "train", "algorithm", "easgd", err, sizeof err), 0);
    ck_assert_double_eq(c.lr, 0.3);

    // Across sources: the file picks the algorithm, a flag the model, the
    // environment the rate; the batch size follows the job.
    char path[32];
    s_write_file(path, "[train]\nalgorithm = dtadagrad\n");
    char *argv[] = {"run", "--config", path, "--model.model=mlp", NULL};
    char *envp[] = {"DESCENT_OPTIMIZER_LR=0.05", NULL};
    bool  help = false;
    ck_assert_int_eq(ds_config_from_args(&c, S_ARGC(argv), argv, envp, false,
                                         &help, err, sizeof err),
                     0);
    unlink(path);
    ck_assert_double_eq(c.lr, 0.05);
    ck_assert_int_eq(c.batch_size, 32);
    ck_assert_int_eq(c.tau, 1);
    // descent config prints the values in effect.
    char js[8192];
    ds_config_write_json(&c, js, sizeof js);
    ck_assert_ptr_nonnull(strstr(js, "\"batch_size\":32,"));
    ck_assert_ptr_nonnull(strstr(js, "\"tau\":1,"));
}
END_TEST

START_TEST(test_usage)
{
    char   buf[16384];
    size_t n = ds_config_usage(buf, sizeof buf);
    ck_assert_uint_eq(n, strlen(buf));
    ck_assert_ptr_nonnull(strstr(buf, "DESCENT_<SECTION>_<KEY>"));
    ck_assert_ptr_nonnull(strstr(buf, "increasing precedence"));
    ck_assert_ptr_nonnull(strstr(buf, "\n[optimizer]\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\n[job]\n"));
    const char *lr = strstr(buf, "\n  --optimizer.lr=0.2 ");
    const char *ep = strstr(buf, "\n  --train.epochs=10 ");
    ck_assert_ptr_nonnull(lr);
    ck_assert_ptr_nonnull(ep);
    // The help texts start in the same column.
    const char *lr_help = strstr(lr, "base learning rate (> 0) [easgd: 0.1; ");
    const char *ep_help =
        strstr(ep, "passes over the training set (1..100000)");
    ck_assert_ptr_nonnull(lr_help);
    ck_assert_ptr_nonnull(ep_help);
    ck_assert_int_eq(lr_help - lr, ep_help - ep);
    ck_assert_ptr_nonnull(strstr(buf, "least severe log message shown "
                                      "(debug|info|warn|error)\n"));
    // An entry wider than the column puts its help on the next line.
    ck_assert_ptr_nonnull(
        strstr(buf, "  --data.data_dir=/usr/share/datasets/fashion-mnist\n"
                    "                                            "
                    "directory with the IDX files\n"));

    // Like snprintf: the same length whatever the buffer, always terminated.
    char small[40];
    ck_assert_uint_eq(ds_config_usage(small, sizeof small), n);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    ck_assert_int_eq(strncmp(small, buf, sizeof small - 1), 0);
    ck_assert_uint_eq(ds_config_usage(NULL, 0), n);
}
END_TEST

// A small strict JSON checker: s_json_value returns the end of the value
// at p, or NULL if it is not valid JSON.
static const char *s_json_value(const char *p);

static const char *
s_json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
        p++;
    }
    return p;
}

static const char *
s_json_string(const char *p)
{
    if (*p++ != '"') {
        return NULL;
    }
    while (*p != '"') {
        if (*p == '\0' || (unsigned char)*p < 0x20) {
            return NULL;
        }
        if (*p++ != '\\') {
            continue;
        }
        if (*p != '\0' && strchr("\"\\/bfnrt", *p) != NULL) {
            p++;
        } else if (*p == 'u') {
            for (int i = 1; i <= 4; i++) {
                if (p[i] == '\0' ||
                    strchr("0123456789abcdefABCDEF", p[i]) == NULL) {
                    return NULL;
                }
            }
            p += 5;
        } else {
            return NULL;
        }
    }
    return p + 1;
}

static const char *
s_json_digits(const char *p)
{
    if (*p < '0' || *p > '9') {
        return NULL;
    }
    while (*p >= '0' && *p <= '9') {
        p++;
    }
    return p;
}

static const char *
s_json_number(const char *p)
{
    if (*p == '-') {
        p++;
    }
    if (*p == '0') {
        p++;
    } else if ((p = s_json_digits(p)) == NULL) {
        return NULL;
    }
    if (*p == '.' && (p = s_json_digits(p + 1)) == NULL) {
        return NULL;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') {
            p++;
        }
        p = s_json_digits(p);
    }
    return p;
}

static const char *
s_json_object(const char *p)
{
    p = s_json_ws(p + 1);
    if (*p == '}') {
        return p + 1;
    }
    for (;;) {
        if ((p = s_json_string(s_json_ws(p))) == NULL) {
            return NULL;
        }
        p = s_json_ws(p);
        if (*p++ != ':' || (p = s_json_value(p)) == NULL) {
            return NULL;
        }
        p = s_json_ws(p);
        if (*p == '}') {
            return p + 1;
        }
        if (*p++ != ',') {
            return NULL;
        }
    }
}

static const char *
s_json_value(const char *p)
{
    p = s_json_ws(p);
    if (*p == '{') {
        return s_json_object(p);
    }
    if (*p == '"') {
        return s_json_string(p);
    }
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0) {
        return p + 4;
    }
    if (strncmp(p, "false", 5) == 0) {
        return p + 5;
    }
    return s_json_number(p);
}

static bool
s_json_valid(const char *s)
{
    const char *end = s_json_value(s);
    return end != NULL && *s_json_ws(end) == '\0';
}

START_TEST(test_json_checker)
{
    // The checker itself must refuse what %g could print for bad doubles.
    ck_assert(s_json_valid("{\"a\":{\"b\":1.5e-05,\"c\":\"x\\u0001\"}}"));
    ck_assert(!s_json_valid("{\"a\":nan}"));
    ck_assert(!s_json_valid("{\"a\":inf}"));
    ck_assert(!s_json_valid("{\"a\":1.}"));
    ck_assert(!s_json_valid("{\"a\":\"\t\"}"));
    ck_assert(!s_json_valid("{\"a\":1,}"));
    ck_assert(!s_json_valid("{\"a\":1}}"));
}
END_TEST

START_TEST(test_json)
{
    ds_config_t c;
    char        buf[8192];

    ds_config_defaults(&c);
    size_t n = ds_config_write_json(&c, buf, sizeof buf);
    ck_assert_uint_eq(n, strlen(buf));
    ck_assert(s_json_valid(buf));
    const char *head = "{\"job\":{\"job\":\"descent\",\"seed\":42,\"out\":"
                       "\"runs/latest\",\"log_level\":\"info\",\"progress\":"
                       "\"auto\",\"checkpoint_s\":0,\"resume\":false,"
                       "\"recover\":false,\"restart_scheduler\":true,"
                       "\"restart_workers\":true,\"restart_servers\":true},"
                       "\"cluster\":{\"scheduler\":"
                       "\"tcp://127.0.0.1:7070\",\"bind\":\"tcp://0.0.0.0:*\",";
    ck_assert_int_eq(strncmp(buf, head, strlen(head)), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"servers\":2,\"workers\":2,"));
    ck_assert_ptr_nonnull(strstr(buf, "\"max_message_mb\":256},\"data\":{"));
    ck_assert_ptr_nonnull(
        strstr(buf, "\"limit\":0,\"test_limit\":0,\"validation\":0,"
                    "\"format\":\"idx\","));
    ck_assert_ptr_nonnull(strstr(buf, "\"init_scale\":0.01}"));
    ck_assert_ptr_nonnull(strstr(buf, "\"lr\":0.20000000000000001,"));
    ck_assert_ptr_nonnull(strstr(buf, "\"lr_min\":0,"));
    ck_assert_ptr_nonnull(
        strstr(buf, "},\"train\":{\"algorithm\":\"downpour\""));
    size_t tail = strlen("\"dt_z0\":0}}");
    ck_assert_str_eq(buf + n - tail, "\"dt_z0\":0}}");

    // Escapes, extreme numbers and false.
    char err[S_ERR_MAX];
    ck_assert_int_eq(
        ds_config_set(&c, "job", "job", "a\"b\\c\x01\t\n", err, sizeof err), 0);
    ck_assert_int_eq(ds_config_set(&c, "job", "seed", "18446744073709551615",
                                   err, sizeof err),
                     0);
    ck_assert_int_eq(ds_config_set(&c, "data", "limit", "9223372036854775807",
                                   err, sizeof err),
                     0);
    ck_assert_int_eq(
        ds_config_set(&c, "optimizer", "lr", "1e-300", err, sizeof err), 0);
    ck_assert_int_eq(
        ds_config_set(&c, "model", "init_scale", "1e300", err, sizeof err), 0);
    ck_assert_int_eq(
        ds_config_set(&c, "data", "shuffle", "no", err, sizeof err), 0);
    n = ds_config_write_json(&c, buf, sizeof buf);
    ck_assert(s_json_valid(buf));
    ck_assert_ptr_nonnull(
        strstr(buf, "{\"job\":{\"job\":\"a\\\"b\\\\c\\u0001\\t\\n\","));
    ck_assert_ptr_nonnull(strstr(buf, "\"seed\":18446744073709551615,"));
    ck_assert_ptr_nonnull(strstr(buf, "\"limit\":9223372036854775807,"));
    ck_assert_ptr_nonnull(strstr(buf, "\"shuffle\":false}"));
    ck_assert_ptr_nonnull(strstr(buf, "\"lr\":1e-300,"));
    ck_assert_ptr_nonnull(
        strstr(buf, "\"init_scale\":1.0000000000000001e+300}"));

    // Like snprintf: the needed length whatever the buffer, terminated.
    char small[20];
    memset(small, '#', sizeof small);
    ck_assert_uint_eq(ds_config_write_json(&c, small, 10), n);
    ck_assert_str_eq(small, "{\"job\":{\"");
    ck_assert_int_eq(small[10], '#');
    ck_assert_uint_eq(ds_config_write_json(&c, NULL, 0), n);
}
END_TEST

// docs/configuration.md carries the reference the option table prints: a
// change to either without the other fails here. (make unit runs from the
// top of the tree.)
START_TEST(test_docs_match_table)
{
    FILE *f = fopen("docs/configuration.md", "r");
    ck_assert_msg(f != NULL, "docs/configuration.md not found from %s",
                  getenv("PWD") ? getenv("PWD") : "?");
    static char doc[1 << 17];
    size_t      n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    size_t need = ds_config_markdown(NULL, 0);
    char  *ref = malloc(need + 1);
    ck_assert_ptr_nonnull(ref);
    ck_assert_uint_eq(ds_config_markdown(ref, need + 1), need);
    ck_assert_msg(strstr(doc, ref) != NULL,
                  "docs/configuration.md differs from the option table; "
                  "regenerate its reference with descent config --markdown");
    ck_assert_ptr_nonnull(
        strstr(ref, "| `lr` | double | `0.2`; easgd: `0.1`; dtadagrad + "
                    "softmax: `0.5`; "));
    free(ref);
}
END_TEST

// s_has_item says whether the n items include exactly s.
static bool
s_has_item(char *const *items, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i], s) == 0) {
            return true;
        }
    }
    return false;
}

// s_has_prefix says whether any of the n items starts with prefix.
static bool
s_has_prefix(char *const *items, size_t n, const char *prefix)
{
    for (size_t i = 0; i < n; i++) {
        if (strncmp(items[i], prefix, strlen(prefix)) == 0) {
            return true;
        }
    }
    return false;
}

START_TEST(test_fingerprint_lists_job_wide)
{
    ds_config_t c;
    ds_config_defaults(&c);
    char **items = NULL;
    size_t n = 0;
    ck_assert_int_eq(ds_config_fingerprint(&c, &items, &n), 0);
    // [job] 3, [data] 6, [model] 5, [train] 16, [optimizer] 30.
    ck_assert_uint_eq(n, 60);
    ck_assert_str_eq(items[0], "job.job=descent");
    ck_assert_str_eq(items[1], "job.seed=42");
    ck_assert_str_eq(items[2], "job.resume=false");
    ck_assert(s_has_item(items, n, "model.model=softmax"));
    ck_assert(s_has_item(items, n, "model.hidden=256"));
    ck_assert(s_has_item(items, n, "train.consistency=async"));
    ck_assert(s_has_item(items, n, "train.threads=1"));
    ck_assert(s_has_item(items, n, "data.limit=0"));
    // Doubles in the fewest digits that read back exactly.
    ck_assert(s_has_item(items, n, "optimizer.lr=0.2"));
    ck_assert(s_has_item(items, n, "optimizer.plateau_threshold=0.0001"));
    ck_assert_str_eq(items[n - 1], "optimizer.dt_z0=0");
    // Per-node settings stay out.
    ck_assert(!s_has_prefix(items, n, "cluster."));
    ck_assert(!s_has_prefix(items, n, "job.out="));
    ck_assert(!s_has_prefix(items, n, "job.log_level="));
    ck_assert(!s_has_prefix(items, n, "job.recover="));
    ck_assert(!s_has_prefix(items, n, "data.data_dir="));
    ck_assert(!s_has_prefix(items, n, "data.train_file="));
    free(items);

    // 0.1 + 0.2 is not 0.3: its text keeps the 17 digits that tell them
    // apart.
    c.lr = 0.1 + 0.2;
    ck_assert_int_eq(ds_config_fingerprint(&c, &items, &n), 0);
    ck_assert(s_has_item(items, n, "optimizer.lr=0.30000000000000004"));
    free(items);
}
END_TEST

START_TEST(test_compare_names_first_difference)
{
    char        err[S_ERR_MAX];
    ds_config_t job, node;
    ds_config_defaults(&job);
    node = job;
    char **items = NULL;
    size_t n = 0;
    ck_assert_int_eq(ds_config_fingerprint(&node, &items, &n), 0);
    ck_assert_int_eq(ds_config_compare(&job, items, n, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    free(items);

    // Two differences: [model] comes before [optimizer] in the table.
    ck_assert_int_eq(
        ds_config_set(&node, "model", "model", "mlp", err, sizeof err), 0);
    ck_assert_int_eq(
        ds_config_set(&node, "optimizer", "lr", "0.1", err, sizeof err), 0);
    ck_assert_int_eq(ds_config_fingerprint(&node, &items, &n), 0);
    ck_assert_int_eq(ds_config_compare(&job, items, n, err, sizeof err),
                     -EINVAL);
    ck_assert_str_eq(err,
                     "[model] model: this node has mlp, the job has softmax");
    free(items);

    ck_assert_int_eq(
        ds_config_set(&node, "model", "model", "softmax", err, sizeof err), 0);
    ck_assert_int_eq(ds_config_fingerprint(&node, &items, &n), 0);
    ck_assert_int_eq(ds_config_compare(&job, items, n, err, sizeof err),
                     -EINVAL);
    ck_assert_str_eq(err, "[optimizer] lr: this node has 0.1, the job has 0.2");
    free(items);

    // Close is not equal.
    node = job;
    node.lr = 0.1 + 0.2;
    job.lr = 0.3;
    ck_assert_int_eq(ds_config_fingerprint(&node, &items, &n), 0);
    ck_assert_int_eq(ds_config_compare(&job, items, n, err, sizeof err),
                     -EINVAL);
    ck_assert_str_eq(err, "[optimizer] lr: this node has "
                          "0.30000000000000004, the job has 0.3");
    free(items);
}
END_TEST

START_TEST(test_compare_ignores_per_node)
{
    char        err[S_ERR_MAX];
    ds_config_t job, node;
    ds_config_defaults(&job);
    node = job;
    const char *const diff[][3] = {
        {"job", "out", "/tmp/elsewhere"},
        {"job", "log_level", "debug"},
        {"job", "progress", "off"},
        {"job", "checkpoint_s", "60"},
        {"job", "recover", "true"},
        {"cluster", "bind", "tcp://10.0.0.2:7071"},
        {"cluster", "advertise", "10.0.0.2"},
        {"cluster", "scheduler", "tcp://sched:7070"},
        {"cluster", "workers", "0"},
        {"cluster", "node_id", "7"},
        {"cluster", "timeout_ms", "900"},
        {"cluster", "fault_drop", "0.1"},
        {"data", "data_dir", "/srv/fmnist"},
        {"data", "train_file", "/srv/a.svm"},
    };
    for (size_t i = 0; i < sizeof diff / sizeof diff[0]; i++) {
        ck_assert_int_eq(ds_config_set(&node, diff[i][0], diff[i][1],
                                       diff[i][2], err, sizeof err),
                         0);
    }
    char **items = NULL;
    size_t n = 0;
    ck_assert_int_eq(ds_config_fingerprint(&node, &items, &n), 0);
    ck_assert_int_eq(ds_config_compare(&job, items, n, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    free(items);
}
END_TEST

START_TEST(test_compare_missing_and_unknown)
{
    char        err[S_ERR_MAX];
    ds_config_t job;
    ds_config_defaults(&job);
    // A node that sends nothing (an older version) lacks the first key.
    ck_assert_int_eq(ds_config_compare(&job, NULL, 0, err, sizeof err),
                     -EINVAL);
    ck_assert_str_eq(err, "[job] job: this node does not send it (another "
                          "version of descent?), the job has descent");

    char **items = NULL;
    size_t n = 0;
    ck_assert_int_eq(ds_config_fingerprint(&job, &items, &n), 0);
    char *list[80];
    ck_assert_uint_lt(n, 79);
    memcpy(list, items, n * sizeof *list);
    // Without train.epochs.
    char **at = list;
    while (strncmp(*at, "train.epochs=", 13) != 0) {
        at++;
    }
    *at = "train.turbo=on";
    ck_assert_int_eq(ds_config_compare(&job, list, n, err, sizeof err),
                     -EINVAL);
    ck_assert_str_eq(err, "[train] epochs: this node does not send it "
                          "(another version of descent?), the job has 10");
    // Everything, plus a setting the job does not know, and one it takes
    // per node.
    *at = "train.epochs=10";
    list[n] = "train.turbo=on";
    ck_assert_int_eq(ds_config_compare(&job, list, n + 1, err, sizeof err),
                     -EINVAL);
    ck_assert_str_eq(err, "train.turbo: this node has a setting the job does "
                          "not share (another version of descent?)");
    list[n] = "cluster.workers=2";
    ck_assert_int_eq(ds_config_compare(&job, list, n + 1, err, sizeof err),
                     -EINVAL);
    ck_assert_str_eq(err, "cluster.workers: this node has a setting the job "
                          "does not share (another version of descent?)");
    ck_assert_int_eq(ds_config_compare(&job, list, n, err, sizeof err), 0);
    free(items);
}
END_TEST

Suite *
ds_config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *values = tcase_create("values");
    tcase_add_test(values, test_defaults);
    tcase_add_test(values, test_defaults_by_job);
    tcase_add_test(values, test_int_parsing);
    tcase_add_test(values, test_int64_parsing);
    tcase_add_test(values, test_uint64_parsing);
    tcase_add_test(values, test_double_parsing);
    tcase_add_test(values, test_bool_parsing);
    tcase_add_test(values, test_enum_parsing);
    tcase_add_test(values, test_string_parsing);
    tcase_add_test(values, test_set_unknown_and_unprefixed);
    tcase_add_test(values, test_error_text_is_bounded);
    suite_add_tcase(s, values);

    TCase *file = tcase_create("file");
    tcase_add_test(file, test_file_loads);
    tcase_add_test(file, test_file_unknown_key);
    tcase_add_test(file, test_file_malformed_line);
    tcase_add_test(file, test_file_bad_value);
    tcase_add_test(file, test_file_unknown_section);
    tcase_add_test(file, test_file_indented_and_sectionless);
    tcase_add_test(file, test_file_line_length);
    tcase_add_test(file, test_file_missing);
    suite_add_tcase(s, file);

    TCase *sources = tcase_create("sources");
    tcase_add_test(sources, test_env);
    tcase_add_test(sources, test_env_errors);
    tcase_add_test(sources, test_precedence);
    tcase_add_test(sources, test_descent_config);
    tcase_add_test(sources, test_flag_forms);
    tcase_add_test(sources, test_flag_errors);
    tcase_add_test(sources, test_positional);
    tcase_add_test(sources, test_missing_file_from_args);
    tcase_add_test(sources, test_help);
    tcase_add_test(sources, test_unprefixed_keys_unambiguous);
    suite_add_tcase(s, sources);

    TCase *output = tcase_create("output");
    tcase_add_test(output, test_docs_match_table);
    tcase_add_test(output, test_usage);
    tcase_add_test(output, test_json_checker);
    tcase_add_test(output, test_json);
    suite_add_tcase(s, output);

    TCase *fp = tcase_create("fingerprint");
    tcase_add_test(fp, test_fingerprint_lists_job_wide);
    tcase_add_test(fp, test_compare_names_first_difference);
    tcase_add_test(fp, test_compare_ignores_per_node);
    tcase_add_test(fp, test_compare_missing_and_unknown);
    suite_add_tcase(s, fp);
    return s;
}
