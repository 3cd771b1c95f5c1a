// Pieces the `moat` subcommands share: usage errors and the spelling of mounts and env.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "execution/exec.h"

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

// The network flags `moat run` and `moat tools call` share.
struct NetFlags {
  std::vector<std::string> allow_net;      // egress rules
  std::vector<std::string> allow_private;  // CIDRs
  std::vector<std::string> secrets;        // names in the store
  std::string secrets_file;
  std::string max_requests, max_request, max_request_total, max_response, max_response_total;
  std::string http_timeout;
  std::string ca_file;
};
void AddNetFlags(CLI::App* app, NetFlags* f);

// Makes every repeatable flag of `app` and its subcommands take exactly one value per
// occurrence (`--dir A --dir B`), so a flag never swallows the positionals after it
// (`moat chat --tools-dir X PROMPT`). Called once, after every command is declared.
void OneValuePerFlag(CLI::App* app);
// The flags' limits into `l`, and the named secrets from the store (kInvalidArgument
// naming a secret the store lacks).
Status ApplyNetLimits(const NetFlags& f, Limits* l);
Result<std::vector<net::Secret>> LoadSecrets(const NetFlags& f);

}  // namespace moat
