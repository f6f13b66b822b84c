#!/usr/bin/env bash
# tools/lint.sh: cheap structural checks run by tools/test.sh:
#  - includes point one way (DESIGN.md §1): a folder includes only headers of folders it may use;
#  - no raw malloc/free outside base/alloc.c, no banned unsafe string calls;
#  - no .c file over 3000 lines.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
declare -A allowed=(
  [base]="base"
  [gguf]="base gguf"
  [tensor]="base gguf tensor"
  [backend]="base gguf tensor backend"
  [kvcache]="base gguf tensor backend kvcache"
  [tokenizer]="base gguf tokenizer"
  [sampler]="base sampler"
  [template]="base template"
  [synth]="base gguf tensor synth"
  [model]="base gguf tensor backend kvcache tokenizer model"
  [runner]="base gguf tensor backend kvcache tokenizer model sampler template runner"
  [sched]="base gguf tensor backend kvcache tokenizer model sampler template runner sched"
  [store]="base gguf store"
  [server]="base gguf tensor backend kvcache tokenizer model sampler template runner sched store server"
  [cli]="base gguf tensor backend kvcache tokenizer model sampler template runner sched store server synth cli"
)
for dir in src/*/; do
    folder=$(basename "$dir")
    ok=" ${allowed[$folder]:-} "
    while IFS= read -r line; do
        file=${line%%:*}
        inc=$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<<"$line")
        if [[ "$ok" != *" $inc "* ]]; then
            echo "lint: $file includes $inc/ (not allowed from $folder/)"; fail=1
        fi
    done < <(grep -rnE '#include "[a-z_]+/' "$dir" --include='*.c' --include='*.h' | sed -E 's/:[0-9]+:/:/')
done
if grep -rnE '(^|[^>._a-zA-Z0-9])(malloc|calloc|realloc|free)\(' src --include='*.c' | grep -v 'src/base/alloc.c' | grep -vE '//.*\b(malloc|free)\(' ; then
    echo "lint: raw malloc/calloc/realloc/free outside base/alloc.c (use llem_*)"; fail=1
fi
if grep -rnE '\b(sprintf|vsprintf|strcpy|strcat|gets|atoi|atol|atof|strtok)\(' src --include='*.c' --include='*.h' | grep -vE 'snprintf|vsnprintf'; then
    echo "lint: banned function (see DESIGN.md §6)"; fail=1
fi
while read -r n f; do
    [ "$f" = total ] && continue
    [ "$n" -gt 3000 ] && { echo "lint: $f has $n lines (> 3000)"; fail=1; }
done < <(find src -name '*.c' -print0 | xargs -0 wc -l)
[ $fail -eq 0 ] && echo "lint: ok"
exit $fail
