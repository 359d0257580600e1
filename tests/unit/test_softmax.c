// SPDX-License-Identifier: MIT
// test_softmax - loss and gradient against an independent double reference.
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/softmax.h"
#include "tests/unit/suites.h"

// s_lcg is a tiny local generator, so these tests do not depend on
// common/rng: uniform in [lo, hi).
static double
s_lcg(uint64_t *state, double lo, double hi)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (double)(*state >> 11) * 0x1.0p-53;
}

// s_ref_loss is the mean cross-entropy of rows idx[0..n) in double, written
// the plain way: z = W x + b, loss = log(sum_j exp z_j) - z_y.
static double
s_ref_loss(const double *w, const float *x, const uint8_t *y,
           const uint32_t *idx, size_t n, size_t dim, int classes,
           size_t *correct)
{
    double total = 0.0;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + idx[i] * dim;
        double       z[16];
        double       sum = 0.0;
        int          best = 0;
        for (int j = 0; j < classes; j++) {
            z[j] = w[(size_t)classes * dim + j];
            for (size_t d = 0; d < dim; d++) {
                z[j] += w[j * dim + d] * xi[d];
            }
            sum += exp(z[j]);
            if (z[j] > z[best]) {
                best = j;
            }
        }
        total += log(sum) - z[y[idx[i]]];
        ok += best == y[idx[i]];
    }
    if (correct != NULL) {
        *correct = ok;
    }
    return total / (double)n;
}

START_TEST(test_ws_init)
{
    ds_softmax_ws_t ws;
    ck_assert_int_eq(ds_softmax_ws_init(&ws, 0, 5, 3), -EINVAL);
    ck_assert_int_eq(ds_softmax_ws_init(&ws, 8, 0, 3), -EINVAL);
    ck_assert_int_eq(ds_softmax_ws_init(&ws, 8, 5, 0), -EINVAL);
    ck_assert_int_eq(ds_softmax_ws_init(NULL, 8, 5, 3), -EINVAL);
    ck_assert_ptr_null(ws.logits);
    ck_assert_ptr_null(ws.xb);
    // Sizes CBLAS cannot take as int are refused before any allocation.
    ck_assert_int_eq(ds_softmax_ws_init(&ws, (size_t)INT_MAX + 1, 5, 3),
                     -EINVAL);
    ck_assert_int_eq(ds_softmax_ws_init(&ws, 8, (size_t)INT_MAX + 1, 3),
                     -EINVAL);

    ck_assert_int_eq(ds_softmax_ws_init(&ws, 8, 5, 3), 0);
    ck_assert_uint_eq(ws.max_batch, 8);
    ck_assert_uint_eq(ws.dim, 5);
    ck_assert_int_eq(ws.classes, 3);
    ck_assert_ptr_nonnull(ws.logits);
    ck_assert_ptr_nonnull(ws.xb);
    // The buffers are as large as promised: touch every byte.
    memset(ws.logits, 0, 8 * 3 * sizeof(float));
    memset(ws.xb, 0, 8 * 5 * sizeof(float));
    ds_softmax_ws_fini(&ws);
    ck_assert_ptr_null(ws.logits);
    ck_assert_ptr_null(ws.xb);
    ck_assert_uint_eq(ws.max_batch, 0);
    ds_softmax_ws_fini(&ws);
    ck_assert_uint_eq(ds_softmax_num_params(5, 3), 18);
}
END_TEST

// The analytic gradient matches central differences of the double
// reference loss: with h = 1e-5 the difference quotient is exact to about
// 1e-10, so the tolerance only has to cover float rounding in the module.
START_TEST(test_gradient_matches_finite_differences)
{
    enum { DIM = 5, K = 3, NX = 10, N = 4 };
    const size_t np = ds_softmax_num_params(DIM, K);
    uint64_t     st = 12345;
    float        x[NX * DIM];
    uint8_t      y[NX];
    float        w[DIM * K + K];
    double       wd[DIM * K + K];
    for (size_t i = 0; i < NX * DIM; i++) {
        x[i] = (float)s_lcg(&st, 0.0, 1.0);
    }
    for (size_t i = 0; i < NX; i++) {
        y[i] = (uint8_t)(i % K);
    }
    for (size_t p = 0; p < np; p++) {
        w[p] = (float)s_lcg(&st, -1.0, 1.0);
        wd[p] = w[p];
    }
    // A repeated row counts twice, as a batch drawn with replacement would.
    const uint32_t idx[N] = {7, 2, 9, 2};

    ds_softmax_ws_t ws;
    ck_assert_int_eq(ds_softmax_ws_init(&ws, 6, DIM, K), 0);
    float grad[DIM * K + K];
    for (size_t p = 0; p < np; p++) {
        grad[p] = NAN; // every entry must be overwritten
    }
    size_t correct = 99;
    double loss = ds_softmax_grad(&ws, w, x, y, idx, N, grad, &correct);

    size_t ref_correct = 0;
    double ref = s_ref_loss(wd, x, y, idx, N, DIM, K, &ref_correct);
    ck_assert_double_eq_tol(loss, ref, 1e-6);
    ck_assert_uint_eq(correct, ref_correct);

    const double h = 1e-5;
    for (size_t p = 0; p < np; p++) {
        double keep = wd[p];
        wd[p] = keep + h;
        double up = s_ref_loss(wd, x, y, idx, N, DIM, K, NULL);
        wd[p] = keep - h;
        double down = s_ref_loss(wd, x, y, idx, N, DIM, K, NULL);
        wd[p] = keep;
        double fd = (up - down) / (2 * h);
        ck_assert_msg(fabs(grad[p] - fd) <= 1e-5 + 1e-4 * fabs(fd),
                      "param %zu: grad %.9g, finite difference %.9g", p,
                      (double)grad[p], fd);
    }
    ds_softmax_ws_fini(&ws);
}
END_TEST

// With all parameters zero every class has probability 1/K, so the loss is
// ln K, the bias gradient is 1/K - (frequency of the class in the batch),
// and grad W[j] = mean_i (1/K - [y_i = j]) x_i. All logits tie, and the
// first largest logit, class 0, is the prediction.
START_TEST(test_zero_params_hand_values)
{
    enum { DIM = 5, K = 3, N = 4 };
    const float x[N * DIM] = {
        1, 0, 2, 0, -1, //
        0, 1, 0, 3, 0,  //
        2, 2, 0, 0, 1,  //
        0, 0, 1, 1, 1,  //
    };
    const uint8_t  y[N] = {0, 2, 2, 1};
    const uint32_t idx[N] = {0, 1, 2, 3};
    float          w[DIM * K + K] = {0};
    float          grad[DIM * K + K];

    ds_softmax_ws_t ws;
    ck_assert_int_eq(ds_softmax_ws_init(&ws, N, DIM, K), 0);
    size_t correct = 0;
    double loss = ds_softmax_grad(&ws, w, x, y, idx, N, grad, &correct);
    ck_assert_double_eq_tol(loss, log(3.0), 1e-12);
    ck_assert_uint_eq(correct, 1);

    // Class frequencies 1/4, 1/4, 1/2.
    ck_assert_float_eq_tol(grad[15], 1.0f / 3 - 0.25f, 1e-7);
    ck_assert_float_eq_tol(grad[16], 1.0f / 3 - 0.25f, 1e-7);
    ck_assert_float_eq_tol(grad[17], 1.0f / 3 - 0.5f, 1e-7);
    // grad W[0] = ((1/3 - 1) x0 + (1/3) (x1 + x2 + x3)) / 4, by hand:
    // x1 + x2 + x3 = (2, 3, 1, 4, 2), so
    // W[0] = (-2/3 (1, 0, 2, 0, -1) + 1/3 (2, 3, 1, 4, 2)) / 4
    //      = (0, 1, -1, 4/3, 4/3) / 4.
    const float w0[DIM] = {0, 0.25f, -0.25f, 1.0f / 3, 1.0f / 3};
    // W[2]: labels 2 at rows 1 and 2; x0 + x3 = (1, 0, 3, 1, 0) and
    // x1 + x2 = (2, 3, 0, 3, 1):
    // (1/3 (1, 0, 3, 1, 0) - 2/3 (2, 3, 0, 3, 1)) / 4
    //      = (-1, -2, 1, -5/3, -2/3) / 4.
    const float w2[DIM] = {-0.25f, -0.5f, 0.25f, -5.0f / 12, -1.0f / 6};
    for (int d = 0; d < DIM; d++) {
        ck_assert_float_eq_tol(grad[0 * DIM + d], w0[d], 1e-6);
        ck_assert_float_eq_tol(grad[2 * DIM + d], w2[d], 1e-6);
        // The class gradients of each input sum to zero.
        ck_assert_float_eq_tol(grad[d] + grad[DIM + d] + grad[2 * DIM + d],
                               0.0f, 1e-6);
    }
    ds_softmax_ws_fini(&ws);
}
END_TEST

// W = 10 I on one-hot inputs predicts the hot index; 3 of 6 labels agree.
START_TEST(test_accuracy_counting)
{
    enum { K = 4, N = 6 };
    float w[K * K + K] = {0};
    for (int j = 0; j < K; j++) {
        w[j * K + j] = 10.0f;
    }
    const int     hot[N] = {0, 1, 2, 3, 1, 2};
    const uint8_t y[N] = {0, 2, 2, 1, 1, 0};
    float         x[N * K] = {0};
    for (int i = 0; i < N; i++) {
        x[i * K + hot[i]] = 1.0f;
    }
    const uint32_t  idx[N] = {0, 1, 2, 3, 4, 5};
    float           grad[K * K + K];
    ds_softmax_ws_t ws;
    ck_assert_int_eq(ds_softmax_ws_init(&ws, N, K, K), 0);
    size_t correct = 0;
    double loss = ds_softmax_grad(&ws, w, x, y, idx, N, grad, &correct);
    ck_assert_uint_eq(correct, 3);
    // Right rows lose log(1 + 3 e^-10), wrong ones 10 + log(1 + 3 e^-10).
    double l_ok = log(1 + 3 * exp(-10.0));
    ck_assert_double_eq_tol(loss, (6 * l_ok + 3 * 10) / 6, 1e-5);

    double acc = -1;
    double eval = ds_softmax_eval(&ws, w, x, y, N, &acc);
    ck_assert_double_eq_tol(acc, 0.5, 1e-12);
    ck_assert_double_eq_tol(eval, loss, 1e-9);

    // A subset through idx: rows 0, 3 and 5 hold one correct prediction.
    const uint32_t sub[3] = {0, 3, 5};
    ds_softmax_grad(&ws, w, x, y, sub, 3, grad, &correct);
    ck_assert_uint_eq(correct, 1);
    ds_softmax_ws_fini(&ws);
}
END_TEST

// Logits 2000 apart: the naive exp() would overflow to inf; the stable form
// gives loss = 2000 for the wrong label and 0 for the right one, and the
// gradient is (p - onehot) x = (1, -1) for the wrong label.
START_TEST(test_stable_for_huge_logits)
{
    const float     w[4] = {1000.0f, -1000.0f, 0.0f, 0.0f}; // W (2x1), b
    const float     x[2] = {1.0f, 1.0f};
    const uint8_t   y[2] = {1, 0};
    const uint32_t  wrong[1] = {0};
    const uint32_t  right[1] = {1};
    float           grad[4];
    ds_softmax_ws_t ws;
    ck_assert_int_eq(ds_softmax_ws_init(&ws, 2, 1, 2), 0);
    size_t correct = 9;
    double loss = ds_softmax_grad(&ws, w, x, y, wrong, 1, grad, &correct);
    ck_assert_double_eq_tol(loss, 2000.0, 1e-9);
    ck_assert_uint_eq(correct, 0);
    ck_assert_float_eq_tol(grad[0], 1.0f, 1e-7);
    ck_assert_float_eq_tol(grad[1], -1.0f, 1e-7);
    ck_assert_float_eq_tol(grad[2], 1.0f, 1e-7);
    ck_assert_float_eq_tol(grad[3], -1.0f, 1e-7);

    loss = ds_softmax_grad(&ws, w, x, y, right, 1, grad, &correct);
    ck_assert_double_eq_tol(loss, 0.0, 1e-12);
    ck_assert_uint_eq(correct, 1);
    for (int p = 0; p < 4; p++) {
        ck_assert_float_eq_tol(grad[p], 0.0f, 1e-7);
    }
    ds_softmax_ws_fini(&ws);
}
END_TEST

// ds_softmax_eval in blocks of max_batch equals the size-weighted mean of
// the losses ds_softmax_grad reports for those blocks (with equal blocks,
// their plain mean), and the double reference over all rows.
START_TEST(test_eval_equals_block_grads)
{
    enum { DIM = 7, K = 4, NMAX = 23, B = 5 };
    uint64_t st = 777;
    float    x[NMAX * DIM];
    uint8_t  y[NMAX];
    float    w[DIM * K + K];
    double   wd[DIM * K + K];
    uint32_t all[NMAX];
    for (size_t i = 0; i < NMAX * DIM; i++) {
        x[i] = (float)s_lcg(&st, -1.0, 1.0);
    }
    for (size_t i = 0; i < NMAX; i++) {
        y[i] = (uint8_t)((i * 5 + 1) % K);
        all[i] = (uint32_t)i;
    }
    for (size_t p = 0; p < DIM * K + K; p++) {
        w[p] = (float)s_lcg(&st, -2.0, 2.0);
        wd[p] = w[p];
    }
    ds_softmax_ws_t ws;
    ck_assert_int_eq(ds_softmax_ws_init(&ws, B, DIM, K), 0);
    float grad[DIM * K + K];

    const size_t sizes[2] = {20, NMAX}; // four equal blocks; a ragged tail
    for (int c = 0; c < 2; c++) {
        size_t n = sizes[c];
        double sum = 0, mean_of_blocks = 0;
        size_t correct = 0;
        int    nblocks = 0;
        for (size_t s = 0; s < n; s += B) {
            size_t nb = n - s < B ? n - s : B;
            size_t cb = 0;
            double lb = ds_softmax_grad(&ws, w, x, y, all + s, nb, grad, &cb);
            sum += lb * (double)nb;
            mean_of_blocks += lb;
            correct += cb;
            nblocks++;
        }
        mean_of_blocks /= nblocks;
        double acc = -1;
        double eval = ds_softmax_eval(&ws, w, x, y, n, &acc);
        ck_assert_double_eq_tol(eval, sum / (double)n, 1e-9);
        if (n % B == 0) {
            ck_assert_double_eq_tol(eval, mean_of_blocks, 1e-9);
        }
        ck_assert_double_eq_tol(acc, (double)correct / (double)n, 1e-12);
        size_t ref_correct = 0;
        double ref = s_ref_loss(wd, x, y, all, n, DIM, K, &ref_correct);
        ck_assert_double_eq_tol(eval, ref, 1e-5);
        ck_assert_uint_eq(correct, ref_correct);
    }
    ds_softmax_ws_fini(&ws);
}
END_TEST

START_TEST(test_empty_batch)
{
    ds_softmax_ws_t ws;
    ck_assert_int_eq(ds_softmax_ws_init(&ws, 4, 2, 2), 0);
    const float   w[6] = {1, 2, 3, 4, 5, 6};
    const float   x[2] = {1, 1};
    const uint8_t y[1] = {0};
    float         grad[6] = {9, 9, 9, 9, 9, 9};
    size_t        correct = 7;
    ck_assert_double_eq(ds_softmax_grad(&ws, w, x, y, NULL, 0, grad, &correct),
                        0.0);
    ck_assert_uint_eq(correct, 0);
    for (int p = 0; p < 6; p++) {
        ck_assert_float_eq(grad[p], 0.0f);
    }
    double acc = -1;
    ck_assert_double_eq(ds_softmax_eval(&ws, w, x, y, 0, &acc), 0.0);
    ck_assert_double_eq(acc, 0.0);
    ds_softmax_ws_fini(&ws);
}
END_TEST

Suite *
ds_softmax_suite(void)
{
    Suite *s = suite_create("softmax");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_ws_init);
    tcase_add_test(tc, test_gradient_matches_finite_differences);
    tcase_add_test(tc, test_zero_params_hand_values);
    tcase_add_test(tc, test_accuracy_counting);
    tcase_add_test(tc, test_stable_for_huge_logits);
    tcase_add_test(tc, test_eval_equals_block_grads);
    tcase_add_test(tc, test_empty_batch);
    suite_add_tcase(s, tc);
    return s;
}
