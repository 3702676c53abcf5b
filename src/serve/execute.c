#include "serve/execute.h"

#ifdef MG_FAULTS
#include "serve/fault.h"
#endif

#include <string.h>

int mg_execute(mg_model_version_t *v, const mg_infer_request_t *req, mg_infer_response_t *resp,
               mg_session_timing_t *timing, mg_err_t *err)
{
    memset(resp, 0, sizeof(*resp));
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
#ifdef MG_FAULTS
    int frc = mg_fault_before_run(v, req, err);
    if (frc != 0)
        return frc;
#endif
    int rc = mg_session_run_timed(mg_model_version_session(v), req, resp, timing, err);
    if (rc != 0)
        return rc;
    resp->model_name = mg_model_version_model(v);
    resp->model_version = mg_model_version_text(v);
    resp->id = req->id;
    return 0;
}

void mg_execute_release(mg_infer_response_t *resp)
{
    mg_session_response_release(resp);
}
