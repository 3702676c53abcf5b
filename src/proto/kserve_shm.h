/*
 * Triton's system shared-memory extension JSON (docs/protocol/extension_shared_memory.md):
 * the register request {"key": $string, "offset": $number, "byte_size": $number} and the
 * status response [{"name", "key", "offset", "byte_size"}, ...]. serve/shm.h holds the regions.
 */
#ifndef MG_PROTO_KSERVE_SHM_H
#define MG_PROTO_KSERVE_SHM_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stdint.h>

/** Triton's shared_memory_* parameters seen on one tensor (JSON or protobuf), as bits. */
enum { MG_KSERVE_SHM_REGION = 1, MG_KSERVE_SHM_SIZE = 2, MG_KSERVE_SHM_OFFSET = 4 };

/** What a tensor with incomplete shared_memory_* parameters is told, after its label. */
#define MG_KSERVE_SHM_INCOMPLETE                                                                   \
    "shared memory needs both 'shared_memory_region' and 'shared_memory_byte_size'"

/**
 * Whether the parameters `seen` put a tensor in shared memory completely (region and byte
 * size, the offset optional) or leave it out of shared memory (none of them).
 */
static inline bool mg_kserve_shm_complete(unsigned seen)
{
    return seen == 0 || (seen & (MG_KSERVE_SHM_REGION | MG_KSERVE_SHM_SIZE)) ==
                            (MG_KSERVE_SHM_REGION | MG_KSERVE_SHM_SIZE);
}

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
