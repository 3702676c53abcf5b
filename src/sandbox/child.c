/*
 * The sandbox child: forked by the zygote (zygote.c), or exec'd as `modelgate __sandbox-child
 * WARMUP MEMORY_MB NEXT NAME...` when there is none, with its fds in place
 * (sandbox_internal.h). It maps the model, starts its
 * own ONNX Runtime environment (one thread), caps its address space, installs the seccomp
 * filter, and only then creates the session and warms it up; it writes one line to its result
 * pipe ("ok", "error <why>", or from the SIGSYS handler "seccomp <nr>") and exits.
 *
 * The filter (libseccomp; default action SCMP_ACT_TRAP: the SIGSYS handler reports the call's
 * number on the result pipe and exits, so the reason names the call):
 *
 *   system call                       action   why
 *   read, pread64, readv              allow    reading its own fds (nothing to read but the
 *                                              model's memory files, already mapped)
 *   write                fd == 3      allow    the one report, on the result pipe
 *   write, writev        other fds    EPERM    ONNX Runtime may log to stderr: it gets an
 *                                              error, nothing leaves the process
 *   open, openat, stat, lstat, statx, EACCES   no file is ever opened or looked up after
 *   access, faccessat(2), readlink(at)         the filter (the model and its external data
 *                                              are in memory); ONNX Runtime checking an
 *                                              external-data path, or a library probing
 *                                              /proc or /sys, gets an error
 *   close, fstat, lseek               allow    bookkeeping on fds it already has
 *   newfstatat                        allow    glibc's fstat(); a path given to it can only
 *                                              tell whether a file exists
 *   getrusage                         allow    ONNX Runtime reads its own CPU and memory use
 *   mmap, mprotect   no PROT_EXEC     allow    ONNX Runtime's allocators, thread stacks
 *   mmap, mprotect   PROT_EXEC        EPERM    no new executable memory: a hostile model
 *                                              cannot map code
 *   munmap, mremap, brk, madvise      allow    freeing and growing memory
 *   clone        CLONE_THREAD set     allow    threads for ONNX Runtime's pools; never a new
 *                                              process (CLONE_THREAD implies the same one)
 *   clone3                            ENOSYS   its flags live in memory a filter cannot read;
 *                                              glibc then falls back to clone
 *   futex, set_robust_list, rseq,     allow    what threads need to start, wait and exit
 *   sched_yield, sched_getaffinity,
 *   exit, exit_group
 *   rt_sigprocmask, rt_sigreturn,     allow    signal masks (thread start), returning from a
 *   sigaltstack                                handler, sanitizers' alternate stacks
 *   rt_sigaction     not SIGSYS       allow    glibc installs its thread-cancel handler at the
 *                                              first pthread_create; SIGSYS stays ours (and
 *                                              a trapped call never runs, whoever handles it)
 *   tgkill           own pid only     allow    abort() raising SIGABRT on itself
 *   getpid, gettid, getrandom,        allow    harmless queries (random seeds, clocks where
 *   clock_gettime, clock_getres,               the vDSO does not answer, sleeps in spin-then-
 *   gettimeofday, nanosleep,                   wait loops)
 *   clock_nanosleep, restart_syscall
 *   prlimit64        read only        allow    glibc reads RLIMIT_STACK for thread stacks
 *   ioctl                             ENOTTY   isatty() checks of loggers
 *   prctl, sched_setaffinity          EPERM    thread naming and pinning are optional
 *   everything else                   trap     no socket/connect (network), no execve, no
 *                                              fork/vfork, no ptrace, no kill of others
 */
#include "sandbox/sandbox.h"

#include "core/log.h"
#include "sandbox/sandbox_internal.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define MG_CHILD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MG_CHILD_ASAN 1
#endif
#endif

/* The SIGSYS handler: async-signal-safe, formats the number by hand. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    char buf[32] = "seccomp ";
    int n = 8, nr = si->si_syscall;
    char digits[12];
    int k = 0;
    do {
        digits[k++] = (char)('0' + nr % 10);
        nr /= 10;
    } while (nr > 0 && k < 11);
    while (k > 0)
        buf[n++] = digits[--k];
    buf[n++] = '\n';
    if (write(MG_SANDBOX_FD_RESULT, buf, (size_t)n) < 0) {
        /* nothing more can be said */
    }
    syscall(SYS_exit_group, MG_SANDBOX_EXIT_SECCOMP);
}

#define RULE(action, name, ...)                                                                    \
    do {                                                                                           \
        if ((rc = seccomp_rule_add(ctx, action, SCMP_SYS(name), __VA_ARGS__)) != 0)                \
            goto out;                                                                              \
    } while (0)

int mg_sandbox_install_filter(int result_fd)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (ctx == NULL)
        return -ENOMEM;
    int rc;
    static const int allowed[] = {
        SCMP_SYS(read),
        SCMP_SYS(pread64),
        SCMP_SYS(readv),
        SCMP_SYS(close),
        SCMP_SYS(fstat),
        SCMP_SYS(newfstatat),
        SCMP_SYS(lseek),
        SCMP_SYS(munmap),
        SCMP_SYS(mremap),
        SCMP_SYS(brk),
        SCMP_SYS(madvise),
        SCMP_SYS(futex),
        SCMP_SYS(set_robust_list),
        SCMP_SYS(rseq),
        SCMP_SYS(sched_yield),
        SCMP_SYS(sched_getaffinity),
        SCMP_SYS(exit),
        SCMP_SYS(exit_group),
        SCMP_SYS(rt_sigprocmask),
        SCMP_SYS(rt_sigreturn),
        SCMP_SYS(sigaltstack),
        SCMP_SYS(getpid),
        SCMP_SYS(gettid),
        SCMP_SYS(getrandom),
        SCMP_SYS(clock_gettime),
        SCMP_SYS(clock_getres),
        SCMP_SYS(gettimeofday),
        SCMP_SYS(nanosleep),
        SCMP_SYS(clock_nanosleep),
        SCMP_SYS(restart_syscall),
        SCMP_SYS(getrusage),
    };
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0)) != 0)
            goto out;
    }
    RULE(SCMP_ACT_ALLOW, write, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)result_fd));
    RULE(SCMP_ACT_ERRNO(EPERM), write, 1, SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)result_fd));
    RULE(SCMP_ACT_ERRNO(EPERM), writev, 0);
    RULE(SCMP_ACT_ERRNO(EACCES), open, 0);
    RULE(SCMP_ACT_ERRNO(EACCES), openat, 0);
    RULE(SCMP_ACT_ERRNO(EACCES), stat, 0);
    RULE(SCMP_ACT_ERRNO(EACCES), lstat, 0);
    RULE(SCMP_ACT_ERRNO(EACCES), statx, 0);
    RULE(SCMP_ACT_ERRNO(EACCES), access, 0);
    RULE(SCMP_ACT_ERRNO(EACCES), faccessat, 0);
    RULE(SCMP_ACT_ERRNO(EACCES), faccessat2, 0);
    RULE(SCMP_ACT_ERRNO(EACCES), readlink, 0);
    RULE(SCMP_ACT_ERRNO(EACCES), readlinkat, 0);
    RULE(SCMP_ACT_ALLOW, mmap, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    RULE(SCMP_ACT_ERRNO(EPERM), mmap, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
    RULE(SCMP_ACT_ALLOW, mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    RULE(SCMP_ACT_ERRNO(EPERM), mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
    RULE(SCMP_ACT_ALLOW, clone, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    RULE(SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
    RULE(SCMP_ACT_ALLOW, tgkill, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
    RULE(SCMP_ACT_ALLOW, prlimit64, 1, SCMP_A2(SCMP_CMP_EQ, 0));
    RULE(SCMP_ACT_ALLOW, rt_sigaction, 1, SCMP_A0(SCMP_CMP_NE, SIGSYS));
    RULE(SCMP_ACT_ERRNO(ENOTTY), ioctl, 0);
    RULE(SCMP_ACT_ERRNO(EPERM), prctl, 0);
    RULE(SCMP_ACT_ERRNO(EPERM), sched_setaffinity, 0);
    rc = seccomp_load(ctx);
out:
    seccomp_release(ctx);
    return rc;
}

#undef RULE

int mg_sandbox_env_init(mg_err_t *err)
{
    mg_infer_env_opts_t eo = {.intra_op_threads = 1, .inter_op_threads = 1, .log_level = 4};
    return mg_infer_env_init(&eo, err);
}

/* Writes the report line and exits (0: the parent reads the line to know what happened). */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void report(const char *fmt, ...)
{
    char buf[900];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    for (int i = 0; i < n; i++) {
        if (buf[i] == '\n')
            buf[i] = ' ';
    }
    buf[n++] = '\n';
    if (write(MG_SANDBOX_FD_RESULT, buf, (size_t)n) < 0) {
        /* the parent is gone */
    }
    _exit(0);
}

/* Maps the memory file `fd` read-only; its size into *len. */
static void *map_fd(int fd, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)st.st_size;
    void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* The address space mapped now (VmSize), read before the filter forbids opening /proc. */
static size_t mapped_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f != NULL) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* ONNX Runtime's words for an allocation that failed. */
static int is_out_of_memory(const char *msg)
{
    static const char *const words[] = {"bad_alloc",     "bad allocation", "Failed to allocate",
                                        "out of memory", "Out of memory",  "std::length_error",
                                        "AllocateRaw"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strstr(msg, words[i]) != NULL)
            return 1;
    }
    return 0;
}

int mg_sandbox_child_main(int argc, char **argv)
{
    if (argc < 4)
        report("error the sandbox child was started without its arguments");
    size_t next = (size_t)strtoul(argv[3], NULL, 10);
    if (next > MG_SESSION_FILES_MAX || (size_t)argc < 4 + next)
        report("error the sandbox child got bad arguments");
    mg_sandbox_child_run(atoi(argv[1]), atoi(argv[2]), next, argv + 4, false);
}

void mg_sandbox_child_run(int warmup, int memory_mb, size_t next, char *const *names,
                          bool env_ready)
{
    mg_log_configure(MG_LOG_ERROR, 0);

    size_t len = 0;
    void *model = map_fd(MG_SANDBOX_FD_MODEL, &len);
    if (model == NULL)
        report("error cannot map the model");
    mg_session_file_t ext[MG_SESSION_FILES_MAX];
    for (size_t i = 0; i < next; i++) {
        ext[i].name = names[i];
        ext[i].bytes = map_fd(MG_SANDBOX_FD_MODEL + 1 + (int)i, &ext[i].len);
        if (ext[i].bytes == NULL && ext[i].len > 0)
            report("error cannot map external data '%s'", ext[i].name);
        if (ext[i].bytes == NULL)
            ext[i].bytes = "";
    }

    /* Its own environment: one thread in each global pool, ORT logging only fatal errors. */
    mg_err_t err;
    mg_err_clear(&err);
    if (!env_ready && mg_sandbox_env_init(&err) != 0)
        report("error %s", err.msg);

#ifndef MG_CHILD_ASAN
    /* The budget counts from what is mapped now (the binary, ORT, the model's memory files). */
    size_t base = mapped_bytes();
    struct rlimit as = {(rlim_t)(base + (size_t)memory_mb * 1024 * 1024),
                        (rlim_t)(base + (size_t)memory_mb * 1024 * 1024)};
    setrlimit(RLIMIT_AS, &as);
#else
    /* ASan reserves terabytes of shadow: the limit is ASAN_OPTIONS' max_allocation_size_mb. */
    (void)mapped_bytes;
#endif

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    int rc = mg_sandbox_install_filter(MG_SANDBOX_FD_RESULT);
    if (rc != 0)
        report("error cannot install the seccomp filter: %s", strerror(-rc));

    /* From here on the model is touched, under the filter. */
    mg_session_opts_t so = {.intra_op_threads = 0, .external = ext, .nexternal = next};
    mg_session_t *s = NULL;
    if (mg_session_new(&s, model, len, &so, &err) != 0) {
        if (is_out_of_memory(err.msg))
            report("error out of memory (limit %d MiB) creating the session", memory_mb);
        report("error %s", err.msg);
    }
    /* One run: the warm-up's runs are identical (the same zeros), so one exercises every
       kernel the others would; repeating them only warms caches the child throws away. */
    if (mg_session_warmup(s, 1, &err) != 0) {
        if (is_out_of_memory(err.msg) || err.code == MG_ENOMEM)
            report("error out of memory (limit %d MiB) in the warm-up run", memory_mb);
        if (warmup > 0)
            report("error warm-up failed: %s", err.msg);
    }
    report("ok");
}
