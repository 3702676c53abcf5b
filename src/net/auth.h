/*
 * The admin surface's bearer token: read from a file at start-up, kept only as its SHA-256,
 * and checked on every admin request in constant time (the digests of the presented and the
 * expected token are compared with CRYPTO_memcmp, so neither the content nor the length of
 * the token shows in the timing).
 */
#ifndef MG_NET_AUTH_H
#define MG_NET_AUTH_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>

/** The expected token; zero-initialised: no token (every check passes). */
typedef struct mg_auth {
    bool set;
    unsigned char sha256[32];
} mg_auth_t;

/** The WWW-Authenticate value sent with 401. */
#define MG_AUTH_CHALLENGE "Bearer realm=\"modelgate-admin\""

/**
 * Reads the token from the file at `path` (its first line, surrounding whitespace dropped; at
 * least 16 bytes, printable ASCII). Returns 0, or MG_EIO / MG_EINVAL with `err` naming the
 * file and the problem. Thread: start-up.
 */
int mg_auth_load(mg_auth_t *a, const char *path, mg_err_t *err);

/**
 * Checks an Authorization header value (empty: absent) against `a`: 0 when no token is set or
 * it is "Bearer <the token>", MG_EUNAUTHORIZED when absent or not a bearer credential,
 * MG_EFORBIDDEN when the token is wrong. Thread: any.
 */
int mg_auth_check(const mg_auth_t *a, mg_str_t authorization);

/**
 * Whether `host` (a numeric address, as listeners take) is a loopback address: 127.0.0.0/8,
 * ::1 or ::ffff:127.x.y.z. Thread: any.
 */
bool mg_auth_is_loopback(const char *host);

#endif
