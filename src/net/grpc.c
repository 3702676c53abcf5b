/*
 * The gRPC front end (net/grpc.h). One table of methods; per completion-queue thread
 * CALL_SLOTS outstanding requests per method, each asked again as soon as it delivered a call
 * (gRPC gives each accepted connection one of the queues in turn and hands its calls to that
 * queue while it has a request, so the calls of one connection stay on one thread). A call is taken
 * when its metadata arrives, then its message is read (so a call taken before a shutdown is
 * answered even when its message is still arriving), then it is handled; it ends with one
 * batch (initial metadata, the message, the status, the close), whose completion frees the
 * call's state on the call's thread. ModelInfer calls routed to a batching version are held
 * while the thread's queue has events ready, and run as joined Runs (serve/batch.h) once it
 * has none, as an HTTP loop does at the end of a wake. A ModelStreamInfer call serves its
 * messages one at a time the same way, each answer sent in a batch of its own.
 */
#include "net/grpc.h"

#include "core/cpu.h"
#include "core/log.h"
#include "proto/kserve_config.h"
#include "proto/kserve_pb.h"
#include "repo/version.h"
#include "serve/batch.h"
#include "serve/info.h"
#include "serve/dynamic.h"
#include "serve/pool.h"
#include "serve/shm.h"
#include "serve/stats.h"
#include "serve/status.h"

#include <arpa/inet.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <urcu.h>

#define SERVICE "/inference.GRPCInferenceService/"

typedef struct cq_thread cq_thread_t;
typedef struct call_ctx call_ctx_t;
typedef struct infer_state infer_state_t;

/* What a completion-queue tag points at: its first member says which. */
typedef enum { TAG_NEW_CALL = 1, TAG_MESSAGE, TAG_STREAM_SENT, TAG_CALL_DONE } tag_kind_t;

/* A method's handler: it answers the call (finish) at once or, for control operations, later. */
typedef int (*method_fn)(cq_thread_t *t, call_ctx_t *c);

typedef struct method {
    const char *name; /* the method of inference.GRPCInferenceService */
    method_fn fn;     /* NULL: answered UNIMPLEMENTED with `unimplemented` */
    const char *unimplemented;
} method_t;

/* One outstanding request for a new call of one method (or, method -1, of any unknown one). */
typedef struct slot {
    tag_kind_t kind; /* TAG_NEW_CALL; first */
    cq_thread_t *t;
    int method;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details; /* the unknown-method request's */
} slot_t;

/* One call from its arrival to the completion of its answer. */
struct call_ctx {
    /* first: TAG_MESSAGE while a message arrives, TAG_STREAM_SENT while a stream's answer is
       sent, TAG_CALL_DONE once the call's last batch is started */
    tag_kind_t kind;
    cq_thread_t *t;
    const method_t *method;
    grpc_call *call;
    grpc_metadata_array md; /* the request metadata */
    grpc_byte_buffer *payload;
    grpc_byte_buffer_reader reader;
    int reader_open;
    int64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
    grpc_byte_buffer *response;
    grpc_metadata initial[MG_SERVE_HEADERS_MAX];
    size_t ninitial;
    grpc_slice details;
    int has_details;
    int cancelled;
    mg_control_op_t op;   /* repository load and unload */
    infer_state_t *infer; /* ModelInfer's; a stream's request being answered */
    int sent_initial;     /* a stream's initial metadata went with its first answer */
    /* ModelStreamInfer: the server's open streams (under streams_mu), and whether this one
       waits for its client's next message (a drain then ends it) */
    call_ctx_t *stream_prev, *stream_next;
    int stream_listed, stream_waiting;
};

struct cq_thread {
    mg_grpc_server_t *server;
    grpc_completion_queue *cq;
    pthread_t tid;
    int started;
    mg_arena_t arena;           /* per call: decoded requests, response messages */
    mg_buf_t scratch;           /* per call: the message being decoded */
    infer_state_t *free_states; /* ModelInfer states for reuse */
    mg_batch_t *batch;          /* the ModelInfer calls held for a joined Run */
    slot_t *slots;              /* one per method, then the unknown-method one */
    slot_t *drain;              /* DRAIN_SLOTS per method, requested by mg_grpc_drain */
    atomic_llong wait_ns;       /* CLOCK_MONOTONIC when it began waiting in its queue; 0: busy */
};

/* Requests for new calls each thread keeps outstanding per method. */
#define CALL_SLOTS 32

/* ModelInfer calls one thread holds for a joined Run at most; more run alone. */
#define HELD_MAX 64

/* Extra requests per thread and method made when stopping, so that calls gRPC has received but
 * not handed out yet are served rather than dropped by its shutdown. */
#define DRAIN_SLOTS 64

/* How long the server must see no event before mg_grpc_stop takes it for idle, and no new
 * call before a drain shuts the server down. */
#define QUIET_MS 50

struct mg_grpc_server {
    grpc_server *server;
    grpc_completion_queue *shutdown_cq;
    void *handles[16]; /* registered methods, in table order */
    mg_serve_t *serve;
    mg_control_t *control;
    mg_pool_t *pool;
    mg_shm_t *shm;
    mg_auth_t admin_auth;
    bool admin_elsewhere;
    int port;
    int nthreads;
    atomic_bool stopping;       /* mg_grpc_drain was called */
    bool shut;                  /* grpc_server_shutdown_and_notify was called (main thread) */
    bool drained;               /* the shutdown completed (main thread only) */
    int64_t drain_ns;           /* when mg_grpc_drain was called (main thread) */
    int64_t arrivals_ns;        /* how long after it new calls are still taken (main thread) */
    atomic_int active;          /* calls taken and not yet freed */
    pthread_mutex_t streams_mu; /* guards the list of open ModelStreamInfer calls */
    call_ctx_t *streams;
    atomic_llong last_event_ns; /* CLOCK_MONOTONIC of the last completion-queue event */
    cq_thread_t *threads;
};

/* ---- statuses ----------------------------------------------------------------------------- */

/* The gRPC status for an HTTP status of serve/status.h: the one table from one to the other. */
static grpc_status_code grpc_status_of(int http_status)
{
    switch (http_status) {
    case 200: return GRPC_STATUS_OK;
    case 400: return GRPC_STATUS_INVALID_ARGUMENT;
    case 401: return GRPC_STATUS_UNAUTHENTICATED;
    case 403: return GRPC_STATUS_PERMISSION_DENIED;
    case 404: return GRPC_STATUS_NOT_FOUND;
    case 405:
    case 501: return GRPC_STATUS_UNIMPLEMENTED;
    case 408:
    case 504: return GRPC_STATUS_DEADLINE_EXCEEDED;
    case 413:
    case 429: return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case 503: return GRPC_STATUS_UNAVAILABLE;
    default: return GRPC_STATUS_INTERNAL;
    }
}

/* ---- answering ---------------------------------------------------------------------------- */

/* Releases everything a call holds. Thread: the call's (its batch completed there), or any. */
static void infer_state_put(cq_thread_t *t, infer_state_t *st);

static void stream_unlink(call_ctx_t *c);

/* The call's request message is no longer viewed: freed (a stream's next one may replace it). */
static void drop_payload(call_ctx_t *c)
{
    if (c->reader_open)
        grpc_byte_buffer_reader_destroy(&c->reader);
    c->reader_open = 0;
    if (c->payload != NULL)
        grpc_byte_buffer_destroy(c->payload);
    c->payload = NULL;
}

static void call_free(call_ctx_t *c)
{
    stream_unlink(c);
    atomic_fetch_sub_explicit(&c->t->server->active, 1, memory_order_relaxed);
    if (c->infer != NULL)
        infer_state_put(c->t, c->infer);
    for (size_t i = 0; i < c->ninitial; i++)
        grpc_slice_unref(c->initial[i].value);
    if (c->has_details)
        grpc_slice_unref(c->details);
    if (c->response != NULL)
        grpc_byte_buffer_destroy(c->response);
    drop_payload(c);
    grpc_metadata_array_destroy(&c->md);
    if (c->call != NULL)
        grpc_call_unref(c->call);
    free(c);
}

/*
 * Ends the call: initial metadata, the response message (`response`, owned from here; NULL on
 * failure), the status and its message, and the close. Thread: any (the control thread for
 * repository calls); the completion arrives on the call's thread, which frees the call.
 */
static int finish(call_ctx_t *c, grpc_status_code status, const char *msg,
                  grpc_byte_buffer *response)
{
    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    c->response = response;
    c->kind = TAG_CALL_DONE;
    if (!c->sent_initial) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n].data.send_initial_metadata.count = c->ninitial;
        ops[n].data.send_initial_metadata.metadata = c->ninitial ? c->initial : NULL;
        n++;
    }
    if (response != NULL) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = response;
        n++;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = status;
    if (msg != NULL && msg[0] != '\0') {
        c->details = grpc_slice_from_copied_string(msg);
        c->has_details = 1;
        ops[n].data.send_status_from_server.status_details = &c->details;
    }
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
    n++;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
    if (e != GRPC_CALL_OK) {
        /* Only a misuse of the API gets here. The tag will never come: free the call now
         * (nothing in call_free belongs to one thread). */
        mg_log(MG_LOG_ERROR, "grpc", "cannot answer call method=%s (grpc_call_error %d)",
               c->method ? c->method->name : "?", (int)e);
        grpc_call_cancel(c->call, NULL);
        call_free(c);
    }
    return 0;
}

/* Answers a failure with the status and message serve/status.h gives `code`. */
/* Logs a failure about to be answered (server errors always, the client's at debug level). */
static void log_failure(const call_ctx_t *c, int http, const char *msg)
{
    if (http >= 500 || mg_log_enabled(MG_LOG_DEBUG))
        mg_log(http >= 500 ? MG_LOG_WARN : MG_LOG_DEBUG, "grpc",
               "call failed method=%s status=%d (%s)", c->method ? c->method->name : "?", http,
               msg);
}

static int finish_error(call_ctx_t *c, int code, const char *msg)
{
    int http = mg_status_http(code);
    log_failure(c, http, msg);
    return finish(c, grpc_status_of(http), msg, NULL);
}

static int finish_errorf(call_ctx_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int finish_errorf(call_ctx_t *c, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return finish_error(c, code, msg);
}

/* Reads the call's next message (TAG_MESSAGE); if that cannot start, the call ends: `failed`. */
static void read_message(call_ctx_t *c, const char *failed)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->payload;
    c->kind = TAG_MESSAGE;
    if (grpc_call_start_batch(c->call, &op, 1, c, NULL) != GRPC_CALL_OK)
        finish_error(c, MG_EIO, failed);
}

/* Packs `m` into a byte buffer (one slice). */
static grpc_byte_buffer *pack(const ProtobufCMessage *m)
{
    size_t size = protobuf_c_message_get_packed_size(m);
    grpc_slice slice = grpc_slice_malloc(size);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

static int finish_ok(call_ctx_t *c, const ProtobufCMessage *m)
{
    return finish(c, GRPC_STATUS_OK, NULL, pack(m));
}

/* ---- reading the request ------------------------------------------------------------------ */

/* The request message as byte ranges (the byte buffer's slices), in the thread's arena. */
static int payload_segments(mg_arena_t *arena, call_ctx_t *c, mg_str_t **seg, size_t *nseg)
{
    *seg = NULL;
    *nseg = 0;
    if (c->payload == NULL)
        return MG_EPARSE;
    if (!grpc_byte_buffer_reader_init(&c->reader, c->payload))
        return MG_EPARSE; /* a compressed message that does not decompress */
    c->reader_open = 1;
    size_t cap = 0;
    grpc_slice *s;
    while (grpc_byte_buffer_reader_peek(&c->reader, &s)) {
        if (*nseg == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            mg_str_t *n = mg_arena_alloc(arena, ncap * sizeof(*n));
            if (n == NULL)
                return MG_ENOMEM;
            if (*nseg)
                memcpy(n, *seg, *nseg * sizeof(*n));
            *seg = n;
            cap = ncap;
        }
        (*seg)[(*nseg)++] =
            (mg_str_t){(const char *)GRPC_SLICE_START_PTR(*s), GRPC_SLICE_LENGTH(*s)};
    }
    return 0;
}

/* The request message in one piece: its only slice, or the slices copied into `scratch`. */
static int payload_flat(cq_thread_t *t, call_ctx_t *c, const uint8_t **data, size_t *len)
{
    mg_str_t *seg;
    size_t nseg;
    int rc = payload_segments(&t->arena, c, &seg, &nseg);
    if (rc != 0)
        return rc;
    if (nseg == 1) {
        *data = (const uint8_t *)seg[0].ptr;
        *len = seg[0].len;
        return 0;
    }
    mg_buf_reset(&t->scratch);
    for (size_t i = 0; i < nseg; i++) {
        if (mg_buf_append(&t->scratch, seg[i].ptr, seg[i].len) != 0)
            return MG_ENOMEM;
    }
    *data = (const uint8_t *)(t->scratch.data ? t->scratch.data : "");
    *len = t->scratch.len;
    return 0;
}

/* Unpacks the request with `desc` into the arena; answers the call and returns NULL on failure. */
static void *unpack(cq_thread_t *t, call_ctx_t *c, const ProtobufCMessageDescriptor *desc)
{
    const uint8_t *data;
    size_t len;
    int rc = payload_flat(t, c, &data, &len);
    if (rc == MG_ENOMEM) {
        finish_error(c, MG_ENOMEM, "out of memory");
        return NULL;
    }
    if (rc != 0) {
        finish_errorf(c, MG_EPARSE, "%s: the call carried no request message", c->method->name);
        return NULL;
    }
    ProtobufCAllocator alloc;
    mg_kserve_pb_allocator(&alloc, &t->arena);
    void *m = protobuf_c_message_unpack(desc, &alloc, len, data);
    if (m == NULL)
        finish_errorf(c, MG_EPARSE, "malformed %s", desc->short_name);
    return m;
}

/* Request metadata by lower-case name; x-ab-group is also found as ab_group. */
static int find_metadata(void *ctx, const char *lname, size_t len, mg_str_t *value)
{
    const call_ctx_t *c = ctx;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->md.count; i++) {
            const grpc_metadata *m = &c->md.metadata[i];
            if (GRPC_SLICE_LENGTH(m->key) == len &&
                memcmp(GRPC_SLICE_START_PTR(m->key), lname, len) == 0) {
                *value = (mg_str_t){(const char *)GRPC_SLICE_START_PTR(m->value),
                                    GRPC_SLICE_LENGTH(m->value)};
                return 1;
            }
        }
        if (pass == 0 && len == 10 && memcmp(lname, "x-ab-group", 10) == 0) {
            lname = "ab_group";
            len = 8;
            continue;
        }
        break;
    }
    return 0;
}

static char *arena_dup(cq_thread_t *t, const char *s, size_t n)
{
    return mg_arena_strndup(&t->arena, s, n);
}

/* ---- health and metadata ------------------------------------------------------------------ */

static int m_server_live(cq_thread_t *t, call_ctx_t *c)
{
    (void)t;
    Inference__ServerLiveResponse r = INFERENCE__SERVER_LIVE_RESPONSE__INIT;
    r.live = 1;
    return finish_ok(c, &r.base);
}

static int m_server_ready(cq_thread_t *t, call_ctx_t *c)
{
    Inference__ServerReadyResponse r = INFERENCE__SERVER_READY_RESPONSE__INIT;
    r.ready = mg_info_ready(t->server->serve, NULL);
    return finish_ok(c, &r.base);
}

static int m_model_ready(cq_thread_t *t, call_ctx_t *c)
{
    Inference__ModelReadyRequest *q = unpack(t, c, &inference__model_ready_request__descriptor);
    if (q == NULL)
        return 0;
    mg_err_t err;
    mg_model_version_t *v;
    int rc = mg_info_acquire(t->server->serve, (mg_str_t){q->name, strlen(q->name)},
                             (mg_str_t){q->version, strlen(q->version)}, &v, &err);
    if (rc != 0 && rc != MG_EUNAVAIL)
        return finish_error(c, rc, err.msg);
    Inference__ModelReadyResponse r = INFERENCE__MODEL_READY_RESPONSE__INIT;
    r.ready = rc == 0; /* known but not ready: ready false, as Triton answers */
    if (rc == 0)
        mg_model_version_unpin(v);
    return finish_ok(c, &r.base);
}

static int m_server_metadata(cq_thread_t *t, call_ctx_t *c)
{
    (void)t;
    mg_info_server_t info;
    mg_info_server(&info);
    Inference__ServerMetadataResponse r = INFERENCE__SERVER_METADATA_RESPONSE__INIT;
    r.name = (char *)(uintptr_t)info.name;
    r.version = (char *)(uintptr_t)info.version;
    r.n_extensions = info.nextensions;
    r.extensions = (char **)(uintptr_t)info.extensions;
    return finish_ok(c, &r.base);
}

/* Tensor descriptions as TensorMetadata, in the arena. */
static Inference__ModelMetadataResponse__TensorMetadata **
tensor_metadata(cq_thread_t *t, const mg_tensor_info_t *info, size_t n)
{
    Inference__ModelMetadataResponse__TensorMetadata **out =
        mg_arena_alloc(&t->arena, (n ? n : 1) * sizeof(*out));
    Inference__ModelMetadataResponse__TensorMetadata *m =
        mg_arena_alloc(&t->arena, (n ? n : 1) * sizeof(*m));
    if (out == NULL || m == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        inference__model_metadata_response__tensor_metadata__init(&m[i]);
        m[i].name = info[i].name;
        m[i].datatype = (char *)(uintptr_t)mg_dtype_name(info[i].dtype);
        m[i].n_shape = (size_t)info[i].ndim;
        m[i].shape = (int64_t *)(uintptr_t)info[i].shape;
        out[i] = &m[i];
    }
    return out;
}

static int m_model_metadata(cq_thread_t *t, call_ctx_t *c)
{
    Inference__ModelMetadataRequest *q =
        unpack(t, c, &inference__model_metadata_request__descriptor);
    if (q == NULL)
        return 0;
    mg_err_t err;
    mg_info_model_t m;
    int rc = mg_info_model(t->server->serve, (mg_str_t){q->name, strlen(q->name)},
                           (mg_str_t){q->version, strlen(q->version)}, &m, &err);
    if (rc != 0)
        return finish_error(c, rc, err.msg);
    Inference__ModelMetadataResponse r = INFERENCE__MODEL_METADATA_RESPONSE__INIT;
    r.name = (char *)(uintptr_t)m.name;
    r.platform = (char *)(uintptr_t)m.platform;
    r.n_versions = (size_t)m.nversions;
    r.versions = mg_arena_alloc(&t->arena, (size_t)(m.nversions + 1) * sizeof(char *));
    for (int i = 0; r.versions != NULL && i < m.nversions; i++) {
        char num[24];
        int k = snprintf(num, sizeof(num), "%lld", (long long)m.versions[i]);
        if ((r.versions[i] = arena_dup(t, num, (size_t)k)) == NULL)
            r.versions = NULL;
    }
    r.n_inputs = m.ninputs;
    r.inputs = tensor_metadata(t, m.inputs, m.ninputs);
    r.n_outputs = m.noutputs;
    r.outputs = tensor_metadata(t, m.outputs, m.noutputs);
    if (r.versions == NULL || r.inputs == NULL || r.outputs == NULL) {
        mg_info_model_done(&m);
        return finish_error(c, MG_ENOMEM, "out of memory");
    }
    finish_ok(c, &r.base); /* packed before the version (which owns the names) is unpinned */
    mg_info_model_done(&m);
    return 0;
}

/*
 * Room for one more pointer in the arena array `rows` of `n` (capacity *cap): the same array,
 * or a doubled copy. NULL when out of memory.
 */
static void *grow_rows(cq_thread_t *t, void *rows, size_t n, size_t *cap)
{
    if (n < *cap)
        return rows;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = mg_arena_alloc(&t->arena, ncap * sizeof(void *));
    if (p == NULL)
        return NULL;
    if (n)
        memcpy(p, rows, n * sizeof(void *));
    *cap = ncap;
    return p;
}

/* ---- the model configuration extension ---------------------------------------------------- */

static void *arena_zalloc(cq_thread_t *t, size_t n)
{
    void *p = mg_arena_alloc(&t->arena, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

/* A tensor's dims as Triton's config gives them: without the batch dim when batching. */
static int64_t *config_dims(cq_thread_t *t, const mg_tensor_info_t *info, bool batching, size_t *n)
{
    int skip = batching && info->ndim > 0 ? 1 : 0;
    *n = (size_t)(info->ndim - skip);
    int64_t *d = arena_zalloc(t, (*n + 1) * sizeof(*d));
    for (size_t i = 0; d != NULL && i < *n; i++)
        d[i] = info->shape[i + skip] < 0 ? -1 : info->shape[i + skip];
    return d;
}

static int add_parameter(void *ctx, const char *key, const mg_buf_t *json)
{
    Inference__ModelConfig *mc = ((void **)ctx)[0];
    cq_thread_t *t = ((void **)ctx)[1];
    Inference__ModelConfig__ParametersEntry *e = arena_zalloc(t, sizeof(*e));
    Inference__ModelParameter *p = arena_zalloc(t, sizeof(*p));
    if (e == NULL || p == NULL)
        return MG_ENOMEM;
    inference__model_config__parameters_entry__init(e);
    inference__model_parameter__init(p);
    e->key = arena_dup(t, key, strlen(key));
    p->string_value = arena_dup(t, json->data, json->len);
    e->value = p;
    if (e->key == NULL || p->string_value == NULL)
        return MG_ENOMEM;
    mc->parameters[mc->n_parameters++] = e;
    return 0;
}

/* Fills `mc` (Triton's ModelConfig) as GET .../config answers it (proto/kserve_config.h). */
static int fill_config(cq_thread_t *t, const mg_info_model_t *m, const mg_model_config_t *cfg,
                       Inference__ModelConfig *mc)
{
    static char platform[] = "onnxruntime_onnx", backend[] = "onnxruntime",
                filename[] = "model.onnx";
    inference__model_config__init(mc);
    mc->name = (char *)(uintptr_t)m->name;
    mc->platform = platform;
    mc->backend = backend;
    mc->default_model_filename = filename;
    mc->max_batch_size = (int32_t)cfg->max_batch_size;
    Inference__ModelVersionPolicy *vp = arena_zalloc(t, sizeof(*vp));
    if (vp == NULL)
        return MG_ENOMEM;
    inference__model_version_policy__init(vp);
    if (cfg->policy == MG_VERSION_POLICY_ALL) {
        vp->policy_choice_case = INFERENCE__MODEL_VERSION_POLICY__POLICY_CHOICE_ALL;
        vp->all = arena_zalloc(t, sizeof(*vp->all));
        if (vp->all == NULL)
            return MG_ENOMEM;
        inference__model_version_policy__all__init(vp->all);
    } else if (cfg->policy == MG_VERSION_POLICY_SPECIFIC) {
        vp->policy_choice_case = INFERENCE__MODEL_VERSION_POLICY__POLICY_CHOICE_SPECIFIC;
        vp->specific = arena_zalloc(t, sizeof(*vp->specific));
        if (vp->specific == NULL)
            return MG_ENOMEM;
        inference__model_version_policy__specific__init(vp->specific);
        vp->specific->n_versions = (size_t)cfg->nspecific;
        vp->specific->versions = (int64_t *)(uintptr_t)cfg->specific;
    } else {
        vp->policy_choice_case = INFERENCE__MODEL_VERSION_POLICY__POLICY_CHOICE_LATEST;
        vp->latest = arena_zalloc(t, sizeof(*vp->latest));
        if (vp->latest == NULL)
            return MG_ENOMEM;
        inference__model_version_policy__latest__init(vp->latest);
        vp->latest->num_versions = (uint32_t)cfg->latest_n;
    }
    mc->version_policy = vp;
    bool batching = cfg->max_batch_size > 0;
    mc->input = arena_zalloc(t, (m->ninputs + 1) * sizeof(*mc->input));
    mc->output = arena_zalloc(t, (m->noutputs + 1) * sizeof(*mc->output));
    if (mc->input == NULL || mc->output == NULL)
        return MG_ENOMEM;
    for (size_t i = 0; i < m->ninputs; i++) {
        Inference__ModelInput *in = arena_zalloc(t, sizeof(*in));
        if (in == NULL)
            return MG_ENOMEM;
        inference__model_input__init(in);
        in->name = m->inputs[i].name;
        in->data_type = (Inference__DataType)mg_dtype_config_number(m->inputs[i].dtype);
        if ((in->dims = config_dims(t, &m->inputs[i], batching, &in->n_dims)) == NULL)
            return MG_ENOMEM;
        mc->input[mc->n_input++] = in;
    }
    for (size_t i = 0; i < m->noutputs; i++) {
        Inference__ModelOutput *out = arena_zalloc(t, sizeof(*out));
        if (out == NULL)
            return MG_ENOMEM;
        inference__model_output__init(out);
        out->name = m->outputs[i].name;
        out->data_type = (Inference__DataType)mg_dtype_config_number(m->outputs[i].dtype);
        if ((out->dims = config_dims(t, &m->outputs[i], batching, &out->n_dims)) == NULL)
            return MG_ENOMEM;
        for (int k = 0; k < cfg->noutputs; k++) {
            if (strcmp(cfg->outputs[k].name, out->name) == 0 && cfg->outputs[k].label_filename[0])
                out->label_filename = (char *)(uintptr_t)cfg->outputs[k].label_filename;
        }
        mc->output[mc->n_output++] = out;
    }
    Inference__ModelInstanceGroup *g = arena_zalloc(t, sizeof(*g));
    mc->instance_group = arena_zalloc(t, sizeof(*mc->instance_group));
    mc->parameters = arena_zalloc(t, 8 * sizeof(*mc->parameters));
    if (g == NULL || mc->instance_group == NULL || mc->parameters == NULL)
        return MG_ENOMEM;
    inference__model_instance_group__init(g);
    g->name = mc->name;
    g->count = cfg->instance_count;
    g->kind = INFERENCE__MODEL_INSTANCE_GROUP__KIND__KIND_CPU;
    mc->instance_group[mc->n_instance_group++] = g;
    void *ctx[2] = {mc, t};
    return mg_kserve_config_parameters(cfg, add_parameter, ctx);
}

static int m_model_config(cq_thread_t *t, call_ctx_t *c)
{
    Inference__ModelConfigRequest *q = unpack(t, c, &inference__model_config_request__descriptor);
    if (q == NULL)
        return 0;
    mg_err_t err;
    mg_info_model_t m;
    int rc = mg_info_model(t->server->serve, (mg_str_t){q->name, strlen(q->name)},
                           (mg_str_t){q->version, strlen(q->version)}, &m, &err);
    if (rc != 0)
        return finish_error(c, rc, err.msg);
    Inference__ModelConfig mc;
    Inference__ModelConfigResponse r = INFERENCE__MODEL_CONFIG_RESPONSE__INIT;
    r.config = &mc;
    if (fill_config(t, &m, mg_model_version_config(m.version), &mc) != 0) {
        mg_info_model_done(&m);
        return finish_error(c, MG_ENOMEM, "out of memory");
    }
    finish_ok(c, &r.base); /* packed before the version (which owns the names) is unpinned */
    mg_info_model_done(&m);
    return 0;
}

/* ---- the statistics extension ------------------------------------------------------------ */

/* The ModelStatistics rows gathered so far, in the thread's arena. */
typedef struct stats_rows {
    cq_thread_t *t;
    Inference__ModelStatistics **rows;
    size_t n, cap;
} stats_rows_t;

static Inference__StatisticDuration *duration(cq_thread_t *t, mg_obs_duration_t d)
{
    Inference__StatisticDuration *p = mg_arena_alloc(&t->arena, sizeof(*p));
    if (p != NULL) {
        inference__statistic_duration__init(p);
        p->count = d.count;
        p->ns = d.ns;
    }
    return p;
}

static int add_stats_row(void *ctx, const mg_stats_row_t *row)
{
    stats_rows_t *a = ctx;
    cq_thread_t *t = a->t;
    void *rows = grow_rows(t, a->rows, a->n, &a->cap);
    if (rows == NULL)
        return MG_ENOMEM;
    a->rows = rows;
    const mg_obs_series_stats_t *f = &row->figures;
    Inference__ModelStatistics *m = mg_arena_alloc(&t->arena, sizeof(*m));
    Inference__InferStatistics *is = mg_arena_alloc(&t->arena, sizeof(*is));
    Inference__InferBatchStatistics **bs =
        mg_arena_alloc(&t->arena, (size_t)(row->nbatches + 1) * sizeof(*bs));
    if (m == NULL || is == NULL || bs == NULL)
        return MG_ENOMEM;
    inference__model_statistics__init(m);
    inference__infer_statistics__init(is);
    static const mg_obs_duration_t none = {0, 0};
    is->success = duration(t, f->success);
    is->fail = duration(t, f->fail);
    is->queue = duration(t, f->queue);
    is->compute_input = duration(t, f->compute_input);
    is->compute_infer = duration(t, f->compute_infer);
    is->compute_output = duration(t, f->compute_output);
    is->cache_hit = duration(t, none);
    is->cache_miss = duration(t, none);
    m->name = arena_dup(t, row->model, strlen(row->model));
    m->version = arena_dup(t, row->version, strlen(row->version));
    m->last_inference = f->last_inference_ms;
    m->inference_count = f->inference_count;
    m->execution_count = f->execution_count;
    m->inference_stats = is;
    m->batch_stats = bs;
    for (int i = 0; i < row->nbatches; i++) {
        const mg_obs_batch_stats_t *b = &row->batches[i];
        if (b->batch_size == 0) /* the overflow entry has no size to name (as over HTTP) */
            continue;
        Inference__InferBatchStatistics *p = mg_arena_alloc(&t->arena, sizeof(*p));
        if (p == NULL)
            return MG_ENOMEM;
        inference__infer_batch_statistics__init(p);
        p->batch_size = b->batch_size;
        p->compute_input = duration(t, b->compute_input);
        p->compute_infer = duration(t, b->compute_infer);
        p->compute_output = duration(t, b->compute_output);
        bs[m->n_batch_stats++] = p;
    }
    if (m->name == NULL || m->version == NULL || is->cache_miss == NULL)
        return MG_ENOMEM;
    a->rows[a->n++] = m;
    return 0;
}

static int m_model_statistics(cq_thread_t *t, call_ctx_t *c)
{
    Inference__ModelStatisticsRequest *q =
        unpack(t, c, &inference__model_statistics_request__descriptor);
    if (q == NULL)
        return 0;
    mg_err_t err = {0};
    stats_rows_t rows = {t, NULL, 0, 0};
    int rc =
        mg_stats_collect(t->server->serve, (mg_str_t){q->name, strlen(q->name)},
                         (mg_str_t){q->version, strlen(q->version)}, add_stats_row, &rows, &err);
    if (rc != 0)
        return finish_error(c, rc, rc == MG_ENOMEM ? "out of memory" : err.msg);
    Inference__ModelStatisticsResponse r = INFERENCE__MODEL_STATISTICS_RESPONSE__INIT;
    r.n_model_stats = rows.n;
    r.model_stats = rows.rows;
    return finish_ok(c, &r.base);
}

/* ---- inference ---------------------------------------------------------------------------- */

/*
 * A ModelInfer call from its decoding to its answer: the decoded request (in `arena`, raw
 * contents copied into `scratch` when they span slices), the core's call and result. Each
 * thread keeps the states of its finished calls for reuse, so a warm thread allocates nothing
 * per call here. A call held for a joined Run or handed to the execution pool keeps its state
 * until its answer is started.
 */
/* The completion-queue thread running here; NULL on other threads. */
static _Thread_local cq_thread_t *current;

typedef struct infer_state {
    struct infer_state *next; /* the thread's free list */
    call_ctx_t *c;
    mg_arena_t arena;
    mg_buf_t scratch;
    mg_infer_request_t req;
    mg_serve_call_t call;
    mg_serve_result_t res;
    mg_pooled_t pooled; /* on the execution pool */
} infer_state_t;

static infer_state_t *infer_state_get(cq_thread_t *t, call_ctx_t *c)
{
    infer_state_t *st = t->free_states;
    if (st != NULL) {
        t->free_states = st->next;
        mg_arena_reset(&st->arena);
    } else if ((st = calloc(1, sizeof(*st))) != NULL) {
        mg_arena_init(&st->arena, 0);
    } else {
        return NULL;
    }
    st->c = c;
    c->infer = st;
    return st;
}

/* Keeps the state for the thread's next call (its owner's thread), or frees it (any other). */
static void infer_state_put(cq_thread_t *t, infer_state_t *st)
{
    if (current == t) {
        st->next = t->free_states;
        t->free_states = st;
        return;
    }
    mg_arena_free(&st->arena);
    mg_buf_free(&st->scratch);
    free(st);
}

/*
 * Encodes and sends the answer of a call the core has run (or failed), then ends the call in
 * the core. Thread: the call's, or the pool thread that ran it (gRPC's batch API may be used
 * from any thread while no other batch of the call is being started: this is its last).
 */
/*
 * Ends a call once its answer no longer views the outputs: the core's part (mg_serve_done),
 * a dynamic batch's shared outputs and the shared-memory regions it held.
 */
static void end_infer(infer_state_t *st)
{
    mg_serve_done(&st->res);
    mg_pooled_release(&st->pooled);
    mg_shm_release(st->req.shm_hold);
}

static int m_model_stream_infer(cq_thread_t *t, call_ctx_t *c);

static bool is_stream(const call_ctx_t *c)
{
    return c->method != NULL && c->method->fn == m_model_stream_infer;
}

/*
 * Sends one answer on a stream: the response `m`, or the request's failure `msg` in
 * error_message (with the request's id and model when they were read, so a client can tell
 * which request failed); the stream goes on once it is sent (stream_sent). Thread: the call's,
 * or the pool thread that ran the request: the call has no other batch meanwhile.
 */
static int stream_answer(call_ctx_t *c, infer_state_t *st, bool ran, const char *msg,
                         Inference__ModelInferResponse *m)
{
    Inference__ModelStreamInferResponse r = INFERENCE__MODEL_STREAM_INFER_RESPONSE__INIT;
    Inference__ModelInferResponse e = INFERENCE__MODEL_INFER_RESPONSE__INIT;
    if (m != NULL) {
        r.infer_response = m;
    } else {
        r.error_message = (char *)msg;
        if (st != NULL && (st->call.model.len > 0 || st->req.id.len > 0)) {
            char *model = mg_arena_strndup(&st->arena, st->call.model.ptr, st->call.model.len);
            char *id = mg_arena_strndup(&st->arena, st->req.id.ptr, st->req.id.len);
            if (model != NULL && id != NULL) {
                e.model_name = model;
                e.id = id;
                r.infer_response = &e;
            }
        }
    }
    grpc_byte_buffer *bb = pack(&r.base); /* the outputs are referenced until packed */
    if (st != NULL) {
        if (ran)
            end_infer(st);
        c->infer = NULL;
        infer_state_put(c->t, st);
    }
    drop_payload(c);
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!c->sent_initial) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->sent_initial = 1;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = bb;
    n++;
    c->response = bb;
    c->kind = TAG_STREAM_SENT;
    grpc_call_error err = grpc_call_start_batch(c->call, ops, n, c, NULL);
    if (err != GRPC_CALL_OK) {
        mg_log(MG_LOG_ERROR, "grpc", "cannot answer on a stream (grpc_call_error %d)", (int)err);
        grpc_call_cancel(c->call, NULL);
        call_free(c);
    }
    return 0;
}

/*
 * Refuses an inference request: a unary call ends with the status and the message, a stream
 * answers the request with the message and goes on. `ran`: the core began the request, so
 * its end (end_infer) is owed before the answer starts.
 */
static int infer_refuse(call_ctx_t *c, infer_state_t *st, bool ran, int code, const char *msg)
{
    int http = mg_status_http(code);
    log_failure(c, http, msg); /* with the call's log context */
    if (is_stream(c))
        return stream_answer(c, st, ran, msg, NULL);
    if (ran)
        end_infer(st);
    return finish(c, grpc_status_of(http), msg, NULL); /* copies the message */
}

static void answer_infer(infer_state_t *st)
{
    call_ctx_t *c = st->c;
    mg_serve_result_t *res = &st->res;
    if (res->rc == 0)
        res->rc = mg_shm_write_outputs(c->t->server->shm, &st->req, &res->resp, st->req.shm_hold,
                                       &res->err);
    /* The call is done with in the core before its answer is started: once started, its
     * completion may free the state on the call's thread. */
    if (res->rc != 0) {
        infer_refuse(c, st, true, res->rc, res->err.msg);
        return;
    }
    mg_err_t err;
    Inference__ModelInferResponse *m;
    int rc = mg_kserve_pb_encode_response(&res->resp, !st->req.binary_output, &st->arena, &m, &err);
    if (rc != 0) {
        infer_refuse(c, st, true, rc, err.msg);
        return;
    }
    if (is_stream(c)) {
        /* A stream's metadata is sent once, before its first answer: each answer's
           model_version names the version that served it. */
        stream_answer(c, st, true, NULL, m);
        return;
    }
    mg_serve_header_t hdrs[MG_SERVE_HEADERS_MAX];
    char explain[MG_SERVE_EXPLAIN_MAX];
    size_t n = mg_serve_headers(&st->call, res, hdrs, explain);
    for (size_t i = 0; i < n; i++) {
        c->initial[i].key = grpc_slice_from_static_string(hdrs[i].name);
        c->initial[i].value = grpc_slice_from_copied_buffer(hdrs[i].value.ptr, hdrs[i].value.len);
    }
    c->ninitial = n;
    grpc_byte_buffer *bb = pack(&m->base); /* the outputs are referenced until packed */
    end_infer(st);
    finish(c, GRPC_STATUS_OK, NULL, bb);
}

/* Pool thread: a call on the execution pool ran (alone, or in a dynamic batch); answer it. */
static void pooled_ran(mg_pooled_t *p)
{
    answer_infer((infer_state_t *)((char *)p - offsetof(infer_state_t, pooled)));
}

/* Answers a call held for a joined Run once the batch ran (mg_batch_answer_fn). */
static void answer_held(void *ctx, mg_serve_result_t *res)
{
    (void)res;
    answer_infer(ctx);
}

/* Decodes the call's message (a unary call's, or a stream's latest) and serves it. */
static int m_model_infer(cq_thread_t *t, call_ctx_t *c)
{
    infer_state_t *st = infer_state_get(t, c);
    if (st == NULL)
        return infer_refuse(c, NULL, false, MG_ENOMEM, "out of memory");
    memset(&st->req, 0, sizeof(st->req));
    memset(&st->call, 0, sizeof(st->call));
    st->req.arena = &st->arena;
    mg_err_t err;
    mg_str_t *seg;
    size_t nseg;
    int rc = payload_segments(&st->arena, c, &seg, &nseg);
    if (rc != 0)
        return infer_refuse(c, st, false, rc,
                            rc == MG_ENOMEM ? "out of memory"
                                            : "ModelInfer: the call carried no request");
    mg_kserve_pb_target_t target;
    rc = mg_kserve_pb_decode_request(seg, nseg, &st->req, &target, &st->scratch, &err);
    /* the model and id the message names (once it parsed), for a stream's refusal */
    st->call.model = target.model;
    if (rc != 0)
        return infer_refuse(c, st, false, rc, err.msg);
    if (target.model.len == 0)
        return infer_refuse(c, st, false, MG_EINVAL, "model_name is required");
    if ((rc = mg_shm_hold(t->server->shm, &st->req, &err)) != 0)
        return infer_refuse(c, st, false, rc, err.msg);
    st->call = (mg_serve_call_t){
        .model = target.model,
        .url_version = target.version,
        .meta = {find_metadata, c},
        .req = &st->req,
        .deadline_ns = c->deadline_ns,
        .operation = is_stream(c) ? MG_STR_LIT("/inference.GRPCInferenceService/ModelStreamInfer")
                                  : MG_STR_LIT("/inference.GRPCInferenceService/ModelInfer"),
    };
    mg_serve_t *s = t->server->serve;
    mg_serve_result_t *res = &st->res;
    if (mg_serve_begin(s, &st->call, res) == 0) {
        switch (mg_batch_place(t->batch, t->server->pool != NULL, &st->call, res, st)) {
        case MG_PLACE_POOL:
            /* A slow model runs on the pool, so this thread keeps answering its other calls. */
            mg_log_context_set(NULL); /* the call goes on on the pool */
            st->pooled.serve = s;
            st->pooled.call = &st->call;
            st->pooled.res = res;
            st->pooled.ran = pooled_ran;
            if (mg_pooled_submit(t->server->pool, &st->pooled) == 0)
                return 0;
            mg_serve_run(s, &st->call, res); /* the pool stops: the server is shutting down */
            break;
        case MG_PLACE_HELD:
            return 0; /* runs with the other calls this thread has ready (cq_main) */
        case MG_PLACE_NOW: mg_serve_run(s, &st->call, res); break;
        }
    }
    answer_infer(st);
    return 0;
}

/* ---- ModelStreamInfer ---------------------------------------------------------------------- */

/*
 * A stream's requests are served one after another, each as a ModelInfer call would be (the
 * stream's metadata routes every one), and answered in order: the next message is read once
 * the answer to the last one is sent. A failed request is answered with its error_message and
 * the stream goes on; the stream ends when the client closes its side, or, when the server
 * drains, after the request in hand (a stream waiting for its next message is ended at once).
 */
static void stream_link(call_ctx_t *c)
{
    mg_grpc_server_t *s = c->t->server;
    pthread_mutex_lock(&s->streams_mu);
    c->stream_next = s->streams;
    c->stream_prev = NULL;
    if (s->streams != NULL)
        s->streams->stream_prev = c;
    s->streams = c;
    c->stream_listed = 1;
    c->stream_waiting = 1;
    pthread_mutex_unlock(&s->streams_mu);
}

static void stream_unlink(call_ctx_t *c)
{
    if (!c->stream_listed)
        return;
    mg_grpc_server_t *s = c->t->server;
    pthread_mutex_lock(&s->streams_mu);
    if (c->stream_prev != NULL)
        c->stream_prev->stream_next = c->stream_next;
    else
        s->streams = c->stream_next;
    if (c->stream_next != NULL)
        c->stream_next->stream_prev = c->stream_prev;
    c->stream_listed = 0;
    pthread_mutex_unlock(&s->streams_mu);
}

/* A message of the stream arrived, or its client closed its side (no message). */
static int m_model_stream_infer(cq_thread_t *t, call_ctx_t *c)
{
    mg_grpc_server_t *s = t->server;
    pthread_mutex_lock(&s->streams_mu);
    c->stream_waiting = 0;
    pthread_mutex_unlock(&s->streams_mu);
    if (c->payload == NULL)
        return finish(c, GRPC_STATUS_OK, NULL, NULL);
    return m_model_infer(t, c);
}

/* The stream's last answer was sent (or could not be): read its next message, or end it. */
static void stream_sent(call_ctx_t *c, bool ok)
{
    grpc_byte_buffer_destroy(c->response);
    c->response = NULL;
    if (!ok) { /* the client is gone */
        finish(c, GRPC_STATUS_CANCELLED, NULL, NULL);
        return;
    }
    mg_grpc_server_t *s = c->t->server;
    pthread_mutex_lock(&s->streams_mu);
    bool stopping = atomic_load(&s->stopping);
    c->stream_waiting = !stopping;
    pthread_mutex_unlock(&s->streams_mu);
    if (stopping) {
        finish(c, GRPC_STATUS_UNAVAILABLE, "the server is shutting down", NULL);
        return;
    }
    read_message(c, "cannot read the stream's next request");
}

/* Draining: the streams waiting for their clients' next message end now (UNAVAILABLE). */
static void end_waiting_streams(mg_grpc_server_t *s)
{
    pthread_mutex_lock(&s->streams_mu);
    for (call_ctx_t *c = s->streams; c != NULL; c = c->stream_next) {
        if (c->stream_waiting)
            grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE,
                                         "the server is shutting down", NULL);
    }
    pthread_mutex_unlock(&s->streams_mu);
}

/* ---- the repository extension ------------------------------------------------------------- */

typedef struct index_rows {
    cq_thread_t *t;
    Inference__RepositoryIndexResponse__ModelIndex **rows;
    size_t n, cap;
} index_rows_t;

static char *dup_or_empty(cq_thread_t *t, const char *s)
{
    return arena_dup(t, s ? s : "", s ? strlen(s) : 0);
}

static int add_index_row(void *ctx, const mg_info_index_row_t *row)
{
    index_rows_t *x = ctx;
    void *rows = grow_rows(x->t, x->rows, x->n, &x->cap);
    if (rows == NULL)
        return MG_ENOMEM;
    x->rows = rows;
    Inference__RepositoryIndexResponse__ModelIndex *m = mg_arena_alloc(&x->t->arena, sizeof(*m));
    if (m == NULL)
        return MG_ENOMEM;
    inference__repository_index_response__model_index__init(m);
    m->name = dup_or_empty(x->t, row->name);
    m->version = dup_or_empty(x->t, row->version);
    m->state = dup_or_empty(x->t, row->state);
    m->reason = dup_or_empty(x->t, row->reason);
    if (m->name == NULL || m->version == NULL || m->state == NULL || m->reason == NULL)
        return MG_ENOMEM;
    x->rows[x->n++] = m;
    return 0;
}

static int m_repository_index(cq_thread_t *t, call_ctx_t *c)
{
    Inference__RepositoryIndexRequest *q =
        unpack(t, c, &inference__repository_index_request__descriptor);
    if (q == NULL)
        return 0;
    index_rows_t x = {t, NULL, 0, 0};
    int rc = mg_info_index(t->server->serve, q->ready, add_index_row, &x);
    if (rc == MG_EIO)
        return finish_error(c, MG_EIO, "cannot list the model repository");
    if (rc != 0)
        return finish_error(c, MG_ENOMEM, "out of memory");
    Inference__RepositoryIndexResponse r = INFERENCE__REPOSITORY_INDEX_RESPONSE__INIT;
    r.n_models = x.n;
    r.models = x.rows;
    return finish_ok(c, &r.base);
}

/* Control thread: the load or unload ran (or was cancelled); answer the call. */
static void control_done(mg_control_op_t *op)
{
    call_ctx_t *c = op->ctx;
    /* Both responses are empty messages. */
    Inference__RepositoryModelLoadResponse r = INFERENCE__REPOSITORY_MODEL_LOAD_RESPONSE__INIT;
    if (op->rc != 0)
        finish_error(c, op->rc, op->err.msg);
    else
        finish_ok(c, &r.base);
}

/*
 * Repository changes and shared-memory registrations are the admin surface's: its listener,
 * or its token. Returns true, or false with the call answered (`what` names the calls).
 */
static bool admin_ok(cq_thread_t *t, call_ctx_t *c, const char *what)
{
    char msg[160];
    if (t->server->admin_elsewhere) {
        snprintf(msg, sizeof(msg), "%s are served on the admin listener (--admin-listen)", what);
        finish_error(c, MG_EFORBIDDEN, msg);
        return false;
    }
    mg_str_t cred = {"", 0};
    find_metadata(c, "authorization", 13, &cred);
    int arc = mg_auth_check(&t->server->admin_auth, cred);
    if (arc == 0)
        return true;
    if (arc == MG_EUNAUTHORIZED)
        snprintf(msg, sizeof(msg), "%s need \"authorization: Bearer <token>\" metadata", what);
    else
        snprintf(msg, sizeof(msg), "the admin token is not valid");
    finish_error(c, arc, msg);
    return false;
}

static int submit(cq_thread_t *t, call_ctx_t *c, mg_control_kind_t kind, const char *model)
{
    if (!admin_ok(t, c, "repository changes"))
        return 0;
    size_t n = strlen(model);
    if (n == 0)
        return finish_error(c, MG_EINVAL, "model_name is required");
    if (n >= sizeof(c->op.model))
        return finish_error(c, MG_EINVAL, "model name too long");
    memcpy(c->op.model, model, n + 1);
    c->op.kind = kind;
    c->op.done = control_done;
    c->op.ctx = c;
    if (mg_control_submit(t->server->control, &c->op) != 0)
        return finish_error(c, MG_ECANCELED, "the server is shutting down");
    return 0;
}

static int m_repository_load(cq_thread_t *t, call_ctx_t *c)
{
    Inference__RepositoryModelLoadRequest *q =
        unpack(t, c, &inference__repository_model_load_request__descriptor);
    return q != NULL ? submit(t, c, MG_CONTROL_LOAD, q->model_name) : 0;
}

static int m_repository_unload(cq_thread_t *t, call_ctx_t *c)
{
    Inference__RepositoryModelUnloadRequest *q =
        unpack(t, c, &inference__repository_model_unload_request__descriptor);
    return q != NULL ? submit(t, c, MG_CONTROL_UNLOAD, q->model_name) : 0;
}

/* ---- the system shared-memory extension --------------------------------------------------- */

/* The SystemSharedMemoryStatus regions gathered so far, in the thread's arena. */
typedef struct shm_rows {
    cq_thread_t *t;
    Inference__SystemSharedMemoryStatusResponse__RegionsEntry **rows;
    size_t n, cap;
} shm_rows_t;

static int add_shm_row(void *ctx, const mg_shm_status_t *st)
{
    shm_rows_t *a = ctx;
    cq_thread_t *t = a->t;
    void *rows = grow_rows(t, a->rows, a->n, &a->cap);
    Inference__SystemSharedMemoryStatusResponse__RegionsEntry *e = arena_zalloc(t, sizeof(*e));
    Inference__SystemSharedMemoryStatusResponse__RegionStatus *r = arena_zalloc(t, sizeof(*r));
    if (rows == NULL || e == NULL || r == NULL)
        return MG_ENOMEM;
    a->rows = rows;
    inference__system_shared_memory_status_response__regions_entry__init(e);
    inference__system_shared_memory_status_response__region_status__init(r);
    r->name = arena_dup(t, st->name, strlen(st->name));
    r->key = arena_dup(t, st->key, strlen(st->key));
    r->offset = st->offset;
    r->byte_size = st->byte_size;
    e->key = r->name;
    e->value = r;
    if (r->name == NULL || r->key == NULL)
        return MG_ENOMEM;
    a->rows[a->n++] = e;
    return 0;
}

static int m_shm_status(cq_thread_t *t, call_ctx_t *c)
{
    Inference__SystemSharedMemoryStatusRequest *q =
        unpack(t, c, &inference__system_shared_memory_status_request__descriptor);
    if (q == NULL)
        return 0;
    mg_err_t err = {0};
    shm_rows_t rows = {t, NULL, 0, 0};
    int rc = mg_shm_status(t->server->shm, (mg_str_t){q->name, strlen(q->name)}, add_shm_row, &rows,
                           &err);
    if (rc != 0)
        return finish_error(c, rc, rc == MG_ENOMEM ? "out of memory" : err.msg);
    Inference__SystemSharedMemoryStatusResponse r =
        INFERENCE__SYSTEM_SHARED_MEMORY_STATUS_RESPONSE__INIT;
    r.n_regions = rows.n;
    r.regions = rows.rows;
    return finish_ok(c, &r.base);
}

static int m_shm_register(cq_thread_t *t, call_ctx_t *c)
{
    Inference__SystemSharedMemoryRegisterRequest *q =
        unpack(t, c, &inference__system_shared_memory_register_request__descriptor);
    if (q == NULL || !admin_ok(t, c, "shared-memory registrations"))
        return 0;
    mg_err_t err = {0};
    if (q->name[0] == '\0')
        return finish_error(c, MG_EINVAL, "name is required");
    int rc = mg_shm_register(t->server->shm, (mg_str_t){q->name, strlen(q->name)}, q->key,
                             q->offset, q->byte_size, &err);
    if (rc != 0)
        return finish_error(c, rc, err.msg);
    Inference__SystemSharedMemoryRegisterResponse r =
        INFERENCE__SYSTEM_SHARED_MEMORY_REGISTER_RESPONSE__INIT;
    return finish_ok(c, &r.base);
}

static int m_shm_unregister(cq_thread_t *t, call_ctx_t *c)
{
    Inference__SystemSharedMemoryUnregisterRequest *q =
        unpack(t, c, &inference__system_shared_memory_unregister_request__descriptor);
    if (q == NULL || !admin_ok(t, c, "shared-memory registrations"))
        return 0;
    mg_err_t err = {0};
    int rc = mg_shm_unregister(t->server->shm, (mg_str_t){q->name, strlen(q->name)}, &err);
    if (rc != 0)
        return finish_error(c, rc, err.msg);
    Inference__SystemSharedMemoryUnregisterResponse r =
        INFERENCE__SYSTEM_SHARED_MEMORY_UNREGISTER_RESPONSE__INIT;
    return finish_ok(c, &r.base);
}

/* ---- the method table --------------------------------------------------------------------- */

/* Every method the server registers. Others (CUDA shared memory, trace, logging) are answered
 * UNIMPLEMENTED through the unknown-method request. */
static const method_t methods[] = {
    {"ServerLive", m_server_live, NULL},
    {"ServerReady", m_server_ready, NULL},
    {"ModelReady", m_model_ready, NULL},
    {"ServerMetadata", m_server_metadata, NULL},
    {"ModelMetadata", m_model_metadata, NULL},
    {"ModelInfer", m_model_infer, NULL},
    {"ModelStreamInfer", m_model_stream_infer, NULL},
    {"RepositoryIndex", m_repository_index, NULL},
    {"RepositoryModelLoad", m_repository_load, NULL},
    {"RepositoryModelUnload", m_repository_unload, NULL},
    {"ModelConfig", m_model_config, NULL},
    {"ModelStatistics", m_model_statistics, NULL},
    {"SystemSharedMemoryStatus", m_shm_status, NULL},
    {"SystemSharedMemoryRegister", m_shm_register, NULL},
    {"SystemSharedMemoryUnregister", m_shm_unregister, NULL},
};

#define NMETHODS (sizeof(methods) / sizeof(methods[0]))
/* Outstanding requests per thread and method, then the unknown-method one: enough that the
 * calls a connection's read delivers at once all find a request on that connection's queue. */
#define NSLOTS (NMETHODS * CALL_SLOTS + 1)
_Static_assert(NMETHODS <= sizeof(((mg_grpc_server_t *)0)->handles) / sizeof(void *),
               "room for every method's handle");

/* ---- the completion-queue threads --------------------------------------------------------- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The call's deadline on CLOCK_MONOTONIC (mg_serve_call_t.deadline_ns), or 0 for none. */
static int64_t deadline_of(gpr_timespec dl)
{
    if (gpr_time_cmp(dl, gpr_inf_future(dl.clock_type)) == 0)
        return 0;
    gpr_timespec left = gpr_time_sub(dl, gpr_now(dl.clock_type));
    int64_t sec = left.tv_sec > 1000000 ? 1000000 : left.tv_sec < -1000000 ? -1000000 : left.tv_sec;
    int64_t d = mono_ns() + sec * 1000000000 + left.tv_nsec;
    return d != 0 ? d : 1;
}

/* Asks for the next call on `s`; once the server is stopping only when `drain` says so. */
static void request_slot(slot_t *s, bool drain)
{
    mg_grpc_server_t *srv = s->t->server;
    if (!drain && atomic_load_explicit(&srv->stopping, memory_order_acquire))
        return;
    grpc_call_error e;
    if (s->method >= 0)
        e = grpc_server_request_registered_call(srv->server, srv->handles[s->method], &s->call,
                                                &s->deadline, &s->md, NULL, s->t->cq, s->t->cq, s);
    else
        e = grpc_server_request_call(srv->server, &s->call, &s->details, &s->md, s->t->cq, s->t->cq,
                                     s);
    if (e != GRPC_CALL_OK && !atomic_load(&srv->stopping))
        mg_log(MG_LOG_ERROR, "grpc", "cannot request calls (grpc_call_error %d)", (int)e);
}

/* A call arrived on slot `s`: take it over, answer it, and ask for the next one. */
static void on_new_call(cq_thread_t *t, slot_t *s)
{
    call_ctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        grpc_call_cancel_with_status(s->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory",
                                     NULL);
        grpc_call_unref(s->call);
        grpc_metadata_array_destroy(&s->md);
        grpc_metadata_array_init(&s->md);
        request_slot(s, false);
        return;
    }
    atomic_fetch_add_explicit(&t->server->active, 1, memory_order_relaxed);
    c->t = t;
    c->call = s->call;
    c->md = s->md; /* moved: the slot gets a fresh array */
    grpc_metadata_array_init(&s->md);
    s->call = NULL;
    if (s->method < 0) {
        c->deadline_ns = deadline_of(s->details.deadline);
        grpc_slice m = s->details.method;
        size_t len = GRPC_SLICE_LENGTH(m);
        char msg[300];
        snprintf(msg, sizeof(msg), "method %.*s is not served", (int)(len > 200 ? 200 : len),
                 (const char *)GRPC_SLICE_START_PTR(m));
        finish(c, GRPC_STATUS_UNIMPLEMENTED, msg, NULL); /* gRPC's answer to an unknown method */
        grpc_call_details_destroy(&s->details);
        grpc_call_details_init(&s->details);
        request_slot(s, false);
        return;
    }
    c->method = &methods[s->method];
    c->deadline_ns = deadline_of(s->deadline);
    if (is_stream(c))
        stream_link(c); /* waiting for its first message */
    /* Ask for the next call now: a call taken is the server's to answer, even at shutdown. */
    request_slot(s, false);
    read_message(c, "cannot read the request message");
}

/* The call's message arrived (or the call ended first: no message): answer it. */
static void on_message(cq_thread_t *t, call_ctx_t *c)
{
    mg_arena_reset(&t->arena);
    if (c->method->fn != NULL)
        c->method->fn(t, c);
    else
        finish(c, GRPC_STATUS_UNIMPLEMENTED, c->method->unimplemented, NULL);
}

static void *cq_main(void *arg)
{
    cq_thread_t *t = arg;
    rcu_register_thread();
    /* Thread k runs small models on their k-th session, as loop k does (repo/loader.h). */
    mg_model_version_bind_thread((int)(t - t->server->threads));
    current = t;
    for (size_t i = 0; i < NSLOTS; i++)
        request_slot(&t->slots[i], false);
    for (;;) {
        /*
         * While calls are held for a joined Run, only what is ready already is taken (gRPC
         * reads the sockets once more); when nothing is, the held calls run and are answered.
         * Otherwise the thread waits in its queue, and gRPC reads the sockets on it.
         */
        bool holding = mg_batch_count(t->batch) > 0;
        if (!holding)
            atomic_store_explicit(&t->wait_ns, mono_ns(), memory_order_release);
        grpc_event ev = grpc_completion_queue_next(
            t->cq, holding ? gpr_time_0(GPR_CLOCK_MONOTONIC) : gpr_inf_future(GPR_CLOCK_REALTIME),
            NULL);
        int64_t now = mono_ns();
        atomic_store_explicit(&t->wait_ns, 0, memory_order_release);
        if (ev.type == GRPC_QUEUE_TIMEOUT || ev.type == GRPC_QUEUE_SHUTDOWN)
            mg_batch_flush(t->batch, t->server->serve, answer_held);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        atomic_store_explicit(&t->server->last_event_ns, now, memory_order_relaxed);
        tag_kind_t kind = *(tag_kind_t *)ev.tag;
        if (kind == TAG_CALL_DONE)
            call_free(ev.tag);
        else if (kind == TAG_STREAM_SENT)
            stream_sent(ev.tag, ev.success);
        else if (kind == TAG_MESSAGE)
            on_message(t, ev.tag);
        else if (ev.success)
            on_new_call(t, ev.tag);
        /* A request that failed: the server is shutting down; it is not asked again. */
    }
    rcu_unregister_thread();
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------------- */

/* gRPC's own log lines, through ours. */
static void grpc_log_sink(gpr_log_func_args *a)
{
    mg_log(a->severity == GPR_LOG_SEVERITY_ERROR  ? MG_LOG_ERROR
           : a->severity == GPR_LOG_SEVERITY_INFO ? MG_LOG_INFO
                                                  : MG_LOG_DEBUG,
           "grpc", "%s (%s:%d)", a->message, a->file, a->line);
}

static void free_threads(mg_grpc_server_t *s)
{
    for (int k = 0; k < s->nthreads; k++) {
        cq_thread_t *t = &s->threads[k];
        for (size_t i = 0; t->slots != NULL && i < NSLOTS; i++) {
            grpc_metadata_array_destroy(&t->slots[i].md);
            grpc_call_details_destroy(&t->slots[i].details);
        }
        for (size_t i = 0; t->drain != NULL && i < NMETHODS * DRAIN_SLOTS; i++)
            grpc_metadata_array_destroy(&t->drain[i].md);
        free(t->slots);
        free(t->drain);
        mg_arena_free(&t->arena);
        mg_buf_free(&t->scratch);
        mg_batch_free(t->batch);
        while (t->free_states != NULL) {
            infer_state_t *st = t->free_states;
            t->free_states = st->next;
            mg_arena_free(&st->arena);
            mg_buf_free(&st->scratch);
            free(st);
        }
    }
    free(s->threads);
}

/*
 * Once the server's shutdown has completed: shuts the queues down, lets every thread (or, for
 * threads never started, this one) drain its queue, joins them and frees everything.
 */
static void destroy(mg_grpc_server_t *s)
{
    for (int k = 0; k < s->nthreads; k++) {
        if (s->threads[k].cq != NULL)
            grpc_completion_queue_shutdown(s->threads[k].cq);
    }
    for (int k = 0; k < s->nthreads; k++) {
        cq_thread_t *t = &s->threads[k];
        if (t->started)
            pthread_join(t->tid, NULL);
        else if (t->cq != NULL)
            while (
                grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
                GRPC_QUEUE_SHUTDOWN) {
            }
    }
    grpc_server_destroy(s->server);
    for (int k = 0; k < s->nthreads; k++) {
        if (s->threads[k].cq != NULL)
            grpc_completion_queue_destroy(s->threads[k].cq);
    }
    grpc_completion_queue_shutdown(s->shutdown_cq);
    grpc_completion_queue_destroy(s->shutdown_cq);
    free_threads(s);
    pthread_mutex_destroy(&s->streams_mu);
    free(s);
    grpc_shutdown();
}

int mg_grpc_start(mg_grpc_server_t **out, const mg_grpc_opts_t *opts, mg_err_t *err)
{
    mg_err_t local;
    if (err == NULL)
        err = &local;
    unsigned char addr[16];
    int v6 = inet_pton(AF_INET6, opts->host, addr) == 1;
    if (!v6 && inet_pton(AF_INET, opts->host, addr) != 1)
        return mg_err_set(err, MG_EINVAL,
                          "gRPC listen address '%s' is not a numeric IPv4 or IPv6 address",
                          opts->host);
    int nthreads = mg_cpu_threads(opts->threads);
    mg_grpc_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    pthread_mutex_init(&s->streams_mu, NULL);
    s->threads = calloc((size_t)nthreads, sizeof(*s->threads));
    if (s->threads == NULL) {
        pthread_mutex_destroy(&s->streams_mu);
        free(s);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    s->serve = opts->serve;
    s->control = opts->control;
    s->pool = opts->pool;
    s->shm = opts->shm;
    s->admin_auth = opts->admin_auth;
    s->admin_elsewhere = opts->admin_elsewhere;
    s->nthreads = nthreads;
    atomic_init(&s->stopping, false);
    atomic_init(&s->active, 0);
    atomic_init(&s->last_event_ns, 0);

    gpr_set_log_function(grpc_log_sink);
    gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
    grpc_init();
    size_t max = opts->max_message_bytes;
    grpc_arg args[3] = {
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = max > INT32_MAX ? INT32_MAX : (int)max},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = -1},
        /* Like the HTTP listener: a second daemon must fail to bind, not share the port. */
        {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
    };
    grpc_channel_args cargs = {3, args};
    s->server = grpc_server_create(&cargs, NULL);
    for (size_t i = 0; i < NMETHODS; i++) {
        char path[128];
        snprintf(path, sizeof(path), SERVICE "%s", methods[i].name);
        /*
         * The message is read after the call is taken (see on_new_call). Reading it with the
         * call (GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER) saves a completion a call, 8 %
         * more digits calls/s here, but gRPC then hands over a call only once its message is
         * in, and a drain's shutdown would cancel the calls whose messages are still arriving
         * (test_grpc_lifecycle sends SIGTERM during a 48 MiB message). Nothing in gRPC's API
         * tells those apart: channelz counts calls started and ended, but the ones it drops
         * before handing them over never end there.
         */
        s->handles[i] =
            grpc_server_register_method(s->server, path, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
    }
    /* Shutdown is awaited on a queue of its own, plucked by mg_grpc_stop. */
    grpc_completion_queue_attributes attr = {GRPC_CQ_CURRENT_VERSION, GRPC_CQ_PLUCK,
                                             GRPC_CQ_NON_POLLING, NULL};
    s->shutdown_cq =
        grpc_completion_queue_create(grpc_completion_queue_factory_lookup(&attr), &attr, NULL);
    grpc_server_register_completion_queue(s->server, s->shutdown_cq, NULL);
    for (int k = 0; k < nthreads; k++) {
        cq_thread_t *t = &s->threads[k];
        t->server = s;
        t->cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->server, t->cq, NULL);
        mg_arena_init(&t->arena, 0);
        t->slots = calloc(NSLOTS, sizeof(*t->slots));
        if (t->slots == NULL || mg_batch_new(&t->batch, HELD_MAX) != 0) {
            mg_err_set(err, MG_ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < NSLOTS; i++) {
            slot_t *sl = &t->slots[i];
            sl->kind = TAG_NEW_CALL;
            sl->t = t;
            sl->method = i < NSLOTS - 1 ? (int)(i / CALL_SLOTS) : -1;
            grpc_metadata_array_init(&sl->md);
            grpc_call_details_init(&sl->details);
        }
    }
    char target[200];
    snprintf(target, sizeof(target), v6 ? "[%s]:%d" : "%s:%d", opts->host, opts->port);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    s->port = grpc_server_add_http2_port(s->server, target, creds);
    grpc_server_credentials_release(creds);
    if (s->port <= 0) {
        mg_err_set(err, MG_EIO, "cannot listen for gRPC on %s (address in use?)", target);
        goto fail;
    }
    grpc_server_start(s->server);
    for (int k = 0; k < nthreads; k++) {
        if (pthread_create(&s->threads[k].tid, NULL, cq_main, &s->threads[k]) != 0) {
            mg_err_set(err, MG_EIO, "cannot start a gRPC thread");
            mg_grpc_stop(s, 0);
            return MG_EIO;
        }
        s->threads[k].started = 1;
    }
    mg_log(MG_LOG_INFO, "grpc", "listening addr=%s%s%s:%d threads=%d max_message=%zu",
           v6 ? "[" : "", opts->host, v6 ? "]" : "", s->port, nthreads, max);
    *out = s;
    return 0;

fail:
    /* Never started: shut the server down with no calls, then free everything. */
    grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, s);
    grpc_completion_queue_pluck(s->shutdown_cq, s, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    destroy(s);
    return err->code;
}

int mg_grpc_port(const mg_grpc_server_t *s)
{
    return s->port;
}

/* Serves on until the server is quiet (no call running, no event for QUIET_MS) or `ms` passed. */
static void quiesce(mg_grpc_server_t *s, int64_t ms)
{
    int64_t start = mono_ns();
    while (mono_ns() - start < ms * 1000000) {
        if (atomic_load_explicit(&s->active, memory_order_relaxed) == 0 &&
            mono_ns() - atomic_load_explicit(&s->last_event_ns, memory_order_relaxed) >=
                (int64_t)QUIET_MS * 1000000)
            return;
        struct timespec nap = {0, 5000000};
        nanosleep(&nap, NULL);
    }
}

void mg_grpc_drain(mg_grpc_server_t *s, int drain_ms)
{
    if (s == NULL || atomic_exchange(&s->stopping, true))
        return;
    s->arrivals_ns = (int64_t)(drain_ms > 0 ? drain_ms : 0) * 1000000 / 2;
    /*
     * gRPC's shutdown cancels every call it has received but not yet matched to a request (a
     * thread keeps one per method outstanding). Ask for many more first, so every call
     * received by the shutdown below is taken, and so answered.
     */
    for (int k = 0; k < s->nthreads; k++) {
        cq_thread_t *t = &s->threads[k];
        if (!t->started || (t->drain = calloc(NMETHODS * DRAIN_SLOTS, sizeof(slot_t))) == NULL)
            continue;
        for (size_t i = 0; i < NMETHODS * DRAIN_SLOTS; i++) {
            slot_t *sl = &t->drain[i];
            sl->kind = TAG_NEW_CALL;
            sl->t = t;
            sl->method = (int)(i / DRAIN_SLOTS);
            grpc_metadata_array_init(&sl->md);
            request_slot(sl, true);
        }
    }
    end_waiting_streams(s);
    s->drain_ns = mono_ns();
    mg_log(MG_LOG_INFO, "grpc", "draining calls_in_flight=%d",
           atomic_load_explicit(&s->active, memory_order_relaxed));
}

/*
 * gRPC reads the sockets only on threads waiting in an empty queue: a call a client sent before
 * the signal may still sit unread while every thread is busy with Runs and the calls already
 * queued, and the shutdown would cancel it. So the shutdown waits until every thread has been
 * waiting in its queue for QUIET_MS (nothing more has arrived), or half the drain's budget after
 * it began (clients that go on sending after the signal; the calls queued behind a long Run on
 * one thread can take seconds); then no new call is accepted (clients get GOAWAY) and the ones
 * taken are answered.
 */
static void shut_when_read(mg_grpc_server_t *s, bool now)
{
    if (s->shut)
        return;
    int64_t t = mono_ns();
    if (!now && t - s->drain_ns < s->arrivals_ns) {
        for (int k = 0; k < s->nthreads; k++) {
            int64_t since = atomic_load_explicit(&s->threads[k].wait_ns, memory_order_acquire);
            if (s->threads[k].started && (since == 0 || t - since < (int64_t)QUIET_MS * 1000000))
                return; /* busy, or only just back in its queue */
        }
    }
    s->shut = true;
    grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, s);
}

bool mg_grpc_drained(mg_grpc_server_t *s)
{
    if (s == NULL)
        return true;
    if (!s->drained && atomic_load(&s->stopping))
        shut_when_read(s, false);
    if (!s->drained && s->shut &&
        grpc_completion_queue_pluck(s->shutdown_cq, s, gpr_time_0(GPR_CLOCK_REALTIME), NULL).type ==
            GRPC_OP_COMPLETE)
        s->drained = true;
    return s->drained;
}

void mg_grpc_stop(mg_grpc_server_t *s, int drain_ms)
{
    if (s == NULL)
        return;
    int64_t start = mono_ns(), budget_ms = drain_ms > 0 ? drain_ms : 0;
    if (!atomic_load(&s->stopping)) {
        /* Not drained yet: first let the calls whose metadata still waits in the sockets
         * arrive (gRPC's shutdown would cancel them), for at most half the time. */
        quiesce(s, budget_ms / 2);
        mg_grpc_drain(s, (int)budget_ms);
    }
    shut_when_read(s, true);
    if (!s->drained) {
        int64_t left_ms = budget_ms - (mono_ns() - start) / 1000000;
        gpr_timespec until =
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                         gpr_time_from_millis(left_ms > 0 ? left_ms : 0, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_pluck(s->shutdown_cq, s, until, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            mg_log(MG_LOG_WARN, "grpc", "calls still running after %d ms; cancelling them",
                   drain_ms);
            grpc_server_cancel_all_calls(s->server);
            grpc_completion_queue_pluck(s->shutdown_cq, s, gpr_inf_future(GPR_CLOCK_REALTIME),
                                        NULL);
        }
        s->drained = true;
    }
    destroy(s);
}
