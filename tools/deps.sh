#!/usr/bin/env bash
# tools/deps.sh: installs the Debian 12 packages llem builds and tests with, only those missing.
# Usage: tools/deps.sh [--test]   (--test adds what the test suite needs: clang for the fuzz
# targets, node/npm for the e2e clients, docker-registry for pull/push, tmux for the REPL test)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libcjson-dev libpcre2-dev
      libutf8proc-dev libedit-dev libcurl4-openssl-dev libssl-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${1:-}" = "--test" ]; then
    # Tools are checked by command: node may come from another repository than Debian's.
    declare -A tools=([clang]=clang [curl]=curl [python3]=python3 [tmux]=tmux
                      [docker-registry]=docker-registry [node]=nodejs [npm]=npm)
    for cmd in "${!tools[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${tools[$cmd]}")
    done
    dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "install ok installed" ||
        missing+=(libclang-rt-14-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "tools/deps.sh: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
