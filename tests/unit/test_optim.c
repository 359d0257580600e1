// SPDX-License-Identifier: MIT
// test_optim - every rule against ALGORITHMS.md's vectors, long runs against
// an independent double implementation, checks, clipping, schedules.
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/optim.h"
#include "common/schedule.h"
#include "tests/unit/suites.h"

static void
s_close(const float *got, const double *want, int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-6 + 1e-5 * fabs(want[i]),
                      "element %d: got %.9g want %.9g", i, got[i], want[i]);
    }
}

// s_close_at is s_close with the vector's name and step in the message.
static void
s_close_at(const char *what, int step, const float *got, const double *want,
           int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-6 + 1e-5 * fabs(want[i]),
                      "%s, step %d, element %d: got %.9g want %.9g", what,
                      step + 1, i, got[i], want[i]);
    }
}

// The common test input of ALGORITHMS.md section 0.
static const float s_theta0[3] = {1.0f, -2.0f, 0.5f};
static const float s_grads[3][3] = {
    {0.1f, -0.2f, 0.0f}, {-0.5f, 0.4f, 0.3f}, {0.25f, 0.1f, -0.05f}};
static const float s_quad_a[3] = {1.0f, 3.0f, 0.25f};

// s_opt returns kind's defaults in the chosen form.
static ds_optim_t
s_opt(ds_optim_kind_t kind, bool paper)
{
    ds_optim_t o;
    ds_optim_defaults(&o, kind);
    o.paper = paper;
    return o;
}

// s_run3 applies o three times at lr from theta0 with the fixed gradients,
// using the state from index off of a larger state, and checks each step.
static void
s_run3_off(const char *what, const ds_optim_t *o, double lr, size_t off,
           const double want[3][3])
{
    char err[256];
    ck_assert_msg(ds_optim_check(o, err, sizeof err) == 0, "%s: %s", what, err);
    ds_optim_state_t s;
    ck_assert_int_eq(ds_optim_state_init(&s, o, off + 3 + 5), 0);
    float w[3];
    memcpy(w, s_theta0, sizeof w);
    for (int t = 0; t < 3; t++) {
        ds_optim_step(o, &s, off, w, s_grads[t], 3, lr);
        s_close_at(what, t, w, want[t], 3);
    }
    ck_assert_uint_eq(s.t, 3);
    ds_optim_state_fini(&s);
}

static void
s_run3(const char *what, const ds_optim_t *o, double lr,
       const double want[3][3])
{
    s_run3_off(what, o, lr, 0, want);
}

// s_run3_quad is s_run3 on f = 0.5 * sum a_i x_i^2: g = a * theta, taken
// at the current float parameters.
static void
s_run3_quad(const char *what, const ds_optim_t *o, double lr,
            const double want[3][3])
{
    ds_optim_state_t s;
    ck_assert_int_eq(ds_optim_state_init(&s, o, 3), 0);
    float w[3];
    memcpy(w, s_theta0, sizeof w);
    for (int t = 0; t < 3; t++) {
        float g[3];
        for (int i = 0; i < 3; i++) {
            g[i] = s_quad_a[i] * w[i];
        }
        ds_optim_step(o, &s, 0, w, g, 3, lr);
        s_close_at(what, t, w, want[t], 3);
    }
    ds_optim_state_fini(&s);
}

// s_run1 is one step from theta0 = [0] with gradient g: the
// epsilon-placement discriminators of ALGORITHMS.md section 4.
static void
s_run1(const char *what, const ds_optim_t *o, double lr, float g, double want)
{
    ds_optim_state_t s;
    ck_assert_int_eq(ds_optim_state_init(&s, o, 1), 0);
    float w = 0.0f;
    ds_optim_step(o, &s, 0, &w, &g, 1, lr);
    s_close_at(what, 0, &w, &want, 1);
    ds_optim_state_fini(&s);
}

// ALGORITHMS.md section 1, SGD lr=0.1 from theta0 = [1, -2, 0.5].
START_TEST(test_sgd_vectors)
{
    float       w[3] = {1.0f, -2.0f, 0.5f};
    const float g[3][3] = {
        {0.1f, -0.2f, 0.0f}, {-0.5f, 0.4f, 0.3f}, {0.25f, 0.1f, -0.05f}};
    const double want[3][3] = {
        {0.99, -1.98, 0.5}, {1.04, -2.02, 0.47}, {1.015, -2.03, 0.475}};
    for (int t = 0; t < 3; t++) {
        ds_sgd_apply(w, g[t], 3, 0.1f);
        s_close(w, want[t], 3);
    }
}
END_TEST

// The Downpour sanity identity of ALGORITHMS.md section 9: on
// f = 0.5 * sum a_i x_i^2 with a = [1, 3, 0.25], SGD at 0.1 gives
// step 0 [0.9, -1.4, 0.4875] ... step 5 [0.531441, -0.235298, 0.429534151].
START_TEST(test_sgd_quadratic)
{
    float        w[3] = {1.0f, -2.0f, 0.5f};
    const float  a[3] = {1.0f, 3.0f, 0.25f};
    const double want[6][3] = {{0.9, -1.4, 0.4875},
                               {0.81, -0.98, 0.4753125},
                               {0.729, -0.686, 0.463429687},
                               {0.6561, -0.4802, 0.451843945},
                               {0.59049, -0.33614, 0.440547847},
                               {0.531441, -0.235298, 0.429534151}};
    for (int t = 0; t < 6; t++) {
        float g[3];
        for (int i = 0; i < 3; i++) {
            g[i] = a[i] * w[i];
        }
        ds_sgd_apply(w, g, 3, 0.1f);
        s_close(w, want[t], 3);
    }
}
END_TEST

// Section 1 through ds_optim_step, both forms, and coupled weight decay.
START_TEST(test_sgd_rule_vectors)
{
    const double plain[3][3] = {
        {0.99, -1.98, 0.5}, {1.04, -2.02, 0.47}, {1.015, -2.03, 0.475}};
    const double wd[3][3] = {{0.989, -1.978, 0.4995},
                             {1.038011, -2.016022, 0.4690005},
                             {1.01197299, -2.02400598, 0.4735315}};
    ds_optim_t   o = s_opt(DS_OPTIM_SGD, false);
    s_run3("SGD lr=0.1", &o, 0.1, plain);
    o.paper = true;
    s_run3("SGD paper lr=0.1", &o, 0.1, plain);
    o.paper = false;
    o.weight_decay = 0.01;
    s_run3("SGD lr=0.1 weight_decay=0.01", &o, 0.1, wd);
    o.paper = true;
    s_run3("SGD paper lr=0.1 weight_decay=0.01", &o, 0.1, wd);
}
END_TEST

// Section 2: PyTorch's form (== Ruder's at constant lr) and dampening.
START_TEST(test_momentum_vectors)
{
    const double plain[3][3] = {
        {0.99, -1.98, 0.5}, {1.031, -2.002, 0.47}, {1.0429, -2.0318, 0.448}};
    const double damp[3][3] = {
        {0.99, -1.98, 0.5}, {1.006, -1.982, 0.485}, {1.0079, -1.9888, 0.474}};
    ds_optim_t o = s_opt(DS_OPTIM_MOMENTUM, false);
    ck_assert_double_eq(o.momentum, 0.9);
    s_run3("Momentum PyTorch lr=0.1 mu=0.9", &o, 0.1, plain);
    o.paper = true;
    s_run3("Momentum Ruder eta=0.1 gamma=0.9", &o, 0.1, plain);
    o.paper = false;
    o.dampening = 0.5;
    s_run3("Momentum PyTorch lr=0.1 mu=0.9 dampening=0.5", &o, 0.1, damp);
}
END_TEST

// The two momentum forms differ once lr changes: PyTorch rescales the
// whole buffer by the new lr, Ruder's velocity keeps the old one. One step
// at lr 0.1 then one at 0.05 with g = 1, 1 from w = 0:
// PyTorch b = 1, 1.9: w = -0.1, -0.1 - 0.05 * 1.9 = -0.195.
// Ruder v = 0.1, 0.09 + 0.05 = 0.14: w = -0.1, -0.24.
START_TEST(test_momentum_forms_differ_under_schedule)
{
    const float g = 1.0f;
    for (int paper = 0; paper < 2; paper++) {
        ds_optim_t       o = s_opt(DS_OPTIM_MOMENTUM, paper);
        ds_optim_state_t s;
        ck_assert_int_eq(ds_optim_state_init(&s, &o, 1), 0);
        float w = 0.0f;
        ds_optim_step(&o, &s, 0, &w, &g, 1, 0.1);
        ds_optim_step(&o, &s, 0, &w, &g, 1, 0.05);
        double want = paper ? -0.24 : -0.195;
        s_close_at(paper ? "Ruder" : "PyTorch", 1, &w, &want, 1);
        ds_optim_state_fini(&s);
    }
}
END_TEST

// Section 3: PyTorch nesterov=True on the fixed gradients, and on the
// quadratic, where classical momentum and NAG part ways.
START_TEST(test_nag_vectors)
{
    const double fixed[3][3] = {{0.981, -1.962, 0.5},
                                {1.0679, -2.0218, 0.443},
                                {1.05361, -2.05862, 0.4282}};
    const double classical[3][3] = {{0.9, -1.4, 0.4875},
                                    {0.72, -0.44, 0.4640625},
                                    {0.486, 0.556, 0.431367187}};
    const double nag[3][3] = {{0.81, -0.86, 0.47625},
                              {0.5751, 0.1162, 0.443503125},
                              {0.327321, 0.696346, 0.403680164}};
    ds_optim_t   o = s_opt(DS_OPTIM_NAG, false);
    s_run3("Nesterov PyTorch lr=0.1 mu=0.9 (fixed grads)", &o, 0.1, fixed);
    s_run3_quad("NAG PyTorch (nesterov=True) params p_t", &o, 0.1, nag);
    ds_optim_t m = s_opt(DS_OPTIM_MOMENTUM, false);
    s_run3_quad("classical momentum (PyTorch) eta=0.1 gamma=0.9", &m, 0.1,
                classical);
    m.paper = true;
    s_run3_quad("classical momentum (Ruder) eta=0.1 gamma=0.9", &m, 0.1,
                classical);
}
END_TEST

// PyTorch's stored NAG parameters are Sutskever's look-ahead point
// p = theta - gamma * v with v = lr * b, so p + gamma * lr * b must be the
// "NAG Ruder/Sutskever theta_t" vector of section 3.
START_TEST(test_nag_is_sutskever_lookahead)
{
    const double     theta[3][3] = {{0.9, -1.4, 0.4875},
                                    {0.729, -0.602, 0.46434375},
                                    {0.51759, 0.08134, 0.432415547}};
    ds_optim_t       o = s_opt(DS_OPTIM_NAG, false);
    ds_optim_state_t s;
    ck_assert_int_eq(ds_optim_state_init(&s, &o, 3), 0);
    ck_assert_int_eq(s.nbuf, 1);
    float w[3];
    memcpy(w, s_theta0, sizeof w);
    for (int t = 0; t < 3; t++) {
        float g[3], th[3];
        for (int i = 0; i < 3; i++) {
            g[i] = s_quad_a[i] * w[i];
        }
        ds_optim_step(&o, &s, 0, w, g, 3, 0.1);
        for (int i = 0; i < 3; i++) {
            th[i] = w[i] + 0.9f * 0.1f * s.buf[0][i];
        }
        s_close_at("NAG Ruder/Sutskever theta_t", t, th, theta[t], 3);
    }
    ds_optim_state_fini(&s);
}
END_TEST

// Section 4: Adagrad, PyTorch and Ruder.
START_TEST(test_adagrad_vectors)
{
    const double lr01[3][3] = {{0.9, -1.9, 0.5},
                               {0.998058068, -1.98944272, 0.4},
                               {0.954035522, -2.01126451, 0.416439899}};
    const double defaults[3][3] = {{0.99, -1.99, 0.5},
                                   {0.999805807, -1.99894427, 0.49},
                                   {0.995403552, -2.00112645, 0.49164399}};
    const double decay[3][3] = {{0.969848866, -1.94654775, 0.5},
                                {1.04560644, -2.01293836, 0.437432073},
                                {1.01355516, -2.02790547, 0.446928787}};
    const double ruder[3][3] = {{0.90000005, -1.90000001, 0.5},
                                {0.998058116, -1.98944273, 0.400000006},
                                {0.954035571, -2.01126452, 0.416439903}};
    ds_optim_t   o = s_opt(DS_OPTIM_ADAGRAD, false);
    ck_assert_double_eq(o.eps, 1e-10);
    s_run3("Adagrad PyTorch lr=0.1 eps=1e-10 init=0", &o, 0.1, lr01);
    s_run3("Adagrad PyTorch defaults lr=0.01", &o,
           ds_optim_default_lr(DS_OPTIM_ADAGRAD), defaults);
    o.lr_decay = 0.1;
    o.initial_accumulator = 0.1;
    s_run3("Adagrad PyTorch lr=0.1 lr_decay=0.1 init_acc=0.1", &o, 0.1, decay);
    o = s_opt(DS_OPTIM_ADAGRAD, true);
    o.eps = 1e-8;
    s_run3("Adagrad Ruder eta=0.1 eps=1e-8 inside sqrt", &o, 0.1, ruder);
}
END_TEST

// Section 5: Adadelta, PyTorch and Zeiler (no lr: the one given is unused).
START_TEST(test_adadelta_vectors)
{
    const double torch[3][3] = {{0.996839302, -1.99683812, 0.5},
                                {1.00123187, -2.00087837, 0.496837898},
                                {0.998386762, -2.0022549, 0.497611653}};
    const double zeiler[3][3] = {{0.995532329, -1.99552898, 0.5},
                                 {1.0017367, -2.00121334, 0.495528361},
                                 {0.997778867, -2.00311043, 0.496594184}};
    ds_optim_t   o = s_opt(DS_OPTIM_ADADELTA, false);
    ck_assert_double_eq(o.eps, 1e-6);
    ck_assert_double_eq(o.rho, 0.9);
    s_run3("Adadelta PyTorch defaults lr=1 rho=0.9 eps=1e-6", &o,
           ds_optim_default_lr(DS_OPTIM_ADADELTA), torch);
    o = s_opt(DS_OPTIM_ADADELTA, true);
    o.rho = 0.95;
    s_run3("Adadelta Zeiler rho=0.95 eps=1e-6 (lr 0.25 ignored)", &o, 0.25,
           zeiler);
}
END_TEST

// Section 6: RMSprop, PyTorch (plain, momentum, centered) and Hinton/Ruder.
START_TEST(test_rmsprop_vectors)
{
    const double plain[3][3] = {{0.9000001, -1.90000005, 0.5},
                                {0.998077011, -1.98953233, 0.400000033},
                                {0.953869097, -2.01147967, 0.416520493}};
    const double mom[3][3] = {{0.9000001, -1.90000005, 0.5},
                              {0.908077101, -1.89953237, 0.400000033},
                              {0.871138488, -1.92105881, 0.326520523}};
    const double centered[3][3] = {{0.899496319, -1.89949627, 0.5},
                                   {0.997878048, -1.9891202, 0.399496252},
                                   {0.953655193, -2.01111527, 0.416072004}};
    const double ruder[3][3] = {{0.996837738, -1.99683773, 0.5},
                                {0.999944586, -1.99969487, 0.496837724},
                                {0.998490508, -2.00042732, 0.497384899}};
    ds_optim_t   o = s_opt(DS_OPTIM_RMSPROP, false);
    ck_assert_double_eq(o.alpha, 0.99);
    ck_assert_double_eq(o.eps, 1e-8);
    ck_assert_double_eq(o.momentum, 0.0);
    s_run3("RMSprop PyTorch defaults lr=0.01 alpha=0.99 eps=1e-8", &o,
           ds_optim_default_lr(DS_OPTIM_RMSPROP), plain);
    o.momentum = 0.9;
    s_run3("RMSprop PyTorch lr=0.01 momentum=0.9", &o, 0.01, mom);
    o.momentum = 0;
    o.centered = true;
    s_run3("RMSprop PyTorch lr=0.01 centered=True", &o, 0.01, centered);
    o = s_opt(DS_OPTIM_RMSPROP, true);
    o.alpha = 0.9;
    s_run3("RMSprop Ruder/Hinton eta=0.001 gamma=0.9 eps=1e-8 inside sqrt", &o,
           0.001, ruder);
}
END_TEST

// Section 7: Adam, PyTorch (Algorithm 1) and the paper's efficient form.
START_TEST(test_adam_vectors)
{
    const double defaults[3][3] = {{0.999, -1.999, 0.5},
                                   {0.999598354, -1.9993661, 0.499255863},
                                   {0.999732272, -1.99978175, 0.498793549}};
    const double lr01[3][3] = {{0.90000001, -1.9, 0.5},
                               {0.959835427, -1.93661036, 0.425586321},
                               {0.9732272, -1.97817547, 0.379354891}};
    const double paper[3][3] = {{0.900000316, -1.90000016, 0.5},
                                {0.959835697, -1.93661048, 0.425586396},
                                {0.973227464, -1.97817558, 0.379355012}};
    ds_optim_t   o = s_opt(DS_OPTIM_ADAM, false);
    ck_assert_double_eq(o.beta1, 0.9);
    ck_assert_double_eq(o.beta2, 0.999);
    ck_assert_double_eq(o.eps, 1e-8);
    s_run3("Adam PyTorch defaults lr=1e-3", &o,
           ds_optim_default_lr(DS_OPTIM_ADAM), defaults);
    s_run3("Adam PyTorch lr=0.1", &o, 0.1, lr01);
    o.paper = true;
    s_run3("Adam paper 'efficient' form lr=0.1 eps_hat=1e-8", &o, 0.1, paper);
}
END_TEST

// The same vectors with the state taken from the middle of a larger state:
// the rule must read and write only [off, off + n) of each array.
START_TEST(test_state_offset)
{
    const double lr01[3][3] = {{0.90000001, -1.9, 0.5},
                               {0.959835427, -1.93661036, 0.425586321},
                               {0.9732272, -1.97817547, 0.379354891}};
    ds_optim_t   o = s_opt(DS_OPTIM_ADAM, false);
    o.amsgrad = true; // equal to plain Adam on these vectors (v only grows)
    s_run3_off("Adam amsgrad lr=0.1, state offset 13", &o, 0.1, 13, lr01);

    ds_optim_state_t s;
    ck_assert_int_eq(ds_optim_state_init(&s, &o, 40), 0);
    ck_assert_int_eq(s.nbuf, 3);
    float w[3];
    memcpy(w, s_theta0, sizeof w);
    for (int t = 0; t < 3; t++) {
        ds_optim_step(&o, &s, 13, w, s_grads[t], 3, 0.1);
    }
    s_close(w, lr01[2], 3);
    for (int k = 0; k < s.nbuf; k++) {
        for (size_t i = 0; i < s.n; i++) {
            if (i >= 13 && i < 16) {
                ck_assert_float_ne(s.buf[k][i], 0.0f);
            } else {
                ck_assert_float_eq(s.buf[k][i], 0.0f);
            }
        }
    }
    ds_optim_state_fini(&s);
}
END_TEST

// Section 4's epsilon-placement discriminators (theta0 = [0], one step).
START_TEST(test_eps_discriminators)
{
    ds_optim_t o = s_opt(DS_OPTIM_ADAGRAD, false);
    s_run1("Adagrad torch eps=1e-10 outside", &o, 0.1, 1e-4f, -0.0999999);
    o = s_opt(DS_OPTIM_ADAGRAD, true);
    o.eps = 1e-8;
    s_run1("Adagrad ruder eps=1e-8 inside", &o, 0.1, 1e-4f, -0.0707106781);

    o = s_opt(DS_OPTIM_RMSPROP, false);
    s_run1("RMSprop torch eps=1e-8 outside", &o, 0.01, 1e-4f, -0.0999000999);
    o = s_opt(DS_OPTIM_RMSPROP, true);
    s_run1("RMSprop eps-inside 1e-8", &o, 0.01, 1e-4f, -0.0099503719);

    o = s_opt(DS_OPTIM_ADAM, false);
    s_run1("Adam torch Alg.1", &o, 0.1, 1e-8f, -0.05);
    o = s_opt(DS_OPTIM_ADAM, true);
    s_run1("Adam paper-efficient eps_hat", &o, 0.1, 1e-8f, -0.003065343);
}
END_TEST

// ---- long runs against an independent double implementation ----

#define S_LONG_N 16       // coordinates of the quadratic
#define S_LONG_STEPS 1000 // updates per run
#define S_LONG_RTOL 1e-4  // relative tolerance (ALGORITHMS.md section 0)

// s_ref_t is the double state of the reference implementation.
typedef struct {
    double   b[S_LONG_N];    // momentum buffer / velocity
    double   m[S_LONG_N];    // first moment / centered mean
    double   v[S_LONG_N];    // second moment / sum or average of squares
    double   vmax[S_LONG_N]; // amsgrad maximum
    double   d[S_LONG_N];    // adadelta: average of squared updates
    unsigned t;              // steps taken
} s_ref_t;

// s_ref_step is one update of o, written from the equations in
// ALGORITHMS.md sections 1-7, in plain double, one coordinate at a time.
static void
s_ref_step(const ds_optim_t *o, s_ref_t *r, double *x, const double *grad,
           double lr)
{
    r->t++;
    double t = r->t;
    for (int i = 0; i < S_LONG_N; i++) {
        double g = grad[i] + o->weight_decay * x[i];
        switch (o->kind) {
        case DS_OPTIM_SGD:
            x[i] = x[i] - lr * g;
            break;
        case DS_OPTIM_MOMENTUM:
            if (o->paper) {
                r->b[i] = o->momentum * r->b[i] + lr * g;
                x[i] = x[i] - r->b[i];
            } else {
                if (r->t == 1) {
                    r->b[i] = g;
                } else {
                    r->b[i] = o->momentum * r->b[i] + (1 - o->dampening) * g;
                }
                x[i] = x[i] - lr * r->b[i];
            }
            break;
        case DS_OPTIM_NAG:
            r->b[i] = r->t == 1 ? g : o->momentum * r->b[i] + g;
            x[i] = x[i] - lr * (g + o->momentum * r->b[i]);
            break;
        case DS_OPTIM_ADAGRAD: {
            double clr = lr / (1 + (t - 1) * o->lr_decay);
            r->v[i] += g * g;
            if (o->paper) {
                x[i] = x[i] - clr * g / sqrt(r->v[i] + o->eps);
            } else {
                x[i] = x[i] - clr * g / (sqrt(r->v[i]) + o->eps);
            }
            break;
        }
        case DS_OPTIM_ADADELTA: {
            double rho = o->rho;
            r->v[i] = rho * r->v[i] + (1 - rho) * g * g;
            double dx = sqrt(r->d[i] + o->eps) / sqrt(r->v[i] + o->eps) * g;
            r->d[i] = rho * r->d[i] + (1 - rho) * dx * dx;
            x[i] = x[i] - (o->paper ? 1.0 : lr) * dx;
            break;
        }
        case DS_OPTIM_RMSPROP: {
            double a = o->alpha;
            r->v[i] = a * r->v[i] + (1 - a) * g * g;
            if (o->paper) {
                x[i] = x[i] - lr * g / sqrt(r->v[i] + o->eps);
                break;
            }
            double var = r->v[i];
            if (o->centered) {
                r->m[i] = a * r->m[i] + (1 - a) * g;
                var = r->v[i] - r->m[i] * r->m[i];
            }
            double den = sqrt(var) + o->eps;
            if (o->momentum > 0) {
                r->b[i] = o->momentum * r->b[i] + g / den;
                x[i] = x[i] - lr * r->b[i];
            } else {
                x[i] = x[i] - lr * g / den;
            }
            break;
        }
        case DS_OPTIM_ADAM: {
            double b1 = o->beta1, b2 = o->beta2;
            r->m[i] = b1 * r->m[i] + (1 - b1) * g;
            r->v[i] = b2 * r->v[i] + (1 - b2) * g * g;
            r->vmax[i] = fmax(r->vmax[i], r->v[i]);
            double vv = o->amsgrad ? r->vmax[i] : r->v[i];
            double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
            if (o->paper) {
                double at = lr * sqrt(bc2) / bc1;
                x[i] = x[i] - at * r->m[i] / (sqrt(vv) + o->eps);
            } else {
                double mhat = r->m[i] / bc1, vhat = vv / bc2;
                x[i] = x[i] - lr * mhat / (sqrt(vhat) + o->eps);
            }
            break;
        }
        }
    }
}

// s_long runs o for S_LONG_STEPS on f = 0.5 * sum a_i (x_i - c_i)^2 with a
// decaying learning rate lr0 / (1 + t / 500), in float through
// ds_optim_step (on state from index 5 of a larger state) and in double
// through s_ref_step, each taking its gradient at its own parameters, and
// compares them after every step. Every c_i is in [1, 2] and every start is
// at least 0.33, so no trajectory passes through 0, where a relative
// comparison would mean nothing.
static void
s_long(const char *what, const ds_optim_t *o, double lr0)
{
    float  a[S_LONG_N], c[S_LONG_N], w[S_LONG_N];
    double x[S_LONG_N];
    for (int i = 0; i < S_LONG_N; i++) {
        a[i] = 0.05f + 0.25f * (float)(i % 7) + 0.5f * (float)(i % 3);
        c[i] = 1.0f + 0.125f * (float)(i % 9);
        w[i] = i % 2 ? c[i] / 3.0f : c[i] + 0.7f + 0.1f * (float)i;
        x[i] = w[i];
    }
    char err[256];
    ck_assert_msg(ds_optim_check(o, err, sizeof err) == 0, "%s: %s", what, err);
    ds_optim_state_t s;
    ck_assert_int_eq(ds_optim_state_init(&s, o, S_LONG_N + 11), 0);
    s_ref_t r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < S_LONG_N && o->kind == DS_OPTIM_ADAGRAD; i++) {
        r.v[i] = o->initial_accumulator;
    }
    for (int t = 0; t < S_LONG_STEPS; t++) {
        double lr = lr0 / (1.0 + t / 500.0);
        float  gf[S_LONG_N];
        double gd[S_LONG_N];
        for (int i = 0; i < S_LONG_N; i++) {
            gf[i] = a[i] * (w[i] - c[i]);
            gd[i] = (double)a[i] * (x[i] - (double)c[i]);
        }
        ds_optim_step(o, &s, 5, w, gf, S_LONG_N, lr);
        s_ref_step(o, &r, x, gd, lr);
        for (int i = 0; i < S_LONG_N; i++) {
            ck_assert_msg(fabs(w[i] - x[i]) <= S_LONG_RTOL * fabs(x[i]),
                          "%s, step %d, element %d: got %.9g want %.9g", what,
                          t + 1, i, w[i], x[i]);
        }
    }
    ck_assert_uint_eq(s.t, S_LONG_STEPS);
    ds_optim_state_fini(&s);
}

START_TEST(test_long_sgd_momentum_nag)
{
    ds_optim_t o = s_opt(DS_OPTIM_SGD, false);
    s_long("sgd", &o, 0.1);
    o.weight_decay = 0.05;
    s_long("sgd weight_decay=0.05", &o, 0.1);

    o = s_opt(DS_OPTIM_MOMENTUM, false);
    s_long("momentum pytorch", &o, 0.02);
    o.dampening = 0.3;
    s_long("momentum pytorch dampening=0.3", &o, 0.02);
    o = s_opt(DS_OPTIM_MOMENTUM, true);
    s_long("momentum ruder", &o, 0.02);

    o = s_opt(DS_OPTIM_NAG, false);
    s_long("nag pytorch", &o, 0.02);
    o.weight_decay = 0.01;
    s_long("nag pytorch weight_decay=0.01", &o, 0.02);
}
END_TEST

START_TEST(test_long_adagrad_adadelta)
{
    ds_optim_t o = s_opt(DS_OPTIM_ADAGRAD, false);
    s_long("adagrad pytorch", &o, 0.5);
    o.lr_decay = 0.01;
    o.initial_accumulator = 0.1;
    s_long("adagrad pytorch lr_decay=0.01 init=0.1", &o, 0.5);
    o = s_opt(DS_OPTIM_ADAGRAD, true);
    o.eps = 1e-8;
    s_long("adagrad ruder", &o, 0.5);

    o = s_opt(DS_OPTIM_ADADELTA, false);
    s_long("adadelta pytorch", &o, 1.0);
    o = s_opt(DS_OPTIM_ADADELTA, true);
    o.rho = 0.95;
    s_long("adadelta zeiler", &o, 0.5);
}
END_TEST

START_TEST(test_long_rmsprop_adam)
{
    ds_optim_t o = s_opt(DS_OPTIM_RMSPROP, false);
    s_long("rmsprop pytorch", &o, 0.01);
    o.momentum = 0.5;
    s_long("rmsprop pytorch momentum=0.5", &o, 0.002);
    o.centered = true;
    s_long("rmsprop pytorch centered momentum=0.5", &o, 0.002);
    o.momentum = 0;
    s_long("rmsprop pytorch centered", &o, 0.01);
    o = s_opt(DS_OPTIM_RMSPROP, true);
    o.alpha = 0.9;
    s_long("rmsprop hinton", &o, 0.01);

    o = s_opt(DS_OPTIM_ADAM, false);
    s_long("adam pytorch", &o, 0.01);
    o.amsgrad = true;
    s_long("adam pytorch amsgrad", &o, 0.01);
    o.weight_decay = 0.1;
    s_long("adam pytorch amsgrad weight_decay=0.1", &o, 0.01);
    o = s_opt(DS_OPTIM_ADAM, true);
    s_long("adam paper", &o, 0.01);
    o.amsgrad = true;
    s_long("adam paper amsgrad", &o, 0.01);
}
END_TEST

// ---- names, defaults, checks, state ----

START_TEST(test_names_and_defaults)
{
    const char *names[DS_OPTIM_COUNT] = {
        "sgd", "momentum", "nag", "adagrad", "adadelta", "rmsprop", "adam"};
    const double lr[DS_OPTIM_COUNT] = {1e-3, 1e-3, 1e-3, 1e-2, 1.0, 1e-2, 1e-3};
    const double eps[DS_OPTIM_COUNT] = {0, 0, 0, 1e-10, 1e-6, 1e-8, 1e-8};
    for (int k = 0; k < DS_OPTIM_COUNT; k++) {
        ck_assert_int_eq(ds_optim_parse(names[k]), k);
        ck_assert_str_eq(ds_optim_name((ds_optim_kind_t)k), names[k]);
        ck_assert_double_eq(ds_optim_default_lr((ds_optim_kind_t)k), lr[k]);
        ds_optim_t o;
        ds_optim_defaults(&o, (ds_optim_kind_t)k);
        ck_assert_int_eq(o.kind, k);
        ck_assert(!o.paper && !o.centered && !o.amsgrad);
        ck_assert_double_eq(o.eps, eps[k]);
        ck_assert_double_eq(
            o.momentum, k == DS_OPTIM_MOMENTUM || k == DS_OPTIM_NAG ? 0.9 : 0);
        ck_assert_double_eq(o.dampening, 0);
        ck_assert_double_eq(o.weight_decay, 0);
        ck_assert_double_eq(o.lr_decay, 0);
        ck_assert_double_eq(o.initial_accumulator, 0);
        char err[256] = "";
        ck_assert_msg(ds_optim_check(&o, err, sizeof err) == 0, "%s: %s",
                      names[k], err);
        o.paper = true;
        int rc = ds_optim_check(&o, err, sizeof err);
        ck_assert_int_eq(rc, k == DS_OPTIM_NAG ? -EINVAL : 0);
    }
    ck_assert_int_eq(ds_optim_parse("Adam"), -1);
    ck_assert_int_eq(ds_optim_parse("adamw"), -1);
    ck_assert_int_eq(ds_optim_parse(""), -1);
    ck_assert_int_eq(ds_optim_parse(NULL), -1);
}
END_TEST

// s_refused asserts that ds_optim_check refuses o naming key.
static void
s_refused(const ds_optim_t *o, const char *key)
{
    char err[256] = "";
    ck_assert_int_eq(ds_optim_check(o, err, sizeof err), -EINVAL);
    char want[64];
    snprintf(want, sizeof want, "[optimizer] %s: ", key);
    ck_assert_msg(strstr(err, want) == err, "want %s..., got %s", want, err);
}

START_TEST(test_check_refusals)
{
    ds_optim_t o = s_opt(DS_OPTIM_ADAM, false);
    char       err[256];
    o.beta1 = 1.5;
    ck_assert_int_eq(ds_optim_check(&o, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "[optimizer] beta1: must be in [0, 1) (got 1.5)");
    o.beta1 = 1.0;
    s_refused(&o, "beta1");
    o.beta1 = NAN;
    s_refused(&o, "beta1");
    o = s_opt(DS_OPTIM_ADAM, false);
    o.beta2 = -0.1;
    s_refused(&o, "beta2");
    o = s_opt(DS_OPTIM_ADAM, false);
    o.eps = -1e-8;
    s_refused(&o, "eps");
    o.eps = 0;
    s_refused(&o, "eps");
    o = s_opt(DS_OPTIM_ADAM, false);
    o.weight_decay = INFINITY;
    s_refused(&o, "weight_decay");
    o.weight_decay = -0.1;
    s_refused(&o, "weight_decay");

    o = s_opt(DS_OPTIM_ADADELTA, false);
    o.rho = 1.0;
    s_refused(&o, "rho");

    o = s_opt(DS_OPTIM_MOMENTUM, false);
    o.momentum = 0;
    s_refused(&o, "momentum");
    o.momentum = 1.0;
    s_refused(&o, "momentum");
    o.momentum = 0.9;
    o.dampening = 1.5;
    s_refused(&o, "dampening");
    o.dampening = 0.5;
    ck_assert_int_eq(ds_optim_check(&o, err, sizeof err), 0);
    o.paper = true;
    s_refused(&o, "dampening");

    o = s_opt(DS_OPTIM_NAG, false);
    o.momentum = 0;
    s_refused(&o, "momentum");
    o.momentum = 0.9;
    o.dampening = 0.1;
    s_refused(&o, "dampening");
    o.dampening = 0;
    o.paper = true;
    s_refused(&o, "form");

    o = s_opt(DS_OPTIM_RMSPROP, true);
    o.centered = true;
    s_refused(&o, "centered");
    o.centered = false;
    o.momentum = 0.5;
    s_refused(&o, "momentum");
    o.paper = false;
    ck_assert_int_eq(ds_optim_check(&o, err, sizeof err), 0);
    o.centered = true;
    ck_assert_int_eq(ds_optim_check(&o, err, sizeof err), 0);
    o.alpha = 1.0;
    s_refused(&o, "alpha");
    o.alpha = -0.5;
    s_refused(&o, "alpha");

    o = s_opt(DS_OPTIM_ADAGRAD, false);
    o.lr_decay = -1;
    s_refused(&o, "lr_decay");
    o.lr_decay = 0;
    o.initial_accumulator = -0.1;
    s_refused(&o, "initial_accumulator");
    o.initial_accumulator = 0;
    o.eps = 0;
    s_refused(&o, "eps");
    o.initial_accumulator = 0.1; // no 0/0 possible: allowed
    ck_assert_int_eq(ds_optim_check(&o, err, sizeof err), 0);

    o = s_opt(DS_OPTIM_SGD, false);
    o.kind = (ds_optim_kind_t)DS_OPTIM_COUNT;
    s_refused(&o, "name");

    // A short buffer truncates the text but still refuses.
    o = s_opt(DS_OPTIM_ADAM, false);
    o.beta1 = 2;
    char tiny[8];
    ck_assert_int_eq(ds_optim_check(&o, tiny, sizeof tiny), -EINVAL);
    ck_assert_str_eq(tiny, "[optimi");
    ck_assert_int_eq(ds_optim_check(&o, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_state_arrays)
{
    const int want[DS_OPTIM_COUNT] = {0, 1, 1, 1, 2, 1, 2};
    for (int k = 0; k < DS_OPTIM_COUNT; k++) {
        ds_optim_t o = s_opt((ds_optim_kind_t)k, false);
        ck_assert_int_eq(ds_optim_state_arrays(&o), want[k]);
    }
    ds_optim_t o = s_opt(DS_OPTIM_RMSPROP, false);
    o.momentum = 0.9;
    ck_assert_int_eq(ds_optim_state_arrays(&o), 2);
    o.centered = true;
    ck_assert_int_eq(ds_optim_state_arrays(&o), 3);
    o.momentum = 0;
    ck_assert_int_eq(ds_optim_state_arrays(&o), 2);
    o = s_opt(DS_OPTIM_ADAM, false);
    o.amsgrad = true;
    ck_assert_int_eq(ds_optim_state_arrays(&o), 3);

    // Allocation: zeroed, or Adagrad's initial accumulator; aligned.
    o = s_opt(DS_OPTIM_ADAGRAD, false);
    o.initial_accumulator = 0.25;
    ds_optim_state_t s;
    ck_assert_int_eq(ds_optim_state_init(&s, &o, 1001), 0);
    ck_assert_int_eq(s.nbuf, 1);
    ck_assert_uint_eq(s.n, 1001);
    ck_assert_uint_eq(s.t, 0);
    ck_assert_uint_eq((uintptr_t)s.buf[0] % 64, 0);
    for (size_t i = 0; i < s.n; i++) {
        ck_assert_float_eq(s.buf[0][i], 0.25f);
    }
    ds_optim_state_fini(&s);
    ck_assert_ptr_null(s.buf[0]);
    ds_optim_state_fini(&s); // idempotent

    o = s_opt(DS_OPTIM_SGD, false);
    ck_assert_int_eq(ds_optim_state_init(&s, &o, 10), 0);
    ck_assert_int_eq(s.nbuf, 0);
    float w = 1.0f, g = 2.0f;
    ds_optim_step(&o, &s, 3, &w, &g, 1, 0.25);
    ck_assert_float_eq(w, 0.5f);
    ck_assert_uint_eq(s.t, 1);
    ds_optim_state_fini(&s);

    // Zero parameters is a valid (empty) state.
    o = s_opt(DS_OPTIM_ADAM, false);
    ck_assert_int_eq(ds_optim_state_init(&s, &o, 0), 0);
    ds_optim_step(&o, &s, 0, &w, &g, 0, 0.1);
    ds_optim_state_fini(&s);

    // A size whose bytes overflow is refused before any allocation.
    ck_assert_int_eq(ds_optim_state_init(&s, &o, SIZE_MAX / 2), -ENOMEM);
    ck_assert_int_eq(s.nbuf, 0);
    for (int k = 0; k < DS_OPTIM_MAX_STATE; k++) {
        ck_assert_ptr_null(s.buf[k]);
    }
    ds_optim_state_fini(&s);
}
END_TEST

// An allocation failure after the first array must free what was taken.
// An address-space limit of the current size plus 1.5 GiB lets the first
// of Adam's 1 GiB arrays through and fails the second; glibc serves both
// with mmap, so its count of mapped bytes shows anything left behind.
// ASan reserves terabytes of address space up front, so it skips this.
START_TEST(test_state_init_enomem)
{
#ifndef __SANITIZE_ADDRESS__
    long  pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld", &pages), 1);
    fclose(f);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)pages * 4096 + (rlim_t)3 * (512 << 20);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);

    ds_optim_t       o = s_opt(DS_OPTIM_ADAM, false);
    ds_optim_state_t s;
    struct mallinfo2 before = mallinfo2();
    int              rc = ds_optim_state_init(&s, &o, (size_t)1 << 28);
    struct mallinfo2 after = mallinfo2();
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
    ck_assert_int_eq(rc, -ENOMEM);
    // The first array is a fresh mapping of 1 GiB: had it leaked, the
    // mapped bytes would have grown. (Small-heap counters move with glibc's
    // own bookkeeping when a mapping fails, so they prove nothing here.)
    ck_assert_uint_eq(after.hblkhd, before.hblkhd);
    ck_assert_int_eq(s.nbuf, 0);
    for (int k = 0; k < DS_OPTIM_MAX_STATE; k++) {
        ck_assert_ptr_null(s.buf[k]);
    }
#endif
}
END_TEST

START_TEST(test_clip_norm)
{
    // 3-4-12: norm 13.
    float g[3] = {3.0f, -4.0f, 12.0f};
    ck_assert_double_eq(ds_clip_norm(g, 3, 0), 13.0); // 0: off
    ck_assert_float_eq(g[0], 3.0f);
    ck_assert_double_eq(ds_clip_norm(g, 3, -1), 13.0);   // < 0: off
    ck_assert_double_eq(ds_clip_norm(g, 3, 13.0), 13.0); // at the bound
    ck_assert_float_eq(g[2], 12.0f);
    ck_assert_double_eq(ds_clip_norm(g, 3, 20.0), 13.0); // under the bound
    ck_assert_float_eq(g[0], 3.0f);
    ck_assert_float_eq(g[1], -4.0f);
    ck_assert_float_eq(g[2], 12.0f);
    ck_assert_double_eq(ds_clip_norm(g, 3, 6.5), 13.0); // halves exactly
    ck_assert_float_eq(g[0], 1.5f);
    ck_assert_float_eq(g[1], -2.0f);
    ck_assert_float_eq(g[2], 6.0f);
    ck_assert_double_eq_tol(ds_clip_norm(g, 3, 100), 6.5, 1e-15);
    ck_assert_double_eq(ds_clip_norm(g, 0, 1.0), 0.0);

    // Odd length (not a multiple of the partial sums), scale not a power
    // of two: every value is the float nearest to value * max / norm.
    enum { N = 1003 };
    float *a = malloc(N * sizeof *a);
    float *b = malloc(N * sizeof *b);
    double sum = 0;
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < N; i++) {
        a[i] = b[i] = (float)((i * 7919) % 1000 - 500) / 37.0f;
        sum += (double)a[i] * a[i];
    }
    double norm = sqrt(sum);
    ck_assert_double_eq_tol(ds_clip_norm(a, N, 1.0), norm, 1e-12 * norm);
    double after = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_float_eq(a[i], (float)((double)b[i] * (1.0 / norm)));
        after += (double)a[i] * a[i];
    }
    ck_assert_double_eq_tol(sqrt(after), 1.0, 1e-6);
    free(a);
    free(b);
}
END_TEST

// 10M values of 0.1f: a float running sum of squares would be off by
// percents; the norm must be sqrt(n) * 0.1f to double rounding.
START_TEST(test_clip_norm_10m)
{
    size_t n = 10 * 1000 * 1000;
    float *g = malloc(n * sizeof *g);
    ck_assert_ptr_nonnull(g);
    for (size_t i = 0; i < n; i++) {
        g[i] = 0.1f;
    }
    double want = sqrt((double)n) * (double)0.1f;
    ck_assert_double_eq_tol(ds_clip_norm(g, n, 0), want, 1e-12 * want);
    ck_assert_double_eq_tol(ds_clip_norm(g, n, want / 4), want, 1e-12 * want);
    double scale = want / 4 / want; // the bound over the norm
    ck_assert_float_eq(g[0], (float)((double)0.1f * scale));
    ck_assert_float_eq(g[n - 1], (float)((double)0.1f * scale));
    free(g);
}
END_TEST

START_TEST(test_cosine)
{
    ds_schedule_t s = {
        .kind = DS_SCHEDULE_COSINE, .lr = 0.2, .lr_min = 0.0, .total = 1000};
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 0), 0.2, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 500), 0.1, 1e-15);
    // (1 + cos(pi/4)) / 2 * 0.2 = 0.170710678...
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 250), 0.1707106781186548, 1e-12);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 1000), 0.0, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 5000), 0.0, 1e-15);
    s.lr_min = 0.02;
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 500), 0.11, 1e-15);
    // Warm-up: linear to lr over 100 updates, then cosine over 900.
    s.lr_min = 0;
    s.warmup = 100;
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 0), 0.002, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 49), 0.1, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 100), 0.2, 1e-15);
    ck_assert_double_eq_tol(ds_schedule_lr(&s, 550), 0.1, 1e-15);
}
END_TEST

START_TEST(test_constant_and_parse)
{
    ds_schedule_t s = {.kind = DS_SCHEDULE_CONSTANT, .lr = 0.05};
    ck_assert_double_eq(ds_schedule_lr(&s, 0), 0.05);
    ck_assert_double_eq(ds_schedule_lr(&s, 123456), 0.05);
    ck_assert_int_eq(ds_schedule_parse("cosine"), DS_SCHEDULE_COSINE);
    ck_assert_int_eq(ds_schedule_parse("constant"), DS_SCHEDULE_CONSTANT);
    ck_assert_int_eq(ds_schedule_parse("linear"), -1);
}
END_TEST

START_TEST(test_finite)
{
    float g[37];
    for (int i = 0; i < 37; i++) {
        g[i] = (float)i - 18.5f;
    }
    ck_assert_int_eq(ds_vec_finite(g, 37), 1);
    g[36] = NAN;
    ck_assert_int_eq(ds_vec_finite(g, 37), 0);
    g[36] = 0;
    g[3] = -INFINITY;
    ck_assert_int_eq(ds_vec_finite(g, 37), 0);
    g[3] = 3.4e38f;
    ck_assert_int_eq(ds_vec_finite(g, 37), 1);
}
END_TEST

Suite *
ds_optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, test_sgd_vectors);
    tcase_add_test(tc, test_sgd_quadratic);
    tcase_add_test(tc, test_sgd_rule_vectors);
    tcase_add_test(tc, test_momentum_vectors);
    tcase_add_test(tc, test_momentum_forms_differ_under_schedule);
    tcase_add_test(tc, test_nag_vectors);
    tcase_add_test(tc, test_nag_is_sutskever_lookahead);
    tcase_add_test(tc, test_adagrad_vectors);
    tcase_add_test(tc, test_adadelta_vectors);
    tcase_add_test(tc, test_rmsprop_vectors);
    tcase_add_test(tc, test_adam_vectors);
    tcase_add_test(tc, test_state_offset);
    tcase_add_test(tc, test_eps_discriminators);
    tcase_add_test(tc, test_long_sgd_momentum_nag);
    tcase_add_test(tc, test_long_adagrad_adadelta);
    tcase_add_test(tc, test_long_rmsprop_adam);
    tcase_add_test(tc, test_names_and_defaults);
    tcase_add_test(tc, test_check_refusals);
    tcase_add_test(tc, test_state_arrays);
    tcase_add_test(tc, test_state_init_enomem);
    tcase_add_test(tc, test_clip_norm);
    tcase_add_test(tc, test_clip_norm_10m);
    tcase_add_test(tc, test_cosine);
    tcase_add_test(tc, test_constant_and_parse);
    tcase_add_test(tc, test_finite);
    suite_add_tcase(s, tc);
    return s;
}
