/*
 * grpc_load: a closed-loop load generator for KServe v2 ModelInfer over gRPC. The calls are
 * real gRPC unary calls on HTTP/2 (libnghttp2 for the framing and HPACK): a POST to
 * /inference.GRPCInferenceService/ModelInfer with content-type application/grpc and te:
 * trailers, the message with gRPC's 5-byte length prefix, and an answer that counts only
 * with HTTP status 200, one length-prefixed message and grpc-status 0 in its trailers. It is
 * built as lean as wrk is for HTTP/1.1 (one blocking socket per thread, every frame a read
 * produced sent with one writev, the request's DATA straight from the one encoded message as
 * wrk sends its body, never copied per call), so on a 2-core machine the client takes about as
 * little CPU per call from the server as wrk does per request: gRPC core's own client costs
 * several times that. T threads, each with one connection, keep C/T calls in flight each;
 * every call sends the same ModelInferRequest with one input in raw_input_contents.
 *
 *   bench_grpc_load --target HOST:PORT --model NAME --input NAME --datatype DT --shape 1,64
 *                   --raw FILE [--concurrency C] [--threads T] [--seconds S] [--warmup S]
 *                   [--check-echo]
 *
 * `--raw FILE` holds the input's bytes (little-endian, as raw_input_contents carries them).
 * `--check-echo` (for an identity model) also counts an answer only when its first
 * raw_output_contents holds exactly the input's bytes: the framing is checked end to end.
 * The last line is machine-readable:
 *   grpc_load: rps=41234.5 calls=412345 errors=0 seconds=10.00 p50_ms=1.40 p99_ms=3.10
 * Exits 1 when a call fails (after printing its status and message) or nothing answers.
 */
#include "proto/kserve_pb.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_SAMPLES (1u << 21)
#define PATH        "/inference.GRPCInferenceService/ModelInfer"
#define MAX_IOV     1024 /* pieces a writev takes (Linux's IOV_MAX) */

typedef struct load_call {
    struct worker *w;
    int32_t stream;
    size_t sent;       /* bytes of the framed request handed to DATA frames so far */
    size_t got;        /* bytes of the answer's DATA */
    int http_status;   /* :status */
    int grpc_status;   /* from the trailers; -1: none */
    char message[200]; /* grpc-message */
    double started;
    uint8_t *ans; /* with --check-echo: the answer's DATA so far (kept from call to call) */
    size_t ans_cap;
} load_call_t;

/* A piece of a worker's next write. */
typedef struct piece {
    const uint8_t *ptr; /* NULL: `off` into the worker's `out` (which may move while it fills) */
    size_t off, len;
} piece_t;

typedef struct worker {
    pthread_t tid;
    int ncalls, inflight;
    int fd;
    nghttp2_session *session;
    load_call_t *calls;
    double *samples;
    size_t nsamples;
    uint64_t done, errors;
    uint8_t *out; /* the frames nghttp2 serialised and DATA frame headers, for one writev */
    size_t nout, capout;
    piece_t *pieces; /* the writev's pieces, in order */
    size_t npieces, cappieces;
} worker_t;

static const char *target;
static struct sockaddr_storage addr;
static socklen_t addrlen;
static uint8_t *framed; /* the request message with its 5-byte gRPC prefix */
static size_t framed_len;
static int check_echo;
static uint8_t *raw_bytes; /* the input's bytes, for --check-echo */
static size_t raw_len;
static double measure_from, measure_until;
static atomic_int failed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The next piece of the write being gathered; NULL when out of memory. */
static piece_t *add_piece(worker_t *w)
{
    if (w->npieces == w->cappieces) {
        size_t cap = w->cappieces ? w->cappieces * 2 : 64;
        piece_t *p = realloc(w->pieces, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        w->pieces = p;
        w->cappieces = cap;
    }
    return &w->pieces[w->npieces++];
}

/* Copies `n` bytes to the end of `out` as a piece of their own; -1 when out of memory. */
static int add_copy(worker_t *w, const uint8_t *data, size_t n)
{
    if (w->nout + n > w->capout) {
        size_t cap = w->capout * 2 > w->nout + n ? w->capout * 2 : w->nout + n;
        uint8_t *p = realloc(w->out, cap);
        if (p == NULL)
            return -1;
        w->out = p;
        w->capout = cap;
    }
    piece_t *pc = add_piece(w);
    if (pc == NULL)
        return -1;
    memcpy(w->out + w->nout, data, n);
    *pc = (piece_t){NULL, w->nout, n};
    w->nout += n;
    return 0;
}

/*
 * A DATA frame's length: its bytes are not copied (NGHTTP2_DATA_FLAG_NO_COPY); send_data
 * adds them to the write from the framed request, where the frame's payload starts at
 * `sent` before this call moves it.
 */
static ssize_t read_body(nghttp2_session *s, int32_t stream, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s, (void)stream, (void)buf, (void)ud;
    load_call_t *c = src->ptr;
    size_t n = framed_len - c->sent;
    if (n > len)
        n = len;
    c->sent += n;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (c->sent == framed_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* nghttp2 sends the DATA frame read_body sized: its header (copied), then its payload. */
static int send_data(nghttp2_session *s, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *src, void *ud)
{
    (void)s, (void)frame;
    worker_t *w = ud;
    load_call_t *c = src->ptr;
    if (add_copy(w, framehd, 9) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    piece_t *pc = add_piece(w);
    if (pc == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    /* one frame of a stream at a time: read_body has just moved `sent` past this one */
    *pc = (piece_t){framed + c->sent - length, 0, length};
    return 0;
}

#define HDR(n, v)                                                                                  \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                                  \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                           \
    }

static void start_call(worker_t *w, load_call_t *c)
{
    uint8_t *ans = c->ans;
    size_t cap = c->ans_cap;
    memset(c, 0, sizeof(*c));
    c->ans = ans;
    c->ans_cap = cap;
    c->w = w;
    c->grpc_status = -1;
    nghttp2_nv hdrs[] = {
        HDR(":method", "POST"),
        HDR(":scheme", "http"),
        HDR(":path", PATH),
        HDR(":authority", target),
        HDR("content-type", "application/grpc"),
        HDR("te", "trailers"),
    };
    nghttp2_data_provider body = {.source.ptr = c, .read_callback = read_body};
    c->started = now_s();
    c->stream =
        nghttp2_submit_request(w->session, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &body, c);
    if (c->stream < 0) {
        fprintf(stderr, "grpc_load: cannot start a call: %s\n", nghttp2_strerror(c->stream));
        exit(1);
    }
    w->inflight++;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)f, (void)flags, (void)ud;
    load_call_t *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (c == NULL)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0)
        c->http_status = atoi((const char *)value);
    else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0)
        c->grpc_status = atoi((const char *)value);
    else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(c->message, sizeof(c->message), "%.*s", (int)vlen, (const char *)value);
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream, const uint8_t *data,
                   size_t len, void *ud)
{
    (void)flags, (void)data, (void)ud;
    load_call_t *c = nghttp2_session_get_stream_user_data(s, stream);
    if (c == NULL)
        return 0;
    if (check_echo) {
        if (c->got + len > c->ans_cap) {
            size_t cap = c->ans_cap * 2 > c->got + len ? c->ans_cap * 2 : c->got + len;
            uint8_t *p = realloc(c->ans, cap);
            if (p == NULL)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            c->ans = p;
            c->ans_cap = cap;
        }
        memcpy(c->ans + c->got, data, len);
    }
    c->got += len;
    return 0;
}

/* --check-echo: whether the answer is one message whose first raw output is the input. */
static int echoed(const load_call_t *c)
{
    if (c->got < 5 || c->ans[0] != 0)
        return 0;
    uint32_t be;
    memcpy(&be, c->ans + 1, 4);
    if ((size_t)ntohl(be) != c->got - 5)
        return 0;
    Inference__ModelInferResponse *r =
        inference__model_infer_response__unpack(NULL, c->got - 5, c->ans + 5);
    if (r == NULL)
        return 0;
    int same = r->n_raw_output_contents >= 1 && r->raw_output_contents[0].len == raw_len &&
               memcmp(r->raw_output_contents[0].data, raw_bytes, raw_len) == 0;
    inference__model_infer_response__free_unpacked(r, NULL);
    return same;
}

/* The answer is complete: count it and, while the run lasts, send the next call. */
static int on_close(nghttp2_session *s, int32_t stream, uint32_t code, void *ud)
{
    (void)ud;
    load_call_t *c = nghttp2_session_get_stream_user_data(s, stream);
    if (c == NULL)
        return 0;
    worker_t *w = c->w;
    w->inflight--;
    double t = now_s();
    /* One message: at least its prefix, which the server never compresses unasked. */
    int ok = code == NGHTTP2_NO_ERROR && c->http_status == 200 && c->grpc_status == 0 && c->got > 5;
    if (ok && check_echo && !echoed(c)) {
        ok = 0;
        snprintf(c->message, sizeof(c->message), "the answer's raw output is not the input");
    }
    if (!ok && atomic_fetch_add(&failed, 1) == 0)
        fprintf(stderr, "grpc_load: call failed: http %d, grpc-status %d: %s (stream error %u)\n",
                c->http_status, c->grpc_status, c->message, code);
    if (c->started >= measure_from && t <= measure_until) {
        w->done++;
        w->errors += !ok;
        if (w->nsamples < MAX_SAMPLES)
            w->samples[w->nsamples++] = (t - c->started) * 1e3;
    }
    if (t < measure_until && atomic_load(&failed) == 0)
        start_call(w, c);
    return 0;
}

/* Everything nghttp2 has to send, gathered, then written with as few writev calls as it takes. */
static int flush_out(worker_t *w)
{
    w->nout = 0;
    w->npieces = 0;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(w->session, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (add_copy(w, data, (size_t)n) != 0)
            return -1;
    }
    struct iovec iov[MAX_IOV];
    size_t next = 0; /* the first piece not yet in iov */
    size_t done = 0; /* bytes of that piece already written */
    while (next < w->npieces) {
        int k = 0;
        for (size_t i = next; i < w->npieces && k < MAX_IOV; i++, k++) {
            const piece_t *pc = &w->pieces[i];
            const uint8_t *base = pc->ptr != NULL ? pc->ptr : w->out + pc->off;
            size_t skip = i == next ? done : 0;
            iov[k] = (struct iovec){(void *)(base + skip), pc->len - skip};
        }
        ssize_t wrote = writev(w->fd, iov, k);
        if (wrote <= 0)
            return -1;
        /* past every piece written whole, into the one written in part */
        size_t left = (size_t)wrote;
        while (next < w->npieces && left >= w->pieces[next].len - done) {
            left -= w->pieces[next].len - done;
            next++;
            done = 0;
        }
        done += left;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    w->fd = socket(addr.ss_family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (w->fd < 0 || connect(w->fd, (struct sockaddr *)&addr, addrlen) != 0) {
        perror("grpc_load: connect");
        exit(1);
    }
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data);
    nghttp2_session_client_new(&w->session, cb, w);
    nghttp2_session_callbacks_del(cb);
    /* Large windows: the answers never wait for a WINDOW_UPDATE. */
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                         {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24}};
    nghttp2_submit_settings(w->session, NGHTTP2_FLAG_NONE, settings, 2);
    nghttp2_session_set_local_window_size(w->session, NGHTTP2_FLAG_NONE, 0, 1 << 30);
    for (int i = 0; i < w->ncalls; i++)
        start_call(w, &w->calls[i]);
    static _Thread_local uint8_t in[1 << 16];
    while (w->inflight > 0) {
        if (flush_out(w) != 0) {
            fprintf(stderr, "grpc_load: cannot send\n");
            exit(1);
        }
        ssize_t n = read(w->fd, in, sizeof(in));
        if (n <= 0) {
            fprintf(stderr, "grpc_load: the server closed the connection\n");
            exit(1);
        }
        ssize_t used = nghttp2_session_mem_recv(w->session, in, (size_t)n);
        if (used < 0) {
            fprintf(stderr, "grpc_load: HTTP/2 error: %s\n", nghttp2_strerror((int)used));
            exit(1);
        }
    }
    nghttp2_session_terminate_session(w->session, NGHTTP2_NO_ERROR);
    flush_out(w);
    nghttp2_session_del(w->session);
    close(w->fd);
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
          "                       [--seconds S] [--warmup S] [--check-echo]\n",
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
        if (strcmp(a, "--check-echo") == 0) {
            check_echo = 1;
            continue;
        }
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

    /* HOST:PORT, numeric (the bench listens on loopback). */
    char host[256];
    const char *colon = strrchr(target, ':');
    if (colon == NULL || (size_t)(colon - target) >= sizeof(host))
        usage();
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
    char *h = host[0] == '[' ? host + 1 : host;
    if (h != host && h[strlen(h) - 1] == ']')
        h[strlen(h) - 1] = '\0';
    if (getaddrinfo(h, colon + 1, &hints, &ai) != 0) {
        fprintf(stderr, "grpc_load: %s is not a numeric HOST:PORT\n", target);
        return 2;
    }
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);

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
    framed_len = size + 5;
    framed = malloc(framed_len);
    if (framed == NULL) {
        fprintf(stderr, "grpc_load: out of memory\n");
        return 1;
    }
    /* gRPC's length prefix: a compressed flag (0), then the length, big-endian. */
    framed[0] = 0;
    uint32_t be = htonl((uint32_t)size);
    memcpy(framed + 1, &be, 4);
    protobuf_c_message_pack(&req.base, framed + 5);
    raw_bytes = bytes;
    raw_len = (size_t)n;

    double t0 = now_s();
    measure_from = t0 + warmup;
    measure_until = measure_from + seconds;
    worker_t w[MAX_THREADS];
    memset(w, 0, sizeof(w));
    for (int k = 0; k < threads; k++) {
        w[k].ncalls = concurrency / threads + (k < concurrency % threads);
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
        for (int i = 0; i < w[k].ncalls; i++)
            free(w[k].calls[i].ans);
        free(w[k].calls);
        free(w[k].samples);
        free(w[k].out);
        free(w[k].pieces);
    }
    qsort(all, m, sizeof(double), cmp_double);
    double p50 = m ? all[m / 2] : 0, p99 = m ? all[(size_t)((double)m * 0.99)] : 0;
    free(all);
    free(framed);
    free(raw_bytes);
    printf("grpc_load: target=%s model=%s concurrency=%d threads=%d message_bytes=%zu\n", target,
           model, concurrency, threads, size);
    printf("grpc_load: rps=%.1f calls=%llu errors=%llu seconds=%.2f p50_ms=%.3f p99_ms=%.3f\n",
           (double)done / seconds, (unsigned long long)done, (unsigned long long)errors, seconds,
           p50, p99);
    return atomic_load(&failed) != 0 || done == 0 ? 1 : 0;
}
