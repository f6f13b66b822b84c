#!/usr/bin/env bash
# tests/golden/template_jinja_cli.sh: `llem template` end to end: for every template in
# ../shared/testdata/templates, one case per conversation rendered through the CLI (--messages,
# --bos/--eos, --no-generation-prompt, --var, --now) must equal jinja2's output byte for byte,
# expected errors must exit non-zero; a GGUF whose tokenizer.chat_template and bos/eos come
# from its metadata renders the same. Needs python3 to read the case files; skips without it.
set -u
dir="${LLEM_SHARED:-../shared}/testdata/templates"
[ -d "$dir" ] || { echo "SKIP: $dir absent"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 absent"; exit 77; }
[ -x "${LLEM:-}" ] || { echo "SKIP: \$LLEM not set"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One line per check: template path, messages file, expected file (or -), then CLI options.
python3 - "$dir" "$tmp" <<'PY' > "$tmp/plan"
import json, os, sys, struct
d, tmp = sys.argv[1], sys.argv[2]
convs = {c["name"]: c for c in json.load(open(os.path.join(d, "conversations.json")))}
n = 0
for f in sorted(os.listdir(d)):
    if not f.endswith(".json") or f == "conversations.json":
        continue
    spec = json.load(open(os.path.join(d, f)))
    seen = set()
    for c in spec["cases"]:
        key = c["conversation"]
        if key in seen:
            continue
        seen.add(key)
        n += 1
        conv = convs[key]
        mpath = os.path.join(tmp, "m%d.json" % n)
        json.dump({"messages": conv["messages"], "tools": conv["tools"]}, open(mpath, "w"))
        epath = "-"
        if not c["error"]:
            epath = os.path.join(tmp, "e%d.txt" % n)
            open(epath, "w", newline="").write(c["expected"])
        opts = ["--bos", c["bos_token"], "--eos", c["eos_token"], "--now", "2026-01-15T12:00:00"]
        if not c["add_generation_prompt"]:
            opts.append("--no-generation-prompt")
        opts += ["--var", "documents=null"]
        for k, v in c["extra_kwargs"].items():
            opts += ["--var", "%s=%s" % (k, json.dumps(v))]
        print("\t".join([os.path.join(d, spec["template_file"]), mpath, epath] + opts))
# A GGUF carrying Llama 3.1's template, with bos/eos as vocabulary ids.
spec = json.load(open(os.path.join(d, "meta-llama-Llama-3.1-8B-Instruct.json")))
c = [c for c in spec["cases"] if c["conversation"] == "tool_call_roundtrip"
     and c["add_generation_prompt"]][0]
def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b
src = open(os.path.join(d, spec["template_file"]), newline="").read()
toks = ["<unk>", c["bos_token"], c["eos_token"]]
kv = [s("general.architecture") + struct.pack("<I", 8) + s("llama"),
      s("tokenizer.chat_template") + struct.pack("<I", 8) + s(src),
      s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, len(toks)) + b"".join(s(t) for t in toks),
      s("tokenizer.ggml.bos_token_id") + struct.pack("<II", 4, 1),
      s("tokenizer.ggml.eos_token_id") + struct.pack("<II", 4, 2)]
data = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv)
data += b"\0" * ((32 - len(data) % 32) % 32)
open(os.path.join(tmp, "t.gguf"), "wb").write(data)
conv = convs["tool_call_roundtrip"]
json.dump({"messages": conv["messages"], "tools": conv["tools"]}, open(os.path.join(tmp, "g.json"), "w"))
open(os.path.join(tmp, "g.txt"), "w", newline="").write(c["expected"])
print("\t".join([os.path.join(tmp, "t.gguf"), os.path.join(tmp, "g.json"), os.path.join(tmp, "g.txt"),
                 "--now", "2026-01-15T12:00:00", "--var", "documents=null"]))
PY

pass=0 fail=0
while IFS=$'\t' read -r -a f; do
    tpl=${f[0]} msgs=${f[1]} want=${f[2]}
    "$LLEM" template "$tpl" --messages "$msgs" "${f[@]:3}" > "$tmp/got" 2> "$tmp/err"
    rc=$?
    if [ "$want" = "-" ]; then
        if [ $rc -ne 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL (no error): $tpl $msgs"; fi
    elif [ $rc -eq 0 ] && cmp -s "$tmp/got" "$want"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); echo "FAIL: $tpl $msgs: $(head -c 300 "$tmp/err")"
    fi
done < "$tmp/plan"
echo "llem template: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
