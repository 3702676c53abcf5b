/*
 * Verification of a version's files before anything is built from them: the SHA-256 of every
 * file the load reads (model.onnx and its external data, hashed from the very bytes ONNX
 * Runtime gets) against the version folder's SHA256SUMS (sha256sum's format) and the digests
 * config.json pins for that version; and the file identities (device, inode, size, mtime and
 * ctime in ns) that let a reload skip reading and hashing a file that has not changed.
 */
#ifndef MG_REPO_VERIFY_H
#define MG_REPO_VERIFY_H

#include "core/err.h"
#include "repo/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Where a file is and when it last changed; equal identities mean equal contents. */
typedef struct mg_file_id {
    uint64_t dev, ino, size;
    int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
} mg_file_id_t;

/** A file the load read, with its digest. `name` is relative to the version folder. */
typedef struct mg_verify_file {
    const char *name;
    unsigned char sha256[32];
} mg_verify_file_t;

/**
 * The identity of the file at `path` (following symlinks) into *out. Returns 0, MG_ENOENT or
 * MG_EIO. Thread: any.
 */
int mg_file_id_of(const char *path, mg_file_id_t *out);

/** The identity of an open file. Returns 0 or MG_EIO. Thread: any. */
int mg_file_id_of_fd(int fd, mg_file_id_t *out);

/** True when two identities are the same (a zeroed identity equals only itself). */
bool mg_file_id_equal(const mg_file_id_t *a, const mg_file_id_t *b);

/** Lowercase hex of a digest into `out` (65 bytes with the NUL). */
void mg_sha256_hex(const unsigned char digest[32], char out[65]);

/** Parses 64 hex digits (either case) into `digest`. Returns 0 or MG_EINVAL. */
int mg_sha256_parse(const char *hex, size_t len, unsigned char digest[32]);

/**
 * Checks the `n` files a load of version `version` read (files[0] is model.onnx):
 *   - when `sums` (the text of the version folder's SHA256SUMS, `sums_len` bytes) is not NULL,
 *     it must be in sha256sum's format and list every file, each with its digest;
 *   - every digest `cfg` pins for the version must name one of the files and match it;
 *   - with `require`, every file must be covered by SHA256SUMS or a pin.
 * Returns 0, or MG_EMODEL with `err` naming the file and the digests ("checksum mismatch for
 * 'model.onnx': expected ab12..., got cd34... (SHA256SUMS)"). Thread: any.
 */
int mg_verify_files(const mg_verify_file_t *files, size_t n, const char *sums, size_t sums_len,
                    const mg_model_config_t *cfg, int64_t version, bool require, mg_err_t *err);

#endif
