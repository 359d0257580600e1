// SPDX-License-Identifier: MIT
// tmpdir - a fresh temporary directory per test, removed afterwards.
#ifndef DS_TEST_TMPDIR_H
#define DS_TEST_TMPDIR_H

#include <stddef.h>

// ut_tmpdir_make creates /tmp/<prefix>_<random> and writes its path to
// buf; fails the test if it cannot.
void ut_tmpdir_make(char *buf, size_t len, const char *prefix);

// ut_tmpdir_remove removes dir, its files and its empty subdirectories.
void ut_tmpdir_remove(const char *dir);

#endif
