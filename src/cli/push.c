// cli/push.c: `llem push MODEL [--insecure]`: uploads a model to the registry its name points
// at, through the server (POST /api/push), drawing the streamed progress ("retrieving
// manifest", "pushing 2af3b81862c6: …", "pushing manifest", "success").
#include <stdio.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char *const usage_text =
    "Usage: llem push MODEL [--insecure]\n\n"
    "Uploads a model to a registry (the host part of its name, e.g. "
    "localhost:5000/me/model:tag).\n\n"
    "Options:\n"
    "  --insecure   use plain HTTP and skip TLS verification\n" CLI_ENV_HELP;

int cli_push(int argc, char **argv)
{
    return cli_transfer_verb("push", usage_text, argc, argv);
}
