/*
 * A real etcd server for unit tests (Debian's etcd-server): loopback, free ports, a temporary
 * data dir; it dies with the test process (PR_SET_PDEATHSIG) even when the test crashes.
 */
#ifndef MG_SUPPORT_ETCD_H
#define MG_SUPPORT_ETCD_H

#include "cluster/etcd.h"

#include <stdint.h>
#include <sys/types.h>

/** One etcd member. */
typedef struct mg_test_etcd {
    pid_t pid;
    int client_port;
    int peer_port;
    char url[64]; /* "http://127.0.0.1:PORT" */
    char dir[256];
} mg_test_etcd_t;

/**
 * Starts etcd and waits (up to 30 s) until it answers; fails the running test, naming why,
 * when it does not. Returns 0.
 */
int mg_test_etcd_start(mg_test_etcd_t *e);

/** Stops etcd and removes its data dir. Accepts a member that was never started. */
void mg_test_etcd_stop(mg_test_etcd_t *e);

/** Puts `key` = `value` through `client`, failing the running test if etcd refuses; returns the
 * store revision after it. */
int64_t mg_test_etcd_put(mg_etcd_t *client, const char *key, const char *value);

/** A loopback TCP port nobody listens on right now. */
int mg_test_free_port(void);

#endif
