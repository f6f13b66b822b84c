// sampler/grammar_int.h: the compiled form of a grammar, shared by the GBNF compiler
// (grammar_gbnf.c), the runtime (grammar.c) and the JSON Schema translator (json_schema.c).
// Rules are flat: every alternative is a run of elements ended by GRAMMAR_END; an element is a
// byte-set terminal (index >= 0 into sets) or a rule reference (GRAMMAR_REF(r)). All matching
// is over bytes; UTF-8 character classes are expanded into byte sequences at compile time.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/strbuf.h"
#include "sampler/grammar.h"

#define GRAMMAR_END (-1)
#define GRAMMAR_REF(r) (-2 - (r))
#define GRAMMAR_IS_REF(e) ((e) <= -2)
#define GRAMMAR_REF_RULE(e) (-2 - (e))

// Caps on what a grammar may contain (input comes from requests).
#define GRAMMAR_MAX_ELEMS (1 << 22)
#define GRAMMAR_MAX_RULES (1 << 20)
#define GRAMMAR_MAX_REPEAT 100000
#define GRAMMAR_MAX_SRC (16u << 20)

struct grammar_rules {
    int32_t n_rules;
    int32_t root;
    int32_t *rule_alt;   // [n_rules + 1]: alternatives of rule r are alts[rule_alt[r] ..)
    int32_t *alts;       // [n_alts] position in elems of each alternative's first element
    int32_t n_alts;
    int32_t *elems;      // [n_elems]
    int32_t n_elems;
    uint8_t (*sets)[32]; // [n_sets] 256-bit byte sets
    int32_t n_sets;
    int32_t *min_suffix; // [n_elems] fewest bytes to finish the alternative from this element
    char **names;        // [n_rules] for printing (generated rules get synthetic names)
};

void grammar_rules_free(struct grammar_rules *r);
// Deep copy (grammar_new keeps its own).
enum llem_err grammar_rules_clone(const struct grammar_rules *r, struct grammar_rules **out,
                                  struct llem_errbuf *eb);

static inline bool grammar_set_has(const uint8_t *set, uint8_t b)
{
    return (set[b >> 3] >> (b & 7)) & 1;
}

// JSON Schema -> GBNF text (json_schema.c); the GBNF is then compiled by grammar_rules_gbnf.
enum llem_err json_schema_to_gbnf(const char *schema, size_t len, struct strbuf *out,
                                  struct llem_errbuf *eb);
// GBNF for `format: "json"` (an object at top level).
const char *json_schema_json_gbnf(void);
// A regex (JSON Schema `pattern` subset) -> a GBNF expression appended to out, matching the
// whole string content (the pattern is implicitly anchored at both ends, as the JSON Schema
// "search" semantics are made total by .* on an unanchored side).
enum llem_err json_regex_to_gbnf(const char *re, size_t len, struct strbuf *out,
                                 struct llem_errbuf *eb);
