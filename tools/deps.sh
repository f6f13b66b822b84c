#!/usr/bin/env bash
# tools/deps.sh: installs the Debian 12 packages llem builds and tests with, only those missing.
# Usage: tools/deps.sh [--test]   (--test adds what the test suite needs: clang, node, registry)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libcjson-dev libpcre2-dev
      libutf8proc-dev libedit-dev libcurl4-openssl-dev libssl-dev)
if [ "${1:-}" = "--test" ]; then
    pkgs+=(clang libclang-rt-dev curl nodejs npm docker-registry tmux python3)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "tools/deps.sh: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
