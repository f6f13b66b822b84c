#!/usr/bin/env bash
# tests/e2e/cli_verbs.sh: the client verbs against a real `llem serve` on a free loopback port
# (LLEM_HOST pointing at it, LLEM_MODELS at a temp store, stories260K reachable as "stories"):
# every verb's --help; wrong invocations give one stderr line and a non-zero exit; list, ps,
# show (tables, --modelfile/--template/-v), stop; "could not connect" without a server; `llem
# run MODEL` starting a background server; and, once the store routes answer (create works),
# create, show --parameters/--system, run-once (argument and piped stdin), cp, rm, pull errors.
# Exit 77 (skipped) when ../shared, curl or python3 is missing, or the serve verb does not exist.
set -u
shared=${LLEM_SHARED:-../shared}
model=$shared/models/stories260K.gguf
[ -f "$model" ] || { echo "SKIP: $model not found (../shared is absent)"; exit 77; }
model=$(cd "$(dirname "$model")" && pwd)/$(basename "$model")
for tool in curl python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
: "${LLEM:?LLEM must name the llem binary}"
"$LLEM" serve --help >/dev/null 2>&1 || { echo "SKIP: no 'llem serve' verb"; exit 77; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    if [ -f "$tmp/home2/.llem/logs/server.pid" ]; then
        kill "$(cat "$tmp/home2/.llem/logs/server.pid")" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# expect_err NAME PATTERN CMD...: fails with exactly one stderr line matching PATTERN.
expect_err() {
    local name=$1 pattern=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$? lines
    lines=$(grep -c . "$tmp/err")
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && grep -q -- "$pattern" "$tmp/err"; then
        ok "$name: $(cat "$tmp/err")"
    else
        bad "$name (rc $rc, $lines stderr lines): $(head -3 "$tmp/err")"
    fi
}
# expect_out NAME PATTERN CMD...: succeeds and stdout has a line matching the extended regex.
expect_out() {
    local name=$1 pattern=$2
    shift 2
    if "$@" >"$tmp/out" 2>"$tmp/err" </dev/null && grep -Eq -- "$pattern" "$tmp/out"; then
        ok "$name"
    else
        bad "$name: want /$pattern/, got: $(head -c 600 "$tmp/out") $(head -c 300 "$tmp/err")"
    fi
}

# ---- without a server -------------------------------------------------------------------------
for v in list ls ps show stop cp rm pull push create run; do
    if "$LLEM" $v --help >"$tmp/out" 2>&1 && head -2 "$tmp/out" | grep -q "^ *\(Usage: \)\?llem $v\b"; then
        ok "$v --help"
    else
        bad "$v --help: $(head -2 "$tmp/out")"
    fi
done
dead=$(free_port)
export LLEM_HOST=127.0.0.1:$dead
expect_err "list without a server" "could not connect to llem server" "$LLEM" list
expect_err "show without a server" "could not connect to llem server" "$LLEM" show stories
expect_err "cp with one name" "SOURCE and DESTINATION" "$LLEM" cp a
expect_err "rm without a name" "missing MODEL" "$LLEM" rm
expect_err "stop without a name" "missing MODEL" "$LLEM" stop
expect_err "ps with an argument" "takes no arguments" "$LLEM" ps x
expect_err "list with two arguments" "at most one" "$LLEM" list a b
expect_err "show without a name" "missing MODEL" "$LLEM" show
expect_err "show with two fields" "only one of" "$LLEM" show x --system --license
expect_err "pull without a name" "missing MODEL" "$LLEM" pull
expect_err "push with a bad flag" "unknown flag" "$LLEM" push --bogus x
expect_err "create without a name" "missing MODEL" "$LLEM" create
expect_err "create with a missing Modelfile" "nope.modelfile" "$LLEM" create x -f "$tmp/nope.modelfile"
expect_err "run without a model" "missing MODEL" "$LLEM" run
expect_err "run with a bad flag" "unknown flag" "$LLEM" run stories --bogus
expect_err "run with a bad --format" "invalid format" "$LLEM" run stories --format yaml
LLEM_HOST=: expect_err "bad LLEM_HOST" "LLEM_HOST" "$LLEM" list
LLEM_HOST=999.1.1.1:99999 expect_err "bad LLEM_HOST port" "LLEM_HOST" "$LLEM" list

# ---- `llem run MODEL` starts a server when none answers -----------------------------------------
mkdir -p "$tmp/home2" "$tmp/dir"
ln -s "$model" "$tmp/dir/stories.gguf"
port2=$(free_port)
if HOME=$tmp/home2 LLEM_HOST=127.0.0.1:$port2 LLEM_MODELS=$tmp/models2 LLEM_MODELS_DIR=$tmp/dir \
    "$LLEM" run stories </dev/null >"$tmp/out" 2>"$tmp/err" &&
    grep -q "starting llem serve in the background" "$tmp/err" &&
    LLEM_HOST=127.0.0.1:$port2 "$LLEM" list | grep -q '^stories:latest '; then
    ok "run MODEL started a background server ($(cat "$tmp/err"))"
else
    bad "run MODEL did not start a server: $(cat "$tmp/err")"
fi

# ---- with a server ----------------------------------------------------------------------------
port=$(free_port)
export LLEM_HOST=127.0.0.1:$port
url=http://$LLEM_HOST
LLEM_MODELS=$tmp/models LLEM_MODELS_DIR=$tmp/dir "$LLEM" serve >"$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -sf "$url/api/version" >/dev/null && break
    sleep 0.1
done
curl -sf "$url/api/version" >/dev/null || { bad "llem serve did not start"; cat "$tmp/serve.log"; exit 1; }

expect_out "list header" '^NAME {4,}ID {4,}SIZE {4,}MODIFIED$' "$LLEM" list
expect_out "list row" '^stories:latest {4,}[0-9a-f]{12} {4,}1\.2 MB {4,}.+ ago$' "$LLEM" list
expect_out "ls prefix filter" '^stories:latest ' "$LLEM" ls sto
if "$LLEM" ls zzz | grep -q stories; then bad "ls prefix filter keeps others"; else ok "ls zzz filters"; fi
expect_out "show: Model section" '^  Model$' "$LLEM" show stories
expect_out "show: architecture" '^    architecture {4,}llama$' "$LLEM" show stories
expect_out "show: context length" '^    context length {4,}2048$' "$LLEM" show stories
expect_out "show: embedding length" '^    embedding length {4,}64$' "$LLEM" show stories
expect_out "show: capabilities" '^    completion$' "$LLEM" show stories
expect_out "show -v: metadata" '^    llama\.block_count {4,}5$' "$LLEM" show stories -v
expect_out "show -v: tensors" '^    output_norm\.weight {4,}F32 {4,}\[64\]$' "$LLEM" show -v stories
expect_out "show --modelfile" '^FROM ' "$LLEM" show stories --modelfile
expect_out "show --template" 'Prompt' "$LLEM" show stories --template
expect_out "show FILE.gguf still reads the file" '^    architecture {4,}llama$' "$LLEM" show "$model"
expect_err "show of a missing model" "model 'nope' not found" "$LLEM" show nope
expect_err "show of a traversal name" "." "$LLEM" show ../../etc/passwd

# ps: load the model with a short generation, then check the table and stop it.
curl -sf "$url/api/generate" -d '{"model":"stories","prompt":"Once","options":{"num_predict":1},"stream":false}' >/dev/null
expect_out "ps header" '^NAME {4,}ID {4,}SIZE {4,}PROCESSOR {4,}CONTEXT {4,}UNTIL$' "$LLEM" ps
expect_out "ps row" '^stories:latest {4,}[0-9a-f]{12} {4,}[0-9.]+ [KMG]?B {4,}100% CPU {4,}[0-9]+ {4,}(.+ from now|Forever)$' "$LLEM" ps
if "$LLEM" stop stories && ! "$LLEM" ps | grep -q '^stories'; then
    ok "stop unloads the model"
else
    bad "stop: $("$LLEM" ps)"
fi
expect_err "stop of a missing model" "couldn't find model \"nope\" to stop" "$LLEM" stop nope

# ---- store-backed verbs (when the server's store routes answer) --------------------------------
cat >"$tmp/Modelfile" <<EOF
# a tiny storyteller
FROM $model
PARAMETER temperature 0
PARAMETER num_predict 24
SYSTEM You tell stories.
EOF
if "$LLEM" create tiny -f "$tmp/Modelfile" >"$tmp/out" 2>"$tmp/err"; then
    ok "create tiny: $(tr '\n' '|' <"$tmp/err")"
    grep -q '^success$' "$tmp/err" || bad "create: no 'success' status line"
    expect_out "list shows the created model" '^tiny:latest {4,}[0-9a-f]{12} ' "$LLEM" list
    expect_out "show --parameters" '^num_predict +24$' "$LLEM" show tiny --parameters
    expect_out "show: Parameters section" '^    temperature {4,}0$' "$LLEM" show tiny
    expect_out "show --system" '^You tell stories\.$' "$LLEM" show tiny --system
    # run-once: temperature 0 and 24 tokens, so the answer is fixed; stdin and argument agree.
    "$LLEM" run tiny "Once upon a time" >"$tmp/a1" 2>"$tmp/e1" </dev/null
    rc1=$?
    printf 'Once upon a time' | "$LLEM" run tiny >"$tmp/a2" 2>"$tmp/e2"
    rc2=$?
    if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ -s "$tmp/a1" ] && cmp -s "$tmp/a1" "$tmp/a2"; then
        ok "run-once: $(head -c 80 "$tmp/a1" | tr '\n' ' ')"
    else
        bad "run-once (rc $rc1/$rc2): $(cat "$tmp/a1" "$tmp/e1") | $(cat "$tmp/a2" "$tmp/e2")"
    fi
    "$LLEM" run tiny "Once upon a time" --verbose >"$tmp/a3" 2>"$tmp/e3" </dev/null
    if grep -q '^eval count: \+[0-9]\+ token(s)$' "$tmp/e3" && grep -q '^eval rate: ' "$tmp/e3" &&
        cmp -s "$tmp/a1" "$tmp/a3"; then
        ok "run --verbose prints the statistics on stderr"
    else
        bad "run --verbose: $(cat "$tmp/e3")"
    fi
    expect_out "cp" "^copied 'tiny' to 'tiny2'$" "$LLEM" cp tiny tiny2
    expect_out "list shows the copy" '^tiny2:latest ' "$LLEM" list
    expect_out "rm" "^deleted 'tiny2'$" "$LLEM" rm tiny2
    if "$LLEM" list | grep -q '^tiny2:'; then bad "rm left tiny2 listed"; else ok "rm removed it"; fi
    expect_err "rm of a missing model" "not found" "$LLEM" rm tiny2
    expect_err "cp to a traversal name" "." "$LLEM" cp tiny ../../x
    expect_err "create with a bad Modelfile line" "line 2" "$LLEM" create bad -f <(printf 'FROM %s\nPARAMETER nonsense 1\n' "$model")
    reg=$(free_port)
    expect_err "pull from a registry that is down" "." "$LLEM" pull --insecure "127.0.0.1:$reg/library/none:latest"
    expect_err "push to a registry that is down" "." "$LLEM" push --insecure "127.0.0.1:$reg/library/none:latest"
else
    echo "skip store-backed checks (create, cp, rm, run-once, pull/push): $(tail -1 "$tmp/err")"
fi
exit $fail
