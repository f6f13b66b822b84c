// cli/ps.c: `llem ps`: the models loaded in the server (GET /api/ps) as Ollama's table: NAME,
// ID, SIZE, PROCESSOR ("100% CPU", "100% GPU", "25%/75% CPU/GPU"), CONTEXT, UNTIL
// ("4 minutes from now", "Forever", "Stopping...").
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char *const usage_text =
    "Usage: llem ps\n\n"
    "Lists the models the server has loaded, their memory and when they unload.\n" CLI_ENV_HELP;

static uint64_t u64_field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
}

int cli_ps(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return 0;
        }
        return cli_fail("ps", "takes no arguments (got '%s'; try 'llem ps --help')", argv[i]);
    }
    struct cli_client c;
    if (!cli_client_open(&c, "ps")) {
        return 1;
    }
    struct llem_errbuf eb = {0};
    cJSON *resp = NULL;
    if (cli_call(&c, "GET", "/api/ps", NULL, &resp, &eb) != LLEM_OK) {
        return cli_fail("ps", "%s", eb.msg);
    }
    struct cli_table t;
    cli_table_init(&t, 6);
    const char *hdr[] = {"NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"};
    for (int i = 0; i < 6; i++) {
        cli_table_add(&t, hdr[i]);
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(resp, "models"))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
        const cJSON *digest = cJSON_GetObjectItemCaseSensitive(m, "digest");
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(m, "expires_at");
        if (!cJSON_IsString(name)) {
            continue;
        }
        uint64_t size = u64_field(m, "size"), vram = u64_field(m, "size_vram");
        char id[13], sz[32], proc[48], ctx[24], until[64];
        cli_short_id(cJSON_IsString(digest) ? digest->valuestring : "", id);
        cli_human_bytes(size, sz, sizeof sz);
        if (vram == 0) {
            snprintf(proc, sizeof proc, "100%% CPU");
        } else if (vram == size) {
            snprintf(proc, sizeof proc, "100%% GPU");
        } else if (vram > size || size == 0) {
            snprintf(proc, sizeof proc, "Unknown");
        } else {
            int cpu = (int)lround((double)(size - vram) * 100.0 / (double)size);
            snprintf(proc, sizeof proc, "%d%%/%d%% CPU/GPU", cpu, 100 - cpu);
        }
        snprintf(ctx, sizeof ctx, "%llu", (unsigned long long)u64_field(m, "context_length"));
        int64_t when = cli_parse_time(cJSON_IsString(exp) ? exp->valuestring : NULL);
        if (when && when < (int64_t)time(NULL)) {
            snprintf(until, sizeof until, "Stopping...");
        } else {
            cli_human_time(when, "Never", until, sizeof until);
        }
        const char *row[] = {name->valuestring, id, sz, proc, ctx, until};
        for (int i = 0; i < 6; i++) {
            cli_table_add(&t, row[i]);
        }
    }
    cli_table_print(&t, "");
    cli_table_deinit(&t);
    cJSON_Delete(resp);
    return 0;
}
