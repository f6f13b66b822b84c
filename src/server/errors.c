// server/errors.c: llem_err -> HTTP status (Ollama's codes: 400 bad input, 404 unknown model,
// 413 too large, 499 canceled, 501 not implemented, 503 busy, 500 otherwise) and the two error
// body shapes: Ollama's {"error": "..."} and OpenAI's {"error": {"message", "type", "param",
// "code"}} on /v1 routes.
#include "server/server_int.h"

int srv_status_for(enum llem_err e)
{
    switch (e) {
    case LLEM_OK:
        return 200;
    case LLEM_EINVAL:
    case LLEM_ELIMIT:
        return 400;
    case LLEM_ENOTFOUND:
        return 404;
    case LLEM_EBUSY:
        return 503;
    case LLEM_ECANCELED:
        return 499;
    case LLEM_EUNSUPPORTED:
        return 501;
    case LLEM_ETIMEDOUT:
        return 504;
    default:
        return 500;
    }
}

static const char *oai_type(int status)
{
    switch (status) {
    case 400:
    case 413:
        return "invalid_request_error";
    case 404:
        return "not_found_error";
    case 503:
        return "server_busy";
    default:
        return "api_error";
    }
}

enum llem_err srv_error_json(struct strbuf *sb, bool openai, int status, const char *msg)
{
    enum llem_err e;
    if (openai) {
        e = strbuf_append_str(sb, "{\"error\":{\"message\":\"");
        if (e == LLEM_OK) {
            e = strbuf_append_json_escaped(sb, msg, strlen(msg));
        }
        if (e == LLEM_OK) {
            e = strbuf_appendf(sb, "\",\"type\":\"%s\",\"param\":null,\"code\":null}}",
                               oai_type(status));
        }
    } else {
        e = strbuf_append_str(sb, "{\"error\":\"");
        if (e == LLEM_OK) {
            e = strbuf_append_json_escaped(sb, msg, strlen(msg));
        }
        if (e == LLEM_OK) {
            e = strbuf_append_str(sb, "\"}");
        }
    }
    return e;
}

enum MHD_Result srv_reply_err(struct http_req *r, const struct llem_errbuf *eb)
{
    return http_reply_error(r, srv_status_for(eb->code), "%s",
                            eb->msg[0] ? eb->msg : llem_err_str(eb->code));
}
