/*
 * Triton's system shared-memory extension JSON (docs/protocol/extension_shared_memory.md):
 * the register request {"key": $string, "offset": $number, "byte_size": $number} and the
 * status response [{"name", "key", "offset", "byte_size"}, ...]. serve/shm.h holds the regions.
 */
#ifndef MG_PROTO_KSERVE_SHM_H
#define MG_PROTO_KSERVE_SHM_H

#include "core/buf.h"
#include "core/err.h"

#include <stdint.h>

/** The longest key a register request may carry (a POSIX shm name). */
#define MG_KSERVE_SHM_KEY_MAX 256

/**
 * Decodes a register request body: `key` (room for MG_KSERVE_SHM_KEY_MAX), offset (default 0)
 * and byte_size (required). Returns 0 or MG_EPARSE with `err` naming the field. Thread: any.
 */
int mg_kserve_shm_decode_register(const char *body, size_t len, char *key, uint64_t *offset,
                                  uint64_t *byte_size, mg_err_t *err);

/** Appends one status row (a comma first unless `first`). Returns 0 or MG_ENOMEM. */
int mg_kserve_shm_status_row(mg_buf_t *out, int first, const char *name, const char *key,
                             uint64_t offset, uint64_t byte_size);

#endif
