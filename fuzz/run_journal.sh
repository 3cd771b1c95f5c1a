#!/usr/bin/env bash
# Fuzzes the checkpoint journal reader (fuzz/journal_fuzz.cc) with libFuzzer + ASan +
# UBSan, seeded with journals written by the recorder (tests/checkpoint_test.cc's kinds of
# records). A crash, a sanitizer report or an accepted unclean path fails the run and
# leaves the input in build-fuzz/journal-crashes/.
#   fuzz/run_journal.sh [seconds] [libFuzzer seed]    default 60 s, random seed
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
SEED=${2:-0}
OUT=build-fuzz
mkdir -p $OUT/journal-corpus $OUT/journal-crashes
clang++-16 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc fuzz/journal_fuzz.cc src/orchestration/undo/checkpoints.cc \
  src/base/json_text.cc src/base/sha256.cc src/base/fs.cc src/base/units.cc \
  -lcrypto -o $OUT/journal_fuzz
cat >$OUT/journal-corpus/seed.jsonl <<'SEED'
{"t":"call","call":1,"step":1,"id":"c1","tool":"write_file","ts":"2026-01-01T00:00:00Z"}
{"t":"pre","call":1,"n":1,"root":"/w","path":"a/b.txt","kind":"file","mode":420,"size":4,"at":2}
{"t":"pre","call":1,"n":2,"root":"/w","path":"l","kind":"link","target":"x"}
{"t":"pre","call":1,"n":3,"root":"/w","path":"d","kind":"dir","mode":493}
{"t":"pre","call":1,"n":4,"root":"/w","path":"gone","kind":"absent"}
{"t":"skip","call":1,"root":"/w","path":"big","reason":"limit"}
{"t":"post","call":1,"root":"/w","path":"a/b.txt","kind":"file","mode":420,"size":1,"sha256":"00"}
{"t":"end","call":1,"undoable":false,"reason":"big: limit","files":4,"bytes":4}
{"t":"undone","call":1,"ts":"2026-01-01T00:00:01Z"}
SEED
$OUT/journal_fuzz -seed="$SEED" -max_total_time="$SECS" -max_len=8192 -rss_limit_mb=4096 \
  -artifact_prefix=$OUT/journal-crashes/ $OUT/journal-corpus \
  2>$OUT/journal-fuzz.log && rc=0 || rc=$?
rm -rf /dev/shm/moat-journal-fuzz-*
grep -E "^#[0-9]+.*(DONE|INITED)" $OUT/journal-fuzz.log | tail -1 || true
if [ $rc != 0 ]; then
  grep -E "ERROR|SUMMARY|runtime error|journal accepted" $OUT/journal-fuzz.log | head -5
  echo "journal fuzz FAILED (exit $rc); inputs in $OUT/journal-crashes/"
  exit 1
fi
echo "journal fuzz: no crash, no unclean path accepted in $SECS s"
