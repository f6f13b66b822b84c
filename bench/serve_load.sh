#!/usr/bin/env bash
# bench/serve_load.sh: holds CONNS (64) concurrent streaming connections against `llem serve`
# for DURATION (120) seconds with stories260K and reports requests/s, TTFT p50/p99 and the
# server's RSS over time (bench/serve_load.mjs). Needs node 20 (fetch only, no npm packages)
# Usage: LLEM=build/rel/llem bench/serve_load.sh  (CONNS, DURATION, LLEM_NUM_PARALLEL)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
models=${LLEM_SHARED:-$here/../../shared}/models
: "${LLEM:?set LLEM to the llem binary}"
work=${TMPDIR:-/tmp}/llem-serve-load
mkdir -p "$work"
cp "$here/serve_load.mjs" "$work/"
port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
LLEM_HOST="127.0.0.1:$port" LLEM_NUM_PARALLEL=${LLEM_NUM_PARALLEL:-16} \
    "$LLEM" serve --model "stories=$models/stories260K.gguf" >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/api/version" >/dev/null && break; sleep 0.2; done
LLEM_E2E_URL="http://127.0.0.1:$port" LLEM_SERVE_PID=$pid node "$work/serve_load.mjs"
