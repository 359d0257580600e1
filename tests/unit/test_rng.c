// SPDX-License-Identifier: MIT
// test_rng - reference vectors, determinism and statistics of common/rng.
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/rng.h"
#include "tests/unit/suites.h"

// Statistical tests draw from fixed seeds, so they are deterministic; the
// bounds are still honest: five standard errors, or the 0.9999 quantile of
// the chi-square distribution, so a correct generator passes them for
// almost any seed.
#define S_DRAWS 100000

// Chi-square 0.9999 quantiles (regularised incomplete gamma, computed
// offline) for the degrees of freedom used below.
#define S_CHI2_DF5 25.74
#define S_CHI2_DF9 33.72
#define S_CHI2_DF23 57.07

static double
s_chi2(const long *counts, int bins, double expected)
{
    double chi2 = 0.0;
    for (int i = 0; i < bins; i++) {
        double d = (double)counts[i] - expected;
        chi2 += d * d / expected;
    }
    return chi2;
}

// The published xoshiro256** vector: state {1, 2, 3, 4} gives these
// outputs in the reference C implementation by Blackman and Vigna (also
// the test vector of Rust's rand_xoshiro). Recomputed independently in
// Python before being written here.
START_TEST(test_xoshiro_reference_vector)
{
    ds_rng_t       r = {.s = {1, 2, 3, 4}};
    const uint64_t want[] = {
        11520ULL,
        0ULL,
        1509978240ULL,
        1215971899390074240ULL,
        1216172134540287360ULL,
        607988272756665600ULL,
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ck_assert_uint_eq(ds_rng_next(&r), want[i]);
    }
}
END_TEST

// Stream 0 seeds the state with the first four splitmix64 outputs of the
// seed. splitmix64 from 0 gives 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4,
// 0x06c45d188009454f, 0xf88bb8a8724c81ec (published; recomputed in Python),
// and xoshiro256** from that state was computed in Python too.
START_TEST(test_seed_is_splitmix64)
{
    ds_rng_t r;
    ds_rng_seed(&r, 0, 0);
    ck_assert_uint_eq(r.s[0], 0xe220a8397b1dcdafULL);
    ck_assert_uint_eq(r.s[1], 0x6e789e6aa1b965f4ULL);
    ck_assert_uint_eq(r.s[2], 0x06c45d188009454fULL);
    ck_assert_uint_eq(r.s[3], 0xf88bb8a8724c81ecULL);
    ck_assert_uint_eq(ds_rng_next(&r), 0x99ec5f36cb75f2b4ULL);
    ck_assert_uint_eq(ds_rng_next(&r), 0xbf6e1f784956452aULL);
    ck_assert_uint_eq(ds_rng_next(&r), 0x1a5f849d4933e6e0ULL);
    ck_assert_uint_eq(ds_rng_next(&r), 0x6aa594f1262d2d2cULL);
}
END_TEST

START_TEST(test_same_seed_same_sequence)
{
    ds_rng_t a, b;
    ds_rng_seed(&a, 12345, 7);
    ds_rng_seed(&b, 12345, 7);
    uint64_t first[16];
    for (int i = 0; i < 1000; i++) {
        uint64_t va = ds_rng_next(&a);
        ck_assert_uint_eq(va, ds_rng_next(&b));
        if (i < 16) {
            first[i] = va;
        }
    }
    // Reseeding restarts the sequence.
    ds_rng_seed(&a, 12345, 7);
    for (int i = 0; i < 16; i++) {
        ck_assert_uint_eq(ds_rng_next(&a), first[i]);
    }
}
END_TEST

// Streams of one seed, and neighbouring seeds, share no 64-bit output in
// their first 256 draws, neither at the same position nor shifted (a
// shifted copy would mean overlapping sequences); by chance that would
// happen with probability about 2^-40.
START_TEST(test_streams_differ)
{
    enum { NGEN = 6, LEN = 256 };
    const uint64_t  seeds[NGEN] = {42, 42, 42, 42, 43, 41};
    const uint64_t  streams[NGEN] = {0, 1, 2, 1000, 0, 1};
    static uint64_t out[NGEN][LEN];

    for (int g = 0; g < NGEN; g++) {
        ds_rng_t r;
        ds_rng_seed(&r, seeds[g], streams[g]);
        for (int i = 0; i < LEN; i++) {
            out[g][i] = ds_rng_next(&r);
        }
    }
    for (int g = 0; g < NGEN; g++) {
        for (int h = g + 1; h < NGEN; h++) {
            for (int i = 0; i < LEN; i++) {
                for (int j = 0; j < LEN; j++) {
                    ck_assert_uint_ne(out[g][i], out[h][j]);
                }
            }
        }
    }
}
END_TEST

// Uniforms of two streams of one seed are uncorrelated: the sample
// correlation of n independent pairs has standard error 1/sqrt(n).
START_TEST(test_streams_uncorrelated)
{
    ds_rng_t a, b;
    ds_rng_seed(&a, 9, 0);
    ds_rng_seed(&b, 9, 1);
    double sab = 0, sa = 0, sb = 0, saa = 0, sbb = 0;
    for (int i = 0; i < S_DRAWS; i++) {
        double u = ds_rng_uniform(&a);
        double v = ds_rng_uniform(&b);
        sa += u;
        sb += v;
        sab += u * v;
        saa += u * u;
        sbb += v * v;
    }
    double n = S_DRAWS;
    double cov = sab / n - (sa / n) * (sb / n);
    double va = saa / n - (sa / n) * (sa / n);
    double vb = sbb / n - (sb / n) * (sb / n);
    double corr = cov / sqrt(va * vb);
    ck_assert_double_lt(fabs(corr), 5.0 / sqrt(n));
}
END_TEST

// U(0,1) has mean 1/2 and variance 1/12. Over n draws the sample mean has
// standard error sqrt(1/12/n) = 0.00091 and the sample variance
// sqrt((1/80 - 1/144)/n) = 0.00024 (fourth central moment 1/80); ten equal
// bins must pass a chi-square test.
START_TEST(test_uniform_moments)
{
    ds_rng_t r;
    ds_rng_seed(&r, 2024, 3);
    double sum = 0, sum2 = 0;
    long   bins[10] = {0};
    for (int i = 0; i < S_DRAWS; i++) {
        double u = ds_rng_uniform(&r);
        ck_assert(u >= 0.0 && u < 1.0);
        sum += u;
        sum2 += u * u;
        bins[(int)(u * 10)]++;
    }
    double n = S_DRAWS;
    double mean = sum / n;
    double var = sum2 / n - mean * mean;
    ck_assert_double_eq_tol(mean, 0.5, 5 * sqrt(1.0 / 12 / n));
    ck_assert_double_eq_tol(var, 1.0 / 12,
                            5 * sqrt((1.0 / 80 - 1.0 / 144) / n));
    ck_assert_double_lt(s_chi2(bins, 10, n / 10), S_CHI2_DF9);
}
END_TEST

START_TEST(test_below_small)
{
    ds_rng_t r;
    ds_rng_seed(&r, 5, 0);
    for (int i = 0; i < 100; i++) {
        ck_assert_uint_eq(ds_rng_below(&r, 1), 0);
    }
    long bins[6] = {0};
    for (int i = 0; i < 60000; i++) {
        uint64_t v = ds_rng_below(&r, 6);
        ck_assert_uint_lt(v, 6);
        bins[v]++;
    }
    ck_assert_double_lt(s_chi2(bins, 6, 10000), S_CHI2_DF5);
}
END_TEST

// For n = 2/3 of 2^64, "next() % n" would return a value below n/2 with
// probability 2/3 instead of 1/2: a biased generator fails by 40 standard
// errors.
START_TEST(test_below_large_is_unbiased)
{
    ds_rng_t r;
    ds_rng_seed(&r, 77, 0);
    const uint64_t n = 0xaaaaaaaaaaaaaaaaULL;
    long           low = 0;
    for (int i = 0; i < S_DRAWS; i++) {
        uint64_t v = ds_rng_below(&r, n);
        ck_assert_uint_lt(v, n);
        low += v < n / 2;
    }
    double frac = (double)low / S_DRAWS;
    ck_assert_double_eq_tol(frac, 0.5, 5 * sqrt(0.25 / S_DRAWS));

    // Powers of two and the largest n are in range too.
    for (int i = 0; i < 1000; i++) {
        ck_assert_uint_lt(ds_rng_below(&r, 1ULL << 63), 1ULL << 63);
        ck_assert_uint_lt(ds_rng_below(&r, UINT64_MAX), UINT64_MAX);
    }
}
END_TEST

// N(0,1) raw moments: E z = 0 (se 1/sqrt(n)), E z^2 = 1 (se sqrt(2/n)),
// E z^3 = 0 (se sqrt(15/n)), E z^4 = 3 (se sqrt(96/n)); P(|z| < 1) is
// 0.682689.
START_TEST(test_normal_moments)
{
    ds_rng_t r;
    ds_rng_seed(&r, 31337, 0);
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    long   inside = 0;
    for (int i = 0; i < S_DRAWS; i++) {
        double z = ds_rng_normal(&r);
        ck_assert(isfinite(z));
        s1 += z;
        s2 += z * z;
        s3 += z * z * z;
        s4 += z * z * z * z;
        inside += fabs(z) < 1.0;
    }
    double n = S_DRAWS;
    ck_assert_double_eq_tol(s1 / n, 0.0, 5 / sqrt(n));
    ck_assert_double_eq_tol(s2 / n, 1.0, 5 * sqrt(2 / n));
    ck_assert_double_eq_tol(s3 / n, 0.0, 5 * sqrt(15 / n));
    ck_assert_double_eq_tol(s4 / n, 3.0, 5 * sqrt(96 / n));
    double p = 0.682689492137;
    ck_assert_double_eq_tol((double)inside / n, p, 5 * sqrt(p * (1 - p) / n));
}
END_TEST

START_TEST(test_shuffle_is_permutation)
{
    enum { N = 1000 };
    static uint32_t idx[N];
    static int      seen[N];
    for (uint32_t i = 0; i < N; i++) {
        idx[i] = i;
    }
    ds_rng_t r;
    ds_rng_seed(&r, 1, 0);
    ds_rng_shuffle(&r, idx, N);
    size_t fixed = 0;
    memset(seen, 0, sizeof seen);
    for (uint32_t i = 0; i < N; i++) {
        ck_assert_uint_lt(idx[i], N);
        ck_assert_int_eq(seen[idx[i]], 0);
        seen[idx[i]] = 1;
        fixed += idx[i] == i;
    }
    // A uniform permutation has a Poisson(1) number of fixed points.
    ck_assert_uint_lt(fixed, 10);

    // Empty and single-element arrays are left alone.
    uint32_t one = 17;
    ds_rng_shuffle(&r, &one, 1);
    ck_assert_uint_eq(one, 17);
    ds_rng_shuffle(&r, NULL, 0);
}
END_TEST

// Shuffling 4 elements 48000 times: each of the 24 permutations should
// appear about 2000 times (chi-square with 23 degrees of freedom).
// The order of epoch 1 is shuffled like every other epoch: the shuffle of
// the identity by the generator seeded (42, 1000 ^ (epoch << 32)). The
// expected orders were computed by an independent Python version of
// splitmix64, xoshiro256**, Lemire's bound and Fisher-Yates.
START_TEST(test_epoch_order_shuffles_every_epoch)
{
    enum { N = 10 };
    const uint32_t want1[N] = {8, 7, 4, 6, 5, 9, 2, 3, 0, 1};
    const uint32_t want2[N] = {3, 9, 2, 6, 8, 7, 4, 0, 1, 5};
    const uint32_t other[N] = {3, 5, 1, 6, 2, 7, 8, 4, 9, 0};
    uint32_t       idx[N], again[N];
    ds_rng_epoch_order(42, 1000, 1, idx, N);
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(idx[i], want1[i]);
    }
    ds_rng_epoch_order(42, 1000, 1, again, N);
    ck_assert_mem_eq(idx, again, sizeof idx);
    ds_rng_epoch_order(42, 1000, 2, idx, N);
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(idx[i], want2[i]);
    }
    // Another partition (stream) gets another order.
    ds_rng_epoch_order(42, 1001, 1, idx, N);
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(idx[i], other[i]);
    }
}
END_TEST

START_TEST(test_shuffle_all_permutations_equally_likely)
{
    enum { TRIALS = 48000 };
    long     counts[256] = {0};
    ds_rng_t r;
    ds_rng_seed(&r, 4, 4);
    for (int t = 0; t < TRIALS; t++) {
        uint32_t a[4] = {0, 1, 2, 3};
        ds_rng_shuffle(&r, a, 4);
        counts[a[0] * 64 + a[1] * 16 + a[2] * 4 + a[3]]++;
    }
    long perm[24];
    int  k = 0;
    for (int code = 0; code < 256; code++) {
        int d[4] = {code >> 6, (code >> 4) & 3, (code >> 2) & 3, code & 3};
        int distinct = d[0] != d[1] && d[0] != d[2] && d[0] != d[3] &&
                       d[1] != d[2] && d[1] != d[3] && d[2] != d[3];
        if (distinct) {
            perm[k++] = counts[code];
        } else {
            ck_assert_int_eq(counts[code], 0);
        }
    }
    ck_assert_int_eq(k, 24);
    ck_assert_double_lt(s_chi2(perm, 24, TRIALS / 24.0), S_CHI2_DF23);
}
END_TEST

// Shuffling 5 elements: every value lands at every position with
// probability 1/5, so each count is 10000 with standard error 89.
START_TEST(test_shuffle_positions_uniform)
{
    enum { N = 5, TRIALS = 50000 };
    long     counts[N][N] = {{0}};
    ds_rng_t r;
    ds_rng_seed(&r, 55, 1);
    for (int t = 0; t < TRIALS; t++) {
        uint32_t a[N];
        for (uint32_t i = 0; i < N; i++) {
            a[i] = i;
        }
        ds_rng_shuffle(&r, a, N);
        for (int pos = 0; pos < N; pos++) {
            counts[pos][a[pos]]++;
        }
    }
    double expect = (double)TRIALS / N;
    double se = sqrt(TRIALS * 0.2 * 0.8);
    for (int pos = 0; pos < N; pos++) {
        for (int v = 0; v < N; v++) {
            ck_assert_double_eq_tol((double)counts[pos][v], expect, 5 * se);
        }
    }
}
END_TEST

START_TEST(test_key_normal_deterministic_and_order_free)
{
    enum { N = 1000 };
    static double fwd[N];
    for (uint64_t k = 0; k < N; k++) {
        fwd[k] = ds_rng_key_normal(99, k);
    }
    // Reverse order, interleaved with other seeds and a generator: the
    // value depends on (seed, key) only.
    ds_rng_t r;
    ds_rng_seed(&r, 99, 0);
    for (uint64_t k = N; k-- > 0;) {
        (void)ds_rng_key_normal(100, k);
        (void)ds_rng_next(&r);
        double v = ds_rng_key_normal(99, k);
        ck_assert(memcmp(&v, &fwd[k], sizeof v) == 0);
    }
    // Another seed gives other values.
    int same = 0;
    for (uint64_t k = 0; k < N; k++) {
        same += ds_rng_key_normal(100, k) == fwd[k];
    }
    ck_assert_int_eq(same, 0);
    // Large keys work, and differ from their neighbours.
    ck_assert(isfinite(ds_rng_key_normal(0, UINT64_MAX)));
    ck_assert(ds_rng_key_normal(0, UINT64_MAX) !=
              ds_rng_key_normal(0, UINT64_MAX - 1));
}
END_TEST

// Over consecutive keys the values are N(0,1) and neighbouring keys are
// uncorrelated (lag-1 correlation se 1/sqrt(n)); so are two seeds.
START_TEST(test_key_normal_moments)
{
    double s1 = 0, s2 = 0, lag = 0, cross = 0, prev = 0;
    for (uint64_t k = 0; k < S_DRAWS; k++) {
        double z = ds_rng_key_normal(7, k);
        s1 += z;
        s2 += z * z;
        lag += z * prev;
        cross += z * ds_rng_key_normal(8, k);
        prev = z;
    }
    double n = S_DRAWS;
    ck_assert_double_eq_tol(s1 / n, 0.0, 5 / sqrt(n));
    ck_assert_double_eq_tol(s2 / n, 1.0, 5 * sqrt(2 / n));
    ck_assert_double_eq_tol(lag / n, 0.0, 5 / sqrt(n));
    ck_assert_double_eq_tol(cross / n, 0.0, 5 / sqrt(n));
}
END_TEST

Suite *
ds_rng_suite(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_xoshiro_reference_vector);
    tcase_add_test(tc, test_seed_is_splitmix64);
    tcase_add_test(tc, test_same_seed_same_sequence);
    tcase_add_test(tc, test_streams_differ);
    tcase_add_test(tc, test_streams_uncorrelated);
    tcase_add_test(tc, test_uniform_moments);
    tcase_add_test(tc, test_below_small);
    tcase_add_test(tc, test_below_large_is_unbiased);
    tcase_add_test(tc, test_normal_moments);
    tcase_add_test(tc, test_shuffle_is_permutation);
    tcase_add_test(tc, test_epoch_order_shuffles_every_epoch);
    tcase_add_test(tc, test_shuffle_all_permutations_equally_likely);
    tcase_add_test(tc, test_shuffle_positions_uniform);
    tcase_add_test(tc, test_key_normal_deterministic_and_order_free);
    tcase_add_test(tc, test_key_normal_moments);
    suite_add_tcase(s, tc);
    return s;
}
