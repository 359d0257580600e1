// SPDX-License-Identifier: MIT
// easgd - elastic averaging SGD and EAMSGD: one straight loop per piece, so
// that gcc vectorizes each at -O2 -fvect-cost-model=dynamic.
#include "common/easgd.h"

void
ds_easgd_elastic(float *restrict x, const float *restrict center,
                 float *restrict d, size_t n, float alpha)
{
    for (size_t i = 0; i < n; i++) {
        float di = alpha * (x[i] - center[i]);
        d[i] = di;
        x[i] -= di;
    }
}

void
ds_easgd_center_add(float *restrict center, const float *restrict d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        center[i] += d[i];
    }
}

void
ds_easgd_sgd_step(float *restrict x, const float *restrict g, size_t n,
                  float eta)
{
    for (size_t i = 0; i < n; i++) {
        x[i] -= eta * g[i];
    }
}

void
ds_eamsgd_lookahead(float *restrict y, const float *restrict x,
                    const float *restrict v, size_t n, float delta)
{
    for (size_t i = 0; i < n; i++) {
        y[i] = x[i] + delta * v[i];
    }
}

void
ds_eamsgd_step(float *restrict x, float *restrict v, const float *restrict g,
               size_t n, float eta, float delta)
{
    for (size_t i = 0; i < n; i++) {
        float vi = delta * v[i] - eta * g[i];
        v[i] = vi;
        x[i] += vi;
    }
}
