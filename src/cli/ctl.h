/*
 * `modelgate ctl`: the admin API from the command line, or the fleet's configuration in etcd.
 *
 *   modelgate ctl [--server URL] traffic MODEL                 print the live policy
 *   modelgate ctl [--server URL] traffic MODEL V=W... [--stable V]
 *   modelgate ctl [--server URL] routes                        print the live route table
 *   modelgate ctl [--server URL] routes FILE                   replace the route table
 *   modelgate ctl [--server URL] kill-switch [on|off]          print or set the kill switch
 *   modelgate ctl --etcd URL [--etcd-prefix P] [--if-revision N] traffic|routes|kill-switch ...
 *   modelgate ctl --etcd URL [--etcd-prefix P] status          which instances converged
 *
 * The server defaults to $MODELGATE_SERVER, else http://127.0.0.1:8000; --etcd to
 * $MODELGATE_ETCD, the prefix to $MODELGATE_ETCD_PREFIX, else /modelgate/default. With --etcd a
 * change is validated here with the server's own validators (mg_policy_parse,
 * mg_route_table_parse; versions are checked by each instance), then written in one etcd
 * transaction, compared on the key's mod revision when --if-revision is given.
 */
#ifndef MG_CLI_CTL_H
#define MG_CLI_CTL_H

/**
 * Runs `ctl` (argv[0] is "ctl"); returns 0, 1 when the server or etcd refuses or fails (or the
 * change does not validate, or --if-revision no longer matches), 2 on usage. Thread: main.
 */
int mg_cli_ctl(int argc, char **argv);

#endif
