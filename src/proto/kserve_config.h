/*
 * Triton's model configuration extension JSON (docs/protocol/extension_model_configuration.md:
 * the JSON form of model_config.proto's ModelConfig) for one model version: "name",
 * "platform": "onnxruntime_onnx", "backend": "onnxruntime", "version_policy", "max_batch_size",
 * "input" / "output" [{"name", "data_type": "TYPE_FP32", "dims" (without the batch dim when
 * max_batch_size > 0), "label_filename" (outputs)}], "instance_group" [{"name", "kind":
 * "KIND_CPU", "count"}], "dynamic_batching" (when on), "default_model_filename", and
 * modelgate's own config.json fields
 * under "parameters" ({"key": {"string_value": "<JSON>"}}). Only fields repo/config.h parses
 * are written, so the answer is a config.json that loads back to the same configuration.
 */
#ifndef MG_PROTO_KSERVE_CONFIG_H
#define MG_PROTO_KSERVE_CONFIG_H

#include "core/buf.h"
#include "proto/kserve_info.h"
#include "repo/config.h"

/**
 * Appends the configuration of model `name` with settings `cfg` and the tensors its session
 * describes. Returns 0 or MG_ENOMEM. Thread: any.
 */
int mg_kserve_config(mg_buf_t *out, const char *name, const mg_model_config_t *cfg,
                     const mg_kserve_info_tensors_t *tensors);

/**
 * Calls `fn` with each of modelgate's own settings of `cfg` that differs from its default, as
 * the key config.json names it and its JSON text (what "parameters" carries, over HTTP and
 * gRPC alike). Returns 0, MG_ENOMEM or the callback's value. Thread: any.
 */
int mg_kserve_config_parameters(const mg_model_config_t *cfg,
                                int (*fn)(void *ctx, const char *key, const mg_buf_t *json),
                                void *ctx);

#endif
