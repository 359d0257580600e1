// SPDX-License-Identifier: MIT
// model - the dense models a worker trains (softmax regression, MLP with
// optional batch normalization) behind one interface over a flat float32
// parameter vector.
#ifndef DS_MODEL_H
#define DS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_MODEL_MAX_LAYERS 8 // most linear layers of an MLP

typedef enum {
    DS_MODEL_SOFTMAX = 0, // multinomial logistic regression
    DS_MODEL_MLP = 1,     // ReLU hidden layers, softmax output
} ds_model_kind_t;

typedef enum {
    DS_INIT_ZEROS = 0,  // every parameter 0
    DS_INIT_RANDOM = 1, // N(0, init_scale^2) weights, zero biases
    DS_INIT_HE = 2,     // N(0, 2 / fan_in) weights (He et al. 2015), zero
                        // biases, batch-norm gamma 1 and beta 0
} ds_init_t;

// ds_model_t describes one model. Parameters live in a flat vector owned
// by the caller (the servers hold it; workers keep a local copy); the
// layout is fixed by the description:
// softmax: W (classes x dim, row-major), then b (classes);
// mlp: for each linear layer l (sizes[l] -> sizes[l+1]): W_l (out x in,
// row-major), b_l (out), then, for hidden layers when batchnorm is on,
// gamma_l (out) and beta_l (out).
// Batch normalization's running mean and variance are not parameters: they
// live in `running`, owned by the model, updated by training steps with
// PyTorch's momentum 0.1 (unbiased variance) and used by evaluation.
typedef struct {
    ds_model_kind_t kind;    // which model
    int             nlayers; // linear layers (softmax: 1)
    size_t          sizes[DS_MODEL_MAX_LAYERS + 1]; // dim, hidden..., classes
    bool            batchnorm;   // batch norm after every hidden layer
    double          bn_eps;      // batch norm epsilon (1e-5)
    double          bn_momentum; // running-statistics momentum (0.1)
    size_t          num_params;  // length of the parameter vector
    float          *running;     // BN running mean then var per hidden
                                 // layer; owned; NULL without batchnorm
} ds_model_t;

// ds_model_init describes a model of `kind` for dim inputs and classes
// outputs; hidden lists the hidden layer sizes (nhidden of them; ignored
// for softmax). Returns 0, -EINVAL (err says why) or -ENOMEM.
int ds_model_init(ds_model_t *m, ds_model_kind_t kind, size_t dim, int classes,
                  const size_t *hidden, int nhidden, bool batchnorm, char *err,
                  size_t errlen);

// ds_model_fini frees m's running statistics. Idempotent.
void ds_model_fini(ds_model_t *m);

// ds_model_init_params fills w (num_params floats) by `how`, seeded:
// the same (seed, m) always gives the same vector.
void ds_model_init_params(const ds_model_t *m, float *w, ds_init_t how,
                          double scale, uint64_t seed);

// ds_model_ws_t is one thread's scratch memory for batches of up to
// max_batch examples.
typedef struct ds_model_ws ds_model_ws_t;

// ds_model_ws_new returns scratch for m, or NULL on ENOMEM. Caller owns it;
// free with ds_model_ws_destroy.
ds_model_ws_t *ds_model_ws_new(const ds_model_t *m, size_t max_batch);
void           ds_model_ws_destroy(ds_model_ws_t **ws);

// ds_model_grad computes, in training mode (batch statistics for batch
// norm, whose running statistics in m are updated), the mean cross-entropy
// loss of the n examples x[idx[k]*dim ...], labels y[idx[k]], under params
// w, and writes its gradient (num_params floats, overwritten) into grad.
// *correct receives the examples whose argmax equals the label. Returns the
// mean loss. n <= max_batch of ws; batch norm needs n >= 2.
double ds_model_grad(ds_model_t *m, ds_model_ws_t *ws, const float *w,
                     const float *x, const uint8_t *y, const uint32_t *idx,
                     size_t n, float *grad, size_t *correct);

// ds_model_loss is ds_model_grad's loss alone for each of the n examples
// (eval mode), written to loss[k]: a per-example difficulty score.
void ds_model_losses(const ds_model_t *m, ds_model_ws_t *ws, const float *w,
                     const float *x, const uint8_t *y, const uint32_t *idx,
                     size_t n, float *loss);

// ds_model_eval returns the mean loss of all n examples of x/y under w in
// evaluation mode (running statistics for batch norm) and stores the
// accuracy in *accuracy. Works in blocks of the workspace's batch size.
double ds_model_eval(const ds_model_t *m, ds_model_ws_t *ws, const float *w,
                     const float *x, const uint8_t *y, size_t n,
                     double *accuracy);

#endif
