#!/usr/bin/env bash
# Fuzzes the egress parsers (fuzz/egress_fuzz.cc: URLs through libcurl and libidn2, rules,
# CIDRs, address classes, redaction) with libFuzzer + ASan + UBSan, seeded with URL
# spellings that have slipped past other runtimes' checks. A crash, sanitizer report or
# broken invariant fails the run and leaves the input in build-fuzz/egress-crashes/.
#   fuzz/run_egress.sh [seconds] [libFuzzer seed]    default 60 s, random seed
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
SEED=${2:-0}
OUT=build-fuzz
mkdir -p $OUT/egress-corpus $OUT/egress-crashes
clang++-16 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc fuzz/egress_fuzz.cc src/execution/net/egress.cc src/execution/net/ip.cc \
  src/execution/net/secret_store.cc src/execution/net/leak_scan.cc src/base/fs.cc \
  src/base/json_text.cc -o $OUT/egress_fuzz \
  $(pkg-config --libs libcurl libidn2) -lcrypto
i=0
for u in 'http://127.1/' 'http://0x7f.1/' 'http://2130706433/' 'http://[::ffff:127.0.0.1]/' \
         'http://a@b/' 'http://bücher.example./x/../y?q' 'https://*.example.com/v1' \
         'http://[64:ff9b::a9fe:a9fe]:8080/' '10.0.0.0/8' 'fd00::/8' 'http://a\@b/' \
         '..;/admin' '%252e%252e/x' 'x%00.json' '%c0%ae%c0%ae/' \
         '{"a":"\u0030\u0031234567&#56;9abcdef"}' 'p%40ss+w%2Frd%2B%3D%3F%26%2541'; do
  printf '%s' "$u" > $OUT/egress-corpus/seed$i
  i=$((i + 1))
done
$OUT/egress_fuzz -seed="$SEED" -max_total_time="$SECS" -max_len=4096 -rss_limit_mb=4096 \
  -artifact_prefix=$OUT/egress-crashes/ $OUT/egress-corpus 2>$OUT/egress-fuzz.log && rc=0 || rc=$?
grep -E "^#[0-9]+.*(DONE|INITED)" $OUT/egress-fuzz.log | tail -1 || true
if [ $rc != 0 ]; then
  grep -E "ERROR|SUMMARY|runtime error|deadly" $OUT/egress-fuzz.log | head -5
  echo "egress fuzz FAILED (exit $rc); inputs in $OUT/egress-crashes/"
  exit 1
fi
echo "egress fuzz: no crash in $SECS s"
