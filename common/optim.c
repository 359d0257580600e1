// SPDX-License-Identifier: MIT
// optim - update rules over float32 arrays, shared by servers and workers.
#include "common/optim.h"

#include <stdint.h>
#include <string.h>

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
    // A float is NaN or Inf exactly when its exponent bits are all ones. An
    // integer OR-reduction has no rounding, so the loop vectorizes.
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &g[i], sizeof u);
        bad |= (~u & 0x7f800000u) == 0;
    }
    return bad == 0;
}
