// The limits a user may set, described once: the JSON field, the command-line flag, the
// unit and its parser, the help text and where the value goes. `moat run`, `moat compile`
// and `moat call` register their flags from this table, and tool manifests and
// workspace policies read their per-tool limits from it, so a name, a unit or an error
// never differs between two of them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "execution/limits.h"

namespace moat {

enum class LimitUnit { kCount, kSize, kDuration };

// Where a limit may be set (bits of LimitField::uses).
enum LimitUse : unsigned {
  kLimitRunFlag = 1u << 0,      // a flag of `moat run`
  kLimitCallFlag = 1u << 1,     // a flag of `moat call`
  kLimitCompileFlag = 1u << 2,  // a flag of `moat compile`
  // A field of a tool manifest's "limits" and of a policy's tools/NAME: a default of one
  // tool's calls (tools::ToolLimits), which `moat call` flags override.
  kLimitToolField = 1u << 3,
};

struct LimitField {
  std::string_view name;  // as a JSON field: "max_output"
  std::string_view flag;  // as a flag: "--max-output"
  LimitUnit unit;
  Result<uint64_t> (*parse)(std::string_view);  // base/units.h, the one for `unit`
  std::string_view help;                        // the flag's help, with its default
  // The help of `moat call` where it differs (its default is the manifest's).
  std::string_view call_help;
  // Where the value goes: a run's Limits, or the compile step's CompileLimits.
  uint64_t Limits::*run = nullptr;
  uint64_t CompileLimits::*compile = nullptr;
  unsigned uses = 0;  // LimitUse bits
};

// Every entry, in the order the flags are listed in help.
std::span<const LimitField> LimitFields();

// The entry called `name` (JSON spelling) that has every bit of `uses`; nullptr if none.
const LimitField* FindLimitField(std::string_view name, unsigned uses);

// `text` through the field's parser; an error reads "WHERE: why" ("--fuel: ...",
// "manifest: limits/fuel: ..."). Bounds are Limits::Validate's and CompileLimits::Validate's.
Result<uint64_t> ParseLimit(const LimitField& f, std::string_view text, const std::string& where);

}  // namespace moat
