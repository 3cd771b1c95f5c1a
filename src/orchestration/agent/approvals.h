// "Always allow" answers that outlive a session: WORKSPACE/.moat/approvals.json, one entry
// per tool, bound to the exact module (its sha256, so the capabilities its manifest asks
// for come with it: a changed module is asked about again). `moat approvals ls | rm TOOL`
// shows and revokes them. Hidden from tools with the rest of .moat.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace moat::agent {

struct StandingApproval {
  std::string tool;
  std::string module_sha256;
  std::string granted_at;
};

class ApprovalStore {
 public:
  // A missing file is an empty store; a malformed one is an error naming the problem.
  static Result<ApprovalStore> Load(const std::string& path);
  Status Save(const std::string& path) const;

  bool Allows(const std::string& tool, const std::string& sha256) const;
  void Add(const std::string& tool, const std::string& sha256);
  bool Remove(const std::string& tool);  // false when there was none
  const std::vector<StandingApproval>& all() const { return entries_; }

 private:
  std::vector<StandingApproval> entries_;
};

}  // namespace moat::agent
