#include "core/log.h"

#include "core/err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Atomics, so SIGHUP can change them while other threads log. */
static atomic_int min_level = MG_LOG_INFO;
static atomic_int json_sink;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void mg_log_configure(mg_log_level_t level, int json)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
    atomic_store_explicit(&json_sink, json, memory_order_relaxed);
}

int mg_log_level_parse(const char *s, mg_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (mg_log_level_t)i;
            return 0;
        }
    }
    return MG_EINVAL;
}

int mg_log_enabled(mg_log_level_t level)
{
    return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

/* Appends `s` to out[*len..cap) with JSON string escaping; truncates silently. */
static void append_json_escaped(char *out, size_t *len, size_t cap, const char *s)
{
    for (; *s != '\0' && *len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[(*len)++] = '\\';
            out[(*len)++] = (char)c;
        } else if (c < 0x20) {
            *len += (size_t)snprintf(out + *len, cap - *len, "\\u%04x", c);
        } else {
            out[(*len)++] = (char)c;
        }
    }
}

void mg_log(mg_log_level_t level, const char *area, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
        return;

    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000);

    char line[1400];
    size_t len;
    if (atomic_load_explicit(&json_sink, memory_order_relaxed)) {
        len = (size_t)snprintf(line, sizeof(line),
                               "{\"ts\":\"%s\",\"level\":\"%s\",\"area\":\"%s\",\"msg\":\"", when,
                               level_names[level], area);
        append_json_escaped(line, &len, sizeof(line) - 3, msg);
        line[len++] = '"';
        line[len++] = '}';
        line[len++] = '\n';
    } else {
        len = (size_t)snprintf(line, sizeof(line), "%s %-5s %s: %s\n", when, level_names[level],
                               area, msg);
        if (len >= sizeof(line)) {
            len = sizeof(line) - 1;
            line[len - 1] = '\n';
        }
    }
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}
