/*
 * Admission: a bound on the requests in flight on one model version (queued for or running
 * an execution), so an overloaded version answers at once with 503 and Retry-After instead
 * of queueing without end. The bound is the version's config.json "max_inflight", or the
 * server default. Enter before an execution is queued or run, leave once it is done; a
 * request the breaker replays on the stable version enters that version the same way, so
 * replays count against the stable version's bound.
 */
#ifndef MG_SERVE_ADMIT_H
#define MG_SERVE_ADMIT_H

#include "core/err.h"
#include "repo/version.h"

/** Retry-After, in seconds, of an MG_EOVERLOAD answer. */
#define MG_ADMIT_RETRY_AFTER_S 1

/**
 * Counts one more request in flight on `v` unless its bound (config.json "max_inflight", or
 * `default_max` when that is 0; 0 for both: no bound) is reached. Never blocks.
 * Returns 0 (admitted: call mg_admit_leave once done), or MG_EOVERLOAD with `err` naming the
 * model, version and bound. Thread: any holder of a pin on `v`.
 */
int mg_admit_enter(mg_model_version_t *v, int default_max, mg_err_t *err);

/** Counts an admitted request out. Thread: any holder of a pin on `v`. */
void mg_admit_leave(mg_model_version_t *v);

/** Requests admitted to `v` now, as last seen. Thread: any holder of a pin on `v`. */
int mg_admit_inflight(mg_model_version_t *v);

#endif
