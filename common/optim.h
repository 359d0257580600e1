// SPDX-License-Identifier: MIT
// optim - the update rules of the gradient-descent family over float32
// arrays, shared by servers and workers.
#ifndef DS_OPTIM_H
#define DS_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// ds_optim_kind_t names an update rule.
typedef enum {
    DS_OPTIM_SGD = 0,      // w -= lr * g
    DS_OPTIM_MOMENTUM = 1, // heavy ball
    DS_OPTIM_NAG = 2,      // Nesterov, PyTorch's (Bengio et al.) form
    DS_OPTIM_ADAGRAD = 3,  // Duchi et al.
    DS_OPTIM_ADADELTA = 4, // Zeiler
    DS_OPTIM_RMSPROP = 5,  // Hinton
    DS_OPTIM_ADAM = 6,     // Kingma and Ba
} ds_optim_kind_t;

#define DS_OPTIM_COUNT 7
#define DS_OPTIM_MAX_STATE 3 // most float arrays a rule keeps per parameter

// ds_optim_t is one rule with its hyper-parameters. With paper == false the
// rules follow PyTorch's torch.optim exactly (epsilon placement, Adagrad's
// initial accumulator, Adadelta's lr, coupled weight decay, the undampened
// first momentum step); with paper == true they follow the papers as Ruder's
// survey writes them (see docs/optimizers.md for each difference).
typedef struct {
    ds_optim_kind_t kind;         // the rule
    bool            paper;        // paper/Ruder form instead of PyTorch's
    double          momentum;     // momentum, nag; rmsprop's optional buffer
    double          dampening;    // momentum (PyTorch form)
    double          beta1;        // adam: first-moment decay
    double          beta2;        // adam: second-moment decay
    double          rho;          // adadelta: decay of both averages
    double          alpha;        // rmsprop: decay of the squared average
    double          eps;          // adaptive rules: the epsilon
    double          weight_decay; // coupled L2: g += weight_decay * w first
    double          lr_decay;     // adagrad: lr / (1 + (t - 1) * lr_decay)
    double          initial_accumulator; // adagrad: starting sum of squares
    bool            centered;            // rmsprop: subtract the squared mean
    bool            amsgrad;             // adam: keep the maximum second moment
} ds_optim_t;

// ds_optim_state_t is the per-parameter state of one rule over n parameters:
// exactly the arrays the rule needs (SGD none, Adam two, ...). Owned by the
// shard (or worker) that applies the rule.
typedef struct {
    float   *buf[DS_OPTIM_MAX_STATE]; // state arrays, n floats each; owned
    int      nbuf;                    // arrays in use
    size_t   n;                       // parameters covered
    uint64_t t;                       // updates applied so far
} ds_optim_state_t;

// ds_optim_parse returns the rule named name ("sgd", "momentum", "nag",
// "adagrad", "adadelta", "rmsprop", "adam"), or -1.
int ds_optim_parse(const char *name);

// ds_optim_name returns the name of kind.
const char *ds_optim_name(ds_optim_kind_t kind);

// ds_optim_defaults fills o with PyTorch's defaults for kind (momentum 0.9
// for the momentum rules, which PyTorch leaves to the caller).
void ds_optim_defaults(ds_optim_t *o, ds_optim_kind_t kind);

// ds_optim_default_lr returns PyTorch's default learning rate for kind
// (Adadelta 1.0, Adagrad and RMSprop 1e-2, the others 1e-3).
double ds_optim_default_lr(ds_optim_kind_t kind);

// ds_optim_check validates o: every field is range-checked whatever the rule
// (decays in [0, 1), weight decay >= 0, dampening in [0, 1], all finite), eps
// must be > 0 where a zero gradient would otherwise give 0/0, NAG takes no
// dampening and has no paper form, paper RMSprop has no momentum and is not
// centered. Returns 0 or -EINVAL with err naming the setting, e.g.
// "[optimizer] beta1: must be in [0, 1) (got 1.5)".
int ds_optim_check(const ds_optim_t *o, char *err, size_t errlen);

// ds_optim_state_arrays returns how many float arrays per parameter o keeps.
int ds_optim_state_arrays(const ds_optim_t *o);

// ds_optim_state_init allocates and initializes the state of o for n
// parameters (zeros, or Adagrad's initial accumulator), 64-byte aligned.
// Returns 0 or -ENOMEM (nothing allocated). o must not change afterwards.
int  ds_optim_state_init(ds_optim_state_t *s, const ds_optim_t *o, size_t n);
void ds_optim_state_fini(ds_optim_state_t *s);

// ds_optim_step applies one update of o at learning rate lr to w[0..n)
// with gradient g[0..n), using the state from index off (so a push may cover
// part of a range), and counts it in s->t. w and g must not overlap; g is
// not modified. off + n <= s->n. s->t is one count for the whole state:
// Adam's bias correction, the first momentum step and Adagrad's lr_decay
// assume that every step covers the whole state, as a worker's push of a
// whole range does; a partial push still counts as one step.
void ds_optim_step(const ds_optim_t *o, ds_optim_state_t *s, size_t   off,
                   float *restrict w, const float *restrict g, size_t n,
                   double lr);

// ds_sgd_apply does w[i] -= lr * g[i] for i < n. w and g must not overlap.
void ds_sgd_apply(float *restrict w, const float *restrict g, size_t n,
                  float lr);

// ds_vec_finite returns 1 if every g[i], i < n, is finite, else 0.
int ds_vec_finite(const float *g, size_t n);

// ds_clip_norm scales g[0..n) so that its Euclidean norm is at most
// max_norm, to float rounding (no change when max_norm <= 0, the norm is
// smaller or the norm is not finite) and returns the norm before clipping.
double ds_clip_norm(float *g, size_t n, double max_norm);

#endif
