// SPDX-License-Identifier: MIT
// safetensors - write float32 tensors in the safetensors file format.
#ifndef DS_SAFETENSORS_H
#define DS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

// ds_tensor_t names one float32 tensor to write. Data is not copied.
typedef struct {
    const char  *name;     // tensor name, e.g. "weight"
    const float *data;     // row-major values
    int          ndim;     // 1..4
    uint64_t     shape[4]; // dimensions
} ds_tensor_t;

// ds_safetensors_write writes n tensors to path atomically (a temporary file
// in the same directory, fsync, rename): an 8-byte little-endian header
// length, a JSON header padded with spaces to a multiple of 8 bytes
// ({"name":{"dtype":"F32","shape":[...],"data_offsets":[b,e]},...,
// "__metadata__":{k:v,...}}), then the data in the order given. meta is a
// NULL-terminated list of key, value string pairs (may be NULL).
// Returns 0 or a negative errno with err set.
int ds_safetensors_write(const char *path, const ds_tensor_t *t, size_t n,
                         const char *const *meta, char *err, size_t errlen);

#endif
