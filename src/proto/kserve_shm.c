/* Triton's system shared-memory JSON (proto/kserve_shm.h), over jansson (a control call). */
#include "proto/kserve_shm.h"

#include "core/jsonx.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int get_u64(json_t *root, const char *key, bool required, uint64_t *out, mg_err_t *err)
{
    json_t *v = json_object_get(root, key);
    if (v == NULL && !required)
        return 0;
    if (v == NULL || !json_is_integer(v) || json_integer_value(v) < 0)
        return mg_err_set(err, MG_EPARSE, "'%s' must be a non-negative integer", key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int mg_kserve_shm_decode_register(const char *body, size_t len, char *key, uint64_t *offset,
                                  uint64_t *byte_size, mg_err_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mg_err_set(err, MG_EPARSE, "register body: %s (line %d)", jerr.text, jerr.line);
    static const char *const known[] = {"key", "offset", "byte_size"};
    const char *unknown = json_is_object(root) ? mg_jsonx_unknown_field(root, known, 3) : NULL;
    json_t *k = json_object_get(root, "key");
    int rc = 0;
    *offset = 0;
    if (!json_is_object(root))
        rc =
            mg_err_set(err, MG_EPARSE,
                       "register body must be {\"key\": ..., \"offset\": ..., \"byte_size\": ...}");
    else if (unknown != NULL)
        rc = mg_err_set(err, MG_EPARSE, "register body: unknown field '%s'", unknown);
    else if (!json_is_string(k) || json_string_length(k) >= MG_KSERVE_SHM_KEY_MAX)
        rc = mg_err_set(err, MG_EPARSE, "'key' must be a string of under %d bytes",
                        MG_KSERVE_SHM_KEY_MAX);
    else if ((rc = get_u64(root, "offset", false, offset, err)) == 0 &&
             (rc = get_u64(root, "byte_size", true, byte_size, err)) == 0)
        snprintf(key, MG_KSERVE_SHM_KEY_MAX, "%s", json_string_value(k));
    json_decref(root);
    return rc;
}

int mg_kserve_shm_status_row(mg_buf_t *out, int first, const char *name, const char *key,
                             uint64_t offset, uint64_t byte_size)
{
    int rc = mg_buf_puts(out, first ? "{\"name\":" : ",{\"name\":");
    if (rc == 0)
        rc = mg_buf_json_string(out, name, strlen(name));
    if (rc == 0)
        rc = mg_buf_puts(out, ",\"key\":");
    if (rc == 0)
        rc = mg_buf_json_string(out, key, strlen(key));
    if (rc == 0)
        rc = mg_buf_printf(out, ",\"offset\":%" PRIu64 ",\"byte_size\":%" PRIu64 "}", offset,
                           byte_size);
    return rc;
}
