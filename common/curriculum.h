// SPDX-License-Identifier: MIT
// curriculum - orders examples by difficulty (Bengio et al. 2009), easy
// first, optionally mixed with uniform samples (Zaremba and Sutskever).
#ifndef DS_CURRICULUM_H
#define DS_CURRICULUM_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"

// ds_curriculum_order writes to order[0..n) the indices of loss[0..n)
// sorted by loss, ascending, ties kept in index order (a stable sort).
// Returns 0 or -ENOMEM.
int ds_curriculum_order(const float *loss, uint32_t *order, size_t n);

// ds_curriculum_mix applies the combined strategy: every position of
// order[0..n), with probability p, takes an index drawn uniformly from
// 0..n-1 instead. Returns how many positions were replaced.
size_t ds_curriculum_mix(uint32_t *order, size_t n, double p, ds_rng_t *r);

#endif
