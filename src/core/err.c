#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mg_err_set(mg_err_t *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

int mg_err_quote_len(size_t n)
{
    return n > MG_ERR_QUOTE_MAX ? MG_ERR_QUOTE_MAX : (int)n;
}

void mg_err_clear(mg_err_t *err)
{
    if (err != NULL) {
        err->code = MG_OK;
        err->msg[0] = '\0';
    }
}

const char *mg_strerror(int code)
{
    switch (code) {
    case MG_OK: return "success";
    case MG_EPARSE: return "malformed input";
    case MG_EDTYPE: return "datatype mismatch";
    case MG_ESHAPE: return "shape mismatch";
    case MG_ETOOBIG: return "over the size limit";
    case MG_EUNAVAIL: return "not ready";
    case MG_EMODEL: return "invalid model";
    case MG_ERUNTIME: return "inference failed";
    case MG_ECONFIG: return "invalid configuration";
    case MG_EMETHOD: return "method not allowed";
    case MG_ENOMODEL: return "unknown model";
    case MG_ENOVERSION: return "unknown version";
    case MG_ENOENDPOINT: return "no such endpoint";
    case MG_EMANAGED: return "managed elsewhere";
    case MG_EOVERLOAD: return "overloaded";
    case MG_ERATELIMIT: return "rate limited";
    case MG_EURITOOLONG: return "request line too long";
    case MG_EHEADERS: return "request headers too large";
    case MG_ECLIENTSLOW: return "request not received in time";
    case MG_EUNAUTHORIZED: return "credentials required";
    case MG_EFORBIDDEN: return "credentials refused";
    case MG_EENCODING: return "unsupported content encoding";
    default:
        if (code < 0 && code > -1000)
            return strerror(-code);
        return "unknown error";
    }
}
