#include "support/etcd.h"

#include "cluster/etcd.h"
#include "support/support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

int mg_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("cannot find a free port");
    close(fd);
    return ntohs(a.sin_port);
}

int mg_test_etcd_start(mg_test_etcd_t *e)
{
    memset(e, 0, sizeof(*e));
    if (mg_test_tmpdir("mg-etcd-", e->dir, sizeof(e->dir)) != 0)
        fail_msg("cannot make a folder for etcd");
    e->client_port = mg_test_free_port();
    e->peer_port = mg_test_free_port();
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d", e->client_port);
    char peer[64], cluster[96], data[300], log[300];
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", e->peer_port);
    snprintf(cluster, sizeof(cluster), "mgtest=%s", peer);
    snprintf(data, sizeof(data), "%s/data", e->dir);
    snprintf(log, sizeof(log), "%s/etcd.log", e->dir);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("etcd", "etcd", "--name", "mgtest", "--data-dir", data, "--listen-client-urls",
               e->url, "--advertise-client-urls", e->url, "--listen-peer-urls", peer,
               "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster, "--log-level",
               "warn", (char *)NULL);
        _exit(127);
    }
    e->pid = pid;
    mg_etcd_t *c = NULL;
    mg_etcd_opts_t o = {.endpoints = e->url, .connect_timeout_ms = 200, .request_timeout_ms = 500};
    mg_err_t err;
    if (mg_etcd_new(&c, &o, &err) != 0)
        fail_msg("%s", err.msg);
    for (int i = 0; i < 600; i++) {
        mg_etcd_kvs_t kvs = {0};
        if (mg_etcd_range(c, "/", true, &kvs, &err) == 0) {
            mg_etcd_kvs_free(&kvs);
            mg_etcd_free(c);
            return 0;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            e->pid = 0;
            fail_msg("etcd exited (see %s)", log);
        }
        struct timespec ms50 = {0, 50000000L};
        nanosleep(&ms50, NULL);
    }
    mg_etcd_free(c);
    fail_msg("etcd did not answer on %s (%s)", e->url, err.msg);
    return -1;
}

void mg_test_etcd_stop(mg_test_etcd_t *e)
{
    if (e->pid > 0) {
        kill(e->pid, SIGTERM);
        waitpid(e->pid, NULL, 0);
        e->pid = 0;
    }
    if (e->dir[0] != '\0') {
        mg_test_sh("rm -rf %s", e->dir);
        e->dir[0] = '\0';
    }
}

int64_t mg_test_etcd_put(mg_etcd_t *client, const char *key, const char *value)
{
    mg_etcd_put_t p = {key, value, strlen(value), 0};
    bool ok = false;
    int64_t rev = 0;
    mg_err_t err;
    if (mg_etcd_txn(client, &p, 1, NULL, 0, &ok, &rev, &err) != 0 || !ok)
        fail_msg("put %s: %s", key, ok ? err.msg : "the transaction did not succeed");
    return rev;
}
