// "Always allow" answers that outlive a session. They are the user's word, so they live
// in the user's state folder (UserStateDir()/approvals.json), never in the workspace: a
// cloned repository cannot ship approvals, and a file .moat/approvals.json in a workspace
// grants nothing. One file for all workspaces, keyed by the workspace's real path; each
// entry names one tool and is bound to its exact module and manifest (tools::Tool::digest,
// so the capabilities its manifest asks for come with it: a changed module, or an edited
// sidecar manifest, is asked about again).
// `moat approvals ls | rm TOOL` shows and revokes them.
//
//   {"workspaces": {"/home/u/project": [{"tool": "write_file", "tool_digest": "…",
//                                        "granted_at": "2026-01-01T00:00:00Z"}]}}
//
// Changes are read-modify-write under an flock on FILE.lock and replace the file
// atomically, so concurrent moat processes never lose each other's answers.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace moat::agent {

struct StandingApproval {
  std::string tool;
  std::string tool_digest;  // tools::Tool::digest
  std::string granted_at;
};

class ApprovalStore {
 public:
  // UserStateDir()/approvals.json; "" when the user has no home folder.
  static std::string DefaultPath();

  // The approvals of one workspace (its real path). A missing file is an empty store; a
  // malformed one is an error naming the problem.
  static Result<ApprovalStore> Load(const std::string& path, const std::string& workspace);
  // Remembers "always" for the tool's digest in the workspace (replacing an approval of
  // another version of the same tool). Creates the file and its folder (0700) if needed.
  static Status Grant(const std::string& path, const std::string& workspace,
                      const std::string& tool, const std::string& digest);
  // Revokes the tool's approval in the workspace; false when there was none.
  static Result<bool> Revoke(const std::string& path, const std::string& workspace,
                             const std::string& tool);

  bool Allows(const std::string& tool, const std::string& digest) const;
  const std::vector<StandingApproval>& all() const { return entries_; }

 private:
  std::vector<StandingApproval> entries_;
};

}  // namespace moat::agent
