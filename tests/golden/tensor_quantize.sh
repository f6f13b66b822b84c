#!/usr/bin/env bash
# tests/golden/tensor_quantize.sh: `llem quantize` end to end on ../shared/models/llama-tiny-F16:
# Q4_0, Q8_0 and Q4_K_M outputs are written, have the expected sizes (those of llama-quantize's
# files for the same model) and, once `llem show` exists, read back with the right file type.
# Also the one-line errors (unknown type, missing file, unknown flag) and --help.
set -uo pipefail
: "${LLEM:?}"
SHARED=${LLEM_SHARED:-../shared}
SRC=$SHARED/models/llama-tiny-F16.gguf
[ -f "$SRC" ] || { echo "SKIP: $SRC not found"; exit 77; }
[ -x "$LLEM" ] || { echo "FAIL: $LLEM is not built"; exit 1; }
OUT=${LLEM_BUILD_DIR:-.}/tmp/tensor_quantize.$$
mkdir -p "$OUT"
trap 'rm -rf "$OUT"' EXIT
fail=0
err() { echo "FAIL: $*"; fail=1; }

# one-line errors, exit 1
check_err() { # expected-substring args...
    local want=$1; shift
    "$LLEM" quantize "$@" >"$OUT/o" 2>"$OUT/e"; local rc=$?
    [ $rc -eq 1 ] || err "quantize $* exited $rc"
    [ "$(wc -l <"$OUT/e")" -eq 1 ] || err "quantize $*: not one line: $(cat "$OUT/e")"
    grep -q -- "$want" "$OUT/e" || err "quantize $*: '$want' not in: $(cat "$OUT/e")"
}
check_err "unknown type" "$SRC" "$OUT/x.gguf" Q9_K
check_err "no such file" "$OUT/missing.gguf" "$OUT/x.gguf" Q4_0
check_err "unknown option" --frobnicate "$SRC" "$OUT/x.gguf" Q4_0
check_err "threads" "$SRC" "$OUT/x.gguf" Q4_0 --threads 0
check_err "usage" "$SRC"
[ ! -e "$OUT/x.gguf" ] || err "a failed run left $OUT/x.gguf"
"$LLEM" quantize --help | grep -q "Q4_K_M" || err "--help does not list Q4_K_M"

have_show=0
"$LLEM" --help 2>/dev/null | grep -qE '^ +show ' && have_show=1

# expected sizes: llama-quantize's output for this model (same tensors, same metadata keys)
declare -A size=([Q4_0]=1457728 [Q8_0]=2669120 [Q4_K_M]=1533760)
declare -A ftype=([Q4_0]=2 [Q8_0]=7 [Q4_K_M]=15)
for t in Q4_0 Q8_0 Q4_K_M; do
    f=$OUT/llama-tiny-$t.gguf
    if ! "$LLEM" quantize "$SRC" "$f" "$t" --threads 2 >"$OUT/o" 2>"$OUT/e"; then
        err "quantize $t: $(cat "$OUT/e")"; continue
    fi
    [ -s "$f" ] || { err "$t: no output"; continue; }
    got=$(stat -c %s "$f")
    [ "$got" -eq "${size[$t]}" ] || err "$t: size $got, expected ${size[$t]}"
    # not a terminal: one plain progress line per tensor (39 tensors)
    [ "$(grep -c '\->' "$OUT/e")" -eq 39 ] || err "$t: expected 39 progress lines"
    if [ $have_show -eq 1 ]; then
        "$LLEM" show -v "$f" >"$OUT/show" 2>&1 || err "show $t failed: $(cat "$OUT/show")"
        grep -q "general.file_type.*${ftype[$t]}" "$OUT/show" ||
            err "show $t: general.file_type ${ftype[$t]} not found"
    fi
done
[ $have_show -eq 1 ] || echo "note: 'llem show' not available yet; show checks skipped"
[ $fail -eq 0 ] && echo "ok"
exit $fail
