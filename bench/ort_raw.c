/*
 * ort_raw: the ceiling for modelgate on a compute-bound model. Loads one ONNX model into ONNX
 * Runtime with the options modelgate uses (process-wide global thread pools: intra-op threads =
 * number of cores, spinning off, per-session threads disabled; ORT_ENABLE_ALL; sequential
 * execution) and calls Run from T threads at once, each with its own input buffer, for a fixed
 * time. Prints items/s (Runs/s x batch) and per-Run latency.
 *
 *   bench_ort_raw MODEL.onnx [--seconds S] [--warmup S] [--threads T] [--batch B]
 *                            [--intra N] [--spin 0|1] [--prealloc 0|1]
 *
 * Every FP32 input is filled with 0.5 (the value bench/cnn_binary.lua sends); dynamic dims are
 * `batch` for the first dim and 1 elsewhere. Outputs are allocated by ONNX Runtime; with
 * --prealloc 1 each Run writes into the previous Run's outputs instead, as modelgate's reused
 * Run values do. The last line is machine-readable:
 *   ort_raw: items_per_s=1990.3 runs=19903 seconds=10.00 mean_ms=1.004 p50_ms=0.98 p99_ms=1.40 ...
 * Exits 1 with ONNX Runtime's message on any failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <onnxruntime_c_api.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_IO      16
#define MAX_DIMS    8
#define MAX_THREADS 64
#define MAX_SAMPLES (1u << 20) /* per-thread latency samples kept for percentiles */

static const OrtApi *ort;

static void check(OrtStatus *st, const char *what)
{
    if (st == NULL) {
        return;
    }
    fprintf(stderr, "ort_raw: %s: %s\n", what, ort->GetErrorMessage(st));
    ort->ReleaseStatus(st);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* What every worker shares: the session and the model's input/output layout. */
typedef struct bench {
    OrtSession *session;
    size_t ninputs, noutputs;
    char *input_names[MAX_IO];
    char *output_names[MAX_IO];
    int64_t input_shape[MAX_IO][MAX_DIMS];
    size_t input_ndim[MAX_IO];
    size_t input_elems[MAX_IO];
    int prealloc;      /* pass each Run the previous Run's outputs to write into */
    _Atomic int phase; /* 0 warm-up, 1 measured, 2 stop */
} bench_t;

typedef struct worker {
    bench_t *b;
    pthread_t tid;
    float *buffers[MAX_IO];
    OrtValue *inputs[MAX_IO];
    OrtValue *kept[MAX_IO]; /* --prealloc: the last Run's outputs, written again by the next */
    uint64_t runs;          /* Runs that finished inside the measured window */
    float *lat_ms;          /* their latencies, first MAX_SAMPLES */
    size_t nlat;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    bench_t *b = w->b;
    OrtMemoryInfo *mem = NULL;
    check(ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem), "memory info");
    for (size_t i = 0; i < b->ninputs; i++) {
        size_t n = b->input_elems[i];
        w->buffers[i] = malloc(n * sizeof(float));
        if (w->buffers[i] == NULL) {
            fprintf(stderr, "ort_raw: out of memory\n");
            exit(1);
        }
        for (size_t k = 0; k < n; k++) {
            w->buffers[i][k] = 0.5f;
        }
        check(ort->CreateTensorWithDataAsOrtValue(
                  mem, w->buffers[i], n * sizeof(float), b->input_shape[i], b->input_ndim[i],
                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &w->inputs[i]),
              "input tensor");
    }
    ort->ReleaseMemoryInfo(mem);

    int phase;
    while ((phase = atomic_load_explicit(&b->phase, memory_order_acquire)) != 2) {
        OrtValue *outputs[MAX_IO] = {0};
        if (b->prealloc)
            memcpy(outputs, w->kept, sizeof(outputs));
        double t0 = now_s();
        check(ort->Run(b->session, NULL, (const char *const *)b->input_names,
                       (const OrtValue *const *)w->inputs, b->ninputs,
                       (const char *const *)b->output_names, b->noutputs, outputs),
              "Run");
        double t1 = now_s();
        for (size_t i = 0; i < b->noutputs; i++) {
            if (b->prealloc)
                w->kept[i] = outputs[i];
            else
                ort->ReleaseValue(outputs[i]);
        }
        /* Count a Run only if it started and finished inside the measured window. */
        if (phase == 1 && atomic_load_explicit(&b->phase, memory_order_acquire) == 1) {
            w->runs++;
            if (w->nlat < MAX_SAMPLES) {
                w->lat_ms[w->nlat++] = (float)((t1 - t0) * 1e3);
            }
        }
    }
    for (size_t i = 0; i < b->ninputs; i++) {
        ort->ReleaseValue(w->inputs[i]);
        free(w->buffers[i]);
    }
    for (size_t i = 0; i < b->noutputs; i++)
        ort->ReleaseValue(w->kept[i]);
    return NULL;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_ort_raw MODEL.onnx [--seconds S] [--warmup S] [--threads T] "
                    "[--batch B] [--intra N] [--spin 0|1] [--prealloc 0|1]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    double seconds = 10.0, warmup = 2.0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = 2, batch = 1, intra = ncpu > 0 ? (int)ncpu : 1, spin = 0, prealloc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            model = a;
            continue;
        }
        if (v == NULL) {
            usage();
        }
        if (strcmp(a, "--seconds") == 0) {
            seconds = atof(v);
        } else if (strcmp(a, "--warmup") == 0) {
            warmup = atof(v);
        } else if (strcmp(a, "--threads") == 0) {
            threads = atoi(v);
        } else if (strcmp(a, "--batch") == 0) {
            batch = atoi(v);
        } else if (strcmp(a, "--intra") == 0) {
            intra = atoi(v);
        } else if (strcmp(a, "--spin") == 0) {
            spin = atoi(v);
        } else if (strcmp(a, "--prealloc") == 0) {
            prealloc = atoi(v);
        } else {
            usage();
        }
        i++;
    }
    if (model == NULL || seconds <= 0 || warmup < 0 || threads < 1 || threads > MAX_THREADS ||
        batch < 1 || intra < 1) {
        usage();
    }

    ort = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    if (ort == NULL) {
        fprintf(stderr, "ort_raw: ONNX Runtime does not offer API version %d\n", ORT_API_VERSION);
        return 1;
    }

    /* The environment and session exactly as modelgate builds them (src/infer/session.c). */
    OrtThreadingOptions *tp = NULL;
    OrtEnv *env = NULL;
    check(ort->CreateThreadingOptions(&tp), "threading options");
    check(ort->SetGlobalIntraOpNumThreads(tp, intra), "intra-op threads");
    check(ort->SetGlobalInterOpNumThreads(tp, 1), "inter-op threads");
    check(ort->SetGlobalSpinControl(tp, spin), "spin control");
    check(ort->CreateEnvWithGlobalThreadPools(ORT_LOGGING_LEVEL_WARNING, "ort_raw", tp, &env),
          "environment");
    ort->ReleaseThreadingOptions(tp);

    OrtSessionOptions *so = NULL;
    check(ort->CreateSessionOptions(&so), "session options");
    check(ort->DisablePerSessionThreads(so), "disable per-session threads");
    check(ort->SetSessionGraphOptimizationLevel(so, ORT_ENABLE_ALL), "optimization level");
    check(ort->SetSessionExecutionMode(so, ORT_SEQUENTIAL), "execution mode");

    bench_t b = {.prealloc = prealloc};
    double t_load = now_s();
    check(ort->CreateSession(env, model, so, &b.session), "load model");
    t_load = now_s() - t_load;
    ort->ReleaseSessionOptions(so);

    /* Input and output layout from the model's metadata. */
    OrtAllocator *alloc = NULL;
    check(ort->GetAllocatorWithDefaultOptions(&alloc), "allocator");
    check(ort->SessionGetInputCount(b.session, &b.ninputs), "input count");
    check(ort->SessionGetOutputCount(b.session, &b.noutputs), "output count");
    if (b.ninputs > MAX_IO || b.noutputs > MAX_IO) {
        fprintf(stderr, "ort_raw: more than %d inputs or outputs\n", MAX_IO);
        return 1;
    }
    printf("ort_raw: model=%s load_s=%.3f threads=%d batch=%d intra_op=%d spin=%d\n", model, t_load,
           threads, batch, intra, spin);
    for (size_t i = 0; i < b.ninputs; i++) {
        OrtTypeInfo *ti = NULL;
        const OrtTensorTypeAndShapeInfo *si = NULL;
        ONNXTensorElementDataType et;
        check(ort->SessionGetInputName(b.session, i, alloc, &b.input_names[i]), "input name");
        check(ort->SessionGetInputTypeInfo(b.session, i, &ti), "input type");
        check(ort->CastTypeInfoToTensorInfo(ti, &si), "input tensor info");
        check(ort->GetTensorElementType(si, &et), "input element type");
        check(ort->GetDimensionsCount(si, &b.input_ndim[i]), "input rank");
        if (et != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || b.input_ndim[i] > MAX_DIMS) {
            fprintf(stderr, "ort_raw: input '%s' is not an FP32 tensor of rank <= %d\n",
                    b.input_names[i], MAX_DIMS);
            return 1;
        }
        check(ort->GetDimensions(si, b.input_shape[i], b.input_ndim[i]), "input shape");
        b.input_elems[i] = 1;
        printf("ort_raw: input %s [", b.input_names[i]);
        for (size_t d = 0; d < b.input_ndim[i]; d++) {
            if (b.input_shape[i][d] <= 0) {
                b.input_shape[i][d] = d == 0 ? batch : 1;
            }
            b.input_elems[i] *= (size_t)b.input_shape[i][d];
            printf("%s%lld", d ? "," : "", (long long)b.input_shape[i][d]);
        }
        printf("] FP32\n");
        ort->ReleaseTypeInfo(ti);
    }
    for (size_t i = 0; i < b.noutputs; i++) {
        check(ort->SessionGetOutputName(b.session, i, alloc, &b.output_names[i]), "output name");
    }

    /* Warm up, then measure a fixed window. */
    worker_t *ws = calloc((size_t)threads, sizeof(*ws));
    if (ws == NULL) {
        fprintf(stderr, "ort_raw: out of memory\n");
        return 1;
    }
    for (int t = 0; t < threads; t++) {
        ws[t].b = &b;
        ws[t].lat_ms = malloc(MAX_SAMPLES * sizeof(float));
        if (ws[t].lat_ms == NULL || pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0) {
            fprintf(stderr, "ort_raw: cannot start worker %d\n", t);
            return 1;
        }
    }
    sleep_s(warmup);
    double t0 = now_s();
    atomic_store_explicit(&b.phase, 1, memory_order_release);
    sleep_s(seconds);
    atomic_store_explicit(&b.phase, 2, memory_order_release);
    double elapsed = now_s() - t0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ws[t].tid, NULL);
    }

    /* Report. */
    uint64_t runs = 0;
    size_t nlat = 0;
    for (int t = 0; t < threads; t++) {
        runs += ws[t].runs;
        nlat += ws[t].nlat;
    }
    float *lat = malloc((nlat ? nlat : 1) * sizeof(float));
    if (lat == NULL) {
        fprintf(stderr, "ort_raw: out of memory\n");
        return 1;
    }
    size_t k = 0;
    double sum = 0;
    for (int t = 0; t < threads; t++) {
        for (size_t i = 0; i < ws[t].nlat; i++) {
            lat[k++] = ws[t].lat_ms[i];
            sum += ws[t].lat_ms[i];
        }
    }
    qsort(lat, nlat, sizeof(float), cmp_float);
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)((double)nlat * 0.99)] : 0;
    printf("ort_raw: items_per_s=%.1f runs=%llu seconds=%.2f mean_ms=%.3f p50_ms=%.3f "
           "p99_ms=%.3f threads=%d batch=%d intra_op=%d\n",
           (double)runs * batch / elapsed, (unsigned long long)runs, elapsed,
           nlat ? sum / (double)nlat : 0.0, p50, p99, threads, batch, intra);

    for (int t = 0; t < threads; t++) {
        free(ws[t].lat_ms);
    }
    free(ws);
    free(lat);
    for (size_t i = 0; i < b.ninputs; i++) {
        check(ort->AllocatorFree(alloc, b.input_names[i]), "free name");
    }
    for (size_t i = 0; i < b.noutputs; i++) {
        check(ort->AllocatorFree(alloc, b.output_names[i]), "free name");
    }
    ort->ReleaseSession(b.session);
    ort->ReleaseEnv(env);
    return 0;
}
