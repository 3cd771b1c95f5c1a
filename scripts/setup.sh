#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install what moat needs, build it, run the demo.
#   scripts/setup.sh            install + build + demo
#   scripts/setup.sh --no-demo  install + build
set -euo pipefail
cd "$(dirname "$0")/.."

# Build tools, the wasm2c engine (libwabt), the guest toolchains (clang-16 for wasm32-wasi;
# rustc with its wasm32-wasi std for the Rust test guest), and the libraries moat links.
# Nothing else is needed; see README for what each is for.
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  wabt
  clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32 libclang-rt-16-dev
  libc++-16-dev-wasm32 libc++abi-16-dev-wasm32
  rustc libstd-rust-dev-wasm32
  libssl-dev libsqlite3-dev libcurl4-openssl-dev libidn2-dev libcpp-httplib-dev nlohmann-json3-dev rapidjson-dev libcli11-dev
  libgtest-dev libgmock-dev json-schema-test-suite
  clang-format clang-tidy valgrind
)
# npm fetches third-party sources (scripts/fetch_third_party.sh). Debian's package only
# when no npm is there: it conflicts with a Node.js that bundles its own (NodeSource).
command -v npm >/dev/null || PACKAGES+=(npm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Sources of real programs built as guests (SQLite, QuickJS), pinned by version and sha256.
scripts/fetch_third_party.sh

echo "==> building (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build

# The built-in tools compiled into moat's cache now, with progress, so the first agent run
# does not sit compiling them (a big one takes tens of seconds on two cores).
echo "==> compiling the built-in tools into moat's cache (once per moat version)"
build/moat compile build/tools/*.wasm

if [ "${1:-}" != "--no-demo" ]; then
  scripts/demo.sh
fi
