// SPDX-License-Identifier: MIT
// test_schedule - every learning-rate schedule at chosen steps, the
// plateau rule, and gradient noise's variance.
#include <errno.h>
#include <math.h>
#include <string.h>

#include "common/curriculum.h"
#include "common/noise.h"
#include "common/schedule.h"
#include "tests/unit/suites.h"

// ALGORITHMS.md 13.1, eta0 = 0.1, at epochs 0, 1, 9, 10 and 25. Epochs
// are counted in updates: 100 updates per epoch here.
static ds_schedule_t
s_sched(ds_schedule_kind_t kind)
{
    return (ds_schedule_t){.kind = kind,
                           .lr = 0.1,
                           .total = 3000,
                           .per_epoch = 100,
                           .gamma = 0.5,
                           .step = 10,
                           .k = 0.1,
                           .scale = 1};
}

START_TEST(test_step)
{
    ds_schedule_t s = s_sched(DS_SCHEDULE_STEP);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 0), 0.1, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 100), 0.1, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 999), 0.1, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 1000), 0.05, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 2500), 0.025, 1e-15);
}
END_TEST

START_TEST(test_exponential)
{
    // PyTorch's ExponentialLR, gamma 0.9: 0.1, 0.09, 0.0387420489,
    // 0.034867844, 0.00717897988.
    ds_schedule_t s = s_sched(DS_SCHEDULE_EXPONENTIAL);
    s.gamma = 0.9;
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 0), 0.1, 1e-12);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 100), 0.09, 1e-12);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 150), 0.09, 1e-12);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 900), 0.0387420489, 1e-10);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 1000), 0.034867844, 1e-10);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 2500), 0.00717897988, 1e-10);
}
END_TEST

START_TEST(test_inverse)
{
    // 1/t with k = 0.1: 0.1, 0.0909090909, 0.0526315789, 0.05, 0.0285714286.
    ds_schedule_t s = s_sched(DS_SCHEDULE_INVERSE);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 0), 0.1, 1e-12);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 100), 0.0909090909, 1e-10);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 900), 0.0526315789, 1e-10);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 1000), 0.05, 1e-12);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 2500), 0.0285714286, 1e-10);
    // Between epochs the decay is continuous: epoch 0.5 gives 0.1 / 1.05.
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 50), 0.1 / 1.05, 1e-12);
}
END_TEST

START_TEST(test_floor_and_warmup)
{
    ds_schedule_t s = s_sched(DS_SCHEDULE_STEP);
    s.lr_min = 0.04;
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 2500), 0.04, 1e-15);
    s = s_sched(DS_SCHEDULE_INVERSE);
    s.warmup = 10;
    // Rising linearly: (t + 1) / 10 of the schedule's rate at t.
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 0), 0.1 * 0.1, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 9), 0.1 / 1.009, 1e-12);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 10), 0.1 / 1.01, 1e-12);
}
END_TEST

START_TEST(test_plateau_schedule_scale)
{
    ds_schedule_t s = s_sched(DS_SCHEDULE_PLATEAU);
    ck_assert_double_eq(ds_schedule_lr(&s, 1234), 0.1);
    s.scale = 0.01;
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 1234), 0.001, 1e-15);
}
END_TEST

START_TEST(test_from_config)
{
    ds_config_t c;
    ds_config_defaults(&c);
    ds_schedule_t s;
    char          err[256];
    ck_assert_int_eq(ds_schedule_from_config(&s, &c, 1000, 10, err, sizeof err),
                     0);
    ck_assert_int_eq(s.kind, DS_SCHEDULE_COSINE);
    ck_assert_double_eq(s.per_epoch, 100);
    strcpy(c.schedule, "plateau");
    ck_assert_int_eq(ds_schedule_from_config(&s, &c, 1000, 10, err, sizeof err),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "[data] validation"));
    c.validation = 5000;
    ck_assert_int_eq(ds_schedule_from_config(&s, &c, 1000, 10, err, sizeof err),
                     0);
    c.lr_min = 1.0;
    ck_assert_int_eq(ds_schedule_from_config(&s, &c, 1000, 10, err, sizeof err),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "[optimizer] lr_min"));
}
END_TEST

// PyTorch's ReduceLROnPlateau(factor=0.1, patience=2, threshold=1e-4,
// cooldown=1), worked by hand: losses 1.0 (best), 0.9 (best), 0.95, 0.95,
// 0.95 -> three bad epochs > patience 2: cut at the fifth; cooldown 1 then
// eats the sixth's bad count; 0.95, 0.95, 0.95 -> cut at the ninth.
START_TEST(test_plateau_rule)
{
    ds_plateau_t p;
    ds_plateau_init(&p, 0.1, 2, 1e-4, 1, 0.0);
    const double loss[] = {1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95};
    const bool   cut[] = {false, false, false, false, true,
                          false, false, false, true};
    for (int i = 0; i < 9; i++) {
        ck_assert_msg(ds_plateau_observe(&p, loss[i]) == cut[i], "epoch %d",
                      i + 1);
    }
    ck_assert_int_eq(p.cuts, 2);
    ck_assert_double_eq_tol(p.scale, 0.01, 1e-15);
    // A relative threshold: 0.89992 is not better than 0.9 * (1 - 1e-4).
    ds_plateau_init(&p, 0.5, 0, 1e-4, 0, 0.3);
    ck_assert(!ds_plateau_observe(&p, 0.9));
    ck_assert(ds_plateau_observe(&p, 0.89992));
    ck_assert(!ds_plateau_observe(&p, 0.8));
    ck_assert(ds_plateau_observe(&p, 0.8));
    // The floor: 0.5 * 0.5 = 0.25 is held at 0.3.
    ck_assert_double_eq_tol(p.scale, 0.3, 1e-15);
}
END_TEST

// ALGORITHMS.md 13.3, val = [1.0, 0.8, 0.85, 0.79, 0.80, 0.81, 0.78] for
// epochs 0..6 there (1..7 here). Patience 2, min_delta 0: the best is 0.79
// (epoch 3 there, 4 here); 0.80 and 0.81 wait 1 and 2, so training stops
// after the sixth value and 0.78 never runs. min_delta 0.015: 0.8 improves,
// 0.85 and 0.79 (not below 0.785) do not: stop after the fourth value, with
// 0.8 (the second) the best.
START_TEST(test_early_stopping)
{
    const double val[] = {1.0, 0.8, 0.85, 0.79, 0.80, 0.81, 0.78};
    ds_early_t   e;
    bool         improved;
    ds_early_init(&e, 2, 0.0);
    int stop = 0;
    for (int i = 0; i < 7 && !stop; i++) {
        if (ds_early_observe(&e, val[i], &improved)) {
            stop = i + 1;
        }
    }
    ck_assert_int_eq(stop, 6);
    ck_assert_int_eq(e.best_epoch, 4);
    ck_assert_double_eq(e.best, 0.79);
    ds_early_init(&e, 2, 0.015);
    stop = 0;
    for (int i = 0; i < 7 && !stop; i++) {
        if (ds_early_observe(&e, val[i], &improved)) {
            stop = i + 1;
        }
    }
    ck_assert_int_eq(stop, 4);
    ck_assert_int_eq(e.best_epoch, 2);
    ck_assert_double_eq(e.best, 0.8);
}
END_TEST

// ALGORITHMS.md 13.4: difficulty [0.3, 0.1, 0.9, 0.1, 0.5] sorted stably,
// easy first, is [1, 3, 0, 4, 2].
START_TEST(test_curriculum)
{
    const float loss[5] = {0.3f, 0.1f, 0.9f, 0.1f, 0.5f};
    uint32_t    order[5];
    ck_assert_int_eq(ds_curriculum_order(loss, order, 5), 0);
    const uint32_t want[5] = {1, 3, 0, 4, 2};
    ck_assert_mem_eq(order, want, sizeof want);
    ds_rng_t r;
    ds_rng_seed(&r, 9, 0);
    ck_assert_uint_eq(ds_curriculum_mix(order, 5, 0.0, &r), 0);
    ck_assert_mem_eq(order, want, sizeof want);
    // p = 0.25 over 100,000 positions: about a quarter replaced (within 5
    // standard deviations), every index valid.
    enum { N = 100000 };
    static uint32_t big[N];
    for (uint32_t i = 0; i < N; i++) {
        big[i] = i;
    }
    size_t k = ds_curriculum_mix(big, N, 0.25, &r);
    ck_assert_msg(fabs((double)k - 0.25 * N) < 5 * sqrt(N * 0.25 * 0.75),
                  "%zu replaced", k);
    for (uint32_t i = 0; i < N; i++) {
        ck_assert_uint_lt(big[i], N);
    }
}
END_TEST

// ALGORITHMS.md 13.2: sigma_t^2 = eta / (1 + t)^0.55.
START_TEST(test_noise_sigma_table)
{
    ck_assert_double_eq_tol(ds_noise_sigma(0.01, 0.55, 0), 0.1, 1e-12);
    ck_assert_double_eq_tol(ds_noise_sigma(0.01, 0.55, 1), 0.0826450318, 1e-10);
    ck_assert_double_eq_tol(ds_noise_sigma(0.01, 0.55, 9999), 0.00794328235,
                            1e-11);
    ck_assert_double_eq_tol(ds_noise_sigma(0.3, 0.55, 9), 0.290777386, 1e-9);
    ck_assert_double_eq_tol(ds_noise_sigma(1.0, 0.55, 99), 0.281838293, 1e-9);
}
END_TEST

// Mean and variance of 10^6 draws within 3 standard errors.
START_TEST(test_noise_moments)
{
    enum { N = 1000000 };
    static float g[N];
    for (int i = 0; i < N; i++) {
        g[i] = 2.0f;
    }
    ds_rng_t r;
    ds_rng_seed(&r, 42, 7);
    double sigma = ds_noise_sigma(0.3, 0.55, 1); // 0.452665482
    ds_noise_add(&r, g, N, sigma);
    double sum = 0, sq = 0;
    for (int i = 0; i < N; i++) {
        double d = g[i] - 2.0;
        sum += d;
        sq += d * d;
    }
    double mean = sum / N, var = sq / N - mean * mean, v = sigma * sigma;
    ck_assert_msg(fabs(mean) < 3 * sigma / sqrt(N), "mean %g", mean);
    // The variance of a sample variance of normals is 2 sigma^4 / N.
    ck_assert_msg(fabs(var - v) < 3 * sqrt(2.0 / N) * v, "var %g want %g", var,
                  v);
}
END_TEST

Suite *
ds_schedule_suite(void)
{
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("rates");
    tcase_add_test(tc, test_step);
    tcase_add_test(tc, test_exponential);
    tcase_add_test(tc, test_inverse);
    tcase_add_test(tc, test_floor_and_warmup);
    tcase_add_test(tc, test_plateau_schedule_scale);
    tcase_add_test(tc, test_from_config);
    tcase_add_test(tc, test_plateau_rule);
    tcase_add_test(tc, test_early_stopping);
    tcase_add_test(tc, test_curriculum);
    tcase_add_test(tc, test_noise_sigma_table);
    tcase_add_test(tc, test_noise_moments);
    suite_add_tcase(s, tc);
    return s;
}
