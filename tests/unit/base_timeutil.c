// tests/unit/base_timeutil.c: Go-style duration parsing (units, fractions, sums, signs, bare
// seconds), its error cases and the int64 range, and a monotonic clock that never goes back.
#include "base/timeutil.h"
#include "check.h"

static int64_t dur(const char *s)
{
    int64_t v = -777;
    struct llem_errbuf eb = {0};
    enum llem_err e = time_parse_duration(s, &v, &eb);
    if (e != LLEM_OK) {
        fprintf(stderr, "  parse \"%s\": %s\n", s, eb.msg);
        return -777;
    }
    return v;
}

static enum llem_err dur_err(const char *s)
{
    int64_t v;
    return time_parse_duration(s, &v, NULL);
}

static void test_valid(void)
{
    const int64_t S = 1000000000;
    CHECK_EQ_I64(dur("0"), 0);
    CHECK_EQ_I64(dur("5m"), 300 * S);
    CHECK_EQ_I64(dur("1h30m"), 5400 * S);
    CHECK_EQ_I64(dur("300ms"), 300000000);
    CHECK_EQ_I64(dur("1.5s"), 1500000000);
    CHECK_EQ_I64(dur(".5s"), 500000000);
    CHECK_EQ_I64(dur("2h45m30.5s"), (2 * 3600 + 45 * 60 + 30) * S + S / 2);
    CHECK_EQ_I64(dur("10us"), 10000);
    CHECK_EQ_I64(dur("10\xC2\xB5s"), 10000);
    CHECK_EQ_I64(dur("10\xCE\xBCs"), 10000);
    CHECK_EQ_I64(dur("7ns"), 7);
    CHECK_EQ_I64(dur("1m1ms"), 60 * S + 1000000);
    CHECK_EQ_I64(dur("-1"), -S); // a bare number is seconds; negative = forever to callers
    CHECK_EQ_I64(dur("-1m"), -60 * S);
    CHECK_EQ_I64(dur("+30s"), 30 * S);
    CHECK_EQ_I64(dur("3600"), 3600 * S);
    CHECK_EQ_I64(dur("0.25"), S / 4);
    CHECK_EQ_I64(dur("2562047h47m16.854775807s"), INT64_MAX);
    CHECK_EQ_I64(dur("-2562047h47m16.854775808s"), INT64_MIN);
}

static void test_invalid(void)
{
    CHECK_EQ_I64(dur_err(""), LLEM_EINVAL);
    CHECK_EQ_I64(dur_err("-"), LLEM_EINVAL);
    CHECK_EQ_I64(dur_err("m"), LLEM_EINVAL);
    CHECK_EQ_I64(dur_err("5x"), LLEM_EINVAL);
    CHECK_EQ_I64(dur_err("1h30"), LLEM_EINVAL); // missing unit after the first term
    CHECK_EQ_I64(dur_err("5 m"), LLEM_EINVAL);
    CHECK_EQ_I64(dur_err("."), LLEM_EINVAL);
    CHECK_EQ_I64(dur_err("1..5s"), LLEM_EINVAL);
    CHECK_EQ_I64(dur_err("--1s"), LLEM_EINVAL);
    CHECK_EQ_I64(dur_err("1s "), LLEM_EINVAL);
    CHECK_EQ_I64(dur_err("2562047h47m16.854775808s"), LLEM_ELIMIT);
    CHECK_EQ_I64(dur_err("-2562047h47m16.854775809s"), LLEM_ELIMIT);
    CHECK_EQ_I64(dur_err("-2562047h47m17s"), LLEM_ELIMIT);
    CHECK_EQ_I64(dur_err("9999999999999h"), LLEM_ELIMIT);
    CHECK_EQ_I64(dur_err("99999999999999999999999s"), LLEM_ELIMIT);
    CHECK_EQ_I64(dur_err("1111111111111111111111111111111111111111111111111111111111111111111ms"),
                 LLEM_ELIMIT); // longer than LLEM_DURATION_MAX_BYTES
    struct llem_errbuf eb = {0};
    int64_t v = 5;
    CHECK_EQ_I64(time_parse_duration("12parsecs", &v, &eb), LLEM_EINVAL);
    CHECK(strstr(eb.msg, "12parsecs") != NULL);
    CHECK_EQ_I64(v, 5); // untouched on error
}

static void test_clock(void)
{
    int64_t a = time_now_ns();
    int64_t b = time_now_ns();
    CHECK(a > 0);
    CHECK(b >= a);
}

int main(void)
{
    RUN_TEST(test_valid);
    RUN_TEST(test_invalid);
    RUN_TEST(test_clock);
    return TEST_EXIT();
}
