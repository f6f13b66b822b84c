#!/usr/bin/env bash
# tools/build.sh: installs missing Debian packages and builds llem (Release) into build/release.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)" --target llem
