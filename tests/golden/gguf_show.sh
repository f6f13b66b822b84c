#!/usr/bin/env bash
# tests/golden/gguf_show.sh: `llem show` prints stories260K's real metadata (llama, 5 layers,
# n_embd 64, vocab 512) and `-v` lists metadata and tensors; bad flags, missing files and
# non-GGUF files give one line on stderr and exit 1. Skips (77) when ../shared is absent.
set -uo pipefail
LLEM=${LLEM:?LLEM must point at the llem binary}
shared=${LLEM_SHARED:-../shared}
model=$shared/models/stories260K.gguf
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

# expect_error ARGS...: exit 1, nothing on stdout, exactly one line on stderr
expect_error() {
    local out errf rc
    errf=$(mktemp)
    out=$("$LLEM" show "$@" 2>"$errf"); rc=$?
    [ "$rc" -eq 1 ] || err "show $*: exit $rc, want 1"
    [ -z "$out" ] || err "show $*: printed on stdout: $out"
    [ "$(wc -l <"$errf")" -eq 1 ] || err "show $*: stderr is not one line: $(cat "$errf")"
    grep -q '^llem show: ' "$errf" || err "show $*: stderr lacks 'llem show: ': $(cat "$errf")"
    rm -f "$errf"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expect_error --bogus "$model"
expect_error
expect_error "$tmp/missing.gguf"
expect_error "$tmp"
echo "not a gguf file at all" >"$tmp/text.gguf"
expect_error "$tmp/text.gguf"
: >"$tmp/empty.gguf"
expect_error "$tmp/empty.gguf"
printf 'GGUF\0\0\0\3' >"$tmp/be.gguf"
expect_error "$tmp/be.gguf"
grep -q 'big-endian' <("$LLEM" show "$tmp/be.gguf" 2>&1) || err "big-endian file: no clear message"
"$LLEM" show --help | grep -q 'Usage: llem show' || err "--help prints no usage"

if [ ! -r "$model" ]; then
    echo "SKIP: $model not found (../shared is absent)"
    [ $fail -eq 0 ] && exit 77 || exit 1
fi
out=$("$LLEM" show "$model") || err "show $model failed"
want() { # want LABEL VALUE: the Model table has the row "LABEL   VALUE"
    grep -qE "^ +$1 +$2\$" <<<"$out" || err "missing row '$1 $2' in:
$out"
}
want architecture llama
want 'block count' 5
want 'embedding length' 64
want 'vocab size' 512
want 'context length' 2048
want 'head count' 8
want 'head count kv' 4
want tokenizer llama
want 'chat template' no
want parameters '[0-9.]+K'
grep -q 'Metadata' <<<"$out" && err "Metadata printed without -v"

vout=$("$LLEM" show -v "$model") || err "show -v failed"
grep -qE '^ +tokenizer\.ggml\.tokens +\[.*\.\.\.\(512 items\)\]$' <<<"$vout" \
    || err "-v: tokens array not abbreviated as '...(512 items)'"
grep -qE '^ +token_embd\.weight +F32 +\[64 512\]$' <<<"$vout" || err "-v: tensor list lacks token_embd"
[ "$(grep -cE '^ +blk\.[0-9]+\.' <<<"$vout")" -eq 45 ] || err "-v: want 45 per-layer tensors"
exit $fail
