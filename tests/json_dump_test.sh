#!/usr/bin/env bash
# nlohmann's dump() throws on a string that is not valid UTF-8, and any string in moat may
# come from a guest, a model, a client or a stored file. So src/ writes JSON only through
# src/base/json_text (DumpJson, CompactJson, and TerminalJson over them), and reads it only
# through ParseJson there. Fails, naming the line, on any other call of dump() or of
# to_string(json), which calls it, or of json::parse().
set -u
cd "$(dirname "$0")/.."
bad=0
if grep -rn --include='*.h' --include='*.cc' -E '(\.|->)dump[[:space:]]*\(' src |
    grep -v -E '^src/base/json_text\.(h|cc):'; then
  echo "json_dump: call DumpJson (src/base/json_text.h) instead of dump()"
  bad=1
fi
if grep -rn --include='*.h' --include='*.cc' -E 'nlohmann::to_string|to_string\(json' src; then
  echo "json_dump: to_string(json) calls dump(); call DumpJson"
  bad=1
fi
# Reading: nlohmann's dump(), copies and comparisons recurse once per level of nesting,
# so JSON text from outside is parsed only by ParseJson, which refuses text nested deeper
# than kMaxJsonDepth before anything is built.
if grep -rn --include='*.h' --include='*.cc' -E 'json::(parse|sax_parse)[[:space:]]*\(|from_(cbor|msgpack|bson|ubjson)' src |
    grep -v -E '^src/base/json_text\.(h|cc):'; then
  echo "json_dump: call ParseJson (src/base/json_text.h) instead of json::parse()"
  bad=1
fi
[ $bad = 0 ] && echo "json_dump ok"
exit $bad
