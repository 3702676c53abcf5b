#include "core/version.h"

#include "core/err.h"

#include <stdio.h>

int mg_version_parse(const char *s, size_t n, int64_t *out)
{
    if (n == 0)
        return MG_EINVAL;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9 || v > (INT64_MAX - (int64_t)d) / 10)
            return MG_EINVAL;
        v = v * 10 + (int64_t)d;
    }
    if (v == 0)
        return MG_EINVAL;
    *out = v;
    return 0;
}

int mg_version_from_json(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n <= 0)
            return MG_EINVAL;
        *out = (int64_t)n;
        return 0;
    }
    if (json_is_string(v))
        return mg_version_parse(json_string_value(v), json_string_length(v), out);
    return MG_EINVAL;
}

size_t mg_version_format(int64_t v, char *out)
{
    int n = snprintf(out, MG_VERSION_TEXT_MAX, "%lld", (long long)v);
    return n > 0 ? (size_t)n : 0;
}
