#include "core/jsonx.h"

#include <string.h>

const char *mg_jsonx_unknown_field(json_t *obj, const char *const *known, size_t n)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t k = 0;
        while (k < n && strcmp(known[k], key) != 0)
            k++;
        if (k == n)
            return key;
    }
    return NULL;
}
