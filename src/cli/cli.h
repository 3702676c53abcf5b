/*
 * The `modelgate` command: `serve`, `check`, `--help`, `--version`.
 */
#ifndef MG_CLI_CLI_H
#define MG_CLI_CLI_H

/** Runs the command line; returns the process exit status. Thread: main only. */
int mg_cli_main(int argc, char **argv);

#endif
