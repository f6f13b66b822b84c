#!/usr/bin/env bash
# tests/e2e/cli_repl.sh: the interactive `llem run MODEL` driven through a real terminal (tmux)
# against a real `llem serve`: /set parameter and /show parameters, a """ multi-line message
# (its answer must equal the server's answer to the joined text), Ctrl-C during a long answer
# (the stream is cancelled, the server frees the slot, the REPL keeps going), Ctrl-C at the
# prompt, /bye, history in ~/.llem/history, LLEM_NOHISTORY, and Ctrl-D leaving.
# Exit 77 (skipped) when ../shared, tmux, curl or python3 is missing, or there is no serve verb.
set -u
shared=${LLEM_SHARED:-../shared}
model=$shared/models/stories260K.gguf
[ -f "$model" ] || { echo "SKIP: $model not found (../shared is absent)"; exit 77; }
model=$(cd "$(dirname "$model")" && pwd)/$(basename "$model")
for tool in tmux curl python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
: "${LLEM:?LLEM must name the llem binary}"
"$LLEM" serve --help >/dev/null 2>&1 || { echo "SKIP: no 'llem serve' verb"; exit 77; }

tmp=$(mktemp -d)
sess=llem-repl-$$
export TMUX_TMPDIR=$tmp # a private tmux server: nothing of the user's is touched
srv=
cleanup() {
    tmux kill-server 2>/dev/null
    [ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export LLEM_HOST=127.0.0.1:$port
url=http://$LLEM_HOST
mkdir -p "$tmp/dir" "$tmp/home"
ln -s "$model" "$tmp/dir/stories.gguf"
LLEM_MODELS=$tmp/models LLEM_MODELS_DIR=$tmp/dir "$LLEM" serve >"$tmp/serve.log" 2>&1 &
srv=$!
for _ in $(seq 1 100); do
    curl -sf "$url/api/version" >/dev/null && break
    sleep 0.1
done
curl -sf "$url/api/version" >/dev/null || { echo "FAIL: llem serve did not start"; cat "$tmp/serve.log"; exit 1; }

pane() { tmux capture-pane -p -J -t "$sess" -S -200; }
# wait_for DESC REGEX [SECONDS]: polls the screen until REGEX (grep -E) shows (bounded wait,
# no timing assertion: a slow machine only makes it wait longer).
wait_for() {
    local i
    for i in $(seq 1 $((${3:-30} * 10))); do
        pane | grep -Eq -- "$2" && { ok "$1"; return 0; }
        sleep 0.1
    done
    bad "$1: /$2/ never appeared; screen:"
    pane | grep -v '^$' | tail -25
    return 1
}
# busy: the model's busy slot count from /api/ps (0 when not loaded).
busy() {
    curl -s "$url/api/ps" | python3 -c 'import json,sys; m=json.load(sys.stdin)["models"]; print(sum(x.get("slots_busy",0) for x in m))'
}

# The REPL's model: from the store when create works (then /save can build on it), else the
# GGUF reachable through LLEM_MODELS_DIR.
name=stories
printf 'FROM %s\n' "$model" >"$tmp/Modelfile"
if "$LLEM" create storied -f "$tmp/Modelfile" >/dev/null 2>&1; then
    name=storied
fi
start_repl() { # start_repl EXTRA_ENV...
    tmux new-session -d -s "$sess" -x 150 -y 50 \
        "env HOME=$tmp/home LLEM_HOST=$LLEM_HOST $* '$LLEM' run $name; echo REPL-EXIT=\$?; sleep 600"
}

start_repl
wait_for "prompt" '^>>> ' || exit 1
tmux send-keys -t "$sess" '/set parameter temperature 0' Enter
wait_for "/set parameter temperature" "^Set parameter 'temperature' to '0'$"
tmux send-keys -t "$sess" '/set parameter num_predict 10' Enter
wait_for "/set parameter num_predict" "^Set parameter 'num_predict' to '10'$"
tmux send-keys -t "$sess" '/show parameters' Enter
wait_for "/show parameters lists the session's values" '^temperature +0$'
tmux send-keys -t "$sess" '/set parameter bogus 1' Enter
wait_for "unknown parameter refused" "^Couldn't set parameter: unknown parameter 'bogus'$"
tmux send-keys -t "$sess" '/nonsense' Enter
wait_for "unknown command" "^Unknown command '/nonsense'. Type /\\? for help$"

# Multi-line: the answer must be the server's answer to "Lily\nwent" (greedy, 10 tokens; the
# model answers "Lily went" differently, so a message joined with a blank would show).
want=$(curl -s "$url/api/chat" -d '{"model":"'$name'","messages":[{"role":"user","content":"Lily\nwent"}],"options":{"temperature":0,"num_predict":10},"stream":false}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["message"]["content"].strip())')
tmux send-keys -t "$sess" '"""Lily' Enter
wait_for "continuation prompt" '^\.\.\. $'
tmux send-keys -t "$sess" 'went"""' Enter
if [ -n "$want" ] && wait_for "multi-line answer" "$(printf '%s' "$want" | sed 's/[][\.*^$?+(){}|/]/\\&/g')"; then
    :
else
    echo "     (wanted: '$want')"
    fail=1
fi
wait_for "prompt after the answer" '^>>> $'

# /save turns the conversation into a model (when the server's store routes answer).
tmux send-keys -t "$sess" '/save repl-saved' Enter
wait_for "/save answers" "^(Created new model 'repl-saved'|error: .*)$"
if pane | grep -q "^Created new model 'repl-saved'$"; then
    if "$LLEM" show repl-saved --modelfile | grep -q '^MESSAGE user """Lily'; then
        ok "the saved model carries the conversation"
    else
        bad "saved model: $("$LLEM" show repl-saved --modelfile 2>&1 | tail -5)"
    fi
    tmux send-keys -t "$sess" '/load repl-saved' Enter
    wait_for "/load" "^Loading model 'repl-saved'$"
    tmux send-keys -t "$sess" '/load no-such-model' Enter
    wait_for "/load of a missing model" "^Couldn't find model 'no-such-model'$"
else
    echo "skip /save and /load: $(pane | grep '^error: ' | tail -1)"
fi

# Ctrl-C during a long answer: the stream stops, the server frees the slot, the REPL goes on.
tmux send-keys -t "$sess" '/set parameter num_predict 100000' Enter
wait_for "long num_predict" "^Set parameter 'num_predict' to '100000'$"
tmux send-keys -t "$sess" 'Once upon a time' Enter
for _ in $(seq 1 300); do [ "$(busy)" = 1 ] && break; sleep 0.1; done
if [ "$(busy)" = 1 ]; then ok "generation running"; else bad "generation never started"; fi
tmux send-keys -t "$sess" C-c
for _ in $(seq 1 300); do [ "$(busy)" = 0 ] && break; sleep 0.1; done
if [ "$(busy)" = 0 ]; then ok "Ctrl-C cancelled the server's generation"; else bad "slot still busy after Ctrl-C"; fi
tmux send-keys -t "$sess" '/set parameter num_predict 4' Enter
wait_for "the REPL survives Ctrl-C" "^Set parameter 'num_predict' to '4'$"
tmux send-keys -t "$sess" C-c
wait_for "Ctrl-C at the prompt" '^Use Ctrl \+ d or /bye to exit\.$'
tmux send-keys -t "$sess" '/bye' Enter
wait_for "/bye leaves with status 0" '^REPL-EXIT=0$'
tmux kill-session -t "$sess"
# libedit's history file escapes blanks as \040.
if grep -Eq '^/set(\\040| )parameter(\\040| )temperature(\\040| )0$' "$tmp/home/.llem/history" 2>/dev/null; then
    ok "history written to ~/.llem/history"
else
    bad "history: $(cat "$tmp/home/.llem/history" 2>&1 | head -3)"
fi

# LLEM_NOHISTORY: nothing is added; Ctrl-D leaves.
cp "$tmp/home/.llem/history" "$tmp/history.before"
start_repl LLEM_NOHISTORY=1
wait_for "prompt (no history)" '^>>> ' || exit 1
tmux send-keys -t "$sess" '/set verbose' Enter
wait_for "/set verbose" "^Set 'verbose' mode\.$"
tmux send-keys -t "$sess" C-d
wait_for "Ctrl-D leaves with status 0" '^REPL-EXIT=0$'
if cmp -s "$tmp/history.before" "$tmp/home/.llem/history"; then
    ok "LLEM_NOHISTORY keeps the history untouched"
else
    bad "LLEM_NOHISTORY: the history changed"
fi
exit $fail
