/*
 * `modelgate serve` and `modelgate check`.
 */
#ifndef MG_CLI_SERVE_H
#define MG_CLI_SERVE_H

#include "core/err.h"

#include <stddef.h>

/** Runs `serve` (argv[0] is "serve") until SIGINT or SIGTERM; returns the exit status. */
int mg_cli_serve(int argc, char **argv);

/** Runs `check MODEL.onnx`: prints the model's inputs and outputs; 0 valid, 1 invalid, 2 usage. */
int mg_cli_check(int argc, char **argv);

/**
 * Reads a server config text as `serve --config` does (the same table, the same checks) into
 * scratch options. Returns 0, or MG_ECONFIG with `err` saying why. For the fuzz target and
 * tests. Thread: any.
 */
int mg_cli_serve_config_check(const char *text, size_t len, mg_err_t *err);

#endif
