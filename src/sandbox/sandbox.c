/*
 * The daemon's side of sandboxed validation: the model bytes into sealed memory files, handed
 * to the zygote (or to a child exec'd for them), the child's report read with a deadline, its
 * end classified.
 */
#include "sandbox/sandbox.h"

#include "core/log.h"
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
#include <sys/socket.h>
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
                              "sandbox: CPU time limit of %d s exceeded (signal %d, SIG%s)",
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

struct mg_sandbox {
    mg_sandbox_opts_t o;
    char *exe;
    pid_t zygote; /* 0: none running */
    int sock;     /* to the zygote; -1 */
};

void mg_sandbox_place_fds(const int *fds, int nfds)
{
    /* Through numbers above every target first, so no fd is clobbered before it moved. */
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
}

/* Between fork and exec: the limits every sandbox process takes (async-signal-safe calls). */
static void child_limits(int cpu_secs)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* the daemon's thread gone: this goes too */
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    setpriority(PRIO_PROCESS, 0, 10); /* validation yields the CPU to serving */
    if (cpu_secs > 0) {
        struct rlimit cpu = {(rlim_t)cpu_secs, (rlim_t)cpu_secs + 1};
        setrlimit(RLIMIT_CPU, &cpu);
    }
    struct rlimit core = {0, 0};
    setrlimit(RLIMIT_CORE, &core);
}

/* The child between fork and exec (see sandbox.h). */
static void child_exec(const char *exe, int cpu_secs, int *fds, int nfds, char *const *argv,
                       char *const *envp)
{
    mg_sandbox_place_fds(fds, nfds);
    child_limits(cpu_secs);
    execve(exe, argv, envp);
    _exit(127);
}

/*
 * The environment of sandbox processes: nothing of the daemon's; ONNX Runtime's telemetry off
 * (the official 1.29 Linux build starts a telemetry thread, an SQLite store under ~/.cache and
 * HTTPS uploads at OrtEnv creation: a thread the zygote must not have, files and sockets the
 * filter forbids, and most of the environment's start-up time); a sanitizer's limits.
 */
static void sandbox_env(const mg_sandbox_opts_t *o, char *buf, size_t cap, char **envp)
{
    snprintf(buf, cap,
             "ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=%d:"
             "abort_on_error=0:exitcode=%d",
             o->memory_mb, MG_SANDBOX_EXIT_SANITIZER);
    envp[0] = buf;
    envp[1] = "ORT_DISABLE_TELEMETRY=1";
    envp[2] = NULL;
}

int mg_sandbox_new(mg_sandbox_t **out, const mg_sandbox_opts_t *opts, mg_err_t *err)
{
    mg_sandbox_t *sb = calloc(1, sizeof(*sb));
    if (sb == NULL || (sb->exe = strdup(opts->exe)) == NULL) {
        free(sb);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    sb->o = *opts;
    sb->o.exe = sb->exe;
    sb->sock = -1;
    *out = sb;
    return 0;
}

static void zygote_stop(mg_sandbox_t *sb)
{
    if (sb->sock >= 0)
        close(sb->sock); /* the zygote reads EOF and exits */
    sb->sock = -1;
    if (sb->zygote > 0) {
        int st;
        kill(sb->zygote, SIGKILL); /* it may be waiting on a child that will not end */
        while (waitpid(sb->zygote, &st, 0) < 0 && errno == EINTR)
            ;
    }
    sb->zygote = 0;
}

void mg_sandbox_free(mg_sandbox_t *sb)
{
    if (sb == NULL)
        return;
    zygote_stop(sb);
    free(sb->exe);
    free(sb);
}

int mg_sandbox_zygote_pid(const mg_sandbox_t *sb)
{
    return sb->zygote;
}

/* Starts the zygote. Returns 0 or -1 (then validations exec a child each). */
static int zygote_start(mg_sandbox_t *sb)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    char env[160];
    char *envp[3];
    sandbox_env(&sb->o, env, sizeof(env), envp);
    char *argv[] = {sb->exe, MG_SANDBOX_ZYGOTE_CMD, NULL};
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        int fd = sv[1];
        /* No CPU limit on the zygote itself: each child takes its own. */
        child_exec(sb->exe, 0, &fd, 1, argv, envp);
    }
    close(sv[1]);
    sb->sock = sv[0];
    sb->zygote = pid;
    return 0;
}

/* Waits up to `ms` for one reply of the zygote. Returns 0 or -1 (it is gone or stuck). */
static int zygote_reply(mg_sandbox_t *sb, mg_zygote_reply_t *r, int ms)
{
    struct pollfd p = {.fd = sb->sock, .events = POLLIN};
    int n;
    while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
        ;
    if (n <= 0)
        return -1;
    ssize_t k = recv(sb->sock, r, sizeof(*r), 0);
    return k == (ssize_t)sizeof(*r) ? 0 : -1;
}

/* Hands `fds` and the job to the zygote; returns the child's pid, or -1 (no zygote). */
static pid_t zygote_spawn(mg_sandbox_t *sb, const mg_sandbox_job_t *job, const int *fds, int nfds)
{
    if (sb->zygote == 0 && zygote_start(sb) != 0)
        return -1;
    static char buf[MG_ZYGOTE_REQ_MAX];
    mg_zygote_req_t req = {job->warmup_runs, sb->o.memory_mb, sb->o.cpu_secs,
                           (int32_t)job->nexternal};
    size_t len = sizeof(req);
    memcpy(buf, &req, sizeof(req));
    for (size_t i = 0; i < job->nexternal; i++) {
        size_t k = strlen(job->external[i].name) + 1;
        if (k > 1024 || len + k > sizeof(buf))
            return -1;
        memcpy(buf + len, job->external[i].name, k);
        len += k;
    }
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * MG_SANDBOX_FDS_MAX)];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = {buf, len};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl.space,
                         .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    mg_zygote_reply_t r;
    if (sendmsg(sb->sock, &msg, MSG_NOSIGNAL) != (ssize_t)len || zygote_reply(sb, &r, 10000) != 0 ||
        r.kind != MG_ZYGOTE_STARTED) {
        mg_log(MG_LOG_WARN, "sandbox", "zygote pid=%d unusable, restarting it", (int)sb->zygote);
        zygote_stop(sb);
        return -1;
    }
    return r.pid;
}

/* Execs a child for this validation alone; returns its pid or -1. */
static pid_t exec_spawn(mg_sandbox_t *sb, const mg_sandbox_job_t *job, int *fds, int nfds)
{
    char args[3][32];
    char *argv[MG_SANDBOX_FDS_MAX + 8];
    int argc = 0;
    argv[argc++] = sb->exe;
    argv[argc++] = MG_SANDBOX_CHILD_CMD;
    snprintf(args[0], sizeof(args[0]), "%d", job->warmup_runs);
    snprintf(args[1], sizeof(args[1]), "%d", sb->o.memory_mb);
    snprintf(args[2], sizeof(args[2]), "%zu", job->nexternal);
    for (int i = 0; i < 3; i++)
        argv[argc++] = args[i];
    for (size_t i = 0; i < job->nexternal; i++)
        argv[argc++] = (char *)job->external[i].name;
    argv[argc] = NULL;
    char env[160];
    char *envp[3];
    sandbox_env(&sb->o, env, sizeof(env), envp);
    pid_t pid = fork();
    if (pid == 0)
        child_exec(sb->exe, sb->o.cpu_secs, fds, nfds, argv, envp);
    return pid;
}

int mg_sandbox_validate(mg_sandbox_t *sb, const mg_sandbox_job_t *job, mg_err_t *err)
{
    const mg_sandbox_opts_t *o = &sb->o;
    if (job->nexternal + 2 > MG_SANDBOX_FDS_MAX)
        return mg_err_set(err, MG_EMODEL, "sandbox: too many external-data files");
    int fds[MG_SANDBOX_FDS_MAX];
    int nfds = 0, pipefd[2] = {-1, -1};
    int rc = MG_EIO;
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

    /* The zygote forks the child; without one, a child is exec'd for this validation. */
    bool via_zygote = false;
    pid_t pid = -1;
    if (!o->no_zygote) {
        pid = zygote_spawn(sb, job, fds, nfds);
        via_zygote = pid > 0;
    }
    if (pid <= 0)
        pid = exec_spawn(sb, job, fds, nfds);
    if (pid < 0) {
        mg_err_set(err, MG_EIO, "sandbox: fork: %s", strerror(errno));
        goto out;
    }

    /* Only the read end stays open here, so EOF means the child is gone. */
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    nfds = 0;
    char report[1024];
    size_t rlen = 0;
    report[0] = '\0';
    int timed_out =
        !read_report(pipefd[0], report, sizeof(report), &rlen, now_ms() + o->timeout_ms);
    if (timed_out)
        kill(pid, SIGKILL); /* the zygote has not reaped it yet: the pid is still its */
    int status = 0;
    if (via_zygote) {
        mg_zygote_reply_t r;
        if (zygote_reply(sb, &r, 30000) != 0 || r.kind != MG_ZYGOTE_ENDED) {
            zygote_stop(sb);
            rc = mg_err_set(err, MG_EIO, "sandbox: the zygote went away during the validation");
            goto out;
        }
        status = r.status;
    } else {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
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
