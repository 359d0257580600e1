// SPDX-License-Identifier: MIT
// test_msg - header and frame codec: round trips and every malformed shape.
#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "common/msg.h"
#include "tests/unit/suites.h"

// A PAIR of inproc sockets: what one sends the other receives, frames and
// all, so the codec is tested exactly as it runs.
static void *s_ctx, *s_a, *s_b;

static void
s_setup(void)
{
    s_ctx = zmq_ctx_new();
    s_a = zmq_socket(s_ctx, ZMQ_PAIR);
    s_b = zmq_socket(s_ctx, ZMQ_PAIR);
    int zero = 0;
    zmq_setsockopt(s_a, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s_b, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_bind(s_a, "inproc://msg"), 0);
    ck_assert_int_eq(zmq_connect(s_b, "inproc://msg"), 0);
}

static void
s_teardown(void)
{
    zmq_close(s_a);
    zmq_close(s_b);
    zmq_ctx_term(s_ctx);
}

static const ds_limits_t s_lim = {.max_values = 1000, .max_keys = 1000};

// s_send_frames sends raw frames (the last one without SNDMORE).
static void
s_send_frames(const void *const *data, const size_t *len, int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert_int_ge(
            zmq_send(s_a, data[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0), 0);
    }
}

static size_t
s_pack(Descent__Header *h, uint8_t *buf)
{
    size_t n = descent__header__get_packed_size(h);
    ck_assert_uint_le(n, 4096);
    descent__header__pack(h, buf);
    return n;
}

// s_recv_check receives one message on b and runs the checks; returns the
// first nonzero rc and leaves the error text in err.
static int
s_recv_check(ds_msg_t *m, Descent__Status *st, char *err, size_t errlen)
{
    zmq_pollitem_t it = {.socket = s_b, .events = ZMQ_POLLIN};
    ck_assert_int_eq(zmq_poll(&it, 1, 2000), 1);
    int rc = ds_msg_recv(s_b, false, m, err, errlen);
    if (rc == 0) {
        rc = ds_msg_check(m, &s_lim, st, err, errlen);
    }
    return rc;
}

START_TEST(test_round_trip_push)
{
    float           vals[5] = {1.5f, -2.0f, 0.0f, 3.25f, 1e-7f};
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__PUSH);
    h.job = "j";
    h.sender = 7;
    h.seq = 42;
    h.epoch = 3;
    h.shard = 2;
    h.key_begin = 100;
    h.key_count = 5;
    h.value_count = 5;
    h.dtype = DESCENT__DTYPE__F32;
    h.pull = true;
    ck_assert_int_eq(ds_msg_send_f32(s_a, NULL, &h, vals, 5), 0);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), 0);
    ck_assert_int_eq(st, DESCENT__STATUS__OK);
    ck_assert_int_eq(m.hdr->type, DESCENT__TYPE__PUSH);
    ck_assert_str_eq(m.hdr->job, "j");
    ck_assert_uint_eq(m.hdr->sender, 7);
    ck_assert_uint_eq(m.hdr->seq, 42);
    ck_assert_uint_eq(m.hdr->epoch, 3);
    ck_assert_uint_eq(m.hdr->shard, 2);
    ck_assert_uint_eq(m.hdr->key_begin, 100);
    ck_assert(m.hdr->pull);
    ck_assert(m.flags & DS_MSG_HAS_VALS);
    float got[5];
    ds_msg_copy_vals(&m, got);
    ck_assert_mem_eq(got, vals, sizeof vals);
    ds_msg_fini(&m);
    ds_msg_fini(&m);
}
END_TEST

START_TEST(test_round_trip_sparse_keys)
{
    uint64_t        keys[3] = {5, 1ull << 40, 9};
    float           vals[3] = {1, 2, 3};
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__PUSH);
    h.sparse = true;
    h.key_count = 3;
    h.value_count = 3;
    h.dtype = DESCENT__DTYPE__F32;
    zmq_msg_t k, v;
    zmq_msg_init_size(&k, sizeof keys);
    memcpy(zmq_msg_data(&k), keys, sizeof keys);
    zmq_msg_init_size(&v, sizeof vals);
    memcpy(zmq_msg_data(&v), vals, sizeof vals);
    ck_assert_int_eq(ds_msg_send(s_a, NULL, &h, &k, &v), 0);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), 0);
    ck_assert(m.flags & DS_MSG_HAS_KEYS);
    ck_assert_mem_eq(zmq_msg_data(&m.keys), keys, sizeof keys);
    ds_msg_fini(&m);
}
END_TEST

START_TEST(test_garbage_header)
{
    const char *junk = "\xff\xff\xff\xff not protobuf";
    const void *d[] = {junk};
    size_t      l[] = {strlen(junk)};
    s_send_frames(d, l, 1);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EPROTO);
    ck_assert_ptr_null(m.hdr);
    ck_assert_ptr_nonnull(strstr(err, "not a valid descent.Header"));
    ds_msg_fini(&m);
}
END_TEST

START_TEST(test_oversized_header)
{
    static uint8_t big[DS_MSG_HEADER_MAX + 1];
    const void    *d[] = {big};
    size_t         l[] = {sizeof big};
    s_send_frames(d, l, 1);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "exceeds"));
    ds_msg_fini(&m);
}
END_TEST

// A header that announces values followed by a frame of the wrong size.
START_TEST(test_short_values_frame)
{
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__PUSH);
    h.key_count = 4;
    h.value_count = 4;
    h.dtype = DESCENT__DTYPE__F32;
    uint8_t     hb[4096];
    float       v[3] = {1, 2, 3};
    const void *d[] = {hb, v};
    size_t      l[] = {s_pack(&h, hb), sizeof v};
    s_send_frames(d, l, 2);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EPROTO);
    ck_assert_int_eq(st, DESCENT__STATUS__BAD_REQUEST);
    ck_assert_ptr_nonnull(strstr(err, "values frame has 12 bytes"));
    ds_msg_fini(&m);
}
END_TEST

START_TEST(test_missing_values_frame)
{
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__PUSH);
    h.key_count = 4;
    h.value_count = 4;
    h.dtype = DESCENT__DTYPE__F32;
    uint8_t     hb[4096];
    const void *d[] = {hb};
    size_t      l[] = {s_pack(&h, hb)};
    s_send_frames(d, l, 1);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "missing"));
    ds_msg_fini(&m);
}
END_TEST

// Extra frames are consumed, so the next message still parses.
START_TEST(test_extra_frames_then_good)
{
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__PULL);
    h.key_count = 2;
    uint8_t     hb[4096];
    const void *d[] = {hb, "x", "y"};
    size_t      hl = s_pack(&h, hb);
    size_t      l[] = {hl, 1, 1};
    s_send_frames(d, l, 3);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "2 unexpected frame(s)"));
    ds_msg_fini(&m);
    s_send_frames(d, l, 1);
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), 0);
    ck_assert_int_eq(m.hdr->type, DESCENT__TYPE__PULL);
    ds_msg_fini(&m);
}
END_TEST

START_TEST(test_count_mismatch)
{
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__PUSH);
    h.key_count = 3;
    h.value_count = 2;
    h.dtype = DESCENT__DTYPE__F32;
    float v[2] = {1, 2};
    ck_assert_int_eq(ds_msg_send_f32(s_a, NULL, &h, v, 2), 0);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "push of 3 keys carries 2 values"));
    ds_msg_fini(&m);
}
END_TEST

START_TEST(test_wrong_dtype)
{
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__PUSH);
    h.key_count = 2;
    h.value_count = 2;
    h.dtype = 7;
    float v[2] = {1, 2};
    ck_assert_int_eq(ds_msg_send_f32(s_a, NULL, &h, v, 2), 0);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EPROTO);
    ck_assert_int_eq(st, DESCENT__STATUS__BAD_DTYPE);
    ds_msg_fini(&m);
}
END_TEST

START_TEST(test_oversized_counts)
{
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__PULL);
    h.key_count = 1001;
    uint8_t     hb[4096];
    const void *d[] = {hb};
    size_t      l[] = {s_pack(&h, hb)};
    s_send_frames(d, l, 1);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EMSGSIZE);
    ck_assert_int_eq(st, DESCENT__STATUS__TOO_LARGE);
    ds_msg_fini(&m);
}
END_TEST

START_TEST(test_range_overflow)
{
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__PULL);
    h.key_begin = UINT64_MAX - 1;
    h.key_count = 10;
    uint8_t     hb[4096];
    const void *d[] = {hb};
    size_t      l[] = {s_pack(&h, hb)};
    s_send_frames(d, l, 1);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "overflows"));
    ds_msg_fini(&m);
}
END_TEST

START_TEST(test_bad_version_and_type)
{
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__HEARTBEAT);
    h.version = 9;
    uint8_t     hb[4096];
    const void *d[] = {hb};
    size_t      l[] = {s_pack(&h, hb)};
    s_send_frames(d, l, 1);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EPROTONOSUPPORT);
    ck_assert_int_eq(st, DESCENT__STATUS__BAD_VERSION);
    ds_msg_fini(&m);
    ds_msg_header_init(&h, 99);
    l[0] = s_pack(&h, hb);
    s_send_frames(d, l, 1);
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "unknown message type 99"));
    ds_msg_fini(&m);
}
END_TEST

START_TEST(test_zero_key_pull)
{
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__PULL);
    uint8_t     hb[4096];
    const void *d[] = {hb};
    size_t      l[] = {s_pack(&h, hb)};
    s_send_frames(d, l, 1);
    ds_msg_t        m;
    Descent__Status st;
    char            err[256] = "";
    ck_assert_int_eq(s_recv_check(&m, &st, err, sizeof err), -EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "zero keys"));
    ds_msg_fini(&m);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(ds_msg_type_name(DESCENT__TYPE__PUSH), "PUSH");
    ck_assert_str_eq(ds_msg_status_name(DESCENT__STATUS__OUT_OF_RANGE),
                     "OUT_OF_RANGE");
    ck_assert_str_eq(ds_msg_type_name(1234), "UNKNOWN");
}
END_TEST

Suite *
ds_msg_suite(void)
{
    Suite *s = suite_create("msg");
    TCase *tc = tcase_create("codec");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_round_trip_push);
    tcase_add_test(tc, test_round_trip_sparse_keys);
    tcase_add_test(tc, test_garbage_header);
    tcase_add_test(tc, test_oversized_header);
    tcase_add_test(tc, test_short_values_frame);
    tcase_add_test(tc, test_missing_values_frame);
    tcase_add_test(tc, test_extra_frames_then_good);
    tcase_add_test(tc, test_count_mismatch);
    tcase_add_test(tc, test_wrong_dtype);
    tcase_add_test(tc, test_oversized_counts);
    tcase_add_test(tc, test_range_overflow);
    tcase_add_test(tc, test_bad_version_and_type);
    tcase_add_test(tc, test_zero_key_pull);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}
