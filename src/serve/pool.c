#include "serve/pool.h"

#include "core/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <urcu.h>

/*
 * Pool threads run below the event loops' CPU priority: on a busy machine the loops still get
 * the CPU first, so refusals and light requests are answered at once while slow Runs wait.
 */
#define POOL_NICE 5

struct mg_pool {
    pthread_mutex_t mu;
    pthread_cond_t ready;   /* a job was queued (or the pool stops) */
    pthread_cond_t arrived; /* the same, for threads gathering a batch (CLOCK_MONOTONIC) */
    int gathering;          /* threads waiting in mg_pool_gather */
    mg_pool_job_t *head, *tail;
    int stopping;
    int nthreads;
    pthread_t tids[];
};

static void *worker(void *arg)
{
    mg_pool_t *p = arg;
    rcu_register_thread();
    /* Linux applies a nice value per thread (the tid); raising it needs no privilege. */
    int cur = getpriority(PRIO_PROCESS, (id_t)gettid());
    setpriority(PRIO_PROCESS, (id_t)gettid(), cur + POOL_NICE);
    /* Long slices: a loop or client thread waking up on this core preempts the Run at once. */
    mg_cpu_set_slice(MG_CPU_SLICE_BATCH_NS);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->ready, &p->mu);
        mg_pool_job_t *job = p->head;
        if (job == NULL)
            break; /* stopping, and nothing is left */
        p->head = job->next;
        if (p->head == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        job->run(job);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    rcu_unregister_thread();
    return NULL;
}

int mg_pool_new(mg_pool_t **out, int nthreads, mg_err_t *err)
{
    if (nthreads < 1 || nthreads > 1024)
        return mg_err_set(err, MG_EINVAL, "execution pool: 1 to 1024 threads, not %d", nthreads);
    mg_pool_t *p = calloc(1, sizeof(*p) + sizeof(pthread_t) * (size_t)nthreads);
    if (p == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->ready, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->arrived, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&p->tids[i], NULL, worker, p) != 0) {
            mg_pool_free(p);
            return mg_err_set(err, MG_ERUNTIME, "execution pool: cannot start thread %d", i);
        }
        p->nthreads = i + 1;
    }
    *out = p;
    return 0;
}

int mg_pool_submit(mg_pool_t *p, mg_pool_job_t *job)
{
    job->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return MG_ECANCELED;
    }
    if (p->tail != NULL)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->ready);
    if (p->gathering > 0)
        pthread_cond_broadcast(&p->arrived);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* Moves the queued jobs `accept` lets join into out[]; under the lock. */
static size_t take_joining(mg_pool_t *p, mg_pool_accept_fn accept, void *ctx, int64_t *rows,
                           int64_t max_rows, mg_pool_job_t **out, size_t n, size_t cap)
{
    mg_pool_job_t **link = &p->head, *prev = NULL;
    while (*link != NULL && n < cap && *rows < max_rows) {
        mg_pool_job_t *job = *link;
        int64_t add = accept(ctx, job, *rows);
        if (add > 0 && *rows + add <= max_rows) {
            *link = job->next;
            if (p->tail == job)
                p->tail = prev;
            *rows += add;
            out[n++] = job;
            continue;
        }
        prev = job;
        link = &job->next;
    }
    return n;
}

size_t mg_pool_gather(mg_pool_t *p, mg_pool_accept_fn accept, void *ctx, int64_t rows,
                      int64_t want_rows, int64_t max_rows, int64_t until_ns, mg_pool_job_t **out,
                      size_t cap)
{
    struct timespec until = {(time_t)(until_ns / 1000000000), (long)(until_ns % 1000000000)};
    size_t n = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        n = take_joining(p, accept, ctx, &rows, max_rows, out, n, cap);
        if (rows >= want_rows || rows >= max_rows || n == cap || p->stopping)
            break;
        p->gathering++;
        int rc = pthread_cond_timedwait(&p->arrived, &p->mu, &until);
        p->gathering--;
        if (rc != 0) { /* the delay is over: take what came meanwhile, and go */
            n = take_joining(p, accept, ctx, &rows, max_rows, out, n, cap);
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

void mg_pool_stop(mg_pool_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    int joined = p->stopping;
    p->stopping = 1;
    pthread_cond_broadcast(&p->ready);
    pthread_mutex_unlock(&p->mu);
    if (joined)
        return;
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->tids[i], NULL);
}

void mg_pool_free(mg_pool_t *p)
{
    if (p == NULL)
        return;
    mg_pool_stop(p);
    pthread_cond_destroy(&p->ready);
    pthread_cond_destroy(&p->arrived);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
