/*
 * A background thread that calls a function every period, and once more when stopped: the
 * shape shared by obs's sampler, access-log writer and trace exporter.
 */
#ifndef MG_OBS_TICKER_H
#define MG_OBS_TICKER_H

#include <pthread.h>
#include <stdbool.h>

/** Called every period on the ticker's thread; `last` is true on the final call at stop. */
typedef void (*mg_ticker_fn)(void *ctx, bool last);

/** A ticker; the caller owns the storage. Fields are the ticker's. */
typedef struct mg_ticker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping, running;
    int period_ms;
    mg_ticker_fn fn;
    void *ctx;
} mg_ticker_t;

/**
 * Starts a thread that calls fn(ctx, false) every `period_ms` (> 0). Returns 0, or MG_EIO
 * when the thread cannot be created (then fn is never called). Thread: any.
 */
int mg_ticker_start(mg_ticker_t *t, int period_ms, mg_ticker_fn fn, void *ctx);

/**
 * Wakes the thread, lets it call fn(ctx, true) once, and joins it. Does nothing for a ticker
 * that is not running. Thread: any but the ticker's.
 */
void mg_ticker_stop(mg_ticker_t *t);

#endif
