// cli/cp.c: `llem cp SOURCE DESTINATION`: copies a model under a new name (POST /api/copy;
// the blobs are shared, only the manifest is copied).
#include <stdio.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char *const usage_text =
    "Usage: llem cp SOURCE DESTINATION\n\n"
    "Copies a model to a new name (layers are shared, nothing is duplicated).\n" CLI_ENV_HELP;

int cli_cp(int argc, char **argv)
{
    const char *args[2] = {NULL, NULL};
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            return cli_fail("cp", "unknown flag '%s' (try 'llem cp --help')", argv[i]);
        } else if (n == 2) {
            return cli_fail("cp", "takes exactly SOURCE and DESTINATION (try 'llem cp --help')");
        }
        args[n++] = argv[i];
    }
    if (n != 2) {
        return cli_fail("cp", "takes exactly SOURCE and DESTINATION (try 'llem cp --help')");
    }
    struct cli_client c;
    if (!cli_client_open(&c, "cp")) {
        return 1;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "source", args[0]);
    cJSON_AddStringToObject(req, "destination", args[1]);
    struct llem_errbuf eb = {0};
    enum llem_err e = cli_call(&c, "POST", "/api/copy", req, NULL, &eb);
    cJSON_Delete(req);
    if (e != LLEM_OK) {
        return cli_fail("cp", "%s", eb.msg);
    }
    printf("copied '%s' to '%s'\n", args[0], args[1]);
    return 0;
}
