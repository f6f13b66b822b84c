#!/usr/bin/env bash
# bench/vs-llama-server.sh: `llem serve` against llama.cpp's llama-server on the same GGUF, in one
# run. Starts both on free loopback ports with the same threads, parallel slots and context per
# slot, then (bench/vs-llama-server.mjs) measures, ROUNDS times with the order alternating,
# aggregate decode tokens/s with 1, 4 and 16 concurrent greedy streams and the TTFT of a
# ~1000-token prompt cold and prefix-cached; prints min/median/max and llem/llama-server.
#
# Usage: LLAMA_SERVER=/path/to/llama-server bench/vs-llama-server.sh [MODEL.gguf]
#   LLEM           llem binary (default build/release/llem)
#   THREADS        threads for both (default 2)
#   NP             parallel slots for both (default 16)
#   CTX            context per slot (default 2048; llama-server gets -c CTX*NP)
#   ROUNDS         A/B rounds (default 2)
#   STREAMS        concurrent streams (default "1 4 16"), N_PREDICT tokens each (default 128)
#   PROMPT_TOKENS  TTFT prompt length (default 1000)
#   FA             flash attention for both: 1 (default) or 0
# The model defaults to build/models/tinyllama-1.1b-Q4_0.gguf (bench/gen-models.sh). Server
# logs, both /metrics after the run and the per-test lines (rounds.log) are kept in $WORK
# (default /tmp/llem-vs-llama-server); SIGINT/SIGTERM to the node helper prints the partial table.
# This script never builds llama.cpp: point LLAMA_SERVER at an existing binary. Needs node 20.
set -euo pipefail
cd "$(dirname "$0")/.."
LLEM=${LLEM:-build/release/llem}
THREADS=${THREADS:-2}
NP=${NP:-16}
CTX=${CTX:-2048}
FA=${FA:-1}
WORK=${WORK:-${TMPDIR:-/tmp}/llem-vs-llama-server}
model=${1:-build/models/tinyllama-1.1b-Q4_0.gguf}
if [ -z "${LLAMA_SERVER:-}" ] || [ ! -x "$LLAMA_SERVER" ]; then
    echo "bench/vs-llama-server.sh: set LLAMA_SERVER to a llama-server binary" >&2
    exit 2
fi
[ -x "$LLEM" ] || { echo "bench/vs-llama-server.sh: no llem binary at $LLEM (set LLEM)" >&2; exit 2; }
[ -f "$model" ] || { echo "bench/vs-llama-server.sh: $model missing (bench/gen-models.sh)" >&2; exit 2; }
mkdir -p "$WORK"

free_port() {
    node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}
wait_up() { # URL PID NAME: waits until URL answers 200 (llama-server's /health is 503 while loading)
    for _ in $(seq 1 600); do
        curl -sf "$1" >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || { echo "$3 exited; its log:" >&2; tail -20 "$WORK/$3.log" >&2; exit 1; }
        sleep 0.2
    done
    echo "$3 did not come up in 120 s" >&2
    exit 1
}

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

lport=$(free_port)
LLEM_HOST="127.0.0.1:$lport" LLEM_NUM_PARALLEL=$NP LLEM_CONTEXT_LENGTH=$CTX \
    LLEM_NUM_THREADS=$THREADS LLEM_FLASH_ATTENTION=$FA LLEM_KEEP_ALIVE=-1 \
    "$LLEM" serve --model "bench=$model" >"$WORK/llem.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$lport/api/version" "${pids[-1]}" llem

sport=$(free_port)
fa_flag=()
[ "$FA" = 1 ] && fa_flag=(-fa)
"$LLAMA_SERVER" -m "$model" --host 127.0.0.1 --port "$sport" -t "$THREADS" -tb "$THREADS" \
    -np "$NP" -c $((CTX * NP)) "${fa_flag[@]}" --metrics >"$WORK/llama-server.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$sport/health" "${pids[-1]}" llama-server

echo "# llem serve vs llama-server: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# model $(basename "$model"), threads $THREADS, $NP slots x $CTX context, flash attention $FA, ${ROUNDS:-2} rounds"
echo "# llem: $LLEM; llama-server: $LLAMA_SERVER"
echo "# uptime before: $(uptime)"
echo
LLEM_URL="http://127.0.0.1:$lport" LLAMA_URL="http://127.0.0.1:$sport" \
    node bench/vs-llama-server.mjs 2> >(tee "$WORK/rounds.log" >&2)
echo
echo "# uptime after: $(uptime)"
curl -s "http://127.0.0.1:$lport/metrics" >"$WORK/llem-metrics.txt" || true
curl -s "http://127.0.0.1:$sport/metrics" >"$WORK/llama-server-metrics.txt" || true
