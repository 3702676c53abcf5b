#include "infer/session.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ONNX Runtime's C header has an enumerator of 1 << 31, which gcc's -Wpedantic rejects in C. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <onnxruntime_c_api.h>
#pragma GCC diagnostic pop

/*
 * Creating an OrtEnv makes one small allocation inside ONNX Runtime that it never frees
 * (14 bytes, once per process). LeakSanitizer is paused around that call alone: a
 * `leak:libonnxruntime.so` suppression would also hide leaked sessions and values, whose
 * allocation stacks are ORT frames too.
 */
#if defined(__SANITIZE_ADDRESS__)
#define MG_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define MG_LSAN 1
#endif
#endif
#ifdef MG_LSAN
#include <sanitizer/lsan_interface.h>
#define LSAN_PAUSE()  __lsan_disable()
#define LSAN_RESUME() __lsan_enable()
#else
#define LSAN_PAUSE()  ((void)0)
#define LSAN_RESUME() ((void)0)
#endif

/* Process-wide state, written only by mg_infer_env_init/deinit (start-up and shutdown). */
static const OrtApi *ort;
static OrtEnv *ort_env;
static OrtMemoryInfo *cpu_mem;  /* describes request memory handed to ORT without a copy */
static OrtAllocator *cpu_alloc; /* ORT's default allocator: owned by ORT, never released */
static OrtRunOptions *run_opts; /* shared by every Run without a deadline (ORT only reads it) */
static int run_log_level;       /* of run_opts, and of each thread's deadline run options */

/*
 * Deadlines. A Run with a deadline uses its thread's own run options (terminating one stops
 * only the Run that uses it) and is listed here while it runs; one watchdog thread sleeps
 * until the earliest deadline and sets the terminate flag of every overdue Run. ONNX Runtime
 * checks the flag between nodes, so the Run returns early with an error that is reported as
 * MG_ETIMEDOUT. Listing, unlisting, clearing and setting the flag all happen under `mu`, so
 * the flag is only ever set on a Run that is still going. The watchdog starts with the first
 * Run that has a deadline: a process that never sets one (the sandbox's zygote, which must
 * stay single-threaded to fork) never has the thread.
 */
typedef struct deadline_run {
    OrtRunOptions *ro;
    int64_t deadline_ns;
    int terminated;
    struct deadline_run *next, *prev;
} deadline_run_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    deadline_run_t *runs; /* Runs with a deadline in progress */
    pthread_t tid;
    int started, running, stop; /* started: key and condition made; running: the thread */
    pthread_key_t ro_key;       /* each thread's deadline run options, released at thread exit */
} watchdog = {.mu = PTHREAD_MUTEX_INITIALIZER};

#define NONE           SIZE_MAX /* "no index" in slot maps */
#define NAME_MAX_SHOWN 128      /* cap for a client-supplied name in a message */
/* A client-supplied name for "%.*s", cut to a length a message can hold. */
#define SHOWN(str) (int)((str).len < NAME_MAX_SHOWN ? (str).len : NAME_MAX_SHOWN), (str).ptr
#define SHAPE_TEXT 160 /* "[d0,...,d7]" with 8 full int64 dims */

struct mg_session {
    OrtSession *ort;
    size_t ninputs;
    size_t noutputs;
    mg_tensor_info_t *inputs; /* model order; names owned */
    mg_tensor_info_t *outputs;
    size_t *input_name_len; /* strlen of each name, for mg_str_t compares */
    size_t *output_name_len;
    const char **input_names; /* views of inputs[i].name, the array Run takes */
    const char **output_names;
    bool no_cpu_arena; /* built without ONNX Runtime's CPU arena: no allocator statistics */
    /* Reused Run values (see "reused Run values" below). */
    uint64_t id;            /* unique in the process: keys each thread's reused values */
    bool *reuse_in;         /* per input: a fixed row size, copied into a reused value */
    size_t reuse_row_bytes; /* bytes per row of the reused inputs and outputs */
    _Atomic bool reuse_out; /* outputs written into the previous Run's: cleared at a misfit */
};

typedef struct run_entry run_entry_t;

/*
 * What mg_session_run leaves in resp->owner: the output values holding tensor memory, and
 * the thread's reused values the Run used (the values are then that entry's, not the owner's).
 */
typedef struct run_owner {
    size_t n;
    run_entry_t *entry; /* held until the answer is released, or NULL */
    bool entry_values;  /* values[] belong to `entry` */
    OrtValue *values[];
} run_owner_t;

/* ---- OrtStatus: the one place it is consumed ---- */

/*
 * Copies ORT's message `msg` into `out` without what only its developers need: a stack
 * trace, and the source location and condition of a failed ORT_ENFORCE
 * ("<file>:<line> <signature> <cond> was false. <why>" keeps "<why>"), so the reason fits
 * in an mg_err_t.
 */
static void tidy_message(const char *msg, char *out, size_t cap)
{
    static const char enforce[] = " was false. ", status[] = "Status Message: ";
    const char *trace = strstr(msg, "\nStacktrace:");
    size_t len = trace != NULL ? (size_t)(trace - msg) : strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    const char *cond = memmem(msg, len, enforce, sizeof(enforce) - 1);
    if (cond == NULL) {
        snprintf(out, cap, "%.*s", (int)len, msg);
        return;
    }
    /* A kernel failure is "... running Add node. Name:'x' Status Message: <location> ...". */
    const char *loc = memmem(msg, (size_t)(cond - msg), status, sizeof(status) - 1);
    size_t keep = loc != NULL ? (size_t)(loc - msg) + sizeof(status) - 1 : 0;
    const char *why = cond + sizeof(enforce) - 1;
    snprintf(out, cap, "%.*s%.*s", (int)keep, msg, (int)(msg + len - why), why);
}

/*
 * Turns `st` into an MG_E* code: 0 for success (NULL), otherwise `code` with ORT's message
 * after `what` in `err`; the status is released either way. ORT's own codes do not say what
 * our callers need (INVALID_ARGUMENT is a bad model at load and a bad input at Run), so the
 * calling context picks the code.
 */
static int status_to_err(OrtStatus *st, int code, mg_err_t *err, const char *what)
{
    if (st == NULL)
        return 0;
    if (err != NULL) {
        char msg[sizeof(err->msg)];
        tidy_message(ort->GetErrorMessage(st), msg, sizeof(msg));
        mg_err_set(err, code, "%s: %s", what, msg);
    }
    ort->ReleaseStatus(st);
    return code;
}

/* ---- datatypes ---- */

static const ONNXTensorElementDataType dtype_to_ort[MG_DT_COUNT_] = {
    [MG_DT_INVALID] = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED,
    [MG_DT_BOOL] = ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL,
    [MG_DT_UINT8] = ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8,
    [MG_DT_UINT16] = ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16,
    [MG_DT_UINT32] = ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32,
    [MG_DT_UINT64] = ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64,
    [MG_DT_INT8] = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8,
    [MG_DT_INT16] = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16,
    [MG_DT_INT32] = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32,
    [MG_DT_INT64] = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64,
    [MG_DT_FP16] = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16,
    [MG_DT_FP32] = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
    [MG_DT_FP64] = ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE,
    [MG_DT_BYTES] = ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING,
};

/* Returns the KServe datatype of an ONNX element type, or MG_DT_INVALID when KServe has none. */
static mg_dtype_t dtype_from_ort(ONNXTensorElementDataType et)
{
    for (int i = 1; i < MG_DT_COUNT_; i++) {
        if (dtype_to_ort[i] == et)
            return (mg_dtype_t)i;
    }
    return MG_DT_INVALID;
}

/* ONNX's name of an element type, for messages about the ones we refuse. */
static const char *ort_elem_name(ONNXTensorElementDataType et)
{
    static const char *const names[] = {
        "UNDEFINED",      "FLOAT",      "UINT8",          "INT8",       "UINT16",   "INT16",
        "INT32",          "INT64",      "STRING",         "BOOL",       "FLOAT16",  "DOUBLE",
        "UINT32",         "UINT64",     "COMPLEX64",      "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
        "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4",      "INT4",     "FLOAT4E2M1",
        "UINT2",          "INT2",
    };
    if ((unsigned)et < sizeof(names) / sizeof(names[0]))
        return names[et];
    return "an unknown element type";
}

static const char *onnx_type_name(enum ONNXType t)
{
    switch (t) {
    case ONNX_TYPE_TENSOR: return "tensor";
    case ONNX_TYPE_SEQUENCE: return "sequence";
    case ONNX_TYPE_MAP: return "map";
    case ONNX_TYPE_OPAQUE: return "opaque value";
    case ONNX_TYPE_SPARSETENSOR: return "sparse tensor";
    case ONNX_TYPE_OPTIONAL: return "optional";
    default: return "value of unknown type";
    }
}

/* ---- reused Run values ---- */

/*
 * A Run that makes its input values and lets ONNX Runtime allocate its outputs pays several
 * mallocs and the CPU arena's lock for them; handing Run the values of an earlier Run instead
 * costs a digits Run at batch 1 about a fifth less (bench_ort_raw --prealloc). Each thread
 * keeps up to 32 entries (as many as the row counts joined Runs commonly have), each for one
 * session and one row count:
 *   - input values over buffers of the entry's own, the request's rows copied in (inputs of a
 *     fixed row size, BYTES excepted);
 *   - the output values ONNX Runtime allocated at the entry's first Run, which later Runs are
 *     given to write into (outputs of a fixed row size).
 * An answer views an entry's outputs (and, where a model passes an input through, its
 * inputs) until mg_session_response_release, which may run on another thread after this one
 * has started other Runs. So an entry is held from its Run to that release, and a held entry
 * is never used: such a Run makes its own values, as without entries. No answer's memory is
 * written while an answer views it.
 * An entry is counted once by its thread's table and once while held; the last to let go
 * frees it, so a thread may exit, or replace an entry, while an answer still holds it.
 */
enum {
    REUSE_ENTRIES = 32,         /* per thread: the least recently used one is replaced */
    REUSE_MAX_BYTES = 64 << 10, /* per entry: larger Runs make their own values */
};

struct run_entry {
    _Atomic int refs;
    uint64_t session_id;
    int64_t rows;
    uint64_t used; /* its table's clock at its last Run */
    size_t nin, nout;
    void **in_buf; /* nin: the reused inputs' buffers, or NULL */
    size_t *in_bytes;
    OrtValue **in;  /* nin: values over in_buf */
    OrtValue **out; /* nout: model order; NULL until a Run asks for that output */
};

typedef struct run_table {
    run_entry_t *e[REUSE_ENTRIES];
    uint64_t clock;
    uint64_t freed; /* sessions_freed when this table last looked */
} run_table_t;

static _Atomic uint64_t session_ids;    /* the last id given */
static _Atomic uint64_t sessions_freed; /* bumped by mg_session_free: entries may be stale */
static pthread_key_t table_key;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static bool table_key_ok;

static void entry_free(run_entry_t *e)
{
    for (size_t k = 0; k < e->nin; k++) {
        if (e->in[k] != NULL)
            ort->ReleaseValue(e->in[k]);
        free(e->in_buf[k]);
    }
    for (size_t k = 0; k < e->nout; k++) {
        if (e->out[k] != NULL)
            ort->ReleaseValue(e->out[k]);
    }
    free(e);
}

static void entry_unref(run_entry_t *e)
{
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        entry_free(e);
}

/* Lets go of every entry of `t` (those still held are freed by their answers). */
static void table_clear(run_table_t *t)
{
    for (int i = 0; i < REUSE_ENTRIES; i++) {
        if (t->e[i] != NULL)
            entry_unref(t->e[i]);
        t->e[i] = NULL;
    }
}

static void table_release(void *t)
{
    table_clear(t);
    free(t);
}

static void table_key_create(void)
{
    table_key_ok = pthread_key_create(&table_key, table_release) == 0;
}

/* This thread's table, made on first use; NULL when none can be. */
static run_table_t *thread_table(void)
{
    pthread_once(&table_once, table_key_create);
    if (!table_key_ok)
        return NULL;
    run_table_t *t = pthread_getspecific(table_key);
    if (t == NULL && (t = calloc(1, sizeof(*t))) != NULL &&
        pthread_setspecific(table_key, t) != 0) {
        free(t);
        t = NULL;
    }
    return t;
}

/* Frees the calling thread's entries (thread exit does it for the others). */
static void thread_table_drop(void)
{
    if (!table_key_ok)
        return;
    run_table_t *t = pthread_getspecific(table_key);
    if (t != NULL)
        table_clear(t);
}

/*
 * Whether every row of a tensor described by `info` has the same size, stored in *row: a
 * fixed-size datatype, all dims after the first known, at most REUSE_MAX_BYTES.
 */
static bool fixed_row(const mg_tensor_info_t *info, size_t *row)
{
    *row = mg_dtype_size(info->dtype);
    bool fixed = info->dtype != MG_DT_BYTES && info->ndim >= 1;
    for (int d = 1; fixed && d < info->ndim; d++)
        fixed = info->shape[d] > 0 && mg_mul_size(*row, (size_t)info->shape[d], row) == 0;
    return fixed && *row <= REUSE_MAX_BYTES;
}

/* Decides at load which inputs and outputs of `s` reused values can hold. */
static int plan_reuse(mg_session_t *s)
{
    s->id = atomic_fetch_add_explicit(&session_ids, 1, memory_order_relaxed) + 1;
    if ((s->reuse_in = calloc(s->ninputs ? s->ninputs : 1, sizeof(*s->reuse_in))) == NULL)
        return MG_ENOMEM;
    size_t row, in_bytes = 0, out_bytes = 0;
    for (size_t k = 0; k < s->ninputs; k++) {
        if ((s->reuse_in[k] = fixed_row(&s->inputs[k], &row)))
            in_bytes += row;
    }
    bool out = s->noutputs > 0;
    for (size_t k = 0; k < s->noutputs && out; k++) {
        out = fixed_row(&s->outputs[k], &row);
        out_bytes += row;
    }
    atomic_store_explicit(&s->reuse_out, out, memory_order_relaxed);
    s->reuse_row_bytes = in_bytes + (out ? out_bytes : 0);
    return 0;
}

/* The rows of `req`: the first dim its inputs share, or 0 when they do not (or have none). */
static int64_t request_rows(const mg_infer_request_t *req)
{
    if (req->ninputs == 0 || req->inputs[0].ndim < 1)
        return 0;
    int64_t rows = req->inputs[0].shape[0];
    for (size_t j = 1; j < req->ninputs; j++) {
        if (req->inputs[j].ndim < 1 || req->inputs[j].shape[0] != rows)
            return 0;
    }
    return rows > 0 ? rows : 0;
}

static run_entry_t *entry_new(const mg_session_t *s, int64_t rows)
{
    size_t nin = s->ninputs, nout = s->noutputs;
    size_t pointers = (2 * nin + nout) * sizeof(void *);
    run_entry_t *e = calloc(1, sizeof(*e) + pointers + nin * sizeof(size_t));
    if (e == NULL)
        return NULL;
    void **p = (void **)(e + 1);
    e->in_buf = p;
    e->in = (OrtValue **)(p + nin);
    e->out = (OrtValue **)(p + 2 * nin);
    e->in_bytes = (size_t *)(p + 2 * nin + nout);
    e->nin = nin;
    e->nout = nout;
    e->session_id = s->id;
    e->rows = rows;
    atomic_init(&e->refs, 1);
    return e;
}

/*
 * The calling thread's entry for `s` at `rows`, held for this Run and its answer; NULL when
 * the session reuses nothing, the Run is too large or the entry is still held.
 */
static run_entry_t *entry_take(const mg_session_t *s, int64_t rows)
{
    if (s->reuse_row_bytes == 0 || rows <= 0 ||
        (uint64_t)rows > REUSE_MAX_BYTES / s->reuse_row_bytes)
        return NULL;
    run_table_t *t = thread_table();
    if (t == NULL)
        return NULL;
    uint64_t freed = atomic_load_explicit(&sessions_freed, memory_order_relaxed);
    if (freed != t->freed) { /* a session went: its entries would only hold memory */
        table_clear(t);
        t->freed = freed;
    }
    int slot = 0;
    run_entry_t *e = NULL;
    for (int i = 0; i < REUSE_ENTRIES && e == NULL; i++) {
        run_entry_t *x = t->e[i];
        if (x != NULL && x->session_id == s->id && x->rows == rows)
            e = x;
        else if (x == NULL || (t->e[slot] != NULL && x->used < t->e[slot]->used))
            slot = i;
    }
    if (e == NULL) {
        if ((e = entry_new(s, rows)) == NULL)
            return NULL;
        if (t->e[slot] != NULL)
            entry_unref(t->e[slot]);
        t->e[slot] = e;
    } else if (atomic_load_explicit(&e->refs, memory_order_acquire) != 1) {
        return NULL; /* still held (acquire: once free, its last answer has read all it will) */
    }
    atomic_store_explicit(&e->refs, 2, memory_order_relaxed);
    e->used = ++t->clock;
    return e;
}

/*
 * Input `k` of a Run that holds `e`: request tensor `t` copied into the entry's value, made
 * on first use. Returns 0 and the value in `*out` (NULL: make one as without entries), or an
 * error.
 */
static int entry_input(run_entry_t *e, size_t k, const mg_tensor_t *t, OrtValue **out,
                       mg_err_t *err)
{
    *out = NULL;
    if (e->in[k] != NULL && e->in_bytes[k] != t->nbytes)
        return 0; /* not the shape the entry was made for (validation keeps this from happening) */
    if (e->in[k] == NULL) {
        /* A fixed row size and the entry's rows: every later request here has this shape. */
        size_t size = (t->nbytes + 63) & ~(size_t)63;
        if ((e->in_buf[k] = aligned_alloc(64, size ? size : 64)) == NULL)
            return mg_err_set(err, MG_ENOMEM, "input '%.*s': out of memory", SHOWN(t->name));
        int rc = status_to_err(
            ort->CreateTensorWithDataAsOrtValue(cpu_mem, e->in_buf[k], t->nbytes, t->shape,
                                                (size_t)t->ndim, dtype_to_ort[t->dtype], &e->in[k]),
            MG_ERUNTIME, err, "input");
        if (rc != 0) {
            free(e->in_buf[k]);
            e->in_buf[k] = NULL;
            e->in[k] = NULL;
            return rc;
        }
        e->in_bytes[k] = t->nbytes;
    }
    if (t->nbytes != 0)
        memcpy(e->in_buf[k], t->data, t->nbytes);
    *out = e->in[k];
    return 0;
}

/* ---- environment ---- */

static int create_env(OrtLoggingLevel level, const OrtThreadingOptions *tp, OrtEnv **env,
                      mg_err_t *err)
{
    LSAN_PAUSE();
    OrtStatus *st = ort->CreateEnvWithGlobalThreadPools(level, "modelgate", tp, env);
    LSAN_RESUME();
    return status_to_err(st, MG_ERUNTIME, err, "onnxruntime");
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void release_thread_run_options(void *ro)
{
    if (ort != NULL)
        ort->ReleaseRunOptions(ro);
}

/* Sleeps until the earliest deadline, terminates every overdue Run, and again. */
static void *watchdog_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&watchdog.mu);
    while (!watchdog.stop) {
        int64_t now = now_ns(), next = INT64_MAX;
        for (deadline_run_t *r = watchdog.runs; r != NULL; r = r->next) {
            if (r->terminated)
                continue;
            if (r->deadline_ns <= now) {
                OrtStatus *st = ort->RunOptionsSetTerminate(r->ro);
                if (st != NULL)
                    ort->ReleaseStatus(st);
                r->terminated = 1;
            } else if (r->deadline_ns < next) {
                next = r->deadline_ns;
            }
        }
        if (next == INT64_MAX) {
            pthread_cond_wait(&watchdog.wake, &watchdog.mu);
        } else {
            struct timespec ts = {(time_t)(next / 1000000000), (long)(next % 1000000000)};
            pthread_cond_timedwait(&watchdog.wake, &watchdog.mu, &ts);
        }
    }
    pthread_mutex_unlock(&watchdog.mu);
    return NULL;
}

static int watchdog_start(mg_err_t *err)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&watchdog.wake, &ca);
    pthread_condattr_destroy(&ca);
    watchdog.stop = 0;
    watchdog.runs = NULL;
    if (pthread_key_create(&watchdog.ro_key, release_thread_run_options) != 0) {
        pthread_cond_destroy(&watchdog.wake);
        return mg_err_set(err, MG_ERUNTIME, "onnxruntime: cannot create the deadline watchdog");
    }
    watchdog.started = 1;
    return 0;
}

static void watchdog_stop(void)
{
    if (!watchdog.started)
        return;
    pthread_mutex_lock(&watchdog.mu);
    watchdog.stop = 1;
    pthread_cond_signal(&watchdog.wake);
    int running = watchdog.running;
    watchdog.running = 0;
    pthread_mutex_unlock(&watchdog.mu);
    if (running)
        pthread_join(watchdog.tid, NULL);
    /* The calling thread's options: the key's destructor runs only when a thread exits. */
    void *ro = pthread_getspecific(watchdog.ro_key);
    if (ro != NULL) {
        ort->ReleaseRunOptions(ro);
        pthread_setspecific(watchdog.ro_key, NULL);
    }
    pthread_key_delete(watchdog.ro_key);
    pthread_cond_destroy(&watchdog.wake);
    watchdog.started = 0;
}

/* This thread's run options for Runs with a deadline, created on first use. NULL: none. */
static OrtRunOptions *thread_run_options(void)
{
    OrtRunOptions *ro = pthread_getspecific(watchdog.ro_key);
    if (ro != NULL)
        return ro;
    if (status_to_err(ort->CreateRunOptions(&ro), MG_ERUNTIME, NULL, "") != 0)
        return NULL;
    if (status_to_err(ort->RunOptionsSetRunLogSeverityLevel(ro, run_log_level), MG_ERUNTIME, NULL,
                      "") != 0 ||
        pthread_setspecific(watchdog.ro_key, ro) != 0) {
        ort->ReleaseRunOptions(ro);
        return NULL;
    }
    return ro;
}

/*
 * Lists a Run with a deadline (its flag cleared; the watchdog started first if needed) and
 * wakes the watchdog when it is the earliest. Returns 0 or MG_ERUNTIME.
 */
static int deadline_enter(deadline_run_t *r, mg_err_t *err)
{
    pthread_mutex_lock(&watchdog.mu);
    if (!watchdog.running) {
        if (pthread_create(&watchdog.tid, NULL, watchdog_main, NULL) != 0) {
            pthread_mutex_unlock(&watchdog.mu);
            return mg_err_set(err, MG_ERUNTIME, "onnxruntime: cannot start the deadline watchdog");
        }
        watchdog.running = 1;
    }
    OrtStatus *st = ort->RunOptionsUnsetTerminate(r->ro);
    if (st != NULL)
        ort->ReleaseStatus(st);
    r->terminated = 0;
    r->prev = NULL;
    r->next = watchdog.runs;
    int earliest = 1;
    for (deadline_run_t *o = watchdog.runs; o != NULL && earliest; o = o->next)
        earliest = o->terminated || r->deadline_ns < o->deadline_ns;
    if (watchdog.runs != NULL)
        watchdog.runs->prev = r;
    watchdog.runs = r;
    if (earliest)
        pthread_cond_signal(&watchdog.wake);
    pthread_mutex_unlock(&watchdog.mu);
    return 0;
}

/* Unlists it; returns whether the watchdog terminated it. */
static int deadline_leave(deadline_run_t *r)
{
    pthread_mutex_lock(&watchdog.mu);
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        watchdog.runs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    int terminated = r->terminated;
    pthread_mutex_unlock(&watchdog.mu);
    return terminated;
}

int mg_infer_env_init(const mg_infer_env_opts_t *opts, mg_err_t *err)
{
    mg_infer_env_opts_t o = {0};
    if (opts != NULL)
        o = *opts;
    if (ort_env != NULL)
        return mg_err_set(err, MG_EEXIST, "onnxruntime: environment already initialised");
    if (o.intra_op_threads < 0 || o.inter_op_threads < 0)
        return mg_err_set(err, MG_EINVAL, "onnxruntime: thread counts must not be negative");
    if (o.log_level < 0 || o.log_level > ORT_LOGGING_LEVEL_FATAL)
        return mg_err_set(err, MG_EINVAL, "onnxruntime: log level %d is not 0..4", o.log_level);
    OrtLoggingLevel level =
        o.log_level == 0 ? ORT_LOGGING_LEVEL_ERROR : (OrtLoggingLevel)o.log_level;

    const OrtApiBase *base = OrtGetApiBase();
    ort = base->GetApi(ORT_API_VERSION);
    if (ort == NULL)
        return mg_err_set(err, MG_ERUNTIME, "onnxruntime: library %s lacks C API version %d",
                          base->GetVersionString(), ORT_API_VERSION);

    OrtThreadingOptions *tp = NULL;
    OrtEnv *env = NULL;
    OrtMemoryInfo *mem = NULL;
    OrtAllocator *alloc = NULL;
    OrtRunOptions *ro = NULL;
    /*
     * A failed Run's message goes back to the caller in mg_err_t; ORT logging it to stderr as
     * well would let bad requests flood the log. Only a level below error is passed on.
     */
    int run_level = level >= ORT_LOGGING_LEVEL_ERROR ? ORT_LOGGING_LEVEL_FATAL : (int)level;
    int rc;
    if ((rc = status_to_err(ort->CreateThreadingOptions(&tp), MG_ERUNTIME, err, "onnxruntime")) ||
        /* 0 lets ORT pick the number of physical cores. */
        (rc = status_to_err(ort->SetGlobalIntraOpNumThreads(tp, o.intra_op_threads), MG_ERUNTIME,
                            err, "onnxruntime")) ||
        (rc = status_to_err(
             ort->SetGlobalInterOpNumThreads(tp, o.inter_op_threads > 0 ? o.inter_op_threads : 1),
             MG_ERUNTIME, err, "onnxruntime")) ||
        /* Idle pool threads must sleep, not spin: the event loops share these cores. */
        (rc = status_to_err(ort->SetGlobalSpinControl(tp, 0), MG_ERUNTIME, err, "onnxruntime")) ||
        (rc = create_env(level, tp, &env, err)) ||
        (rc = status_to_err(ort->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &mem),
                            MG_ERUNTIME, err, "onnxruntime")) ||
        (rc = status_to_err(ort->GetAllocatorWithDefaultOptions(&alloc), MG_ERUNTIME, err,
                            "onnxruntime")) ||
        (rc = status_to_err(ort->CreateRunOptions(&ro), MG_ERUNTIME, err, "onnxruntime")) ||
        (rc = status_to_err(ort->RunOptionsSetRunLogSeverityLevel(ro, run_level), MG_ERUNTIME, err,
                            "onnxruntime")))
        goto fail;
    ort->ReleaseThreadingOptions(tp);
    ort_env = env;
    cpu_mem = mem;
    cpu_alloc = alloc;
    run_opts = ro;
    run_log_level = run_level;
    if ((rc = watchdog_start(err)) != 0) {
        mg_infer_env_deinit();
        return rc;
    }
    return 0;

fail:
    ort->ReleaseRunOptions(ro);
    ort->ReleaseMemoryInfo(mem);
    ort->ReleaseEnv(env);
    ort->ReleaseThreadingOptions(tp);
    return rc;
}

void mg_infer_env_deinit(void)
{
    if (ort_env == NULL)
        return;
    watchdog_stop();
    thread_table_drop();
    ort->ReleaseRunOptions(run_opts);
    ort->ReleaseMemoryInfo(cpu_mem);
    ort->ReleaseEnv(ort_env);
    run_opts = NULL;
    cpu_mem = NULL;
    cpu_alloc = NULL;
    ort_env = NULL;
}

const char *mg_infer_runtime_version(void)
{
    return OrtGetApiBase()->GetVersionString();
}

/* ---- sessions ---- */

/* Fills `info` (whose name is set) from an input's or output's type; refuses what KServe lacks. */
static int describe(const OrtTypeInfo *ti, mg_tensor_info_t *info, const char *kind, mg_err_t *err)
{
    enum ONNXType type;
    const OrtTensorTypeAndShapeInfo *tsi;
    ONNXTensorElementDataType et;
    size_t nd;
    int rc;
    if ((rc = status_to_err(ort->GetOnnxTypeFromTypeInfo(ti, &type), MG_EMODEL, err, "model")))
        return rc;
    if (type != ONNX_TYPE_TENSOR)
        return mg_err_set(err, MG_EMODEL, "%s '%s' is a %s, not a tensor", kind, info->name,
                          onnx_type_name(type));
    if ((rc = status_to_err(ort->CastTypeInfoToTensorInfo(ti, &tsi), MG_EMODEL, err, "model")) ||
        (rc = status_to_err(ort->GetTensorElementType(tsi, &et), MG_EMODEL, err, "model")) ||
        (rc = status_to_err(ort->GetDimensionsCount(tsi, &nd), MG_EMODEL, err, "model")))
        return rc;
    info->dtype = dtype_from_ort(et);
    if (info->dtype == MG_DT_INVALID)
        return mg_err_set(err, MG_EMODEL,
                          "%s '%s' has element type %s, which KServe has no datatype for", kind,
                          info->name, ort_elem_name(et));
    if (nd > MG_TENSOR_MAX_DIMS)
        return mg_err_set(err, MG_EMODEL, "%s '%s' has %zu dims, more than the %d supported", kind,
                          info->name, nd, MG_TENSOR_MAX_DIMS);
    if ((rc = status_to_err(ort->GetDimensions(tsi, info->shape, nd), MG_EMODEL, err, "model")))
        return rc;
    info->ndim = (int)nd;
    for (size_t d = 0; d < nd; d++) {
        if (info->shape[d] < 0) /* symbolic or unknown */
            info->shape[d] = -1;
    }
    return 0;
}

/* Reads the names and types of every input (`output` 0) or output (1) into `s`. */
static int read_metadata(mg_session_t *s, int output, mg_err_t *err)
{
    const char *kind = output ? "output" : "input";
    size_t n;
    int rc = status_to_err(output ? ort->SessionGetOutputCount(s->ort, &n)
                                  : ort->SessionGetInputCount(s->ort, &n),
                           MG_EMODEL, err, "model");
    if (rc)
        return rc;

    /* At least one element each, so a model without inputs still gets valid arrays. */
    mg_tensor_info_t *infos = calloc(n ? n : 1, sizeof(*infos));
    size_t *lens = calloc(n ? n : 1, sizeof(*lens));
    const char **names = calloc(n ? n : 1, sizeof(*names));
    if (output) {
        s->outputs = infos, s->output_name_len = lens, s->output_names = names;
    } else {
        s->inputs = infos, s->input_name_len = lens, s->input_names = names;
    }
    if (infos == NULL || lens == NULL || names == NULL)
        return mg_err_set(err, MG_ENOMEM, "model: out of memory reading %s metadata", kind);

    for (size_t i = 0; i < n; i++) {
        char *name = NULL;
        OrtTypeInfo *ti = NULL;
        rc = status_to_err(output ? ort->SessionGetOutputName(s->ort, i, cpu_alloc, &name)
                                  : ort->SessionGetInputName(s->ort, i, cpu_alloc, &name),
                           MG_EMODEL, err, "model");
        if (rc)
            return rc;
        infos[i].name = strdup(name);
        rc = status_to_err(ort->AllocatorFree(cpu_alloc, name), MG_ERUNTIME, err, "model");
        if (rc)
            return rc;
        if (infos[i].name == NULL)
            return mg_err_set(err, MG_ENOMEM, "model: out of memory reading %s metadata", kind);
        lens[i] = strlen(infos[i].name);
        names[i] = infos[i].name;
        if (output)
            s->noutputs = i + 1;
        else
            s->ninputs = i + 1;

        rc = status_to_err(output ? ort->SessionGetOutputTypeInfo(s->ort, i, &ti)
                                  : ort->SessionGetInputTypeInfo(s->ort, i, &ti),
                           MG_EMODEL, err, "model");
        if (rc)
            return rc;
        rc = describe(ti, &infos[i], kind, err);
        ort->ReleaseTypeInfo(ti);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * Hands the external-data files to ONNX Runtime from memory (the bytes the loader hashed) and
 * points its external-data folder at a path that cannot exist, so a reference the caller did
 * not provide fails the load instead of reading the disk relative to the working directory.
 */
static int add_external(OrtSessionOptions *so, const mg_session_opts_t *o, mg_err_t *err)
{
    int rc = status_to_err(
        ort->AddSessionConfigEntry(so, "session.model_external_initializers_file_folder_path",
                                   "/nonexistent/modelgate-external-data-comes-from-memory"),
        MG_ERUNTIME, err, "session options");
    if (rc || o->nexternal == 0)
        return rc;
    const char **names = calloc(o->nexternal, sizeof(*names));
    char **bufs = calloc(o->nexternal, sizeof(*bufs));
    size_t *lens = calloc(o->nexternal, sizeof(*lens));
    if (names == NULL || bufs == NULL || lens == NULL) {
        rc = mg_err_set(err, MG_ENOMEM, "session options: out of memory");
    } else {
        for (size_t i = 0; i < o->nexternal; i++) {
            names[i] = o->external[i].name;
            bufs[i] = (char *)o->external[i].bytes; /* ORT copies; it never writes */
            lens[i] = o->external[i].len;
        }
        rc = status_to_err(
            ort->AddExternalInitializersFromFilesInMemory(so, names, bufs, lens, o->nexternal),
            MG_EMODEL, err, "external data");
    }
    free(names);
    free(bufs);
    free(lens);
    return rc;
}

/* Session options: shared global pools by default, or an own non-spinning pool. */
static int build_options(const mg_session_opts_t *o, OrtSessionOptions **out, mg_err_t *err)
{
    OrtSessionOptions *so = NULL;
    int rc;
    if ((rc = status_to_err(ort->CreateSessionOptions(&so), MG_ERUNTIME, err, "session options")))
        return rc;
    if ((rc = status_to_err(ort->SetSessionGraphOptimizationLevel(so, ORT_ENABLE_ALL), MG_ERUNTIME,
                            err, "session options")) ||
        (rc = status_to_err(ort->SetSessionExecutionMode(so, ORT_SEQUENTIAL), MG_ERUNTIME, err,
                            "session options")))
        goto fail;
    if (o->intra_op_threads > 0) {
        int inter = o->inter_op_threads > 0 ? o->inter_op_threads : 1;
        /* Keys as in onnxruntime_session_options_config_keys.h. */
        if ((rc = status_to_err(ort->SetIntraOpNumThreads(so, o->intra_op_threads), MG_ERUNTIME,
                                err, "session options")) ||
            (rc = status_to_err(ort->SetInterOpNumThreads(so, inter), MG_ERUNTIME, err,
                                "session options")) ||
            (rc = status_to_err(
                 ort->AddSessionConfigEntry(so, "session.intra_op.allow_spinning", "0"),
                 MG_ERUNTIME, err, "session options")) ||
            (rc = status_to_err(
                 ort->AddSessionConfigEntry(so, "session.inter_op.allow_spinning", "0"),
                 MG_ERUNTIME, err, "session options")))
            goto fail;
    } else if ((rc = status_to_err(ort->DisablePerSessionThreads(so), MG_ERUNTIME, err,
                                   "session options"))) {
        goto fail;
    }
    if (o->no_cpu_arena &&
        (rc = status_to_err(ort->DisableCpuMemArena(so), MG_ERUNTIME, err, "session options")))
        goto fail;
    if ((rc = add_external(so, o, err)))
        goto fail;
    *out = so;
    return 0;

fail:
    ort->ReleaseSessionOptions(so);
    return rc;
}

int mg_session_new(mg_session_t **out, const void *bytes, size_t len, const mg_session_opts_t *opts,
                   mg_err_t *err)
{
    mg_session_opts_t o = {0};
    if (opts != NULL)
        o = *opts;
    if (ort_env == NULL)
        return mg_err_set(err, MG_EINVAL, "onnxruntime: environment not initialised");
    if (o.intra_op_threads < 0 || o.inter_op_threads < 0)
        return mg_err_set(err, MG_EINVAL, "session: thread counts must not be negative");
    if (bytes == NULL || len == 0)
        return mg_err_set(err, MG_EMODEL, "model: empty model file");

    OrtSessionOptions *so = NULL;
    int rc;
    mg_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mg_err_set(err, MG_ENOMEM, "session: out of memory");
    s->no_cpu_arena = o.no_cpu_arena;
    if ((rc = build_options(&o, &so, err)))
        goto fail;
    rc = status_to_err(ort->CreateSessionFromArray(ort_env, bytes, len, so, &s->ort), MG_EMODEL,
                       err, "model");
    ort->ReleaseSessionOptions(so);
    if (rc || (rc = read_metadata(s, 0, err)) || (rc = read_metadata(s, 1, err)))
        goto fail;
    if (plan_reuse(s) != 0) {
        rc = mg_err_set(err, MG_ENOMEM, "session: out of memory");
        goto fail;
    }
    *out = s;
    return 0;

fail:
    mg_session_free(s);
    return rc;
}

void mg_session_free(mg_session_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ninputs; i++)
        free(s->inputs[i].name);
    for (size_t i = 0; i < s->noutputs; i++)
        free(s->outputs[i].name);
    free(s->inputs);
    free(s->outputs);
    free(s->input_name_len);
    free(s->output_name_len);
    free(s->input_names);
    free(s->output_names);
    free(s->reuse_in);
    if (s->ort != NULL)
        ort->ReleaseSession(s->ort);
    atomic_fetch_add_explicit(&sessions_freed, 1, memory_order_relaxed);
    free(s);
}

size_t mg_session_ninputs(const mg_session_t *s)
{
    return s->ninputs;
}

size_t mg_session_noutputs(const mg_session_t *s)
{
    return s->noutputs;
}

const mg_tensor_info_t *mg_session_input(const mg_session_t *s, size_t i)
{
    return i < s->ninputs ? &s->inputs[i] : NULL;
}

const mg_tensor_info_t *mg_session_inputs(const mg_session_t *s)
{
    return s->inputs;
}

const mg_tensor_info_t *mg_session_outputs(const mg_session_t *s)
{
    return s->outputs;
}

const mg_tensor_info_t *mg_session_output(const mg_session_t *s, size_t i)
{
    return i < s->noutputs ? &s->outputs[i] : NULL;
}

/* Index of the info named `name` among `n`, or NONE. */
static size_t find_info(const mg_tensor_info_t *infos, const size_t *lens, size_t n, mg_str_t name)
{
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == name.len && memcmp(infos[i].name, name.ptr, name.len) == 0)
            return i;
    }
    return NONE;
}

const mg_tensor_info_t *mg_session_find_input(const mg_session_t *s, mg_str_t name)
{
    size_t i = find_info(s->inputs, s->input_name_len, s->ninputs, name);
    return i == NONE ? NULL : &s->inputs[i];
}

/* ---- validation ---- */

/* Checks one request tensor against the model input `info` it is named after. */
static int check_tensor(const mg_tensor_info_t *info, const mg_tensor_t *t, mg_err_t *err)
{
    char shape[SHAPE_TEXT];
    const char *name = info->name;
    if (t->dtype != info->dtype)
        return mg_err_set(err, MG_EDTYPE, "input '%s': expected datatype %s, got %s", name,
                          mg_dtype_name(info->dtype), mg_dtype_name(t->dtype));
    if (t->ndim < 0 || t->ndim > MG_TENSOR_MAX_DIMS)
        return mg_err_set(err, MG_ESHAPE, "input '%s': expected %d dims, got %d", name, info->ndim,
                          t->ndim);
    if (t->ndim != info->ndim) {
        mg_shape_format(t->shape, t->ndim, shape, sizeof(shape));
        return mg_err_set(err, MG_ESHAPE, "input '%s': expected %d dims, got %d (shape %s)", name,
                          info->ndim, t->ndim, shape);
    }
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] >= 0 && (info->shape[d] < 0 || t->shape[d] == info->shape[d]))
            continue;
        mg_shape_format(t->shape, t->ndim, shape, sizeof(shape));
        if (t->shape[d] < 0)
            return mg_err_set(err, MG_ESHAPE, "input '%s': dim %d is negative (shape %s)", name, d,
                              shape);
        return mg_err_set(err, MG_ESHAPE, "input '%s': dim %d must be %lld, got %lld (shape %s)",
                          name, d, (long long)info->shape[d], (long long)t->shape[d], shape);
    }

    /* Defence in depth: the decoder should already have made data agree with the shape. */
    size_t esize = mg_dtype_size(t->dtype);
    size_t count;
    if (mg_shape_count(t->shape, t->ndim, esize, &count) != 0) {
        mg_shape_format(t->shape, t->ndim, shape, sizeof(shape));
        return mg_err_set(err, MG_ERANGE, "input '%s': shape %s is too large", name, shape);
    }
    if (count != t->count) {
        mg_shape_format(t->shape, t->ndim, shape, sizeof(shape));
        return mg_err_set(err, MG_ESHAPE, "input '%s': shape %s needs %zu elements, got %zu", name,
                          shape, count, t->count);
    }
    if (esize != 0 && t->nbytes != count * esize)
        return mg_err_set(err, MG_ESHAPE, "input '%s': %zu elements of %s need %zu bytes, got %zu",
                          name, count, mg_dtype_name(t->dtype), count * esize, t->nbytes);
    if (count != 0 && t->data == NULL)
        return mg_err_set(err, MG_EINVAL, "input '%s': no data", name);
    return 0;
}

/*
 * Checks the request's inputs; on success slot[k] is the request index of model input k.
 * `slot` holds s->ninputs entries.
 */
static int check_inputs(const mg_session_t *s, const mg_infer_request_t *req, size_t *slot,
                        mg_err_t *err)
{
    if (req->ninputs != 0 && req->inputs == NULL)
        return mg_err_set(err, MG_EINVAL, "request: inputs missing");
    for (size_t k = 0; k < s->ninputs; k++)
        slot[k] = NONE;
    for (size_t j = 0; j < req->ninputs; j++) {
        const mg_tensor_t *t = &req->inputs[j];
        size_t k = find_info(s->inputs, s->input_name_len, s->ninputs, t->name);
        if (k == NONE)
            return mg_err_set(err, MG_ENOENT, "unknown input '%.*s'", SHOWN(t->name));
        if (slot[k] != NONE)
            return mg_err_set(err, MG_EINVAL, "input '%s' given twice", s->inputs[k].name);
        int rc = check_tensor(&s->inputs[k], t, err);
        if (rc)
            return rc;
        slot[k] = j;
    }
    /* Every request input is known and distinct, so fewer of them means one is missing. */
    if (req->ninputs < s->ninputs) {
        for (size_t k = 0; k < s->ninputs; k++) {
            if (slot[k] == NONE)
                return mg_err_set(err, MG_ENOENT, "missing input '%s'", s->inputs[k].name);
        }
    }
    return 0;
}

/* Checks the requested outputs; on success idx[j] is the model output index of request output j. */
static int check_outputs(const mg_session_t *s, const mg_infer_request_t *req, size_t *idx,
                         mg_err_t *err)
{
    if (req->noutputs != 0 && req->outputs == NULL)
        return mg_err_set(err, MG_EINVAL, "request: outputs missing");
    for (size_t j = 0; j < req->noutputs; j++) {
        size_t k = find_info(s->outputs, s->output_name_len, s->noutputs, req->outputs[j].name);
        if (k == NONE)
            return mg_err_set(err, MG_ENOENT, "unknown output '%.*s'", SHOWN(req->outputs[j].name));
        for (size_t i = 0; i < j; i++) {
            if (idx[i] == k)
                return mg_err_set(err, MG_EINVAL, "output '%s' requested twice",
                                  s->outputs[k].name);
        }
        idx[j] = k;
    }
    return 0;
}

int mg_session_validate(const mg_session_t *s, const mg_infer_request_t *req, mg_err_t *err)
{
    /* Not the hot path (mg_session_run uses the arena); the stack covers ordinary models. */
    size_t stack_slot[16], stack_idx[16];
    size_t *slot = s->ninputs > 16 ? calloc(s->ninputs, sizeof(*slot)) : stack_slot;
    size_t *idx = req->noutputs > 16 ? calloc(req->noutputs, sizeof(*idx)) : stack_idx;
    int rc;
    if (slot == NULL || idx == NULL)
        rc = mg_err_set(err, MG_ENOMEM, "request: out of memory");
    else if ((rc = check_inputs(s, req, slot, err)) == 0)
        rc = check_outputs(s, req, idx, err);
    if (slot != stack_slot)
        free(slot);
    if (idx != stack_idx)
        free(idx);
    return rc;
}

/* ---- run ---- */

/* Returns `n` elements of `size` bytes from `a`, or NULL (overflow or out of memory). */
static void *arena_array(mg_arena_t *a, size_t n, size_t size)
{
    size_t bytes;
    if (mg_mul_size(n, size, &bytes) != 0)
        return NULL;
    return mg_arena_alloc(a, bytes);
}

/* Wraps request tensor `t` in an OrtValue: fixed-size data without a copy, BYTES element-wise. */
static int make_input(const mg_tensor_t *t, mg_arena_t *a, OrtValue **out, mg_err_t *err)
{
    int rc;
    if (t->dtype == MG_DT_BYTES) {
        rc = status_to_err(ort->CreateTensorAsOrtValue(cpu_alloc, t->shape, (size_t)t->ndim,
                                                       ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING, out),
                           MG_ERUNTIME, err, "input");
        const mg_str_t *el = t->data;
        for (size_t i = 0; rc == 0 && i < t->count; i++) {
            /* A sized buffer rather than FillStringTensorElement: elements may hold NUL bytes. */
            char *dst;
            rc = status_to_err(ort->GetResizedStringTensorElementBuffer(*out, i, el[i].len, &dst),
                               MG_ERUNTIME, err, "input");
            if (rc == 0 && el[i].len != 0)
                memcpy(dst, el[i].ptr, el[i].len);
        }
        return rc;
    }

    static _Alignas(16) unsigned char no_data[16];
    size_t esize = mg_dtype_size(t->dtype);
    void *data = t->data;
    if (data == NULL) {
        data = no_data; /* an empty tensor; ORT wants a pointer all the same */
    } else if ((uintptr_t)data % esize != 0) {
        /* The decoder aligns binary data; should one not, copy once rather than misread. */
        if ((data = mg_arena_alloc(a, t->nbytes)) == NULL)
            return mg_err_set(err, MG_ENOMEM, "input '%.*s': out of memory", SHOWN(t->name));
        memcpy(data, t->data, t->nbytes);
    }
    return status_to_err(ort->CreateTensorWithDataAsOrtValue(cpu_mem, data, t->nbytes, t->shape,
                                                             (size_t)t->ndim,
                                                             dtype_to_ort[t->dtype], out),
                         MG_ERUNTIME, err, "input");
}

/*
 * Describes output value `v` (model output `info`) in `t`. Fixed-size data stays in `v`;
 * BYTES elements are copied to `a`.
 */
static int read_output(OrtValue *v, const mg_tensor_info_t *info, size_t name_len, mg_tensor_t *t,
                       mg_arena_t *a, mg_err_t *err)
{
    ONNXTensorElementDataType et;
    const int64_t *dims;
    size_t nd, count;
    int rc = status_to_err(ort->GetTensorElementTypeAndShapeDataReference(v, &et, &dims, &nd),
                           MG_ERUNTIME, err, "output");
    if (rc)
        return rc;
    mg_dtype_t dt = dtype_from_ort(et);
    if (dt != info->dtype)
        return mg_err_set(err, MG_ERUNTIME, "output '%s': expected element type %s, got %s",
                          info->name, mg_dtype_name(info->dtype), ort_elem_name(et));
    if (nd > MG_TENSOR_MAX_DIMS)
        return mg_err_set(err, MG_ERUNTIME, "output '%s': %zu dims, more than the %d supported",
                          info->name, nd, MG_TENSOR_MAX_DIMS);
    size_t esize = mg_dtype_size(dt);
    if (nd != 0)
        memcpy(t->shape, dims, nd * sizeof(dims[0]));
    if (mg_shape_count(t->shape, (int)nd, esize, &count) != 0)
        return mg_err_set(err, MG_ERUNTIME, "output '%s': bad shape", info->name);
    t->name = (mg_str_t){info->name, name_len};
    t->dtype = dt;
    t->ndim = (int)nd;
    t->count = count;

    if (dt != MG_DT_BYTES) {
        void *p = NULL;
        if (count != 0 &&
            (rc = status_to_err(ort->GetTensorMutableData(v, &p), MG_ERUNTIME, err, "output")))
            return rc;
        t->data = p;
        t->nbytes = count * esize;
        return 0;
    }

    /* BYTES: all strings in one copy, then a view per element. nbytes is their total length. */
    size_t total = 0;
    t->data = NULL;
    t->nbytes = 0;
    if (count == 0)
        return 0;
    if ((rc = status_to_err(ort->GetStringTensorDataLength(v, &total), MG_ERUNTIME, err, "output")))
        return rc;
    mg_str_t *el = arena_array(a, count, sizeof(*el));
    size_t *off = arena_array(a, count, sizeof(*off));
    char *buf = mg_arena_alloc(a, total);
    if (el == NULL || off == NULL || buf == NULL)
        return mg_err_set(err, MG_ENOMEM, "output '%s': out of memory", info->name);
    if ((rc = status_to_err(ort->GetStringTensorContent(v, buf, total, off, count), MG_ERUNTIME,
                            err, "output")))
        return rc;
    for (size_t i = 0; i < count; i++) {
        size_t end = i + 1 < count ? off[i + 1] : total;
        el[i] = (mg_str_t){buf + off[i], end - off[i]};
    }
    t->data = el;
    t->nbytes = total;
    return 0;
}

static void release_values(OrtValue **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ort->ReleaseValue(v[i]);
        v[i] = NULL;
    }
}

int mg_session_run(mg_session_t *s, const mg_infer_request_t *req, mg_infer_response_t *resp,
                   mg_err_t *err)
{
    return mg_session_run_timed(s, req, resp, NULL, err);
}

/* One ORT Run of `s` on inputs `in` (model order) into `out` (NULL slots: ORT allocates). */
static int run_once(mg_session_t *s, const OrtRunOptions *ro, OrtValue **in,
                    const char *const *out_names, size_t nout, OrtValue **out, mg_err_t *err)
{
    return status_to_err(ort->Run(s->ort, ro, (const char *const *)s->input_names,
                                  (const OrtValue *const *)in, s->ninputs, out_names, nout, out),
                         MG_ERUNTIME, err, "onnxruntime");
}

int mg_session_run_timed(mg_session_t *s, const mg_infer_request_t *req, mg_infer_response_t *resp,
                         mg_session_timing_t *timing, mg_err_t *err)
{
    mg_arena_t *a = req->arena;
    if (a == NULL)
        return mg_err_set(err, MG_EINVAL, "request: no arena");
    size_t nin = s->ninputs;
    size_t nout = req->noutputs != 0 ? req->noutputs : s->noutputs;

    /* Everything per request comes from the arena: no malloc here beyond ORT's own. */
    size_t *slot = arena_array(a, nin ? nin : 1, sizeof(*slot));
    size_t *idx = arena_array(a, nout ? nout : 1, sizeof(*idx));
    OrtValue **in = arena_array(a, nin ? nin : 1, sizeof(*in));
    run_owner_t *own = NULL;
    size_t own_size;
    if (mg_mul_size(nout, sizeof(OrtValue *), &own_size) == 0 &&
        !__builtin_add_overflow(own_size, sizeof(*own), &own_size))
        own = mg_arena_alloc(a, own_size);
    mg_tensor_t *outs = arena_array(a, nout ? nout : 1, sizeof(*outs));
    bool *binary = arena_array(a, nout ? nout : 1, sizeof(*binary));
    if (slot == NULL || idx == NULL || in == NULL || own == NULL || outs == NULL || binary == NULL)
        return mg_err_set(err, MG_ENOMEM, "request: out of memory");

    int rc;
    if ((rc = check_inputs(s, req, slot, err)) || (rc = check_outputs(s, req, idx, err)))
        return rc;

    const char *const *out_names = (const char *const *)s->output_names;
    if (req->noutputs != 0) {
        const char **names = arena_array(a, nout, sizeof(*names));
        if (names == NULL)
            return mg_err_set(err, MG_ENOMEM, "request: out of memory");
        for (size_t j = 0; j < nout; j++)
            names[j] = s->output_names[idx[j]];
        out_names = names;
    } else {
        for (size_t j = 0; j < nout; j++)
            idx[j] = j;
    }

    /* Inputs in model order, so the session's cached name array is the one Run takes. */
    run_entry_t *e = entry_take(s, request_rows(req));
    memset(in, 0, nin * sizeof(*in));
    for (size_t k = 0; k < nin && rc == 0; k++) {
        const mg_tensor_t *t = &req->inputs[slot[k]];
        if (e != NULL && s->reuse_in[k])
            rc = entry_input(e, k, t, &in[k], err);
        if (rc == 0 && in[k] == NULL)
            rc = make_input(t, a, &in[k], err);
    }
    own->n = nout;
    own->entry = e;
    own->entry_values = e != NULL && atomic_load_explicit(&s->reuse_out, memory_order_relaxed);
    bool given = false; /* a Run told to write into the entry's outputs */
    for (size_t j = 0; j < nout; j++) {
        own->values[j] = own->entry_values ? e->out[idx[j]] : NULL;
        given |= own->values[j] != NULL;
    }
    deadline_run_t dl = {.ro = run_opts, .deadline_ns = req->deadline_ns};
    if (rc == 0 && dl.deadline_ns != 0) {
        if ((dl.ro = thread_run_options()) == NULL)
            rc = mg_err_set(err, MG_ENOMEM, "request: out of memory");
        else if (now_ns() >= dl.deadline_ns)
            rc =
                mg_err_set(err, MG_ETIMEDOUT, "the request's deadline passed before the model ran");
        else
            rc = deadline_enter(&dl, err);
    }
    if (rc == 0) {
        int64_t started = timing != NULL || dl.deadline_ns != 0 ? now_ns() : 0;
        if (timing != NULL)
            timing->infer_ns = started;
        rc = run_once(s, dl.ro, in, out_names, nout, own->values, err);
        if (rc != 0 && given) {
            /*
             * An output may not have had the shape of the entry's (rows that depend on the
             * data): once more with outputs of ONNX Runtime's, and the session stops giving
             * Runs outputs to write into.
             */
            memset(own->values, 0, nout * sizeof(own->values[0]));
            own->entry_values = false;
            if ((rc = run_once(s, dl.ro, in, out_names, nout, own->values, err)) == 0)
                atomic_store_explicit(&s->reuse_out, false, memory_order_relaxed);
        }
        if (timing != NULL)
            timing->output_ns = now_ns();
        if (dl.deadline_ns != 0 && deadline_leave(&dl) && rc != 0)
            rc = mg_err_set(err, MG_ETIMEDOUT,
                            "the request's deadline passed while the model ran; the run was "
                            "stopped after %lld ms",
                            (long long)((now_ns() - started) / 1000000));
    }
    for (size_t k = 0; k < nin; k++) {
        if (e == NULL || in[k] != e->in[k]) /* the entry's own stay with it */
            ort->ReleaseValue(in[k]);
    }
    if (rc)
        goto fail;
    if (own->entry_values) {
        for (size_t j = 0; j < nout; j++)
            e->out[idx[j]] = own->values[j]; /* the ones ONNX Runtime made join the entry */
    }

    for (size_t j = 0; j < nout; j++) {
        size_t k = idx[j];
        rc = read_output(own->values[j], &s->outputs[k], s->output_name_len[k], &outs[j], a, err);
        if (rc)
            goto fail;
        binary[j] = req->noutputs != 0 ? req->outputs[j].binary : req->binary_output;
    }
    resp->outputs = outs;
    resp->binary = binary;
    resp->noutputs = nout;
    resp->owner = own;
    return 0;

fail:
    if (!own->entry_values)
        release_values(own->values, nout);
    if (e != NULL)
        entry_unref(e);
    return rc;
}

void mg_session_response_release(mg_infer_response_t *resp)
{
    if (resp == NULL || resp->owner == NULL)
        return;
    run_owner_t *own = resp->owner;
    if (!own->entry_values)
        release_values(own->values, own->n);
    if (own->entry != NULL)
        entry_unref(own->entry);
    own->entry = NULL;
    own->entry_values = false;
    own->n = 0;
    resp->owner = NULL;
    resp->outputs = NULL;
    resp->binary = NULL;
    resp->noutputs = 0;
}

/* ---- joined Runs (opportunistic batching) ---- */

bool mg_session_batchable(const mg_session_t *s)
{
    for (size_t k = 0; k < s->ninputs; k++) {
        if (s->inputs[k].ndim < 1 || s->inputs[k].shape[0] != -1)
            return false;
    }
    for (size_t k = 0; k < s->noutputs; k++) {
        if (s->outputs[k].ndim < 1 || s->outputs[k].shape[0] != -1)
            return false;
    }
    return s->ninputs > 0 && s->noutputs > 0;
}

bool mg_session_batch_compatible(const mg_infer_request_t *a, const mg_infer_request_t *b)
{
    if (a->ninputs != b->ninputs || a->noutputs != b->noutputs || request_rows(a) == 0 ||
        request_rows(b) == 0)
        return false;
    for (size_t j = 0; j < a->ninputs; j++) {
        const mg_tensor_t *x = &a->inputs[j], *y = &b->inputs[j];
        if (x->name.len != y->name.len || memcmp(x->name.ptr, y->name.ptr, x->name.len) != 0 ||
            x->dtype != y->dtype || x->ndim != y->ndim ||
            memcmp(x->shape + 1, y->shape + 1, (size_t)(x->ndim - 1) * sizeof(x->shape[0])) != 0)
            return false;
    }
    for (size_t j = 0; j < a->noutputs; j++) {
        mg_str_t x = a->outputs[j].name, y = b->outputs[j].name;
        /* A classified output is rebuilt per request after its Run (serve/classify.h). */
        if (x.len != y.len || memcmp(x.ptr, y.ptr, x.len) != 0 || a->outputs[j].classification ||
            b->outputs[j].classification)
            return false;
    }
    return true;
}

/* Joins input `j` of the `n` requests along the first dim (`total` rows) into `a`. */
static int join_input(const mg_infer_request_t *const *reqs, size_t n, size_t j, int64_t total,
                      mg_arena_t *a, mg_tensor_t *out)
{
    const mg_tensor_t *first = &reqs[0]->inputs[j];
    *out = *first;
    out->shape[0] = total;
    size_t row = 1; /* elements per row */
    for (int d = 1; d < first->ndim; d++)
        row *= (size_t)first->shape[d];
    size_t count;
    if (mg_mul_size(row, (size_t)total, &count) != 0)
        return MG_ERANGE;
    out->count = count;
    if (first->dtype == MG_DT_BYTES) {
        mg_str_t *el = arena_array(a, count ? count : 1, sizeof(*el));
        if (el == NULL)
            return MG_ENOMEM;
        size_t at = 0, bytes = 0;
        for (size_t i = 0; i < n; i++) {
            const mg_tensor_t *t = &reqs[i]->inputs[j];
            if (t->count != 0)
                memcpy(el + at, t->data, t->count * sizeof(*el));
            for (size_t e = 0; e < t->count; e++)
                bytes += el[at + e].len;
            at += t->count;
        }
        out->data = el;
        out->nbytes = bytes;
        return 0;
    }
    size_t esize = mg_dtype_size(first->dtype);
    out->nbytes = count * esize;
    char *buf = mg_arena_alloc(a, out->nbytes ? out->nbytes : 1);
    if (buf == NULL)
        return MG_ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const mg_tensor_t *t = &reqs[i]->inputs[j];
        if (t->nbytes != 0)
            memcpy(buf + at, t->data, t->nbytes);
        at += t->nbytes;
    }
    out->data = buf;
    return 0;
}

/* Output `t` of a joined Run (`total` rows), rows [from, from + rows) of it, into `o`. */
static void slice_output(const mg_tensor_t *t, int64_t total, int64_t from, int64_t rows,
                         mg_tensor_t *o)
{
    size_t row = total > 0 ? t->count / (size_t)total : 0;
    *o = *t;
    o->shape[0] = rows;
    o->count = row * (size_t)rows;
    if (t->dtype == MG_DT_BYTES) {
        mg_str_t *el = (mg_str_t *)t->data + row * (size_t)from;
        size_t bytes = 0;
        for (size_t e = 0; e < o->count; e++)
            bytes += el[e].len;
        o->data = o->count ? el : NULL;
        o->nbytes = bytes;
        return;
    }
    size_t esize = mg_dtype_size(t->dtype);
    o->data = o->count ? (char *)t->data + row * (size_t)from * esize : NULL;
    o->nbytes = o->count * esize;
}

int mg_session_run_batch(mg_session_t *s, const mg_infer_request_t *const *reqs, size_t n,
                         mg_arena_t *arena, mg_infer_response_t *resps, void **owner,
                         mg_session_timing_t *timing, mg_err_t *err)
{
    const mg_infer_request_t *r0 = reqs[0];
    int64_t total = 0;
    int64_t *rows = arena_array(arena, n, sizeof(*rows));
    mg_tensor_t *joined = arena_array(arena, r0->ninputs ? r0->ninputs : 1, sizeof(*joined));
    if (rows == NULL || joined == NULL)
        return mg_err_set(err, MG_ENOMEM, "batch: out of memory");
    for (size_t i = 0; i < n; i++) {
        rows[i] = request_rows(reqs[i]);
        total += rows[i];
    }
    for (size_t j = 0; j < r0->ninputs; j++) {
        int rc = join_input(reqs, n, j, total, arena, &joined[j]);
        if (rc != 0)
            return mg_err_set(err, rc, "batch: input '%.*s': %s", SHOWN(r0->inputs[j].name),
                              rc == MG_ENOMEM ? "out of memory" : "too large");
    }
    mg_infer_request_t breq = *r0;
    breq.inputs = joined;
    breq.arena = arena;
    /* The joined Run is stopped only once no member can use its answer: the latest deadline. */
    for (size_t i = 0; i < n; i++) {
        if (reqs[i]->deadline_ns == 0 || reqs[i]->deadline_ns > breq.deadline_ns)
            breq.deadline_ns = reqs[i]->deadline_ns;
        if (reqs[i]->deadline_ns == 0)
            break;
    }
    mg_infer_response_t all = {0};
    int rc = mg_session_run_timed(s, &breq, &all, timing, err);
    if (rc != 0)
        return rc;
    for (size_t k = 0; k < all.noutputs; k++) {
        if (all.outputs[k].ndim < 1 || all.outputs[k].shape[0] != total) {
            mg_session_response_release(&all);
            return mg_err_set(err, MG_ERUNTIME,
                              "output '%.*s' of a joined Run lacks its %lld rows in its first dim",
                              SHOWN(all.outputs[k].name), (long long)total);
        }
    }
    int64_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const mg_infer_request_t *r = reqs[i];
        mg_tensor_t *outs = arena_array(r->arena, all.noutputs ? all.noutputs : 1, sizeof(*outs));
        bool *binary = arena_array(r->arena, all.noutputs ? all.noutputs : 1, sizeof(*binary));
        if (outs == NULL || binary == NULL) {
            mg_session_response_release(&all);
            return mg_err_set(err, MG_ENOMEM, "batch: out of memory");
        }
        for (size_t k = 0; k < all.noutputs; k++) {
            slice_output(&all.outputs[k], total, from, rows[i], &outs[k]);
            binary[k] = r->noutputs != 0 ? r->outputs[k].binary : r->binary_output;
        }
        resps[i].outputs = outs;
        resps[i].binary = binary;
        resps[i].noutputs = all.noutputs;
        resps[i].owner = NULL;
        from += rows[i];
    }
    *owner = all.owner;
    return 0;
}

void mg_session_owner_release(void *owner)
{
    mg_infer_response_t resp = {.owner = owner};
    mg_session_response_release(&resp);
}

/*
 * Describes input `k` of the model in `t` with every dynamic dim 1 (name, datatype, shape,
 * element count; no data). Returns 0 or MG_ERANGE when its size overflows.
 */
static int model_shaped(const mg_session_t *s, size_t k, mg_tensor_t *t)
{
    const mg_tensor_info_t *info = &s->inputs[k];
    memset(t, 0, sizeof(*t));
    t->name = (mg_str_t){info->name, s->input_name_len[k]};
    t->dtype = info->dtype;
    t->ndim = info->ndim;
    for (int d = 0; d < info->ndim; d++)
        t->shape[d] = info->shape[d] < 0 ? 1 : info->shape[d];
    return mg_shape_count(t->shape, t->ndim, mg_dtype_size(t->dtype), &t->count) != 0 ? MG_ERANGE
                                                                                      : 0;
}

/* Fills the inputs of `req` (rows 1, dynamic dims 1) with values that depend on `seed`. */
static int agree_inputs(const mg_session_t *s, uint32_t seed, mg_arena_t *a,
                        mg_infer_request_t *req)
{
    mg_tensor_t *in = arena_array(a, s->ninputs, sizeof(*in));
    if (in == NULL)
        return MG_ENOMEM;
    uint32_t x = seed * 2654435761u + 12345u;
    for (size_t k = 0; k < s->ninputs; k++) {
        mg_tensor_t *t = &in[k];
        size_t esize = mg_dtype_size(s->inputs[k].dtype);
        if (model_shaped(s, k, t) != 0 || t->count > (1u << 24))
            return MG_ERANGE;
        if (t->dtype == MG_DT_BYTES) {
            mg_str_t *el = arena_array(a, t->count ? t->count : 1, sizeof(*el));
            if (el == NULL)
                return MG_ENOMEM;
            static const char *const words[] = {"a", "bb", "ccc", "dddd"};
            for (size_t e = 0; e < t->count; e++)
                el[e] = (mg_str_t){words[(seed + e) % 4], (seed + e) % 4 + 1};
            t->data = el;
            continue;
        }
        t->nbytes = t->count * esize;
        unsigned char *p = mg_arena_alloc(a, t->nbytes ? t->nbytes : 1);
        if (p == NULL)
            return MG_ENOMEM;
        for (size_t e = 0; e < t->count; e++) {
            x = x * 1103515245u + 12345u;
            uint32_t small = (x >> 16) % 17; /* 0..16: exact in every type, true/false for BOOL */
            switch (t->dtype) {
            case MG_DT_FP32: ((float *)p)[e] = (float)small * 0.25f; break;
            case MG_DT_FP64: ((double *)p)[e] = (double)small * 0.25; break;
            case MG_DT_FP16: ((uint16_t *)p)[e] = (uint16_t)(0x3c00 + (small << 6)); break;
            case MG_DT_BOOL: p[e] = (unsigned char)(small & 1); break;
            default:
                memset(p + e * esize, 0, esize);
                p[e * esize] = (unsigned char)small;
                break;
            }
        }
        t->data = p;
    }
    *req = (mg_infer_request_t){.id = {"", 0}, .inputs = in, .ninputs = s->ninputs, .arena = a};
    return 0;
}

int mg_session_batch_agrees(mg_session_t *s, mg_err_t *err)
{
    enum { N = 3 };
    if (!mg_session_batchable(s))
        return mg_err_set(err, MG_EINVAL, "the model has no dynamic first dim to join along");
    mg_arena_t a;
    mg_arena_init(&a, 0);
    mg_infer_request_t reqs[N];
    const mg_infer_request_t *ptrs[N];
    mg_infer_response_t alone[N] = {{0}}, joined[N] = {{0}};
    void *owner = NULL;
    int rc = 0, same = 1;
    for (int i = 0; i < N && rc == 0; i++) {
        if ((rc = agree_inputs(s, (uint32_t)i + 1, &a, &reqs[i])) != 0)
            mg_err_set(err, rc, "batch check: cannot make inputs");
        else
            rc = mg_session_run(s, &reqs[i], &alone[i], err);
        ptrs[i] = &reqs[i];
    }
    if (rc == 0)
        rc = mg_session_run_batch(s, ptrs, N, &a, joined, &owner, NULL, err);
    for (int i = 0; i < N && rc == 0 && same; i++) {
        for (size_t k = 0; k < alone[i].noutputs && same; k++) {
            const mg_tensor_t *x = &alone[i].outputs[k], *y = &joined[i].outputs[k];
            if (x->count != y->count || x->nbytes != y->nbytes || x->ndim != y->ndim)
                same = 0;
            else if (x->dtype == MG_DT_BYTES) {
                const mg_str_t *ex = x->data, *ey = y->data;
                for (size_t e = 0; e < x->count && same; e++)
                    same = ex[e].len == ey[e].len && memcmp(ex[e].ptr, ey[e].ptr, ex[e].len) == 0;
            } else if (x->nbytes != 0 && memcmp(x->data, y->data, x->nbytes) != 0) {
                same = 0;
            }
        }
    }
    for (int i = 0; i < N; i++)
        mg_session_response_release(&alone[i]);
    mg_session_owner_release(owner);
    mg_arena_free(&a);
    return rc != 0 ? rc : same;
}

int mg_session_memory(const mg_session_t *s, mg_session_stat_fn fn, void *ctx, mg_err_t *err)
{
    if (s->no_cpu_arena)
        return mg_err_set(err, MG_ERUNTIME,
                          "allocator: no CPU arena (a small model): its memory is in the "
                          "process heap (malloc)");
    OrtAllocator *alloc = NULL;
    int rc =
        status_to_err(ort->CreateAllocator(s->ort, cpu_mem, &alloc), MG_ERUNTIME, err, "allocator");
    if (rc != 0)
        return rc;
    if (alloc->version < 23 || alloc->GetStats == NULL) {
        ort->ReleaseAllocator(alloc);
        return mg_err_set(err, MG_ERUNTIME, "allocator: this ONNX Runtime reports no statistics");
    }
    OrtKeyValuePairs *kvp = NULL;
    rc = status_to_err(alloc->GetStats(alloc, &kvp), MG_ERUNTIME, err, "allocator");
    if (rc == 0) {
        const char *const *keys = NULL, *const *values = NULL;
        size_t n = 0;
        ort->GetKeyValuePairs(kvp, &keys, &values, &n);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = fn(ctx, keys[i], values[i]);
        ort->ReleaseKeyValuePairs(kvp);
    }
    ort->ReleaseAllocator(alloc);
    return rc;
}

int mg_session_warmup(mg_session_t *s, int runs, mg_err_t *err)
{
    if (runs <= 0)
        return 0;
    mg_arena_t inputs_arena, run_arena;
    mg_arena_init(&inputs_arena, 0);
    mg_arena_init(&run_arena, 0);
    int rc = 0;
    mg_tensor_t *in = arena_array(&inputs_arena, s->ninputs ? s->ninputs : 1, sizeof(*in));
    if (in == NULL) {
        rc = mg_err_set(err, MG_ENOMEM, "warmup: out of memory");
        goto out;
    }

    /* Zeros (empty strings for BYTES), every dynamic dim 1. */
    for (size_t k = 0; k < s->ninputs; k++) {
        const mg_tensor_info_t *info = &s->inputs[k];
        mg_tensor_t *t = &in[k];
        size_t esize = mg_dtype_size(info->dtype);
        if (model_shaped(s, k, t) != 0) {
            rc = mg_err_set(err, MG_ERANGE, "warmup: input '%s' is too large", info->name);
            goto out;
        }
        if (t->dtype == MG_DT_BYTES) {
            mg_str_t *el = arena_array(&inputs_arena, t->count, sizeof(*el));
            for (size_t i = 0; el != NULL && i < t->count; i++)
                el[i] = (mg_str_t){"", 0};
            t->data = el;
        } else {
            t->nbytes = t->count * esize;
            if ((t->data = mg_arena_alloc(&inputs_arena, t->nbytes)) != NULL)
                memset(t->data, 0, t->nbytes);
        }
        if (t->data == NULL) {
            rc = mg_err_set(err, MG_ENOMEM, "warmup: out of memory");
            goto out;
        }
    }

    mg_infer_request_t req = {.inputs = in, .ninputs = s->ninputs, .arena = &run_arena};
    for (int r = 0; r < runs && rc == 0; r++) {
        mg_infer_response_t resp = {0};
        rc = mg_session_run(s, &req, &resp, err);
        mg_session_response_release(&resp);
        mg_arena_reset(&run_arena);
    }

out:
    mg_arena_free(&run_arena);
    mg_arena_free(&inputs_arena);
    return rc;
}
