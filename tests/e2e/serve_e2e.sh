#!/usr/bin/env bash
# tests/e2e/serve_e2e.sh: starts `$LLEM serve` on a free loopback port with ../shared/models,
# installs the pinned npm clients (npm ci from package-lock.json, into the build folder) and
# runs serve_e2e.mjs against it, then the checks that need raw HTTP (curl): a 100 MB body
# (Content-Length and chunked), a non-loopback Host header, 1,000 requests on one keep-alive
# connection, OPTIONS preflight; finally SIGTERM must stop the server cleanly.
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
cp "$here/package.json" "$here/package-lock.json" "$here/serve_e2e.mjs" "$work/"
if ! cmp -s "$here/package-lock.json" "$work/node_modules/.llem-lock" 2>/dev/null; then
    (cd "$work" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) || {
        echo "skip: npm ci failed (no network and no npm cache?)"; exit 77; }
    cp "$here/package-lock.json" "$work/node_modules/.llem-lock"
fi

port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
url="http://127.0.0.1:$port"
log="$work/serve.log"
LLEM_HOST="127.0.0.1:$port" LLEM_MODELS_DIR="$models" LLEM_HTTP_REQUEST_TIMEOUT=3s \
LLEM_MODELS="$work/store" OLLAMA_MODELS="$work/no-ollama-store" \
LLEM_NUM_PARALLEL=${LLEM_NUM_PARALLEL:-8} \
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

LLEM_E2E_URL=$url node "$work/serve_e2e.mjs" || fail=1

# 100 MB bodies: Content-Length is refused before the body is read; a chunked one is counted.
got=$(head -c 100000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' \
      -H 'Content-Type: application/json' --data-binary @- "$url/api/generate")
expect "100 MB body with Content-Length -> 413" 413 "$got"
got=$(head -c 100000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' \
      -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' -T - -X POST \
      "$url/api/generate")
expect "100 MB chunked body -> 413" 413 "$got"
got=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: evil.example.com' "$url/api/version")
expect "non-loopback Host header -> 403" 403 "$got"
got=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: localhost:11434' "$url/api/version")
expect "localhost Host header -> 200" 200 "$got"
got=$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: http://127.0.0.1:5173' \
      -H 'Access-Control-Request-Method: POST' "$url/api/chat")
expect "CORS preflight -> 204" 204 "$got"
got=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$url/api/generate")
expect "wrong method -> 405" 405 "$got"

# 1,000 requests on one keep-alive connection: every answer 200, one TCP connect in all.
cfg="$work/keepalive.curl"
: >"$cfg"
for _ in $(seq 1 1000); do printf 'url = "%s/api/version"\noutput = "/dev/null"\n' "$url" >>"$cfg"; done
res=$(curl -s -K "$cfg" -w '%{http_code} %{num_connects}\n')
n200=$(grep -c '^200 ' <<<"$res")
nconn=$(awk '{s += $2} END {print s}' <<<"$res")
expect "1000 keep-alive requests all 200" 1000 "$n200"
expect "1000 keep-alive requests on one connection" 1 "$nconn"

# Clean shutdown on SIGTERM while a generation streams: its client gets a final error line.
stream_out="$work/stream.ndjson"
curl -sN "$url/api/generate" -d '{"model":"stories","prompt":"Once upon a time","options":{"num_predict":100000}}' >"$stream_out" &
cpid=$!
for _ in $(seq 1 600); do [ "$(wc -l <"$stream_out")" -ge 3 ] && break; sleep 0.1; done
[ "$(wc -l <"$stream_out")" -ge 3 ] || bad "the stream before SIGTERM never started"
kill -TERM "$pid"
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$pid" 2>/dev/null; then
    bad "server still running 10 s after SIGTERM"
else
    wait "$pid"; rc=$?
    if [ "$rc" = 0 ]; then ok "SIGTERM -> clean exit"; else bad "exit status $rc after SIGTERM"; fi
fi
wait "$cpid" 2>/dev/null
if tail -n 1 "$stream_out" | grep -q '"error"'; then
    ok "stream cut by shutdown ends with an error line"
else
    bad "stream cut by shutdown: last line $(tail -n 1 "$stream_out" | head -c 200)"
fi

# A full queue answers 503 and the server keeps serving: one slot, one waiting request.
LLEM_HOST="127.0.0.1:$port" LLEM_NUM_PARALLEL=1 LLEM_MAX_QUEUE=1 \
    "$LLEM" serve --model "stories=$models/stories260K.gguf" >"$log.2" 2>&1 &
pid=$!
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "$url/api/version" >/dev/null && break; sleep 0.2; done
curl -s "$url/api/generate" -d '{"model":"stories","prompt":""}' >/dev/null # load first
codes=$(for i in 1 2 3 4 5 6; do
    curl -s -o /dev/null -w '%{http_code}\n' "$url/api/generate" \
        -d '{"model":"stories","prompt":"Once upon a time","stream":false,"options":{"num_predict":40}}' &
done; wait)
if grep -q 503 <<<"$codes" && grep -q 200 <<<"$codes"; then
    ok "full queue -> 503 for some, 200 for others"
else
    bad "full queue: codes $(tr '\n' ' ' <<<"$codes")"
fi
alive "full queue"
trap - EXIT
cleanup
if [ $fail -ne 0 ]; then echo "--- server log ---"; tail -n 50 "$log"; fi
exit $fail
