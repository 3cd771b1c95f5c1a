#!/usr/bin/env bash
# Formats the C++ sources with the repo's .clang-format (--check: report, change nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files 'src/*.cc' 'src/*.h' 'tests/*.cc' 'tests/*.h' 'bench/*.cc')
if [ "${1:-}" = "--check" ]; then
  clang-format --dry-run --Werror $files
  echo "format ok"
else
  clang-format -i $files
fi
