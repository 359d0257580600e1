// SPDX-License-Identifier: MIT
// dtadagrad - delay-tolerant AdaGrad (AdaptiveRevision) on the server.
//
// Each update is one straight loop over restrict-qualified arrays with the
// two data-dependent cases (g == 0, gbck == 0) written as bit-mask selects
// of values computed unconditionally, so gcc vectorizes it at -O2
// -fvect-cost-model=dynamic -fno-math-errno. The select is exact: where it
// picks 0 the product, finite, inf or NaN, is discarded.
#include "common/dtadagrad.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ALIGN 64 // bytes; state arrays start on a cache line

// s_unless_zero returns v where c != 0 and +0 where c == 0 (either sign),
// exactly, whatever v is (inf or NaN included). It is a bit mask rather than
// c != 0 ? v : 0, because under gcc's default -ftrapping-math that ternary
// is a branch around the product and stops the loop from vectorizing.
static inline float
s_unless_zero(float v, float c)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits &= -(uint32_t)(c != 0.0f);
    memcpy(&v, &bits, sizeof v);
    return v;
}

// s_max returns max(a, b): a where a > b, else b. It is a bit-mask select
// for the same reason: a > b ? a : b on floats is a branch there too.
static inline float
s_max(float a, float b)
{
    uint32_t ab, bb;
    memcpy(&ab, &a, sizeof ab);
    memcpy(&bb, &b, sizeof bb);
    uint32_t m = -(uint32_t)(a > b);
    uint32_t r = (ab & m) | (bb & ~m);
    memcpy(&a, &r, sizeof a);
    return a;
}

// s_fail formats "[optimizer] <key>: <why>" into err and returns -EINVAL.
__attribute__((format(printf, 4, 5))) static int
s_fail(char *err, size_t errlen, const char *key, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        int n = snprintf(err, errlen, "[optimizer] %s: ", key);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

int
ds_dtada_check(double alpha, double beta, double z0, char *err, size_t errlen)
{
    if (!(isfinite(alpha) && alpha > 0)) {
        return s_fail(err, errlen, "lr", "must be > 0 and finite (got %g)",
                      alpha);
    }
    if (!(isfinite(beta) && beta >= 0)) {
        return s_fail(err, errlen, "dt_beta",
                      "must be >= 0 and finite (got %g)", beta);
    }
    if (!(isfinite(z0) && z0 >= 0)) {
        return s_fail(err, errlen, "dt_z0", "must be >= 0 and finite (got %g)",
                      z0);
    }
    if (beta == 0 && z0 == 0) {
        return s_fail(err, errlen, "dt_beta",
                      "must be > 0 when [optimizer] dt_z0 = 0, or the first "
                      "learning rate lr / (dt_beta + sqrt(dt_z0)) is "
                      "infinite; set dt_beta > 0 or dt_z0 > 0");
    }
    return 0;
}

// s_alloc returns count floats on a cache line, or NULL. count may be 0.
static float *
s_alloc(size_t count)
{
    if (count > (SIZE_MAX - S_ALIGN) / sizeof(float)) {
        return NULL;
    }
    // aligned_alloc wants a multiple of the alignment, and never 0 bytes.
    size_t bytes = (count * sizeof(float) + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
    return aligned_alloc(S_ALIGN, bytes == 0 ? S_ALIGN : bytes);
}

int
ds_dtada_init(ds_dtada_t *s, size_t n, unsigned nworkers, double z0)
{
    memset(s, 0, sizeof *s);
    if (nworkers > 0 && n > SIZE_MAX / sizeof(float) / nworkers) {
        return -ENOMEM;
    }
    s->gbar = s_alloc(n);
    s->z = s_alloc(n);
    s->zp = s_alloc(n);
    s->gold = s_alloc((size_t)nworkers * n);
    if (s->gbar == NULL || s->z == NULL || s->zp == NULL || s->gold == NULL) {
        ds_dtada_fini(s);
        return -ENOMEM;
    }
    float init = (float)z0;
    for (size_t i = 0; i < n; i++) {
        s->gbar[i] = 0.0f;
        s->z[i] = init;
        s->zp[i] = init;
    }
    memset(s->gold, 0, (size_t)nworkers * n * sizeof(float));
    s->n = n;
    s->nworkers = nworkers;
    return 0;
}

void
ds_dtada_fini(ds_dtada_t *s)
{
    free(s->gbar);
    free(s->z);
    free(s->zp);
    free(s->gold);
    memset(s, 0, sizeof *s);
}

void
ds_dtada_read(ds_dtada_t *s, unsigned worker, size_t off, size_t n)
{
    assert(worker < s->nworkers);
    assert(off <= s->n && n <= s->n - off);
    memcpy(s->gold + (size_t)worker * s->n + off, s->gbar + off,
           n * sizeof(float));
}

// s_revise is the AdaptiveRevision loop over n coordinates whose state
// arrays start at gbar, z, zp and gold (already offset).
static void
s_revise(float *restrict x, const float *restrict g, float *restrict gbar,
         float *restrict z, float *restrict zp, const float *restrict gold,
         size_t n, float a, float b)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float bck = gbar[i] - gold[i];
        float eta_old = a / (b + sqrtf(zp[i]));
        float zi = z[i] + gi * gi + 2.0f * gi * bck;
        float zpi = s_max(zi, zp[i]);
        float eta = a / (b + sqrtf(zpi));
        float step = s_unless_zero(eta * gi, gi);
        float rev = s_unless_zero((eta_old - eta) * bck, bck);
        x[i] = x[i] - step + rev;
        z[i] = zi;
        zp[i] = zpi;
        gbar[i] += gi;
    }
}

void
ds_dtada_update(ds_dtada_t *s, unsigned worker, size_t off, float *restrict x,
                const float *restrict g, size_t n, double alpha, double beta)
{
    assert(worker < s->nworkers);
    assert(off <= s->n && n <= s->n - off);
    s_revise(x, g, s->gbar + off, s->z + off, s->zp + off,
             s->gold + (size_t)worker * s->n + off, n, (float)alpha,
             (float)beta);
}

// s_async is the AsyncAdaGrad loop over already offset z and zp.
static void
s_async(float *restrict x, const float *restrict g, float *restrict z,
        float *restrict zp, size_t n, float a, float b)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float zi = z[i] + gi * gi;
        float step = s_unless_zero(a / (b + sqrtf(zi)) * gi, gi);
        x[i] = x[i] - step;
        z[i] = zi;
        zp[i] = zi;
    }
}

void
ds_dtada_async_update(ds_dtada_t *s, size_t           off, float *restrict x,
                      const float *restrict g, size_t n, double alpha,
                      double beta)
{
    assert(off <= s->n && n <= s->n - off);
    s_async(x, g, s->z + off, s->zp + off, n, (float)alpha, (float)beta);
}

float
ds_dtada_eta(const ds_dtada_t *s, size_t i, double alpha, double beta)
{
    assert(i < s->n);
    return (float)alpha / ((float)beta + sqrtf(s->zp[i]));
}
