#!/usr/bin/env bash
# Fuzzes the WASI capability layer (fuzz/wasi_fs_fuzz.cc) with libFuzzer + ASan + UBSan.
# Any crash, sanitizer report or broken invariant (something outside a mount or inside a
# read-only mount changed, outside or hidden content read, a symlink made to point out)
# fails the run and leaves the input in build-fuzz/wasi-fs-crashes/.
#   fuzz/run_wasi_fs.sh [seconds] [libFuzzer seed]    default 60 s, random seed
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
SEED=${2:-0}
OUT=build-fuzz
mkdir -p $OUT/wasi-fs-corpus $OUT/wasi-fs-crashes
clang++-16 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc fuzz/wasi_fs_fuzz.cc src/execution/wasi_fs.cc src/execution/limits.cc \
  -o $OUT/wasi_fs_fuzz
$OUT/wasi_fs_fuzz -seed="$SEED" -max_total_time="$SECS" -max_len=512 \
  -artifact_prefix=$OUT/wasi-fs-crashes/ $OUT/wasi-fs-corpus 2>$OUT/wasi-fs-fuzz.log && rc=0 || rc=$?
grep -E "^#[0-9]+.*(DONE|INITED)" $OUT/wasi-fs-fuzz.log | tail -1 || true
if [ $rc != 0 ]; then
  grep -E "INVARIANT|ERROR|SUMMARY" $OUT/wasi-fs-fuzz.log | head -5
  echo "wasi_fs fuzz FAILED (exit $rc); inputs in $OUT/wasi-fs-crashes/"
  exit 1
fi
echo "wasi_fs fuzz: no crash, no broken invariant in $SECS s"
