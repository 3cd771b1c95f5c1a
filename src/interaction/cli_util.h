// Pieces the `moat` subcommands share: usage errors and the spelling of mounts and env.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "execution/exec.h"
#include "execution/limit_fields.h"

namespace CLI {
class App;
}

namespace moat {

inline constexpr int kUsageError = 2;

// Prints "moat: MSG" (escaped, base/terminal_text.h) on stderr and returns kUsageError.
int Usage(const std::string& msg);

// HOST[::GUEST][:ro], as the wasmtime CLI spells it; HOST must be a directory.
Result<Mount> ParseDir(std::string spec);

// KEY=VALUE, or KEY to pass the host's value (skipped when the host has none).
Status ParseEnv(const std::vector<std::string>& specs,
                std::vector<std::pair<std::string, std::string>>* out);

// The network flags `moat run` and `moat call` share (their limits are limit flags).
struct NetFlags {
  std::vector<std::string> allow_net;      // egress rules
  std::vector<std::string> allow_private;  // CIDRs
  std::vector<std::string> secrets;        // names in the store
  std::string secrets_file;
  std::string ca_file;
};
void AddNetFlags(CLI::App* app, NetFlags* f);

// The limit flags of one command, registered from the table (execution/limit_fields.h):
// those of its LimitUse (kLimitRunFlag, kLimitCallFlag or kLimitCompileFlag), as given.
struct LimitFlags {
  std::vector<std::string> text;  // by index in LimitFields(); empty: not given
  bool Given(std::string_view name) const;
};
void AddLimitFlags(CLI::App* app, LimitUse use, LimitFlags* f);
struct GivenLimit {
  const LimitField* field;
  uint64_t value;
};
// The given flags, parsed in table order; an error reads "--FLAG: why". Bounds are left to
// Limits::Validate and CompileLimits::Validate.
Result<std::vector<GivenLimit>> ParseLimitFlags(const LimitFlags& f);
// The given per-call limits into `l` (fields of CompileLimits are skipped), then validated.
Status ApplyLimitFlags(const LimitFlags& f, Limits* l);

// Makes every repeatable flag of `app` and its subcommands take exactly one value per
// occurrence (`--dir A --dir B`), so a flag never swallows the positionals after it
// (`moat chat --tools-dir X PROMPT`). Called once, after every command is declared.
void OneValuePerFlag(CLI::App* app);
// The named secrets from the store (kInvalidArgument naming a secret the store lacks).
Result<std::vector<net::Secret>> LoadSecrets(const NetFlags& f);

}  // namespace moat
