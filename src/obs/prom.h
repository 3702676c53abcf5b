/*
 * The Prometheus text exposition format, version 0.0.4: one family header (# HELP, # TYPE)
 * and its samples, label values escaped as the format requires. Writers only: what to expose
 * is decided by serve/report.c.
 */
#ifndef MG_OBS_PROM_H
#define MG_OBS_PROM_H

#include "core/buf.h"

#include <stdint.h>

/** The Content-Type of a scrape answer. */
#define MG_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/** One label; `value` is escaped when written. */
typedef struct mg_prom_label {
    const char *name;
    const char *value;
} mg_prom_label_t;

/**
 * Appends "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram).
 * Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_prom_family(mg_buf_t *b, const char *name, const char *type, const char *help);

/** Appends `name{labels} value` with an integer value. Returns 0 or MG_ENOMEM. */
int mg_prom_u64(mg_buf_t *b, const char *name, const mg_prom_label_t *labels, int nlabels,
                uint64_t value);

/** Appends `name{labels} value` with a floating value (%.17g; NaN and infinities spelled out). */
int mg_prom_double(mg_buf_t *b, const char *name, const mg_prom_label_t *labels, int nlabels,
                   double value);

/**
 * Appends a whole family of one unlabelled sample (%.17g: integers print exactly up to 2^53).
 * Returns 0 or MG_ENOMEM.
 */
int mg_prom_scalar(mg_buf_t *b, const char *name, const char *type, const char *help, double value);

/**
 * Appends the samples of one histogram: name_bucket{labels,le="b"} for each of the `n` bounds
 * (cumulative counts from the non-cumulative `counts`) and le="+Inf", then name_sum and
 * name_count. `labels` leaves one spare entry at the end for "le". Returns 0 or MG_ENOMEM.
 */
int mg_prom_histogram(mg_buf_t *b, const char *name, mg_prom_label_t *labels, int nlabels,
                      const double *bounds, const uint64_t *counts, int n, uint64_t count,
                      double sum);

#endif
