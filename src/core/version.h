/*
 * Model version numbers: positive integers, written in decimal. One parser serves URLs,
 * headers, config.json, traffic policies and repository folder names.
 */
#ifndef MG_CORE_VERSION_H
#define MG_CORE_VERSION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/** Room for a version's decimal text and its NUL. */
#define MG_VERSION_TEXT_MAX 24

/**
 * Parses `n` bytes of decimal digits ("2", "010" is 10) into a positive version. Nothing but
 * digits is accepted: no sign, space or fraction. Returns 0, or MG_EINVAL for an empty text, a
 * non-digit, zero or a value over INT64_MAX (*out untouched). Thread: any.
 */
int mg_version_parse(const char *s, size_t n, int64_t *out);

/**
 * Reads a version given in JSON as a positive integer (2) or a numeric string ("2").
 * Returns 0 or MG_EINVAL (*out untouched). Thread: any.
 */
int mg_version_from_json(const json_t *v, int64_t *out);

/** Writes `v` in decimal with a NUL into `out` (MG_VERSION_TEXT_MAX bytes); returns the length. */
size_t mg_version_format(int64_t v, char *out);

#endif
