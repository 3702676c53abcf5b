/*
 * KServe v2 JSON for what the server reports about itself and its models: server metadata,
 * model metadata and repository index rows. The facts come from serve/info.h; this module
 * only writes them in the protocol's shape.
 */
#ifndef MG_PROTO_KSERVE_INFO_H
#define MG_PROTO_KSERVE_INFO_H

#include "core/buf.h"
#include "infer/tensor.h"

#include <stddef.h>
#include <stdint.h>

/**
 * Appends {"name":..,"version":..,"extensions":[..]}. Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_kserve_info_server(mg_buf_t *out, const char *name, const char *version,
                          const char *const *extensions, size_t nextensions);

/** A model's inputs and outputs, as its session describes them (dynamic dims -1). */
typedef struct mg_kserve_info_tensors {
    const mg_tensor_info_t *inputs;
    size_t ninputs;
    const mg_tensor_info_t *outputs;
    size_t noutputs;
} mg_kserve_info_tensors_t;

/**
 * Appends model metadata: {"name","versions":[..],"platform",
 * "max_batch_size","inputs":[{"name","datatype","shape"}],"outputs":[..]}. Returns 0 or
 * MG_ENOMEM. Thread: any.
 */
int mg_kserve_info_model(mg_buf_t *out, const char *name, const int64_t *versions, int nversions,
                         const char *platform, int64_t max_batch_size,
                         const mg_kserve_info_tensors_t *tensors);

/**
 * Appends one repository index row {"name"[,"version"][,"state","modelgate_state","reason"]}
 * (NULL members are left out; `state` is Triton's name, `modelgate_state` the finer one),
 * preceded by a comma unless `first`. Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_kserve_info_index_row(mg_buf_t *out, int first, const char *name, const char *version,
                             const char *state, const char *modelgate_state, const char *reason);

#endif
