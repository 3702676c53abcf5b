/*
 * The parent's side of sandboxed validation: the model bytes into sealed memory files, the
 * child forked and exec'd with its limits, its report read with a deadline, its end classified.
 */
#include "sandbox/sandbox.h"

#include "sandbox/sandbox_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Writes `len` bytes to a new sealed memory file; returns its fd (close-on-exec) or -1. */
static int memfd_with(const char *name, const void *bytes, size_t len)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    const char *p = bytes;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    /* The child gets exactly these bytes: nobody can change them any more. */
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    return fd;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the child's report until EOF or the deadline. Returns 1 on EOF, 0 on timeout. */
static int read_report(int fd, char *buf, size_t cap, size_t *len, int64_t deadline)
{
    *len = 0;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (n < 0 && errno != EINTR)
            return 1;
        if (n <= 0)
            continue;
        char tmp[512];
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 1;
        size_t k = (size_t)r < cap - 1 - *len ? (size_t)r : cap - 1 - *len;
        memcpy(buf + *len, tmp, k);
        *len += k;
        buf[*len] = '\0';
    }
}

/* Turns the child's end (its report and its wait status) into 0 or a reason. */
static int classify(const mg_sandbox_opts_t *o, const char *report, int timed_out, int status,
                    mg_err_t *err)
{
    if (timed_out)
        return mg_err_set(err, MG_EMODEL,
                          "sandbox: timed out after %d ms creating the session and warming it up",
                          o->timeout_ms);
    if (strncmp(report, "seccomp ", 8) == 0) {
        int nr = atoi(report + 8);
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        mg_err_set(err, MG_EMODEL, "sandbox: killed by seccomp: system call %s (%d) is not allowed",
                   name ? name : "?", nr);
        free(name);
        return MG_EMODEL;
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGSYS)
            return mg_err_set(err, MG_EMODEL,
                              "sandbox: killed by seccomp (a forbidden system call)");
        if (sig == SIGXCPU || (sig == SIGKILL && report[0] == '\0'))
            return mg_err_set(err, MG_EMODEL,
                              "sandbox: CPU time limit of %d s exceeded (signal %d, %s)",
                              o->cpu_secs, sig, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
        return mg_err_set(err, MG_EMODEL, "sandbox: crashed (signal %d, SIG%s)", sig,
                          sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    }
    size_t n = strlen(report);
    while (n > 0 && report[n - 1] == '\n')
        n--;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && n == 2 && memcmp(report, "ok", 2) == 0)
        return 0;
    if (strncmp(report, "error ", 6) == 0)
        return mg_err_set(err, MG_EMODEL, "sandbox: %.*s", (int)(n - 6), report + 6);
    if (WIFEXITED(status) && WEXITSTATUS(status) == MG_SANDBOX_EXIT_SANITIZER)
        return mg_err_set(err, MG_EMODEL,
                          "sandbox: the sanitizer stopped the child (out of memory or a memory "
                          "error)");
    return mg_err_set(err, MG_EMODEL, "sandbox: the child exited with status %d without a report",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* The child between fork and exec: async-signal-safe calls only (see sandbox.h). */
static void child_exec(const mg_sandbox_opts_t *o, int *fds, int nfds, char *const *argv,
                       char *const *envp)
{
    /* Move the fds to 3, 4, ... through numbers above every target, so none is clobbered. */
    int high[MG_SANDBOX_FDS_MAX];
    for (int i = 0; i < nfds; i++) {
        high[i] = fcntl(fds[i], F_DUPFD, 3 + MG_SANDBOX_FDS_MAX + 1);
        if (high[i] < 0)
            _exit(126);
    }
    for (int i = 0; i < nfds; i++) {
        if (dup2(high[i], 3 + i) < 0) /* dup2 leaves the new fd without close-on-exec */
            _exit(126);
    }
    if (syscall(SYS_close_range, 3 + nfds, ~0U, 0) != 0) {
        for (int fd = 3 + nfds; fd < 65536; fd++)
            close(fd);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* the daemon gone: the child goes too */
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    setpriority(PRIO_PROCESS, 0, 10); /* validation yields the CPU to serving */
    struct rlimit cpu = {(rlim_t)o->cpu_secs, (rlim_t)o->cpu_secs + 1};
    setrlimit(RLIMIT_CPU, &cpu);
    struct rlimit core = {0, 0};
    setrlimit(RLIMIT_CORE, &core);
    execve(o->exe, argv, envp);
    _exit(127);
}

int mg_sandbox_validate(const mg_sandbox_opts_t *o, const mg_sandbox_job_t *job, mg_err_t *err)
{
    if (job->nexternal + 2 > MG_SANDBOX_FDS_MAX)
        return mg_err_set(err, MG_EMODEL, "sandbox: too many external-data files");
    int fds[MG_SANDBOX_FDS_MAX];
    int nfds = 0, pipefd[2] = {-1, -1};
    int rc = MG_EIO;
    /* Everything the child needs is built before fork: after it, no allocation. */
    char args[MG_SANDBOX_FDS_MAX + 8][32];
    char *argv[2 * MG_SANDBOX_FDS_MAX + 16];
    int argc = 0;
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        mg_err_set(err, MG_EIO, "sandbox: pipe: %s", strerror(errno));
        goto out;
    }
    fds[nfds++] = pipefd[1];
    if ((fds[nfds] = memfd_with("mg-model", job->model, job->len)) < 0) {
        mg_err_set(err, MG_EIO, "sandbox: cannot copy the model for the child: %s",
                   strerror(errno));
        goto out;
    }
    nfds++;
    for (size_t i = 0; i < job->nexternal; i++) {
        fds[nfds] = memfd_with("mg-external", job->external[i].bytes, job->external[i].len);
        if (fds[nfds] < 0) {
            mg_err_set(err, MG_EIO, "sandbox: cannot copy external data for the child: %s",
                       strerror(errno));
            goto out;
        }
        nfds++;
    }
    argv[argc++] = (char *)o->exe;
    argv[argc++] = MG_SANDBOX_CHILD_CMD;
    snprintf(args[0], sizeof(args[0]), "%d", job->warmup_runs);
    snprintf(args[1], sizeof(args[1]), "%d", o->memory_mb);
    snprintf(args[2], sizeof(args[2]), "%zu", job->nexternal);
    argv[argc++] = args[0];
    argv[argc++] = args[1];
    argv[argc++] = args[2];
    for (size_t i = 0; i < job->nexternal; i++)
        argv[argc++] = (char *)job->external[i].name;
    argv[argc] = NULL;
    char asan_env[160];
    snprintf(asan_env, sizeof(asan_env),
             "ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=%d:"
             "abort_on_error=0:exitcode=%d",
             o->memory_mb, MG_SANDBOX_EXIT_SANITIZER);
    char *envp[] = {asan_env, NULL};

    pid_t pid = fork();
    if (pid < 0) {
        mg_err_set(err, MG_EIO, "sandbox: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child_exec(o, fds, nfds, argv, envp);

    /* Parent: only the read end stays open here, so EOF means the child is gone. */
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    nfds = 0;
    char report[1024];
    size_t rlen = 0;
    int timed_out =
        !read_report(pipefd[0], report, sizeof(report), &rlen, now_ms() + o->timeout_ms);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    report[rlen] = '\0';
    rc = classify(o, report, timed_out, status, err);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && report[0] == '\0')
        rc = mg_err_set(err, MG_EIO, "sandbox: cannot run %s", o->exe);
out:
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    return rc;
}
