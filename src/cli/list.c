// cli/list.c: `llem list [PREFIX]` (alias `llem ls`): the models the server knows, from
// GET /api/tags, as Ollama's table: NAME, ID (12 hex digits of the manifest digest), SIZE,
// MODIFIED ("2 weeks ago"), newest first as the server sends them.
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char *const usage_text =
    "Usage: llem list [PREFIX]\n"
    "       llem ls [PREFIX]\n\n"
    "Lists the models the server has (only those whose name starts with PREFIX).\n"
    CLI_ENV_HELP;

static int list_main(const char *verb, int argc, char **argv)
{
    const char *prefix = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            return cli_fail(verb, "unknown flag '%s' (try 'llem %s --help')", argv[i], verb);
        } else if (prefix) {
            return cli_fail(verb, "takes at most one argument (try 'llem %s --help')", verb);
        }
        prefix = argv[i];
    }
    struct cli_client c;
    if (!cli_client_open(&c, verb)) {
        return 1;
    }
    struct llem_errbuf eb = {0};
    cJSON *resp = NULL;
    if (cli_call(&c, "GET", "/api/tags", NULL, &resp, &eb) != LLEM_OK) {
        return cli_fail(verb, "%s", eb.msg);
    }
    struct cli_table t;
    cli_table_init(&t, 4);
    cli_table_add(&t, "NAME");
    cli_table_add(&t, "ID");
    cli_table_add(&t, "SIZE");
    cli_table_add(&t, "MODIFIED");
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(resp, "models"))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
        const cJSON *digest = cJSON_GetObjectItemCaseSensitive(m, "digest");
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(m, "size");
        const cJSON *mod = cJSON_GetObjectItemCaseSensitive(m, "modified_at");
        if (!cJSON_IsString(name) ||
            (prefix && strncmp(name->valuestring, prefix, strlen(prefix)))) {
            continue;
        }
        char id[13], sz[32], when[64];
        cli_short_id(cJSON_IsString(digest) ? digest->valuestring : "", id);
        cli_human_bytes(cJSON_IsNumber(size) && size->valuedouble > 0
                            ? (uint64_t)size->valuedouble : 0, sz, sizeof sz);
        cli_human_time(cli_parse_time(cJSON_IsString(mod) ? mod->valuestring : NULL), "Never",
                       when, sizeof when);
        cli_table_add(&t, name->valuestring);
        cli_table_add(&t, id);
        cli_table_add(&t, sz);
        cli_table_add(&t, when);
    }
    cli_table_print(&t, "");
    cli_table_deinit(&t);
    cJSON_Delete(resp);
    return 0;
}

int cli_list(int argc, char **argv)
{
    return list_main("list", argc, argv);
}

int cli_ls(int argc, char **argv)
{
    return list_main("ls", argc, argv);
}
