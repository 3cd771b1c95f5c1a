#!/usr/bin/env bash
# moat's main job, offline: run tools in the sandbox and watch it stop hostile ones.
set -uo pipefail
cd "$(dirname "$0")/.."
MOAT=build/moat
G=build/guests
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; echo "(exit status $?)"; }

echo "moat demo: every program below is a wasm32-wasi module built from guests/ and run"
echo "in moat's sandbox. The first run of each compiles it once into the cache."

step $MOAT run $G/hello.wasm from the sandbox
step $MOAT run --report text $G/sha256.wasm 16
step $MOAT run --env GREETING=hi --report text $G/echo.wasm --exit 3
echo; echo "Hostile programs end as results, never as a crashed or hung host:"
step $MOAT run --timeout 500ms --report text $G/infinite_loop.wasm
step $MOAT run --fuel 50M --report text $G/infinite_loop.wasm
step $MOAT run --memory 16M --report text $G/memory_bomb.wasm
step $MOAT run --report text $G/deep_recursion.wasm
step $MOAT run --report text $G/oob_load.wasm
step $MOAT run --max-output 200 --report text $G/output_flood.wasm
step $MOAT run --report json $G/bad_pointers.wasm
echo; echo "Modules moat cannot run safely are refused before any compile:"
step $MOAT run $G/unknown_import.wasm
step $MOAT run $G/uses_simd.wasm
step $MOAT cache ls

echo; echo "The agent: a model's turns (scripted, offline) with moat's tools, on a copy of"
echo "examples/workspace under its policy (.moat/policy.json, named with --policy: a policy"
echo "you name is yours; a workspace's own one widens nothing until you trust it). It reads"
echo "and greps, then tries what a prompt injection would: read .env, ask the cloud metadata"
echo "service for credentials, run an endless script twice; then writes its report."
WS=$(mktemp -d /tmp/moat-demo-XXXXXX)
cp -r examples/workspace/. "$WS"
step $MOAT chat --workspace "$WS" --policy "$WS/.moat/policy.json" --approve all "Summarise the open work into report.md"
step cat "$WS/report.md"
echo; echo "What the run changed can be shown and put back: every writing call's pre-images"
echo "were kept in .moat/checkpoints before it changed anything."
SESSION=$($MOAT sessions --workspace "$WS" ls 2>/dev/null | awk 'NR == 1 {print $1}')
step $MOAT sessions --workspace "$WS" diff "$SESSION"
step $MOAT sessions --workspace "$WS" undo "$SESSION"
step ls "$WS"
step $MOAT audit verify "$WS/.moat/audit.jsonl"
rm -rf "$WS"
