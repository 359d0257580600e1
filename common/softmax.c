// SPDX-License-Identifier: MIT
// softmax - multinomial logistic regression: loss, gradient, evaluation.
#include "common/softmax.h"

#include <assert.h>
#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int
ds_softmax_ws_init(ds_softmax_ws_t *ws, size_t max_batch, size_t dim,
                   int classes)
{
    if (ws == NULL) {
        return -EINVAL;
    }
    memset(ws, 0, sizeof *ws);
    // CBLAS takes int sizes, so every matrix side must fit an int.
    if (max_batch == 0 || dim == 0 || classes < 1 || max_batch > INT_MAX ||
        dim > INT_MAX) {
        return -EINVAL;
    }
    if (max_batch > SIZE_MAX / sizeof(float) / dim ||
        max_batch > SIZE_MAX / sizeof(float) / (size_t)classes) {
        return -ENOMEM;
    }
    ws->logits = malloc(max_batch * (size_t)classes * sizeof(float));
    ws->xb = malloc(max_batch * dim * sizeof(float));
    if (ws->logits == NULL || ws->xb == NULL) {
        ds_softmax_ws_fini(ws);
        return -ENOMEM;
    }
    ws->max_batch = max_batch;
    ws->classes = classes;
    ws->dim = dim;
    return 0;
}

void
ds_softmax_ws_fini(ds_softmax_ws_t *ws)
{
    if (ws == NULL) {
        return;
    }
    free(ws->logits);
    free(ws->xb);
    free(ws->dim_tmp);
    memset(ws, 0, sizeof *ws);
}

// s_logits sets ws->logits (n x K) to xb W^T + b for the n rows of xb.
static void
s_logits(ds_softmax_ws_t *ws, const float *w, const float *xb, size_t n)
{
    int          k = ws->classes;
    size_t       d = ws->dim;
    const float *b = w + (size_t)k * d;
    for (size_t i = 0; i < n; i++) {
        memcpy(ws->logits + i * (size_t)k, b, (size_t)k * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, k, (int)d,
                1.0f, xb, (int)d, w, (int)d, 1.0f, ws->logits, k);
}

// s_rows turns the n rows of ws->logits into their summed cross-entropy
// loss and counts the rows whose first largest logit is the label. Row i
// has label y[idx[i]], or y[i] when idx is NULL. With grad set, each row is
// replaced by scale * (softmax - onehot), the gradient of the loss with
// respect to the logits.
static double
s_rows(ds_softmax_ws_t *ws, const uint8_t *y, const uint32_t *idx, size_t n,
       bool grad, float scale, size_t *correct)
{
    int    k = ws->classes;
    double loss = 0.0;
    for (size_t i = 0; i < n; i++) {
        float *l = ws->logits + i * (size_t)k;
        int    label = idx != NULL ? y[idx[i]] : y[i];
        // A label outside the model is a caller bug: the dataset's classes
        // and the workspace's must agree.
        assert(label < k);
        int best = 0;
        for (int j = 1; j < k; j++) {
            if (l[j] > l[best]) {
                best = j;
            }
        }
        *correct += best == label;
        // Subtracting the largest logit keeps every exponent <= 0, so the
        // sum lies in [1, k] and neither overflows nor vanishes.
        float  max = l[best];
        float  ly = l[label] - max;
        double sum = 0.0;
        for (int j = 0; j < k; j++) {
            float e = expf(l[j] - max);
            sum += e;
            if (grad) {
                l[j] = e;
            }
        }
        loss += log(sum) - (double)ly;
        if (grad) {
            float inv = (float)(1.0 / sum);
            for (int j = 0; j < k; j++) {
                l[j] = (l[j] * inv - (j == label ? 1.0f : 0.0f)) * scale;
            }
        }
    }
    return loss;
}

double
ds_softmax_grad(ds_softmax_ws_t *ws, const float *w, const float *x,
                const uint8_t *y, const uint32_t *idx, size_t n, float *grad,
                size_t *correct)
{
    assert(n <= ws->max_batch);
    int    k = ws->classes;
    size_t d = ws->dim;
    size_t ncorrect = 0;
    if (n == 0) {
        memset(grad, 0, ds_softmax_num_params(d, k) * sizeof(float));
        if (correct != NULL) {
            *correct = 0;
        }
        return 0.0;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(ws->xb + i * d, x + (size_t)idx[i] * d, d * sizeof(float));
    }
    s_logits(ws, w, ws->xb, n);
    double loss = s_rows(ws, y, idx, n, true, 1.0f / (float)n, &ncorrect);

    // The logits now hold dL/dlogits, so dL/dW = dlogits^T xb and dL/db is
    // the column sums of dlogits.
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, (int)d, (int)n,
                1.0f, ws->logits, k, ws->xb, (int)d, 0.0f, grad, (int)d);
    float *gb = grad + (size_t)k * d;
    for (int j = 0; j < k; j++) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) {
            s += ws->logits[i * (size_t)k + (size_t)j];
        }
        gb[j] = (float)s;
    }
    if (correct != NULL) {
        *correct = ncorrect;
    }
    return loss / (double)n;
}

double
ds_softmax_eval(ds_softmax_ws_t *ws, const float *w, const float *x,
                const uint8_t *y, size_t n, double *accuracy)
{
    double loss = 0.0;
    size_t ncorrect = 0;
    for (size_t start = 0; start < n; start += ws->max_batch) {
        size_t nb = n - start < ws->max_batch ? n - start : ws->max_batch;
        // Rows of a block are contiguous in x, so no gather is needed.
        s_logits(ws, w, x + start * ws->dim, nb);
        loss += s_rows(ws, y + start, NULL, nb, false, 0.0f, &ncorrect);
    }
    if (accuracy != NULL) {
        *accuracy = n > 0 ? (double)ncorrect / (double)n : 0.0;
    }
    return n > 0 ? loss / (double)n : 0.0;
}
