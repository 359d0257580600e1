// SPDX-License-Identifier: MIT
// dtadagrad - delay-tolerant AdaGrad (AdaptiveRevision, McMahan and Streeter
// 2014) on the server, protocol A, plus the AsyncAdaGrad baseline.
#ifndef DS_DTADAGRAD_H
#define DS_DTADAGRAD_H

#include <stddef.h>

// ds_dtada_t is the AdaptiveRevision state of n coordinates served to
// nworkers workers (ALGORITHMS.md section 10, protocol A: the server
// remembers the gradient sum each worker saw at its last read). The
// parameters themselves live outside, in the server's range array. The
// caller embeds it; ds_dtada_init allocates the arrays, ds_dtada_fini frees
// them. Not thread-safe: one shard thread owns it.
typedef struct {
    float   *gbar;     // n: running sum of every gradient applied; owned
    float   *z;        // n: delay-aware sum of squares, may decrease; owned
    float   *zp;       // n: z', the largest z so far (>= z0); owned
    float   *gold;     // nworkers * n: gbar at each worker's last read; owned
    size_t   n;        // coordinates covered
    unsigned nworkers; // workers with a snapshot row (0: AsyncAdaGrad only)
} ds_dtada_t;

// ds_dtada_check validates the settings of the rule: the learning rate
// alpha ("[optimizer] lr") must be > 0 and finite; beta ("[optimizer]
// dt_beta") and z0 ("[optimizer] dt_z0") must be >= 0 and finite, and at
// least one of them > 0, so that the learning rate alpha / (beta + sqrt(z'))
// is always finite. Returns 0 or -EINVAL with err naming the setting, e.g.
// "[optimizer] dt_beta: must be > 0 when dt_z0 = 0 ...". err may be NULL.
int ds_dtada_check(double alpha, double beta, double z0, char *err,
                   size_t errlen);

// ds_dtada_init allocates the state of n coordinates for nworkers workers:
// gbar = 0, z = z' = z0, and every worker's snapshot 0 (so a worker that
// updates before its first read is charged with every update since the
// start). nworkers may be 0 when only ds_dtada_async_update is used.
// Returns 0 or -ENOMEM (nothing allocated; also when nworkers * n floats
// overflow size_t). Free with ds_dtada_fini.
int ds_dtada_init(ds_dtada_t *s, size_t n, unsigned nworkers, double z0);

// ds_dtada_fini frees the arrays of s and zeroes it; idempotent.
void ds_dtada_fini(ds_dtada_t *s);

// ds_dtada_read records that worker has just read coordinates [off, off+n):
// it copies gbar into the worker's snapshot row there. Call it when the
// server answers the pull, with the x it sends. worker < s->nworkers and
// off + n <= s->n (asserted: both are the caller's bookkeeping).
void ds_dtada_read(ds_dtada_t *s, unsigned worker, size_t off, size_t n);

// ds_dtada_update applies worker's gradient g[0..n) to x[0..n), the
// parameters of coordinates [off, off+n), with learning rate
// eta(z') = alpha / (beta + sqrt(z')) (beta = 0 is the paper's form), per
// coordinate exactly as ALGORITHMS.md section 10 writes it:
//   gbck = gbar - gold[worker]; eta_old = eta(z');
//   z += g*g + 2*g*gbck; z' = max(z', z); eta = eta(z');
//   x += -eta*g + (eta_old - eta)*gbck; gbar += g.
// The revision term is exactly 0 where gbck == 0, and the step exactly 0
// where g == 0, even where eta_old or eta is infinite (beta = z' = 0, which
// ds_dtada_check refuses), so they never give inf * 0 = NaN. The worker's
// snapshot is kept: a second push before the next read is charged with the
// first, which its gradient did not see either. x and g must not overlap
// each other or the state; g is not modified; g must be finite (the
// caller's check). The arithmetic is float32, like wormhole's.
void ds_dtada_update(ds_dtada_t *s, unsigned worker, size_t             off,
                     float *restrict x, const float *restrict g, size_t n,
                     double alpha, double beta);

// ds_dtada_async_update is the AsyncAdaGrad baseline, which ignores delays:
// z += g*g; x -= alpha / (beta + sqrt(z)) * g over coordinates [off, off+n),
// using z (and keeping z' = z) of s; gbar and the snapshots are unused. With
// no delay (every worker reads right before it pushes) ds_dtada_update
// computes the same x. The step is exactly 0 where g == 0.
void ds_dtada_async_update(ds_dtada_t *s, size_t off, float *restrict x,
                           const float *restrict g, size_t n, double alpha,
                           double beta);

// ds_dtada_eta returns the learning rate now in force for coordinate i,
// alpha / (beta + sqrt(z'_i)), computed as the updates compute it.
float ds_dtada_eta(const ds_dtada_t *s, size_t i, double alpha, double beta);

#endif
