#!/usr/bin/env bash
# tests/golden/model_errors.sh: bad inputs to `llem run` each give a one-line error naming the
# problem and a non-zero exit, never a crash: an unknown architecture, a missing tensor, a
# tensor of the wrong shape, a prompt longer than the context (and --truncate accepting it),
# a missing file. The broken models are made by patching bytes of stories260K.gguf.
set -u
shared=${LLEM_SHARED:-../shared}
model=$shared/models/stories260K.gguf
if [ ! -f "$model" ]; then
    echo "SKIP: $model not found (../shared is absent)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

patch() { # patch IN OUT OLD NEW (python bytes literals, same length)
    python3 - "$1" "$2" "$3" "$4" <<'PY'
import sys, ast
src, dst, old, new = sys.argv[1:]
old, new = ast.literal_eval(old), ast.literal_eval(new)
data = open(src, 'rb').read()
assert len(old) == len(new) and data.count(old) >= 1, "pattern not found"
open(dst, 'wb').write(data.replace(old, new, 1))
PY
}

# expect NAME PATTERN CMD...: the command fails with exactly one line on stderr matching PATTERN.
expect() {
    local name=$1 pattern=$2
    shift 2
    "$@" > "$tmp/out" 2> "$tmp/err"
    local rc=$?
    local lines
    lines=$(grep -c . "$tmp/err")
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && grep -q "$pattern" "$tmp/err"; then
        echo "ok   $name: $(cat "$tmp/err")"
    else
        echo "FAIL $name (rc $rc, $lines stderr lines):"
        cat "$tmp/err"
        fail=1
    fi
}

patch "$model" "$tmp/arch.gguf" "b'general.architecture\\x08\\x00\\x00\\x00\\x05\\x00\\x00\\x00\\x00\\x00\\x00\\x00llama'" "b'general.architecture\\x08\\x00\\x00\\x00\\x05\\x00\\x00\\x00\\x00\\x00\\x00\\x00llamb'"
expect "unknown architecture" "unknown model architecture 'llamb'" \
    "$LLEM" run "$tmp/arch.gguf" "Hello" --num-predict 4
patch "$model" "$tmp/missing.gguf" "b'blk.0.ffn_up.weight'" "b'blk.0.ffn_up.weighx'"
expect "missing tensor" "missing tensor 'blk.0.ffn_up.weight'" \
    "$LLEM" run "$tmp/missing.gguf" "Hello" --num-predict 4
# output_norm.weight: name, n_dims 1, ne[0] 64 -> 32 (its data then no longer matches a row).
patch "$model" "$tmp/shape.gguf" "b'output_norm.weight\\x01\\x00\\x00\\x00\\x40\\x00'" "b'output_norm.weight\\x01\\x00\\x00\\x00\\x20\\x00'"
expect "wrong shape" "output_norm.weight' has shape \[32\], expected \[64\]" \
    "$LLEM" run "$tmp/shape.gguf" "Hello" --num-predict 4
long=$(printf 'Once upon a time %.0s' $(seq 1 40))
expect "prompt longer than the context" "more than the context of 32" \
    "$LLEM" run "$model" "$long" --num-ctx 32 --num-predict 4
if "$LLEM" run "$model" "$long" --num-ctx 32 --num-predict 4 --truncate > "$tmp/out" 2> "$tmp/err"; then
    echo "ok   --truncate accepts the long prompt"
else
    echo "FAIL --truncate: $(cat "$tmp/err")"
    fail=1
fi
expect "missing file" "No such file\|cannot open" "$LLEM" run "$tmp/nope.gguf" "Hello"
expect "bad option" "unknown option" "$LLEM" run "$model" "Hello" --bogus
exit $fail
