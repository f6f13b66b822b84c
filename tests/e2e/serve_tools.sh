#!/usr/bin/env bash
# tests/e2e/serve_tools.sh: tool calls and thinking end to end. Makes two synthetic models with
# real chat templates (`llem gen --chat-template`: Qwen2.5's Hermes-style <tool_call> template,
# Qwen3's <think> template with enable_thinking), starts `$LLEM serve` and runs
# serve_tools.mjs with the npm ollama and openai clients. The weights are random, so the output
# is scripted with llem's `grammar` request field (GBNF that forces the exact text): a real
# constraint path (runner + grammar), not a test-only switch. Exit 77 without ../shared or node.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=${LLEM_SHARED:-$here/../../../shared}
models=$shared/models
tpls=$shared/testdata/templates
if [ ! -f "$models/qwen2-tiny-Q8_0.gguf" ] || [ ! -f "$tpls/Qwen-Qwen2.5-7B-Instruct.jinja" ] ||
   [ ! -f "$tpls/Qwen-Qwen3-0.6B.jinja" ]; then
    echo "skip: test models or templates not found in $shared"; exit 77
fi
for tool in node npm curl; do
    command -v $tool >/dev/null || { echo "skip: $tool is not installed"; exit 77; }
done
: "${LLEM:?LLEM must name the llem binary}"
work=${LLEM_BUILD_DIR:-/tmp}/e2e-node
mkdir -p "$work/tools-models"
cp "$here/package.json" "$here/package-lock.json" "$here/serve_tools.mjs" "$here/serve_format.mjs" \
   "$work/"
if ! cmp -s "$here/package-lock.json" "$work/node_modules/.llem-lock" 2>/dev/null; then
    (cd "$work" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) || {
        echo "skip: npm ci failed (no network and no npm cache?)"; exit 77; }
    cp "$here/package-lock.json" "$work/node_modules/.llem-lock"
fi
md=$work/tools-models
"$LLEM" gen --preset tiny --arch qwen2 --vocab "$models/qwen2-tiny-Q8_0.gguf" --type Q8_0 \
    --chat-template "$tpls/Qwen-Qwen2.5-7B-Instruct.jinja" -o "$md/qtools.gguf" --quiet || exit 1
"$LLEM" gen --preset tiny --arch qwen3 --vocab "$models/qwen2-tiny-Q8_0.gguf" --type Q8_0 \
    --chat-template "$tpls/Qwen-Qwen3-0.6B.jinja" -o "$md/qthink.gguf" --quiet || exit 1
cp "$models/qwen2-tiny-Q8_0.gguf" "$md/qplain.gguf"

port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
url="http://127.0.0.1:$port"
log="$work/serve-tools.log"
LLEM_HOST="127.0.0.1:$port" LLEM_MODELS_DIR="$md" LLEM_MODELS="$work/tools-store" \
    LLEM_NUM_PARALLEL=2 "$LLEM" serve >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
trap cleanup EXIT
for _ in $(seq 1 100); do
    curl -sf "$url/api/version" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "FAIL: llem serve exited"; cat "$log"; exit 1; }
    sleep 0.2
done
script=${LLEM_E2E_SCRIPT:-serve_tools.mjs}
LLEM_E2E_URL=$url node "$work/$script"
rc=$?
if [ $rc -ne 0 ]; then echo "--- server log ---"; tail -n 40 "$log"; fi
exit $rc
