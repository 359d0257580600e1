// SPDX-License-Identifier: MIT
// gnuplot - drawing pictures with gnuplot (Debian's gnuplot-nox) as a
// child process.
#ifndef DS_GNUPLOT_H
#define DS_GNUPLOT_H

// ds_gnuplot_available returns 1 if gnuplot is on PATH, else 0.
int ds_gnuplot_available(void);

// ds_gnuplot_run runs `gnuplot script` and waits for it. Returns 0,
// -ENOENT if gnuplot is not installed, or -EIO if it failed.
int ds_gnuplot_run(const char *script);

#endif
