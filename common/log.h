// SPDX-License-Identifier: MIT
// log - levelled logging with a pluggable sink; the level is checked first.
#ifndef DS_LOG_H
#define DS_LOG_H

#include <stdarg.h>

enum { DS_DEBUG = 0, DS_INFO = 1, DS_WARN = 2, DS_ERROR = 3, DS_SILENT = 4 };

// ds_log_sink_fn receives one formatted line (no trailing newline).
typedef void ds_log_sink_fn(int level, const char *who, const char *line,
                            void *arg);

extern int ds_log_level; // messages below this level are not formatted

// ds_log logs a printf-style message from component `who` at `lvl`.
#define ds_log(lvl, who, ...)                                                  \
    do {                                                                       \
        if ((lvl) < ds_log_level) {                                            \
            break;                                                             \
        }                                                                      \
        ds_log_emit((lvl), (who), __VA_ARGS__);                                \
    } while (0)

void ds_log_emit(int level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// ds_log_set_sink replaces the sink (NULL restores the default: stderr with
// a timestamp). Not thread-safe; call at start-up.
void ds_log_set_sink(ds_log_sink_fn *fn, void *arg);

// ds_log_parse_level maps "debug|info|warn|error" to a level, or -1.
int ds_log_parse_level(const char *name);

#endif
