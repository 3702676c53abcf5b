/*
 * Sandboxed validation of a model before the serving process builds it: a child process,
 * started fresh from the modelgate binary, creates the session from the same bytes with the
 * same options and runs the warm-up, under no_new_privs, a seccomp-bpf filter (no network, no
 * exec, no ptrace, no file opens, writes only to its result pipe, no executable mappings),
 * RLIMIT_AS and RLIMIT_CPU, and a wall-clock timeout. It reports through a pipe; a crash, a
 * seccomp kill, running out of memory or time fails the validation with a reason naming which,
 * and the serving process is untouched.
 *
 * Why the daemon never forks a child that goes on running its own code: the daemon is
 * multi-threaded (event loops, ONNX Runtime's global thread pools, the control thread). After
 * fork only the forking thread exists: the pool threads are gone while the parent's OrtEnv
 * still points at them, any lock another thread held (ORT's logger, allocator arenas, malloc's
 * in libraries without fork handlers) stays locked forever, and OrtEnv is a process-wide
 * singleton that cannot be created afresh. So the daemon's child makes only async-signal-safe
 * system calls (dup2, close_range, prctl, setpriority, setrlimit, sigprocmask) and execs.
 *
 * What it execs, once, is the zygote (`modelgate __sandbox-zygote`, zygote.c): a fresh,
 * single-threaded process that has ONNX Runtime's library loaded but never starts it. Forking
 * that process is safe, so each validation is one fork of the zygote; the child puts its fds in
 * place, takes its limits, starts its own ONNX Runtime environment, installs the filter and
 * only then touches the model. A validation so costs a fork instead of an exec, a dynamic link
 * of ONNX Runtime and a sanitizer start-up (about 10x less). When the zygote cannot be started
 * or dies, the daemon starts it again, and a validation it cannot hand over runs in a child
 * exec'd for it alone (`modelgate __sandbox-child`), with the same limits and filter.
 */
#ifndef MG_SANDBOX_SANDBOX_H
#define MG_SANDBOX_SANDBOX_H

#include "core/err.h"
#include "infer/session.h"

#include <stdbool.h>
#include <stddef.h>

/** The hidden `modelgate` subcommands of the zygote and of a child exec'd alone (not for users). */
#define MG_SANDBOX_CHILD_CMD  "__sandbox-child"
#define MG_SANDBOX_ZYGOTE_CMD "__sandbox-zygote"

typedef struct mg_sandbox mg_sandbox_t;

/** How the child is run and bounded. Plain data, owned by the caller. */
typedef struct mg_sandbox_opts {
    const char *exe; /* the modelgate binary ("/proc/self/exe" in the daemon) */
    int timeout_ms;  /* wall clock for the whole validation */
    int cpu_secs;    /* RLIMIT_CPU */
    int memory_mb;   /* address space the child may map beyond its start-up (RLIMIT_AS) */
    bool no_zygote;  /* exec a child per validation (tests; and an `exe` that is no modelgate) */
} mg_sandbox_opts_t;

/**
 * Creates a sandbox with `opts` (copied). The zygote starts at the first validation.
 * Returns 0 or MG_ENOMEM with `err` filled. Thread: any.
 */
int mg_sandbox_new(mg_sandbox_t **out, const mg_sandbox_opts_t *opts, mg_err_t *err);

/**
 * Stops the zygote (closing its socket ends it; it is reaped) and frees the sandbox. Accepts
 * NULL. Thread: the one that validates, when no validation runs.
 */
void mg_sandbox_free(mg_sandbox_t *sb);

/** The pid of the running zygote, or 0. Thread: the one that validates. */
int mg_sandbox_zygote_pid(const mg_sandbox_t *sb);

/** What to validate: the bytes the loader hashed, and the options the session will get. */
typedef struct mg_sandbox_job {
    const void *model;
    size_t len;
    const mg_session_file_t *external;
    size_t nexternal;
    int warmup_runs; /* > 0: one warm-up run (the runs are identical) that must succeed; 0: one
                        probe run whose plain failure is tolerated (not every model accepts
                        zeros), while a crash, a kill or running out of memory still fails */
} mg_sandbox_job_t;

/**
 * Validates `job` in a sandboxed child; blocks until it reports, dies or times out.
 * Returns 0 when the session was created and warmed up; MG_EMODEL with `err` saying why
 * ("sandbox: timed out after 5 s", "sandbox: killed by seccomp: system call socket is not
 * allowed", "sandbox: out of memory (limit 1024 MiB): ...", "sandbox: crashed (signal 11,
 * SIGSEGV)", "sandbox: <ONNX Runtime's error>"); or MG_EIO when the child could not be started.
 * Thread: one at a time (the control thread); the zygote dies with the thread that started it.
 */
int mg_sandbox_validate(mg_sandbox_t *sb, const mg_sandbox_job_t *job, mg_err_t *err);

/**
 * The child's side: `modelgate __sandbox-child ...` as mg_sandbox_validate execs it when there
 * is no zygote. Never returns; exits 0 after reporting. Thread: main, in the fresh process.
 */
int mg_sandbox_child_main(int argc, char **argv);

/**
 * The zygote: `modelgate __sandbox-zygote` with its socket on fd 3. Returns only by exiting
 * when the socket closes. Thread: main, in the fresh process.
 */
int mg_sandbox_zygote_main(int argc, char **argv);

#endif
