// SPDX-License-Identifier: MIT
// log - levelled logging with a pluggable sink; the level is checked first.
#include "common/log.h"

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

void
ds_log_emit(int level, const char *who, const char *fmt, ...)
{
    char    line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (s_sink) {
        s_sink(level, who, line, s_sink_arg);
    } else {
        s_stderr_sink(level, who, line, NULL);
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
