// SPDX-License-Identifier: MIT
// noise - annealed Gaussian gradient noise (Neelakantan et al. 2015).
#include "common/noise.h"

#include <math.h>

double
ds_noise_sigma(double eta, double gamma, uint64_t t)
{
    return sqrt(eta / pow(1.0 + (double)t, gamma));
}

void
ds_noise_add(ds_rng_t *r, float *g, size_t n, double sigma)
{
    for (size_t i = 0; i < n; i++) {
        g[i] += (float)(sigma * ds_rng_normal(r));
    }
}
