// JSON text in and out of nlohmann::json values, never throwing and never recursing
// deeper than kMaxJsonDepth. nlohmann's dump() throws on a string that is not valid UTF-8,
// and strings in moat come from guests, models, clients and stored files; its dump(),
// copies and comparisons recurse once per level of nesting, so a value parsed from
// 300,000 nested brackets overflows the stack. So no code in src/ parses JSON text or
// calls dump() but through this file (tests/json_dump_test.sh fails on any other call):
// ParseJson refuses text nested deeper than kMaxJsonDepth before nlohmann reads it, and
// every value moat holds is then shallow enough for any recursive walk.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace moat {

// Arrays and objects open at once, at most, in JSON moat reads (`[[1]]` is 2 deep).
inline constexpr size_t kMaxJsonDepth = 512;

// The value `text` holds, or ErrorCode::kInvalidArgument when the text is nested deeper
// than kMaxJsonDepth (found by a scan that keeps only a counter, before anything is built)
// or is not one JSON value (RFC 8259, strings valid UTF-8). The message is a predicate
// ("nested deeper than 512 levels (at byte 9)", "not valid JSON") for callers to prefix
// with what was read: "the arguments are " + message.
Result<nlohmann::json> ParseJson(std::string_view text);

// value.dump(indent) with invalid UTF-8 replaced by U+FFFD: what moat writes to files,
// sockets and (through TerminalJson, base/terminal_text.h) the terminal. Non-ASCII
// characters are written as they are.
std::string DumpJson(const nlohmann::json& value, int indent = -1);

// Compact JSON text as value.dump() writes it, but copying runs of plain string bytes in
// bulk (about 4x faster on large strings; the arguments of a tool call can be megabytes)
// and returning an error for a string that is not valid UTF-8 (for input that must be
// refused rather than repaired): ErrorCode::kInvalidArgument naming the JSON Pointer of
// the first bad string.
Result<std::string> CompactJson(const nlohmann::json& value);

}  // namespace moat
