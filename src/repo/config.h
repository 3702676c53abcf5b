/*
 * A model's config.json: `<repo>/<model>/config.json`, optional, in the spirit of Triton's
 * config.pbtxt but JSON:
 *
 *   {"max_batch_size": 64,
 *    "version_policy": {"latest": {"num_versions": 2}} | {"all": {}}
 *                      | {"specific": {"versions": [1, 3]}},
 *    "default_version": "2",
 *    "instance_count": 1,
 *    "intra_op_threads": 0,
 *    "warmup": {"runs": 2},
 *    "sha256": {"3": "<hex>" | {"model.onnx": "<hex>", "weights.bin": "<hex>"}},
 *                                      digests pinned per version (repo/verify.h); a string
 *                                      pins model.onnx
 *    "max_inflight": 8,                requests in flight (queued or running) at once per
 *                                      version; more get 503 (serve/admit.h); 0: the server's
 *    "execution": "inline" | "pool",   where Runs happen: on the event loop that received the
 *                                      request, or on the execution pool (--exec-threads), which
 *                                      keeps the loops answering while a slow model runs;
 *                                      not given: the pool for a model whose Run took over
 *                                      0.5 ms at load, else inline
 *    "dynamic_batching": {"max_queue_delay_microseconds": 500, "preferred_batch_size": [4, 8]},
 *                                      Triton's dynamic batcher, with "execution": "pool": a pool
 *                                      thread joins the queued requests of the version into one
 *                                      Run, waiting up to the delay for a preferred size
 *    "traffic": {...},                 the traffic policy, see route/policy.h
 *    "breaker": {...},                 the versions' circuit breaker, see route/breaker.h
 *    "batching": {"opportunistic": true, "max_batch": 64}}
 *                                      requests one event-loop wake decoded for the same
 *                                      version, joined into one Run (serve/batch.h); default:
 *                                      on where the model allows it and batched Runs were
 *                                      seen to answer exactly as single ones at load
 *
 * Every field is optional; unknown fields are an error, so a typo never passes silently.
 *
 * Triton's JSON model configuration is accepted too, so what GET .../config answers (serve/
 * proto/kserve_config.h) loads back unchanged: "platform", "backend", "default_model_filename"
 * ("model.onnx"), "instance_group" ([{"count": N, "kind": "KIND_CPU"|"KIND_AUTO"}]: the sum is
 * the instance count), "input" and "output" ([{"name", "data_type": "TYPE_FP32", "dims": [..],
 * "label_filename"}]: checked against the model when a version loads; label_filename, outputs
 * only, names a file of the model folder with one class label per line, for classification),
 * and "parameters" ({"key": {"string_value": "<JSON text>"}}: each key one of the fields above,
 * its value that field's JSON, e.g. {"warmup": {"string_value": "{\"runs\":2}"}}).
 */
#ifndef MG_REPO_CONFIG_H
#define MG_REPO_CONFIG_H

#include "core/err.h"
#include "infer/tensor.h"
#include "route/breaker.h"
#include "route/policy.h"

#include <stdbool.h>

#include <stdint.h>

#define MG_VERSION_POLICY_MAX 64

/** The most digests config.json may pin (over all versions), and the longest file name. */
#define MG_PINS_MAX     64
#define MG_PIN_NAME_MAX 128

/** Where a version's Runs happen ("execution" in config.json). */
typedef enum {
    MG_EXECUTION_AUTO = 0, /* not given: decided at load (MG_LOADER_POOL_RUN_MIN_US) */
    MG_EXECUTION_INLINE,   /* on the event loop that received the request */
    MG_EXECUTION_POOL,     /* on the execution pool (--exec-threads) */
} mg_execution_t;

/** One pinned digest: file `file` of version `version` must have SHA-256 `sha256`. */
typedef struct mg_pin {
    int64_t version;
    char file[MG_PIN_NAME_MAX];
    unsigned char sha256[32];
} mg_pin_t;
/** The most "input" or "output" entries a config.json may have, and their name lengths. */
#define MG_CONFIG_IO_MAX  16
#define MG_CONFIG_IO_NAME 64

/** One "input" or "output" entry of config.json (Triton's ModelInput / ModelOutput). */
typedef struct mg_config_io {
    char name[MG_CONFIG_IO_NAME];
    mg_dtype_t dtype; /* MG_DT_INVALID: not given */
    int ndims;        /* -1: not given */
    int64_t dims[MG_TENSOR_MAX_DIMS];
    char label_filename[MG_CONFIG_IO_NAME]; /* outputs; "" when none */
} mg_config_io_t;

typedef enum {
    MG_VERSION_POLICY_LATEST = 0, /* the `num_versions` highest versions (default: 1) */
    MG_VERSION_POLICY_ALL,
    MG_VERSION_POLICY_SPECIFIC,
} mg_version_policy_kind_t;

/** Opportunistic batching as config.json asks for it. */
enum {
    MG_BATCHING_AUTO = 0, /* not given: on where the model allows it and batching agreed at load */
    MG_BATCHING_OFF,      /* "opportunistic": false */
    MG_BATCHING_ON,       /* "opportunistic": true: on where the model allows it */
};

/** The most preferred batch sizes "dynamic_batching" may list. */
#define MG_PREFERRED_MAX 16

typedef struct mg_model_config {
    int64_t max_batch_size; /* 0: no batching rule; >0: first dim of every input <= this */
    mg_version_policy_kind_t policy;
    int latest_n;  /* with LATEST */
    int nspecific; /* with SPECIFIC */
    int64_t specific[MG_VERSION_POLICY_MAX];
    int64_t default_version;  /* 0: the highest ready version */
    int instance_count;       /* sessions per version (>= 1) */
    int intra_op_threads;     /* 0: share the global pools */
    int warmup_runs;          /* 0: no warm-up */
    int max_inflight;         /* 0: the server default (--max-inflight) */
    mg_execution_t execution; /* "execution" (default MG_EXECUTION_AUTO) */
    bool dynamic_batching;    /* "dynamic_batching" given (needs "execution": "pool") */
    int64_t queue_delay_us;   /* its "max_queue_delay_microseconds" (default 0: no waiting) */
    int npreferred;           /* its "preferred_batch_size": ascending, each <= max_batch_size */
    int64_t preferred[MG_PREFERRED_MAX];
    bool has_traffic; /* a "traffic" policy was given */
    mg_policy_t traffic;
    mg_breaker_config_t breaker; /* the defaults of route/breaker.h unless "breaker" is given */
    int batching;                /* "batching.opportunistic": MG_BATCHING_* */
    int64_t batch_max;           /* "batching.max_batch": rows per joined Run; 0: max_batch_size */
    int npins;                   /* "sha256" */
    mg_pin_t pins[MG_PINS_MAX];
    int ninputs, noutputs; /* Triton's "input" / "output" entries */
    mg_config_io_t inputs[MG_CONFIG_IO_MAX];
    mg_config_io_t outputs[MG_CONFIG_IO_MAX];
} mg_model_config_t;

/**
 * Fills `cfg` with the defaults (latest 1, no batching rule, one instance, no warm-up, the
 * breaker's default settings).
 */
void mg_model_config_default(mg_model_config_t *cfg);

/**
 * Parses config.json text into `cfg` (starting from the defaults). `name`, when present in
 * the file, must equal `model`. Returns 0, or MG_ECONFIG with `err` naming the field and why;
 * `cfg` holds defaults on failure.
 */
int mg_model_config_parse(const char *json, size_t len, const char *model, mg_model_config_t *cfg,
                          mg_err_t *err);

/**
 * Checks config.json's "input" / "output" entries against the model's tensors (as its session
 * describes them, dynamic dims -1): each entry must name one of them, with the same data_type
 * when given, and its dims, when given, must equal the model's without the batch dim when
 * max_batch_size > 0 (-1 matches a dynamic dim). Returns 0 or MG_ECONFIG with `err` naming the
 * entry and what differs. Thread: any.
 */
int mg_model_config_check_io(const mg_model_config_t *cfg, const mg_tensor_info_t *inputs,
                             size_t ninputs, const mg_tensor_info_t *outputs, size_t noutputs,
                             mg_err_t *err);

/**
 * Applies the version policy to the `n` versions found on disk (any order): writes the
 * selected ones, highest first, to `out` (room for `n`) and returns how many.
 */
int mg_model_config_select(const mg_model_config_t *cfg, const int64_t *found, int n, int64_t *out);

#endif
