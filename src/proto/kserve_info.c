#include "proto/kserve_info.h"

#include <string.h>

static int put_string(mg_buf_t *b, const char *s)
{
    return mg_buf_json_string(b, s, strlen(s));
}

int mg_kserve_info_server(mg_buf_t *out, const char *name, const char *version,
                          const char *const *extensions, size_t nextensions)
{
    int rc = mg_buf_puts(out, "{\"name\":");
    rc |= put_string(out, name);
    rc |= mg_buf_puts(out, ",\"version\":");
    rc |= put_string(out, version);
    rc |= mg_buf_puts(out, ",\"extensions\":[");
    for (size_t i = 0; i < nextensions; i++) {
        rc |= mg_buf_puts(out, i ? "," : "");
        rc |= put_string(out, extensions[i]);
    }
    rc |= mg_buf_puts(out, "]}");
    return rc ? MG_ENOMEM : 0;
}

static int put_tensor_infos(mg_buf_t *b, const mg_tensor_info_t *t, size_t n)
{
    int rc = mg_buf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        rc |= mg_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        rc |= put_string(b, t[i].name);
        rc |= mg_buf_printf(b, ",\"datatype\":\"%s\",\"shape\":[", mg_dtype_name(t[i].dtype));
        for (int d = 0; d < t[i].ndim; d++)
            rc |= mg_buf_printf(b, d ? ",%lld" : "%lld", (long long)t[i].shape[d]);
        rc |= mg_buf_puts(b, "]}");
    }
    rc |= mg_buf_puts(b, "]");
    return rc;
}

int mg_kserve_info_model(mg_buf_t *out, const char *name, const int64_t *versions, int nversions,
                         const char *platform, int64_t max_batch_size,
                         const mg_kserve_info_tensors_t *tensors)
{
    int rc = mg_buf_puts(out, "{\"name\":");
    rc |= put_string(out, name);
    rc |= mg_buf_puts(out, ",\"versions\":[");
    for (int i = 0; i < nversions; i++)
        rc |= mg_buf_printf(out, i ? ",\"%lld\"" : "\"%lld\"", (long long)versions[i]);
    rc |= mg_buf_puts(out, "],\"platform\":");
    rc |= put_string(out, platform);
    rc |= mg_buf_printf(out, ",\"max_batch_size\":%lld,", (long long)max_batch_size);
    rc |= mg_buf_puts(out, "\"inputs\":");
    rc |= put_tensor_infos(out, tensors->inputs, tensors->ninputs);
    rc |= mg_buf_puts(out, ",\"outputs\":");
    rc |= put_tensor_infos(out, tensors->outputs, tensors->noutputs);
    rc |= mg_buf_puts(out, "}");
    return rc ? MG_ENOMEM : 0;
}

int mg_kserve_info_index_row(mg_buf_t *out, int first, const char *name, const char *version,
                             const char *state, const char *modelgate_state, const char *reason)
{
    int rc = mg_buf_puts(out, first ? "{\"name\":" : ",{\"name\":");
    rc |= put_string(out, name);
    if (version != NULL) {
        rc |= mg_buf_puts(out, ",\"version\":");
        rc |= put_string(out, version);
    }
    if (state != NULL) {
        rc |= mg_buf_puts(out, ",\"state\":");
        rc |= put_string(out, state);
        if (modelgate_state != NULL) {
            rc |= mg_buf_puts(out, ",\"modelgate_state\":");
            rc |= put_string(out, modelgate_state);
        }
        rc |= mg_buf_puts(out, ",\"reason\":");
        rc |= put_string(out, reason != NULL ? reason : "");
    }
    rc |= mg_buf_puts(out, "}");
    return rc ? MG_ENOMEM : 0;
}
