#include "cli/cli.h"

#include "cli/ctl.h"
#include "cli/serve.h"
#include "infer/session.h"
#include "sandbox/sandbox.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs(
        "usage: modelgate <command> [options]\n"
        "\n"
        "An ONNX model server (KServe v2 / Open Inference Protocol over HTTP) and canary gateway.\n"
        "\n"
        "commands:\n"
        "  serve --repo DIR [--listen ADDR:PORT] [--threads N] [--config FILE]\n"
        "        serve every model of a Triton-layout repository "
        "(DIR/<model>/<version>/model.onnx)\n"
        "  ctl [--server URL] traffic MODEL [V=W ...] | routes [FILE] | kill-switch [on|off]\n"
        "        read or change a running server's traffic policies, route table, kill switch\n"
        "  ctl --etcd URL [--etcd-prefix P] traffic|routes|kill-switch ... | status\n"
        "        the same for a whole fleet, through etcd; status shows who converged\n"
        "  check MODEL.onnx\n"
        "        load a model with ONNX Runtime and print its inputs and outputs; exit 1 if it is "
        "invalid\n"
        "\n"
        "options:\n"
        "  -h, --help      show this help (or `modelgate <command> --help`)\n"
        "  -V, --version   show the version of modelgate and of ONNX Runtime\n",
        f);
}

int mg_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    /* The loader's validation processes, never a user's. */
    if (strcmp(cmd, MG_SANDBOX_CHILD_CMD) == 0)
        return mg_sandbox_child_main(argc - 1, argv + 1);
    if (strcmp(cmd, MG_SANDBOX_ZYGOTE_CMD) == 0)
        return mg_sandbox_zygote_main(argc - 1, argv + 1);
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("modelgate %s (ONNX Runtime %s)\n", MG_VERSION, mg_infer_runtime_version());
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return mg_cli_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "ctl") == 0)
        return mg_cli_ctl(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return mg_cli_check(argc - 1, argv + 1);
    fprintf(stderr, "modelgate: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
