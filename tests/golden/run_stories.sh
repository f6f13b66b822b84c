#!/usr/bin/env bash
# tests/golden/run_stories.sh: `llem run` on the real stories260K model prints exactly what
# llama.cpp generates greedily for each reference prompt (../shared/testdata/reference/
# stories260K.ref.json: 64 tokens, not stopping at EOS), and stops at end-of-generation by
# default. Skips when ../shared is absent.
set -u
shared=${LLEM_SHARED:-../shared}
ref=$shared/testdata/reference/stories260K.ref.json
model=$shared/models/stories260K.gguf
if [ ! -f "$ref" ] || [ ! -f "$model" ]; then
    echo "SKIP: $ref or $model not found (../shared is absent)"
    exit 77
fi
fail=0
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["prompts"]))' "$ref")
for ((i = 0; i < n; i++)); do
    prompt=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prompts"][int(sys.argv[2])]["text"], end="")' "$ref" "$i")
    python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["prompts"][int(sys.argv[2])]["greedy_text"])' "$ref" "$i" > expected.$$
    "$LLEM" run "$model" "$prompt" --temperature 0 --num-predict 64 --ignore-eos > got.$$ 2> err.$$
    if cmp -s expected.$$ got.$$; then
        echo "ok   prompt $i: \"$prompt\""
    else
        echo "FAIL prompt $i: \"$prompt\""
        echo "  expected: $(cat expected.$$)"
        echo "  got:      $(cat got.$$)"
        cat err.$$
        fail=1
    fi
    # Default: stop at the first end-of-generation token.
    python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["prompts"][int(sys.argv[2])]["greedy_text_until_eog"])' "$ref" "$i" > expected.$$
    "$LLEM" run "$model" "$prompt" --temperature 0 --num-predict 64 > got.$$ 2> err.$$
    if ! cmp -s expected.$$ got.$$; then
        echo "FAIL prompt $i (until end of generation)"
        fail=1
    fi
done
rm -f expected.$$ got.$$ err.$$
exit $fail
