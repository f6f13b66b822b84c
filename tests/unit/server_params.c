// tests/unit/server_params.c: OLLAMA_HOST-style address parsing (schemes, default ports, IPv6
// brackets, bad ports) and --model NAME=PATH aliases (lower-casing, ":latest", bad specs).
#include <string.h>

#include "check.h"
#include "server/server.h"

static void test_parse_host(void)
{
    struct llem_errbuf eb = {0};
    char h[256];
    uint16_t port = 0;
    CHECK_OK(server_parse_host("127.0.0.1:8080", h, sizeof h, &port, &eb), &eb);
    CHECK_EQ_STR(h, "127.0.0.1");
    CHECK_EQ_I64(port, 8080);
    CHECK_OK(server_parse_host("0.0.0.0", h, sizeof h, &port, &eb), &eb);
    CHECK_EQ_STR(h, "0.0.0.0");
    CHECK_EQ_I64(port, 11434);
    CHECK_OK(server_parse_host(":9000", h, sizeof h, &port, &eb), &eb);
    CHECK_EQ_STR(h, "127.0.0.1");
    CHECK_EQ_I64(port, 9000);
    CHECK_OK(server_parse_host("http://example.com/path", h, sizeof h, &port, &eb), &eb);
    CHECK_EQ_STR(h, "example.com");
    CHECK_EQ_I64(port, 11434);
    CHECK_OK(server_parse_host("https://example.com", h, sizeof h, &port, &eb), &eb);
    CHECK_EQ_I64(port, 443);
    CHECK_OK(server_parse_host("[::1]:7000", h, sizeof h, &port, &eb), &eb);
    CHECK_EQ_STR(h, "::1");
    CHECK_EQ_I64(port, 7000);
    CHECK_OK(server_parse_host("::1", h, sizeof h, &port, &eb), &eb);
    CHECK_EQ_STR(h, "::1");
    CHECK(server_parse_host("127.0.0.1:99999", h, sizeof h, &port, &eb) == LLEM_EINVAL);
    CHECK(server_parse_host("127.0.0.1:", h, sizeof h, &port, &eb) == LLEM_EINVAL);
    CHECK(server_parse_host("127.0.0.1:12a", h, sizeof h, &port, &eb) == LLEM_EINVAL);
    CHECK(server_parse_host("ftp://x:1", h, sizeof h, &port, &eb) == LLEM_EINVAL);
    CHECK(server_parse_host("[::1", h, sizeof h, &port, &eb) == LLEM_EINVAL);
}

static void test_alias(void)
{
    struct server_params p;
    struct llem_errbuf eb = {0};
    server_params_init(&p);
    CHECK_OK(server_add_alias(&p, "Tiny:Latest=/m/t.gguf", &eb), &eb);
    CHECK_EQ_STR(p.aliases[0].name, "tiny");
    CHECK_EQ_STR(p.aliases[0].path, "/m/t.gguf");
    CHECK(server_add_alias(&p, "=x", &eb) == LLEM_EINVAL);
    CHECK(server_add_alias(&p, "name=", &eb) == LLEM_EINVAL);
    CHECK(server_add_alias(&p, "noequals", &eb) == LLEM_EINVAL);
    CHECK(server_add_alias(&p, "bad name=x", &eb) == LLEM_EINVAL);
    for (int i = 1; i < SERVER_MAX_ALIASES; i++) {
        CHECK_OK(server_add_alias(&p, "m=x", &eb), &eb);
    }
    CHECK(server_add_alias(&p, "m=x", &eb) == LLEM_ELIMIT);
}

int main(void)
{
    RUN_TEST(test_parse_host);
    RUN_TEST(test_alias);
    return TEST_EXIT();
}
