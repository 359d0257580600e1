// SPDX-License-Identifier: MIT
// optim - update rules over float32 arrays, shared by servers and workers.
#include "common/optim.h"

#include <math.h>

void
ds_sgd_apply(float *restrict w, const float *restrict g, size_t n, float lr)
{
    for (size_t i = 0; i < n; i++) {
        w[i] -= lr * g[i];
    }
}

int
ds_vec_finite(const float *g, size_t n)
{
    // Summing g*0 turns any NaN or Inf into NaN without a branch per value,
    // so the loop vectorizes; finite inputs sum to exactly 0.
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++) {
        acc += g[i] * 0.0f;
    }
    return acc == 0.0f;
}
