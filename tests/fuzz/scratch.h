// SPDX-License-Identifier: MIT
// scratch - per-process temporary files for the fuzz targets whose parsers
// take a path.
#ifndef DS_FUZZ_SCRATCH_H
#define DS_FUZZ_SCRATCH_H

#include <stddef.h>

#define FZ_SCRATCH_SLOTS 4 // distinct temporary files per process

// fz_scratch_write replaces the contents of temporary file `slot`
// (< FZ_SCRATCH_SLOTS) with data[0..len) and returns its path. The file is
// created under /tmp with mkstemp on first use and removed at exit, so
// parallel fuzzing jobs never share one. Aborts when the file cannot be
// written: that is a broken harness, not a finding.
const char *fz_scratch_write(unsigned slot, const void *data, size_t len);

#endif
