// Compact JSON text of an nlohmann::json value, as value.dump() writes it, but copying
// runs of plain string bytes in bulk (about 4x faster on large strings; the arguments of a
// tool call can be megabytes) and returning an error for a string that is not valid UTF-8
// where dump() would throw. Non-ASCII characters are written as they are.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace moat {

// ErrorCode::kInvalidArgument naming the JSON Pointer of the first bad string.
Result<std::string> CompactJson(const nlohmann::json& value);

}  // namespace moat
