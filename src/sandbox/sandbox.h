/*
 * Sandboxed validation of a model before the serving process builds it: a child process,
 * started fresh from the modelgate binary, creates the session from the same bytes with the
 * same options and runs the warm-up, under no_new_privs, a seccomp-bpf filter (no network, no
 * exec, no ptrace, no file opens, writes only to its result pipe, no executable mappings),
 * RLIMIT_AS and RLIMIT_CPU, and a wall-clock timeout. It reports through a pipe; a crash, a
 * seccomp kill, running out of memory or time fails the validation with a reason naming which,
 * and the serving process is untouched.
 *
 * Why fork + exec and not fork alone: the daemon is multi-threaded (event loops, ONNX Runtime's
 * global thread pools, the control thread). After fork only the forking thread exists: the pool
 * threads are gone while the parent's OrtEnv still points at them, any lock another thread
 * held (ORT's logger, allocator arenas) stays locked forever, and OrtEnv is a process-wide
 * singleton that cannot be created afresh. So between fork and exec the child makes only
 * async-signal-safe system calls (dup2, close_range, prctl, setpriority, setrlimit,
 * sigprocmask, execve); after exec it is a new single-threaded process that initialises its own
 * ONNX Runtime environment, then installs the filter and only then touches the model.
 */
#ifndef MG_SANDBOX_SANDBOX_H
#define MG_SANDBOX_SANDBOX_H

#include "core/err.h"
#include "infer/session.h"

#include <stddef.h>

/** The hidden `modelgate` subcommand the child runs as (never for users). */
#define MG_SANDBOX_CHILD_CMD "__sandbox-child"

/** How the child is run and bounded. Plain data, owned by the caller. */
typedef struct mg_sandbox_opts {
    const char *exe; /* the modelgate binary ("/proc/self/exe" in the daemon) */
    int timeout_ms;  /* wall clock for the whole validation */
    int cpu_secs;    /* RLIMIT_CPU */
    int memory_mb;   /* address space the child may map beyond its start-up (RLIMIT_AS) */
} mg_sandbox_opts_t;

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
 * Thread: the control thread (it forks; no other thread may rely on fork-time state).
 */
int mg_sandbox_validate(const mg_sandbox_opts_t *opts, const mg_sandbox_job_t *job, mg_err_t *err);

/**
 * The child's side: `modelgate __sandbox-child ...` as mg_sandbox_validate starts it. Never
 * returns; exits 0 after reporting. Thread: main, in the fresh child process.
 */
int mg_sandbox_child_main(int argc, char **argv);

#endif
