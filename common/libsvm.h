// SPDX-License-Identifier: MIT
// libsvm - LIBSVM/SVMlight sparse text data, gzip or plain, streamed into a
// CSR matrix of hashed feature keys; each worker keeps only its partition.
#ifndef DS_LIBSVM_H
#define DS_LIBSVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_LIBSVM_MAX_LINE 1048576 // longest accepted line, bytes without \n
#define DS_LIBSVM_MIN_BITS 1       // smallest hash_bits
#define DS_LIBSVM_MAX_BITS 40      // largest hash_bits

// ds_sparse_t is a labelled sparse binary dataset in compressed sparse row
// form. Row i holds the entries [offsets[i], offsets[i+1]) of keys and vals;
// within a row the keys are strictly increasing and never 0 (key 0 is the
// bias of ds_logreg). Keys live in [1, 2^hash_bits) of the load options.
typedef struct {
    size_t    n;       // rows
    size_t    nnz;     // stored entries over all rows, = offsets[n]
    uint64_t *keys;    // nnz feature keys, sorted and unique per row; owned
    float    *vals;    // nnz values; owned
    size_t   *offsets; // n + 1 row starts into keys/vals; owned
    uint8_t  *y;       // n labels, 0 or 1; owned
} ds_sparse_t;

// ds_libsvm_opts_t says how to read a file. Zero-initialised fields other
// than hash_bits and nparts are the defaults.
typedef struct {
    unsigned hash_bits;  // keys lie in [0, 2^hash_bits); 1..40
    bool     no_hash;    // key = 1-based feature index (must be below
                         // 2^hash_bits) instead of its hash
    bool     zero_based; // feature indices in the file start at 0, not 1
    unsigned part;       // which partition to keep, < nparts
    unsigned nparts;     // how many partitions (workers), >= 1
    size_t   limit;      // data lines considered, 0 = all
} ds_libsvm_opts_t;

// ds_libsvm_hash returns the key of the 1-based feature index id when keys
// lie in [0, 2^bits), 1 <= bits <= 40: a value in [1, 2^bits), never the
// bias key 0. With h = mix(id + 0x9e3779b97f4a7c15), where mix is the
// splitmix64 finalizer, the key is 1 + floor(h * (2^bits - 1) / 2^64).
// The same (id, bits) gives the same key on every machine.
uint64_t ds_libsvm_hash(uint64_t id, unsigned bits);

// ds_libsvm_load reads the LIBSVM/SVMlight file at path (gzip-compressed
// or plain; zlib reads both) and keeps the data lines of partition
// o->part of o->nparts: data line k (0-based, counting only lines with a
// label, not blank or comment-only lines) belongs to partition
// k % nparts, among the first o->limit data lines (0 = all). Only the
// kept lines are parsed; the others are skipped after finding their line
// end, so a malformed line is reported by the loader whose partition holds
// it (load with nparts = 1 to check a whole file).
//
// A line is `label [qid:N] index:value ...` with an optional `# comment`
// (everything from the first '#' is ignored); tokens are separated by
// spaces or tabs and a trailing \r is ignored. The label is a number equal
// to 1 (label 1) or to 0 or -1 (label 0): "+1", "1", "1.0", "0", "-1" all
// work. Indices are decimal integers, 1-based unless o->zero_based; the
// feature id used for hashing is always the 1-based index. Values are
// decimal floats that must be finite as float32. Entries whose keys
// coincide in a row (a repeated index, or a hash collision) are summed.
//
// On success d owns its arrays (free with ds_sparse_fini). Returns 0, or a
// negative errno with err naming the file, and the line for a bad line
// ("data.svm:17: bad feature \"3x:1\": index is not a number"):
// -ENOENT (or another open error) when the file cannot be opened; -EPROTO
// for a malformed line (missing or bad label, index not a number or
// negative, missing ':', bad or non-finite value, junk after a value) or
// corrupt gzip data; -EINVAL for bad options, for an index the options
// reject (index 0 in a 1-based file, an index that does not fit
// 2^hash_bits with no_hash) and for an empty partition; -EMSGSIZE for a
// line longer than DS_LIBSVM_MAX_LINE bytes (in every partition, since
// each must find the line's end); -EIO for a read error; -ENOMEM. On
// failure d is left empty. docs/data.md lists every message.
int ds_libsvm_load(ds_sparse_t *d, const char *path, const ds_libsvm_opts_t *o,
                   char *err, size_t errlen);

// ds_sparse_fini frees the arrays of d and zeroes it. Idempotent.
void ds_sparse_fini(ds_sparse_t *d);

#endif
