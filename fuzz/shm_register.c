/*
 * libFuzzer target for Triton's system shared-memory register body (proto/kserve_shm.h). A body
 * that decodes has a NUL-terminated key that fits MG_KSERVE_SHM_KEY_MAX and a byte size; one
 * that does not is MG_EPARSE naming the field. A status row written from what was decoded is
 * one JSON object (jansson reads it back) with that key, offset and byte size.
 */
#include "fuzz.h"
#include "proto/kserve_shm.h"

#include <jansson.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_copy(data, size);
    if (text == NULL)
        return 0;
    char key[MG_KSERVE_SHM_KEY_MAX + 1];
    memset(key, 'x', sizeof(key));
    uint64_t offset = 7, byte_size = 7;
    mg_err_t err;
    int rc = mg_kserve_shm_decode_register(text, size, key, &offset, &byte_size, &err);
    if (rc != 0) {
        check(rc == MG_EPARSE && err.msg[0] != '\0');
    } else {
        check(memchr(key, '\0', sizeof(key)) != NULL);
        mg_buf_t row = {0};
        if (mg_kserve_shm_status_row(&row, 1, "region", key, offset, byte_size) == 0 &&
            offset <= INT64_MAX && byte_size <= INT64_MAX) {
            json_error_t je;
            json_t *o = json_loadb(row.data, row.len, 0, &je);
            check(json_is_object(o));
            check(strcmp(json_string_value(json_object_get(o, "key")), key) == 0);
            check(json_integer_value(json_object_get(o, "offset")) == (json_int_t)offset);
            check(json_integer_value(json_object_get(o, "byte_size")) == (json_int_t)byte_size);
            json_decref(o);
        }
        mg_buf_free(&row);
    }
    free(text);
    return 0;
}
