// SPDX-License-Identifier: MIT
// curriculum - orders examples by difficulty (Bengio et al. 2009), easy
// first, optionally mixed with uniform samples (Zaremba and Sutskever).
#include "common/curriculum.h"

#include <errno.h>
#include <stdlib.h>

typedef struct {
    float    loss;  // difficulty
    uint32_t index; // example
} s_item_t;

static int
s_cmp(const void *a, const void *b)
{
    const s_item_t *x = a, *y = b;
    if (x->loss != y->loss) {
        return x->loss < y->loss ? -1 : 1;
    }
    // Equal losses keep their order: qsort is not stable by itself.
    return x->index < y->index ? -1 : x->index > y->index;
}

int
ds_curriculum_order(const float *loss, uint32_t *order, size_t n)
{
    s_item_t *items = malloc((n ? n : 1) * sizeof *items);
    if (!items) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        items[i] = (s_item_t){.loss = loss[i], .index = (uint32_t)i};
    }
    qsort(items, n, sizeof *items, s_cmp);
    for (size_t i = 0; i < n; i++) {
        order[i] = items[i].index;
    }
    free(items);
    return 0;
}

size_t
ds_curriculum_mix(uint32_t *order, size_t n, double p, ds_rng_t *r)
{
    size_t replaced = 0;
    for (size_t i = 0; i < n && p > 0; i++) {
        if (ds_rng_uniform(r) < p) {
            order[i] = (uint32_t)ds_rng_below(r, n);
            replaced++;
        }
    }
    return replaced;
}
