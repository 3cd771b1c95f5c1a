#!/usr/bin/env bash
# Fuzzes the wasm pipeline's front half (libwabt reader + moat's checks, fuel pass and C
# writer) with libFuzzer + ASan + UBSan, then triages what it found.
#   fuzz/run.sh [seconds] [libFuzzer seed]    default 60 s, random seed
# Seeds of the corpus: every guest module in build/guests and fuzz/regressions.
#
# libwabt 1.0.32 is built with assertions and aborts on some malformed modules. moat runs
# that code in a forked child (TranslateWasmIsolated), so such inputs are contained. The
# fuzzer therefore keeps going after crashes, and the triage step then requires, for every
# crashing input: (1) the crash is a libwabt assertion, not moat's own code, and (2) the
# real `moat compile` refuses it with status 120. Anything else fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
SEED=${2:-0}
OUT=build-fuzz
rm -rf $OUT/crashes
mkdir -p $OUT/corpus $OUT/crashes
clang++-16 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc -I/usr/src/wasm2c \
  fuzz/wasm_pipeline_fuzz.cc src/execution/module_pipeline.cc src/execution/compile_step.cc \
  src/base/units.cc src/execution/host_imports.cc src/execution/limits.cc \
  /usr/lib/x86_64-linux-gnu/libwabt.a -o $OUT/wasm_pipeline_fuzz
cp build/guests/*.wasm fuzz/regressions/*.bin $OUT/corpus/ 2>/dev/null || true

$OUT/wasm_pipeline_fuzz -fork=1 -ignore_crashes=1 -seed="$SEED" -max_total_time="$SECS" -max_len=262144 \
  -rss_limit_mb=4096 -artifact_prefix=$OUT/crashes/ $OUT/corpus 2>$OUT/fuzz.log || true
grep -E "^#[0-9]+.*(DONE|INITED)|stat::number_of_executed_units" $OUT/fuzz.log | tail -2 || true

bad=0
n=0
for f in $OUT/crashes/* fuzz/regressions/*.bin; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  report=$($OUT/wasm_pipeline_fuzz "$f" 2>&1 || true)
  # The first stack frame outside libc, the sanitizers and libFuzzer says whose code
  # failed: moat's own sources are bugs to fix; libwabt's are contained (checked below).
  frame=$(echo "$report" | grep -E '^ +#[0-9]+ ' |
    grep -v -E 'libc\.so|sanitizer|fuzzer::|__assert|abort|raise|pthread_kill|LLVMFuzzerTestOneInput' |
    head -1 || true)
  if echo "$report" | grep -q "LLVMFuzzerTestOneInput .*wasm_pipeline_fuzz.cc" &&
     ! echo "$report" | grep -q -E "wabt::|binary-reader|include/wabt"; then
    frame="fuzz target check: $(echo "$report" | grep -m1 'wasm_pipeline_fuzz.cc')"
  fi
  if [ -n "$frame" ] && echo "$frame" | grep -q -E '/src/(base|execution)/|fuzz target check'; then
    echo "MOAT BUG: $f fails in moat's code: $frame"
    bad=1
  fi
  MOAT_CACHE_DIR=$OUT/cache build/moat compile "$f" >/dev/null 2>&1 && rc=0 || rc=$?
  if [ "$rc" != 120 ]; then
    echo "NOT CONTAINED: moat compile $f exited $rc (expected 120)"
    bad=1
  fi
done
echo "triaged $n crashing inputs: $([ $bad = 0 ] && echo 'all libwabt assertions, all refused by moat' || echo FAILURES)"
exit $bad
