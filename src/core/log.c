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

static _Thread_local const mg_log_context_t *context;

void mg_log_context_set(const mg_log_context_t *ctx)
{
    context = ctx;
}

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

/* Appends `n` bytes of `s` to out[*len..cap) with JSON string escaping; truncates silently. */
static void append_json_escaped(char *out, size_t *len, size_t cap, const char *s, size_t n)
{
    for (const char *end = s + n; s < end && *len + 7 < cap; s++) {
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
        append_json_escaped(line, &len, sizeof(line) - 3, msg, strlen(msg));
        line[len++] = '"';
        if (context != NULL) {
            const struct {
                const char *key;
                mg_str_t v;
            } fields[] = {{"model", context->model},
                          {"version", context->version},
                          {"trace_id", context->trace_id},
                          {"ab_group", context->ab_group},
                          {"route_reason", context->route_reason}};
            for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                if (fields[i].v.len == 0 || len + strlen(fields[i].key) + 8 >= sizeof(line) - 3)
                    continue;
                len +=
                    (size_t)snprintf(line + len, sizeof(line) - len, ",\"%s\":\"", fields[i].key);
                append_json_escaped(line, &len, sizeof(line) - 4, fields[i].v.ptr, fields[i].v.len);
                line[len++] = '"';
            }
        }
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
