#include "serve/status.h"

#include "core/err.h"

int mg_status_http(int code)
{
    switch (code) {
    case MG_OK: return 200;
    case MG_EINVAL:
    case MG_EPARSE:
    case MG_EDTYPE:
    case MG_ESHAPE:
    case MG_ERANGE:
    case MG_ENOENT: /* a missing or unknown input or output */
    case MG_ECONFIG:
    case MG_EMODEL: return 400;
    case MG_ENOMODEL:
    case MG_ENOVERSION:
    case MG_ENOENDPOINT: return 404;
    case MG_EUNAUTHORIZED: return 401;
    case MG_EFORBIDDEN: return 403;
    case MG_EMETHOD: return 405;
    case MG_EMANAGED: return 409;
    case MG_ECLIENTSLOW: return 408;
    case MG_ETOOBIG: return 413;
    case MG_EURITOOLONG: return 414;
    case MG_EENCODING: return 415;
    case MG_ERATELIMIT: return 429;
    case MG_EHEADERS: return 431;
    case MG_EUNAVAIL:
    case MG_EOVERLOAD:
    case MG_ECANCELED: return 503;
    case MG_ETIMEDOUT: return 504;
    default: return 500;
    }
}

const char *mg_status_phrase(int http_status)
{
    switch (http_status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}
