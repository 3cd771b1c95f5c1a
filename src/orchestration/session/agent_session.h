// One agent session, as every front end uses it: open (create or resume), send prompts and
// receive typed events, cancel, answer approvals. Everything a session is put together
// from — the workspace, its policy (and trust), the provider, secrets, the approver, the
// audit log, the session store, the system prompt — is decided here, once, the same way
// for the terminal chat, the HTTP API and the MCP server.
//
// Sessions share a Services and nothing mutable: several run at once in one process, each
// Send on its own thread (one Send at a time per session).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "orchestration/agent/agent.h"
#include "orchestration/agent/session_store.h"
#include "orchestration/session/services.h"
#include "orchestration/session/workspace.h"

namespace moat::session {

// Who answers the calls the policy marks "ask".
enum class ApprovalMode {
  kDenyAll,   // nobody is asked: every such call is not approved
  kAllowAll,  // every such call is approved once
  kApprover,  // `SessionOptions::approver` (a terminal prompt) is asked
  kClient,    // a client answers through AgentSession::Approve (HTTP, MCP), within a timeout
};

struct SessionOptions {
  std::string workspace = ".";
  std::string policy_file;  // named by the user: applies in full; "" = the workspace's own
  ProviderChoice provider;
  std::string resume;                // a session id to continue; "" starts a new one
  std::string sessions_db;           // "" = WORKSPACE/.moat/sessions.db; "none" keeps nothing
  std::string audit_file;            // "" = WORKSPACE/.moat/audit.jsonl; "none" writes no log
  std::vector<std::string> protect;  // added to the defaults (and the policy's)
  bool no_default_protect = false;
  ApprovalMode approval = ApprovalMode::kDenyAll;
  agent::Approver* approver = nullptr;         // kApprover; outlives the session
  uint64_t approval_timeout_us = 300'000'000;  // kClient: no answer in time is a no
  // The workspace's policy widens and is not trusted: asked (a terminal question) whether
  // to trust it now; true records the trust and applies it in full. Unset: not applied.
  std::function<bool(const agent::ResolvedPolicy&, const std::string& path,
                     const std::string& workspace)>
      ask_trust;
  // Things the user should know that are not errors (a policy not applied, and why).
  std::function<void(const std::string&)> on_notice;
  std::string title;  // a new session's title (its first prompt)
  // Keep no checkpoints (nothing the session's tools change can be undone). Checkpoints
  // are kept only for a session in a store (an id to find them by).
  bool no_checkpoints = false;
};

class AgentSession {
 public:
  // kInvalidArgument for what the user or client got wrong, kAudit when the audit log
  // cannot be opened (a broken chain), other codes for the machine's problems.
  static Result<std::unique_ptr<AgentSession>> Open(Services& services, SessionOptions options);
  ~AgentSession();

  // Runs one prompt to its end; events arrive on `on_event` (on this thread, or on a tool
  // thread for calls at once: serialise in the callback if needed). One Send at a time.
  agent::RunSummary Send(const std::string& prompt,
                         const std::function<void(const agent::AgentEvent&)>& on_event);
  // Stops the Send in progress (from any thread, and from a signal handler: it only sets
  // a flag): the model call and the running tools are cancelled, a waiting approval is
  // answered no; the run ends with StopKind::kCancelled.
  void Cancel();
  // kClient mode: the answer to an approval_requested event. kInvalidArgument when no call
  // with that id is waiting.
  Status Approve(const std::string& call_id, agent::Approval answer);

  const std::string& id() const { return id_; }  // "" when no store is kept
  bool resumed() const { return resumed_; }
  const Workspace& workspace() const { return workspace_; }
  const agent::Policy& policy() const { return policy_; }
  const std::string& model() const { return model_; }
  std::string provider_name() const { return provider_->name(); }
  const agent::RunSummary& SessionUse() const { return agent_->SessionUse(); }
  const std::vector<agent::Message>& history() const { return history_; }
  agent::ToolGate& gate() { return agent_->gate(); }

 private:
  class ClientApprover;
  AgentSession() = default;
  void StoreProblem(const Status& s);
  Workspace workspace_;
  agent::Policy policy_;
  std::string model_;
  std::unique_ptr<agent::Provider> provider_;
  std::unique_ptr<agent::Approver> own_approver_;
  ClientApprover* client_approver_ = nullptr;  // own_approver_, in kClient mode
  std::shared_ptr<agent::AuditLog> audit_;
  std::unique_ptr<agent::SessionStore> store_;
  std::string id_;
  bool resumed_ = false;
  int64_t run_row_ = 0;
  std::vector<agent::Message> history_;
  std::unique_ptr<agent::Agent> agent_;
  std::function<void(const std::string&)> on_notice_;
  // The Send in progress's token, for Cancel; the one before stays alive too, so a Cancel
  // that read the pointer just as a Send ended never touches a freed token.
  std::shared_ptr<CancelToken> cancel_, previous_cancel_;
  std::atomic<CancelToken*> current_{nullptr};
};

// The session as the first line of an event stream:
// {"v":1,"type":"session","id":...,"resumed":...,"workspace":...,"provider":...,"model":...}
nlohmann::json SessionToJson(const AgentSession& s);

}  // namespace moat::session
