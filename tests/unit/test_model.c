// SPDX-License-Identifier: MIT
// test_model - the model interface: layout, init, batch norm, gradients
// against double finite differences, evaluation mode, training.
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/job.h"
#include "common/mlp.h"
#include "common/model.h"
#include "common/rng.h"
#include "common/softmax.h"
#include "tests/unit/suites.h"

// s_lcg is a tiny local generator, so these tests do not depend on
// common/rng for their data: uniform in [lo, hi).
static double
s_lcg(uint64_t *state, double lo, double hi)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (double)(*state >> 11) * 0x1.0p-53;
}

// s_shape_t is a network's shape as the reference reads it: linear layers
// sizes[l] -> sizes[l+1], batch norm after the hidden ones when bn.
typedef struct {
    int    nlayers;                        // linear layers
    size_t sizes[DS_MODEL_MAX_LAYERS + 1]; // dim, hidden..., classes
    bool   bn;                             // batch norm on hidden layers
} s_shape_t;

// s_ref_loss is the mean cross-entropy of rows idx[0..n) written the plain
// way in double, layer by layer over the whole batch, from model.h's
// documented layout (W_l out x in, b_l, then gamma_l and beta_l). With
// running NULL it is training mode: batch norm uses the batch mean and
// biased variance, stored to stats (mean then variance per hidden layer)
// when stats is set. Otherwise batch norm uses running. Each example's loss
// goes to each[i] and the count of right argmaxes to *correct when set.
static double
s_ref_loss(const s_shape_t *s, const double *w, const float *x,
           const uint8_t *y, const uint32_t *idx, size_t n,
           const float *running, double *stats, double *each, size_t *correct)
{
    size_t width = 0;
    for (int l = 0; l <= s->nlayers; l++) {
        width = s->sizes[l] > width ? s->sizes[l] : width;
    }
    double *a = calloc(n * width, sizeof(double));
    double *z = calloc(n * width, sizeof(double));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(z);
    for (size_t i = 0; i < n; i++) {
        for (size_t d = 0; d < s->sizes[0]; d++) {
            a[i * width + d] = x[idx[i] * s->sizes[0] + d];
        }
    }
    size_t off = 0, roff = 0;
    for (int l = 0; l < s->nlayers; l++) {
        size_t        in = s->sizes[l], out = s->sizes[l + 1];
        const double *W = w + off;
        const double *b = W + out * in;
        off += out * in + out;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < out; j++) {
                double v = b[j];
                for (size_t k = 0; k < in; k++) {
                    v += W[j * in + k] * a[i * width + k];
                }
                z[i * width + j] = v;
            }
        }
        if (l == s->nlayers - 1) {
            break;
        }
        if (s->bn) {
            const double *gamma = w + off;
            const double *beta = gamma + out;
            off += 2 * out;
            for (size_t j = 0; j < out; j++) {
                double mu = 0, var = 0;
                if (running != NULL) {
                    mu = running[roff + j];
                    var = running[roff + out + j];
                } else {
                    for (size_t i = 0; i < n; i++) {
                        mu += z[i * width + j];
                    }
                    mu /= (double)n;
                    for (size_t i = 0; i < n; i++) {
                        var +=
                            (z[i * width + j] - mu) * (z[i * width + j] - mu);
                    }
                    var /= (double)n;
                    if (stats != NULL) {
                        stats[roff + j] = mu;
                        stats[roff + out + j] = var;
                    }
                }
                for (size_t i = 0; i < n; i++) {
                    double xh = (z[i * width + j] - mu) / sqrt(var + 1e-5);
                    z[i * width + j] = gamma[j] * xh + beta[j];
                }
            }
            roff += 2 * out;
        }
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < out; j++) {
                a[i * width + j] = fmax(z[i * width + j], 0.0);
            }
        }
    }
    size_t k = s->sizes[s->nlayers];
    double total = 0;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        const double *zi = z + i * width;
        size_t        best = 0;
        for (size_t j = 1; j < k; j++) {
            best = zi[j] > zi[best] ? j : best;
        }
        double sum = 0;
        for (size_t j = 0; j < k; j++) {
            sum += exp(zi[j] - zi[best]);
        }
        double li = log(sum) + zi[best] - zi[y[idx[i]]];
        total += li;
        ok += best == y[idx[i]];
        if (each != NULL) {
            each[i] = li;
        }
    }
    if (correct != NULL) {
        *correct = ok;
    }
    free(a);
    free(z);
    return total / (double)n;
}

// s_shape copies a model's shape for the reference.
static s_shape_t
s_shape(const ds_model_t *m)
{
    s_shape_t s = {.nlayers = m->nlayers, .bn = m->batchnorm};
    memcpy(s.sizes, m->sizes, sizeof s.sizes);
    return s;
}

// s_fill_random sets every parameter of m uniformly: weights in [-0.8,
// 0.8), biases and beta in [-0.5, 0.5), gamma in [0.5, 1.5), mirrored in
// double to wd.
static void
s_fill_random(const ds_model_t *m, float *w, double *wd, uint64_t *st)
{
    size_t off = 0;
    for (int l = 0; l < m->nlayers; l++) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        for (size_t p = 0; p < out * in; p++) {
            w[off++] = (float)s_lcg(st, -0.8, 0.8);
        }
        for (size_t p = 0; p < out; p++) {
            w[off++] = (float)s_lcg(st, -0.5, 0.5);
        }
        if (m->batchnorm && l < m->nlayers - 1) {
            for (size_t p = 0; p < out; p++) {
                w[off++] = (float)s_lcg(st, 0.5, 1.5);
            }
            for (size_t p = 0; p < out; p++) {
                w[off++] = (float)s_lcg(st, -0.5, 0.5);
            }
        }
    }
    ck_assert_uint_eq(off, m->num_params);
    for (size_t p = 0; p < m->num_params; p++) {
        wd[p] = w[p];
    }
}

START_TEST(test_init_validation)
{
    ds_model_t   m;
    char         err[128];
    const size_t h2[2] = {4, 3};
    const size_t h0[2] = {4, 0};
    const size_t huge[3] = {INT_MAX, INT_MAX, INT_MAX};
    const size_t h8[8] = {1, 1, 1, 1, 1, 1, 1, 1};

    ck_assert_int_eq(
        ds_model_init(NULL, DS_MODEL_MLP, 5, 2, h2, 2, false, err, sizeof err),
        -EINVAL);
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 0, 2, h2, 2, false, err, sizeof err),
        -EINVAL);
    ck_assert_int_eq(ds_model_init(&m, DS_MODEL_MLP, (size_t)INT_MAX + 1, 2, h2,
                                   2, false, err, sizeof err),
                     -EINVAL);
    err[0] = '\0';
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 5, 1, h2, 2, false, err, sizeof err),
        -EINVAL);
    ck_assert_str_eq(err, "1 classes; need at least 2");
    ck_assert_int_eq(ds_model_init(&m, DS_MODEL_SOFTMAX, 5, 1, NULL, 0, false,
                                   err, sizeof err),
                     -EINVAL);
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 5, 2, h0, 2, false, err, sizeof err),
        -EINVAL);
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 5, 2, NULL, 2, false, err, sizeof err),
        -EINVAL);
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 5, 2, h2, -1, false, err, sizeof err),
        -EINVAL);
    // Eight hidden layers would make nine linear layers.
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 5, 2, h8, 8, false, err, sizeof err),
        -EINVAL);
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 5, 2, h8, 7, true, err, sizeof err), 0);
    ck_assert_int_eq(m.nlayers, 8);
    ds_model_fini(&m);
    ck_assert_int_eq(ds_model_init(&m, (ds_model_kind_t)7, 5, 2, h2, 2, false,
                                   err, sizeof err),
                     -EINVAL);
    // Each layer fits an int, but two INT_MAX^2 matrices overflow a size_t.
    err[0] = '\0';
    ck_assert_int_eq(ds_model_init(&m, DS_MODEL_MLP, INT_MAX, 2, huge, 3, false,
                                   err, sizeof err),
                     -EINVAL);
    ck_assert_str_eq(err, "too many parameters");
    ck_assert_ptr_null(m.running);
    // A failed init leaves a model fini accepts; err may be NULL.
    ds_model_fini(&m);
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 0, 2, h2, 2, false, NULL, 0), -EINVAL);

    // Softmax ignores hidden layers and batch norm.
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_SOFTMAX, 5, 3, h2, 2, true, err, sizeof err),
        0);
    ck_assert_int_eq(m.nlayers, 1);
    ck_assert(!m.batchnorm);
    ck_assert_ptr_null(m.running);
    ck_assert_uint_eq(m.num_params, ds_softmax_num_params(5, 3));
    ds_model_fini(&m);
    ds_model_fini(&m);
}
END_TEST

// Sizes 5 -> 4 -> 3 -> 2 by hand: (4*5 + 4) + (3*4 + 3) + (2*3 + 2) = 47,
// and batch norm adds gamma and beta for 4 + 3 hidden units: 61. He init
// shows where each block lies: gamma 1, beta and biases 0, weights not.
START_TEST(test_layout_and_num_params)
{
    ds_model_t   m;
    const size_t h[2] = {4, 3};
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 5, 2, h, 2, false, NULL, 0), 0);
    ck_assert_uint_eq(m.num_params, 47);
    ck_assert_int_eq(m.nlayers, 3);
    ck_assert_uint_eq(m.sizes[0], 5);
    ck_assert_uint_eq(m.sizes[1], 4);
    ck_assert_uint_eq(m.sizes[2], 3);
    ck_assert_uint_eq(m.sizes[3], 2);
    ck_assert_ptr_null(m.running);
    ds_model_fini(&m);

    ck_assert_int_eq(ds_model_init(&m, DS_MODEL_MLP, 5, 2, h, 2, true, NULL, 0),
                     0);
    ck_assert_uint_eq(m.num_params, 61);
    ck_assert(m.batchnorm);
    ck_assert_double_eq(m.bn_eps, 1e-5);
    ck_assert_double_eq(m.bn_momentum, 0.1);
    // Running: layer 1 means [0,4) and variances [4,8), layer 2 [8,11) and
    // [11,14).
    for (int j = 0; j < 14; j++) {
        ck_assert_float_eq(m.running[j], (j < 4 || (j >= 8 && j < 11)) ? 0 : 1);
    }
    float w[61];
    ds_model_init_params(&m, w, DS_INIT_HE, 0.0, 1);
    // 'W' weight, 'b' bias, 'g' gamma, 'z' beta.
    const char *map = "WWWWWWWWWWWWWWWWWWWW"
                      "bbbb"
                      "gggg"
                      "zzzz"
                      "WWWWWWWWWWWW"
                      "bbb"
                      "ggg"
                      "zzz"
                      "WWWWWW"
                      "bb";
    ck_assert_uint_eq(strlen(map), 61);
    for (int p = 0; p < 61; p++) {
        switch (map[p]) {
        case 'W':
            ck_assert_msg(w[p] != 0.0f && fabsf(w[p]) < 5.0f, "param %d", p);
            break;
        case 'g':
            ck_assert_float_eq(w[p], 1.0f);
            break;
        default:
            ck_assert_float_eq(w[p], 0.0f);
        }
    }
    ds_model_fini(&m);
    ck_assert_ptr_null(m.running);
    ds_model_fini(&m);

    // The sizes a worker trains: 784*10 + 10 = 7850; 784-256-10 is
    // 200704 + 256 + 2560 + 10 = 203530, plus 512 with batch norm.
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_SOFTMAX, 784, 10, NULL, 0, false, NULL, 0),
        0);
    ck_assert_uint_eq(m.num_params, 7850);
    ds_model_fini(&m);
    const size_t h256[1] = {256};
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 784, 10, h256, 1, false, NULL, 0), 0);
    ck_assert_uint_eq(m.num_params, 203530);
    ds_model_fini(&m);
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 784, 10, h256, 1, true, NULL, 0), 0);
    ck_assert_uint_eq(m.num_params, 204042);
    ds_model_fini(&m);
}
END_TEST

// s_moments returns the mean of v[0..n) and stores the (biased) variance.
static double
s_moments(const float *v, size_t n, double *var)
{
    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++) {
        mean += v[i];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        ss += (v[i] - mean) * (v[i] - mean);
    }
    *var = ss / (double)n;
    return mean;
}

// He init of 784-256-10: the sample mean of N normals with variance v is
// within 5 sqrt(v/N) of 0 and the sample variance within a relative
// 5 sqrt(2/N) of v (five standard errors; a fixed seed makes it exact).
START_TEST(test_he_init_statistics)
{
    ds_model_t   m;
    const size_t h[1] = {256};
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 784, 10, h, 1, false, NULL, 0), 0);
    float *w = malloc(m.num_params * sizeof(float));
    ck_assert_ptr_nonnull(w);
    ds_model_init_params(&m, w, DS_INIT_HE, 123.0, 2024);
    struct {
        size_t off, count, fan_in;
    } blocks[2] = {{0, 784 * 256, 784}, {784 * 256 + 256, 256 * 10, 256}};
    for (int b = 0; b < 2; b++) {
        double v = 2.0 / (double)blocks[b].fan_in, var = 0;
        double n = (double)blocks[b].count;
        double mean = s_moments(w + blocks[b].off, blocks[b].count, &var);
        ck_assert_msg(fabs(mean) < 5 * sqrt(v / n), "mean %g", mean);
        ck_assert_msg(fabs(var / v - 1) < 5 * sqrt(2 / n), "var %g want %g",
                      var, v);
    }
    for (size_t p = 784 * 256; p < 784 * 256 + 256; p++) {
        ck_assert_float_eq(w[p], 0.0f);
    }
    for (size_t p = m.num_params - 10; p < m.num_params; p++) {
        ck_assert_float_eq(w[p], 0.0f);
    }
    free(w);
    ds_model_fini(&m);
}
END_TEST

// The same seed gives the same vector, another seed another; zeros are
// zeros; random init has standard deviation scale and is the per-key draw
// the servers make (r->w[k] = scale * ds_rng_key_normal(seed, k)).
START_TEST(test_init_deterministic)
{
    ds_model_t   m;
    const size_t h[2] = {30, 20};
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, 50, 10, h, 2, true, NULL, 0), 0);
    size_t np = m.num_params;
    float *a = malloc(np * sizeof(float));
    float *b = malloc(np * sizeof(float));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    for (int how = DS_INIT_RANDOM; how <= DS_INIT_HE; how++) {
        ds_model_init_params(&m, a, (ds_init_t)how, 0.5, 99);
        ds_model_init_params(&m, b, (ds_init_t)how, 0.5, 99);
        ck_assert_mem_eq(a, b, np * sizeof(float));
        ds_model_init_params(&m, b, (ds_init_t)how, 0.5, 100);
        size_t differ = 0, weights = 0;
        for (size_t p = 0; p < np; p++) {
            differ += a[p] != b[p];
            weights += a[p] != 0.0f && a[p] != 1.0f;
        }
        // Only weights are random; 50*30 + 30*20 + 20*10 = 2300 of them.
        ck_assert_uint_eq(weights, 2300);
        ck_assert_uint_eq(differ, 2300);
    }
    memset(a, 0x7f, np * sizeof(float));
    ds_model_init_params(&m, a, DS_INIT_ZEROS, 0.5, 99);
    for (size_t p = 0; p < np; p++) {
        ck_assert_float_eq(a[p], 0.0f);
    }
    free(a);
    free(b);
    ds_model_fini(&m);

    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_SOFTMAX, 784, 10, NULL, 0, false, NULL, 0),
        0);
    float *w = malloc(m.num_params * sizeof(float));
    ck_assert_ptr_nonnull(w);
    ds_model_init_params(&m, w, DS_INIT_RANDOM, 0.01, 7);
    double var = 0, mean = s_moments(w, 7840, &var);
    ck_assert(fabs(mean) < 5 * 0.01 / sqrt(7840.0));
    ck_assert(fabs(var / 1e-4 - 1) < 5 * sqrt(2 / 7840.0));
    for (size_t k = 0; k < 7840; k++) {
        ck_assert_float_eq(w[k], (float)(0.01 * ds_rng_key_normal(7, k)));
    }
    for (size_t k = 7840; k < 7850; k++) {
        ck_assert_float_eq(w[k], 0.0f);
    }
    free(w);
    ds_model_fini(&m);
}
END_TEST

// ALGORITHMS.md 13.5, through the batch-norm layer the MLP uses. Column 0
// is the vector; column 1 holds it in reverse order, with dy reversed, so
// its results are the same values reversed (the columns stay separate).
START_TEST(test_batchnorm_vector)
{
    const double x[4] = {1, 2, 4, 7};
    const double dy[4] = {0.1, -0.2, 0.3, 0.4};
    const double y[4] = {-1.13663262, -0.481979571, 0.827326524, 2.79128567};
    const double dx[4] = {0.0919629286, -0.154311218, 0.0732588409,
                          -0.0109105516};
    float        z[8], out[8], d[8], xhat[8];
    for (int i = 0; i < 4; i++) {
        z[2 * i] = (float)x[i];
        z[2 * i + 1] = (float)x[3 - i];
        d[2 * i] = (float)dy[i];
        d[2 * i + 1] = (float)dy[3 - i];
    }
    const float gamma[2] = {1.5f, 1.5f}, beta[2] = {0.5f, 0.5f};
    float       rmean[2] = {0, 0}, rvar[2] = {1, 1}, istd[2];
    double      acc[4];
    ds_mlp_bn_t bn = {.f = 2,
                      .gamma = gamma,
                      .beta = beta,
                      .rmean = rmean,
                      .rvar = rvar,
                      .istd = istd,
                      .eps = 1e-5,
                      .momentum = 0.1,
                      .acc = acc};
    ds_mlp_bn_train(&bn, z, out, 4, false);
    memcpy(xhat, z, sizeof xhat);
    for (int c = 0; c < 2; c++) {
        ck_assert_double_eq_tol(rmean[c], 0.35, 1e-7);
        ck_assert_double_eq_tol(rvar[c], 1.6, 1e-7);
        ck_assert_double_eq_tol(istd[c], 1 / sqrt(5.25 + 1e-5), 1e-7);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_double_eq_tol(out[2 * i], y[i], 1e-6);
        ck_assert_double_eq_tol(out[2 * i + 1], y[3 - i], 1e-6);
        ck_assert_double_eq_tol(xhat[2 * i], (y[i] - 0.5) / 1.5, 1e-6);
    }
    float dgamma[2], dbeta[2];
    ds_mlp_bn_backward(&bn, d, xhat, 4, dgamma, dbeta);
    for (int c = 0; c < 2; c++) {
        ck_assert_double_eq_tol(dgamma[c], 0.698296584, 1e-6);
        ck_assert_double_eq_tol(dbeta[c], 0.6, 1e-6);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_double_eq_tol(d[2 * i], dx[i], 1e-7);
        ck_assert_double_eq_tol(d[2 * i + 1], dx[3 - i], 1e-7);
    }

    // With relu the output is clamped, and without running statistics
    // nothing else is tracked.
    for (int i = 0; i < 4; i++) {
        z[2 * i] = (float)x[i];
        z[2 * i + 1] = (float)x[3 - i];
    }
    bn.rmean = bn.rvar = NULL;
    ds_mlp_bn_train(&bn, z, out, 4, true);
    for (int i = 0; i < 4; i++) {
        ck_assert_double_eq_tol(out[2 * i], fmax(y[i], 0), 1e-6);
    }
    ck_assert_float_eq(rmean[0], 0.35f);
}
END_TEST

// The vector again, through the whole model: input 1 -> hidden 1 (W = 1,
// b = 0, so batch norm sees x itself) -> 2 classes with logits (h, -h).
// One training step moves the running statistics to 0.35 and 1.6; the
// loss, dgamma and dbeta follow by hand from y of 13.5; evaluation then
// normalizes with the running statistics.
START_TEST(test_batchnorm_through_model)
{
    ds_model_t   m;
    const size_t h[1] = {1};
    ck_assert_int_eq(ds_model_init(&m, DS_MODEL_MLP, 1, 2, h, 1, true, NULL, 0),
                     0);
    ck_assert_uint_eq(m.num_params, 8);
    // W0, b0, gamma, beta, W1 (2x1), b1.
    const float    w[8] = {1, 0, 1.5f, 0.5f, 1, -1, 0, 0};
    const float    x[4] = {1, 2, 4, 7};
    const uint8_t  y[4] = {0, 1, 0, 1};
    const uint32_t idx[4] = {0, 1, 2, 3};
    const double ybn[4] = {-1.13663262, -0.481979571, 0.827326524, 2.79128567};
    ds_model_ws_t *ws = ds_model_ws_new(&m, 4);
    ck_assert_ptr_nonnull(ws);
    float  grad[8];
    size_t correct = 9;
    double loss = ds_model_grad(&m, ws, w, x, y, idx, 4, grad, &correct);
    ck_assert_double_eq_tol(m.running[0], 0.35, 1e-7);
    ck_assert_double_eq_tol(m.running[1], 1.6, 1e-7);

    // Logits (h, -h): p(class 0) = 1 / (1 + e^-2h), and the mean loss's
    // derivative in h_i is (p0 - [y_i = 0]) * 2 / 4, zero where the ReLU
    // is off.
    double ref = 0, dgamma = 0, dbeta = 0;
    size_t ok = 0;
    for (int i = 0; i < 4; i++) {
        double hh = fmax(ybn[i], 0);
        double p0 = 1 / (1 + exp(-2 * hh));
        ref += y[i] == 0 ? log(1 + exp(-2 * hh)) : log(1 + exp(2 * hh));
        ok += (y[i] == 0) == (hh >= 0); // ties go to class 0
        double dyi = ybn[i] > 0 ? (p0 - (y[i] == 0)) * 0.5 : 0;
        dbeta += dyi;
        dgamma += dyi * (ybn[i] - 0.5) / 1.5;
    }
    ck_assert_double_eq_tol(loss, ref / 4, 1e-6);
    ck_assert_uint_eq(correct, ok);
    ck_assert_double_eq_tol(grad[2], dgamma, 1e-6);
    ck_assert_double_eq_tol(grad[3], dbeta, 1e-6);
    // Batch norm removes the hidden bias: its gradient is zero.
    ck_assert_double_eq_tol(grad[1], 0, 1e-6);

    float losses[4];
    ds_model_losses(&m, ws, w, x, y, idx, 4, losses);
    double mean = 0;
    for (int i = 0; i < 4; i++) {
        double hh = fmax(1.5 * (x[i] - 0.35) / sqrt(1.6 + 1e-5) + 0.5, 0);
        double li = y[i] == 0 ? log(1 + exp(-2 * hh)) : log(1 + exp(2 * hh));
        ck_assert_double_eq_tol(losses[i], li, 1e-5 * (1 + li));
        mean += li / 4;
    }
    double acc = -1;
    ck_assert_double_eq_tol(ds_model_eval(&m, ws, w, x, y, 4, &acc), mean,
                            1e-5);
    ck_assert_double_eq_tol(acc, 0.5, 1e-12); // h > 0 always: class 0
    ds_model_ws_destroy(&ws);
    ck_assert_ptr_null(ws);
    ds_model_ws_destroy(&ws);
    ds_model_fini(&m);
}
END_TEST

// s_check_grad_fd compares ds_model_grad for a 6 -> 5 -> 4 -> 3 MLP on a
// batch of 8 (one row repeated) with central differences of s_ref_loss in
// double: with h = 1e-5 the quotient is exact to about 1e-10, so the
// tolerance only covers the module's float rounding. With batch norm it
// also checks the running statistics after the step.
static void
s_check_grad_fd(bool bn)
{
    enum { DIM = 6, K = 3, NX = 12, N = 8 };
    ds_model_t   m;
    const size_t h[2] = {5, 4};
    ck_assert_int_eq(ds_model_init(&m, DS_MODEL_MLP, DIM, K, h, 2, bn, NULL, 0),
                     0);
    ck_assert_uint_eq(m.num_params, bn ? 92 : 74);
    size_t   np = m.num_params;
    uint64_t st = bn ? 4242 : 31337;
    float    x[NX * DIM];
    uint8_t  y[NX];
    for (size_t i = 0; i < NX * DIM; i++) {
        x[i] = (float)s_lcg(&st, -1.0, 1.0);
    }
    for (size_t i = 0; i < NX; i++) {
        y[i] = (uint8_t)(i % K);
    }
    float  w[92], grad[92];
    double wd[92];
    s_fill_random(&m, w, wd, &st);
    for (size_t p = 0; p < np; p++) {
        grad[p] = NAN; // every entry must be overwritten
    }
    const uint32_t idx[N] = {3, 7, 0, 11, 5, 7, 9, 2};
    ds_model_ws_t *ws = ds_model_ws_new(&m, 10);
    ck_assert_ptr_nonnull(ws);
    size_t correct = 99;
    double loss = ds_model_grad(&m, ws, w, x, y, idx, N, grad, &correct);

    s_shape_t s = s_shape(&m);
    double    stats[18];
    size_t    ref_correct = 0;
    double    ref =
        s_ref_loss(&s, wd, x, y, idx, N, NULL, stats, NULL, &ref_correct);
    ck_assert_double_eq_tol(loss, ref, 1e-6);
    ck_assert_uint_eq(correct, ref_correct);
    if (bn) {
        // Running statistics moved from (0, 1) by momentum 0.1 toward the
        // batch mean and the unbiased variance.
        for (size_t r = 0, l = 0; l < 2; l++) {
            for (size_t j = 0; j < h[l]; j++) {
                double mu = stats[r + j], var = stats[r + h[l] + j];
                ck_assert_double_eq_tol(m.running[r + j], 0.1 * mu, 1e-6);
                ck_assert_double_eq_tol(m.running[r + h[l] + j],
                                        0.9 + 0.1 * var * N / (N - 1), 1e-6);
            }
            r += 2 * h[l];
        }
    }

    const double hstep = 1e-5;
    double       worst = 0;
    for (size_t p = 0; p < np; p++) {
        double keep = wd[p];
        wd[p] = keep + hstep;
        double up = s_ref_loss(&s, wd, x, y, idx, N, NULL, NULL, NULL, NULL);
        wd[p] = keep - hstep;
        double down = s_ref_loss(&s, wd, x, y, idx, N, NULL, NULL, NULL, NULL);
        wd[p] = keep;
        double fd = (up - down) / (2 * hstep);
        double e = fabs(grad[p] - fd) / (1e-6 + 1e-4 * fabs(fd));
        worst = e > worst ? e : worst;
        ck_assert_msg(e <= 1.0, "param %zu: grad %.9g, finite difference %.9g",
                      p, (double)grad[p], fd);
    }
    // Every parameter must matter somewhere in a random net, so a gradient
    // of all zeros could not pass: check some are far from zero.
    double norm = 0;
    for (size_t p = 0; p < np; p++) {
        norm += (double)grad[p] * grad[p];
    }
    ck_assert(norm > 1e-3);
    ds_model_ws_destroy(&ws);
    ds_model_fini(&m);
}

START_TEST(test_mlp_grad_matches_finite_differences)
{
    s_check_grad_fd(false);
}
END_TEST

START_TEST(test_mlp_bn_grad_matches_finite_differences)
{
    s_check_grad_fd(true);
}
END_TEST

// Kind softmax delegates: ds_model_grad and ds_model_eval give exactly
// ds_softmax_grad and ds_softmax_eval, and ds_model_losses (computed in
// model.c) matches the double reference row by row and averages to the
// evaluation loss. An MLP without hidden layers is the same model.
START_TEST(test_softmax_kind)
{
    enum { DIM = 7, K = 4, NX = 23, N = 9, B = 10 };
    ds_model_t m, lin;
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_SOFTMAX, DIM, K, NULL, 0, false, NULL, 0),
        0);
    ck_assert_int_eq(
        ds_model_init(&lin, DS_MODEL_MLP, DIM, K, NULL, 0, true, NULL, 0), 0);
    ck_assert_uint_eq(lin.num_params, m.num_params);
    ck_assert_ptr_null(lin.running);
    const size_t np = m.num_params;
    uint64_t     st = 555;
    float        x[NX * DIM], w[DIM * K + K];
    double       wd[DIM * K + K];
    uint8_t      y[NX];
    uint32_t     all[NX];
    for (size_t i = 0; i < NX * DIM; i++) {
        x[i] = (float)s_lcg(&st, -1.0, 1.0);
    }
    for (size_t i = 0; i < NX; i++) {
        y[i] = (uint8_t)((i * 3 + 1) % K);
        all[i] = (uint32_t)i;
    }
    s_fill_random(&m, w, wd, &st);
    const uint32_t idx[N] = {4, 0, 22, 13, 4, 8, 17, 1, 9};

    ds_model_ws_t  *ws = ds_model_ws_new(&m, B);
    ds_model_ws_t  *lws = ds_model_ws_new(&lin, B);
    ds_softmax_ws_t sws;
    ck_assert_ptr_nonnull(ws);
    ck_assert_ptr_nonnull(lws);
    ck_assert_int_eq(ds_softmax_ws_init(&sws, B, DIM, K), 0);

    float  g1[DIM * K + K], g2[DIM * K + K], g3[DIM * K + K];
    size_t c1 = 0, c2 = 0, c3 = 0;
    double l1 = ds_model_grad(&m, ws, w, x, y, idx, N, g1, &c1);
    double l2 = ds_softmax_grad(&sws, w, x, y, idx, N, g2, &c2);
    double l3 = ds_model_grad(&lin, lws, w, x, y, idx, N, g3, &c3);
    ck_assert_double_eq(l1, l2);
    ck_assert_uint_eq(c1, c2);
    ck_assert_mem_eq(g1, g2, sizeof g1);
    ck_assert_double_eq_tol(l3, l2, 1e-6);
    ck_assert_uint_eq(c3, c2);
    for (size_t p = 0; p < np; p++) {
        ck_assert_double_eq_tol(g3[p], g2[p], 1e-6);
    }

    double a1 = -1, a2 = -2, a3 = -3;
    double e1 = ds_model_eval(&m, ws, w, x, y, NX, &a1);
    double e2 = ds_softmax_eval(&sws, w, x, y, NX, &a2);
    double e3 = ds_model_eval(&lin, lws, w, x, y, NX, &a3);
    ck_assert_double_eq(e1, e2);
    ck_assert_double_eq(a1, a2);
    ck_assert_double_eq_tol(e3, e2, 1e-6);
    ck_assert_double_eq(a3, a2);

    // NX = 23 rows in blocks of 10: losses crosses two block boundaries.
    float     losses[NX], llosses[NX];
    double    each[NX];
    s_shape_t s = s_shape(&m);
    s_ref_loss(&s, wd, x, y, all, NX, NULL, NULL, each, NULL);
    ds_model_losses(&m, ws, w, x, y, all, NX, losses);
    ds_model_losses(&lin, lws, w, x, y, all, NX, llosses);
    double mean = 0;
    for (size_t i = 0; i < NX; i++) {
        ck_assert_double_eq_tol(losses[i], each[i], 1e-5 * (1 + each[i]));
        ck_assert_double_eq_tol(llosses[i], each[i], 1e-5 * (1 + each[i]));
        mean += losses[i];
    }
    ck_assert_double_eq_tol(mean / NX, e1, 1e-6);

    ds_softmax_ws_fini(&sws);
    ds_model_ws_destroy(&ws);
    ds_model_ws_destroy(&lws);
    ds_model_fini(&m);
    ds_model_fini(&lin);
}
END_TEST

// After three training steps on a batch shifted by +3 (the parameters kept
// fixed), the running statistics are (1 - 0.9^3) of the batch mean and
// 0.9^3 + (1 - 0.9^3) of the unbiased variance. Evaluation then uses
// them: ds_model_losses equals the double reference in evaluation mode
// with those statistics, differs from the training-mode loss of the same
// rows, and averages to ds_model_eval's loss over ragged blocks.
START_TEST(test_eval_uses_running_statistics)
{
    enum { DIM = 6, K = 3, NX = 23, N = 8, B = 5 };
    ds_model_t   m;
    const size_t h[2] = {5, 4};
    ck_assert_int_eq(
        ds_model_init(&m, DS_MODEL_MLP, DIM, K, h, 2, true, NULL, 0), 0);
    uint64_t st = 8080;
    float    x[NX * DIM], xs[NX * DIM];
    uint8_t  y[NX];
    uint32_t all[NX];
    for (size_t i = 0; i < NX * DIM; i++) {
        x[i] = (float)s_lcg(&st, -1.0, 1.0);
        xs[i] = x[i] + 3.0f;
    }
    for (size_t i = 0; i < NX; i++) {
        y[i] = (uint8_t)(i % K);
        all[i] = (uint32_t)i;
    }
    float  w[92], grad[92];
    double wd[92];
    s_fill_random(&m, w, wd, &st);
    ds_model_ws_t *ws = ds_model_ws_new(&m, B > N ? B : N);
    ck_assert_ptr_nonnull(ws);
    const uint32_t idx[N] = {0, 2, 4, 6, 8, 10, 12, 14};
    for (int t = 0; t < 3; t++) {
        ds_model_grad(&m, ws, w, xs, y, idx, N, grad, NULL);
    }
    s_shape_t s = s_shape(&m);
    double    stats[18];
    double train = s_ref_loss(&s, wd, xs, y, idx, N, NULL, stats, NULL, NULL);
    double f = 1 - 0.9 * 0.9 * 0.9;
    for (int j = 0; j < 18; j++) {
        bool   is_var = (j >= 5 && j < 10) || j >= 14;
        double want =
            is_var ? 1 - f + f * stats[j] * N / (N - 1) : f * stats[j];
        ck_assert_double_eq_tol(m.running[j], want, 1e-5);
    }

    double each[NX];
    float  losses[NX];
    s_ref_loss(&s, wd, xs, y, all, NX, m.running, NULL, each, NULL);
    ds_model_losses(&m, ws, w, xs, y, all, NX, losses);
    double mean = 0, mean_idx = 0;
    for (size_t i = 0; i < NX; i++) {
        ck_assert_double_eq_tol(losses[i], each[i], 1e-5 * (1 + each[i]));
        mean += losses[i];
        mean_idx += i % 2 == 0 && i < 2 * N ? losses[i] : 0;
    }
    // The batch statistics are far from the running ones (only 27% of the
    // way there), so the same rows score differently in training mode.
    ck_assert(fabs(mean_idx / N - train) > 0.05);
    double acc = -1;
    double eval = ds_model_eval(&m, ws, w, xs, y, NX, &acc);
    ck_assert_double_eq_tol(eval, mean / NX, 1e-6);
    size_t ref_correct = 0;
    s_ref_loss(&s, wd, xs, y, all, NX, m.running, NULL, NULL, &ref_correct);
    ck_assert_double_eq_tol(acc, (double)ref_correct / NX, 1e-12);

    // Evaluation never changes the running statistics.
    float keep[18];
    memcpy(keep, m.running, sizeof keep);
    ds_model_eval(&m, ws, w, x, y, NX, &acc);
    ds_model_losses(&m, ws, w, x, y, all, NX, losses);
    ck_assert_mem_eq(keep, m.running, sizeof keep);
    ds_model_ws_destroy(&ws);
    ds_model_fini(&m);
}
END_TEST

// An empty batch gives zero loss and an all-zero gradient and leaves the
// running statistics alone; bad workspace sizes give NULL.
START_TEST(test_empty_batch_and_ws)
{
    ds_model_t   m;
    const size_t h[1] = {3};
    ck_assert_int_eq(ds_model_init(&m, DS_MODEL_MLP, 2, 2, h, 1, true, NULL, 0),
                     0);
    ck_assert_ptr_null(ds_model_ws_new(&m, 0));
    ck_assert_ptr_null(ds_model_ws_new(&m, (size_t)INT_MAX + 1));
    ds_model_ws_t *ws = ds_model_ws_new(&m, 4);
    ck_assert_ptr_nonnull(ws);
    float w[23], grad[23];
    ck_assert_uint_eq(m.num_params, 23);
    ds_model_init_params(&m, w, DS_INIT_HE, 0, 3);
    for (int p = 0; p < 23; p++) {
        grad[p] = 5;
    }
    const float   x[2] = {1, 2};
    const uint8_t y[1] = {1};
    size_t        correct = 7;
    ck_assert_double_eq(ds_model_grad(&m, ws, w, x, y, NULL, 0, grad, &correct),
                        0.0);
    ck_assert_uint_eq(correct, 0);
    for (int p = 0; p < 23; p++) {
        ck_assert_float_eq(grad[p], 0.0f);
    }
    for (int j = 0; j < 6; j++) {
        ck_assert_float_eq(m.running[j], j < 3 ? 0.0f : 1.0f);
    }
    double acc = -1;
    ck_assert_double_eq(ds_model_eval(&m, ws, w, x, y, 0, &acc), 0.0);
    ck_assert_double_eq(acc, 0.0);
    ds_model_losses(&m, ws, w, x, y, NULL, 0, NULL);
    ds_model_ws_destroy(&ws);
    ds_model_fini(&m);
}
END_TEST

// s_xor fills n points of [-1, 1)^2 at least 0.1 from both axes, labelled
// 1 in the first and third quadrants: no linear model separates them.
static void
s_xor(float *x, uint8_t *y, size_t n, uint64_t *st)
{
    for (size_t i = 0; i < n; i++) {
        double a, b;
        do {
            a = s_lcg(st, -1, 1);
            b = s_lcg(st, -1, 1);
        } while (fabs(a) < 0.1 || fabs(b) < 0.1);
        x[2 * i] = (float)a;
        x[2 * i + 1] = (float)b;
        y[i] = (uint8_t)((a > 0) == (b > 0));
    }
}

// Plain SGD on XOR quadrants: a 2-16-16-2 MLP, with and without batch
// norm, gets over 90% of fresh points right after 400 steps of 32.
static void
s_train_xor(bool bn)
{
    enum { NTR = 512, NTE = 512, B = 32, STEPS = 400 };
    ds_model_t   m;
    const size_t h[2] = {16, 16};
    ck_assert_int_eq(ds_model_init(&m, DS_MODEL_MLP, 2, 2, h, 2, bn, NULL, 0),
                     0);
    uint64_t st = 1;
    float    xtr[NTR * 2], xte[NTE * 2];
    uint8_t  ytr[NTR], yte[NTE];
    uint32_t order[NTR];
    s_xor(xtr, ytr, NTR, &st);
    s_xor(xte, yte, NTE, &st);
    for (uint32_t i = 0; i < NTR; i++) {
        order[i] = i;
    }
    float *w = malloc(m.num_params * sizeof(float));
    float *g = malloc(m.num_params * sizeof(float));
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(g);
    ds_model_init_params(&m, w, DS_INIT_HE, 0, 11);
    ds_model_ws_t *ws = ds_model_ws_new(&m, 64);
    ck_assert_ptr_nonnull(ws);
    double acc0 = 0;
    double loss0 = ds_model_eval(&m, ws, w, xte, yte, NTE, &acc0);
    for (int t = 0; t < STEPS; t++) {
        size_t pos = (size_t)(t * B) % NTR;
        if (pos == 0) {
            for (size_t i = NTR - 1; i > 0; i--) {
                size_t   j = (size_t)s_lcg(&st, 0, (double)(i + 1));
                uint32_t tmp = order[i];
                order[i] = order[j];
                order[j] = tmp;
            }
        }
        ds_model_grad(&m, ws, w, xtr, ytr, order + pos, B, g, NULL);
        for (size_t p = 0; p < m.num_params; p++) {
            w[p] -= 0.2f * g[p];
        }
    }
    double acc = 0;
    double loss = ds_model_eval(&m, ws, w, xte, yte, NTE, &acc);
    ck_assert_msg(acc > 0.9, "accuracy %g (from %g), loss %g (from %g)", acc,
                  acc0, loss, loss0);
    ck_assert(loss < loss0);
    free(w);
    free(g);
    ds_model_ws_destroy(&ws);
    ds_model_fini(&m);
}

START_TEST(test_training_learns_xor)
{
    s_train_xor(false);
}
END_TEST

START_TEST(test_training_learns_xor_batchnorm)
{
    s_train_xor(true);
}
END_TEST

// ds_job_model reads [model] hidden: out-of-range sizes name the bound
// they break, and only text that is not a list gets the syntax hint.
START_TEST(test_job_hidden_sizes)
{
    static const struct {
        const char *hidden;
        const char *err;
    } bad[] = {
        {"100000000", "[model] hidden: layer 1: too large (max 16777216) "
                      "(got \"100000000\")"},
        {"256,99999999999999999999999",
         "[model] hidden: layer 2: too large (max 16777216) (got "
         "\"256,99999999999999999999999\")"},
        {"0", "[model] hidden: layer 1: too small (min 1) (got \"0\")"},
        {"12x", "[model] hidden: expected sizes like \"256\" or \"512,128\" "
                "(got \"12x\")"},
        {"-5", "[model] hidden: expected sizes like \"256\" or \"512,128\" "
               "(got \"-5\")"},
        {"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20",
         "[model] hidden: too many layers (max 7) (got "
         "\"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20\")"},
    };
    ds_config_t c;
    ds_config_defaults(&c);
    snprintf(c.model, sizeof c.model, "mlp");
    char       err[256];
    ds_model_t m;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(c.hidden, sizeof c.hidden, "%s", bad[i].hidden);
        ck_assert_int_eq(ds_job_model(&m, &c, 784, 10, err, sizeof err),
                         -EINVAL);
        ck_assert_str_eq(err, bad[i].err);
    }
    snprintf(c.hidden, sizeof c.hidden, "16777216,3");
    ck_assert_int_eq(ds_job_model(&m, &c, 4, 2, err, sizeof err), 0);
    ck_assert_int_eq(m.nlayers, 3);
    ds_model_fini(&m);
}
END_TEST

Suite *
ds_model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_init_validation);
    tcase_add_test(tc, test_layout_and_num_params);
    tcase_add_test(tc, test_he_init_statistics);
    tcase_add_test(tc, test_init_deterministic);
    tcase_add_test(tc, test_batchnorm_vector);
    tcase_add_test(tc, test_batchnorm_through_model);
    tcase_add_test(tc, test_mlp_grad_matches_finite_differences);
    tcase_add_test(tc, test_mlp_bn_grad_matches_finite_differences);
    tcase_add_test(tc, test_softmax_kind);
    tcase_add_test(tc, test_eval_uses_running_statistics);
    tcase_add_test(tc, test_empty_batch_and_ws);
    tcase_add_test(tc, test_training_learns_xor);
    tcase_add_test(tc, test_training_learns_xor_batchnorm);
    tcase_add_test(tc, test_job_hidden_sizes);
    suite_add_tcase(s, tc);
    return s;
}
