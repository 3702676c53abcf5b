/*
 * ONNX Runtime behind a small interface: one process-wide environment, sessions built
 * from model bytes, metadata, and Run. This is the only module that sees OrtStatus:
 * every failure is mapped to an MG_E* code with ONNX Runtime's message kept in mg_err_t.
 * No custom-op library is ever registered.
 */
#ifndef MG_INFER_SESSION_H
#define MG_INFER_SESSION_H

#include "core/err.h"
#include "infer/request.h"
#include "infer/tensor.h"

#include <stdbool.h>
#include <stddef.h>

/** Options of the process-wide environment. */
typedef struct mg_infer_env_opts {
    int intra_op_threads; /* global intra-op pool size; 0: number of cores */
    int inter_op_threads; /* global inter-op pool size; 0: 1 */
    int log_level;        /* ONNX Runtime severity 1 info, 2 warning, 3 error, 4 fatal; 0 (the
                             zero value) means the default, 3. Verbose is not offered. */
} mg_infer_env_opts_t;

/**
 * Creates the process-wide OrtEnv with global thread pools (spinning off, so idle pool
 * threads never steal the event loops' CPU), and starts the watchdog thread that stops Runs
 * past their deadline (mg_session_run). `opts` may be NULL for the defaults.
 * Returns 0, MG_EINVAL (negative thread count, log level over 4), MG_EEXIST (already
 * initialised) or MG_ERUNTIME, with `err` filled. Thread: start-up only, before any session.
 */
int mg_infer_env_init(const mg_infer_env_opts_t *opts, mg_err_t *err);

/**
 * Stops the watchdog and releases the environment. Every session must be freed first, and
 * every thread that ran a Run with a deadline must have exited (or be the caller).
 * Thread: shutdown only.
 */
void mg_infer_env_deinit(void);

/** Returns the ONNX Runtime version string ("1.29.0"), static. Thread: any, even before init. */
const char *mg_infer_runtime_version(void);

/** A file the model's external data refers to, already in memory: its name as the model's
 * `location` entry spells it, and its bytes (the caller's, only read during mg_session_new). */
typedef struct mg_session_file {
    const char *name;
    const void *bytes;
    size_t len;
} mg_session_file_t;

/** The most external-data files one session is given (repo/extdata.h, the sandbox). */
#define MG_SESSION_FILES_MAX 64

/** Per-session options. */
typedef struct mg_session_opts {
    int intra_op_threads; /* 0: share the environment's global pools; >0: own pool of this size */
    int inter_op_threads; /* with an own pool: inter-op threads (0: 1) */
    /* The model's external-data files, handed to ONNX Runtime from memory: it never opens a
       file itself (its folder for external data is set to one that does not exist, so a
       reference missing here fails the load instead of reading from disk). */
    const mg_session_file_t *external;
    size_t nexternal;
    /* ONNX Runtime's CPU memory arena off: each Run's buffers come from malloc. For a small
       model that is cheaper (measured on digits: 4 % fewer instructions per request, 4 of 6
       mutex locks per Run gone); a large one keeps the arena, which recycles big buffers. */
    bool no_cpu_arena;
} mg_session_opts_t;

typedef struct mg_session mg_session_t;

/**
 * Builds a session from the ONNX model in `bytes` (copied as ONNX Runtime needs; the caller
 * keeps `bytes`) and reads its metadata. Graph optimisation ORT_ENABLE_ALL, sequential
 * execution; `opts` may be NULL (share the global pools). A model with an input or output
 * that is not a tensor, has an element type KServe has no datatype for (bfloat16, complex,
 * ...) or more than MG_TENSOR_MAX_DIMS dims fails with MG_EMODEL naming it.
 * Returns 0, MG_EMODEL (including ONNX Runtime's load errors), MG_EINVAL (no environment,
 * negative thread count), MG_ENOMEM or MG_ERUNTIME with `err` filled; *out is untouched on
 * failure. Thread: any (not on the request path).
 */
int mg_session_new(mg_session_t **out, const void *bytes, size_t len, const mg_session_opts_t *opts,
                   mg_err_t *err);

/** Frees the session. Accepts NULL. No Run may be in flight. */
void mg_session_free(mg_session_t *s);

/** Returns the number of model inputs. Thread: any. */
size_t mg_session_ninputs(const mg_session_t *s);

/** Returns input `i` in model order, or NULL when `i` is out of range. Owned by `s`. */
const mg_tensor_info_t *mg_session_input(const mg_session_t *s, size_t i);

/** Returns all mg_session_ninputs(s) inputs as one array in model order. Owned by `s`. */
const mg_tensor_info_t *mg_session_inputs(const mg_session_t *s);

/** Returns the number of model outputs. Thread: any. */
size_t mg_session_noutputs(const mg_session_t *s);

/** Returns all mg_session_noutputs(s) outputs as one array in model order. Owned by `s`. */
const mg_tensor_info_t *mg_session_outputs(const mg_session_t *s);

/** Returns output `i` in model order, or NULL when `i` is out of range. Owned by `s`. */
const mg_tensor_info_t *mg_session_output(const mg_session_t *s, size_t i);

/** Returns the input info named `name`, or NULL. Owned by `s`. Thread: any. */
const mg_tensor_info_t *mg_session_find_input(const mg_session_t *s, mg_str_t name);

/**
 * Checks `req` against the model before any work: every model input present exactly once,
 * no unknown input, datatypes equal, rank equal, fixed dims equal, element count equal to the
 * shape's product (and nbytes to count times the element size), every requested output known
 * and requested once. Messages name the input and say expected vs got, e.g.
 * "input 'input': expected datatype FP32, got INT64". Returns 0, or MG_ENOENT (missing or
 * unknown input or output), MG_EINVAL (input given twice, output requested twice, data
 * missing), MG_EDTYPE, MG_ESHAPE or MG_ERANGE (shape overflows) with `err` filled.
 * mg_session_run does the same checks itself. Thread: any.
 */
int mg_session_validate(const mg_session_t *s, const mg_infer_request_t *req, mg_err_t *err);

/**
 * Validates and runs `req`, filling `resp->outputs`, `resp->binary` and `resp->noutputs` with
 * the requested outputs in request order (all, in model order, when none were requested);
 * `binary[i]` is the output spec's flag, or `req->binary_output` when none were requested.
 * Fixed-size input data is handed to ONNX Runtime without a copy. Output arrays and BYTES
 * output elements (an mg_str_t array; `nbytes` is their total length) are allocated from
 * `req->arena`; fixed-size output memory is held in `resp->owner` until
 * mg_session_response_release(); output names point into the session. Other `resp` fields
 * are left alone, and `resp` is untouched on failure.
 * With `req->deadline_ns` set, a Run still going at that time (CLOCK_MONOTONIC) is stopped
 * by the environment's watchdog thread through its run options (RunOptionsSetTerminate; ONNX
 * Runtime checks it between nodes) and MG_ETIMEDOUT is returned; one already past it does
 * not start. Other Runs, on this session or any other, are not affected.
 * Returns 0, a validation code, MG_ENOMEM, MG_ETIMEDOUT, or MG_ERUNTIME with ONNX Runtime's
 * message (e.g. a shape conflict the metadata could not catch). Thread: any; several threads
 * may run one session at once, each with its own request arena.
 */
int mg_session_run(mg_session_t *s, const mg_infer_request_t *req, mg_infer_response_t *resp,
                   mg_err_t *err);

/** When a Run's phases began (CLOCK_MONOTONIC ns); 0 for a phase never reached. */
typedef struct mg_session_timing {
    int64_t infer_ns;  /* inputs are bound: ONNX Runtime's Run is called */
    int64_t output_ns; /* Run returned: outputs are read */
} mg_session_timing_t;

/**
 * mg_session_run that also records when Run was called and returned in `timing` (may be
 * NULL), so the caller can split compute input / infer / output as Triton reports them.
 * Same contract otherwise.
 */
int mg_session_run_timed(mg_session_t *s, const mg_infer_request_t *req, mg_infer_response_t *resp,
                         mg_session_timing_t *timing, mg_err_t *err);

/**
 * Releases what mg_session_run left in `resp->owner` and clears `outputs`, `binary` and
 * `noutputs`. Call it before resetting the request arena (the owner lives there). Accepts a
 * zeroed or already released response. Thread: any.
 */
void mg_session_response_release(mg_infer_response_t *resp);

/**
 * True when every input and output of the model has at least one dim and a dynamic first dim,
 * so requests can be joined along it (mg_session_run_batch). Thread: any.
 */
bool mg_session_batchable(const mg_session_t *s);

/**
 * True when requests `a` and `b` can share one Run: the same inputs in the same order with the
 * same datatypes and dims after the first, each request's inputs agreeing in their first dim
 * (at least 1), and the same requested outputs in the same order, none of them classified.
 * Thread: any.
 */
bool mg_session_batch_compatible(const mg_infer_request_t *a, const mg_infer_request_t *b);

/**
 * Runs `n` requests (each valid for `s`, mg_session_validate, and pairwise compatible,
 * mg_session_batch_compatible) as one Run: their inputs are joined along the first dim in
 * `arena`, and each output is sliced back, so resps[i] holds request i's rows exactly as
 * mg_session_run would name them (tensor arrays from reqs[i]->arena, data viewing the shared
 * outputs, `owner` NULL). The shared outputs are in *owner (also in `arena`): release them with
 * mg_session_owner_release once every response is encoded, then reset `arena`. `timing` as in
 * mg_session_run_timed. Returns 0 or what mg_session_run_timed returns (MG_ERUNTIME too when an
 * output comes back without the joined first dim), with `err` filled; nothing is held then.
 * Thread: any; the arenas are the caller's.
 */
int mg_session_run_batch(mg_session_t *s, const mg_infer_request_t *const *reqs, size_t n,
                         mg_arena_t *arena, mg_infer_response_t *resps, void **owner,
                         mg_session_timing_t *timing, mg_err_t *err);

/** Releases the shared outputs of mg_session_run_batch. Accepts NULL. Thread: any. */
void mg_session_owner_release(void *owner);

/**
 * Whether a joined Run answers bit for bit like separate Runs on this model: three requests
 * of distinct, deterministic inputs (dynamic dims 1; BYTES as short strings) run alone and
 * joined, outputs compared byte for byte. Returns 1 (equal), 0 (different), or a negative
 * MG_E* code (the model cannot be batched or a Run failed) with `err` filled. Thread: any (not
 * on the request path: the loader asks once per version).
 */
int mg_session_batch_agrees(mg_session_t *s, mg_err_t *err);

/** Receives one allocator statistic; a non-zero return stops the walk. */
typedef int (*mg_session_stat_fn)(void *ctx, const char *key, const char *value);

/**
 * Calls `fn` with each statistic ONNX Runtime reports for the session's CPU allocator (an
 * arena reports InUse, TotalAllocated, MaxInUse, NumAllocs, ...). Returns 0, fn's non-zero
 * result, or MG_ERUNTIME with `err` saying why none are reported (this runtime has none, or the
 * session runs without its CPU arena: mg_session_opts_t.no_cpu_arena). Thread: any (not
 * on the request path).
 */
int mg_session_memory(const mg_session_t *s, mg_session_stat_fn fn, void *ctx, mg_err_t *err);

/**
 * Runs the model `runs` times on zero-filled inputs (empty strings for BYTES) whose dynamic
 * dims are 1, so the first real request does not pay for lazy initialisation. Does nothing
 * when `runs` <= 0. Returns 0, MG_ENOMEM, or the Run's failure with `err` filled.
 * Thread: any (not on the request path).
 */
int mg_session_warmup(mg_session_t *s, int runs, mg_err_t *err);

#endif
