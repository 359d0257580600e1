// SPDX-License-Identifier: MIT
// softmax - multinomial logistic regression: loss, gradient, evaluation.
#ifndef DS_SOFTMAX_H
#define DS_SOFTMAX_H

#include <stddef.h>
#include <stdint.h>

// Parameter layout in the flat model vector (the keys of the model):
// W is classes x dim row-major at [0, classes*dim), then the classes
// biases b at [classes*dim, classes*dim + classes).
static inline size_t
ds_softmax_num_params(size_t dim, int classes)
{
    return (size_t)classes * dim + (size_t)classes;
}

// ds_softmax_ws_t is scratch memory for one thread's batches of up to
// max_batch examples. Owned by the caller; free with ds_softmax_ws_fini.
typedef struct {
    size_t max_batch; // capacity in examples
    int    classes;   // number of classes
    float *logits;    // max_batch*classes
    float *xb;        // max_batch*dim gathered inputs
    float *dim_tmp;   // unused spare, may be NULL
    size_t dim;       // features per example
} ds_softmax_ws_t;

int  ds_softmax_ws_init(ds_softmax_ws_t *ws, size_t max_batch, size_t dim,
                        int classes);
void ds_softmax_ws_fini(ds_softmax_ws_t *ws);

// ds_softmax_grad computes the mean cross-entropy loss of the n examples
// x[idx[k]*dim ...], labels y[idx[k]], under params w, and writes the
// gradient of that mean loss with respect to w into grad (num_params floats,
// overwritten). Uses CBLAS sgemm for the products. *correct receives the
// number of examples whose argmax logit equals the label. Returns the mean
// loss. n <= ws->max_batch.
double ds_softmax_grad(ds_softmax_ws_t *ws, const float *w, const float *x,
                       const uint8_t *y, const uint32_t *idx, size_t n,
                       float *grad, size_t *correct);

// ds_softmax_eval returns the mean loss of all n examples of x/y under w and
// stores the accuracy in [0,1] in *accuracy. Works in blocks of
// ws->max_batch.
double ds_softmax_eval(ds_softmax_ws_t *ws, const float *w, const float *x,
                       const uint8_t *y, size_t n, double *accuracy);

#endif
