#!/usr/bin/env bash
# tests/golden/synth_llamacpp.sh: files from `llem gen` load and run in llama.cpp. Generates
# tiny llama and qwen2 models (F16, Q8_0, Q4_0, Q4_K_M, generated vocabularies) and has
# llama-cli decode a few tokens from each; qwen3 too when this llama.cpp knows the arch.
# Needs a llama.cpp build: $LLAMA_CPP_BIN (folder of llama-cli) or /tmp/llama.cpp/build/bin;
# skips (77) otherwise, since our scripts never build llama.cpp.
set -uo pipefail
LLEM=${LLEM:-llem}
bin=${LLAMA_CPP_BIN:-/tmp/llama.cpp/build/bin}
cli=$bin/llama-cli
if [ ! -x "$cli" ]; then
    echo "SKIP: no llama-cli in $bin (set LLAMA_CPP_BIN)"
    exit 77
fi
tmp=$(mktemp -d /tmp/llem-synth-cpp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

archs="llama qwen2"
# qwen3 arrived in llama.cpp in April 2025; older builds would refuse the architecture
if grep -aq 'qwen3' "$bin"/libllama.so 2>/dev/null; then
    archs="$archs qwen3"
fi

for arch in $archs; do
    for type in F16 Q8_0 Q4_0 Q4_K_M; do
        f=$tmp/$arch-$type.gguf
        if ! "$LLEM" gen --preset tiny --arch "$arch" --type "$type" --gen-vocab --seed 3 \
                -o "$f" --quiet; then
            echo "FAIL: llem gen $arch $type"; fail=1; continue
        fi
        # greedy, 8 tokens, no chat mode; the log must show the whole prompt + 8 decoded runs
        out=$(timeout 120 "$cli" -m "$f" -p "The small model reads a line" -n 8 -no-cnv \
                --temp 0 -t 2 -c 256 --no-warmup --ignore-eos 2>&1)
        rc=$?
        if [ $rc -ne 0 ] || ! grep -qE 'eval time = .* / +7 runs' <<<"$out"; then
            echo "FAIL: llama.cpp on $arch $type (rc $rc)"
            grep -iE 'error|failed|eval time' <<<"$out" | head -5
            fail=1
        else
            echo "ok   llama.cpp ran $arch $type"
        fi
    done
done
exit $fail
