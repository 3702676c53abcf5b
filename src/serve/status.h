/*
 * The one table from MG_E* codes to what a client sees: the HTTP status (and, from it, the
 * gRPC status of the gRPC front end). Every front end answers a failure through it.
 */
#ifndef MG_SERVE_STATUS_H
#define MG_SERVE_STATUS_H

/**
 * The HTTP status for a failure `code` (an MG_E* value): 400 malformed or invalid input,
 * 401/403 missing or wrong admin credentials, 404 unknown model or version, 405 wrong method,
 * 408 a client too slow to send its request, 504 a deadline passed, 413/414/431 a body,
 * request line or header section over its limit, 429 a client over its rate or connection
 * count, 415 a request body in a content coding the server does not decode, 503 not ready,
 * overloaded (MG_EOVERLOAD: send Retry-After) or shutting down,
 * 500 anything the server did wrong. 0 gives 200.
 * Thread: any.
 */
int mg_status_http(int code);

/** The reason phrase of an HTTP status ("Not Found"). Static. Thread: any. */
const char *mg_status_phrase(int http_status);

#endif
