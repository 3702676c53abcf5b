/*
 * Error codes and the error report that validation fills.
 *
 * Every function that can fail returns int: 0 on success or a negative MG_E* code.
 * Codes mapped from errno come first; project codes start at -1000. serve/status.h maps
 * each to the status a client sees.
 */
#ifndef MG_CORE_ERR_H
#define MG_CORE_ERR_H

#include <errno.h>
#include <stddef.h>

enum {
    MG_OK = 0,
    MG_EINVAL = -EINVAL,       /* bad argument or malformed input */
    MG_ENOMEM = -ENOMEM,       /* an allocation failed */
    MG_ENOENT = -ENOENT,       /* no such model, version, file or input */
    MG_EIO = -EIO,             /* a read or write failed */
    MG_EEXIST = -EEXIST,       /* already present */
    MG_EBUSY = -EBUSY,         /* in use */
    MG_ERANGE = -ERANGE,       /* a size or number out of range (overflow) */
    MG_ETIMEDOUT = -ETIMEDOUT, /* a deadline passed */
    MG_ECANCELED = -ECANCELED, /* the operation was dropped (shutting down) */

    MG_EPARSE = -1000,      /* malformed JSON or protocol framing */
    MG_EDTYPE = -1001,      /* wrong or unsupported datatype */
    MG_ESHAPE = -1002,      /* shape or element count mismatch */
    MG_ETOOBIG = -1003,     /* body or tensor over the configured limit */
    MG_EUNAVAIL = -1004,    /* model or version exists but is not ready */
    MG_EMODEL = -1005,      /* the model file is invalid or failed to load */
    MG_ERUNTIME = -1006,    /* ONNX Runtime failed while running a model */
    MG_ECONFIG = -1007,     /* invalid configuration */
    MG_EMETHOD = -1008,     /* HTTP method not allowed on this path */
    MG_ENOMODEL = -1009,    /* no such model */
    MG_ENOVERSION = -1010,  /* the model has no such version */
    MG_ENOENDPOINT = -1011, /* no endpoint at this path */
    MG_EMANAGED = -1012,    /* the state is owned by another source (the fleet's etcd) */

    /* Limits and access (hardening): a block of their own, so other additions never clash. */
    MG_EOVERLOAD = -1100,     /* the version's in-flight bound is reached: retry later */
    MG_ERATELIMIT = -1101,    /* the client is over its request rate or connection count */
    MG_EURITOOLONG = -1102,   /* the request line is over its limit */
    MG_EHEADERS = -1103,      /* a header field, the header section or the field count too big */
    MG_ECLIENTSLOW = -1104,   /* the client did not send its request in time */
    MG_EUNAUTHORIZED = -1105, /* no credentials for the admin surface */
    MG_EFORBIDDEN = -1106,    /* wrong credentials for the admin surface */

    /* Triton protocol extensions: a block of their own, so other additions never clash. */
    MG_EENCODING = -1200, /* a Content-Encoding the server does not decode */
};

/**
 * Triton's wording for an unknown model, which its clients recognise ("Request for unknown
 * model"): a printf format taking the name as `%.*s` (length, pointer).
 */
#define MG_UNKNOWN_MODEL_FMT "Request for unknown model: '%.*s' is not found"

/** A failure with a message that says which field and why; `code` is an MG_E* value. */
typedef struct mg_err {
    int code;
    char msg[256];
} mg_err_t;

/**
 * Fills `err` (when not NULL) with `code` and a printf-formatted message and returns `code`,
 * so callers can write `return mg_err_set(err, MG_EINVAL, "...")`. Thread: any.
 */
int mg_err_set(mg_err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** The most bytes of a name or value that a message quotes. */
#define MG_ERR_QUOTE_MAX 64

/** Returns `n` capped at MG_ERR_QUOTE_MAX, the precision for quoting n bytes with "%.*s". */
int mg_err_quote_len(size_t n);

/** Clears `err` to MG_OK with an empty message. Accepts NULL. */
void mg_err_clear(mg_err_t *err);

/** Returns a static, human-readable name for an MG_E* code. Thread: any. */
const char *mg_strerror(int code);

#endif
