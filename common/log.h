// SPDX-License-Identifier: MIT
// log - levelled logging with a pluggable sink; the level is checked first.
#ifndef DS_LOG_H
#define DS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/ratelog.h"

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

// ds_log_peer logs a printf-style line about a message of `kind` from
// `peer` (a refusal, a message that does not parse) through the limiter rl,
// whose clock reads now_ms: past rl's burst such lines are counted, not
// logged, and the count is logged when the interval ends.
#define ds_log_peer(rl, now_ms, lvl, who, peer, kind, ...)                     \
    do {                                                                       \
        if ((lvl) < ds_log_level) {                                            \
            break;                                                             \
        }                                                                      \
        ds_log_peer_emit((rl), (now_ms), (lvl), (who), (peer), (kind),         \
                         __VA_ARGS__);                                         \
    } while (0)

void ds_log_peer_emit(ds_ratelog_t *rl, uint64_t now_ms, int level,
                      const char *who, const char *peer, const char *kind,
                      const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

// ds_log_suppressed logs, at warn level, the counts of rl's lines held back
// in intervals that ended by now_ms (all of them if all): "suppressed K
// similar messages from PEER in the last T s (KIND)". Roles call it from a
// timer and before they exit.
void ds_log_suppressed(ds_ratelog_t *rl, uint64_t now_ms, bool all,
                       const char *who);

// ds_log_set_sink replaces the sink (NULL restores the default: stderr with
// a timestamp). Not thread-safe; call at start-up.
void ds_log_set_sink(ds_log_sink_fn *fn, void *arg);

// ds_log_parse_level maps "debug|info|warn|error" to a level, or -1.
int ds_log_parse_level(const char *name);

#endif
