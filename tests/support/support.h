/*
 * Helpers the unit tests share: shell commands for fixtures, mg_str_t from C strings, where
 * the source tree is, temporary folders and whole-file reads. The helpers that can fail the
 * running test do so through cmocka's fail_msg, so they are for test bodies and fixtures only.
 */
#ifndef MG_SUPPORT_SUPPORT_H
#define MG_SUPPORT_SUPPORT_H

#include "core/buf.h"

#include <stddef.h>

/**
 * Runs the printf-formatted command through system(3) and fails the running test, naming the
 * command, when it does not exit 0. Commands longer than 2047 bytes are cut there.
 */
void mg_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** `s` as an mg_str_t pointing into it (no copy); NULL gives {NULL, 0}, an absent string. */
mg_str_t mg_test_str(const char *s);

/**
 * The source tree's root: $MG_SOURCE_DIR when set (ctest sets it), else the tree this file was
 * compiled from, else ".", "..", "../.." when one holds scripts/gen_test_models.py, else ".".
 * Ownership: static storage.
 */
const char *mg_test_source_dir(void);

/** The python3 for the scripts/ generators: $MG_PYTHON when set, else /usr/bin/python3. */
const char *mg_test_python(void);

/**
 * Creates a new folder "<$TMPDIR or /tmp>/<prefix>XXXXXX" (mkdtemp) and writes its path into
 * `buf` (`cap` bytes). Returns 0, or a negative errno code (-ENAMETOOLONG when the path does
 * not fit) with `buf` empty. Removing the folder is the caller's.
 */
int mg_test_tmpdir(const char *prefix, char *buf, size_t cap);

/**
 * Reads the whole file at `path` (NUL-terminated after *len bytes) and fails the running test
 * when it cannot. Ownership: the caller frees the result.
 */
char *mg_test_read_file(const char *path, size_t *len);

#endif
