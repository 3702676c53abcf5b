/*
 * grpc_load: a closed-loop load generator for KServe v2 ModelInfer over gRPC, on gRPC core's C
 * API (the same library the server uses, so no other runtime shares the two cores). T threads,
 * each with its own completion queue and channel (one HTTP/2 connection), keep C/T unary calls
 * in flight each; every call sends the same ModelInferRequest with one input in
 * raw_input_contents and checks that the answer's status is OK.
 *
 *   bench_grpc_load --target HOST:PORT --model NAME --input NAME --datatype DT --shape 1,64
 *                   --raw FILE [--concurrency C] [--threads T] [--seconds S] [--warmup S]
 *
 * `--raw FILE` holds the input's bytes (little-endian, as raw_input_contents carries them).
 * The last line is machine-readable:
 *   grpc_load: rps=41234.5 calls=412345 errors=0 seconds=10.00 p50_ms=1.40 p99_ms=3.10
 * Exits 1 when a call fails (after printing its status and message) or nothing answers.
 */
#include "proto/kserve_pb.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64
#define MAX_SAMPLES (1u << 21)

typedef struct load_call {
    grpc_call *call;
    grpc_metadata_array initial, trailing;
    grpc_byte_buffer *request, *response;
    grpc_status_code status;
    grpc_slice details;
    double started;
} load_call_t;

typedef struct worker {
    pthread_t tid;
    int ncalls;
    grpc_channel *channel;
    grpc_completion_queue *cq;
    load_call_t *calls;
    double *samples;
    size_t nsamples;
    uint64_t done, errors;
} worker_t;

static const char *target;
static grpc_slice request_slice;
static grpc_slice method;
static double measure_from, measure_until;
static atomic_int failed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void start_call(worker_t *w, load_call_t *c)
{
    memset(c, 0, sizeof(*c));
    c->call = grpc_channel_create_call(w->channel, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq, method,
                                       NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_metadata_array_init(&c->initial);
    grpc_metadata_array_init(&c->trailing);
    c->request = grpc_raw_byte_buffer_create(&request_slice, 1);
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &c->response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &c->trailing;
    ops[5].data.recv_status_on_client.status = &c->status;
    ops[5].data.recv_status_on_client.status_details = &c->details;
    c->started = now_s();
    if (grpc_call_start_batch(c->call, ops, 6, c, NULL) != GRPC_CALL_OK) {
        fprintf(stderr, "grpc_load: cannot start a call\n");
        exit(1);
    }
}

/* Returns 1 when the call succeeded. */
static int end_call(load_call_t *c)
{
    int ok = c->status == GRPC_STATUS_OK && c->response != NULL;
    if (!ok && atomic_fetch_add(&failed, 1) == 0) {
        char *msg = grpc_slice_to_c_string(c->details);
        fprintf(stderr, "grpc_load: call failed: status %d: %s\n", (int)c->status, msg);
        gpr_free(msg);
    }
    grpc_slice_unref(c->details);
    grpc_metadata_array_destroy(&c->initial);
    grpc_metadata_array_destroy(&c->trailing);
    grpc_byte_buffer_destroy(c->request);
    if (c->response != NULL)
        grpc_byte_buffer_destroy(c->response);
    grpc_call_unref(c->call);
    return ok;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < w->ncalls; i++)
        start_call(w, &w->calls[i]);
    int inflight = w->ncalls;
    while (inflight > 0) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        load_call_t *c = ev.tag;
        double t = now_s();
        int ok = end_call(c);
        if (c->started >= measure_from && t <= measure_until) {
            w->done++;
            w->errors += !ok;
            if (w->nsamples < MAX_SAMPLES)
                w->samples[w->nsamples++] = (t - c->started) * 1e3;
        }
        if (t < measure_until && atomic_load(&failed) == 0)
            start_call(w, c);
        else
            inflight--;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fputs("usage: bench_grpc_load --target HOST:PORT --model NAME --input NAME --datatype DT\n"
          "                       --shape D1,D2,... --raw FILE [--concurrency C] [--threads T]\n"
          "                       [--seconds S] [--warmup S]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *input = NULL, *datatype = "FP32", *shape_arg = NULL, *raw = NULL;
    int concurrency = 64, threads = 2;
    double seconds = 10, warmup = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        if (strcmp(a, "--target") == 0)
            target = v;
        else if (strcmp(a, "--model") == 0)
            model = v;
        else if (strcmp(a, "--input") == 0)
            input = v;
        else if (strcmp(a, "--datatype") == 0)
            datatype = v;
        else if (strcmp(a, "--shape") == 0)
            shape_arg = v;
        else if (strcmp(a, "--raw") == 0)
            raw = v;
        else if (strcmp(a, "--concurrency") == 0)
            concurrency = atoi(v);
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atof(v);
        else
            usage();
        i++;
    }
    if (target == NULL || model == NULL || input == NULL || shape_arg == NULL || raw == NULL ||
        threads < 1 || threads > MAX_THREADS || concurrency < threads || seconds <= 0)
        usage();

    /* The request, packed once. */
    int64_t shape[8];
    size_t ndim = 0;
    for (const char *p = shape_arg; *p && ndim < 8;) {
        char *end;
        shape[ndim++] = strtoll(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p)
            usage();
    }
    FILE *f = fopen(raw, "rb");
    if (f == NULL) {
        perror(raw);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *bytes = malloc(n > 0 ? (size_t)n : 1);
    if (bytes == NULL || fread(bytes, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "grpc_load: cannot read %s\n", raw);
        return 1;
    }
    fclose(f);
    Inference__ModelInferRequest req = INFERENCE__MODEL_INFER_REQUEST__INIT;
    Inference__ModelInferRequest__InferInputTensor in =
        INFERENCE__MODEL_INFER_REQUEST__INFER_INPUT_TENSOR__INIT;
    Inference__ModelInferRequest__InferInputTensor *ins[1] = {&in};
    ProtobufCBinaryData contents = {(size_t)n, bytes};
    req.model_name = (char *)model;
    in.name = (char *)input;
    in.datatype = (char *)datatype;
    in.n_shape = ndim;
    in.shape = shape;
    req.n_inputs = 1;
    req.inputs = ins;
    req.n_raw_input_contents = 1;
    req.raw_input_contents = &contents;
    size_t size = protobuf_c_message_get_packed_size(&req.base);
    request_slice = grpc_slice_malloc(size);
    protobuf_c_message_pack(&req.base, GRPC_SLICE_START_PTR(request_slice));
    free(bytes);

    grpc_init();
    method = grpc_slice_from_static_string("/inference.GRPCInferenceService/ModelInfer");
    double t0 = now_s();
    measure_from = t0 + warmup;
    measure_until = measure_from + seconds;
    worker_t w[MAX_THREADS];
    memset(w, 0, sizeof(w));
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_arg args[2] = {
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = -1},
        /* one connection per thread, not one shared by every channel to the same target */
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)"grpc.use_local_subchannel_pool",
         .value.integer = 1},
    };
    grpc_channel_args cargs = {2, args};
    for (int k = 0; k < threads; k++) {
        w[k].ncalls = concurrency / threads + (k < concurrency % threads);
        w[k].channel = grpc_channel_create(target, creds, &cargs);
        w[k].cq = grpc_completion_queue_create_for_next(NULL);
        w[k].calls = calloc((size_t)w[k].ncalls, sizeof(load_call_t));
        w[k].samples = malloc(MAX_SAMPLES * sizeof(double));
        if (w[k].calls == NULL || w[k].samples == NULL) {
            fprintf(stderr, "grpc_load: out of memory\n");
            return 1;
        }
        pthread_create(&w[k].tid, NULL, worker_main, &w[k]);
    }
    uint64_t done = 0, errors = 0;
    size_t total = 0;
    for (int k = 0; k < threads; k++) {
        pthread_join(w[k].tid, NULL);
        done += w[k].done;
        errors += w[k].errors;
        total += w[k].nsamples;
    }
    double *all = malloc((total ? total : 1) * sizeof(double));
    size_t m = 0;
    for (int k = 0; k < threads; k++) {
        memcpy(all + m, w[k].samples, w[k].nsamples * sizeof(double));
        m += w[k].nsamples;
        grpc_completion_queue_shutdown(w[k].cq);
        while (grpc_completion_queue_next(w[k].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(w[k].cq);
        grpc_channel_destroy(w[k].channel);
        free(w[k].calls);
        free(w[k].samples);
    }
    grpc_channel_credentials_release(creds);
    qsort(all, m, sizeof(double), cmp_double);
    double p50 = m ? all[m / 2] : 0, p99 = m ? all[(size_t)((double)m * 0.99)] : 0;
    free(all);
    printf("grpc_load: target=%s model=%s concurrency=%d threads=%d message_bytes=%zu\n", target,
           model, concurrency, threads, size);
    printf("grpc_load: rps=%.1f calls=%llu errors=%llu seconds=%.2f p50_ms=%.3f p99_ms=%.3f\n",
           (double)done / seconds, (unsigned long long)done, (unsigned long long)errors, seconds,
           p50, p99);
    grpc_slice_unref(request_slice);
    grpc_shutdown();
    return atomic_load(&failed) != 0 || done == 0 ? 1 : 0;
}
