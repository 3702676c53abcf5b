/*
 * The one table from MG_E* codes to what a client sees: the HTTP status (and, from it, the
 * gRPC status of the gRPC front end). Every front end answers a failure through it.
 */
#ifndef MG_SERVE_STATUS_H
#define MG_SERVE_STATUS_H

/**
 * The HTTP status for a failure `code` (an MG_E* value): 400 malformed or invalid input,
 * 404 unknown model or version, 405 wrong method, 408/504 deadlines, 413 over a size limit,
 * 503 not ready or shutting down, 500 anything the server did wrong. 0 gives 200.
 * Thread: any.
 */
int mg_status_http(int code);

/** The reason phrase of an HTTP status ("Not Found"). Static. Thread: any. */
const char *mg_status_phrase(int http_status);

#endif
