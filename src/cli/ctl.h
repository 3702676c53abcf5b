/*
 * `modelgate ctl`: the admin API from the command line.
 *
 *   modelgate ctl [--server URL] traffic MODEL                 print the live policy
 *   modelgate ctl [--server URL] traffic MODEL V=W... [--stable V]
 *   modelgate ctl [--server URL] routes                        print the live route table
 *   modelgate ctl [--server URL] routes FILE                   replace the route table
 *
 * The server defaults to $MODELGATE_SERVER, else http://127.0.0.1:8000.
 */
#ifndef MG_CLI_CTL_H
#define MG_CLI_CTL_H

/** Runs `ctl` (argv[0] is "ctl"); returns 0, 1 when the server refuses or fails, 2 on usage. */
int mg_cli_ctl(int argc, char **argv);

#endif
