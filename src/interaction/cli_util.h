// Pieces the `moat` subcommands share: usage errors and the spelling of mounts and env.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "execution/exec.h"

namespace moat {

inline constexpr int kUsageError = 2;

// Prints "moat: MSG" on stderr and returns kUsageError.
int Usage(const std::string& msg);

// HOST[::GUEST][:ro], as the wasmtime CLI spells it; HOST must be a directory.
Result<Mount> ParseDir(std::string spec);

// KEY=VALUE, or KEY to pass the host's value (skipped when the host has none).
Status ParseEnv(const std::vector<std::string>& specs,
                std::vector<std::pair<std::string, std::string>>* out);

}  // namespace moat
