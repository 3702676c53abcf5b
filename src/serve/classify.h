/*
 * Triton's classification extension (docs/protocol/extension_classification.md): an output
 * requested with "classification": K comes back as a BYTES tensor of its K highest-valued
 * elements, highest first (ties: the lower index first), each "<value>:<index>" or
 * "<value>:<index>:<label>" when the version has labels for that output (repo/labels.h).
 * With batching (max_batch_size > 0) each batch element is classified on its own: shape
 * [batch, K]; without, the whole tensor: shape [K]. K beyond the class count gives them all.
 */
#ifndef MG_SERVE_CLASSIFY_H
#define MG_SERVE_CLASSIFY_H

#include "core/err.h"
#include "infer/request.h"
#include "repo/version.h"

/**
 * Replaces each output of `resp` that `req` asks to classify by its classification, built in
 * req->arena (the model's tensor stays owned by `resp`). Returns 0, MG_EINVAL (a BYTES
 * output cannot be classified) or MG_ENOMEM, with `err` filled. Thread: the request's.
 */
int mg_classify_apply(const mg_model_version_t *v, const mg_infer_request_t *req,
                      mg_infer_response_t *resp, mg_err_t *err);

#endif
