#!/usr/bin/env bash
# Fuzzes the tool-module reader (fuzz/manifest_fuzz.cc: custom-section framing and manifest
# parsing) with libFuzzer + ASan + UBSan, seeded with the built-in tools' modules and
# manifests. A crash or sanitizer report fails the run and leaves the input in
# build-fuzz/manifest-crashes/.
#   fuzz/run_manifest.sh [seconds] [libFuzzer seed]    default 60 s, random seed
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
SEED=${2:-0}
OUT=build-fuzz
mkdir -p $OUT/manifest-corpus $OUT/manifest-crashes
clang++-16 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc fuzz/manifest_fuzz.cc src/orchestration/tools/manifest.cc \
  src/orchestration/tools/json_schema.cc src/execution/limit_fields.cc src/base/units.cc \
  src/base/json_text.cc \
  -o $OUT/manifest_fuzz
for f in guests/tools/*.manifest.json build/guests/hello.wasm build/tools/read_file.wasm; do
  [ -f "$f" ] && cp "$f" $OUT/manifest-corpus/ || true
done
$OUT/manifest_fuzz -seed="$SEED" -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=4096 \
  -artifact_prefix=$OUT/manifest-crashes/ $OUT/manifest-corpus 2>$OUT/manifest-fuzz.log && rc=0 || rc=$?
grep -E "^#[0-9]+.*(DONE|INITED)" $OUT/manifest-fuzz.log | tail -1 || true
if [ $rc != 0 ]; then
  grep -E "ERROR|SUMMARY|runtime error" $OUT/manifest-fuzz.log | head -5
  echo "manifest fuzz FAILED (exit $rc); inputs in $OUT/manifest-crashes/"
  exit 1
fi
echo "manifest fuzz: no crash in $SECS s"
