#include "serve/deadline.h"

#include <string.h>

int mg_deadline_parse_header(mg_str_t v, int64_t *ns)
{
    /* Integer and fractional parts as nanoseconds of the unit, no floating point. */
    size_t i = 0;
    int64_t whole = 0, frac = 0, scale = 1;
    int digits = 0;
    while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9') {
        if (whole > (INT64_MAX - 9) / 10)
            return -1;
        whole = whole * 10 + (v.ptr[i++] - '0');
        digits++;
    }
    if (i < v.len && v.ptr[i] == '.') {
        i++;
        while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9') {
            if (scale < 1000000000) {
                frac = frac * 10 + (v.ptr[i] - '0');
                scale *= 10;
            }
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return -1;
    mg_str_t unit = {v.ptr + i, v.len - i};
    int64_t per;
    if (unit.len == 0 || mg_str_eq(unit, "s"))
        per = 1000000000;
    else if (mg_str_eq(unit, "ms"))
        per = 1000000;
    else if (mg_str_eq(unit, "us"))
        per = 1000;
    else
        return -1;
    if (whole > INT64_MAX / per / 2)
        return -1;
    *ns = whole * per + frac * per / scale;
    return *ns > 0 ? 0 : -1;
}

int mg_deadline_resolve(const mg_deadline_opts_t *o, const mg_infer_request_t *req,
                        const mg_meta_t *meta, int64_t now_ns, int64_t *deadline_ns, mg_err_t *err)
{
    int64_t ns = 0;
    const mg_param_t *p = req != NULL ? mg_infer_request_param(req, "timeout", 7) : NULL;
    mg_str_t h = mg_meta_value(meta, "request-timeout", 15);
    if (p != NULL) {
        if (p->kind != MG_PARAM_INT || p->num_int <= 0 || p->num_int > INT64_MAX / 1000)
            return mg_err_set(err, MG_EINVAL,
                              "parameter 'timeout' must be a positive integer of microseconds");
        ns = p->num_int * 1000;
    } else if (h.len > 0) {
        if (mg_deadline_parse_header(h, &ns) != 0)
            return mg_err_set(err, MG_EINVAL,
                              "Request-Timeout must be a positive number of seconds, or end in "
                              "ms or us (\"2\", \"250ms\")");
    } else if (o != NULL && o->default_ms > 0) {
        ns = o->default_ms * 1000000;
    }
    if (ns > 0 && o != NULL && o->max_ms > 0 && ns > o->max_ms * 1000000)
        ns = o->max_ms * 1000000;
    *deadline_ns = ns > 0 ? now_ns + ns : 0;
    return 0;
}
