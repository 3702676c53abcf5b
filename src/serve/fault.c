#include "serve/fault.h"

#include "core/jsonx.h"
#include "core/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

typedef struct fault {
    char model[256];
    int64_t version;
    int fail_every;
    int delay_ms;
    uint64_t runs;
} fault_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static fault_t faults[MG_FAULTS_MAX];
static int nfaults;
static atomic_int active; /* nfaults, for the lock-free check when there is none */

static int set(const char *model, size_t model_len, int64_t version, int fail_every, int delay_ms)
{
    int rc = 0;
    pthread_mutex_lock(&lock);
    int i = 0;
    while (i < nfaults && !(faults[i].version == version && strlen(faults[i].model) == model_len &&
                            memcmp(faults[i].model, model, model_len) == 0))
        i++;
    if (fail_every == 0 && delay_ms == 0) {
        if (i < nfaults)
            faults[i] = faults[--nfaults];
    } else if (i == nfaults && nfaults == MG_FAULTS_MAX) {
        rc = MG_ENOMEM;
    } else {
        if (i == nfaults) {
            memset(&faults[i], 0, sizeof(faults[i]));
            memcpy(faults[i].model, model, model_len);
            faults[i].version = version;
            nfaults++;
        }
        faults[i].fail_every = fail_every;
        faults[i].delay_ms = delay_ms;
        faults[i].runs = 0;
    }
    atomic_store(&active, nfaults);
    pthread_mutex_unlock(&lock);
    return rc;
}

int mg_fault_set_json(const char *model, size_t model_len, int64_t version, const char *json,
                      size_t len, mg_err_t *err)
{
    static const char *const known[] = {"fail_every", "delay_ms"};
    if (model_len == 0 || model_len >= sizeof(faults[0].model) || version <= 0)
        return mg_err_set(err, MG_EINVAL, "fault: bad model name or version");
    json_error_t jerr;
    json_t *root = json_loadb(len ? json : "{}", len ? len : 2, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mg_err_set(err, MG_EINVAL, "fault: line %d column %d: %s", jerr.line, jerr.column,
                          jerr.text);
    int rc = MG_EINVAL;
    const char *unknown;
    json_t *f = json_object_get(root, "fail_every"), *d = json_object_get(root, "delay_ms");
    if (!json_is_object(root))
        mg_err_set(err, MG_EINVAL, "fault: must be {\"fail_every\": N, \"delay_ms\": D}");
    else if ((unknown = mg_jsonx_unknown_field(root, known, 2)) != NULL)
        mg_err_set(err, MG_EINVAL, "fault: unknown field '%s'", unknown);
    else if (f != NULL &&
             (!json_is_integer(f) || json_integer_value(f) < 0 || json_integer_value(f) > 1000000))
        mg_err_set(err, MG_EINVAL, "fault: 'fail_every' must be an integer from 0 to 1000000");
    else if (d != NULL &&
             (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > 60000))
        mg_err_set(err, MG_EINVAL, "fault: 'delay_ms' must be an integer from 0 to 60000");
    else
        rc = 0;
    if (rc == 0) {
        int fail_every = f ? (int)json_integer_value(f) : 0;
        int delay_ms = d ? (int)json_integer_value(d) : 0;
        rc = set(model, model_len, version, fail_every, delay_ms);
        if (rc != 0)
            mg_err_set(err, rc, "fault: at most %d faults at once", MG_FAULTS_MAX);
        else
            mg_log(MG_LOG_WARN, "fault", "set model=%.*s version=%lld fail_every=%d delay_ms=%d",
                   (int)model_len, model, (long long)version, fail_every, delay_ms);
    }
    json_decref(root);
    return rc;
}

int mg_fault_before_run(const mg_model_version_t *v, const mg_infer_request_t *req, mg_err_t *err)
{
    if (atomic_load_explicit(&active, memory_order_relaxed) == 0)
        return 0;
    int delay_ms = 0, failing = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nfaults; i++) {
        fault_t *f = &faults[i];
        if (f->version != mg_model_version_number(v) ||
            strcmp(f->model, mg_model_version_model(v)) != 0)
            continue;
        f->runs++;
        delay_ms = f->delay_ms;
        failing = f->fail_every > 0 && f->runs % (uint64_t)f->fail_every == 0;
        break;
    }
    pthread_mutex_unlock(&lock);
    if (delay_ms > 0) {
        struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!failing)
        return 0;
    int rc = mg_session_validate(mg_model_version_meta(v), req, err);
    if (rc != 0)
        return rc;
    return mg_err_set(err, MG_ERUNTIME, "onnxruntime: injected fault (model '%s' version %s)",
                      mg_model_version_model(v), mg_model_version_text(v));
}
