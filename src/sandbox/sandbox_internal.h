/*
 * What the two sides of the sandbox share (src/sandbox only): the fd layout and exit codes.
 * The child gets its result pipe as fd 3, the model as a memory file on fd 4 and its
 * external-data files on 5, 6, ...; its arguments are the warm-up runs, the memory budget in
 * MiB, the number of external files and their names.
 */
#ifndef MG_SANDBOX_SANDBOX_INTERNAL_H
#define MG_SANDBOX_SANDBOX_INTERNAL_H

#include "infer/session.h"

#include <stdbool.h>
#include <stdint.h>

/** The most fds the child is given: the result pipe, the model and its external files. */
#define MG_SANDBOX_FDS_MAX (MG_SESSION_FILES_MAX + 2)

/** The child's fds. */
#define MG_SANDBOX_FD_RESULT 3
#define MG_SANDBOX_FD_MODEL  4

/** Exit status of a child that a sanitizer stopped (sanitizer builds only). */
#define MG_SANDBOX_EXIT_SANITIZER 86

/** Exit status after a report on the result pipe that the filter cut short. */
#define MG_SANDBOX_EXIT_SECCOMP 87

/**
 * The child's work once its fds are in place (child.c): never returns. `env_ready`: the
 * ONNX Runtime environment exists already (forked from the zygote, which made it). Thread: the
 * only one of a fresh process (exec'd, or forked from the single-threaded zygote).
 */
void mg_sandbox_child_run(int warmup, int memory_mb, size_t next, char *const *names,
                          bool env_ready) __attribute__((noreturn));

/**
 * The sandbox's ONNX Runtime environment: one thread in each global pool (none beyond the
 * caller's), ORT logging only fatal errors. Returns 0 or mg_infer_env_init's error.
 */
int mg_sandbox_env_init(mg_err_t *err);

/**
 * Moves `fds` to 3, 4, ... (clearing close-on-exec) and closes every other fd above 2.
 * Async-signal-safe: for a child between fork and exec. Exits 126 when it cannot.
 */
void mg_sandbox_place_fds(const int *fds, int n);

/** The zygote's reply kinds: a child started (pid), ended (wait status), or fork failed. */
enum { MG_ZYGOTE_STARTED = 1, MG_ZYGOTE_ENDED = 2, MG_ZYGOTE_FORK_FAILED = 3 };

/** One request to the zygote (followed by the NUL-separated external file names). */
typedef struct mg_zygote_req {
    int32_t warmup, memory_mb, cpu_secs, nexternal;
} mg_zygote_req_t;

/** One reply from the zygote. */
typedef struct mg_zygote_reply {
    int32_t kind, pid, status;
} mg_zygote_reply_t;

/** The largest request: the header and every name. */
#define MG_ZYGOTE_REQ_MAX (sizeof(mg_zygote_req_t) + MG_SESSION_FILES_MAX * 1024)

/**
 * Installs the child's seccomp filter (see the table in child.c). Returns 0 or a negative
 * errno from libseccomp. Thread: the child, before it touches the model.
 */
int mg_sandbox_install_filter(int result_fd);

#endif
