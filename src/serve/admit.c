#include "serve/admit.h"

int mg_admit_enter(mg_model_version_t *v, int default_max, mg_err_t *err)
{
    int max = mg_model_version_config(v)->max_inflight;
    if (max == 0)
        max = default_max;
    atomic_int *n = mg_model_version_inflight(v);
    if (max <= 0) {
        atomic_fetch_add_explicit(n, 1, memory_order_relaxed);
        return 0;
    }
    /* Take a slot only while one is free: a refused request never shows in the count. */
    int cur = atomic_load_explicit(n, memory_order_relaxed);
    do {
        if (cur >= max)
            return mg_err_set(err, MG_EOVERLOAD,
                              "model '%s' version %s is at its limit of %d requests in flight; "
                              "retry later",
                              mg_model_version_model(v), mg_model_version_text(v), max);
    } while (!atomic_compare_exchange_weak_explicit(n, &cur, cur + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 0;
}

void mg_admit_leave(mg_model_version_t *v)
{
    atomic_fetch_sub_explicit(mg_model_version_inflight(v), 1, memory_order_relaxed);
}

int mg_admit_inflight(mg_model_version_t *v)
{
    return atomic_load_explicit(mg_model_version_inflight(v), memory_order_relaxed);
}
