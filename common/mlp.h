// SPDX-License-Identifier: MIT
// mlp - the multilayer perceptron behind ds_model_t: ReLU hidden layers
// with optional batch normalization and a softmax cross-entropy output.
#ifndef DS_MLP_H
#define DS_MLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/model.h"

// ds_mlp_ws_t is one thread's scratch memory for MLP batches of up to
// max_batch examples: activations, normalized values and gradients.
typedef struct ds_mlp_ws ds_mlp_ws_t;

// ds_mlp_ws_new returns scratch for the MLP m, or NULL when max_batch is 0
// or too large for CBLAS, or on ENOMEM. Caller owns it; free with
// ds_mlp_ws_destroy.
ds_mlp_ws_t *ds_mlp_ws_new(const ds_model_t *m, size_t max_batch);

// ds_mlp_ws_destroy frees *ws and sets it to NULL. Idempotent.
void ds_mlp_ws_destroy(ds_mlp_ws_t **ws);

// ds_mlp_grad is ds_model_grad for an MLP: training mode, running
// statistics of m updated. n <= max_batch; batch norm needs n >= 2.
double ds_mlp_grad(ds_model_t *m, ds_mlp_ws_t *ws, const float *w,
                   const float *x, const uint8_t *y, const uint32_t *idx,
                   size_t n, float *grad, size_t *correct);

// ds_mlp_eval_rows runs the MLP in evaluation mode (running statistics for
// batch norm) on n <= max_batch examples: rows x[idx[k]*dim ...] with
// labels y[idx[k]], or, when idx is NULL, the contiguous rows x[0..n) with
// labels y[0..n). Writes each example's loss to loss[k] unless loss is
// NULL, adds the examples predicted right to *correct, and returns the sum
// of the losses.
double ds_mlp_eval_rows(const ds_model_t *m, ds_mlp_ws_t *ws, const float *w,
                        const float *x, const uint8_t *y, const uint32_t *idx,
                        size_t n, float *loss, size_t *correct);

// ds_mlp_xent turns the n rows of z (n x classes logits) into their
// cross-entropy losses, computed stably, against the labels y[idx[i]] (or
// y[i] when idx is NULL). Writes each row's loss to loss[i] unless loss is
// NULL, adds the rows whose first largest logit is the label to *correct,
// and returns the summed loss. With grad, each row of z is replaced by
// scale * (softmax - onehot), the gradient with respect to the logits.
double ds_mlp_xent(float *z, size_t n, int classes, const uint8_t *y,
                   const uint32_t *idx, bool grad, float scale, float *loss,
                   size_t *correct);

// ds_mlp_bn_t is one batch-normalization layer over f features, as the MLP
// applies it after a hidden linear layer (see ALGORITHMS.md 13.5).
typedef struct {
    size_t       f;        // features (columns of the batch matrix)
    const float *gamma;    // f scales
    const float *beta;     // f shifts
    float       *rmean;    // f running means; NULL: not tracked
    float       *rvar;     // f running variances; with rmean
    float       *istd;     // f values 1/sqrt(batch var + eps), set by train
    double       eps;      // added to the variance (1e-5)
    double       momentum; // running-statistics momentum (0.1)
    double      *acc;      // scratch, 2f doubles
} ds_mlp_bn_t;

// ds_mlp_bn_train normalizes each column of the n x f row-major matrix z
// (n >= 2) with the batch's mean and biased variance, in place, so that z
// becomes x-hat; writes gamma * x-hat + beta to out (n x f, not aliasing
// z), clamped at 0 when relu; sets bn->istd; and moves the running mean
// and variance toward the batch mean and the unbiased variance.
void ds_mlp_bn_train(const ds_mlp_bn_t *bn, float *z, float *out, size_t n,
                     bool relu);

// ds_mlp_bn_backward turns d, dL/dy (n x f) on entry, into dL/dz in place,
// given x-hat and bn->istd from ds_mlp_bn_train, and writes dL/dgamma and
// dL/dbeta (f each, overwritten).
void ds_mlp_bn_backward(const ds_mlp_bn_t *bn, float *d, const float *xhat,
                        size_t n, float *dgamma, float *dbeta);

#endif
