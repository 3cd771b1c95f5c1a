// A workspace's policy: what the agent's tools may do there, and how long it may run.
//
// The file is JSON (by default WORKSPACE/.moat/policy.json; every field optional):
//   {
//     "tools":   {"write_file": "allow", "http_fetch": "deny", "js": {"decision": "ask",
//                 "fuel": "5e9", "memory": "128M", "timeout": "20s", "max_output": "1M"}},
//     "mounts":  ["/data/ref::/ref:ro"],                  // beside the workspace
//     "network": ["https://api.example.com/v1"],          // egress rules granted to tools
//     "private_networks": ["10.1.0.0/16"],
//     "secrets": ["API_KEY"],                             // names in the secret store
//     "protect": ["build/release"],                       // read-only, beside .git
//     "requests_per_minute": 60,                          // per tool
//     "parallel_tools": 4,                                // calls of one turn at once
//     "budgets": {"steps": 30, "tool_calls": 60, "input_tokens": 2000000,
//                 "output_tokens": 100000, "cost_usd": 2.5, "fuel": "1e11",
//                 "wall_time": "15m"},
//     "governor": {"repeat_warn": 3, "repeat_stop": 5, "no_progress_warn": 6,
//                  "no_progress_stop": 10},
//     "prices": {"my-model": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
//     "checkpoints": {"max_bytes": "512M", "max_files": 10000, "when_full": "allow"},
//     "untrusted": ["downloads/**", "*.eml"],             // files from outside
//     "after_untrusted": {"network": "ask", "write": "allow", "secrets": "allow"}
//   }
// A tool's decision defaults by what its manifest asks for: network → ask, writing the
// filesystem → ask, else allow. A denied tool is not offered to the model at all. Every
// problem in the file is kInvalidArgument naming the field. A workspace's own policy file
// widens nothing until the user trusts it (trust.h).
//
// Untrusted input raises the bar: once a session has taken in content from outside the
// workspace and the user (a network response, a file matching `untrusted`), a tool that
// uses the network gets at least the `after_untrusted` network decision, one that may
// write the workspace at least `write`, one that names secrets at least `secrets`
// (defaults: ask, allow, allow); the strictest of those and the tool's own applies.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "execution/exec.h"
#include "orchestration/agent/audit.h"
#include "orchestration/tools/manifest.h"
#include "orchestration/undo/checkpoints.h"

namespace moat::agent {

enum class Decision { kAllow, kAsk, kDeny };
std::string_view DecisionName(Decision d);

struct Budgets {
  uint64_t steps = 40;  // model turns
  uint64_t tool_calls = 100;
  uint64_t input_tokens = 4'000'000;
  uint64_t output_tokens = 400'000;
  double cost_usd = 5.0;                 // 0: no cost limit
  uint64_t fuel = 1'000'000'000'000ull;  // all tool runs together
  uint64_t wall_time_us = 30ull * 60 * 1'000'000;
};

struct GovernorOptions {
  // The same tool with the same arguments: a warning to the model at `repeat_warn`
  // calls, the run stops at `repeat_stop`.
  uint32_t repeat_warn = 3;
  uint32_t repeat_stop = 5;
  // Steps in a row in which no tool call succeeded with a result not seen before.
  uint32_t no_progress_warn = 6;
  uint32_t no_progress_stop = 10;
};

struct Price {
  double input_per_mtok = 0;  // USD per million tokens
  double output_per_mtok = 0;
};

// What a model without a known price costs: the dearest built-in price, so an unknown
// model is never free and the cost budget holds for it too.
inline constexpr Price kUnknownModelPrice{15.0, 75.0};

// The stricter of two decisions (deny over ask over allow).
Decision Stricter(Decision a, Decision b);

// The least decision a tool gets once the session has read untrusted content, by what the
// tool's manifest asks for.
struct AfterUntrusted {
  Decision network = Decision::kAsk;
  Decision write = Decision::kAllow;
  Decision secrets = Decision::kAllow;
};

struct ToolRule {
  std::optional<Decision> decision;
  tools::ToolLimits limits;
};

struct Policy {
  std::map<std::string, ToolRule> tools;
  std::vector<Mount> mounts;
  std::vector<std::string> network;
  std::vector<std::string> private_networks;
  std::vector<std::string> secrets;
  // Patterns of paths tools may read but never change, added to the default (.git).
  std::vector<std::string> protect;
  uint32_t requests_per_minute = 0;
  // How many of one turn's calls run at once (1: one after another). A tool that may
  // write the workspace always runs alone, in its place in the turn.
  uint32_t parallel_tools = 4;
  Budgets budgets;
  GovernorOptions governor;
  std::map<std::string, Price> prices;
  // "checkpoints": {"max_bytes": "512M", "max_files": 10000, "when_full": "allow"}: what
  // a session keeps to undo its calls (orchestration/undo/checkpoints.h), and the decision
  // for a tool that may write once that is full (its changes could not be undone).
  undo::CheckpointLimits checkpoints;
  Decision checkpoints_when_full = Decision::kAllow;
  // "audit": {"sync": "group" | "always"}: how the audit log is made durable (audit.h).
  AuditSync audit_sync = AuditSync::kGroup;
  // Patterns of paths (hidden-path syntax, execution/exec.h) whose content is untrusted:
  // a tool that reads one taints the session.
  std::vector<std::string> untrusted;
  AfterUntrusted after_untrusted;

  static Result<Policy> Parse(std::string_view json_text);
  // A missing file is the default policy.
  static Result<Policy> Load(const std::string& path);

  Decision DecisionFor(const tools::ToolManifest& m) const;
  // The least decision `after_untrusted` gives the tool in a tainted session (allow when it
  // asks for none of network, writing, secrets); `why`, when not null, gets what raised it
  // ("uses the network", "may write the workspace", "names secrets", joined).
  Decision DecisionAfterUntrusted(const tools::ToolManifest& m, std::string* why = nullptr) const;
  // The model's price: the policy's table, then the built-in one (the offline "scripted"
  // model is free); nullopt when neither knows it.
  std::optional<Price> KnownPrice(const std::string& model) const;
  // What a run counts: the known price, else kUnknownModelPrice. Also the floor a
  // workspace's price is reviewed against (trust.h): pricing an unknown model below the
  // default is a widening like any other.
  Price PriceOf(const std::string& model) const;
};

}  // namespace moat::agent
