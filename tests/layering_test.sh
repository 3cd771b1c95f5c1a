#!/usr/bin/env bash
# A tier may include the tiers below it, never one above:
#   base <- execution <- orchestration <- interaction
# Fails, naming the line, when a source includes a header of a higher tier.
set -u
cd "$(dirname "$0")/.."
bad=0
check() {  # check DIR FORBIDDEN_TIER...
  local dir=$1
  shift
  for tier in "$@"; do
    if grep -rn --include='*.h' --include='*.cc' -E "#include \"$tier/" "src/$dir"; then
      echo "layering: src/$dir must not include $tier/"
      bad=1
    fi
  done
}
check base execution orchestration interaction
check execution orchestration interaction
check orchestration interaction
[ $bad = 0 ] && echo "layering ok"
exit $bad
