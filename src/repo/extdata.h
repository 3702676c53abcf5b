/*
 * The external-data files an ONNX model refers to, read from the model's protobuf bytes
 * without ONNX Runtime, and their checks: a location must name a file inside the version
 * folder (relative, no "..", no symlink out of it). The loader reads those files once, hashes
 * them and hands the same bytes to ONNX Runtime, which then never opens a file itself.
 */
#ifndef MG_REPO_EXTDATA_H
#define MG_REPO_EXTDATA_H

#include "core/buf.h"
#include "core/err.h"
#include "infer/session.h"

#include <stddef.h>

/** The most distinct external-data files one model may refer to. */
#define MG_EXTDATA_FILES_MAX MG_SESSION_FILES_MAX

/**
 * Walks the ModelProto in `bytes` (the main graph, nested graphs of control-flow nodes,
 * functions and training graphs) and appends the distinct `location` of every tensor stored
 * externally to `names` (NUL-terminated strings packed one after another, in first-seen
 * order), their count in *n. A tensor that says its data is external but names no location
 * is an error. Returns 0, or MG_EMODEL with `err` saying where the protobuf is malformed
 * (truncated, a bad length, nesting deeper than 64), MG_ERANGE over MG_EXTDATA_FILES_MAX
 * files, MG_ENOMEM. Thread: any.
 */
int mg_extdata_list(const void *bytes, size_t len, mg_buf_t *names, size_t *n, mg_err_t *err);

/**
 * Checks that `location` names a file inside the folder `dir` and writes its resolved path
 * to `out` (`cap` bytes): refused when empty, absolute, with a ".." component, or when the
 * resolved path (symlinks followed) leaves `dir` or is not a regular file. Returns 0, or
 * MG_EMODEL with `err` saying which rule it broke ("external data 'x': ..."). Thread: any.
 */
int mg_extdata_resolve(const char *dir, const char *location, char *out, size_t cap, mg_err_t *err);

#endif
