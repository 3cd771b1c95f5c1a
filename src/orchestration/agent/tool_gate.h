// The one path every tool call takes, from any client (the agent loop, the MCP server, the
// HTTP API): resolve the tool once, check the arguments once, the policy's decision, the
// approval, the limits merge, the run of the very module that was resolved, the audit
// records. Nothing a client does can skip a step or reorder them.
//
//   Admit   (the caller's thread, in the order the calls came): tool_start event; the tool
//           resolved (a reload later cannot swap what runs); policy decision; arguments
//           parsed and checked against the schema; "ask" goes to the Approver (events
//           approval_requested / approval_answered); limits merged; the "tool_start" audit
//           record written. A refusal is final: its record and tool_end event are out.
//   Run     (any thread): the resolved module through the sandbox.
//   Finish  (the caller's thread): the "tool_call" audit record and the tool_end event.
//
// A call runs only once it is on record: when the audit log cannot take a record, the call
// is refused with audit_failed and `audit_failed()` turns true, so the caller stops.
//
// Untrusted input raises the bar. A call whose run took in content from outside the
// workspace and the user (it made HTTP requests, read a file the policy marks untrusted,
// or its result says it came from an external server) taints the session from Finish on;
// every later call gets at least the policy's `after_untrusted` decision for what the tool
// asks for (Policy::DecisionAfterUntrusted), and its approval request, tool_end event and
// audit records say why ("the session read URL at step N"). Such an ask is answered per
// session: standing approvals from before do not cover it, and "always" holds for this
// session only.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "execution/net/secret_store.h"
#include "orchestration/agent/audit.h"
#include "orchestration/agent/events.h"
#include "orchestration/agent/policy.h"
#include "orchestration/tools/registry.h"
#include "orchestration/undo/checkpoints.h"

namespace moat::agent {

// Host-side outcomes of a call: what the gate (not the tool) decided. A call's status is
// one of these, "ok", a run status the sandbox ended it with (trap, fuel_exhausted,
// timeout, memory_limit, output_limit, cancelled, ...; execution/outcome.h), or an error
// code of the tool's own (see the tool codes in the README).
enum class HostCode {
  kUnknownTool,       // no tool by that name
  kToolUnavailable,   // a tool by that name failed to load
  kInvalidArguments,  // not JSON, not an object, or against the tool's schema
  kDenied,            // the policy denies the tool
  kNotApproved,       // "ask", and the answer was no (or none came in time)
  kAuditFailed,       // the audit log could not take the call's record: not run
  kNotRun,            // the run stopped before the call's turn came
  kInvalidLimits,     // the merged limits are not valid
  kToolFailed,        // the tool exited non-zero without a result
  kBadToolOutput,     // the tool's output is not the contract's JSON
};
std::string_view HostCodeName(HostCode c);

struct ApprovalRequest {
  const tools::Tool* tool = nullptr;
  std::string arguments;  // as the model wrote them
  std::string call_id;
  std::string reason;  // why it is asked beyond the tool's own decision (untrusted input)
  std::shared_ptr<CancelToken> cancel;  // the run's: no answer is waited for past it
};
enum class Approval { kOnce, kAlways, kDeny, kTimedOut };
std::string_view ApprovalName(Approval a);

// Decides "ask" calls: a prompt on a terminal, an answer from a client (AgentSession's
// asynchronous approver), or a fixed answer for non-interactive runs. May be called from
// several threads at once.
class Approver {
 public:
  virtual ~Approver() = default;
  virtual Approval Ask(const ApprovalRequest& request) = 0;
  virtual std::string name() const = 0;  // recorded in the audit log as the approver
};

// Always the same answer ("--approve all" / "--approve none").
class FixedApprover : public Approver {
 public:
  explicit FixedApprover(bool allow) : allow_(allow) {}
  Approval Ask(const ApprovalRequest&) override {
    return allow_ ? Approval::kOnce : Approval::kDeny;
  }
  std::string name() const override { return allow_ ? "auto-approve" : "auto-deny"; }

 private:
  bool allow_;
};

// Content a session took in from outside the workspace and the user.
struct TaintSource {
  std::string kind;    // "network", "file" or "external"
  std::string source;  // the URL requested, the file's path, or "the result of TOOL"
  std::string tool;    // the tool whose run took it in
  uint64_t step = 0;   // the agent step of that call
  std::string at;      // when (UTC, ISO 8601)
};
// "the session read https://example.com/page at step 2".
std::string TaintText(const TaintSource& s);
// How many sources a session keeps (the first ones, each once); later ones change nothing.
inline constexpr size_t kMaxTaintSources = 64;

// What one session grants every call, beyond the policy.
struct GateConfig {
  std::string workspace;  // host folder mounted at /workspace
  // Paths tools may read but never change (the user's flags; the policy's `protect` adds).
  std::vector<std::string> protect = DefaultProtectedPatterns();
  std::vector<net::Secret> secrets;  // the policy's secrets, from the store
  // The user's store of "always" answers that outlive a session (ApprovalStore, keyed by
  // `workspace`; "" = this session only).
  std::string approvals_file;
  // Where the session keeps what its writing calls change, to undo them; null: nowhere.
  std::shared_ptr<undo::CheckpointStore> checkpoints;
};

struct GateCall {
  std::string id;         // the model's (or client's) call id
  std::string name;       // the tool
  std::string arguments;  // JSON text as written (may be invalid)
  uint64_t step = 0;      // the agent step it belongs to (audit)
};

// A call on its way through the gate.
struct GateTicket {
  GateCall call;
  size_t index = 0;                         // the caller's bookkeeping (a turn's order)
  std::shared_ptr<const tools::Tool> tool;  // resolved once: the module that runs
  nlohmann::json args;
  tools::CallOptions options;  // merged limits and grants; a caller may lower fuel/time
  nlohmann::json record;       // the audit record so far
  AgentEvent end;              // the tool_end event so far
  tools::CallResult result;    // after Run
  std::string status;          // after a refusal or Finish
  std::string result_text;     // the contract's JSON text (an ok result or an error)
  bool progress = false;       // Finish: an ok result not seen before in this gate
  // The call's checkpoint (a tool that may write, in a session that keeps them).
  std::shared_ptr<undo::CallRecorder> recorder;
};

class ToolGate {
 public:
  using EventFn = std::function<void(const AgentEvent&)>;
  ToolGate(tools::Registry& registry, const Policy& policy, Approver& approver, AuditLog* audit,
           GateConfig config);

  // The tool a name resolves to now (null when none), for a caller that must know before
  // admitting (the agent runs a writing tool alone).
  std::shared_ptr<const tools::Tool> Resolve(const std::string& name) const {
    return registry_.Find(name);
  }
  // True: admitted, `t` is ready to Run. False: refused, and `t->status`/`t->result_text`
  // say why (its record and tool_end event are already out). `tool` is Resolve(name).
  bool Admit(const GateCall& call, std::shared_ptr<const tools::Tool> tool, const EventFn& on_event,
             const std::shared_ptr<CancelToken>& cancel, GateTicket* t);
  // Runs the resolved module with the ticket's options. Any thread.
  void Run(GateTicket& t) const;
  // Records the outcome (the "tool_call" record) and emits tool_end.
  void Finish(GateTicket& t, const EventFn& on_event);
  // Admit, Run and Finish in one (a client without turns: MCP, the benchmarks).
  GateTicket Call(const GateCall& call, const EventFn& on_event,
                  const std::shared_ptr<CancelToken>& cancel);

  // Whether an audit append failed (the caller stops: the gate runs nothing more), and the
  // first failure's message.
  bool audit_failed() const { return audit_failed_.load(std::memory_order_acquire); }
  std::string audit_error() const;
  // Appends a record of the caller's own (run start and end, model calls) with the same
  // fail-closed rule. False when it could not be written.
  bool Audit(nlohmann::json record);

  const Policy& policy() const { return policy_; }
  const GateConfig& config() const { return config_; }

  // The untrusted content the session has taken in, oldest first (empty: untainted).
  std::vector<TaintSource> taint() const;
  // Marks the session tainted by `s` (a resumed session's recorded sources); the sink is
  // not called. A source already known, or one past kMaxTaintSources, is dropped.
  void AddTaint(TaintSource s);
  // Called (on Finish's thread) with each source a call adds, to keep it (session store).
  void SetTaintSink(std::function<void(const TaintSource&)> sink);

 private:
  void Refuse(GateTicket* t, std::string_view status, const std::string& message,
              const EventFn& on_event);
  tools::Registry& registry_;
  const Policy& policy_;
  Approver& approver_;
  AuditLog* audit_;
  GateConfig config_;
  mutable std::mutex mu_;
  std::set<std::string> always_;        // tool + digest approved "always" in this session
  std::set<std::string> seen_results_;  // digests of ok results so far
  std::vector<TaintSource> taint_;      // untrusted input taken in so far
  std::function<void(const TaintSource&)> taint_sink_;
  bool AddTaintLocked(const TaintSource& s);  // false: known already, or no room
  std::string audit_error_;
  std::atomic<bool> audit_failed_{false};
};

// The contract's error object as JSON text.
std::string ErrorText(std::string_view code, std::string_view message);

}  // namespace moat::agent
