// cli/rm.c: `llem rm MODEL...`: deletes models (DELETE /api/delete), unloading each first
// (keep_alive 0; errors of that step are ignored: the model may not be loaded). Unused blobs
// are pruned by the server.
#include <stdio.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char *const usage_text =
    "Usage: llem rm MODEL [MODEL...]\n\n"
    "Removes models from the store.\n" CLI_ENV_HELP;

int cli_rm(int argc, char **argv)
{
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            return cli_fail("rm", "unknown flag '%s' (try 'llem rm --help')", argv[i]);
        }
        n++;
    }
    if (!n) {
        return cli_fail("rm", "missing MODEL (try 'llem rm --help')");
    }
    struct cli_client c;
    if (!cli_client_open(&c, "rm")) {
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        struct llem_errbuf eb = {0};
        cJSON *req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "model", argv[i]);
        cJSON_AddNumberToObject(req, "keep_alive", 0);
        cJSON_AddBoolToObject(req, "stream", false);
        enum llem_err e = cli_call(&c, "POST", "/api/generate", req, NULL, &eb);
        if (e == LLEM_EIO && !cli_server_up(&c)) {
            cJSON_Delete(req);
            return cli_fail("rm", "%s", eb.msg);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(req, "keep_alive");
        cJSON_DeleteItemFromObjectCaseSensitive(req, "stream");
        e = cli_call(&c, "DELETE", "/api/delete", req, NULL, &eb);
        cJSON_Delete(req);
        if (e != LLEM_OK) {
            return cli_fail("rm", "%s", eb.msg);
        }
        printf("deleted '%s'\n", argv[i]);
    }
    return 0;
}
