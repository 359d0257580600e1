// SPDX-License-Identifier: MIT
// noise - annealed Gaussian gradient noise (Neelakantan et al. 2015).
#ifndef DS_NOISE_H
#define DS_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"

// ds_noise_sigma returns the standard deviation of the noise at step t:
// the square root of the variance eta / (1 + t)^gamma.
double ds_noise_sigma(double eta, double gamma, uint64_t t);

// ds_noise_add adds independent N(0, sigma^2) draws from r to g[0..n).
void ds_noise_add(ds_rng_t *r, float *g, size_t n, double sigma);

#endif
