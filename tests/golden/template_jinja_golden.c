// tests/golden/template_jinja_golden.c: every case of ../shared/testdata/templates (real chat
// templates rendered by jinja2 as transformers does) through tpl_jinja_render: the output must
// be byte-identical, or the render must fail where jinja2 raised. Prints pass counts per
// template and the first difference of each failing case. Skips when ../shared is absent.
// LLEM_TEMPLATE_FILTER=<substring> limits the run to matching templates;
// LLEM_TEMPLATE_VERBOSE=1 shows our message beside jinja2's for each expected error.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/strbuf.h"
#include "check.h"
#include "template/template.h"

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[sz] = '\0';
    fclose(f);
    *n = (size_t)sz;
    return buf;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Prints where got and want first differ, with some context.
static void show_diff(const char *got, const char *want)
{
    size_t i = 0;
    while (got[i] && got[i] == want[i]) {
        i++;
    }
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "      first difference at byte %zu\n      got:  \"", i);
    for (size_t k = from; got[k] && k < i + 60; k++) {
        fputs(got[k] == '\n' ? "\\n" : (char[2]){got[k], 0}, stderr);
    }
    fprintf(stderr, "\"\n      want: \"");
    for (size_t k = from; want[k] && k < i + 60; k++) {
        fputs(want[k] == '\n' ? "\\n" : (char[2]){want[k], 0}, stderr);
    }
    fprintf(stderr, "\"\n");
}

int main(void)
{
    char path[4096];
    const char *dir = test_shared_path(path, sizeof(path), "testdata/templates/conversations.json");
    size_t n;
    char *conv_text = read_file(dir, &n);
    CHECK(conv_text != NULL);
    cJSON *convs = conv_text ? cJSON_Parse(conv_text) : NULL;
    CHECK(convs != NULL);
    if (!convs) {
        return TEST_EXIT();
    }
    char tdir[4096];
    snprintf(tdir, sizeof(tdir), "%s", path);
    *strrchr(tdir, '/') = '\0';

    // 2026-01-15 12:00:00, the instant the references were rendered at.
    struct tm tm = {.tm_year = 126, .tm_mon = 0, .tm_mday = 15, .tm_hour = 12};
    struct tpl_jinja_opts opts = {.now_unix = (int64_t)timegm(&tm)};
    const char *filter = getenv("LLEM_TEMPLATE_FILTER");

    DIR *d = opendir(tdir);
    CHECK(d != NULL);
    char *names[512];
    size_t n_names = 0;
    for (struct dirent *e; d && (e = readdir(d)) && n_names < 512;) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0 &&
            strcmp(e->d_name, "conversations.json") != 0) {
            names[n_names++] = strdup(e->d_name);
        }
    }
    if (d) {
        closedir(d);
    }
    qsort(names, n_names, sizeof(names[0]), cmp_names);

    int total = 0, passed = 0, tpl_full = 0, tpl_count = 0;
    for (size_t i = 0; i < n_names; i++) {
        if (filter && !strstr(names[i], filter)) {
            free(names[i]);
            continue;
        }
        char p[8192];
        snprintf(p, sizeof(p), "%s/%s", tdir, names[i]);
        char *case_text = read_file(p, &n);
        cJSON *cases = case_text ? cJSON_Parse(case_text) : NULL;
        const cJSON *tf = cJSON_GetObjectItem(cases, "template_file");
        CHECK(cases && cJSON_IsString(tf));
        if (!cases || !cJSON_IsString(tf)) {
            continue;
        }
        snprintf(p, sizeof(p), "%s/%s", tdir, tf->valuestring);
        size_t src_n;
        char *src = read_file(p, &src_n);
        CHECK(src != NULL);
        struct llem_errbuf eb = {0};
        struct tpl_jinja *t = NULL;
        enum llem_err ce = src ? tpl_jinja_compile(src, src_n, &t, &eb) : LLEM_EIO;
        int ok = 0, count = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(cases, "cases"))
        {
            count++;
            const char *cname = cJSON_GetObjectItem(c, "conversation")->valuestring;
            const cJSON *conv = NULL, *it;
            cJSON_ArrayForEach(it, convs)
            {
                if (strcmp(cJSON_GetObjectItem(it, "name")->valuestring, cname) == 0) {
                    conv = it;
                }
            }
            cJSON *vars = cJSON_CreateObject();
            cJSON_AddItemToObject(vars, "messages",
                                  cJSON_Duplicate(cJSON_GetObjectItem(conv, "messages"), 1));
            cJSON_AddItemToObject(vars, "tools",
                                  cJSON_Duplicate(cJSON_GetObjectItem(conv, "tools"), 1));
            cJSON_AddNullToObject(vars, "documents");
            const char *keys[] = {"add_generation_prompt", "bos_token", "eos_token"};
            for (size_t k = 0; k < 3; k++) {
                cJSON_AddItemToObject(vars, keys[k],
                                      cJSON_Duplicate(cJSON_GetObjectItem(c, keys[k]), 1));
            }
            const cJSON *kw;
            cJSON_ArrayForEach(kw, cJSON_GetObjectItem(c, "extra_kwargs"))
            {
                cJSON_AddItemToObject(vars, kw->string, cJSON_Duplicate(kw, 1));
            }
            char *vtext = cJSON_PrintUnformatted(vars);
            bool want_err = cJSON_IsTrue(cJSON_GetObjectItem(c, "error"));
            const cJSON *exp = cJSON_GetObjectItem(c, "expected");
            struct strbuf out;
            strbuf_init(&out, 0);
            enum llem_err re = LLEM_EINVAL;
            if (ce == LLEM_OK) {
                re = tpl_jinja_render(t, vtext, strlen(vtext), &opts, &out, &eb);
            }
            bool pass;
            if (want_err) {
                pass = re != LLEM_OK;
            } else {
                pass = re == LLEM_OK && cJSON_IsString(exp) &&
                       strcmp(strbuf_cstr(&out), exp->valuestring) == 0;
            }
            if (pass && want_err && getenv("LLEM_TEMPLATE_VERBOSE")) {
                fprintf(stderr, "  raised as expected: %s\n      jinja2: %s\n", eb.msg,
                        cJSON_GetObjectItem(c, "error_message")->valuestring);
            }
            if (pass) {
                ok++;
            } else {
                fprintf(stderr, "  FAIL %s case %d (%s, agp=%d): ", names[i], count - 1, cname,
                        cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt")));
                if (want_err) {
                    fprintf(stderr, "expected an error (%s), rendered fine\n",
                            cJSON_GetObjectItem(c, "error_message")->valuestring);
                } else if (re != LLEM_OK) {
                    fprintf(stderr, "error: %s\n", eb.msg);
                } else {
                    fprintf(stderr, "output differs\n");
                    show_diff(strbuf_cstr(&out), exp->valuestring);
                }
            }
            strbuf_deinit(&out);
            free(vtext);
            cJSON_Delete(vars);
        }
        fprintf(stderr, "%-52s %3d/%-3d%s\n", tf->valuestring, ok, count,
                ok == count ? "" : "  <-- FAIL");
        total += count;
        passed += ok;
        tpl_count++;
        tpl_full += ok == count;
        CHECK(ok == count);
        tpl_jinja_free(t);
        free(src);
        cJSON_Delete(cases);
        free(case_text);
        free(names[i]);
    }
    fprintf(stderr, "templates fully passing: %d/%d; cases: %d/%d\n", tpl_full, tpl_count,
            passed, total);
    CHECK(total > 0);
    cJSON_Delete(convs);
    free(conv_text);
    return TEST_EXIT();
}
