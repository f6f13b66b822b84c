#!/usr/bin/env bash
# bench/vs-llamacpp.sh: llem against llama.cpp on the same GGUF files, same machine, same run.
# For each model and test, runs `llem bench` and `llama-bench` alternately ROUNDS times
# (A/B interleaved, so both see the same machine load) and prints min/median/max tokens/s of
# each and the ratio of medians (llem / llama.cpp).
#
# Usage: LLAMA_BENCH=/path/to/llama-bench bench/vs-llamacpp.sh [MODEL.gguf ...]
#   LLEM          llem binary (default build/release/llem)
#   THREADS       threads for both (default 2)
#   ROUNDS        A/B rounds (default 3)
#   TESTS         space-separated tests (default "pp512 tg128"):
#                   ppN      prompt processing of N tokens            (llama-bench -p N)
#                   tgN      generation of N tokens                   (llama-bench -n N)
#                   tgN@dD   generation after D tokens of context     (llama-batched-bench)
#                   tgNxP    aggregate generation of P sequences      (llama-batched-bench)
#   LLAMA_BATCHED_BENCH  llama-batched-bench binary, for the @d and x tests
#   FA            flash attention for both: 1 (default) or 0
# Models default to the benchmark models of bench/gen-models.sh under build/models.
# This script never builds llama.cpp: point LLAMA_BENCH at an existing binary.
set -euo pipefail
cd "$(dirname "$0")/.."
LLEM=${LLEM:-build/release/llem}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
TESTS=${TESTS:-"pp512 tg128"}
FA=${FA:-1}
if [ -z "${LLAMA_BENCH:-}" ] || [ ! -x "$LLAMA_BENCH" ]; then
    echo "bench/vs-llamacpp.sh: set LLAMA_BENCH to a llama-bench binary" >&2
    exit 2
fi
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
    models=(build/models/tinyllama-1.1b-Q4_0.gguf build/models/tinyllama-1.1b-Q4_K_M.gguf
            build/models/tinyllama-1.1b-Q8_0.gguf build/models/llama3.2-1b-Q4_K_M.gguf)
fi

# parse TEST -> kind n depth parallel
parse_test() {
    local t=$1 kind=${1:0:2} rest=${1:2} depth=0 par=1
    if [[ $rest == *@d* ]]; then depth=${rest##*@d}; rest=${rest%%@d*}; fi
    if [[ $rest == *x* ]]; then par=${rest##*x}; rest=${rest%%x*}; depth=32; fi
    echo "$kind $rest $depth $par"
}

run_llem() { # TEST MODEL -> tokens/s
    local kind n depth par args fa=off
    read -r kind n depth par <<<"$(parse_test "$1")"
    [ "$FA" = 1 ] && fa=on
    if [ "$kind" = pp ]; then args=(-p "$n" -n 0); else args=(-p 0 -n "$n"); fi
    "$LLEM" bench -m "$2" "${args[@]}" --ctx "$depth" --parallel "$par" -t "$THREADS" -r 1 \
        --flash-attn "$fa" | awk -F'|' 'NR > 2 { split($9, a, " "); print a[1] }' | tail -1
}

run_llama() {
    local kind n depth par args
    read -r kind n depth par <<<"$(parse_test "$1")"
    if [ "$depth" = 0 ] && [ "$par" = 1 ]; then
        if [ "$kind" = pp ]; then args=(-p "$n" -n 0); else args=(-p 0 -n "$n"); fi
        "$LLAMA_BENCH" -m "$2" "${args[@]}" -t "$THREADS" -r 1 -fa "$FA" -o csv 2>/dev/null |
            python3 -c 'import csv,sys; rows=list(csv.DictReader(sys.stdin)); print(rows[-1]["avg_ts"])'
        return
    fi
    if [ -z "${LLAMA_BATCHED_BENCH:-}" ]; then
        echo nan
        return
    fi
    local fa_flag=()
    [ "$FA" = 1 ] && fa_flag=(-fa)
    "$LLAMA_BATCHED_BENCH" -m "$2" -c $(( (depth + n + 16) * par )) -b 2048 -ub 512 \
        -npp "$depth" -ntg "$n" -npl "$par" -t "$THREADS" "${fa_flag[@]}" 2>/dev/null |
        awk -F'|' '/^\|[ ]+[0-9]/ { gsub(/ /, "", $9); v = $9 } END { print v }'
}

stats() { # min median max of the arguments
    python3 -c 'import sys,statistics as s; v=sorted(map(float,sys.argv[1:])); print("%.2f %.2f %.2f" % (v[0], s.median(v), v[-1]))' "$@"
}

echo "# llem vs llama.cpp: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, threads $THREADS, $ROUNDS rounds"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# llama-bench: $LLAMA_BENCH"
echo
echo "| model | test | llem t/s min / median / max | llama.cpp t/s min / median / max | ratio |"
echo "| --- | --- | --- | --- | ---: |"
for model in "${models[@]}"; do
    if [ ! -f "$model" ]; then
        echo "| $(basename "$model") | missing: run bench/gen-models.sh | | | |"
        continue
    fi
    for test in $TESTS; do
        a=(); b=()
        for ((r = 0; r < ROUNDS; r++)); do
            a+=("$(run_llem "$test" "$model")")
            b+=("$(run_llama "$test" "$model")")
        done
        read -r amin amed amax <<<"$(stats "${a[@]}")"
        read -r bmin bmed bmax <<<"$(stats "${b[@]}")"
        ratio=$(python3 -c "print('%.2f' % ($amed / $bmed))")
        echo "| $(basename "$model" .gguf) | $test | $amin / $amed / $amax | $bmin / $bmed / $bmax | ${ratio}x |"
    done
done
