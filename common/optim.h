// SPDX-License-Identifier: MIT
// optim - update rules over float32 arrays, shared by servers and workers.
#ifndef DS_OPTIM_H
#define DS_OPTIM_H

#include <stddef.h>

// ds_sgd_apply does w[i] -= lr * g[i] for i < n. w and g must not overlap.
void ds_sgd_apply(float *restrict w, const float *restrict g, size_t n,
                  float lr);

// ds_vec_finite returns 1 if every g[i], i < n, is finite, else 0.
int ds_vec_finite(const float *g, size_t n);

#endif
