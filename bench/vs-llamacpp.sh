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
#   TESTS         space-separated tests per model (default "pp512 tg128 tg32@d4096"; F16 files
#                 skip the @d tests, as the performance issue's table does):
#                   ppN      prompt processing of N tokens            (llama-bench -p N)
#                   tgN      generation of N tokens                   (llama-bench -n N)
#                   tgN@dD   generation after D tokens of context     (llama-batched-bench)
#                   tgNxP    aggregate generation of P sequences      (llama-batched-bench)
#   LLAMA_BATCHED_BENCH  llama-batched-bench binary, for the @d and x tests
#   FA            flash attention for both: 1 (default) or 0
#   PARALLEL_TESTS  tests run on the first model only after the table (default "tg32x16")
#   LLAMA_CLI     llama-cli binary: adds model load to first token (cold page cache when
#                 /proc/sys/vm/drop_caches is writable, and warm) and peak RSS, both engines
#                 loading the file, evaluating a short prompt and generating 1 token at
#                 context LOAD_CTX (default 4096)
#   SECTIONS      which parts to run (default "table parallel load")
# Each run's figure also goes to stderr as it comes, so a long run (a 16384-token fill takes
# tens of minutes) that is cut short still leaves what it measured.
# Models default to the benchmark models of bench/gen-models.sh under build/models.
# This script never builds llama.cpp: point LLAMA_BENCH at an existing binary.
set -euo pipefail
cd "$(dirname "$0")/.."
LLEM=${LLEM:-build/release/llem}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
TESTS=${TESTS:-"pp512 tg128 tg32@d4096"}
FA=${FA:-1}
PARALLEL_TESTS=${PARALLEL_TESTS:-"tg32x16"}
LOAD_CTX=${LOAD_CTX:-4096}
SECTIONS=${SECTIONS:-"table parallel load"}
if [ -z "${LLAMA_BENCH:-}" ] || [ ! -x "$LLAMA_BENCH" ]; then
    echo "bench/vs-llamacpp.sh: set LLAMA_BENCH to a llama-bench binary" >&2
    exit 2
fi
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
    models=(build/models/tinyllama-1.1b-Q4_0.gguf build/models/tinyllama-1.1b-Q4_K_M.gguf
            build/models/tinyllama-1.1b-Q8_0.gguf build/models/llama3.2-1b-Q4_K_M.gguf
            build/models/tinyllama-1.1b-F16.gguf)
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
row() { # MODEL TEST: ROUNDS interleaved A/B runs -> one table row
    local model=$1 test=$2 a=() b=() r
    for ((r = 0; r < ROUNDS; r++)); do
        a+=("$(run_llem "$test" "$model")")
        echo "# $(date -u +%H:%M) $(basename "$model" .gguf) $test round $((r + 1)): llem ${a[-1]}" >&2
        b+=("$(run_llama "$test" "$model")")
        echo "# $(date -u +%H:%M) $(basename "$model" .gguf) $test round $((r + 1)): llama.cpp ${b[-1]}" >&2
    done
    read -r amin amed amax <<<"$(stats "${a[@]}")"
    read -r bmin bmed bmax <<<"$(stats "${b[@]}")"
    ratio=$(python3 -c "print('%.2f' % ($amed / $bmed))")
    echo "| $(basename "$model" .gguf) | $test | $amin / $amed / $amax | $bmin / $bmed / $bmax | ${ratio}x |"
}

table_header() {
    echo "| model | test | llem t/s min / median / max | llama.cpp t/s min / median / max | ratio |"
    echo "| --- | --- | --- | --- | ---: |"
}

if [[ " $SECTIONS " == *" table "* ]]; then
    table_header
    for model in "${models[@]}"; do
        if [ ! -f "$model" ]; then
            echo "| $(basename "$model") | missing: run bench/gen-models.sh | | | |"
            continue
        fi
        for test in $TESTS; do
            if [[ $model == *F16* && $test == *@d* ]]; then
                continue
            fi
            row "$model" "$test"
        done
    done
    echo
fi

if [[ " $SECTIONS " == *" parallel "* ]] && [ -f "${models[0]}" ] && [ -n "$PARALLEL_TESTS" ]; then
    echo "Aggregate decode of parallel sequences (llama.cpp: llama-batched-bench S_TG):"
    echo
    table_header
    for test in $PARALLEL_TESTS; do
        row "${models[0]}" "$test"
    done
    echo
fi

# Model load to first token and peak RSS: /usr/bin/time around a whole process that loads the
# file, evaluates a short prompt and generates one token.
load_one() { # ENGINE MODEL -> "seconds maxrss_kib"
    local prompt="Once upon a time" tfile
    tfile=$(mktemp)
    if [ "$1" = llem ]; then
        /usr/bin/time -o "$tfile" -f "%e %M" "$LLEM" run "$2" "$prompt" --num-predict 1 \
            --num-ctx "$LOAD_CTX" --threads "$THREADS" --temperature 0 >/dev/null 2>&1 || true
    else
        /usr/bin/time -o "$tfile" -f "%e %M" "$LLAMA_CLI" -m "$2" -p "$prompt" -n 1 \
            -c "$LOAD_CTX" -t "$THREADS" --temp 0 -no-cnv </dev/null >/dev/null 2>&1 || true
    fi
    tail -1 "$tfile"
    rm -f "$tfile"
}

drop_caches() {
    sync
    { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null
}

if [[ " $SECTIONS " == *" load "* ]] && [ -n "${LLAMA_CLI:-}" ] && [ -x "$LLAMA_CLI" ]; then
    cold=no
    if [ -w /proc/sys/vm/drop_caches ]; then cold=yes; fi
    echo "Load to first token (s; cold = page cache dropped first: $cold) and peak RSS (MiB), context $LOAD_CTX, median of $ROUNDS:"
    echo
    echo "| model | llem cold | llama.cpp cold | llem warm | llama.cpp warm | llem RSS | llama.cpp RSS | warm ratio | RSS ratio |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for model in "${models[@]}"; do
        [ -f "$model" ] || continue
        ac=(); bc=(); aw=(); bw=(); ar=(); br=()
        for ((r = 0; r < ROUNDS; r++)); do
            if [ $cold = yes ]; then
                drop_caches; read -r t m <<<"$(load_one llem "$model")"; ac+=("$t")
                drop_caches; read -r t m <<<"$(load_one llama "$model")"; bc+=("$t")
            fi
            load_one llem "$model" >/dev/null # page cache warm for both
            read -r t m <<<"$(load_one llem "$model")"; aw+=("$t"); ar+=("$m")
            read -r t m <<<"$(load_one llama "$model")"; bw+=("$t"); br+=("$m")
        done
        med() { python3 -c 'import sys,statistics as s; print("%.2f" % s.median(map(float, sys.argv[1:])))' "$@"; }
        acm=n/a; bcm=n/a
        if [ $cold = yes ]; then acm=$(med "${ac[@]}"); bcm=$(med "${bc[@]}"); fi
        awm=$(med "${aw[@]}"); bwm=$(med "${bw[@]}")
        arm=$(python3 -c 'import sys,statistics as s; print("%.0f" % (s.median(map(float, sys.argv[1:])) / 1024))' "${ar[@]}")
        brm=$(python3 -c 'import sys,statistics as s; print("%.0f" % (s.median(map(float, sys.argv[1:])) / 1024))' "${br[@]}")
        echo "| $(basename "$model" .gguf) | $acm | $bcm | $awm | $bwm | $arm | $brm | $(python3 -c "print('%.2f' % ($awm / $bwm))")x | $(python3 -c "print('%.2f' % ($arm / $brm))")x |"
    done
    echo
fi
