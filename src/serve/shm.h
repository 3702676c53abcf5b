/*
 * Triton's system shared-memory extension (docs/protocol/extension_shared_memory.md): named
 * regions of POSIX shared-memory objects a client on the same host registers, then names in
 * an input's or output's "shared_memory_region" / "shared_memory_byte_size" /
 * "shared_memory_offset" parameters instead of sending the bytes over the socket.
 *
 * A region is mapped once, when it is registered (the descriptor is closed at once), and only
 * objects under /dev/shm can be named: the key is a POSIX shm name ("/name", no other '/'),
 * opened with shm_open. Every use is bounds-checked (offset + size within the region, without
 * overflow). A request holds the regions it uses (a reference each); an unregistered region is
 * unmapped when the last request holding it is done. The table is guarded by a mutex taken
 * only by register / unregister / status and by requests that use shared memory.
 */
#ifndef MG_SERVE_SHM_H
#define MG_SERVE_SHM_H

#include "core/buf.h"
#include "core/err.h"
#include "infer/request.h"

#include <stdint.h>

/** The registered regions of a server. */
typedef struct mg_shm mg_shm_t;

/** One region, as status reports it. */
typedef struct mg_shm_status {
    const char *name;
    const char *key;
    uint64_t offset, byte_size;
} mg_shm_status_t;

/** The most regions one server keeps, and that one request may use. */
#define MG_SHM_REGIONS_MAX 1024
#define MG_SHM_HOLD_MAX    32

/** The regions a request uses, held until mg_shm_release. Zero it before use. */
typedef struct mg_shm_hold {
    struct mg_shm_region *held[MG_SHM_HOLD_MAX];
    int n;
} mg_shm_hold_t;

/** Creates an empty table. Returns 0 or MG_ENOMEM. Thread: start-up. */
int mg_shm_new(mg_shm_t **out);

/** Unmaps every region and frees the table; no request may hold one. Accepts NULL. */
void mg_shm_free(mg_shm_t *s);

/**
 * Registers region `name` as `byte_size` bytes at `offset` of shared-memory object `key`
 * and maps it. Returns 0, or with `err` filled: MG_EINVAL (a bad name or key, a region of 0
 * bytes, offset + byte_size past the object or overflowing, a name already registered, the
 * table full) or MG_ENOENT / MG_EIO (the object cannot be opened or mapped). Thread: any.
 */
int mg_shm_register(mg_shm_t *s, mg_str_t name, const char *key, uint64_t offset,
                    uint64_t byte_size, mg_err_t *err);

/**
 * Unregisters region `name` (empty: every region); it is unmapped once no request holds it.
 * Returns 0, or MG_ENOENT with `err` for a name that is not registered. Thread: any.
 */
int mg_shm_unregister(mg_shm_t *s, mg_str_t name, mg_err_t *err);

/**
 * Calls `fn` for region `name` (empty: every region, by name). Returns 0, MG_ENOENT with `err`
 * for an unknown name, or the callback's value. Thread: any.
 */
int mg_shm_status(mg_shm_t *s, mg_str_t name, int (*fn)(void *ctx, const mg_shm_status_t *st),
                  void *ctx, mg_err_t *err);

/**
 * What a front end does once it has decoded `req`: when the request names regions (inputs or
 * outputs), makes its hold in the request's arena (req->shm_hold: it travels with the call, to
 * the pool or a joined Run) and binds its inputs (mg_shm_bind_inputs); on failure nothing stays
 * held. Returns 0, MG_ENOMEM or mg_shm_bind_inputs's code, with `err` filled. Thread: any.
 */
int mg_shm_hold(mg_shm_t *s, mg_infer_request_t *req, mg_err_t *err);

/**
 * Points each input of `req` that names a region (req->shm_inputs) at its bytes there, held
 * in `hold`: the range must lie in the region and hold the input's shape and datatype.
 * Returns 0 or MG_EINVAL / MG_ENOENT / MG_ENOMEM with `err` naming the input. Thread: any.
 */
int mg_shm_bind_inputs(mg_shm_t *s, mg_infer_request_t *req, mg_shm_hold_t *hold, mg_err_t *err);

/**
 * Writes each output of `resp` that `req` asks for in a region into it (the range must lie in
 * the region and be large enough) and marks it in resp->shm so the encoder leaves its data
 * out. Returns 0 or MG_EINVAL / MG_ENOENT / MG_ENOMEM with `err` naming the output.
 * Thread: any.
 */
int mg_shm_write_outputs(mg_shm_t *s, const mg_infer_request_t *req, mg_infer_response_t *resp,
                         mg_shm_hold_t *hold, mg_err_t *err);

/** Releases what `hold` holds (unmapping unregistered regions no one else holds). Accepts NULL. */
void mg_shm_release(mg_shm_hold_t *hold);

#endif
