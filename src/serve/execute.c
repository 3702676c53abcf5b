#include "serve/execute.h"

#include "serve/classify.h"

#ifdef MG_FAULTS
#include "serve/fault.h"
#endif

#include <string.h>

/* The model's max_batch_size rule on the first dim of every input. */
static int check_batch(mg_model_version_t *v, const mg_infer_request_t *req, mg_err_t *err)
{
    int64_t max_batch = mg_model_version_config(v)->max_batch_size;
    if (max_batch > 0) {
        for (size_t i = 0; i < req->ninputs; i++) {
            const mg_tensor_t *t = &req->inputs[i];
            if (t->ndim > 0 && t->shape[0] > max_batch)
                return mg_err_set(
                    err, MG_ESHAPE,
                    "input '%.*s': batch size %lld exceeds max_batch_size %lld of model '%s'",
                    (int)t->name.len, t->name.ptr, (long long)t->shape[0], (long long)max_batch,
                    mg_model_version_model(v));
        }
    }
    return 0;
}

int mg_execute_check(mg_model_version_t *v, const mg_infer_request_t *req, mg_err_t *err)
{
    int rc = check_batch(v, req, err);
    return rc != 0 ? rc : mg_session_validate(mg_model_version_meta(v), req, err);
}

int mg_execute_batch(mg_model_version_t *v, const mg_infer_request_t *const *reqs, size_t n,
                     mg_arena_t *arena, mg_infer_response_t *resps, void **owner,
                     mg_session_timing_t *timing, mg_err_t *err)
{
    for (size_t i = 0; i < n; i++)
        memset(&resps[i], 0, sizeof(resps[i]));
#ifdef MG_FAULTS
    int frc = mg_fault_before_run(v, reqs[0], err);
    if (frc != 0)
        return frc;
#endif
    int rc = mg_session_run_batch(mg_model_version_session(v), reqs, n, arena, resps, owner, timing,
                                  err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        resps[i].model_name = mg_model_version_model(v);
        resps[i].model_version = mg_model_version_text(v);
        resps[i].id = reqs[i]->id;
    }
    return 0;
}

int mg_execute(mg_model_version_t *v, const mg_infer_request_t *req, mg_infer_response_t *resp,
               mg_session_timing_t *timing, mg_err_t *err)
{
    memset(resp, 0, sizeof(*resp));
    int rc = check_batch(v, req, err);
    if (rc != 0)
        return rc;
#ifdef MG_FAULTS
    int frc = mg_fault_before_run(v, req, err);
    if (frc != 0)
        return frc;
#endif
    rc = mg_session_run_timed(mg_model_version_session(v), req, resp, timing, err);
    if (rc == 0)
        rc = mg_classify_apply(v, req, resp, err);
    if (rc != 0) {
        mg_session_response_release(resp);
        return rc;
    }
    resp->model_name = mg_model_version_model(v);
    resp->model_version = mg_model_version_text(v);
    resp->id = req->id;
    return 0;
}

void mg_execute_release(mg_infer_response_t *resp)
{
    mg_session_response_release(resp);
}
