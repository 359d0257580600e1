// SPDX-License-Identifier: MIT
// optim - update rules over float32 arrays, shared by servers and workers.
//
// Every rule is one straight loop (per variant) over restrict-qualified
// float arrays, with the per-step constants (bias corrections, decayed
// rates) computed once in double and passed in as floats, so that gcc
// vectorizes each loop at -O2 -fvect-cost-model=dynamic -fno-math-errno.
// Choices that would be branches inside a loop (first momentum step,
// centered, amsgrad, with or without a momentum buffer) pick a loop instead.
// Coupled weight decay, g' = g + wd * w, is part of every loop: with wd == 0
// it adds an exact zero, which is cheaper than twice the loops.
#include "common/optim.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ALIGN 64       // bytes; state arrays start on a cache line
#define S_SUM_BLOCK 4096 // values summed before joining the total

static const char *const s_names[DS_OPTIM_COUNT] = {
    "sgd", "momentum", "nag", "adagrad", "adadelta", "rmsprop", "adam",
};

int
ds_optim_parse(const char *name)
{
    if (name == NULL) {
        return -1;
    }
    for (int k = 0; k < DS_OPTIM_COUNT; k++) {
        if (strcmp(name, s_names[k]) == 0) {
            return k;
        }
    }
    return -1;
}

const char *
ds_optim_name(ds_optim_kind_t kind)
{
    if ((int)kind < 0 || (int)kind >= DS_OPTIM_COUNT) {
        return "unknown";
    }
    return s_names[kind];
}

void
ds_optim_defaults(ds_optim_t *o, ds_optim_kind_t kind)
{
    static const double eps[DS_OPTIM_COUNT] = {
        [DS_OPTIM_ADAGRAD] = 1e-10,
        [DS_OPTIM_ADADELTA] = 1e-6,
        [DS_OPTIM_RMSPROP] = 1e-8,
        [DS_OPTIM_ADAM] = 1e-8,
    };
    bool known = (int)kind >= 0 && (int)kind < DS_OPTIM_COUNT;
    bool heavy = kind == DS_OPTIM_MOMENTUM || kind == DS_OPTIM_NAG;

    *o = (ds_optim_t){
        .kind = kind,
        .paper = false,
        .momentum = heavy ? 0.9 : 0.0,
        .dampening = 0.0,
        .beta1 = 0.9,
        .beta2 = 0.999,
        .rho = 0.9,
        .alpha = 0.99,
        .eps = known ? eps[kind] : 0.0,
        .weight_decay = 0.0,
        .lr_decay = 0.0,
        .initial_accumulator = 0.0,
        .centered = false,
        .amsgrad = false,
    };
}

double
ds_optim_default_lr(ds_optim_kind_t kind)
{
    switch (kind) {
    case DS_OPTIM_ADADELTA:
        return 1.0;
    case DS_OPTIM_ADAGRAD:
    case DS_OPTIM_RMSPROP:
        return 1e-2;
    default:
        return 1e-3;
    }
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

// s_range checks lo <= v < hi (hi_open) or lo <= v <= hi, and finiteness.
static int
s_range(double v, double lo, double hi, bool hi_open, const char *key,
        char *err, size_t errlen)
{
    if (isfinite(v) && v >= lo && (hi_open ? v < hi : v <= hi)) {
        return 0;
    }
    return s_fail(err, errlen, key, "must be in [%g, %g%c (got %g)", lo, hi,
                  hi_open ? ')' : ']', v);
}

// s_nonneg checks 0 <= v < inf.
static int
s_nonneg(double v, const char *key, char *err, size_t errlen)
{
    if (isfinite(v) && v >= 0) {
        return 0;
    }
    return s_fail(err, errlen, key, "must be >= 0 and finite (got %g)", v);
}

// s_check_ranges checks every setting against its own bounds, whichever
// rule reads it, so a mistyped value is refused even where it is unused.
static int
s_check_ranges(const ds_optim_t *o, char *err, size_t errlen)
{
    int rc;
    if ((rc = s_range(o->momentum, 0, 1, true, "momentum", err, errlen)) ||
        (rc = s_range(o->dampening, 0, 1, false, "dampening", err, errlen)) ||
        (rc = s_range(o->beta1, 0, 1, true, "beta1", err, errlen)) ||
        (rc = s_range(o->beta2, 0, 1, true, "beta2", err, errlen)) ||
        (rc = s_range(o->rho, 0, 1, true, "rho", err, errlen)) ||
        (rc = s_range(o->alpha, 0, 1, true, "alpha", err, errlen)) ||
        (rc = s_nonneg(o->eps, "eps", err, errlen)) ||
        (rc = s_nonneg(o->weight_decay, "weight_decay", err, errlen)) ||
        (rc = s_nonneg(o->lr_decay, "lr_decay", err, errlen)) ||
        (rc = s_nonneg(o->initial_accumulator, "initial_accumulator", err,
                       errlen))) {
        return rc;
    }
    return 0;
}

int
ds_optim_check(const ds_optim_t *o, char *err, size_t errlen)
{
    if ((int)o->kind < 0 || (int)o->kind >= DS_OPTIM_COUNT) {
        return s_fail(err, errlen, "name", "unknown rule (got %d)",
                      (int)o->kind);
    }
    const char *name = s_names[o->kind];
    int         rc = s_check_ranges(o, err, errlen);
    if (rc != 0) {
        return rc;
    }
    switch (o->kind) {
    case DS_OPTIM_MOMENTUM:
    case DS_OPTIM_NAG:
        if (o->momentum <= 0) {
            return s_fail(err, errlen, "momentum",
                          "must be in (0, 1) for %s (got %g)", name,
                          o->momentum);
        }
        if (o->kind == DS_OPTIM_NAG && o->paper) {
            // The look-ahead gradient would have to be taken at
            // theta - mu * v, which only the server knows; PyTorch's
            // reformulation is the same method at the stored parameters.
            return s_fail(err, errlen, "form",
                          "the paper (Sutskever look-ahead) form of nag "
                          "cannot be served by a parameter server; use "
                          "form = pytorch, the same method reformulated");
        }
        if (o->kind == DS_OPTIM_NAG && o->dampening != 0) {
            return s_fail(err, errlen, "dampening",
                          "must be 0 for nag (got %g)", o->dampening);
        }
        if (o->paper && o->dampening != 0) {
            return s_fail(err, errlen, "dampening",
                          "must be 0 with form = paper, which has no "
                          "dampening (got %g)",
                          o->dampening);
        }
        break;
    case DS_OPTIM_ADAGRAD:
        // With eps == 0, a coordinate whose gradients were all zero would
        // divide 0 by 0, unless the accumulator starts above zero.
        if (o->eps <= 0 && o->initial_accumulator <= 0) {
            return s_fail(err, errlen, "eps",
                          "must be > 0 for adagrad unless "
                          "initial_accumulator > 0 (got %g)",
                          o->eps);
        }
        break;
    case DS_OPTIM_RMSPROP:
        if (o->paper && o->momentum != 0) {
            return s_fail(err, errlen, "momentum",
                          "must be 0 for rmsprop with form = paper, which "
                          "has no momentum buffer (got %g)",
                          o->momentum);
        }
        if (o->paper && o->centered) {
            return s_fail(err, errlen, "centered",
                          "must be false for rmsprop with form = paper, "
                          "which has no centered variant");
        }
        // fall through
    case DS_OPTIM_ADADELTA:
    case DS_OPTIM_ADAM:
        if (o->eps <= 0) {
            return s_fail(err, errlen, "eps",
                          "must be > 0 for %s, or a zero gradient divides "
                          "0 by 0 (got %g)",
                          name, o->eps);
        }
        break;
    default:
        break;
    }
    return 0;
}

int
ds_optim_state_arrays(const ds_optim_t *o)
{
    switch (o->kind) {
    case DS_OPTIM_MOMENTUM:
    case DS_OPTIM_NAG:
    case DS_OPTIM_ADAGRAD:
        return 1;
    case DS_OPTIM_ADADELTA:
        return 2;
    case DS_OPTIM_RMSPROP:
        return 1 + (o->momentum > 0) + o->centered;
    case DS_OPTIM_ADAM:
        return 2 + o->amsgrad;
    default:
        return 0;
    }
}

int
ds_optim_state_init(ds_optim_state_t *s, const ds_optim_t *o, size_t n)
{
    memset(s, 0, sizeof *s);
    int nbuf = ds_optim_state_arrays(o);
    assert(nbuf <= DS_OPTIM_MAX_STATE);
    if (n > (SIZE_MAX - S_ALIGN) / sizeof(float)) {
        return -ENOMEM;
    }
    // aligned_alloc wants a multiple of the alignment, and never 0 bytes.
    size_t bytes = (n * sizeof(float) + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
    if (bytes == 0) {
        bytes = S_ALIGN;
    }
    // Allocate every array before touching any, so a failure costs no
    // page faults; then zero them, which also maps their pages now rather
    // than during the first update.
    for (int k = 0; k < nbuf; k++) {
        s->buf[k] = aligned_alloc(S_ALIGN, bytes);
        if (s->buf[k] == NULL) {
            ds_optim_state_fini(s);
            return -ENOMEM;
        }
    }
    for (int k = 0; k < nbuf; k++) {
        memset(s->buf[k], 0, bytes);
    }
    // Adagrad's sum of squares starts at the initial accumulator (PyTorch's
    // code does this; its documented pseudo-code says 0).
    if (o->kind == DS_OPTIM_ADAGRAD && o->initial_accumulator != 0) {
        float init = (float)o->initial_accumulator;
        for (size_t i = 0; i < n; i++) {
            s->buf[0][i] = init;
        }
    }
    s->nbuf = nbuf;
    s->n = n;
    s->t = 0;
    return 0;
}

void
ds_optim_state_fini(ds_optim_state_t *s)
{
    for (int k = 0; k < DS_OPTIM_MAX_STATE; k++) {
        free(s->buf[k]);
    }
    memset(s, 0, sizeof *s);
}

// ---- kernels: one loop each; wd is the coupled weight decay ----

static void
s_sgd(float *restrict w, const float *restrict g, size_t n, float lr, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        w[i] -= lr * gi;
    }
}

// s_heavy_first is PyTorch's first momentum step: b_1 = g_1 undampened.
// nesterov adds mu * b to the step (mu = 0 gives classical momentum).
static void
s_heavy_first(float *restrict w, const float *restrict g, float *restrict b,
              size_t n, float lr, float wd, float nest)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        b[i] = gi;
        w[i] -= lr * (gi + nest * gi);
    }
}

// s_momentum is b = mu * b + c * g; w -= k * b. PyTorch: c = 1 - dampening,
// k = lr. Ruder: c = lr, k = 1 (v in parameter units).
static void
s_momentum(float *restrict w, const float *restrict g, float *restrict b,
           size_t n, float mu, float c, float k, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float bi = mu * b[i] + c * gi;
        b[i] = bi;
        w[i] -= k * bi;
    }
}

// s_nag is PyTorch's nesterov=True: b = mu * b + g; w -= lr * (g + mu * b).
static void
s_nag(float *restrict w, const float *restrict g, float *restrict b, size_t n,
      float mu, float lr, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float bi = mu * b[i] + gi;
        b[i] = bi;
        w[i] -= lr * (gi + mu * bi);
    }
}

// s_adagrad: sum += g^2; w -= clr * g / (sqrt(sum + ein) + eout). PyTorch
// has ein = 0, eout = eps; Ruder ein = eps, eout = 0. Adding 0.0f is exact,
// so one loop serves both forms bit for bit.
static void
s_adagrad(float *restrict w, const float *restrict g, float *restrict sum,
          size_t n, float clr, float ein, float eout, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float si = sum[i] + gi * gi;
        sum[i] = si;
        w[i] -= clr * (gi / (sqrtf(si + ein) + eout));
    }
}

// s_adadelta: delta = sqrt(acc + eps) / sqrt(sq + eps) * g, taken as one
// square root of the quotient: the loop is bound by sqrt and divide
// throughput, and this saves a third of it for at most an ulp or two of
// difference. The paper form is lr = 1.
static void
s_adadelta(float *restrict w, const float *restrict g, float *restrict sq,
           float *restrict acc, size_t n, float rho, float one_rho, float eps,
           float lr, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float si = rho * sq[i] + one_rho * (gi * gi);
        sq[i] = si;
        float di = sqrtf((acc[i] + eps) / (si + eps)) * gi;
        acc[i] = rho * acc[i] + one_rho * (di * di);
        w[i] -= lr * di;
    }
}

// s_rmsprop: v = a * v + (1 - a) * g^2; w -= lr * g / (sqrt(v + ein) + eout)
// (PyTorch: ein = 0, eout = eps; Hinton/Ruder: ein = eps, eout = 0).
static void
s_rmsprop(float *restrict w, const float *restrict g, float *restrict v,
          size_t n, float a, float one_a, float ein, float eout, float lr,
          float wd)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float vi = a * v[i] + one_a * (gi * gi);
        v[i] = vi;
        w[i] -= lr * (gi / (sqrtf(vi + ein) + eout));
    }
}

// s_rmsprop_mom: PyTorch with a momentum buffer b (starting at 0).
static void
s_rmsprop_mom(float *restrict w, const float *restrict g, float *restrict v,
              float *restrict b, size_t n, float a, float one_a, float eps,
              float mu, float lr, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float vi = a * v[i] + one_a * (gi * gi);
        v[i] = vi;
        float bi = mu * b[i] + gi / (sqrtf(vi) + eps);
        b[i] = bi;
        w[i] -= lr * bi;
    }
}

// s_centered_var is v - m^2 clamped at 0. The clamp only matters where
// rounding makes the difference negative, where PyTorch's sqrt gives NaN.
static inline float
s_centered_var(float v, float m)
{
    float d = v - m * m;
    return d > 0.0f ? d : 0.0f;
}

// s_rmsprop_cen: PyTorch centered=True, without a momentum buffer.
static void
s_rmsprop_cen(float *restrict w, const float *restrict g, float *restrict v,
              float *restrict m, size_t n, float a, float one_a, float eps,
              float lr, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float vi = a * v[i] + one_a * (gi * gi);
        float mi = a * m[i] + one_a * gi;
        v[i] = vi;
        m[i] = mi;
        w[i] -= lr * (gi / (sqrtf(s_centered_var(vi, mi)) + eps));
    }
}

// s_rmsprop_cen_mom: PyTorch centered=True with a momentum buffer.
static void
s_rmsprop_cen_mom(float *restrict w, const float *restrict g, float *restrict v,
                  float *restrict b, float *restrict m, size_t n, float a,
                  float one_a, float eps, float mu, float lr, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float vi = a * v[i] + one_a * (gi * gi);
        float mi = a * m[i] + one_a * gi;
        v[i] = vi;
        m[i] = mi;
        float bi = mu * b[i] + gi / (sqrtf(s_centered_var(vi, mi)) + eps);
        b[i] = bi;
        w[i] -= lr * bi;
    }
}

// s_adam: w -= step * m / (sqrt(v) * vs + eps). PyTorch (Algorithm 1):
// step = lr / bc1, vs = 1 / sqrt(bc2). The paper's efficient form: step =
// lr * sqrt(bc2) / bc1, vs = 1 (an exact multiply).
static void
s_adam(float *restrict w, const float *restrict g, float *restrict m,
       float *restrict v, size_t n, float b1, float one_b1, float b2,
       float one_b2, float step, float vs, float eps, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float mi = b1 * m[i] + one_b1 * gi;
        float vi = b2 * v[i] + one_b2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        w[i] -= step * (mi / (sqrtf(vi) * vs + eps));
    }
}

// s_adam_ams: as s_adam with vmax = max(vmax, v) on the uncorrected v.
static void
s_adam_ams(float *restrict w, const float *restrict g, float *restrict m,
           float *restrict v, float *restrict vmax, size_t n, float b1,
           float one_b1, float b2, float one_b2, float step, float vs,
           float eps, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float mi = b1 * m[i] + one_b1 * gi;
        float vi = b2 * v[i] + one_b2 * (gi * gi);
        float xi = vmax[i] > vi ? vmax[i] : vi;
        m[i] = mi;
        v[i] = vi;
        vmax[i] = xi;
        w[i] -= step * (mi / (sqrtf(xi) * vs + eps));
    }
}

// s_step_rmsprop picks the RMSprop loop for o's variant.
static void
s_step_rmsprop(const ds_optim_t *o, float *const *buf, float *restrict w,
               const float *restrict g, size_t n, float lr, float wd)
{
    float a = (float)o->alpha;
    float one_a = (float)(1.0 - o->alpha);
    float eps = (float)o->eps;
    float mu = (float)o->momentum;
    if (o->paper) {
        s_rmsprop(w, g, buf[0], n, a, one_a, eps, 0.0f, lr, wd);
    } else if (o->centered && o->momentum > 0) {
        s_rmsprop_cen_mom(w, g, buf[0], buf[1], buf[2], n, a, one_a, eps, mu,
                          lr, wd);
    } else if (o->centered) {
        s_rmsprop_cen(w, g, buf[0], buf[1], n, a, one_a, eps, lr, wd);
    } else if (o->momentum > 0) {
        s_rmsprop_mom(w, g, buf[0], buf[1], n, a, one_a, eps, mu, lr, wd);
    } else {
        s_rmsprop(w, g, buf[0], n, a, one_a, 0.0f, eps, lr, wd);
    }
}

// s_step_adam computes Adam's bias corrections for step t and runs the loop.
static void
s_step_adam(const ds_optim_t *o, float *const *buf, float *restrict w,
            const float *restrict g, size_t n, uint64_t t, double lr, float wd)
{
    double bc1 = 1.0 - pow(o->beta1, (double)t);
    double bc2 = 1.0 - pow(o->beta2, (double)t);
    float  step, vs;
    if (o->paper) {
        step = (float)(lr * sqrt(bc2) / bc1);
        vs = 1.0f;
    } else {
        step = (float)(lr / bc1);
        vs = (float)(1.0 / sqrt(bc2));
    }
    float b1 = (float)o->beta1;
    float one_b1 = (float)(1.0 - o->beta1);
    float b2 = (float)o->beta2;
    float one_b2 = (float)(1.0 - o->beta2);
    float eps = (float)o->eps;
    if (o->amsgrad) {
        s_adam_ams(w, g, buf[0], buf[1], buf[2], n, b1, one_b1, b2, one_b2,
                   step, vs, eps, wd);
    } else {
        s_adam(w, g, buf[0], buf[1], n, b1, one_b1, b2, one_b2, step, vs, eps,
               wd);
    }
}

void
ds_optim_step(const ds_optim_t *o, ds_optim_state_t *s, size_t   off,
              float *restrict w, const float *restrict g, size_t n, double lr)
{
    assert(off <= s->n && n <= s->n - off);
    assert(s->nbuf == ds_optim_state_arrays(o));
    float *buf[DS_OPTIM_MAX_STATE] = {NULL, NULL, NULL};
    for (int k = 0; k < s->nbuf; k++) {
        buf[k] = s->buf[k] + off;
    }
    float    flr = (float)lr;
    float    wd = (float)o->weight_decay;
    float    mu = (float)o->momentum;
    uint64_t t = s->t + 1; // this step, 1-based as in the papers

    switch (o->kind) {
    case DS_OPTIM_SGD:
        s_sgd(w, g, n, flr, wd);
        break;
    case DS_OPTIM_MOMENTUM:
        if (o->paper) {
            s_momentum(w, g, buf[0], n, mu, flr, 1.0f, wd);
        } else if (s->t == 0) {
            s_heavy_first(w, g, buf[0], n, flr, wd, 0.0f);
        } else {
            s_momentum(w, g, buf[0], n, mu, (float)(1.0 - o->dampening), flr,
                       wd);
        }
        break;
    case DS_OPTIM_NAG:
        // ds_optim_check refuses the paper form; PyTorch's is used always.
        if (s->t == 0) {
            s_heavy_first(w, g, buf[0], n, flr, wd, mu);
        } else {
            s_nag(w, g, buf[0], n, mu, flr, wd);
        }
        break;
    case DS_OPTIM_ADAGRAD: {
        float clr = (float)(lr / (1.0 + (double)s->t * o->lr_decay));
        float eps = (float)o->eps;
        if (o->paper) {
            s_adagrad(w, g, buf[0], n, clr, eps, 0.0f, wd);
        } else {
            s_adagrad(w, g, buf[0], n, clr, 0.0f, eps, wd);
        }
        break;
    }
    case DS_OPTIM_ADADELTA:
        // Zeiler's rule has no learning rate: the paper form is lr = 1.
        s_adadelta(w, g, buf[0], buf[1], n, (float)o->rho,
                   (float)(1.0 - o->rho), (float)o->eps, o->paper ? 1.0f : flr,
                   wd);
        break;
    case DS_OPTIM_RMSPROP:
        s_step_rmsprop(o, buf, w, g, n, flr, wd);
        break;
    case DS_OPTIM_ADAM:
        s_step_adam(o, buf, w, g, n, t, lr, wd);
        break;
    }
    s->t = t;
}

void
ds_sgd_apply(float *restrict w, const float *restrict g, size_t n, float lr)
{
    for (size_t i = 0; i < n; i++) {
        w[i] -= lr * g[i];
    }
}

int
ds_vec_finite(const float *g, size_t n)
{
    // A float is NaN or Inf exactly when its exponent bits are all ones. An
    // integer OR-reduction has no rounding, so the loop vectorizes.
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &g[i], sizeof u);
        bad |= (~u & 0x7f800000u) == 0;
    }
    return bad == 0;
}

// s_sumsq_block returns sum g[i]^2 in double. Each float square is exact in
// double; eight independent partial sums keep the adds off one dependency
// chain (and let gcc use vector adds without reassociating anything).
static double
s_sumsq_block(const float *restrict g, size_t n)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            double x = g[i + (size_t)j];
            acc[j] += x * x;
        }
    }
    for (; i < n; i++) {
        double x = g[i];
        acc[0] += x * x;
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
           ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// s_sumsq sums blocks of S_SUM_BLOCK values, then the block sums: over 10M
// values no running sum takes more than a few thousand terms, so the
// relative error stays near 1e-13 even when every term has the same sign.
static double
s_sumsq(const float *g, size_t n)
{
    double total = 0;
    for (size_t lo = 0; lo < n; lo += S_SUM_BLOCK) {
        size_t m = n - lo < S_SUM_BLOCK ? n - lo : S_SUM_BLOCK;
        total += s_sumsq_block(g + lo, m);
    }
    return total;
}

double
ds_clip_norm(float *g, size_t n, double max_norm)
{
    double norm = sqrt(s_sumsq(g, n));
    // A NaN or infinite norm leaves g alone: the caller's finiteness check
    // is what rejects such a gradient.
    if (!(max_norm > 0) || !(norm > max_norm) || !isfinite(norm)) {
        return norm;
    }
    double scale = max_norm / norm;
    for (size_t i = 0; i < n; i++) {
        g[i] = (float)((double)g[i] * scale);
    }
    return norm;
}
