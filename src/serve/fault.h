/*
 * Fault injection for tests: makes the Runs of one model version fail or slow down on demand,
 * so the circuit breaker, the replay and the drain can be tested against the real daemon.
 *
 * Compiled only when CMake's MG_FAULTS option is ON (the test builds `make test` makes); the
 * release daemon that `make run` starts has neither this module nor the endpoint that sets it
 * (PUT /v2/admin/models/{m}/versions/{v}/fault in net/api.c).
 */
#ifndef MG_SERVE_FAULT_H
#define MG_SERVE_FAULT_H

#ifndef MG_FAULTS
#error "serve/fault.h is for test builds only (cmake -DMG_FAULTS=ON)"
#endif

#include "core/err.h"
#include "infer/request.h"
#include "repo/version.h"

#include <stddef.h>
#include <stdint.h>

/** Most (model, version) pairs with a fault at once. */
#define MG_FAULTS_MAX 16

/**
 * Sets the fault of version `version` of `model` from a JSON body
 * {"fail_every": N, "delay_ms": D}: every N-th Run fails with MG_ERUNTIME (1: every Run,
 * 0: none), and every Run first sleeps D ms (0..60000). Both 0 (or {}) removes the fault.
 * Returns 0, MG_EINVAL (bad body, with `err` naming the field) or MG_ENOMEM (MG_FAULTS_MAX
 * faults already set). Thread: any.
 */
int mg_fault_set_json(const char *model, size_t model_len, int64_t version, const char *json,
                      size_t len, mg_err_t *err);

/**
 * Applies the fault set for `v`, if any, before it runs `req`: sleeps, then, when this Run is
 * to fail, returns MG_ERUNTIME with `err` filled ("injected fault") -- unless `req` is invalid
 * for the model, whose client error is returned as without the fault. Else 0. Costs one atomic
 * load when no fault is set. Thread: any request thread.
 */
int mg_fault_before_run(const mg_model_version_t *v, const mg_infer_request_t *req, mg_err_t *err);

#endif
