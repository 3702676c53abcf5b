/*
 * The one execute function every front end calls: checks a decoded request against the
 * pinned model version's rules, runs it on one of the version's sessions and fills the
 * response. Routing (which version) happens before; encoding after.
 */
#ifndef MG_SERVE_EXECUTE_H
#define MG_SERVE_EXECUTE_H

#include "core/err.h"
#include "infer/request.h"
#include "repo/version.h"

/**
 * Runs `req` on version `v` (pinned by the caller, who keeps the pin until the response is
 * encoded). Enforces the model's max_batch_size on the first dim of every input, then runs.
 * On success `resp` names the model and version, echoes the request id and holds the outputs;
 * release it with mg_execute_release(). `timing` (may be NULL) receives when the Run began and
 * ended. Returns 0 or the MG_E* code of the first problem with
 * `err` filled. Thread: any request thread.
 */
int mg_execute(mg_model_version_t *v, const mg_infer_request_t *req, mg_infer_response_t *resp,
               mg_session_timing_t *timing, mg_err_t *err);

/**
 * Checks `req` against version `v` before it may join a batch: the max_batch_size rule and
 * mg_session_validate, so a request that would fail alone never joins. Returns 0 or the
 * MG_E* code with `err` filled. Thread: any request thread.
 */
int mg_execute_check(mg_model_version_t *v, const mg_infer_request_t *req, mg_err_t *err);

/**
 * Runs `n` checked, compatible requests (mg_execute_check, mg_session_batch_compatible) as one
 * Run on `v` (mg_session_run_batch): resps[i] gets request i's rows, named like mg_execute's;
 * the shared outputs go to *owner (in `arena`; release with mg_session_owner_release after
 * every response is encoded). On failure the one error is in `err` and no response holds
 * anything. Thread: any request thread.
 */
int mg_execute_batch(mg_model_version_t *v, const mg_infer_request_t *const *reqs, size_t n,
                     mg_arena_t *arena, mg_infer_response_t *resps, void **owner,
                     mg_session_timing_t *timing, mg_err_t *err);

/** Releases the outputs of a response filled by mg_execute(). Accepts an empty response. */
void mg_execute_release(mg_infer_response_t *resp);

#endif
