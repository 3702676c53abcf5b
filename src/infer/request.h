/*
 * The one request type every front end decodes into, and the response the execute
 * path fills. HTTP (KServe v2 JSON and binary, /predict) and later gRPC share them.
 */
#ifndef MG_INFER_REQUEST_H
#define MG_INFER_REQUEST_H

#include "core/buf.h"
#include "infer/tensor.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/**
 * One requested output: its name, whether it comes back in the binary extension, and
 * whether as its top classes (Triton's classification extension, serve/classify.h).
 */
typedef struct mg_output_spec {
    mg_str_t name;
    bool binary;             /* parameters.binary_data, or the request-level default */
    uint32_t classification; /* parameters.classification: the top K as BYTES; 0: as it is */
} mg_output_spec_t;

/**
 * Where a tensor lies in a registered shared-memory region (serve/shm.h): the parameters
 * shared_memory_region, shared_memory_offset (default 0) and shared_memory_byte_size.
 * `region` empty: the tensor travels in the message.
 */
typedef struct mg_shm_ref {
    mg_str_t region;
    uint64_t offset;
    uint64_t byte_size;
} mg_shm_ref_t;

/** The kind of a request-level parameter's value. */
typedef enum {
    MG_PARAM_STRING = 0,
    MG_PARAM_INT,    /* an integer that fits int64 */
    MG_PARAM_DOUBLE, /* any other number */
    MG_PARAM_BOOL,
} mg_param_kind_t;

/**
 * One request-level parameter (KServe "parameters", gRPC InferParameter). `text` is the value
 * as text: a string's unescaped bytes, a number as written, "true"/"false"; `num` and `flag`
 * hold the decoded number or boolean for those kinds.
 */
typedef struct mg_param {
    mg_str_t key;
    mg_param_kind_t kind;
    mg_str_t text;
    int64_t num_int;
    double num;
    bool flag;
} mg_param_t;

/**
 * A decoded inference request. Every pointer refers either into the request body (which
 * the front end keeps alive until the response is sent) or into `arena`.
 */
typedef struct mg_infer_request {
    mg_str_t id; /* "id" to echo; empty when absent */
    mg_tensor_t *inputs;
    size_t ninputs;
    mg_output_spec_t *outputs; /* requested outputs; NULL with noutputs 0 means all */
    size_t noutputs;
    bool binary_output; /* parameters.binary_data_output: default for all outputs */
    mg_arena_t *arena;  /* owns decoded memory; reset by the front end */
    mg_param_t *params; /* request-level parameters with scalar values, in request order */
    size_t nparams;
    int64_t deadline_ns;      /* CLOCK_MONOTONIC time by which the Run must end (it is stopped then,
                            infer/session.h); 0: none. Set by the request core. */
    mg_shm_ref_t *shm_inputs; /* per input, its region (NULL: no input uses shared memory) */
    mg_shm_ref_t *shm_outputs;    /* per requested output, likewise */
    struct mg_shm_hold *shm_hold; /* the regions those hold until the answer is sent */
} mg_infer_request_t;

/** Empties `req` (no id, inputs, outputs or parameters; JSON outputs) but keeps its arena. */
static inline void mg_infer_request_clear(mg_infer_request_t *req)
{
    mg_arena_t *arena = req->arena;
    memset(req, 0, sizeof(*req));
    req->id = (mg_str_t){"", 0};
    req->arena = arena;
}

/** Returns the request-level parameter named `key` (`len` bytes), or NULL. Thread: any. */
static inline const mg_param_t *mg_infer_request_param(const mg_infer_request_t *req,
                                                       const char *key, size_t len)
{
    for (size_t i = 0; i < req->nparams; i++) {
        if (req->params[i].key.len == len && memcmp(req->params[i].key.ptr, key, len) == 0)
            return &req->params[i];
    }
    return NULL;
}

/**
 * The result of one execution. `outputs[i]` views memory owned by `owner` (ONNX Runtime
 * values) or by the request arena; mg_session_response_release() frees `owner`.
 */
typedef struct mg_infer_response {
    const char *model_name;
    const char *model_version;
    mg_str_t id;
    mg_tensor_t *outputs;
    bool *binary; /* per output: encode in the binary extension */
    size_t noutputs;
    mg_shm_ref_t *shm; /* per output: written to this region, data left out (NULL: none) */
    void *owner;
} mg_infer_response_t;

#endif
