#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace moat {

// "64M", "1GiB", "4096", "512k" -> bytes (binary multiples). Refuses overflow and junk.
Result<uint64_t> ParseSize(std::string_view text);
// "5s", "250ms", "2m", "100us", "1.5s" -> microseconds. A bare number means seconds.
Result<uint64_t> ParseDurationUs(std::string_view text);
// "10000", "10M" (decimal 10^6), "2G" -> count.
Result<uint64_t> ParseCount(std::string_view text);

// The current UTC time in ISO 8601, "2026-12-08T01:02:03Z"; with `millis`, to the
// millisecond, "2026-12-08T01:02:03.456Z" (audit records).
std::string UtcNowIso(bool millis = false);

}  // namespace moat
