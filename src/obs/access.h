/*
 * The access log: one JSON line per request (time, method, path, status, latency, bytes in
 * and out, model, version, route reason, trace id), to a file or stdout.
 *
 * A request thread formats its line into a private ring buffer (no lock, no syscall); a writer
 * thread drains every thread's ring to the file ten times a second. When a ring is full
 * (the disk is slower than the traffic) the line is dropped and counted, never waited for.
 */
#ifndef MG_OBS_ACCESS_H
#define MG_OBS_ACCESS_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stdint.h>

/**
 * Opens `path` for appending ("-": standard output) and starts the writer thread. Returns 0,
 * MG_EIO (cannot open: `err` says why), MG_EEXIST or MG_ENOMEM. Thread: start-up.
 */
int mg_access_init(const char *path, mg_err_t *err);

/** Writes what is buffered, stops the writer and closes the file. Thread: shutdown. */
void mg_access_shutdown(void);

/** True when an access log is open. Thread: any. */
bool mg_access_enabled(void);

/** One request as the access log records it; empty strings are left out. */
typedef struct mg_access_entry {
    int64_t unix_ns; /* when the request began */
    mg_str_t method, path;
    int status;
    int64_t latency_ns;
    uint64_t bytes_in, bytes_out;
    mg_str_t model, version, route_reason, trace_id;
} mg_access_entry_t;

/** Buffers one line. Never blocks; drops (and counts) when the ring is full. Thread: any. */
void mg_access_log(const mg_access_entry_t *e);

/** Lines dropped since start. Thread: any. */
uint64_t mg_access_dropped(void);

/** Lines written since start. Thread: any. */
uint64_t mg_access_written(void);

#endif
