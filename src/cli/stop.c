// cli/stop.c: `llem stop MODEL`: unloads a model now, as Ollama does: POST /api/generate with
// no prompt and keep_alive 0.
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char *const usage_text =
    "Usage: llem stop MODEL\n\n"
    "Unloads a running model from the server's memory.\n" CLI_ENV_HELP;

int cli_stop(int argc, char **argv)
{
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            return cli_fail("stop", "unknown flag '%s' (try 'llem stop --help')", argv[i]);
        } else if (model) {
            return cli_fail("stop", "takes exactly one MODEL (try 'llem stop --help')");
        }
        model = argv[i];
    }
    if (!model) {
        return cli_fail("stop", "missing MODEL (try 'llem stop --help')");
    }
    struct cli_client c;
    if (!cli_client_open(&c, "stop")) {
        return 1;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", model);
    cJSON_AddNumberToObject(req, "keep_alive", 0);
    cJSON_AddBoolToObject(req, "stream", false);
    struct llem_errbuf eb = {0};
    enum llem_err e = cli_call(&c, "POST", "/api/generate", req, NULL, &eb);
    cJSON_Delete(req);
    if (e == LLEM_ENOTFOUND) {
        return cli_fail("stop", "couldn't find model \"%s\" to stop", model);
    }
    return e == LLEM_OK ? 0 : cli_fail("stop", "%s", eb.msg);
}
