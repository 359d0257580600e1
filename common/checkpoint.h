// SPDX-License-Identifier: MIT
// checkpoint - one key range's state in a file: parameters, the update
// rule's state, the update count and the per-worker sequence table.
#ifndef DS_CHECKPOINT_H
#define DS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define DS_CKPT_MAX_STATE 3 // state arrays, as DS_OPTIM_MAX_STATE

// ds_ckpt_t describes one range's saved state. The arrays are borrowed
// when writing; when reading, they are allocated and owned by the struct
// (free with ds_ckpt_fini).
typedef struct {
    uint32_t  range;                    // range id
    uint64_t  begin;                    // first key
    uint64_t  end;                      // one past the last key
    uint64_t  epoch;                    // shard-map epoch it was taken under
    uint64_t  updates;                  // pushes applied to the range
    uint64_t  t;                        // the update rule's step count
    int       rule;                     // the update rule (ds_optim_kind_t)
    int       nstate;                   // state arrays in use
    float    *w;                        // end - begin parameters
    float    *state[DS_CKPT_MAX_STATE]; // end - begin floats each
    uint32_t  nseq;                     // entries of seq
    uint64_t *seq; // last applied sequence number per worker row
} ds_ckpt_t;

// ds_ckpt_write writes c to path atomically: a temporary file in the same
// directory, fsync, rename, fsync of the directory. The file is a fixed
// little-endian header, the arrays, and a CRC-32 of everything before it.
// Returns 0 or a negative errno with err set.
int ds_ckpt_write(const char *path, const ds_ckpt_t *c, char *err,
                  size_t errlen);

// ds_ckpt_read reads a checkpoint written by ds_ckpt_write into c (arrays
// allocated; free with ds_ckpt_fini). Every size is checked against the
// file before any allocation; a wrong magic, version, size or CRC is
// -EPROTO, a missing file -ENOENT. err names the file and the problem.
int ds_ckpt_read(const char *path, ds_ckpt_t *c, char *err, size_t errlen);

// ds_ckpt_copy makes dst a snapshot of src: the same description with
// copies of its arrays, owned by dst (free with ds_ckpt_fini), so that it
// can be written later while src's arrays change. Returns 0 or -ENOMEM
// (dst is then empty).
int ds_ckpt_copy(ds_ckpt_t *dst, const ds_ckpt_t *src);

// ds_ckpt_fini frees the arrays ds_ckpt_read allocated and zeroes c.
void ds_ckpt_fini(ds_ckpt_t *c);

#endif
