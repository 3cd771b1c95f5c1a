// A workspace: the folder an agent works in, its `.moat/` state, and the user-side state
// kept about it outside the folder (trust records, standing approvals).
//
//   WORKSPACE/.moat/policy.json         the workspace's own policy (applies in full once trusted)
//   WORKSPACE/.moat/system_prompt.md    the system prompt, as data (default: kDefaultSystemPrompt)
//   WORKSPACE/.moat/audit.jsonl         the audit log
//   WORKSPACE/.moat/sessions.db         the session store
//   WORKSPACE/.moat/checkpoints/ID/     what each session's tool calls changed (undo)
//   ~/.config/moat/trust.json           which policy files the user trusts (TrustStore)
//   ~/.local/state/moat/approvals.json  tools the user always allows here (ApprovalStore)
//
// `.moat` is hidden from tools (a default hidden pattern), so nothing a tool does can
// change the policy, the prompt or the records.
#pragma once

#include <map>
#include <string>

#include "base/result.h"
#include "orchestration/agent/policy.h"
#include "orchestration/agent/trust.h"
#include "orchestration/tools/registry.h"

namespace moat::session {

inline constexpr const char* kDefaultSystemPrompt =
    "You are an agent working in the folder /workspace through moat's tools. Tools run in a "
    "sandbox; a refused action is reported as a tool result.";
// The longest system prompt file read (a bigger one is an error, not a silent cut).
inline constexpr size_t kMaxSystemPromptBytes = 64 * 1024;

class Workspace {
 public:
  // The folder must exist and be a directory; its real path is what everything keys on.
  static Result<Workspace> Open(const std::string& folder);

  const std::string& root() const { return root_; }
  std::string state_dir() const { return root_ + "/.moat"; }
  std::string policy_path() const { return state_dir() + "/policy.json"; }
  std::string system_prompt_path() const { return state_dir() + "/system_prompt.md"; }
  std::string audit_path() const { return state_dir() + "/audit.jsonl"; }
  std::string sessions_path() const { return state_dir() + "/sessions.db"; }
  // WORKSPACE/.moat/checkpoints: one folder per session (orchestration/undo/checkpoints.h).
  std::string checkpoints_root() const { return state_dir() + "/checkpoints"; }
  // WORKSPACE/.moat/checkpoints/ID. kInvalidArgument unless `session_id` is a session id as
  // the store makes them (SessionStore::IsSessionId), so no id names another folder.
  Result<std::string> checkpoints_dir(const std::string& session_id) const;
  // Creates `.moat/` (owner only) when it is not there.
  Status EnsureStateDir() const;

  // The user-side files (shared by every workspace, keyed by root()).
  static std::string TrustFile();
  static std::string ApprovalsFile();

  // Which policy applies: `policy_flag` when the user named one (in full), else the
  // workspace's own file, whose widening parts apply only when trusted (trust.h).
  // `path` gets the file that was read.
  Result<agent::ResolvedPolicy> ResolvePolicy(const std::string& policy_flag,
                                              const tools::Registry& registry,
                                              const std::map<std::string, agent::Price>& prices,
                                              agent::PolicyFile* file) const;

  // The system prompt: the workspace's file when there is one (UTF-8, at most
  // kMaxSystemPromptBytes), else the default.
  Result<std::string> SystemPrompt() const;

 private:
  std::string root_;
};

}  // namespace moat::session
