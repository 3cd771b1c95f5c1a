#!/usr/bin/env bash
# Fuzzes checkpoints and undo end to end (fuzz/undo_fuzz.cc): random path operations through
# the WASI layer with a recorder, then an undo that must put the tree back exactly, with
# libFuzzer + ASan + UBSan. A crash or a broken invariant fails the run and leaves the input
# in build-fuzz/undo-crashes/. Inputs that once failed (fuzz/regressions/undo/) are run first.
#   fuzz/run_undo.sh [seconds] [libFuzzer seed]    default 60 s, random seed
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
SEED=${2:-0}
OUT=build-fuzz
mkdir -p $OUT/undo-corpus $OUT/undo-crashes
clang++-16 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc fuzz/undo_fuzz.cc src/execution/wasi_fs.cc src/execution/limits.cc \
  src/orchestration/undo/checkpoints.cc src/orchestration/undo/undo.cc src/base/line_diff.cc \
  src/base/json_text.cc src/base/sha256.cc src/base/fs.cc src/base/units.cc \
  -lcrypto -o $OUT/undo_fuzz
# Inputs that once failed (fuzz/regressions/undo/) must pass first.
if ! $OUT/undo_fuzz fuzz/regressions/undo/* >$OUT/undo-regressions.log 2>&1; then
  grep -E "ERROR|SUMMARY|runtime error|INVARIANT" $OUT/undo-regressions.log | head -5
  echo "undo fuzz FAILED on a regression input (fuzz/regressions/undo/)"
  exit 1
fi
$OUT/undo_fuzz -seed="$SEED" -max_total_time="$SECS" -max_len=512 -rss_limit_mb=4096 \
  -artifact_prefix=$OUT/undo-crashes/ $OUT/undo-corpus 2>$OUT/undo-fuzz.log && rc=0 || rc=$?
rm -rf /tmp/moat-undofuzz-*
grep -E "^#[0-9]+.*(DONE|INITED)" $OUT/undo-fuzz.log | tail -1 || true
if [ $rc != 0 ]; then
  grep -E "ERROR|SUMMARY|runtime error|INVARIANT" $OUT/undo-fuzz.log | head -5
  echo "undo fuzz FAILED (exit $rc); inputs in $OUT/undo-crashes/"
  exit 1
fi
echo "undo fuzz: every undoable call put back exactly in $SECS s"
