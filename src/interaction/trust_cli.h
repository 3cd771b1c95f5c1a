// `moat trust`: review, trust or revoke a workspace's own policy; and the question a
// command that runs the agent asks before a workspace's policy may widen anything
// (orchestration/agent/trust.h holds the rule; this file only asks and prints).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "base/result.h"
#include "orchestration/agent/policy.h"
#include "orchestration/agent/trust.h"
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

// Asks on the terminal (/dev/tty) whether to trust a workspace's policy that widens what
// moat allows, listing what it widens; true on yes.
bool AskToTrust(const agent::ResolvedPolicy& r, const std::string& path,
                const std::string& workspace);

}  // namespace moat
