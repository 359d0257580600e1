// SPDX-License-Identifier: MIT
// mlp - the multilayer perceptron behind ds_model_t: ReLU hidden layers
// with optional batch normalization and a softmax cross-entropy output.
#include "common/mlp.h"

#include <assert.h>
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ds_mlp_ws {
    size_t  max_batch;                      // capacity in examples
    int     nlayers;                        // linear layers
    size_t  sizes[DS_MODEL_MAX_LAYERS + 1]; // dim, hidden..., classes
    bool    bn;                             // batch norm after hidden layers
    size_t  w_off[DS_MODEL_MAX_LAYERS];     // W_l in the parameter vector
    size_t  b_off[DS_MODEL_MAX_LAYERS];     // b_l
    size_t  g_off[DS_MODEL_MAX_LAYERS];     // gamma_l, beta_l follows (bn)
    size_t  r_off[DS_MODEL_MAX_LAYERS];     // running mean_l in m->running
    float  *xb;                             // gathered inputs, max_batch x dim
    float  *act[DS_MODEL_MAX_LAYERS];       // hidden outputs after ReLU
    float  *xhat[DS_MODEL_MAX_LAYERS];      // normalized pre-activations (bn)
    float  *istd[DS_MODEL_MAX_LAYERS];      // batch 1/sqrt(var + eps) (bn)
    float  *logits;                         // max_batch x classes, then dlogits
    float  *g0;                             // max_batch x widest: gradients
    float  *g1;                             // the same, the other of the pair
    float  *ones;                           // max_batch ones, for column sums
    float  *aff;                            // 2 x widest: eval scale and shift
    double *acc;                            // 2 x widest: batch-norm sums
};

// s_floats allocates a rows x cols float matrix, or returns NULL when its
// size overflows a size_t or malloc fails.
static float *
s_floats(size_t rows, size_t cols)
{
    if (cols != 0 && rows > SIZE_MAX / sizeof(float) / cols) {
        return NULL;
    }
    return malloc(rows * cols * sizeof(float));
}

ds_mlp_ws_t *
ds_mlp_ws_new(const ds_model_t *m, size_t max_batch)
{
    // CBLAS takes int sizes; the model's sizes were checked by its init.
    if (m == NULL || m->kind != DS_MODEL_MLP || max_batch == 0 ||
        max_batch > INT_MAX) {
        return NULL;
    }
    ds_mlp_ws_t *ws = calloc(1, sizeof *ws);
    if (ws == NULL) {
        return NULL;
    }
    int L = m->nlayers;
    ws->max_batch = max_batch;
    ws->nlayers = L;
    memcpy(ws->sizes, m->sizes, sizeof ws->sizes);
    ws->bn = m->batchnorm;

    size_t off = 0, roff = 0, widest = 0;
    bool   ok = true;
    for (int l = 0; l < L; l++) {
        size_t in = m->sizes[l], out = m->sizes[l + 1];
        bool   hidden = l < L - 1;
        ws->w_off[l] = off;
        ws->b_off[l] = off + out * in;
        off = ws->b_off[l] + out;
        widest = out > widest ? out : widest;
        if (hidden) {
            ws->act[l] = s_floats(max_batch, out);
            ok = ok && ws->act[l] != NULL;
        }
        if (hidden && ws->bn) {
            ws->g_off[l] = off;
            off += 2 * out;
            ws->r_off[l] = roff;
            roff += 2 * out;
            ws->xhat[l] = s_floats(max_batch, out);
            ws->istd[l] = s_floats(1, out);
            ok = ok && ws->xhat[l] != NULL && ws->istd[l] != NULL;
        }
    }
    assert(off == m->num_params);
    ws->xb = s_floats(max_batch, m->sizes[0]);
    ws->logits = s_floats(max_batch, m->sizes[L]);
    ws->g0 = s_floats(max_batch, widest);
    ws->g1 = s_floats(max_batch, widest);
    ws->ones = s_floats(max_batch, 1);
    ws->aff = s_floats(2, widest);
    ws->acc = malloc(2 * widest * sizeof(double));
    if (!ok || ws->xb == NULL || ws->logits == NULL || ws->g0 == NULL ||
        ws->g1 == NULL || ws->ones == NULL || ws->aff == NULL ||
        ws->acc == NULL) {
        ds_mlp_ws_destroy(&ws);
        return NULL;
    }
    for (size_t i = 0; i < max_batch; i++) {
        ws->ones[i] = 1.0f;
    }
    return ws;
}

void
ds_mlp_ws_destroy(ds_mlp_ws_t **ws_p)
{
    if (ws_p == NULL || *ws_p == NULL) {
        return;
    }
    ds_mlp_ws_t *ws = *ws_p;
    for (int l = 0; l < DS_MODEL_MAX_LAYERS; l++) {
        free(ws->act[l]);
        free(ws->xhat[l]);
        free(ws->istd[l]);
    }
    free(ws->xb);
    free(ws->logits);
    free(ws->g0);
    free(ws->g1);
    free(ws->ones);
    free(ws->aff);
    free(ws->acc);
    free(ws);
    *ws_p = NULL;
}

double
ds_mlp_xent(float *z, size_t n, int classes, const uint8_t *y,
            const uint32_t *idx, bool grad, float scale, float *loss,
            size_t *correct)
{
    size_t k = (size_t)classes;
    double total = 0.0;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        float *l = z + i * k;
        int    label = idx != NULL ? y[idx[i]] : y[i];
        // A label outside the model is a caller bug: the dataset's classes
        // and the model's must agree.
        assert(label < classes);
        size_t best = 0;
        for (size_t j = 1; j < k; j++) {
            if (l[j] > l[best]) {
                best = j;
            }
        }
        ok += best == (size_t)label;
        // Subtracting the largest logit keeps every exponent <= 0, so the
        // sum lies in [1, k] and neither overflows nor vanishes.
        float  max = l[best];
        double sum = 0.0;
        double ly = (double)(l[label] - max);
        for (size_t j = 0; j < k; j++) {
            float e = expf(l[j] - max);
            sum += e;
            if (grad) {
                l[j] = e;
            }
        }
        double li = log(sum) - ly;
        total += li;
        if (loss != NULL) {
            loss[i] = (float)li;
        }
        if (grad) {
            float inv = (float)(1.0 / sum);
            for (size_t j = 0; j < k; j++) {
                l[j] =
                    (l[j] * inv - (j == (size_t)label ? 1.0f : 0.0f)) * scale;
            }
        }
    }
    if (correct != NULL) {
        *correct += ok;
    }
    return total;
}

void
ds_mlp_bn_train(const ds_mlp_bn_t *bn, float *z, float *out, size_t n,
                bool relu)
{
    assert(n >= 2);
    size_t  f = bn->f;
    double *mean = bn->acc, *var = bn->acc + f;
    // Two passes (mean, then squared deviations) rather than the one-pass
    // E[x^2] - E[x]^2, which cancels badly when the mean is large.
    for (size_t j = 0; j < f; j++) {
        mean[j] = 0.0;
        var[j] = 0.0;
    }
    for (size_t i = 0; i < n; i++) {
        const float *zi = z + i * f;
        for (size_t j = 0; j < f; j++) {
            mean[j] += zi[j];
        }
    }
    for (size_t j = 0; j < f; j++) {
        mean[j] /= (double)n;
    }
    for (size_t i = 0; i < n; i++) {
        const float *zi = z + i * f;
        for (size_t j = 0; j < f; j++) {
            double d = zi[j] - mean[j];
            var[j] += d * d;
        }
    }
    double mom = bn->momentum;
    for (size_t j = 0; j < f; j++) {
        var[j] /= (double)n;
        bn->istd[j] = (float)(1.0 / sqrt(var[j] + bn->eps));
        if (bn->rmean != NULL) {
            double unbiased = var[j] * (double)n / (double)(n - 1);
            bn->rmean[j] = (float)((1.0 - mom) * bn->rmean[j] + mom * mean[j]);
            bn->rvar[j] = (float)((1.0 - mom) * bn->rvar[j] + mom * unbiased);
        }
    }
    for (size_t i = 0; i < n; i++) {
        float *zi = z + i * f;
        float *oi = out + i * f;
        for (size_t j = 0; j < f; j++) {
            float xh = (float)((zi[j] - mean[j]) * bn->istd[j]);
            float o = bn->gamma[j] * xh + bn->beta[j];
            zi[j] = xh;
            oi[j] = relu && o < 0.0f ? 0.0f : o;
        }
    }
}

void
ds_mlp_bn_backward(const ds_mlp_bn_t *bn, float *d, const float *xhat, size_t n,
                   float *dgamma, float *dbeta)
{
    size_t  f = bn->f;
    double *sdy = bn->acc, *sdyx = bn->acc + f;
    for (size_t j = 0; j < f; j++) {
        sdy[j] = 0.0;
        sdyx[j] = 0.0;
    }
    for (size_t i = 0; i < n; i++) {
        const float *di = d + i * f;
        const float *xi = xhat + i * f;
        for (size_t j = 0; j < f; j++) {
            sdy[j] += di[j];
            sdyx[j] += (double)di[j] * xi[j];
        }
    }
    for (size_t j = 0; j < f; j++) {
        dbeta[j] = (float)sdy[j];
        dgamma[j] = (float)sdyx[j];
    }
    // dx = gamma istd / N (N dy - sum dy - xhat sum(dy xhat)), written as
    // k (dy - mean dy - xhat mean(dy xhat)) with k = gamma istd.
    double nn = (double)n;
    for (size_t j = 0; j < f; j++) {
        sdy[j] /= nn;
        sdyx[j] /= nn;
    }
    for (size_t i = 0; i < n; i++) {
        float       *di = d + i * f;
        const float *xi = xhat + i * f;
        for (size_t j = 0; j < f; j++) {
            double k = (double)bn->gamma[j] * bn->istd[j];
            di[j] = (float)(k * (di[j] - sdy[j] - xi[j] * sdyx[j]));
        }
    }
}

// s_bn_eval applies batch norm with the running statistics to the n x f
// matrix z in place, clamped at 0 when relu. Per feature it is the affine
// map z a + c with a = gamma / sqrt(rvar + eps), c = beta - rmean a.
static void
s_bn_eval(const ds_mlp_bn_t *bn, float *aff, float *z, size_t n, bool relu)
{
    size_t f = bn->f;
    float *a = aff, *c = aff + f;
    for (size_t j = 0; j < f; j++) {
        double s = bn->gamma[j] / sqrt((double)bn->rvar[j] + bn->eps);
        a[j] = (float)s;
        c[j] = (float)(bn->beta[j] - bn->rmean[j] * s);
    }
    for (size_t i = 0; i < n; i++) {
        float *zi = z + i * f;
        for (size_t j = 0; j < f; j++) {
            float o = zi[j] * a[j] + c[j];
            zi[j] = relu && o < 0.0f ? 0.0f : o;
        }
    }
}

// s_relu clamps the count values of z at 0.
static void
s_relu(float *z, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        z[i] = z[i] < 0.0f ? 0.0f : z[i];
    }
}

// s_linear sets z (n x out) to a W^T + b for the n rows of a (n x in), with
// W out x in row-major.
static void
s_linear(float *z, const float *a, const float *W, const float *b, size_t n,
         size_t in, size_t out)
{
    for (size_t i = 0; i < n; i++) {
        memcpy(z + i * out, b, out * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out,
                (int)in, 1.0f, a, (int)in, W, (int)in, 1.0f, z, (int)out);
}

// s_bn describes hidden layer l's batch norm under params w, with the
// running statistics in running (NULL: not tracked).
static ds_mlp_bn_t
s_bn(const ds_model_t *m, ds_mlp_ws_t *ws, const float *w, float *running,
     int l)
{
    size_t      f = ws->sizes[l + 1];
    ds_mlp_bn_t bn = {
        .f = f,
        .gamma = w + ws->g_off[l],
        .beta = w + ws->g_off[l] + f,
        .rmean = running != NULL ? running + ws->r_off[l] : NULL,
        .rvar = running != NULL ? running + ws->r_off[l] + f : NULL,
        .istd = ws->istd[l],
        .eps = m->bn_eps,
        .momentum = m->bn_momentum,
        .acc = ws->acc,
    };
    return bn;
}

// s_forward runs the n rows of in through the network and leaves the
// logits in ws->logits. In training mode batch norm uses the batch's
// statistics, keeps x-hat for the backward pass and updates running; in
// evaluation mode it uses running.
static void
s_forward(const ds_model_t *m, ds_mlp_ws_t *ws, const float *w, const float *in,
          size_t n, bool train, float *running)
{
    int          L = ws->nlayers;
    const float *a = in;
    for (int l = 0; l < L; l++) {
        size_t fi = ws->sizes[l], fo = ws->sizes[l + 1];
        bool   hidden = l < L - 1;
        float *z = !hidden             ? ws->logits
                   : (ws->bn && train) ? ws->xhat[l]
                                       : ws->act[l];
        s_linear(z, a, w + ws->w_off[l], w + ws->b_off[l], n, fi, fo);
        if (!hidden) {
            break;
        }
        if (ws->bn) {
            ds_mlp_bn_t bn = s_bn(m, ws, w, running, l);
            if (train) {
                ds_mlp_bn_train(&bn, z, ws->act[l], n, true);
            } else {
                s_bn_eval(&bn, ws->aff, z, n, true);
            }
        } else {
            s_relu(z, n * fo);
        }
        a = ws->act[l];
    }
}

double
ds_mlp_grad(ds_model_t *m, ds_mlp_ws_t *ws, const float *w, const float *x,
            const uint8_t *y, const uint32_t *idx, size_t n, float *grad,
            size_t *correct)
{
    assert(n <= ws->max_batch);
    assert(!ws->bn || n != 1);
    if (correct != NULL) {
        *correct = 0;
    }
    if (n == 0) {
        memset(grad, 0, m->num_params * sizeof(float));
        return 0.0;
    }
    int    L = ws->nlayers;
    size_t dim = ws->sizes[0];
    for (size_t i = 0; i < n; i++) {
        memcpy(ws->xb + i * dim, x + (size_t)idx[i] * dim, dim * sizeof(float));
    }
    s_forward(m, ws, w, ws->xb, n, true, m->running);
    double loss = ds_mlp_xent(ws->logits, n, (int)ws->sizes[L], y, idx, true,
                              1.0f / (float)n, NULL, correct);

    // Backward: dz holds dL/d(linear output) of layer l; its input is the
    // previous layer's activation (or the batch), whose gradient goes to
    // the other buffer of the pair.
    float *dz = ws->logits;
    float *spare[2] = {ws->g0, ws->g1};
    for (int l = L - 1; l >= 0; l--) {
        size_t       fi = ws->sizes[l], fo = ws->sizes[l + 1];
        const float *a = l > 0 ? ws->act[l - 1] : ws->xb;
        const float *W = w + ws->w_off[l];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)fo, (int)fi,
                    (int)n, 1.0f, dz, (int)fo, a, (int)fi, 0.0f,
                    grad + ws->w_off[l], (int)fi);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)n, (int)fo, 1.0f, dz,
                    (int)fo, ws->ones, 1, 0.0f, grad + ws->b_off[l], 1);
        if (l == 0) {
            break;
        }
        // dL/da = dz W, then back through the ReLU (a > 0 exactly where its
        // input was) and batch norm to layer l-1's linear output.
        float *da = spare[l % 2];
        size_t count = n * fi;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)fi,
                    (int)fo, 1.0f, dz, (int)fo, W, (int)fi, 0.0f, da, (int)fi);
        for (size_t i = 0; i < count; i++) {
            da[i] = a[i] > 0.0f ? da[i] : 0.0f;
        }
        if (ws->bn) {
            ds_mlp_bn_t bn = s_bn(m, ws, w, NULL, l - 1);
            float      *gg = grad + ws->g_off[l - 1];
            ds_mlp_bn_backward(&bn, da, ws->xhat[l - 1], n, gg, gg + fi);
        }
        dz = da;
    }
    return loss / (double)n;
}

double
ds_mlp_eval_rows(const ds_model_t *m, ds_mlp_ws_t *ws, const float *w,
                 const float *x, const uint8_t *y, const uint32_t *idx,
                 size_t n, float *loss, size_t *correct)
{
    assert(n <= ws->max_batch);
    if (n == 0) {
        return 0.0;
    }
    size_t       dim = ws->sizes[0];
    const float *in = x;
    if (idx != NULL) {
        for (size_t i = 0; i < n; i++) {
            memcpy(ws->xb + i * dim, x + (size_t)idx[i] * dim,
                   dim * sizeof(float));
        }
        in = ws->xb;
    }
    // Evaluation reads the running statistics and never writes them.
    s_forward(m, ws, w, in, n, false, m->running);
    return ds_mlp_xent(ws->logits, n, (int)ws->sizes[ws->nlayers], y, idx,
                       false, 0.0f, loss, correct);
}
