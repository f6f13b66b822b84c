#!/usr/bin/env bash
# tests/e2e/store_registry.sh: pull/push against a real registry (Debian's docker-registry on
# 127.0.0.1, a temp storage dir), driven through tests/e2e/store_regtool.c:
#  1. push a created model, delete it locally, pull it back: byte-identical blobs, same model ID,
#     and a GGUF that opens fully validated;
#  2. a pull interrupted halfway (the registry is SIGKILLed mid-blob) leaves a partial file and
#     no manifest; after a restart the pull resumes from there (Range) and verifies;
#  3. a blob corrupted in the registry's storage is detected: nothing is stored.
# Skips (77) when docker-registry is not installed (tools/deps.sh --test installs it).
set -uo pipefail
REG_BIN=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
[ -x "$REG_BIN" ] || { echo "SKIP: $REG_BIN not installed (apt-get install docker-registry)"; exit 77; }
SHARED=${LLEM_SHARED:-../shared}
GGUF=$SHARED/models/llama-tiny-Q4_0.gguf
[ -f "$GGUF" ] || { echo "SKIP: $GGUF not found"; exit 77; }
TOOL=${LLEM_BUILD_DIR:-.}/test_store_regtool
[ -x "$TOOL" ] || { echo "FAIL: $TOOL is not built"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 needed to pick a free port"; exit 77; }

T=$(mktemp -d /tmp/llem-registry-e2e.XXXXXX)
REG_PID=
cleanup() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$T"; }
trap cleanup EXIT
fail=0
err() { echo "FAIL: $*"; fail=1; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
mkdir -p "$T/data"
cat >"$T/cfg.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $T/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
EOF

start_registry() {
    "$REG_BIN" serve "$T/cfg.yml" >>"$T/registry.log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "$URL/v2/" && return 0
        sleep 0.1
    done
    echo "FAIL: registry did not start: $(tail -5 "$T/registry.log")"; exit 1
}
blob_file() { echo "$1/blobs/sha256-${2#sha256:}"; }
reg_blob() { echo "$T/data/docker/registry/v2/blobs/sha256/${1:7:2}/${1#sha256:}/data"; }

start_registry
A=$T/storeA
NAME=127.0.0.1:$PORT/e2e/tiny:v1
cp "$GGUF" "$T/model.gguf"
cat >"$T/Modelfile" <<'EOF'
FROM ./model.gguf
TEMPLATE """{{ .System }} USER: {{ .Prompt }} ASSISTANT:"""
SYSTEM You are a test.
PARAMETER temperature 0
PARAMETER stop USER:
EOF

# ---- 1. push, delete, pull: identical ---------------------------------------------------------
"$TOOL" "$A" create "$NAME" "$T/Modelfile" || err "create"
"$TOOL" "$A" resolve "$NAME" >"$T/before" || err "resolve before push"
mkdir -p "$T/saved"
cp "$A"/blobs/sha256-* "$T/saved/" || err "no blobs after create"
n_blobs=$(ls "$T/saved" | wc -l)
[ "$n_blobs" -eq 5 ] || err "expected 5 blobs (config, model, template, system, params), got $n_blobs"
LLEM_PUSH_CHUNK=524288 "$TOOL" "$A" push "$NAME" >"$T/push.out" || err "push"
"$TOOL" "$A" push "$NAME" >/dev/null || err "second push (all blobs exist)"
"$TOOL" "$A" rm "$NAME" || err "rm"
[ -z "$(ls -A "$A/blobs")" ] || err "blobs left after rm: $(ls "$A/blobs")"
"$TOOL" "$A" pull "$NAME" >"$T/pull.out" || err "pull"
for f in "$T"/saved/*; do
    cmp -s "$f" "$A/blobs/$(basename "$f")" || err "blob $(basename "$f") differs after pull"
done
"$TOOL" "$A" resolve "$NAME" >"$T/after" || err "resolve after pull"
diff -u "$T/before" "$T/after" >/dev/null || err "model differs after pull: $(diff "$T/before" "$T/after")"
grep -q "family llama" "$T/after" || err "pulled model has no family"
grep -q "system You are a test." "$T/after" || err "pulled model lost its system prompt"
# the pulled blobs are named by their content
for f in "$A"/blobs/sha256-*; do
    h=$(sha256sum "$f" | cut -c1-64)
    [ "sha256-$h" = "$(basename "$f")" ] || err "$(basename "$f") has content $h"
done

# ---- 2. interrupted pull resumes --------------------------------------------------------------
B=$T/storeB
BIG=127.0.0.1:$PORT/e2e/big:v1
"$TOOL" mkgguf "$T/big.gguf" 64 || err "mkgguf"
printf 'FROM ./big.gguf\n' >"$T/Modelfile.big"
"$TOOL" "$B" create "$BIG" "$T/Modelfile.big" || err "create big"
"$TOOL" "$B" push "$BIG" >/dev/null || err "push big"
big_digest=sha256:$(sha256sum "$T/big.gguf" | cut -c1-64)
big_size=$(stat -c %s "$T/big.gguf")
"$TOOL" "$B" rm "$BIG" || err "rm big"
"$TOOL" "$B" pull "$BIG" "$URL" "$REG_PID" >"$T/pull1.out" 2>"$T/pull1.err" &&
    err "pull with the registry killed mid-blob succeeded"
wait "$REG_PID" 2>/dev/null
grep -q "killing registry" "$T/pull1.out" || err "the registry was not killed: $(cat "$T/pull1.out")"
partial=$(blob_file "$B" "$big_digest")-partial
[ -f "$partial" ] || err "no partial download at $partial"
have=$(stat -c %s "$partial" 2>/dev/null || echo 0)
{ [ "$have" -gt 0 ] && [ "$have" -lt "$big_size" ]; } || err "partial has $have of $big_size bytes"
[ ! -e "$(blob_file "$B" "$big_digest")" ] || err "the unfinished blob got its name"
[ -z "$(find "$B/manifests" -type f)" ] || err "a manifest was written for an unfinished pull"
start_registry
"$TOOL" "$B" pull "$BIG" "$URL" >"$T/pull2.out" 2>"$T/pull2.err" || err "resumed pull: $(cat "$T/pull2.err")"
resumed=$(awk -v d="$big_digest" '$1=="start" && $2==d {print $3; exit}' "$T/pull2.out")
[ "${resumed:-0}" -eq "$have" ] || err "second pull started at ${resumed:-?}, not at $have (no resume)"
cmp -s "$T/big.gguf" "$(blob_file "$B" "$big_digest")" || err "resumed blob differs from the source"
[ ! -e "$partial" ] || err "partial file left after a complete pull"

# ---- 3. corrupted blob on the registry --------------------------------------------------------
C=$T/storeC
model_digest=sha256:$(sha256sum "$GGUF" | cut -c1-64)
rb=$(reg_blob "$model_digest")
[ -f "$rb" ] || err "registry storage has no $rb"
printf '\xff\xff\xff\xff' | dd of="$rb" bs=1 seek=100000 conv=notrunc status=none
"$TOOL" "$C" pull "$NAME" >"$T/pull3.out" 2>"$T/pull3.err" && err "pull of a corrupted blob succeeded"
grep -q "digest mismatch" "$T/pull3.err" || err "no digest mismatch reported: $(cat "$T/pull3.err")"
[ ! -e "$(blob_file "$C" "$model_digest")" ] || err "the corrupted blob was stored"
[ ! -e "$(blob_file "$C" "$model_digest")-partial" ] || err "the corrupted download was kept"
[ -z "$(find "$C/manifests" -type f 2>/dev/null)" ] || err "a manifest was written"

[ $fail -eq 0 ] && echo "ok"
exit $fail
