// SPDX-License-Identifier: MIT
// test_optim - SGD against ALGORITHMS.md's vectors, schedules, finiteness.
#include <math.h>

#include "common/optim.h"
#include "common/schedule.h"
#include "tests/unit/suites.h"

static void
s_close(const float *got, const double *want, int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-6 + 1e-5 * fabs(want[i]),
                      "element %d: got %.9g want %.9g", i, got[i], want[i]);
    }
}

// ALGORITHMS.md section 1, SGD lr=0.1 from theta0 = [1, -2, 0.5].
START_TEST(test_sgd_vectors)
{
    float       w[3] = {1.0f, -2.0f, 0.5f};
    const float g[3][3] = {
        {0.1f, -0.2f, 0.0f}, {-0.5f, 0.4f, 0.3f}, {0.25f, 0.1f, -0.05f}};
    const double want[3][3] = {
        {0.99, -1.98, 0.5}, {1.04, -2.02, 0.47}, {1.015, -2.03, 0.475}};
    for (int t = 0; t < 3; t++) {
        ds_sgd_apply(w, g[t], 3, 0.1f);
        s_close(w, want[t], 3);
    }
}
END_TEST

// The Downpour sanity identity of ALGORITHMS.md section 9: on
// f = 0.5 * sum a_i x_i^2 with a = [1, 3, 0.25], SGD at 0.1 gives
// step 0 [0.9, -1.4, 0.4875] ... step 5 [0.531441, -0.235298, 0.429534151].
START_TEST(test_sgd_quadratic)
{
    float        w[3] = {1.0f, -2.0f, 0.5f};
    const float  a[3] = {1.0f, 3.0f, 0.25f};
    const double want[6][3] = {{0.9, -1.4, 0.4875},
                               {0.81, -0.98, 0.4753125},
                               {0.729, -0.686, 0.463429687},
                               {0.6561, -0.4802, 0.451843945},
                               {0.59049, -0.33614, 0.440547847},
                               {0.531441, -0.235298, 0.429534151}};
    for (int t = 0; t < 6; t++) {
        float g[3];
        for (int i = 0; i < 3; i++) {
            g[i] = a[i] * w[i];
        }
        ds_sgd_apply(w, g, 3, 0.1f);
        s_close(w, want[t], 3);
    }
}
END_TEST

START_TEST(test_cosine)
{
    ds_schedule_t s = {
        .kind = DS_SCHEDULE_COSINE, .lr = 0.2, .lr_min = 0.0, .total = 1000};
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 0), 0.2, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 500), 0.1, 1e-15);
    // (1 + cos(pi/4)) / 2 * 0.2 = 0.170710678...
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 250), 0.1707106781186548, 1e-12);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 1000), 0.0, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 5000), 0.0, 1e-15);
    s.lr_min = 0.02;
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 500), 0.11, 1e-15);
    // Warm-up: linear to lr over 100 updates, then cosine over 900.
    s.lr_min = 0;
    s.warmup = 100;
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 0), 0.002, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 49), 0.1, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 100), 0.2, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 550), 0.1, 1e-15);
}
END_TEST

START_TEST(test_constant_and_parse)
{
    ds_schedule_t s = {.kind = DS_SCHEDULE_CONSTANT, .lr = 0.05};
    ck_assert_double_eq(ds_schedule_lr(&s, 0), 0.05);
    ck_assert_double_eq(ds_schedule_lr(&s, 123456), 0.05);
    ck_assert_int_eq(ds_schedule_parse("cosine"), DS_SCHEDULE_COSINE);
    ck_assert_int_eq(ds_schedule_parse("constant"), DS_SCHEDULE_CONSTANT);
    ck_assert_int_eq(ds_schedule_parse("linear"), -1);
}
END_TEST

START_TEST(test_finite)
{
    float g[37];
    for (int i = 0; i < 37; i++) {
        g[i] = (float)i - 18.5f;
    }
    ck_assert_int_eq(ds_vec_finite(g, 37), 1);
    g[36] = NAN;
    ck_assert_int_eq(ds_vec_finite(g, 37), 0);
    g[36] = 0;
    g[3] = -INFINITY;
    ck_assert_int_eq(ds_vec_finite(g, 37), 0);
    g[3] = 3.4e38f;
    ck_assert_int_eq(ds_vec_finite(g, 37), 1);
}
END_TEST

Suite *
ds_optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, test_sgd_vectors);
    tcase_add_test(tc, test_sgd_quadratic);
    tcase_add_test(tc, test_cosine);
    tcase_add_test(tc, test_constant_and_parse);
    tcase_add_test(tc, test_finite);
    suite_add_tcase(s, tc);
    return s;
}
