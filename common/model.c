// SPDX-License-Identifier: MIT
// model - the dense models a worker trains (softmax regression, MLP with
// optional batch normalization) behind one interface over a flat float32
// parameter vector.
#include "common/model.h"

#include <assert.h>
#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mlp.h"
#include "common/util.h"
#include "common/rng.h"
#include "common/softmax.h"

struct ds_model_ws {
    ds_model_kind_t kind;      // the model's kind
    size_t          max_batch; // capacity in examples
    size_t          dim;       // features per example
    int             classes;   // outputs
    ds_softmax_ws_t sm;        // softmax scratch (kind softmax)
    ds_mlp_ws_t    *mlp;       // MLP scratch (kind mlp)
};

// s_add_mul sets *acc += a * b + c, returning false if any step would
// overflow a size_t.
static bool
s_add_mul(size_t *acc, size_t a, size_t b, size_t c)
{
    if (b != 0 && a > SIZE_MAX / b) {
        return false;
    }
    size_t t = a * b;
    if (t > SIZE_MAX - c || *acc > SIZE_MAX - (t + c)) {
        return false;
    }
    *acc += t + c;
    return true;
}

int
ds_model_init(ds_model_t *m, ds_model_kind_t kind, size_t dim, int classes,
              const size_t *hidden, int nhidden, bool batchnorm, char *err,
              size_t errlen)
{
    if (m == NULL) {
        return ds_err(err, errlen, -EINVAL, "no model");
    }
    memset(m, 0, sizeof *m);
    if (kind != DS_MODEL_SOFTMAX && kind != DS_MODEL_MLP) {
        return ds_err(err, errlen, -EINVAL, "unknown model kind %d", (int)kind);
    }
    // CBLAS takes int sizes, so every layer width must fit an int.
    if (dim == 0 || dim > INT_MAX) {
        return ds_err(err, errlen, -EINVAL,
                      "input dimension %zu not in [1, %d]", dim, INT_MAX);
    }
    if (classes < 2) {
        return ds_err(err, errlen, -EINVAL, "%d classes; need at least 2",
                      classes);
    }
    if (kind == DS_MODEL_SOFTMAX) {
        nhidden = 0;
    }
    if (nhidden < 0 || nhidden > DS_MODEL_MAX_LAYERS - 1) {
        return ds_err(err, errlen, -EINVAL, "%d hidden layers not in [0, %d]",
                      nhidden, DS_MODEL_MAX_LAYERS - 1);
    }
    if (nhidden > 0 && hidden == NULL) {
        return ds_err(err, errlen, -EINVAL, "no hidden layer sizes");
    }
    for (int l = 0; l < nhidden; l++) {
        if (hidden[l] == 0 || hidden[l] > INT_MAX) {
            return ds_err(err, errlen, -EINVAL,
                          "hidden layer %d size %zu not in [1, %d]", l + 1,
                          hidden[l], INT_MAX);
        }
    }

    // Batch norm exists only after hidden layers; with none it is off, so
    // that running is NULL exactly when batchnorm is false.
    bool   bn = batchnorm && nhidden > 0;
    int    L = nhidden + 1;
    size_t sizes[DS_MODEL_MAX_LAYERS + 1] = {0};
    sizes[0] = dim;
    for (int l = 0; l < nhidden; l++) {
        sizes[l + 1] = hidden[l];
    }
    sizes[L] = (size_t)classes;
    size_t np = 0, nrun = 0;
    for (int l = 0; l < L; l++) {
        size_t out = sizes[l + 1];
        bool   ok = s_add_mul(&np, out, sizes[l], out);
        if (ok && bn && l < L - 1) {
            ok = s_add_mul(&np, 2, out, 0) && s_add_mul(&nrun, 2, out, 0);
        }
        if (!ok) {
            return ds_err(err, errlen, -EINVAL, "too many parameters");
        }
    }
    // Callers allocate num_params floats (and gradients as many).
    if (np > SIZE_MAX / sizeof(float)) {
        return ds_err(err, errlen, -EINVAL, "too many parameters");
    }
    if (bn) {
        m->running = malloc(nrun * sizeof(float));
        if (m->running == NULL) {
            return ds_err(err, errlen, -ENOMEM,
                          "out of memory for batch-norm statistics");
        }
        // Each hidden layer holds its means (0) and then its variances (1).
        size_t r = 0;
        for (int l = 0; l < L - 1; l++) {
            size_t out = sizes[l + 1];
            for (size_t j = 0; j < out; j++) {
                m->running[r + j] = 0.0f;
                m->running[r + out + j] = 1.0f;
            }
            r += 2 * out;
        }
    }
    m->kind = kind;
    m->nlayers = L;
    memcpy(m->sizes, sizes, sizeof m->sizes);
    m->batchnorm = bn;
    m->bn_eps = 1e-5;
    m->bn_momentum = 0.1;
    m->num_params = np;
    return 0;
}

void
ds_model_fini(ds_model_t *m)
{
    if (m == NULL) {
        return;
    }
    free(m->running);
    m->running = NULL;
}

void
ds_model_init_params(const ds_model_t *m, float *w, ds_init_t how, double scale,
                     uint64_t seed)
{
    if (how == DS_INIT_ZEROS) {
        memset(w, 0, m->num_params * sizeof(float));
        return;
    }
    // Each weight is a deviate keyed by its index in the vector, the same
    // draw a server makes for the key it holds, so a range of this vector
    // can be rebuilt alone from (seed, key).
    size_t off = 0;
    for (int l = 0; l < m->nlayers; l++) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        double sd = how == DS_INIT_HE ? sqrt(2.0 / (double)in) : scale;
        for (size_t k = off; k < off + out * in; k++) {
            w[k] = (float)(sd * ds_rng_key_normal(seed, k));
        }
        off += out * in;
        memset(w + off, 0, out * sizeof(float));
        off += out;
        if (m->batchnorm && l < m->nlayers - 1) {
            // gamma 1 and beta 0 make batch norm start as a pure
            // standardization, whichever weight init is chosen.
            for (size_t j = 0; j < out; j++) {
                w[off + j] = 1.0f;
                w[off + out + j] = 0.0f;
            }
            off += 2 * out;
        }
    }
    assert(off == m->num_params);
}

ds_model_ws_t *
ds_model_ws_new(const ds_model_t *m, size_t max_batch)
{
    if (m == NULL || max_batch == 0 || max_batch > INT_MAX) {
        return NULL;
    }
    ds_model_ws_t *ws = calloc(1, sizeof *ws);
    if (ws == NULL) {
        return NULL;
    }
    ws->kind = m->kind;
    ws->max_batch = max_batch;
    ws->dim = m->sizes[0];
    ws->classes = (int)m->sizes[m->nlayers];
    if (m->kind == DS_MODEL_SOFTMAX) {
        if (ds_softmax_ws_init(&ws->sm, max_batch, ws->dim, ws->classes) != 0) {
            free(ws);
            return NULL;
        }
    } else {
        ws->mlp = ds_mlp_ws_new(m, max_batch);
        if (ws->mlp == NULL) {
            free(ws);
            return NULL;
        }
    }
    return ws;
}

void
ds_model_ws_destroy(ds_model_ws_t **ws_p)
{
    if (ws_p == NULL || *ws_p == NULL) {
        return;
    }
    ds_model_ws_t *ws = *ws_p;
    ds_softmax_ws_fini(&ws->sm);
    ds_mlp_ws_destroy(&ws->mlp);
    free(ws);
    *ws_p = NULL;
}

double
ds_model_grad(ds_model_t *m, ds_model_ws_t *ws, const float *w, const float *x,
              const uint8_t *y, const uint32_t *idx, size_t n, float *grad,
              size_t *correct)
{
    assert(ws->kind == m->kind && n <= ws->max_batch);
    if (m->kind == DS_MODEL_SOFTMAX) {
        return ds_softmax_grad(&ws->sm, w, x, y, idx, n, grad, correct);
    }
    return ds_mlp_grad(m, ws->mlp, w, x, y, idx, n, grad, correct);
}

// s_softmax_losses writes the loss of each of the n <= max_batch examples
// x[idx[k]*dim ...] under the softmax model w to loss[k]: logits by one
// sgemm over the gathered rows, then the stable cross-entropy.
static void
s_softmax_losses(ds_model_ws_t *ws, const float *w, const float *x,
                 const uint8_t *y, const uint32_t *idx, size_t n, float *loss)
{
    size_t       d = ws->dim;
    size_t       k = (size_t)ws->classes;
    const float *b = w + k * d;
    float       *xb = ws->sm.xb, *z = ws->sm.logits;
    for (size_t i = 0; i < n; i++) {
        memcpy(xb + i * d, x + (size_t)idx[i] * d, d * sizeof(float));
        memcpy(z + i * k, b, k * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)k, (int)d,
                1.0f, xb, (int)d, w, (int)d, 1.0f, z, (int)k);
    ds_mlp_xent(z, n, ws->classes, y, idx, false, 0.0f, loss, NULL);
}

void
ds_model_losses(const ds_model_t *m, ds_model_ws_t *ws, const float *w,
                const float *x, const uint8_t *y, const uint32_t *idx, size_t n,
                float *loss)
{
    assert(ws->kind == m->kind);
    for (size_t s = 0; s < n; s += ws->max_batch) {
        size_t nb = n - s < ws->max_batch ? n - s : ws->max_batch;
        if (m->kind == DS_MODEL_SOFTMAX) {
            s_softmax_losses(ws, w, x, y, idx + s, nb, loss + s);
        } else {
            ds_mlp_eval_rows(m, ws->mlp, w, x, y, idx + s, nb, loss + s, NULL);
        }
    }
}

double
ds_model_eval(const ds_model_t *m, ds_model_ws_t *ws, const float *w,
              const float *x, const uint8_t *y, size_t n, double *accuracy)
{
    assert(ws->kind == m->kind);
    if (m->kind == DS_MODEL_SOFTMAX) {
        return ds_softmax_eval(&ws->sm, w, x, y, n, accuracy);
    }
    double loss = 0.0;
    size_t correct = 0;
    for (size_t s = 0; s < n; s += ws->max_batch) {
        size_t nb = n - s < ws->max_batch ? n - s : ws->max_batch;
        // Rows of a block are contiguous in x, so no gather is needed.
        loss += ds_mlp_eval_rows(m, ws->mlp, w, x + s * ws->dim, y + s, NULL,
                                 nb, NULL, &correct);
    }
    if (accuracy != NULL) {
        *accuracy = n > 0 ? (double)correct / (double)n : 0.0;
    }
    return n > 0 ? loss / (double)n : 0.0;
}
