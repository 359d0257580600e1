// SPDX-License-Identifier: MIT
// easgd - elastic averaging SGD and EAMSGD (Zhang, Choromanska, LeCun 2015):
// the worker's maths and the center's one-line update.
#ifndef DS_EASGD_H
#define DS_EASGD_H

#include <stddef.h>

// One worker turn of asynchronous EASGD (ALGORITHMS.md section 11,
// Algorithm 1), with t the worker's local step count and tau the period:
//   g = gradient at x                          (x before the elastic move)
//   if t % tau == 0: pull center; ds_easgd_elastic(x, center, d); push d
//   ds_easgd_sgd_step(x, g, eta); t += 1
// and of EAMSGD (Algorithm 2):
//   ds_eamsgd_lookahead(y, x, v, delta); g = gradient at y
//   if t % tau == 0: pull center; ds_easgd_elastic(x, center, d); push d
//   ds_eamsgd_step(x, v, g, eta, delta); t += 1
// The server applies each d with ds_easgd_center_add. The order matters:
// the gradient is taken at the snapshot (or its look-ahead) before the
// elastic move, and d is formed from x before the local step; the local
// step and x -= d then commute. Synchronous EASGD is the same turn for
// every worker against the same center, followed by center += sum of the
// d's. All arrays hold n floats; none may overlap another (restrict).

// ds_easgd_elastic is the worker's half of the elastic exchange: it sets
// d = alpha * (x - center) and then x -= d, where alpha = eta * rho (the
// paper's moving rate; 0.9 / p in its experiments). The caller sends d to
// the server, which adds it to the center (ds_easgd_center_add), so the
// worker and the center move by equal and opposite amounts. center is the
// value the worker pulled; it is not modified.
void ds_easgd_elastic(float *restrict x, const float *restrict center,
                      float *restrict d, size_t n, float alpha);

// ds_easgd_center_add is the server's half: center += d.
void ds_easgd_center_add(float *restrict center, const float *restrict d,
                         size_t n);

// ds_easgd_sgd_step is EASGD's local step: x -= eta * g, with g the
// gradient at the snapshot of x taken before any elastic move this turn.
void ds_easgd_sgd_step(float *restrict x, const float *restrict g, size_t n,
                       float eta);

// ds_eamsgd_lookahead sets y = x + delta * v, the Nesterov look-ahead point
// at which EAMSGD's gradient is taken. Call it before the elastic move.
void ds_eamsgd_lookahead(float *restrict y, const float *restrict x,
                         const float *restrict v, size_t n, float delta);

// ds_eamsgd_step is EAMSGD's local step: v = delta * v - eta * g, then
// x += v, with g the gradient at ds_eamsgd_lookahead's point. With delta = 0
// it is ds_easgd_sgd_step (v then holds the last step).
void ds_eamsgd_step(float *restrict x, float *restrict v,
                    const float *restrict g, size_t n, float eta, float delta);

#endif
