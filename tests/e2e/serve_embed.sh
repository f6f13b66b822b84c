#!/usr/bin/env bash
# tests/e2e/serve_embed.sh: embeddings end to end. Starts `$LLEM serve` on a free loopback port
# with a 256-token context (so truncation is cheap), runs serve_embed.mjs (npm ollama `embed` /
# `embeddings`, openai `embeddings.create`), then curl for the legacy route and raw errors
# (bad JSON, wrong field types, wrong method); the server must answer after each.
# Exit 77 (skipped) when the models, node/npm or curl are missing.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
models=${LLEM_SHARED:-$here/../../../shared}/models
if [ ! -f "$models/stories260K.gguf" ] || [ ! -f "$models/qwen2-tiny-Q8_0.gguf" ]; then
    echo "skip: test models not found in $models"; exit 77
fi
for tool in node npm curl; do
    command -v $tool >/dev/null || { echo "skip: $tool is not installed"; exit 77; }
done
: "${LLEM:?LLEM must name the llem binary}"
work=${LLEM_BUILD_DIR:-/tmp}/e2e-node
mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$here/serve_embed.mjs" "$work/"
if ! cmp -s "$here/package-lock.json" "$work/node_modules/.llem-lock" 2>/dev/null; then
    (cd "$work" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) || {
        echo "skip: npm ci failed (no network and no npm cache?)"; exit 77; }
    cp "$here/package-lock.json" "$work/node_modules/.llem-lock"
fi

port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
url="http://127.0.0.1:$port"
log="$work/serve-embed.log"
LLEM_HOST="127.0.0.1:$port" LLEM_MODELS_DIR="$models" LLEM_MODELS="$work/embed-store" \
OLLAMA_MODELS="$work/no-ollama-store" LLEM_CONTEXT_LENGTH=256 LLEM_NUM_PARALLEL=4 \
    "$LLEM" serve --model "stories=$models/stories260K.gguf" \
                  --model "qwen=$models/qwen2-tiny-Q8_0.gguf" >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
trap cleanup EXIT
for _ in $(seq 1 100); do
    curl -sf "$url/api/version" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "FAIL: llem serve exited"; cat "$log"; exit 1; }
    sleep 0.2
done
curl -sf "$url/api/version" >/dev/null || { echo "FAIL: server not up"; cat "$log"; exit 1; }

fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
alive() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/api/version")" = 200 ] || bad "server dead after: $1"; }
expect() { # name want got
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: want $2, got $3"; fi
    alive "$1"
}
post() { # path body -> status
    curl -s -o "$work/embed-body.json" -w '%{http_code}' -H 'Content-Type: application/json' \
         --data-binary "$2" "$url$1"
}

LLEM_E2E_URL=$url node "$work/serve_embed.mjs" || fail=1

got=$(post /api/embeddings '{"model":"qwen","prompt":"hello world"}')
n=$(node -e "const j=require('$work/embed-body.json');console.log(Array.isArray(j.embedding)?j.embedding.length:-1)")
expect "curl legacy /api/embeddings -> 200 with 256 floats" "200 256" "$got $n"
expect "bad JSON -> 400" 400 "$(post /api/embed '{"model":"qwen","input":')"
expect "model missing -> 400" 400 "$(post /api/embed '{"input":"x"}')"
expect "input object -> 400" 400 "$(post /api/embed '{"model":"qwen","input":{"a":1}}')"
expect "truncate not a bool -> 400" 400 "$(post /api/embed '{"model":"qwen","input":"x","truncate":"yes"}')"
expect "dimensions negative -> 400" 400 "$(post /api/embed '{"model":"qwen","input":"x","dimensions":-1}')"
expect "options not an object -> 400" 400 "$(post /api/embed '{"model":"qwen","input":"x","options":3}')"
expect "legacy prompt not a string -> 400" 400 "$(post /api/embeddings '{"model":"qwen","prompt":[1]}')"
expect "legacy unknown model -> 404" 404 "$(post /api/embeddings '{"model":"nope","prompt":"x"}')"
expect "/v1 input missing -> 400" 400 "$(post /v1/embeddings '{"model":"qwen"}')"
expect "/v1 empty string -> 400" 400 "$(post /v1/embeddings '{"model":"qwen","input":""}')"
expect "/v1 mixed array -> 400" 400 "$(post /v1/embeddings '{"model":"qwen","input":["a",{}]}')"
got=$(curl -s -o /dev/null -w '%{http_code}' -X GET "$url/api/embed")
expect "GET /api/embed -> 405" 405 "$got"

kill -TERM "$pid"
wait "$pid"; rc=$?
trap - EXIT
[ "$rc" = 0 ] && ok "SIGTERM stops the server (exit 0)" || bad "server exit status $rc after SIGTERM"
[ "$fail" = 0 ] || { echo "--- server log (tail)"; tail -20 "$log"; }
exit $fail
