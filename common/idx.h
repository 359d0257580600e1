// SPDX-License-Identifier: MIT
// idx - IDX (MNIST-format) image and label files, gzip or plain.
#ifndef DS_IDX_H
#define DS_IDX_H

#include <stddef.h>
#include <stdint.h>

// ds_dataset_t is a labelled dense dataset held in memory: n examples of
// dim float32 features (pixels scaled to [0, 1]) and a uint8 label each.
typedef struct {
    size_t   n;       // examples
    size_t   dim;     // features per example (28*28 = 784 for MNIST)
    int      classes; // number of classes (max label + 1, at least 2)
    float   *x;       // n*dim features, row-major; owned
    uint8_t *y;       // n labels; owned
} ds_dataset_t;

// ds_idx_load reads an IDX3 image file and its IDX1 label file (each either
// gzip-compressed or plain; zlib's gzread reads both) and keeps the examples
// of partition `part` of `nparts`: the examples i with first <= i < last
// where the first `limit` examples (0 = all) are cut into nparts contiguous
// near-equal slices. Only that slice is converted and kept in memory.
// Returns 0, or a negative errno with err naming the file and the problem:
// -ENOENT missing file, -EPROTO bad magic/dims/truncated, -EINVAL counts of
// images and labels differ or bad arguments, -ENOMEM.
int ds_idx_load(ds_dataset_t *d, const char *images_path,
                const char *labels_path, size_t limit, unsigned part,
                unsigned nparts, char *err, size_t errlen);

// ds_idx_load_range reads examples [first, last) of the files, like
// ds_idx_load otherwise. Returns -EINVAL (err set) unless first < last <= n.
int ds_idx_load_range(ds_dataset_t *d, const char *images_path,
                      const char *labels_path, uint64_t first, uint64_t last,
                      char *err, size_t errlen);

// ds_idx_count reads the header of an IDX3 image file and stores its number
// of images in *n. Returns 0 or a negative errno with err set.
int ds_idx_count(const char *images_path, uint64_t *n, char *err,
                 size_t errlen);

// ds_idx_find writes to path (len bytes) the first of dir/name.gz and
// dir/name that can be opened for reading. Returns 0; or -ENOENT when
// neither exists, with err saying which file is missing and how to install
// the dataset; or the real negative errno (-EACCES, -EISDIR, -ELOOP, ...)
// when one exists but cannot be read, with err naming it and the reason.
int ds_idx_find(const char *dir, const char *name, char *path, size_t len,
                char *err, size_t errlen);

// ds_dataset_fini frees the arrays of d and zeroes it. Idempotent.
void ds_dataset_fini(ds_dataset_t *d);

#endif
