#!/usr/bin/env bash
# tests/golden/tokenizer_cli.sh: the tokenizer acceptance through the user-facing verbs: every
# case of every ../shared/testdata/tokenizer/*.gguf.inp must give the .out line through
# `llem tokenize FILE --no-bos` (the vectors have no BOS/EOS and no special-token parsing), and
# `llem detokenize` must give the input back for the lossless tokenizers (all but bert).
# Prints a pass count per vocab file; exits 77 (skipped) when ../shared is absent.
set -u
export LC_ALL=C
dir="${LLEM_SHARED:-../shared}/testdata/tokenizer"
if [ ! -d "$dir" ]; then
    echo "SKIP: $dir not found (../shared is absent)"
    exit 77
fi
: "${LLEM:?LLEM must name the llem binary}"
sep=$'\n__ggml_vocab_test__\n'
status=0
for vocab in "$dir"/*.gguf; do
    name=$(basename "$vocab")
    # $(...) strips trailing newlines: append a sentinel and cut it off to keep exact bytes
    inp=$(cat "$vocab.inp"; printf x); inp=${inp%x}
    mapfile -t want < "$vocab.out"
    lossless=1
    [[ "$name" == *bert* ]] && lossless=0
    i=0 pass=0 rt=0
    while [ -n "$inp" ]; do
        if [[ "$inp" == *"$sep"* ]]; then
            case_text=${inp%%"$sep"*}
            inp=${inp#*"$sep"}
        else
            case_text=$inp
            inp=
        fi
        expect=$(echo ${want[$i]:-})   # trims the leading space of the .out lines
        got=$(printf '%s' "$case_text" | "$LLEM" tokenize "$vocab" --no-bos)
        if [ "$got" == "$expect" ]; then
            pass=$((pass + 1))
            if [ $lossless -eq 1 ]; then
                back=$(printf '%s' "$got" | "$LLEM" detokenize "$vocab"; printf x)
                if [ "${back%x}" == "$case_text" ]; then
                    rt=$((rt + 1))
                else
                    echo "$name case $((i + 1)): round trip differs"
                    status=1
                fi
            fi
        else
            echo "$name case $((i + 1)): want '$expect' got '$got'"
            status=1
        fi
        i=$((i + 1))
    done
    if [ $i -ne ${#want[@]} ]; then
        echo "$name: $i cases but ${#want[@]} expected lines"
        status=1
    fi
    if [ $lossless -eq 1 ]; then
        printf '%-34s %3d/%3d encode  %3d/%3d round-trip\n' "$name" $pass $i $rt $pass
    else
        printf '%-34s %3d/%3d encode  round-trip n/a (lossy)\n' "$name" $pass $i
    fi
done
# one-line errors, exit status 1
if "$LLEM" tokenize /nonexistent.gguf < /dev/null 2> /tmp/llem_tok_err.$$; then
    echo "tokenize of a missing file succeeded"; status=1
fi
[ "$(wc -l < /tmp/llem_tok_err.$$)" -eq 1 ] || { echo "error is not one line"; status=1; }
rm -f /tmp/llem_tok_err.$$
if echo "1 2 999999999" | "$LLEM" detokenize "$dir/ggml-vocab-gpt-2.gguf" > /dev/null 2>&1; then
    echo "detokenize accepted an out-of-range id"; status=1
fi
exit $status
