// SPDX-License-Identifier: MIT
// logreg - sparse binary logistic regression over hashed feature keys: the
// keys a mini-batch touches, its loss and gradient at those keys only.
#ifndef DS_LOGREG_H
#define DS_LOGREG_H

#include <stddef.h>
#include <stdint.h>

#include "common/libsvm.h"

// The model is one float per key of [0, 2^hash_bits): w[0] is the bias and
// w[k], k >= 1, the weight of feature key k (the keys of ds_libsvm_load).
// For row x with label y in {0, 1}, z = w[0] + sum_k w[k] x_k, the
// predicted probability of label 1 is sigmoid(z), the prediction is 1 when
// z > 0, and the loss is the log-loss log(1 + e^z) - y z, computed without
// overflow for any z. No regularization: that is the optimizer's business.
#define DS_LOGREG_BIAS_KEY 0 // key of the bias, first of every key list

// ds_logreg_batch_keys stores in (*keys)[0 .. *nkeys) the sorted, unique
// keys of the rows idx[0..n) of d (all rows when idx is NULL), always led
// by the bias key 0: exactly the keys a worker pulls before, and pushes
// after, computing the gradient of that batch. *keys is a buffer of *cap
// keys that the function grows with realloc as needed (start with
// *keys = NULL, *cap = 0, reuse it across batches); the caller owns it and
// frees it with free(). Takes O(m log m) time for the m entries of the
// batch, nothing in 2^hash_bits. Returns 0, or -ENOMEM (the buffer is then
// unchanged and still owned by the caller).
int ds_logreg_batch_keys(const ds_sparse_t *d, const uint32_t *idx, size_t n,
                         uint64_t **keys, size_t *cap, size_t *nkeys);

// ds_logreg_grad returns the mean log-loss of the rows idx[0..n) of d (all
// rows when idx is NULL), n > 0, under the weights w[0..nkeys), where w[j]
// is the weight of key keys[j] and keys is sorted, unique, starts with the
// bias key 0 and holds every key of the rows (what ds_logreg_batch_keys
// returns). When grad is not NULL it overwrites grad[0..nkeys) with the
// gradient of that mean loss at those keys. When correct is not NULL it
// stores the number of rows predicted right. Each entry costs one binary
// search in keys: O(m log nkeys) for the m entries of the batch. Returns
// NaN, with correct untouched and grad unspecified, when n is 0, when keys
// does not start with 0, or when a row has a key (other than 0) missing
// from keys.
double ds_logreg_grad(const ds_sparse_t *d, const uint32_t *idx, size_t n,
                      const uint64_t *keys, const float *w, size_t nkeys,
                      float *grad, size_t *correct);

// ds_logreg_eval returns the mean log-loss of all rows of d under the dense
// weights w[0..nw), indexed by key (nw = 2^hash_bits, which suits
// hash_bits up to about 28; for larger key spaces pull the keys of
// ds_logreg_batch_keys and call ds_logreg_grad with grad NULL). Stores the
// number of rows predicted right in *correct when not NULL. Returns NaN
// when d has no rows or a key is not below nw.
double ds_logreg_eval(const ds_sparse_t *d, const float *w, uint64_t nw,
                      size_t *correct);

#endif
