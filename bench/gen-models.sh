#!/usr/bin/env bash
# bench/gen-models.sh: generates the synthetic benchmark models (issues 3, 4, 8) into
# build/models with `llem gen`: TinyLlama 1.1B at Q4_0, Q4_K_M, Q8_0 and F16, and Llama 3.2 1B
# at Q4_K_M. Idempotent: a file that already exists is kept. Vocabularies come from
# $LLEM_SHARED/testdata/tokenizer (default ../shared) when present, else are generated.
# Usage: bench/gen-models.sh [LLEM_BINARY] (default build/llem, then llem on PATH)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
llem=${1:-${LLEM:-$root/build/llem}}
[ -x "$llem" ] || llem=$(command -v llem) || { echo "gen-models: no llem binary" >&2; exit 1; }
export LLEM_SHARED=${LLEM_SHARED:-$root/../shared}
out=$root/build/models
mkdir -p "$out"
seed=0

gen() { # preset type
    local f=$out/$1-$2.gguf
    if [ -s "$f" ]; then
        echo "gen-models: $f exists, kept"
        return
    fi
    "$llem" gen --preset "$1" --type "$2" --seed $seed -o "$f"
}

for t in Q4_0 Q4_K_M Q8_0 F16; do
    gen tinyllama-1.1b $t
done
gen llama3.2-1b Q4_K_M
ls -l "$out"
