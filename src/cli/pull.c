// cli/pull.c: `llem pull MODEL [--insecure]`: downloads a model from its registry through the
// server (POST /api/pull), drawing the streamed progress ("pulling manifest", "pulling
// 2af3b81862c6: 100% ▕…▏ 1.2 MB", "verifying sha256 digest", "writing manifest", "success").
// cli_registry_transfer also serves push and run.
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char *const usage_text =
    "Usage: llem pull MODEL [--insecure]\n\n"
    "Downloads a model from a registry.\n\n"
    "Options:\n"
    "  --insecure   use plain HTTP and skip TLS verification\n" CLI_ENV_HELP;

static bool on_progress_line(void *ctx, const cJSON *obj)
{
    cli_progress_update(ctx, obj);
    return true;
}

int cli_registry_transfer(const struct cli_client *c, const char *verb, const char *model,
                          bool insecure)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", model);
    if (insecure) {
        cJSON_AddBoolToObject(req, "insecure", true);
    }
    cJSON_AddBoolToObject(req, "stream", true);
    struct cli_progress p;
    cli_progress_init(&p);
    struct llem_errbuf eb = {0};
    cli_interrupted = 0;
    cli_catch_sigint(true);
    char path[32];
    snprintf(path, sizeof path, "/api/%s", verb);
    enum llem_err e = cli_stream(c, "POST", path, req, on_progress_line, &p, &eb);
    cli_catch_sigint(false);
    cli_progress_done(&p);
    cJSON_Delete(req);
    if (e != LLEM_OK) {
        return cli_fail(verb, "%s", eb.msg);
    }
    return 0;
}

int cli_transfer_verb(const char *verb, const char *usage, int argc, char **argv)
{
    const char *model = NULL;
    bool insecure = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--insecure")) {
            insecure = true;
        } else if (argv[i][0] == '-') {
            return cli_fail(verb, "unknown flag '%s' (try 'llem %s --help')", argv[i], verb);
        } else if (model) {
            return cli_fail(verb, "takes exactly one MODEL (try 'llem %s --help')", verb);
        } else {
            model = argv[i];
        }
    }
    if (!model) {
        return cli_fail(verb, "missing MODEL (try 'llem %s --help')", verb);
    }
    struct cli_client c;
    if (!cli_client_open(&c, verb)) {
        return 1;
    }
    return cli_registry_transfer(&c, verb, model, insecure);
}

int cli_pull(int argc, char **argv)
{
    return cli_transfer_verb("pull", usage_text, argc, argv);
}
