/*
 * `modelgate serve` and `modelgate check`.
 */
#ifndef MG_CLI_SERVE_H
#define MG_CLI_SERVE_H

/** Runs `serve` (argv[0] is "serve") until SIGINT or SIGTERM; returns the exit status. */
int mg_cli_serve(int argc, char **argv);

/** Runs `check MODEL.onnx`: prints the model's inputs and outputs; 0 valid, 1 invalid, 2 usage. */
int mg_cli_check(int argc, char **argv);

#endif
