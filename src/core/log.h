/*
 * Logging: `mg_log(level, area, fmt, ...)` writes one line to stderr, either as text
 * (`ts level area: message`) or as one JSON object per line. Messages are lower case,
 * `event key=value (reason)`.
 */
#ifndef MG_CORE_LOG_H
#define MG_CORE_LOG_H

#include "core/buf.h"

typedef enum {
    MG_LOG_DEBUG = 0,
    MG_LOG_INFO = 1,
    MG_LOG_WARN = 2,
    MG_LOG_ERROR = 3,
} mg_log_level_t;

/**
 * Sets the lowest level written (default MG_LOG_INFO) and the sink format. Thread: any (lines
 * being written while it changes use either setting).
 */
void mg_log_configure(mg_log_level_t min_level, int json);

/** Parses "debug", "info", "warn" or "error"; returns 0 or MG_EINVAL. */
int mg_log_level_parse(const char *s, mg_log_level_t *out);

/** Returns non-zero when `level` would be written. Thread: any. */
int mg_log_enabled(mg_log_level_t level);

/**
 * What the lines a thread writes are about: the JSON sink adds each field that is set
 * ("model", "version", "trace_id", "ab_group", "route_reason"); the text sink leaves them out
 * (its messages name what they need).
 */
typedef struct mg_log_context {
    mg_str_t model, version, trace_id, ab_group, route_reason;
} mg_log_context_t;

/**
 * Sets the calling thread's context to `ctx` (not copied: it and the strings it points to must
 * stay valid until it is replaced), or clears it with NULL. Thread: the caller's own.
 */
void mg_log_context_set(const mg_log_context_t *ctx);

/** Writes one log line (a single write(2), so lines never interleave). Thread: any. */
void mg_log(mg_log_level_t level, const char *area, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
