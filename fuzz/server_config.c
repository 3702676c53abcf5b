/*
 * libFuzzer target for the server config file (`serve --config`): the real option table of
 * cli/serve.c read from the input as text. Every refusal must say why.
 */
#include "cli/serve.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_copy(data, size);
    if (text == NULL)
        return 0;
    mg_err_t err;
    if (mg_cli_serve_config_check(text, size, &err) != 0)
        check(err.code == MG_ECONFIG && err.msg[0] != '\0');
    free(text);
    return 0;
}
