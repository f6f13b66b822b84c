#!/usr/bin/env bash
# tools/test.sh: builds llem twice (Release with -Werror, and Debug with ASan+UBSan) and runs
# every CTest label in both, plus the lint checks. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh --test
jobs=$(nproc)
status=0

tools/lint.sh || status=1

echo "== Release build (gcc, -Werror) =="
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$jobs"
ctest --test-dir build/release --output-on-failure -j"$jobs" --timeout 900 || status=1

echo "== Debug build with ASan+UBSan =="
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DLLEM_SANITIZE=address,undefined >/dev/null
cmake --build build/asan -j"$jobs"
# Speed-only and e2e tests run in the Release build; the sanitizer pass covers the rest.
ctest --test-dir build/asan --output-on-failure -j"$jobs" --timeout 1800 -LE 'e2e|slow' || status=1

if [ $status -eq 0 ]; then echo "tools/test.sh: all test runs passed"; else echo "tools/test.sh: FAILED"; fi
exit $status
