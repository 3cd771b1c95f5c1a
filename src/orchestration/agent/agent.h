// The agent loop: the model decides, moat enforces.
//
// One Run() takes a prompt and loops: a model turn (text streamed out) → for each tool
// call: the loop governor, the tool-call budget, the policy decision (a denied tool is
// never offered; "ask" goes to the Approver), the arguments parsed and checked against the
// tool's schema → the accepted calls through the sandbox with the policy's grants and
// limits (fuel and time capped by what is left of the session's budget), up to
// policy.parallel_tools at once; a tool that may write the workspace runs alone, in its
// place in the turn → the results, in the turn's order and cut to a context budget with a
// visible marker, back to the model → the next turn. A tool's failure is a
// result the model sees; a provider's failure ends the run with its reason; budgets and
// the governor end it with theirs. Every budget is checked before each model call (which
// is bounded by what is left) and after each turn, whether it called tools or not. Every model
// call, tool call and stop is an audit record.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "execution/exec.h"
#include "orchestration/agent/audit.h"
#include "orchestration/agent/policy.h"
#include "orchestration/agent/provider.h"
#include "orchestration/tools/registry.h"

namespace moat::agent {

// Why a run ended.
enum class StopKind {
  kCompleted,  // the model answered without calling a tool
  kSteps,
  kToolCalls,
  kInputTokens,
  kOutputTokens,
  kCost,
  kFuel,
  kWallTime,
  kGovernor,
  kProviderError,
  kCancelled,
};
std::string_view StopKindName(StopKind k);

struct ApprovalRequest {
  const tools::Tool* tool = nullptr;
  std::string arguments;  // as the model wrote them
};
enum class Approval { kOnce, kAlways, kDeny };

// Decides "ask" calls: a prompt on a terminal, a hook for other front ends, or a fixed
// answer for non-interactive runs.
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

struct AgentEvent {
  enum class Kind { kText, kToolStart, kToolEnd, kWarning, kStop };
  Kind kind = Kind::kText;
  std::string text;  // streamed text, a warning, or why the run stopped
  std::string tool;
  std::string call_id;  // kToolStart/kToolEnd: pairs them when calls run at once
  std::string arguments;
  std::string status;    // kToolEnd: "ok", an error code, "denied", "not_approved"...
  std::string decision;  // kToolEnd: allow, ask, deny
  uint64_t fuel = 0, memory = 0, wall_us = 0;
};

struct RunSummary;

struct AgentConfig {
  std::string model;
  std::string system_prompt;
  std::string workspace;  // host folder mounted at /workspace
  // Paths tools may read but never change (the user's flags; the policy's `protect` adds).
  std::vector<std::string> protect = DefaultProtectedPatterns();
  std::vector<net::Secret> secrets;     // the policy's secrets, from the store
  size_t max_result_bytes = 16 * 1024;  // of one tool result given to the model
  // The user's store of "always" answers that outlive a session (ApprovalStore, keyed by
  // `workspace`; "" = this session only).
  std::string approvals_file;
  // Called with each message as it joins the history (the session store).
  std::function<void(const Message&)> on_message;
  // Called with this run's use so far after every model call and every batch of tool
  // calls (the session store), so a killed run's use is not lost.
  std::function<void(const RunSummary&)> on_usage;
};

struct RunSummary {
  StopKind stop = StopKind::kCompleted;
  std::string message;
  uint64_t steps = 0, tool_calls = 0, input_tokens = 0, output_tokens = 0, fuel = 0;
  double cost_usd = 0;
  uint64_t wall_us = 0;
};

class Agent {
 public:
  Agent(Provider& provider, tools::Registry& registry, const Policy& policy, Approver& approver,
        AuditLog* audit, AgentConfig config);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Runs until the model stops calling tools or a limit ends it. `history` holds the
  // conversation so far and gets this run's messages appended.
  RunSummary Run(std::vector<Message>& history, const std::string& prompt,
                 const std::function<void(const AgentEvent&)>& on_event,
                 const std::shared_ptr<CancelToken>& cancel);

  // Budgets hold for the whole session: each Run() goes on from what the earlier runs
  // of this Agent used, and from `earlier` (a resumed session's recorded runs).
  void CountEarlierUse(const RunSummary& earlier);
  const RunSummary& SessionUse() const { return used_; }

  // Tools offered to the model: every registered tool the policy does not deny.
  std::vector<ToolSpec> OfferedTools() const;

 private:
  struct Totals;
  struct Pending;
  class Workers;
  using EventFn = std::function<void(const AgentEvent&)>;
  void Audit(nlohmann::json record);
  // On the loop's thread: the tool (`tool`, looked up once by the caller; null when there
  // is none), the policy, the arguments and the approval. A refused call comes back as its
  // result message; an accepted one fills `pending`.
  std::optional<Message> Prepare(const ToolCall& call, std::shared_ptr<const tools::Tool> tool,
                                 size_t index, uint64_t step, const EventFn& on_event,
                                 const std::shared_ptr<CancelToken>& cancel, Pending* pending);
  // Runs the calls at once, each on its own thread, with fuel and time capped by what is
  // left of the session's budget (the fuel shared out between them).
  void RunBatch(std::vector<Pending>& batch, const Totals& totals);
  // On the loop's thread, in the turn's order: totals, the audit record, the event.
  Message Finish(Pending& p, Totals& totals, const EventFn& on_event, bool* progress);
  Provider& provider_;
  tools::Registry& registry_;
  const Policy& policy_;
  Approver& approver_;
  AuditLog* audit_;
  AgentConfig config_;
  std::set<std::string> always_;             // tools approved "always" this session
  std::map<std::string, uint32_t> repeats_;  // tool + arguments -> calls
  std::set<std::string> seen_results_;       // digests of results so far
  RunSummary used_;                          // the session's use before this run
  uint32_t no_progress_ = 0;
  bool price_warned_ = false;  // the warning for a model without a known price, once
  std::string audit_error_;    // the first failure to write the log
  // Threads for calls at once, kept between batches: a thread's first sandboxed call sets
  // up its wasm stack, which a fresh thread per call would pay every time.
  std::unique_ptr<Workers> workers_;
};

// `text` cut to `max` bytes on a character boundary, with a marker saying how much of it
// is shown.
std::string BoundResult(const std::string& text, size_t max);

}  // namespace moat::agent
