// `moat trust`: review, trust or revoke a workspace's own policy; and the question a
// command that runs the agent asks before a workspace's policy may widen anything
// (orchestration/agent/trust.h holds the rule; this file only asks and prints).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "base/result.h"
#include "orchestration/agent/policy.h"
#include "orchestration/tools/registry.h"

namespace CLI {
class App;
}

namespace moat {

class TrustCommands {
 public:
  explicit TrustCommands(CLI::App* app);
  ~TrustCommands();
  // After parsing: runs `moat trust` when it was given and returns its exit status, else -1.
  int Dispatch();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// The policy an agent run in `workspace` (a real path) applies: `policy_flag` when the user
// named one (applied in full), else the workspace's .moat/policy.json, whose widening
// parts apply only when trusted. An untrusted widening policy is put to the user on the
// terminal when stdin is one (a yes is recorded); otherwise, or on a no, the run goes on
// with the defaults and what the file narrows, and says so on stderr in one line.
Result<agent::Policy> ChooseAgentPolicy(const std::string& workspace,
                                        const std::string& policy_flag,
                                        const tools::Registry& registry,
                                        const std::map<std::string, agent::Price>& user_prices);

}  // namespace moat
