#!/usr/bin/env bash
# Fuzzes the tool-argument JSON Schema validator (fuzz/json_schema_fuzz.cc) with libFuzzer +
# ASan + UBSan. Seeds: the schemas of the official JSON-Schema-Test-Suite when installed.
# Inputs that once failed (fuzz/regressions/json-schema/) are run first. A crash,
# sanitizer report or unexpected error kind fails the run and leaves the input in
# build-fuzz/json-schema-crashes/.
#   fuzz/run_json_schema.sh [seconds] [libFuzzer seed]    default 60 s, random seed
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
SEED=${2:-0}
OUT=build-fuzz
mkdir -p $OUT/json-schema-corpus $OUT/json-schema-crashes
clang++-16 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc fuzz/json_schema_fuzz.cc src/orchestration/tools/json_schema.cc src/base/json_text.cc \
  -o $OUT/json_schema_fuzz
SUITE=/usr/share/json-schema-test-suite/tests/draft7
if [ -d $SUITE ] && command -v python3 >/dev/null; then
  python3 - "$SUITE" "$OUT/json-schema-corpus" <<'PY'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
n = 0
for name in sorted(os.listdir(src)):
    if not name.endswith(".json"):
        continue
    for group in json.load(open(os.path.join(src, name))):
        for test in group["tests"][:2]:
            data = json.dumps(group["schema"]) + "\0" + json.dumps(test["data"])
            open(os.path.join(dst, "suite-%d" % n), "w").write(data)
            n += 1
PY
fi
# Inputs that once failed (fuzz/regressions/json-schema/) must pass first.
if ! $OUT/json_schema_fuzz fuzz/regressions/json-schema/* >$OUT/json-schema-regressions.log 2>&1; then
  grep -E "ERROR|SUMMARY|runtime error" $OUT/json-schema-regressions.log | head -5
  echo "json_schema fuzz FAILED on a regression input (fuzz/regressions/json-schema/)"
  exit 1
fi
$OUT/json_schema_fuzz -seed="$SEED" -max_total_time="$SECS" -max_len=4096 \
  -artifact_prefix=$OUT/json-schema-crashes/ $OUT/json-schema-corpus 2>$OUT/json-schema-fuzz.log && rc=0 || rc=$?
grep -E "^#[0-9]+.*(DONE|INITED)" $OUT/json-schema-fuzz.log | tail -1 || true
if [ $rc != 0 ]; then
  grep -E "ERROR|SUMMARY|runtime error" $OUT/json-schema-fuzz.log | head -5
  echo "json_schema fuzz FAILED (exit $rc); inputs in $OUT/json-schema-crashes/"
  exit 1
fi
echo "json_schema fuzz: no crash in $SECS s"
