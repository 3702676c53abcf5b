/* The Prometheus text format writers. */
#include "obs/prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int mg_prom_family(mg_buf_t *b, const char *name, const char *type, const char *help)
{
    /* HELP text escapes backslash and newline only. */
    int rc = mg_buf_printf(b, "# HELP %s ", name);
    for (const char *p = help; rc == 0 && *p; p++) {
        if (*p == '\\')
            rc = mg_buf_puts(b, "\\\\");
        else if (*p == '\n')
            rc = mg_buf_puts(b, "\\n");
        else
            rc = mg_buf_append(b, p, 1);
    }
    return rc ? rc : mg_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static int put_labels(mg_buf_t *b, const mg_prom_label_t *labels, int n)
{
    if (n == 0)
        return 0;
    int rc = mg_buf_puts(b, "{");
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = mg_buf_printf(b, "%s%s=\"", i ? "," : "", labels[i].name);
        for (const char *p = labels[i].value ? labels[i].value : ""; rc == 0 && *p; p++) {
            if (*p == '\\')
                rc = mg_buf_puts(b, "\\\\");
            else if (*p == '"')
                rc = mg_buf_puts(b, "\\\"");
            else if (*p == '\n')
                rc = mg_buf_puts(b, "\\n");
            else
                rc = mg_buf_append(b, p, 1);
        }
        if (rc == 0)
            rc = mg_buf_puts(b, "\"");
    }
    return rc ? rc : mg_buf_puts(b, "}");
}

int mg_prom_u64(mg_buf_t *b, const char *name, const mg_prom_label_t *labels, int nlabels,
                uint64_t value)
{
    int rc = mg_buf_puts(b, name);
    if (rc == 0)
        rc = put_labels(b, labels, nlabels);
    return rc ? rc : mg_buf_printf(b, " %" PRIu64 "\n", value);
}

int mg_prom_double(mg_buf_t *b, const char *name, const mg_prom_label_t *labels, int nlabels,
                   double value)
{
    int rc = mg_buf_puts(b, name);
    if (rc == 0)
        rc = put_labels(b, labels, nlabels);
    if (rc != 0)
        return rc;
    if (isnan(value))
        return mg_buf_puts(b, " NaN\n");
    if (isinf(value))
        return mg_buf_puts(b, value > 0 ? " +Inf\n" : " -Inf\n");
    return mg_buf_printf(b, " %.17g\n", value);
}

int mg_prom_scalar(mg_buf_t *b, const char *name, const char *type, const char *help, double value)
{
    int rc = mg_prom_family(b, name, type, help);
    return rc ? rc : mg_prom_double(b, name, NULL, 0, value);
}

int mg_prom_histogram(mg_buf_t *b, const char *name, mg_prom_label_t *labels, int nlabels,
                      const double *bounds, const uint64_t *counts, int n, uint64_t count,
                      double sum)
{
    char metric[160], le[32];
    snprintf(metric, sizeof(metric), "%s_bucket", name);
    uint64_t cumulative = 0;
    int rc = 0;
    for (int i = 0; rc == 0 && i <= n; i++) {
        if (i < n) {
            cumulative += counts[i];
            snprintf(le, sizeof(le), "%g", bounds[i]);
        } else {
            /* Whatever lies above the last bound is only in the count. */
            cumulative = count > cumulative ? count : cumulative;
            snprintf(le, sizeof(le), "+Inf");
        }
        labels[nlabels] = (mg_prom_label_t){"le", le};
        rc = mg_prom_u64(b, metric, labels, nlabels + 1, cumulative);
    }
    snprintf(metric, sizeof(metric), "%s_sum", name);
    if (rc == 0)
        rc = mg_prom_double(b, metric, labels, nlabels, sum);
    snprintf(metric, sizeof(metric), "%s_count", name);
    return rc ? rc : mg_prom_u64(b, metric, labels, nlabels, cumulative);
}
