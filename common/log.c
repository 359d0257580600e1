// SPDX-License-Identifier: MIT
// log - levelled logging with a pluggable sink; the level is checked first.
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int ds_log_level = DS_INFO;

static ds_log_sink_fn *s_sink;
static void           *s_sink_arg;

static const char *const s_names[] = {"debug", "info", "warn", "error"};

static void
s_stderr_sink(int level, const char *who, const char *line, void *arg)
{
    (void)arg;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s %s: %s\n", tm.tm_hour, tm.tm_min,
            tm.tm_sec, (long)(tv.tv_usec / 1000),
            s_names[level < 0   ? 0
                    : level > 3 ? 3
                                : level],
            who, line);
}

static void
s_vemit(int level, const char *who, const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    if (s_sink) {
        s_sink(level, who, line, s_sink_arg);
    } else {
        s_stderr_sink(level, who, line, NULL);
    }
}

void
ds_log_emit(int level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vemit(level, who, fmt, ap);
    va_end(ap);
}

static void
s_say_suppressed(const char *who, const ds_ratelog_summary_t *sum)
{
    ds_log_emit(DS_WARN, who,
                "suppressed %" PRIu64
                " similar messages from %s in the last %.1f s%s%s%s",
                sum->count, sum->peer, (double)sum->span_ms / 1000.0,
                sum->kind[0] ? " (" : "", sum->kind, sum->kind[0] ? ")" : "");
}

void
ds_log_peer_emit(ds_ratelog_t *rl, uint64_t now_ms, int level, const char *who,
                 const char *peer, const char *kind, const char *fmt, ...)
{
    ds_ratelog_summary_t ended;
    bool                 log = ds_ratelog_hit(rl, peer, kind, now_ms, &ended);
    if (ended.count > 0 && DS_WARN >= ds_log_level) {
        s_say_suppressed(who, &ended);
    }
    if (log) {
        va_list ap;
        va_start(ap, fmt);
        s_vemit(level, who, fmt, ap);
        va_end(ap);
    }
}

void
ds_log_suppressed(ds_ratelog_t *rl, uint64_t now_ms, bool all, const char *who)
{
    ds_ratelog_summary_t sum;
    while (ds_ratelog_summary(rl, now_ms, all, &sum)) {
        if (DS_WARN >= ds_log_level) {
            s_say_suppressed(who, &sum);
        }
    }
}

void
ds_log_set_sink(ds_log_sink_fn *fn, void *arg)
{
    s_sink = fn;
    s_sink_arg = arg;
}

int
ds_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, s_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}
