// cli/serve.c: `llem serve [--host H:P] [--model NAME=PATH ...]`: the Ollama- and
// OpenAI-compatible HTTP server (server/server.h) until SIGINT or SIGTERM, then a clean
// shutdown (in-flight generations end with an error line, models unloaded). Settings come from
// LLEM_HOST / OLLAMA_HOST, LLEM_MODELS_DIR, LLEM_MAX_BODY, LLEM_ORIGINS and the scheduler's
// LLEM_* variables; flags override them.
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/cli.h"
#include "server/server.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: llem serve [--host HOST:PORT] [--model NAME=PATH ...]\n"
            "Serves the Ollama API (/api/*) and the OpenAI API (/v1/*) on 127.0.0.1:11434.\n"
            "  --host H:P         address to listen on (LLEM_HOST, else OLLAMA_HOST)\n"
            "  --model NAME=PATH  serve the GGUF file PATH under NAME (repeatable)\n"
            "Requests may also name a GGUF path, or NAME for LLEM_MODELS_DIR/NAME.gguf.\n"
            "Environment: LLEM_MODELS_DIR, LLEM_MAX_BODY (bytes), LLEM_ORIGINS,\n"
            "  LLEM_HTTP_REQUEST_TIMEOUT (30s), LLEM_HTTP_IDLE_TIMEOUT (5m), LLEM_KEEP_ALIVE,\n"
            "  LLEM_NUM_PARALLEL, LLEM_MAX_QUEUE, LLEM_MAX_LOADED_MODELS, LLEM_CONTEXT_LENGTH.\n");
}

int cli_serve(int argc, char **argv)
{
    struct server_params p;
    struct llem_errbuf eb = {0};
    if (server_params_from_env(&p, &eb) != LLEM_OK) {
        return cli_fail("serve", "%s", eb.msg);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--host") && v) {
            if (server_parse_host(v, p.host, sizeof p.host, &p.port, &eb) != LLEM_OK) {
                return cli_fail("serve", "%s", eb.msg);
            }
            i++;
        } else if (!strcmp(a, "--model") && v) {
            if (server_add_alias(&p, v, &eb) != LLEM_OK) {
                return cli_fail("serve", "%s", eb.msg);
            }
            i++;
        } else {
            return cli_fail("serve", "unknown option or missing value: '%s' (see llem serve "
                            "--help)", a);
        }
    }
    if (!getenv("LLEM_LOG_LEVEL") && !getenv("LLEM_DEBUG")) {
        log_set_level(LOG_LEVEL_INFO); // a server says where it listens and logs requests
    }
    struct sched_params sp;
    if (sched_params_from_env(&sp, &eb) != LLEM_OK) {
        return cli_fail("serve", "%s", eb.msg);
    }
    // Every thread started from here on inherits the blocked set, so the signals are taken
    // only by sigwait below and never interrupt a worker.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct server *srv = NULL;
    if (server_new(&p, &sp, &srv, &eb) != LLEM_OK) {
        return cli_fail("serve", "%s", eb.msg);
    }
    log_info("llem serve: listening on %s:%u (llem %s)", p.host, (unsigned)server_port(srv),
             llem_version());
    int sig = 0;
    sigwait(&set, &sig);
    log_info("llem serve: %s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server_free(srv);
    log_info("llem serve: stopped");
    return 0;
}
