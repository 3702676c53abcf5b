/*
 * Access log rings: each thread that logs owns a single-producer ring of RING_BYTES; the
 * writer thread is its single consumer. The producer publishes `head` with release after a
 * whole line is in, so the writer only ever sees whole lines.
 */
#include "obs/access.h"

#include "obs/ticker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING_BYTES (256u * 1024u)
#define LINE_MAX_  2048

typedef struct ring {
    _Alignas(64) _Atomic uint64_t head; /* bytes ever written by the producer */
    _Alignas(64) _Atomic uint64_t tail; /* bytes ever consumed by the writer */
    struct ring *next;
    char data[RING_BYTES];
} ring_t;

static struct {
    atomic_bool enabled;
    atomic_uint generation;
    int fd;
    bool close_fd;
    pthread_mutex_t lock; /* registration */
    ring_t *_Atomic rings;
    mg_ticker_t writer;
    _Atomic uint64_t dropped, written;
} a = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local ring_t *my_ring;
static _Thread_local unsigned my_generation;
static _Thread_local int64_t cached_second = -1;
static _Thread_local char cached_stamp[24]; /* "2026-01-02T03:04:05" */

static ring_t *ring_self(void)
{
    unsigned gen = atomic_load_explicit(&a.generation, memory_order_acquire);
    if (my_ring != NULL && my_generation == gen)
        return my_ring;
    ring_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    pthread_mutex_lock(&a.lock);
    r->next = atomic_load_explicit(&a.rings, memory_order_relaxed);
    atomic_store_explicit(&a.rings, r, memory_order_release);
    pthread_mutex_unlock(&a.lock);
    my_ring = r;
    my_generation = gen;
    return r;
}

bool mg_access_enabled(void)
{
    return atomic_load_explicit(&a.enabled, memory_order_relaxed);
}

uint64_t mg_access_dropped(void)
{
    return atomic_load_explicit(&a.dropped, memory_order_relaxed);
}

uint64_t mg_access_written(void)
{
    return atomic_load_explicit(&a.written, memory_order_relaxed);
}

/* Appends `s` as a JSON string (quotes included) to line[*n..cap); cuts what does not fit. */
static void put_string(char *line, size_t *n, size_t cap, mg_str_t s)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = *n;
    if (k + 2 >= cap)
        return;
    line[k++] = '"';
    for (size_t i = 0; i < s.len && k + 8 < cap; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') {
            line[k++] = '\\';
            line[k++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(line + k, "\\u00", 4);
            line[k + 4] = hex[c >> 4];
            line[k + 5] = hex[c & 15];
            k += 6;
        } else {
            line[k++] = (char)c;
        }
    }
    line[k++] = '"';
    *n = k;
}

static void put_field(char *line, size_t *n, size_t cap, const char *key, mg_str_t v)
{
    if (v.len == 0)
        return;
    int k = snprintf(line + *n, cap - *n, ",\"%s\":", key);
    if (k < 0 || (size_t)k >= cap - *n)
        return;
    *n += (size_t)k;
    put_string(line, n, cap, v);
}

void mg_access_log(const mg_access_entry_t *e)
{
    if (!mg_access_enabled())
        return;
    ring_t *r = ring_self();
    if (r == NULL) {
        atomic_fetch_add_explicit(&a.dropped, 1, memory_order_relaxed);
        return;
    }
    char line[LINE_MAX_];
    size_t cap = sizeof(line) - 2, n = 0;
    int64_t sec = e->unix_ns / 1000000000;
    if (sec != cached_second) {
        /* gmtime once a second per thread, not once a line. */
        time_t tt = (time_t)sec;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(cached_stamp, sizeof(cached_stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        cached_second = sec;
    }
    int k = snprintf(line, cap, "{\"ts\":\"%s.%06lldZ\",\"method\":", cached_stamp,
                     (long long)(e->unix_ns % 1000000000 / 1000));
    n = k > 0 ? (size_t)k : 0;
    put_string(line, &n, cap, e->method);
    if (n < cap)
        n += (size_t)snprintf(line + n, cap - n, ",\"path\":");
    put_string(line, &n, cap, e->path);
    if (n < cap)
        n += (size_t)snprintf(line + n, cap - n,
                              ",\"status\":%d,\"latency_ms\":%.3f,\"bytes_in\":%llu,"
                              "\"bytes_out\":%llu",
                              e->status, (double)e->latency_ns / 1e6,
                              (unsigned long long)e->bytes_in, (unsigned long long)e->bytes_out);
    if (n > cap)
        n = cap;
    put_field(line, &n, cap, "model", e->model);
    put_field(line, &n, cap, "version", e->version);
    put_field(line, &n, cap, "route_reason", e->route_reason);
    put_field(line, &n, cap, "trace_id", e->trace_id);
    line[n++] = '}';
    line[n++] = '\n';

    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (RING_BYTES - (head - tail) < n) {
        atomic_fetch_add_explicit(&a.dropped, 1, memory_order_relaxed);
        return;
    }
    size_t at = (size_t)(head % RING_BYTES), first = RING_BYTES - at < n ? RING_BYTES - at : n;
    memcpy(r->data + at, line, first);
    memcpy(r->data, line + first, n - first);
    atomic_store_explicit(&r->head, head + n, memory_order_release);
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(a.fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* a full disk loses lines; the request path never notices */
        p += w;
        n -= (size_t)w;
    }
}

/* Writes every ring's whole lines out. */
static void drain(void)
{
    for (ring_t *r = atomic_load_explicit(&a.rings, memory_order_acquire); r != NULL; r = r->next) {
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        if (head == tail)
            continue;
        size_t n = (size_t)(head - tail), at = (size_t)(tail % RING_BYTES);
        size_t first = RING_BYTES - at < n ? RING_BYTES - at : n;
        write_all(r->data + at, first);
        write_all(r->data, n - first);
        uint64_t lines = 0;
        for (size_t i = 0; i < first; i++)
            lines += r->data[at + i] == '\n';
        for (size_t i = 0; i < n - first; i++)
            lines += r->data[i] == '\n';
        atomic_fetch_add_explicit(&a.written, lines, memory_order_relaxed);
        atomic_store_explicit(&r->tail, head, memory_order_release);
    }
}

static void drain_tick(void *ctx, bool last)
{
    (void)ctx;
    (void)last;
    drain();
}

int mg_access_init(const char *path, mg_err_t *err)
{
    if (a.writer.running)
        return mg_err_set(err, MG_EEXIST, "access log: already open");
    if (strcmp(path, "-") == 0) {
        a.fd = STDOUT_FILENO;
        a.close_fd = false;
    } else {
        a.fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (a.fd < 0)
            return mg_err_set(err, MG_EIO, "--access-log: cannot open %s: %s", path,
                              strerror(errno));
        a.close_fd = true;
    }
    atomic_store(&a.dropped, 0);
    atomic_store(&a.written, 0);
    atomic_fetch_add_explicit(&a.generation, 1, memory_order_release);
    if (mg_ticker_start(&a.writer, 100, drain_tick, NULL) != 0) {
        if (a.close_fd)
            close(a.fd);
        a.fd = -1;
        return mg_err_set(err, MG_EIO, "access log: cannot start the writer thread");
    }
    atomic_store(&a.enabled, true);
    return 0;
}

void mg_access_shutdown(void)
{
    if (!a.writer.running)
        return;
    atomic_store(&a.enabled, false);
    mg_ticker_stop(&a.writer);
    ring_t *r = atomic_exchange(&a.rings, NULL);
    while (r != NULL) {
        ring_t *next = r->next;
        free(r);
        r = next;
    }
    atomic_fetch_add_explicit(&a.generation, 1, memory_order_release);
    if (a.close_fd)
        close(a.fd);
    a.fd = -1;
}
