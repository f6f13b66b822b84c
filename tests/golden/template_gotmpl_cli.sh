#!/usr/bin/env bash
# tests/golden/template_gotmpl_cli.sh: every Ollama template in ../shared/testdata/gotemplates
# rendered through `llem template FILE.gotmpl --messages ...` for the three reference
# conversations matches its expected file (README rule: for chatqa, llama2-chat,
# mistral-instruct, openchat and vicuna one trailing space is removed before comparing).
set -u
dir=${LLEM_SHARED:-../shared}/testdata/gotemplates
if [ ! -d "$dir/testdata" ]; then
    echo "SKIP: $dir not found (../shared is absent)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sys='{"role":"system","content":"You are a helpful assistant."}'
u1='{"role":"user","content":"Hello, how are you?"}'
a1='{"role":"assistant","content":"I'"'"'m doing great. How can I help you today?"}'
u2='{"role":"user","content":"I'"'"'d like to show off how chat templating works!"}'
echo "[$u1]" > "$tmp/user"
echo "[$u1,$a1,$u2]" > "$tmp/user-assistant-user"
echo "[$sys,$u1,$a1,$u2]" > "$tmp/system-user-assistant-user"
pass=0
fail=0
for tpl in "$dir"/*.gotmpl; do
    name=$(basename "$tpl")
    for case in user user-assistant-user system-user-assistant-user; do
        expected="$dir/testdata/$name/$case"
        [ -f "$expected" ] || continue
        "$LLEM" template "$tpl" --messages "$tmp/$case" > "$tmp/out" 2> "$tmp/err"
        cp "$expected" "$tmp/exp"
        case "${name%.gotmpl}" in
        chatqa | llama2-chat | mistral-instruct | openchat | vicuna)
            sed -i '$ s/ $//' "$tmp/out" "$tmp/exp" ;;
        esac
        if cmp -s "$tmp/out" "$tmp/exp"; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            echo "FAIL $name/$case: $(head -c 300 "$tmp/err")"
        fi
    done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
