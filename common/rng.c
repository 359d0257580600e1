// SPDX-License-Identifier: MIT
// rng - small seeded random numbers: xoshiro256** seeded by splitmix64.
#include "common/rng.h"

#include <math.h>

#define S_GAMMA 0x9e3779b97f4a7c15ULL // splitmix64 increment (golden ratio)
#define S_TWO_PI 6.283185307179586476925286766559

// s_mix64 is the splitmix64 output function: a bijection on 64 bits that
// maps 0 to 0 and spreads every input bit over the whole word.
static uint64_t
s_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// s_splitmix64 advances the splitmix64 state *x and returns its next output.
static uint64_t
s_splitmix64(uint64_t *x)
{
    *x += S_GAMMA;
    return s_mix64(*x);
}

static uint64_t
s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

// s_unit53 maps the top 53 bits of v to a double in [0, 1).
static double
s_unit53(uint64_t v)
{
    return (double)(v >> 11) * 0x1.0p-53;
}

// s_box_muller turns two uniforms into one standard normal deviate. u1 must
// lie in (0, 1] so that the logarithm stays finite.
static double
s_box_muller(double u1, double u2)
{
    return sqrt(-2.0 * log(u1)) * cos(S_TWO_PI * u2);
}

void
ds_rng_seed(ds_rng_t *r, uint64_t seed, uint64_t stream)
{
    // Stream 0 is the reference seeding: the state is the first four
    // splitmix64 outputs from seed. Other streams XOR in four outputs of a
    // second splitmix64 chain that starts at a hash of the stream id, so a
    // (seed, stream) pair fills all 256 bits of state and two pairs share a
    // state only by a 256-bit coincidence.
    uint64_t x = seed;
    uint64_t y = s_mix64(stream ^ 0x6a09e667f3bcc909ULL);

    for (int i = 0; i < 4; i++) {
        r->s[i] = s_splitmix64(&x);
        if (stream != 0) {
            r->s[i] ^= s_splitmix64(&y);
        }
    }
    // xoshiro256** is stuck at an all-zero state; no seed is known to give
    // one, but the check costs nothing.
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) {
        r->s[0] = S_GAMMA;
    }
}

uint64_t
ds_rng_next(ds_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t  result = s_rotl(s[1] * 5, 7) * 9;
    uint64_t  t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return result;
}

double
ds_rng_uniform(ds_rng_t *r)
{
    return s_unit53(ds_rng_next(r));
}

uint64_t
ds_rng_below(ds_rng_t *r, uint64_t n)
{
    if (n == 0) {
        return 0;
    }
    // Lemire's multiply-and-reject: the high word of x*n is uniform over
    // [0, n) once the low words that would over-represent some results
    // (fewer than 2^64 mod n of them) are rejected. The division runs only
    // when a low word falls under n, which is rare for small n.
    unsigned __int128 m = (unsigned __int128)ds_rng_next(r) * n;
    uint64_t          low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = -n % n;
        while (low < threshold) {
            m = (unsigned __int128)ds_rng_next(r) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double
ds_rng_normal(ds_rng_t *r)
{
    // Box-Muller with the second deviate thrown away: the state has no slot
    // to keep it, and two draws per deviate keep the stream position simple.
    double u1 = 1.0 - ds_rng_uniform(r);
    double u2 = ds_rng_uniform(r);
    return s_box_muller(u1, u2);
}

void
ds_rng_shuffle(ds_rng_t *r, uint32_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t   j = (size_t)ds_rng_below(r, i);
        uint32_t tmp = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = tmp;
    }
}

void
ds_rng_epoch_order(uint64_t seed, uint64_t stream, uint32_t epoch,
                   uint32_t *idx, size_t n)
{
    ds_rng_t r;
    ds_rng_seed(&r, seed, stream ^ ((uint64_t)epoch << 32));
    for (size_t i = 0; i < n; i++) {
        idx[i] = (uint32_t)i;
    }
    ds_rng_shuffle(&r, idx, n);
}

double
ds_rng_key_normal(uint64_t seed, uint64_t key)
{
    // The key is hashed before it meets the seed, so that consecutive keys
    // start far-apart splitmix64 chains; for a fixed seed, distinct keys
    // give distinct starting states because s_mix64 is a bijection.
    uint64_t x = seed ^ s_mix64(key + S_GAMMA);
    uint64_t a = s_splitmix64(&x);
    uint64_t b = s_splitmix64(&x);
    double   u1 = ((double)(a >> 11) + 1.0) * 0x1.0p-53; // (0, 1]
    return s_box_muller(u1, s_unit53(b));
}
