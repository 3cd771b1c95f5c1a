#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace moat {

// Reads a whole regular file; refuses anything larger than max_bytes.
Result<std::vector<uint8_t>> ReadFile(const std::string& path, uint64_t max_bytes);

// Writes bytes to dir/name through a temp file in the same folder and rename(2),
// so a reader sees either the old file or the whole new one, never a torn one.
Status WriteFileAtomic(const std::string& dir, const std::string& name, const void* data,
                       size_t size, int mode);

// Creates dir (and parents) if missing; the last component is made mode 0700 and must be
// owned by the current user, else an error.
Status EnsurePrivateDir(const std::string& dir);

// A unique-enough suffix for temp files: pid + counter + random.
std::string TempSuffix();

// moat's folder in the user's configuration: $XDG_CONFIG_HOME/moat, else ~/.config/moat;
// "" when neither variable is set.
std::string UserConfigDir();

}  // namespace moat
