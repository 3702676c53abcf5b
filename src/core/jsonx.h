/*
 * Small helpers over jansson for the control path (config files, admin API bodies).
 */
#ifndef MG_CORE_JSONX_H
#define MG_CORE_JSONX_H

#include <jansson.h>
#include <stddef.h>

/**
 * Returns the first member name of `obj` that is not among the `n` names in `known`, or NULL
 * when every member is known (or `obj` is not an object). The name belongs to `obj`.
 */
const char *mg_jsonx_unknown_field(json_t *obj, const char *const *known, size_t n);

#endif
