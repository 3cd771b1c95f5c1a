#!/usr/bin/env bash
# Fuzzes the provider stream decoders (fuzz/wire_fuzz.cc: server-sent events, OpenAI and
# Anthropic streamed turns) with libFuzzer + ASan + UBSan, seeded with small valid streams.
# A crash, sanitizer report or broken invariant fails the run and leaves the input in
# build-fuzz/wire-crashes/.
#   fuzz/run_wire.sh [seconds] [libFuzzer seed]    default 60 s, random seed
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
SEED=${2:-0}
OUT=build-fuzz
mkdir -p $OUT/wire-corpus $OUT/wire-crashes
clang++-16 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc fuzz/wire_fuzz.cc src/orchestration/agent/wire.cc src/base/json_text.cc \
  -o $OUT/wire_fuzz
printf 'data: {"choices":[{"index":0,"delta":{"content":"caf\xc3\xa9","tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{\\"a\\":1}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}\r\n\r\ndata: [DONE]\n\n' \
  > $OUT/wire-corpus/openai
printf 'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":5}}}\n\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f"}}\n\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}\n\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":2}}\n\ndata: {"type":"message_stop"}\n\n' \
  > $OUT/wire-corpus/anthropic
$OUT/wire_fuzz -seed="$SEED" -max_total_time="$SECS" -max_len=8192 \
  -artifact_prefix=$OUT/wire-crashes/ $OUT/wire-corpus 2>$OUT/wire-fuzz.log && rc=0 || rc=$?
grep -E "^#[0-9]+.*(DONE|INITED)" $OUT/wire-fuzz.log | tail -1 || true
if [ $rc != 0 ]; then
  grep -E "ERROR|SUMMARY|runtime error|deadly" $OUT/wire-fuzz.log | head -5
  echo "wire fuzz FAILED (exit $rc); inputs in $OUT/wire-crashes/"
  exit 1
fi
echo "wire fuzz: no crash in $SECS s"
