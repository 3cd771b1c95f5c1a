#!/usr/bin/env bash
# Fuel-metering overhead counted in instructions (callgrind), immune to machine noise:
# SHA-256 over 4 MiB in wasm, metered vs unmetered, same process code, cached modules.
#   bench/metering_instructions.sh [build-dir]
set -euo pipefail
B=${1:-build}
BIN=$B/bench/bench_engine
command -v valgrind >/dev/null || { echo "valgrind not installed"; exit 1; }
$BIN --sha256-once metered 1 >/dev/null    # compile both outside the count
$BIN --sha256-once unmetered 1 >/dev/null
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" --sha256-once "$1" 4 2>&1 |
    sed -n 's/.*refs: *//p' | tr -d ,
}
m=$(count metered)
u=$(count unmetered)
awk -v m="$m" -v u="$u" 'BEGIN {
  printf "instructions: metered %d, unmetered %d\n", m, u;
  printf "metering overhead: +%.2f%% (target <= 10%%): %s\n", (m / u - 1) * 100, (m / u <= 1.10) ? "PASS" : "FAIL" }'
