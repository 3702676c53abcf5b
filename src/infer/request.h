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

/** One requested output: its name and whether it comes back in the binary extension. */
typedef struct mg_output_spec {
    mg_str_t name;
    bool binary; /* parameters.binary_data, or the request-level default */
} mg_output_spec_t;

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
    bool binary_output;  /* parameters.binary_data_output: default for all outputs */
    mg_arena_t *arena;   /* owns decoded memory; reset by the front end */
    mg_str_t parameters; /* raw JSON of the request-level "parameters" object, or empty */
} mg_infer_request_t;

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
    void *owner;
} mg_infer_response_t;

#endif
