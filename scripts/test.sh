#!/usr/bin/env bash
# Runs every test: the normal build's full suite, then the execution tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer, the session and agent tests under
# ThreadSanitizer, 30 s of pipeline fuzzing with triage, 20 s
# of WASI-layer fuzzing, 20 s of JSON Schema fuzzing, 15 s of manifest fuzzing, 15 s of
# egress fuzzing, 10 s of provider-stream fuzzing, 10 s of checkpoint-journal fuzzing, 20 s
# of checkpoint-and-undo fuzzing, a benchmark smoke run (numbers printed, not enforced), then the format
# check.
#   scripts/test.sh          all of it
#   scripts/test.sh --fast   the normal build's suite only
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build
# Tests use their own cache folder (inside build/), so they never touch the user's.
# Sequential: several tests measure deadlines against wall time.
(cd build && ctest --output-on-failure)

if [ "${1:-}" = "--fast" ]; then exit 0; fi

echo "==> ASan + UBSan build (build-asan/), execution and orchestration tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMOAT_SANITIZE=ON \
  -DMOAT_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 MOAT_QUICK=1 ctest --output-on-failure -L "execution|orchestration")

echo "==> ThreadSanitizer build (build-tsan/), the session and agent tests"
# Only these two tests and what they need (not `all`): sessions at once over one Services,
# client approvals from other threads, a turn's calls at once, the audit log's sync thread.
# A race reported is a failed test (TSan's exit status 66); there are no suppressions.
# The translator helper runs from the normal build: it is a process of its own under an
# address-space limit (RLIMIT_AS) in which TSan's runtime cannot even start, and it runs
# one job with nothing shared (ASan and the fuzzers cover it).
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOAT_TSAN=ON \
  -DMOAT_BUILD_BENCH=OFF >/dev/null
cmake --build build-tsan --target session_test agent_test
export MOAT_TRANSLATOR="$PWD/build/moat-translator"
# TSan needs the memory layout it was built for; on a kernel that randomises mmap more
# than it allows ("unexpected memory mapping"), run without address randomisation.
tsan_prefix=()
if build-tsan/tests/agent_test --gtest_list_tests 2>&1 >/dev/null |
    grep -q "unexpected memory mapping"; then
  tsan_prefix=(setarch "$(uname -m)" -R)
fi
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ${tsan_prefix[@]+"${tsan_prefix[@]}"} ctest --output-on-failure -R '^(session_test|agent_test)$')
unset MOAT_TRANSLATOR

echo "==> fuzzing the wasm pipeline for 30 s, then triage (fuzz/run.sh)"
fuzz/run.sh 30 1

echo "==> fuzzing the WASI capability layer for 20 s (fuzz/run_wasi_fs.sh)"
fuzz/run_wasi_fs.sh 20 1

echo "==> fuzzing the tool-argument JSON Schema validator for 20 s (fuzz/run_json_schema.sh)"
fuzz/run_json_schema.sh 20 1

echo "==> fuzzing the tool-module reader for 15 s (fuzz/run_manifest.sh)"
fuzz/run_manifest.sh 15 1

echo "==> fuzzing the egress parsers for 15 s (fuzz/run_egress.sh)"
fuzz/run_egress.sh 15 1

echo "==> fuzzing the provider stream decoders for 10 s (fuzz/run_wire.sh)"
fuzz/run_wire.sh 10 1

echo "==> fuzzing the checkpoint journal reader for 10 s (fuzz/run_journal.sh)"
fuzz/run_journal.sh 10 1

echo "==> fuzzing checkpoints and undo end to end for 20 s (fuzz/run_undo.sh)"
fuzz/run_undo.sh 20 1

echo "==> benchmarks, quick smoke run (numbers are printed; targets are not enforced here)"
# The tests' cache: modules the tests compiled are not compiled again.
export MOAT_CACHE_DIR="$PWD/build/test-cache"
build/bench/bench_engine --quick || true
build/bench/bench_wasi --quick || true
build/bench/bench_tools --quick || true
build/bench/bench_grep --quick || true
build/bench/bench_net --quick || true
build/bench/bench_agent --quick || true
build/bench/bench_front_door --quick || true
build/bench/bench_checkpoints --quick || true
build/bench/bench_undo --quick || true
for b in bench_js bench_sql; do  # built only when third_party/ has QuickJS and SQLite
  if [ -x build/bench/$b ]; then build/bench/$b --quick || true; fi
done

echo "==> clang-format check"
scripts/format.sh --check
