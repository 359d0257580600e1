// SPDX-License-Identifier: MIT
// logreg - sparse binary logistic regression over hashed feature keys: the
// keys a mini-batch touches, its loss and gradient at those keys only.
#include "common/logreg.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#define S_POS 512 // positions of a row's keys remembered between passes

// s_softplus returns log(1 + e^z) without overflow: for z > 0 it is
// z + log(1 + e^-z), and e^-z <= 1 there.
static double
s_softplus(double z)
{
    return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

// s_sigmoid returns 1 / (1 + e^-z), exponentiating only non-positive
// numbers.
static double
s_sigmoid(double z)
{
    if (z >= 0) {
        return 1.0 / (1.0 + exp(-z));
    }
    double e = exp(z);
    return e / (1.0 + e);
}

static int
s_key_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

// s_find returns the index of key in keys[lo..n), which is sorted, or
// SIZE_MAX when it is absent.
static size_t
s_find(const uint64_t *keys, size_t lo, size_t n, uint64_t key)
{
    size_t hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (keys[mid] < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n && keys[lo] == key ? lo : SIZE_MAX;
}

static size_t
s_row(const uint32_t *idx, size_t k)
{
    return idx != NULL ? idx[k] : k;
}

int
ds_logreg_batch_keys(const ds_sparse_t *d, const uint32_t *idx, size_t n,
                     uint64_t **keys, size_t *cap, size_t *nkeys)
{
    size_t m = 1; // the bias key, then every entry of the batch
    for (size_t k = 0; k < n; k++) {
        size_t i = s_row(idx, k);
        m += d->offsets[i + 1] - d->offsets[i];
    }
    if (m > *cap) {
        if (m > SIZE_MAX / sizeof **keys) {
            return -ENOMEM;
        }
        uint64_t *p = realloc(*keys, m * sizeof **keys);
        if (p == NULL) {
            return -ENOMEM;
        }
        *keys = p;
        *cap = m;
    }
    uint64_t *out = *keys;
    size_t    j = 0;
    out[j++] = DS_LOGREG_BIAS_KEY;
    for (size_t k = 0; k < n; k++) {
        size_t i = s_row(idx, k);
        for (size_t e = d->offsets[i]; e < d->offsets[i + 1]; e++) {
            out[j++] = d->keys[e];
        }
    }
    qsort(out, j, sizeof *out, s_key_cmp);
    size_t u = 0;
    for (size_t e = 0; e < j; e++) {
        if (u == 0 || out[u - 1] != out[e]) {
            out[u++] = out[e];
        }
    }
    *nkeys = u;
    return 0;
}

double
ds_logreg_grad(const ds_sparse_t *d, const uint32_t *idx, size_t n,
               const uint64_t *keys, const float *w, size_t nkeys, float *grad,
               size_t *correct)
{
    if (n == 0 || nkeys == 0 || keys[0] != DS_LOGREG_BIAS_KEY) {
        return NAN;
    }
    if (grad != NULL) {
        for (size_t j = 0; j < nkeys; j++) {
            grad[j] = 0.0f;
        }
    }
    double loss = 0.0;
    double gbias = 0.0;
    size_t right = 0;
    size_t pos[S_POS]; // where the first S_POS keys of the row are in keys
    for (size_t k = 0; k < n; k++) {
        size_t i = s_row(idx, k);
        size_t lo = d->offsets[i], hi = d->offsets[i + 1];
        double z = w[0];
        size_t at = 1; // a row's keys increase, so each search starts here
        for (size_t e = lo; e < hi; e++) {
            size_t j = s_find(keys, at, nkeys, d->keys[e]);
            if (j == SIZE_MAX) {
                return NAN;
            }
            if (e - lo < S_POS) {
                pos[e - lo] = j;
            }
            at = j + 1;
            z += (double)w[j] * d->vals[e];
        }
        int y = d->y[i];
        loss += s_softplus(z) - y * z;
        right += (z > 0) == (y == 1);
        if (grad == NULL) {
            continue;
        }
        // d(loss_i)/dz = sigmoid(z) - y, spread over the row's features;
        // the 1/n of the mean is folded in once per row.
        double r = (s_sigmoid(z) - y) / (double)n;
        gbias += r;
        at = 1;
        for (size_t e = lo; e < hi; e++) {
            size_t j = e - lo < S_POS ? pos[e - lo]
                                      : s_find(keys, at, nkeys, d->keys[e]);
            at = j + 1;
            grad[j] += (float)(r * d->vals[e]);
        }
    }
    if (grad != NULL) {
        grad[0] = (float)gbias;
    }
    if (correct != NULL) {
        *correct = right;
    }
    return loss / (double)n;
}

double
ds_logreg_eval(const ds_sparse_t *d, const float *w, uint64_t nw,
               size_t *correct)
{
    if (d->n == 0 || nw == 0) {
        return NAN;
    }
    double loss = 0.0;
    size_t right = 0;
    for (size_t i = 0; i < d->n; i++) {
        double z = w[DS_LOGREG_BIAS_KEY];
        for (size_t e = d->offsets[i]; e < d->offsets[i + 1]; e++) {
            if (d->keys[e] >= nw) {
                return NAN;
            }
            z += (double)w[d->keys[e]] * d->vals[e];
        }
        int y = d->y[i];
        loss += s_softplus(z) - y * z;
        right += (z > 0) == (y == 1);
    }
    if (correct != NULL) {
        *correct = right;
    }
    return loss / (double)d->n;
}
