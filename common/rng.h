// SPDX-License-Identifier: MIT
// rng - small seeded random numbers: xoshiro256** seeded by splitmix64.
#ifndef DS_RNG_H
#define DS_RNG_H

#include <stddef.h>
#include <stdint.h>

// ds_rng_t is a xoshiro256** generator. Not thread-safe: one per thread.
typedef struct {
    uint64_t s[4]; // generator state
} ds_rng_t;

// ds_rng_seed seeds r from seed (expanded with splitmix64) and a stream id,
// so that (seed, stream) pairs give independent sequences.
void ds_rng_seed(ds_rng_t *r, uint64_t seed, uint64_t stream);

// ds_rng_next returns 64 uniformly random bits.
uint64_t ds_rng_next(ds_rng_t *r);

// ds_rng_uniform returns a double uniform in [0, 1).
double ds_rng_uniform(ds_rng_t *r);

// ds_rng_below returns an integer uniform in [0, n), n > 0, without bias.
uint64_t ds_rng_below(ds_rng_t *r, uint64_t n);

// ds_rng_normal returns a standard normal deviate.
double ds_rng_normal(ds_rng_t *r);

// ds_rng_shuffle permutes idx[0..n) uniformly (Fisher-Yates).
void ds_rng_shuffle(ds_rng_t *r, uint32_t *idx, size_t n);

// ds_rng_epoch_order writes the visiting order of epoch `epoch` (1-based)
// of n examples to idx: the identity permuted by ds_rng_shuffle with a
// generator seeded ds_rng_seed(seed, stream ^ (epoch << 32)). Every epoch,
// the first included, gets its own order, and it depends only on (seed,
// stream, epoch), so a restarted worker recomputes it without replaying.
void ds_rng_epoch_order(uint64_t seed, uint64_t stream, uint32_t epoch,
                        uint32_t *idx, size_t n);

// ds_rng_key_normal returns a standard normal deviate that depends only on
// (seed, key): the same key gets the same value whichever server holds it.
double ds_rng_key_normal(uint64_t seed, uint64_t key);

#endif
