/* The periodic background thread of obs/ticker.h. */
#include "obs/ticker.h"

#include "core/err.h"

#include <time.h>

static void *ticker_main(void *arg)
{
    mg_ticker_t *t = arg;
    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long ns = until.tv_nsec + (long)(t->period_ms % 1000) * 1000000;
        until.tv_sec += t->period_ms / 1000 + ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&t->wake, &t->lock, &until);
        if (t->stopping)
            break;
        pthread_mutex_unlock(&t->lock);
        t->fn(t->ctx, false);
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    t->fn(t->ctx, true);
    return NULL;
}

int mg_ticker_start(mg_ticker_t *t, int period_ms, mg_ticker_fn fn, void *ctx)
{
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    t->stopping = false;
    t->period_ms = period_ms > 0 ? period_ms : 1000;
    t->fn = fn;
    t->ctx = ctx;
    if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->lock);
        t->running = false;
        return MG_EIO;
    }
    t->running = true;
    return 0;
}

void mg_ticker_stop(mg_ticker_t *t)
{
    if (!t->running)
        return;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    t->running = false;
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
}
