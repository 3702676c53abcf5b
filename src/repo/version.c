#include "repo/version_internal.h"

#include <stdlib.h>
#include <string.h>

mg_model_version_t *mg_model_version_alloc(const char *model, int64_t number,
                                           const mg_model_config_t *cfg)
{
    mg_model_version_t *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    v->model_name = strdup(model);
    v->live = aligned_alloc(64, sizeof(*v->live));
    if (v->model_name == NULL || v->live == NULL ||
        mg_breaker_new(&v->breaker, &cfg->breaker) != 0) {
        free(v->model_name);
        free(v->live);
        free(v);
        return NULL;
    }
    atomic_init(&v->live->pins, 0);
    atomic_init(&v->live->cursor, 0);
    atomic_init(&v->live->inflight, 0);
    v->number = number;
    mg_version_format(number, v->text);
    v->state = MG_MODEL_FAILED;
    v->config = *cfg;
    return v;
}

void mg_model_version_free(mg_model_version_t *v)
{
    if (v == NULL)
        return;
    for (int i = 0; i < v->nsessions; i++)
        mg_session_free(v->sessions[i]);
    free(v->sessions);
    for (size_t i = 0; i < v->nfiles; i++)
        free(v->files[i].name);
    free(v->files);
    free(v->model_name);
    free(v->live);
    mg_breaker_free(v->breaker);
    for (int i = 0; i < MG_CONFIG_IO_MAX; i++)
        mg_labels_deinit(&v->labels[i]);
    free(v);
}

const char *mg_model_state_name(mg_model_state_t s)
{
    switch (s) {
    case MG_MODEL_READY: return "READY";
    case MG_MODEL_LOADING: return "LOADING";
    case MG_MODEL_DRAINING: return "DRAINING";
    case MG_MODEL_UNLOADED: return "UNLOADED";
    case MG_MODEL_FAILED: return "FAILED";
    default: return "UNAVAILABLE";
    }
}

const char *mg_model_state_triton(mg_model_state_t s)
{
    switch (s) {
    case MG_MODEL_READY: return "READY";
    case MG_MODEL_LOADING: return "LOADING";
    case MG_MODEL_DRAINING: return "UNLOADING";
    default: return "UNAVAILABLE";
    }
}

const char *mg_model_version_model(const mg_model_version_t *v)
{
    return v->model_name;
}

int64_t mg_model_version_number(const mg_model_version_t *v)
{
    return v->number;
}

const char *mg_model_version_text(const mg_model_version_t *v)
{
    return v->text;
}

mg_model_state_t mg_model_version_state(const mg_model_version_t *v)
{
    return v->state;
}

const char *mg_model_version_reason(const mg_model_version_t *v)
{
    return v->reason;
}

const mg_model_config_t *mg_model_version_config(const mg_model_version_t *v)
{
    return &v->config;
}

const mg_labels_t *mg_model_version_labels(const mg_model_version_t *v, mg_str_t output)
{
    for (int i = 0; i < v->config.noutputs; i++) {
        const char *name = v->config.outputs[i].name;
        if (v->labels[i].text != NULL && strlen(name) == output.len &&
            memcmp(name, output.ptr, output.len) == 0)
            return &v->labels[i];
    }
    return NULL;
}

const unsigned char *mg_model_version_sha256(const mg_model_version_t *v)
{
    return v->sha256;
}

const mg_session_t *mg_model_version_meta(const mg_model_version_t *v)
{
    return v->nsessions > 0 ? v->sessions[0] : NULL;
}

const mg_session_t *mg_model_version_instance(const mg_model_version_t *v, int i)
{
    return i >= 0 && i < v->nsessions ? v->sessions[i] : NULL;
}

int64_t mg_model_version_batch_rows(const mg_model_version_t *v)
{
    return v->batch_rows;
}

bool mg_model_version_on_pool(const mg_model_version_t *v)
{
    return v->on_pool;
}

/* The calling thread's session slot (mg_model_version_bind_thread); -1: round robin. */
static _Thread_local int thread_slot = -1;

void mg_model_version_bind_thread(int index)
{
    thread_slot = index;
}

mg_session_t *mg_model_version_session(mg_model_version_t *v)
{
    if (thread_slot >= 0)
        return v->sessions[(unsigned)thread_slot % (unsigned)v->nsessions];
    unsigned i = atomic_fetch_add_explicit(&v->live->cursor, 1, memory_order_relaxed);
    return v->sessions[i % (unsigned)v->nsessions];
}

mg_breaker_t *mg_model_version_breaker(const mg_model_version_t *v)
{
    return v->breaker;
}

void mg_model_version_unpin(mg_model_version_t *v)
{
    if (v != NULL)
        atomic_fetch_sub_explicit(&v->live->pins, 1, memory_order_release);
}

int mg_model_version_pins(const mg_model_version_t *v)
{
    return atomic_load_explicit(&v->live->pins, memory_order_acquire);
}

atomic_int *mg_model_version_inflight(mg_model_version_t *v)
{
    return &v->live->inflight;
}
