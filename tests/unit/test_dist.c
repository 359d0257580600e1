// SPDX-License-Identifier: MIT
// test_dist - the distributed schemes' maths: AdaptiveRevision and
// AsyncAdaGrad (dtadagrad), EASGD and EAMSGD (easgd), and the SSP/BSP/ASP
// read predicate (ssp), against ALGORITHMS.md sections 10, 11 and 12.
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dtadagrad.h"
#include "common/easgd.h"
#include "common/optim.h"
#include "common/ssp.h"
#include "tests/unit/suites.h"

// s_near checks |got - want| <= 1e-6 + 1e-5 * |want|, ALGORITHMS.md's
// float32 tolerance.
static void
s_near(const char *what, int step, double got, double want)
{
    ck_assert_msg(fabs(got - want) <= 1e-6 + 1e-5 * fabs(want),
                  "%s, step %d: got %.9g want %.9g", what, step, got, want);
}

// s_next is splitmix64: the tests' own deterministic generator.
static uint64_t
s_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

// s_uniform returns a float in [-1, 1), or exactly 0 one time in eight, so
// that the g == 0 paths run too.
static float
s_uniform(uint64_t *state)
{
    uint64_t r = s_next(state);
    if ((r & 7) == 0) {
        return 0.0f;
    }
    return (float)((double)(r >> 11) * 0x1p-52 - 1.0);
}

// s_below returns a number in [0, n).
static size_t
s_below(uint64_t *state, size_t n)
{
    return (size_t)(s_next(state) % n);
}

// ---- dtadagrad ----

// One event of ALGORITHMS.md section 10's trace: a read ('R') or an update
// ('U') by worker w (A = 0 ... D = 3) with gradient g.
typedef struct {
    char  op; // 'R' or 'U'
    int   w;  // worker
    float g;  // gradient of an update
} s_event;

static const s_event s_trace[10] = {
    {'R', 0, 0}, {'R', 1, 0},     {'U', 0, 1.0f}, {'R', 2, 0}, {'U', 1, 0.5f},
    {'R', 3, 0}, {'U', 2, -0.8f}, {'U', 3, 0.6f}, {'R', 0, 0}, {'U', 0, 2.0f},
};

// The state after each of the trace's five updates.
typedef struct {
    double gbck; // backlog the update saw
    double z;    // z after it
    double zp;   // z' after it
    double eta;  // learning rate after it
    double x;    // parameter after it
} s_after;

// AdaptiveRevision alpha=0.5 beta=1 z0=z'0=0 x0=0.
static const s_after s_beta1[5] = {
    {0, 1, 1, 0.25, -0.25},
    {1, 2.25, 2.25, 0.2, -0.3},
    {0.5, 2.09, 2.25, 0.2, -0.14},
    {-0.8, 1.49, 2.25, 0.2, -0.26},
    {0, 5.49, 5.49, 0.149562907, -0.559125814},
};
static const double s_beta1_async[5] = {-0.25, -0.368033989, -0.199596816,
                                        -0.319596816, -0.605311102};

// AdaptiveRevision alpha=0.5 beta=0 z0=z'0=1 x0=0.
static const s_after s_z01[5] = {
    {0, 2, 2, 0.353553391, -0.353553391},
    {1, 3.25, 3.25, 0.277350098, -0.416025147},
    {0.5, 3.09, 3.25, 0.277350098, -0.194145069},
    {-0.8, 2.49, 3.25, 0.277350098, -0.360555128},
    {0, 6.49, 6.49, 0.196267168, -0.753089464},
};
static const double s_z01_async[5] = {-0.353553391, -0.520220057, -0.28492594,
                                      -0.451335998, -0.822726675};

// s_run_trace plays the trace on one coordinate, checking gbck, z, z', eta
// and x after every update, then plays it through AsyncAdaGrad.
static void
s_run_trace(const char *what, double alpha, double beta, double z0,
            const s_after want[5], const double want_async[5])
{
    char err[200];
    ck_assert_msg(ds_dtada_check(alpha, beta, z0, err, sizeof err) == 0,
                  "%s: %s", what, err);
    ds_dtada_t s;
    ck_assert_int_eq(ds_dtada_init(&s, 1, 4, z0), 0);
    s_near(what, 0, ds_dtada_eta(&s, 0, alpha, beta),
           alpha / (beta + sqrt(z0)));
    float x = 0.0f;
    int   k = 0;
    for (int e = 0; e < 10; e++) {
        const s_event *ev = &s_trace[e];
        if (ev->op == 'R') {
            ds_dtada_read(&s, (unsigned)ev->w, 0, 1);
            continue;
        }
        float gbck = s.gbar[0] - s.gold[ev->w];
        s_near(what, k + 1, gbck, want[k].gbck);
        ds_dtada_update(&s, (unsigned)ev->w, 0, &x, &ev->g, 1, alpha, beta);
        s_near(what, k + 1, s.z[0], want[k].z);
        s_near(what, k + 1, s.zp[0], want[k].zp);
        s_near(what, k + 1, ds_dtada_eta(&s, 0, alpha, beta), want[k].eta);
        s_near(what, k + 1, x, want[k].x);
        k++;
    }
    ck_assert_int_eq(k, 5);
    ds_dtada_fini(&s);

    // AsyncAdaGrad on the same trace: the reads do not matter.
    ck_assert_int_eq(ds_dtada_init(&s, 1, 0, z0), 0);
    x = 0.0f;
    k = 0;
    for (int e = 0; e < 10; e++) {
        if (s_trace[e].op == 'U') {
            ds_dtada_async_update(&s, 0, &x, &s_trace[e].g, 1, alpha, beta);
            s_near(what, k + 1, x, want_async[k]);
            k++;
        }
    }
    ds_dtada_fini(&s);
    ds_dtada_fini(&s); // idempotent
}

// ALGORITHMS.md section 10, first run: one revision (update B), the max
// rule (C and D) and a plain increase (the last A). Hand check of B:
// eta_old = 0.5 / (1 + 1) = 0.25; z = 1 + 0.25 + 2 * 0.5 * 1 = 2.25;
// eta = 0.5 / 2.5 = 0.2; x = -0.25 - 0.2 * 0.5 + (0.25 - 0.2) * 1 = -0.3.
START_TEST(test_dtada_trace_wormhole_form)
{
    s_run_trace("alpha=0.5 beta=1 z0=0", 0.5, 1.0, 0.0, s_beta1, s_beta1_async);
}
END_TEST

// ALGORITHMS.md section 10, second run: the paper form (beta = 0, z0 = 1).
START_TEST(test_dtada_trace_paper_form)
{
    s_run_trace("alpha=0.5 beta=0 z0=1", 0.5, 0.0, 1.0, s_z01, s_z01_async);
}
END_TEST

// The trace on 13 coordinates at once, through read and update ranges that
// start at different offsets. In the paper form the step is invariant when
// every gradient is scaled by k and z0 by k^2; with k a power of two every
// float operation scales exactly, so each coordinate must reproduce the
// unscaled one bit for bit, and the vector to tolerance.
START_TEST(test_dtada_trace_many_coordinates)
{
    enum { N = 13 };
    ds_dtada_t s;
    ck_assert_int_eq(ds_dtada_init(&s, N + 3, 4, 1.0), 0);
    float k[N];
    for (int j = 0; j < N; j++) {
        k[j] = ldexpf(1.0f, j % 7 - 3); // k[3] = 1
        s.z[3 + j] = s.zp[3 + j] = k[j] * k[j];
    }
    float x[N] = {0};
    int   u = 0;
    for (int e = 0; e < 10; e++) {
        const s_event *ev = &s_trace[e];
        if (ev->op == 'R') {
            // Two overlapping reads cover the range, like two pulls.
            ds_dtada_read(&s, (unsigned)ev->w, 3, 8);
            ds_dtada_read(&s, (unsigned)ev->w, 5, N - 2);
            continue;
        }
        float g[N];
        for (int j = 0; j < N; j++) {
            g[j] = ev->g * k[j];
        }
        // The push arrives as two pieces, split where the vector loop
        // would have a tail.
        ds_dtada_update(&s, (unsigned)ev->w, 3, x, g, 6, 0.5, 0.0);
        ds_dtada_update(&s, (unsigned)ev->w, 9, x + 6, g + 6, N - 6, 0.5, 0.0);
        for (int j = 0; j < N; j++) {
            ck_assert_msg(x[j] == x[3],
                          "update %d, coordinate %d: %.9g != %.9g", u + 1, j,
                          x[j], x[3]);
            ck_assert(s.z[3 + j] == s.z[3 + 3] * k[j] * k[j]);
        }
        s_near("13 coordinates", u + 1, x[0], s_z01[u].x);
        u++;
    }
    // Coordinates outside the pushes keep their initial state.
    for (int j = 0; j < 3; j++) {
        ck_assert(s.gbar[j] == 0.0f && s.z[j] == 1.0f && s.zp[j] == 1.0f);
    }
    ds_dtada_fini(&s);
}
END_TEST

// A worker that pushes without a read is charged with every update since
// its last read, or since the start, and its own earlier push counts too:
// its gradient did not see it either.
START_TEST(test_dtada_push_without_read)
{
    ds_dtada_t s;
    ck_assert_int_eq(ds_dtada_init(&s, 1, 2, 0.0), 0);
    float x = 0.0f, g = 1.0f;
    ds_dtada_read(&s, 1, 0, 1);
    ds_dtada_update(&s, 1, 0, &x, &g, 1, 0.5, 1.0);
    s_near("first push", 1, x, -0.25);
    // Worker 0 never read: backlog 1, exactly update B of the trace.
    g = 0.5f;
    ds_dtada_update(&s, 0, 0, &x, &g, 1, 0.5, 1.0);
    s_near("no read", 2, s.z[0], 2.25);
    s_near("no read", 2, x, -0.3);
    // Again without a read: backlog 1 + 0.5 = 1.5, so
    // z = 2.25 + 0.25 + 2 * 0.5 * 1.5 = 4, eta = 0.5 / 3,
    // x = -0.3 - 0.5 / 6 + (0.2 - 0.5 / 3) * 1.5.
    ds_dtada_update(&s, 0, 0, &x, &g, 1, 0.5, 1.0);
    s_near("second push", 3, s.z[0], 4.0);
    s_near("second push", 3, s.zp[0], 4.0);
    s_near("second push", 3, x, -0.3 - 0.5 / 6 + (0.2 - 0.5 / 3) * 1.5);
    ds_dtada_fini(&s);
}
END_TEST

// With no delay, every worker reading right before its push, every backlog
// is 0 and AdaptiveRevision is AsyncAdaGrad: same x, z and z' after every
// step, compared with == (bit for bit up to the sign of zero), over random
// workers, ranges and gradients (an eighth of them exactly 0).
START_TEST(test_dtada_no_delay_is_async)
{
    enum { N = 37, P = 3, STEPS = 3000 };
    const double forms[2][3] = {{0.1, 1.0, 0.0}, {0.05, 0.0, 0.5}};
    uint64_t     rng = 42;
    for (int f = 0; f < 2; f++) {
        double     alpha = forms[f][0], beta = forms[f][1], z0 = forms[f][2];
        ds_dtada_t ar, as;
        ck_assert_int_eq(ds_dtada_init(&ar, N, P, z0), 0);
        ck_assert_int_eq(ds_dtada_init(&as, N, 0, z0), 0);
        float xr[N], xa[N];
        for (int i = 0; i < N; i++) {
            xr[i] = xa[i] = s_uniform(&rng);
        }
        for (int t = 0; t < STEPS; t++) {
            unsigned w = (unsigned)s_below(&rng, P);
            size_t   off = s_below(&rng, N);
            size_t   n = 1 + s_below(&rng, N - off);
            float    g[N];
            for (size_t i = 0; i < n; i++) {
                g[i] = s_uniform(&rng);
            }
            ds_dtada_read(&ar, w, off, n);
            ds_dtada_update(&ar, w, off, xr + off, g, n, alpha, beta);
            ds_dtada_async_update(&as, off, xa + off, g, n, alpha, beta);
            for (size_t i = off; i < off + n; i++) {
                ck_assert_msg(xr[i] == xa[i] && ar.z[i] == as.z[i] &&
                                  ar.zp[i] == as.zp[i],
                              "form %d step %d coordinate %zu: x %.9g vs %.9g",
                              f, t, i, xr[i], xa[i]);
            }
        }
        for (int i = 0; i < N; i++) {
            ck_assert(isfinite(xr[i]) && xr[i] == xa[i]);
        }
        ds_dtada_fini(&ar);
        ds_dtada_fini(&as);
    }
}
END_TEST

// s_ref is an independent double implementation of one coordinate of
// ALGORITHMS.md section 10, written like gen_vectors.py's
// adaptive_revision.
typedef struct {
    double x;       // parameter
    double gbar;    // sum of all gradients
    double z;       // delay-aware sum of squares
    double zp;      // z'
    double gold[4]; // gbar at each worker's last read (0 before any read)
} s_ref;

static double
s_ref_eta(double zp, double alpha, double beta)
{
    double d = beta + sqrt(zp);
    return d > 0 ? alpha / d : INFINITY;
}

static void
s_ref_update(s_ref *r, int w, double g, double alpha, double beta)
{
    double gbck = r->gbar - r->gold[w];
    double eta_old = s_ref_eta(r->zp, alpha, beta);
    r->z = r->z + g * g + 2.0 * g * gbck;
    r->zp = r->z > r->zp ? r->z : r->zp;
    double eta = s_ref_eta(r->zp, alpha, beta);
    double rev = gbck != 0.0 ? (eta_old - eta) * gbck : 0.0;
    r->x = r->x - eta * g + rev;
    r->gbar += g;
}

// Random interleavings of reads and pushes by four workers over random
// ranges of 21 coordinates, with real delays (revisions, the max rule,
// pushes without reads), against the double reference. The float32 state
// drifts from it slowly (the backlog is a difference of running sums); on
// these 600 events it stays under 1e-6 * (1 + |want|), so 1e-5 leaves a
// margin of ten.
START_TEST(test_dtada_random_delays_vs_reference)
{
    enum { N = 21, P = 4, EVENTS = 600 };
    const double forms[3][3] = {
        {0.5, 1.0, 0.0}, {0.5, 0.0, 1.0}, {0.1, 0.5, 0.25}};
    uint64_t rng = 7;
    for (int f = 0; f < 3; f++) {
        double     alpha = forms[f][0], beta = forms[f][1], z0 = forms[f][2];
        ds_dtada_t s;
        ck_assert_int_eq(ds_dtada_init(&s, N, P, z0), 0);
        float x[N];
        s_ref ref[N];
        for (int i = 0; i < N; i++) {
            x[i] = 0.0f;
            ref[i] = (s_ref){.x = 0, .gbar = 0, .z = z0, .zp = z0};
        }
        int revisions = 0, held = 0;
        for (int e = 0; e < EVENTS; e++) {
            unsigned w = (unsigned)s_below(&rng, P);
            size_t   off = s_below(&rng, N);
            size_t   n = 1 + s_below(&rng, N - off);
            if (s_below(&rng, 3) == 0) {
                ds_dtada_read(&s, w, off, n);
                for (size_t i = off; i < off + n; i++) {
                    ref[i].gold[w] = ref[i].gbar;
                }
                continue;
            }
            float g[N];
            for (size_t i = 0; i < n; i++) {
                g[i] = s_uniform(&rng);
                double gbck = ref[off + i].gbar - ref[off + i].gold[w];
                double znew =
                    ref[off + i].z + (double)g[i] * g[i] + 2.0 * g[i] * gbck;
                revisions += gbck != 0 && g[i] != 0;
                held += znew < ref[off + i].zp;
                s_ref_update(&ref[off + i], (int)w, g[i], alpha, beta);
            }
            ds_dtada_update(&s, w, off, x + off, g, n, alpha, beta);
            for (size_t i = off; i < off + n; i++) {
                ck_assert_msg(fabs(x[i] - ref[i].x) <=
                                  1e-5 * (1.0 + fabs(ref[i].x)),
                              "form %d event %d coordinate %zu: x %.9g want "
                              "%.9g",
                              f, e, i, x[i], ref[i].x);
                ck_assert_msg(fabs(s.zp[i] - ref[i].zp) <=
                                  1e-5 * (1.0 + fabs(ref[i].zp)),
                              "form %d event %d coordinate %zu: z' %.9g want "
                              "%.9g",
                              f, e, i, s.zp[i], ref[i].zp);
            }
        }
        // The run exercised what it is meant to.
        ck_assert_int_gt(revisions, 100);
        ck_assert_int_gt(held, 50);
        ds_dtada_fini(&s);
    }
}
END_TEST

// The edge cases: a zero backlog never revises, a zero gradient never
// steps, and neither gives NaN even where the learning rate is infinite
// (beta = z0 = 0, which ds_dtada_check refuses).
START_TEST(test_dtada_zero_guards)
{
    ds_dtada_t s;
    ck_assert_int_eq(ds_dtada_init(&s, 5, 2, 0.0), 0);
    ck_assert(isinf(ds_dtada_eta(&s, 0, 0.5, 0.0)));
    float x[5] = {1, -1, 0.5f, 2, 3};
    float g[5] = {0, 0, 0, 0, 0};
    ds_dtada_read(&s, 1, 0, 5);
    // Before any gradient: eta_old = eta = inf, gbck = 0 and g = 0.
    ds_dtada_update(&s, 0, 0, x, g, 5, 0.5, 0.0);
    ck_assert(x[0] == 1 && x[1] == -1 && x[2] == 0.5f && x[3] == 2 &&
              x[4] == 3);
    // The first real gradient: z = g^2 so the step is alpha * sign(g).
    g[0] = 2.0f;
    g[1] = -0.25f;
    ds_dtada_update(&s, 0, 0, x, g, 5, 0.5, 0.0);
    ck_assert(x[0] == 0.5f && x[1] == -0.5f && x[2] == 0.5f);
    ck_assert(isinf(ds_dtada_eta(&s, 2, 0.5, 0.0)));
    // Worker 1 read before those: a zero push with a backlog leaves z and
    // eta alone, so the revision (eta_old - eta) * gbck is exactly 0.
    float zero[5] = {0};
    ds_dtada_update(&s, 1, 0, x, zero, 5, 0.5, 0.0);
    ck_assert(x[0] == 0.5f && x[1] == -0.5f && x[2] == 0.5f && x[3] == 2 &&
              x[4] == 3);
    ck_assert(s.z[0] == 4.0f && s.zp[0] == 4.0f && s.z[2] == 0.0f);
    ds_dtada_fini(&s);

    // A backlog with an unchanged rate: z' holds (the max rule) and the
    // revision term is 0 although the backlog is not.
    ck_assert_int_eq(ds_dtada_init(&s, 1, 2, 0.0), 0);
    float y = 0.0f, h = 1.0f;
    ds_dtada_read(&s, 0, 0, 1);
    ds_dtada_read(&s, 1, 0, 1);
    ds_dtada_update(&s, 0, 0, &y, &h, 1, 0.5, 1.0); // z = z' = 1
    h = -0.5f;                                      // z = 1 + 0.25 - 1
    ds_dtada_update(&s, 1, 0, &y, &h, 1, 0.5, 1.0);
    s_near("held rate", 2, s.z[0], 0.25);
    s_near("held rate", 2, s.zp[0], 1.0);
    s_near("held rate", 2, y, -0.25 + 0.25 * 0.5);
    ds_dtada_fini(&s);
}
END_TEST

// ds_dtada_check names the setting at fault.
START_TEST(test_dtada_check)
{
    char err[200];
    ck_assert_int_eq(ds_dtada_check(0.5, 1.0, 0.0, err, sizeof err), 0);
    ck_assert_int_eq(ds_dtada_check(0.5, 0.0, 1.0, err, sizeof err), 0);
    ck_assert_int_eq(ds_dtada_check(0.5, 0.0, 1.0, NULL, 0), 0);

    ck_assert_int_eq(ds_dtada_check(0.5, 0.0, 0.0, err, sizeof err), -EINVAL);
    ck_assert_msg(strncmp(err, "[optimizer] dt_beta: ", 21) == 0 &&
                      strstr(err, "dt_z0") != NULL,
                  "%s", err);
    ck_assert_int_eq(ds_dtada_check(0.5, -1.0, 1.0, err, sizeof err), -EINVAL);
    ck_assert_msg(strncmp(err, "[optimizer] dt_beta: ", 21) == 0, "%s", err);
    ck_assert_int_eq(ds_dtada_check(0.5, INFINITY, 1.0, err, sizeof err),
                     -EINVAL);
    ck_assert_msg(strncmp(err, "[optimizer] dt_beta: ", 21) == 0, "%s", err);
    ck_assert_int_eq(ds_dtada_check(0.5, 1.0, -0.5, err, sizeof err), -EINVAL);
    ck_assert_msg(strncmp(err, "[optimizer] dt_z0: ", 19) == 0, "%s", err);
    ck_assert_int_eq(ds_dtada_check(0.5, 1.0, NAN, err, sizeof err), -EINVAL);
    ck_assert_msg(strncmp(err, "[optimizer] dt_z0: ", 19) == 0, "%s", err);
    ck_assert_int_eq(ds_dtada_check(0.0, 1.0, 1.0, err, sizeof err), -EINVAL);
    ck_assert_msg(strncmp(err, "[optimizer] lr: ", 16) == 0, "%s", err);
    ck_assert_int_eq(ds_dtada_check(NAN, 1.0, 1.0, NULL, 0), -EINVAL);
    // A short buffer is truncated, never overrun.
    char tiny[8];
    ck_assert_int_eq(ds_dtada_check(0.5, 0.0, 0.0, tiny, sizeof tiny), -EINVAL);
    ck_assert_uint_eq(strlen(tiny), sizeof tiny - 1);
}
END_TEST

// Sizes that cannot be allocated are refused before any allocation; a
// refused init leaves the state empty, and fini of it is harmless.
START_TEST(test_dtada_init_sizes)
{
    ds_dtada_t s;
    ck_assert_int_eq(ds_dtada_init(&s, SIZE_MAX / 4, 1, 0.0), -ENOMEM);
    ck_assert_ptr_null(s.gbar);
    ck_assert_ptr_null(s.gold);
    ds_dtada_fini(&s);
    ck_assert_int_eq(ds_dtada_init(&s, SIZE_MAX / 8, 3, 0.0), -ENOMEM);
    ck_assert_int_eq(ds_dtada_init(&s, 0, 3, 0.0), 0);
    ds_dtada_fini(&s);
    ck_assert_int_eq(ds_dtada_init(&s, 3, 2, 0.25), 0);
    for (size_t i = 0; i < 3; i++) {
        ck_assert(s.gbar[i] == 0 && s.z[i] == 0.25f && s.zp[i] == 0.25f);
        ck_assert(s.gold[i] == 0 && s.gold[3 + i] == 0);
    }
    ck_assert_uint_eq(s.n, 3);
    ck_assert_uint_eq(s.nworkers, 2);
    ds_dtada_fini(&s);
}
END_TEST

// ---- easgd ----

// The test problem of ALGORITHMS.md section 11: two workers with
// f_i(x) = 0.5 * a_i * (x - c_i)^2, run on N coordinates at once with
// coordinate j scaled by k_j, a power of two (k_2 = 1): x, c and g all
// scale exactly, so every coordinate must equal k_j times coordinate 2 bit
// for bit, and coordinate 2 must match the scalar vectors.
enum { S_N = 11, S_P = 2 };
static const float s_ea_a[S_P] = {1.0f, 2.0f};
static const float s_ea_c[S_P] = {1.0f, -1.0f};

// s_ea is the simulated cluster: two workers and the center.
typedef struct {
    float    x[S_P][S_N]; // worker parameters
    float    v[S_P][S_N]; // worker momenta (EAMSGD)
    float    center[S_N]; // the server's center variable
    float    k[S_N];      // coordinate scales
    uint64_t t[S_P];      // worker local steps (asynchronous runs)
} s_ea;

static void
s_ea_init(s_ea *c)
{
    memset(c, 0, sizeof *c);
    for (int j = 0; j < S_N; j++) {
        c->k[j] = ldexpf(1.0f, j % 5 - 2);
        c->x[0][j] = 0.5f * c->k[j];
        c->x[1][j] = -0.3f * c->k[j];
    }
}

// s_ea_grad sets g = a_i * (at - c_i * k).
static void
s_ea_grad(const s_ea *c, int i, const float *at, float *g)
{
    for (int j = 0; j < S_N; j++) {
        g[j] = s_ea_a[i] * (at[j] - s_ea_c[i] * c->k[j]);
    }
}

// s_ea_check compares the cluster with one line of the vectors.
static void
s_ea_check(const char *what, int step, const s_ea *c, const double want[3])
{
    for (int j = 0; j < S_N; j++) {
        for (int i = 0; i < S_P; i++) {
            ck_assert_msg(c->x[i][j] == c->x[i][2] * c->k[j],
                          "%s, step %d: worker %d coordinate %d not scaled",
                          what, step, i, j);
        }
        ck_assert(c->center[j] == c->center[2] * c->k[j]);
    }
    s_near(what, step, c->x[0][2], want[0]);
    s_near(what, step, c->x[1][2], want[1]);
    s_near(what, step, c->center[2], want[2]);
}

// s_eaurn is one worker turn, Algorithm 1 (delta = 0) or 2: the gradient
// at the pre-elastic snapshot (or its look-ahead), the elastic move against
// center when due, then the local step. It returns d in d (when due) and
// whether it was due; the caller applies d to its center.
static int
s_eaurn(s_ea *c, int i, const float *center, int due, float eta, float alpha,
        float delta, float *d)
{
    float g[S_N];
    if (delta > 0) {
        float y[S_N];
        ds_eamsgd_lookahead(y, c->x[i], c->v[i], S_N, delta);
        s_ea_grad(c, i, y, g);
    } else {
        s_ea_grad(c, i, c->x[i], g);
    }
    if (due) {
        ds_easgd_elastic(c->x[i], center, d, S_N, alpha);
    }
    if (delta > 0) {
        ds_eamsgd_step(c->x[i], c->v[i], g, S_N, eta, delta);
    } else {
        ds_easgd_sgd_step(c->x[i], g, S_N, eta);
    }
    return due;
}

// s_ea_sync runs synchronous EASGD / EAMSGD: every worker against the
// time-t center, then the center moves by the sum of the d's.
static void
s_ea_sync(const char *what, int tau, float delta, int steps,
          const double want[][3])
{
    s_ea c;
    s_ea_init(&c);
    for (int t = 0; t < steps; t++) {
        float d[S_P][S_N];
        int   due = t % tau == 0;
        for (int i = 0; i < S_P; i++) {
            s_eaurn(&c, i, c.center, due, 0.1f, 0.1f, delta, d[i]);
        }
        for (int i = 0; due && i < S_P; i++) {
            ds_easgd_center_add(c.center, d[i], S_N);
        }
        s_ea_check(what, t, &c, want[t]);
    }
}

// s_ea_async runs the asynchronous algorithms round-robin W0, W1, ...;
// each turn is atomic with respect to the center.
static void
s_ea_async(const char *what, int tau, float delta, int turns,
           const double want[][3])
{
    s_ea c;
    s_ea_init(&c);
    for (int k = 0; k < turns; k++) {
        int   i = k % S_P;
        float d[S_N];
        if (s_eaurn(&c, i, c.center, c.t[i] % (uint64_t)tau == 0, 0.1f, 0.1f,
                    delta, d)) {
            ds_easgd_center_add(c.center, d, S_N);
        }
        c.t[i]++;
        s_ea_check(what, k, &c, want[k]);
    }
}

// Sync EASGD p=2 eta=0.1 rho=1 (alpha=0.1, beta=0.2) tau=1. Hand check of
// the first step: x1 = 0.5 - 0.1 * (0.5 - 1) - 0.1 * (0.5 - 0) = 0.5,
// x2 = -0.3 - 0.1 * 2 * 0.7 - 0.1 * (-0.3) = -0.41,
// center = 0 + 0.1 * (0.5 - 0.3) = 0.02.
START_TEST(test_easgd_sync_tau1)
{
    const double want[3][3] = {
        {0.5, -0.41, 0.02}, {0.502, -0.485, 0.025}, {0.5041, -0.537, 0.0217}};
    s_ea_sync("sync tau=1", 1, 0.0f, 3, want);
}
END_TEST

// Sync EASGD tau=2: steps 1 and 3 are plain local SGD.
START_TEST(test_easgd_sync_tau2)
{
    const double want[4][3] = {{0.5, -0.41, 0.02},
                               {0.55, -0.528, 0.02},
                               {0.542, -0.5676, 0.0182},
                               {0.5878, -0.65408, 0.0182}};
    s_ea_sync("sync tau=2", 2, 0.0f, 4, want);
}
END_TEST

// Sync EAMSGD delta=0.9 tau=1: the elastic term on the pre-step x, the
// gradient at x + delta * v.
START_TEST(test_eamsgd_sync)
{
    const double want[3][3] = {{0.5, -0.41, 0.02},
                               {0.5425, -0.5858, 0.025},
                               {0.609805, -0.765096, 0.01567}};
    s_ea_sync("sync eamsgd", 1, 0.9f, 3, want);
}
END_TEST

// Async EASGD (Algorithm 1) eta=0.1 alpha=0.1 tau=2, round-robin.
START_TEST(test_easgd_async)
{
    const double want[6][3] = {
        {0.5, -0.3, 0.05},        {0.5, -0.405, 0.015},
        {0.55, -0.405, 0.015},    {0.55, -0.524, 0.015},
        {0.5415, -0.524, 0.0685}, {0.5415, -0.55995, 0.00925}};
    s_ea_async("async easgd", 2, 0.0f, 6, want);
}
END_TEST

// Async EAMSGD (Algorithm 2) eta=0.1 alpha=0.1 tau=2 delta=0.9.
START_TEST(test_eamsgd_async)
{
    const double want[6][3] = {{0.5, -0.3, 0.05},
                               {0.5, -0.405, 0.015},
                               {0.5905, -0.405, 0.015},
                               {0.5905, -0.6248, 0.015},
                               {0.647205, -0.6248, 0.07255},
                               {0.647205, -0.788361, 0.002815}};
    s_ea_async("async eamsgd", 2, 0.9f, 6, want);
}
END_TEST

// The pieces on exact binary fractions: the worker and the center move by
// equal and opposite amounts; delta = 0 reduces EAMSGD to EASGD exactly.
START_TEST(test_easgd_pieces)
{
    float x[3] = {1.0f, -2.0f, 0.5f}, center[3] = {0.0f, 1.0f, 0.5f}, d[3];
    ds_easgd_elastic(x, center, d, 3, 0.25f);
    ck_assert(d[0] == 0.25f && d[1] == -0.75f && d[2] == 0.0f);
    ck_assert(x[0] == 0.75f && x[1] == -1.25f && x[2] == 0.5f);
    ck_assert(center[0] == 0.0f && center[1] == 1.0f); // not modified
    ds_easgd_center_add(center, d, 3);
    ck_assert(center[0] == 0.25f && center[1] == 0.25f && center[2] == 0.5f);

    float v[3] = {0.5f, -1.0f, 0.0f}, y[3];
    ds_eamsgd_lookahead(y, x, v, 3, 0.5f);
    ck_assert(y[0] == 1.0f && y[1] == -1.75f && y[2] == 0.5f);
    const float g[3] = {1.0f, 2.0f, -4.0f};
    ds_eamsgd_step(x, v, g, 3, 0.25f, 0.5f);
    ck_assert(v[0] == 0.0f && v[1] == -1.0f && v[2] == 1.0f);
    ck_assert(x[0] == 0.75f && x[1] == -2.25f && x[2] == 1.5f);

    // delta = 0 on random data: the same x as the plain step, bit for bit.
    enum { N = 29 };
    uint64_t rng = 3;
    float    a[N], b[N], vv[N], gg[N];
    for (int i = 0; i < N; i++) {
        a[i] = b[i] = s_uniform(&rng);
        vv[i] = s_uniform(&rng);
    }
    for (int t = 0; t < 50; t++) {
        for (int i = 0; i < N; i++) {
            gg[i] = s_uniform(&rng);
        }
        ds_eamsgd_step(a, vv, gg, N, 0.1f, 0.0f);
        ds_easgd_sgd_step(b, gg, N, 0.1f);
        for (int i = 0; i < N; i++) {
            ck_assert_msg(a[i] == b[i], "step %d, %d: %.9g != %.9g", t, i, a[i],
                          b[i]);
        }
    }
}
END_TEST

// ---- ssp ----

// s_ssp_set commits clocks (w0, w1, w2) from a fresh state.
static void
s_ssp_set(ds_ssp_t *s, int staleness, uint64_t c0, uint64_t c1, uint64_t c2)
{
    ck_assert_int_eq(ds_ssp_init(s, 3, staleness), 0);
    ck_assert_int_eq(ds_ssp_commit(s, 0, c0), 0);
    ck_assert_int_eq(ds_ssp_commit(s, 1, c1), 0);
    ck_assert_int_eq(ds_ssp_commit(s, 2, c2), 0);
}

// The SSP table of ALGORITHMS.md section 12, s = 2 and P = 3, reader w0
// at its own clock.
START_TEST(test_ssp_table)
{
    ds_ssp_t s;
    s_ssp_set(&s, 2, 0, 0, 0);
    ck_assert_uint_eq(ds_ssp_min_clock(&s), 0);
    ck_assert(ds_ssp_can_read(&s, 0));
    ds_ssp_fini(&s);

    s_ssp_set(&s, 2, 2, 0, 1);
    ck_assert_uint_eq(ds_ssp_min_clock(&s), 0);
    ck_assert(ds_ssp_can_read(&s, 2));
    ds_ssp_fini(&s);

    // (3, 0, 1): blocks until w1 reaches clock 1, and then proceeds.
    s_ssp_set(&s, 2, 3, 0, 1);
    ck_assert(!ds_ssp_can_read(&s, 3));
    ck_assert_int_eq(ds_ssp_commit(&s, 1, 1), 0);
    ck_assert_uint_eq(ds_ssp_min_clock(&s), 1);
    ck_assert(ds_ssp_can_read(&s, 3));
    ck_assert(!ds_ssp_can_read(&s, 4));
    ds_ssp_fini(&s);

    s_ssp_set(&s, 2, 3, 1, 1);
    ck_assert_uint_eq(ds_ssp_min_clock(&s), 1);
    ck_assert(ds_ssp_can_read(&s, 3));
    ds_ssp_fini(&s);
}
END_TEST

// The BSP row: s = 0 is a barrier; (1, 0, 0) blocks until both others
// reach clock 1.
START_TEST(test_ssp_bsp)
{
    ds_ssp_t s;
    s_ssp_set(&s, 0, 1, 0, 0);
    ck_assert(ds_ssp_can_read(&s, 0));
    ck_assert(!ds_ssp_can_read(&s, 1));
    ck_assert_int_eq(ds_ssp_commit(&s, 1, 1), 0);
    ck_assert(!ds_ssp_can_read(&s, 1));
    ck_assert_int_eq(ds_ssp_commit(&s, 2, 1), 0);
    ck_assert(ds_ssp_can_read(&s, 1));
    ck_assert(!ds_ssp_can_read(&s, 2));
    ds_ssp_fini(&s);
}
END_TEST

// ASP never blocks, whatever the clocks.
START_TEST(test_ssp_asp)
{
    ds_ssp_t s;
    s_ssp_set(&s, DS_SSP_ASP, 100, 0, 7);
    ck_assert_uint_eq(ds_ssp_min_clock(&s), 0);
    ck_assert(ds_ssp_can_read(&s, 100));
    ck_assert(ds_ssp_can_read(&s, UINT64_MAX));
    ds_ssp_fini(&s);
}
END_TEST

// A finished worker no longer holds the others back; with none running,
// every read proceeds.
START_TEST(test_ssp_finished)
{
    ds_ssp_t s;
    s_ssp_set(&s, 2, 3, 0, 1);
    ck_assert(!ds_ssp_can_read(&s, 3));
    ck_assert_int_eq(ds_ssp_finish(&s, 1), 0);
    ck_assert_int_eq(ds_ssp_finish(&s, 1), 0); // idempotent
    ck_assert_uint_eq(ds_ssp_min_clock(&s), 1);
    ck_assert(ds_ssp_can_read(&s, 3));
    ck_assert(!ds_ssp_can_read(&s, 4));
    // A commit by a finished worker is recorded but changes nothing.
    ck_assert_int_eq(ds_ssp_commit(&s, 1, 9), 0);
    ck_assert_uint_eq(ds_ssp_clock(&s, 1), 9);
    ck_assert_uint_eq(ds_ssp_min_clock(&s), 1);
    ck_assert_int_eq(ds_ssp_finish(&s, 2), 0);
    ck_assert_uint_eq(ds_ssp_min_clock(&s), 3);
    ck_assert(ds_ssp_can_read(&s, 5));
    ck_assert(!ds_ssp_can_read(&s, 6));
    ck_assert_int_eq(ds_ssp_finish(&s, 0), 0);
    ck_assert_uint_eq(ds_ssp_min_clock(&s), UINT64_MAX);
    ck_assert(ds_ssp_can_read(&s, UINT64_MAX));
    ds_ssp_fini(&s);
}
END_TEST

// Peer-supplied workers and clocks are checked, not asserted; small
// clocks do not wrap c - s.
START_TEST(test_ssp_errors)
{
    ds_ssp_t s;
    ck_assert_int_eq(ds_ssp_init(&s, 3, -2), -EINVAL);
    ds_ssp_fini(&s);
    s_ssp_set(&s, 5, 4, 2, 3);
    ck_assert_int_eq(ds_ssp_commit(&s, 3, 1), -ERANGE);
    ck_assert_int_eq(ds_ssp_finish(&s, 3), -ERANGE);
    ck_assert_uint_eq(ds_ssp_clock(&s, 3), 0);
    ck_assert_int_eq(ds_ssp_commit(&s, 0, 3), -ESTALE);
    ck_assert_uint_eq(ds_ssp_clock(&s, 0), 4);
    ck_assert_int_eq(ds_ssp_commit(&s, 0, 4), 0); // a repeat is a no-op
    ck_assert_uint_eq(ds_ssp_min_clock(&s), 2);
    ck_assert(ds_ssp_can_read(&s, 0));
    ck_assert(ds_ssp_can_read(&s, 7));
    ck_assert(!ds_ssp_can_read(&s, 8));
    ck_assert(!ds_ssp_can_read(&s, UINT64_MAX));
    ds_ssp_fini(&s);
    ds_ssp_fini(&s); // idempotent

    ck_assert_int_eq(ds_ssp_init(&s, 0, 0), 0);
    ck_assert_uint_eq(ds_ssp_min_clock(&s), UINT64_MAX);
    ck_assert(ds_ssp_can_read(&s, 12));
    ds_ssp_fini(&s);
}
END_TEST

// Random commits and finishes against a brute-force minimum and the
// predicate written out in signed arithmetic.
START_TEST(test_ssp_random_vs_brute_force)
{
    enum { P = 6 };
    const int stalenesses[4] = {0, 1, 3, DS_SSP_ASP};
    uint64_t  rng = 11;
    for (int k = 0; k < 4; k++) {
        ds_ssp_t s;
        ck_assert_int_eq(ds_ssp_init(&s, P, stalenesses[k]), 0);
        uint64_t clock[P] = {0};
        int      done[P] = {0};
        for (int e = 0; e < 2000; e++) {
            unsigned w = (unsigned)s_below(&rng, P);
            if (s_below(&rng, 50) == 0) {
                ck_assert_int_eq(ds_ssp_finish(&s, w), 0);
                done[w] = 1;
            } else {
                uint64_t c = clock[w] + s_below(&rng, 3);
                ck_assert_int_eq(ds_ssp_commit(&s, w, c), 0);
                clock[w] = c;
            }
            uint64_t min = UINT64_MAX;
            for (int i = 0; i < P; i++) {
                if (!done[i] && clock[i] < min) {
                    min = clock[i];
                }
            }
            ck_assert_uint_eq(ds_ssp_min_clock(&s), min);
            for (uint64_t c = 0; c < clock[w] + 8; c++) {
                int want = stalenesses[k] == DS_SSP_ASP || min == UINT64_MAX ||
                           (long long)min >= (long long)c - stalenesses[k];
                ck_assert_int_eq(ds_ssp_can_read(&s, c), want);
            }
        }
        ds_ssp_fini(&s);
    }
}
END_TEST

// ALGORITHMS.md section 8: Hogwild! on sparse least squares,
// f_e(x) = 1/2 (sum_{v in S_e} x_v - y_e)^2, gamma 0.1, theta0 = [1, -2,
// 0.5], e_A = ({0, 1}, 1), e_B = ({1, 2}, -1). Serially A then B gives
// [1.2, -1.77, 0.53]; when both threads read theta0 before either writes
// (a stale read), [1.2, -1.75, 0.55]. The worker's threads apply their
// gradients with ds_sgd_apply on the shared array, as here.
static void
s_lsq_grad(const float *x, const int *set, float y, float *g)
{
    float r = x[set[0]] + x[set[1]] - y;
    memset(g, 0, 3 * sizeof *g);
    g[set[0]] = r;
    g[set[1]] = r;
}

START_TEST(test_hogwild_interleavings)
{
    const int sa[2] = {0, 1}, sb[2] = {1, 2};
    float     x[3] = {1.0f, -2.0f, 0.5f}, ga[3], gb[3];
    s_lsq_grad(x, sa, 1.0f, ga);
    ds_sgd_apply(x, ga, 3, 0.1f);
    s_lsq_grad(x, sb, -1.0f, gb);
    ds_sgd_apply(x, gb, 3, 0.1f);
    const float serial[3] = {1.2f, -1.77f, 0.53f};
    for (int i = 0; i < 3; i++) {
        ck_assert_float_eq_tol(x[i], serial[i], 1e-6f);
    }
    float y[3] = {1.0f, -2.0f, 0.5f};
    s_lsq_grad(y, sa, 1.0f, ga);  // A reads
    s_lsq_grad(y, sb, -1.0f, gb); // B reads the same, stale for B
    ds_sgd_apply(y, ga, 3, 0.1f); // A writes
    ds_sgd_apply(y, gb, 3, 0.1f); // B writes
    const float stale[3] = {1.2f, -1.75f, 0.55f};
    for (int i = 0; i < 3; i++) {
        ck_assert_float_eq_tol(y[i], stale[i], 1e-6f);
    }
}
END_TEST

Suite *
ds_dist_suite(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("dtadagrad");
    tcase_add_test(tc, test_hogwild_interleavings);
    tcase_add_test(tc, test_dtada_trace_wormhole_form);
    tcase_add_test(tc, test_dtada_trace_paper_form);
    tcase_add_test(tc, test_dtada_trace_many_coordinates);
    tcase_add_test(tc, test_dtada_push_without_read);
    tcase_add_test(tc, test_dtada_no_delay_is_async);
    tcase_add_test(tc, test_dtada_random_delays_vs_reference);
    tcase_add_test(tc, test_dtada_zero_guards);
    tcase_add_test(tc, test_dtada_check);
    tcase_add_test(tc, test_dtada_init_sizes);
    suite_add_tcase(s, tc);

    tc = tcase_create("easgd");
    tcase_add_test(tc, test_easgd_sync_tau1);
    tcase_add_test(tc, test_easgd_sync_tau2);
    tcase_add_test(tc, test_eamsgd_sync);
    tcase_add_test(tc, test_easgd_async);
    tcase_add_test(tc, test_eamsgd_async);
    tcase_add_test(tc, test_easgd_pieces);
    suite_add_tcase(s, tc);

    tc = tcase_create("ssp");
    tcase_add_test(tc, test_ssp_table);
    tcase_add_test(tc, test_ssp_bsp);
    tcase_add_test(tc, test_ssp_asp);
    tcase_add_test(tc, test_ssp_finished);
    tcase_add_test(tc, test_ssp_errors);
    tcase_add_test(tc, test_ssp_random_vs_brute_force);
    suite_add_tcase(s, tc);
    return s;
}
