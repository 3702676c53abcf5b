/*
 * The sandbox zygote: `modelgate __sandbox-zygote`, exec'd once by the daemon with a
 * SOCK_SEQPACKET socket on fd 3. It is single-threaded and never starts ONNX Runtime itself, so
 * forking it is safe: for each request (a header, the external file names, and the result
 * pipe, the model and its external files as SCM_RIGHTS fds) it forks a child that puts its fds
 * in place, takes its limits and runs the validation (child.c), replies with the child's pid,
 * reaps it and replies with its wait status. A validation then costs a fork, not an exec, a
 * dynamic link of ONNX Runtime and (in sanitizer builds) a sanitizer start-up. It exits when
 * the daemon closes the socket, and dies with the thread that started it (PDEATHSIG).
 */
#include "sandbox/sandbox.h"

#include "sandbox/sandbox_internal.h"

#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ZYGOTE_SOCK 3

static void reply(int kind, int pid, int status)
{
    mg_zygote_reply_t r = {kind, pid, status};
    if (send(ZYGOTE_SOCK, &r, sizeof(r), MSG_NOSIGNAL) != (ssize_t)sizeof(r))
        _exit(0); /* the daemon is gone */
}

/* Threads of this process, from /proc/self/task (-1 when it cannot tell). */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

int mg_sandbox_zygote_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    signal(SIGCHLD, SIG_DFL);
    mg_log_configure(MG_LOG_ERROR, 0);
    /* The environment once, here: every child starts with it (pools of one thread, so none
       beyond the caller's, and telemetry off). Forking is only safe while this process has one
       thread: otherwise the daemon execs a child per validation. */
    mg_err_t err;
    if (mg_sandbox_env_init(&err) != 0) {
        mg_log(MG_LOG_ERROR, "sandbox", "zygote: %s", err.msg);
        _exit(1);
    }
    if (thread_count() != 1) {
        mg_log(MG_LOG_ERROR, "sandbox", "zygote: %d threads after starting onnx runtime, not 1",
               thread_count());
        _exit(1);
    }
    static char buf[MG_ZYGOTE_REQ_MAX + 1];
    for (;;) {
        union {
            struct cmsghdr h;
            char space[CMSG_SPACE(sizeof(int) * MG_SANDBOX_FDS_MAX)];
        } ctl;
        struct iovec iov = {buf, MG_ZYGOTE_REQ_MAX};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.space,
                             .msg_controllen = sizeof(ctl.space)};
        ssize_t n = recvmsg(ZYGOTE_SOCK, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(0); /* the daemon closed the socket */
        int fds[MG_SANDBOX_FDS_MAX], nfds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k && nfds < MG_SANDBOX_FDS_MAX; i++)
                memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
        mg_zygote_req_t req;
        buf[n] = '\0';
        if ((size_t)n < sizeof(req) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
            for (int i = 0; i < nfds; i++)
                close(fds[i]);
            reply(MG_ZYGOTE_FORK_FAILED, 0, EINVAL);
            continue;
        }
        memcpy(&req, buf, sizeof(req));
        char *names[MG_SESSION_FILES_MAX];
        char *p = buf + sizeof(req), *end = buf + n;
        int named = 0;
        while (named < req.nexternal && named < MG_SESSION_FILES_MAX && p < end) {
            names[named++] = p;
            p += strlen(p) + 1;
        }
        if (req.nexternal < 0 || named != req.nexternal || nfds != 2 + req.nexternal) {
            for (int i = 0; i < nfds; i++)
                close(fds[i]);
            reply(MG_ZYGOTE_FORK_FAILED, 0, EINVAL);
            continue;
        }
        pid_t pid = fork();
        if (pid == 0) {
            /* A copy of a single-threaded process: free to initialise what it needs. */
            mg_sandbox_place_fds(fds, nfds);  /* also closes the zygote's socket */
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* cleared by fork: the zygote gone, this goes */
            struct rlimit cpu = {(rlim_t)req.cpu_secs, (rlim_t)req.cpu_secs + 1};
            setrlimit(RLIMIT_CPU, &cpu);
            mg_sandbox_child_run(req.warmup, req.memory_mb, (size_t)req.nexternal, names, true);
        }
        int fork_errno = errno;
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        if (pid < 0) {
            reply(MG_ZYGOTE_FORK_FAILED, 0, fork_errno);
            continue;
        }
        reply(MG_ZYGOTE_STARTED, pid, 0);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        reply(MG_ZYGOTE_ENDED, pid, status);
    }
}
