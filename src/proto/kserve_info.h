/*
 * KServe v2 JSON for what the server reports about itself and its models: server metadata,
 * model metadata and repository index rows. The facts come from serve/info.h; this module
 * only writes them in the protocol's shape.
 */
#ifndef MG_PROTO_KSERVE_INFO_H
#define MG_PROTO_KSERVE_INFO_H

#include "core/buf.h"
#include "infer/session.h"

#include <stddef.h>
#include <stdint.h>

/**
 * Appends {"name":..,"version":..,"extensions":[..]}. Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_kserve_info_server(mg_buf_t *out, const char *name, const char *version,
                          const char *const *extensions, size_t nextensions);

/**
 * Appends model metadata: {"name","versions":[..],"platform":"onnxruntime_onnx",
 * "max_batch_size","inputs":[{"name","datatype","shape"}],"outputs":[..]}, the tensors as
 * `meta` describes them (dynamic dims -1). Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_kserve_info_model(mg_buf_t *out, const char *name, const int64_t *versions, int nversions,
                         int64_t max_batch_size, const mg_session_t *meta);

/**
 * Appends one repository index row {"name"[,"version"][,"state","reason"]} (NULL members are
 * left out), preceded by a comma unless `first`. Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_kserve_info_index_row(mg_buf_t *out, int first, const char *name, const char *version,
                             const char *state, const char *reason);

#endif
