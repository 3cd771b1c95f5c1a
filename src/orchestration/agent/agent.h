// The agent loop: the model decides, moat enforces.
//
// One Run() takes a prompt and loops: a model turn (text streamed out) → for each tool
// call: the loop governor, the tool-call budget, then the ToolGate (tool_gate.h: the tool
// resolved once, the policy decision — a denied tool is never offered; "ask" goes to the
// Approver —, the arguments checked against the tool's schema, the audit record) → the
// admitted calls through the sandbox with the policy's grants and
// limits (fuel and time capped by what is left of the session's budget), up to
// policy.parallel_tools at once; a tool that may write the workspace runs alone, in its
// place in the turn → the results, in the turn's order and cut to a context budget with a
// visible marker, back to the model → the next turn. A tool's failure is a
// result the model sees; a provider's failure ends the run with its reason; budgets and
// the governor end it with theirs. Every budget is checked before each model call (which
// is bounded by what is left) and after each turn, whether it called tools or not. Every model
// call, tool call and stop is an audit record; when the log cannot take one, the run stops
// (StopKind::kAuditFailed) and runs nothing more.
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
#include "orchestration/agent/events.h"
#include "orchestration/agent/policy.h"
#include "orchestration/agent/provider.h"
#include "orchestration/agent/tool_gate.h"
#include "orchestration/tools/registry.h"

namespace moat::agent {

// StopKind, RunSummary and AgentEvent are in events.h; Approver and the per-call path in
// tool_gate.h.

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
  // Where what writing calls change is kept, to undo them (null: nowhere).
  std::shared_ptr<undo::CheckpointStore> checkpoints;
  // Called with each message as it joins the history (the session store).
  std::function<void(const Message&)> on_message;
  // Called with this run's use so far after every model call and every batch of tool
  // calls (the session store), so a killed run's use is not lost.
  std::function<void(const RunSummary&)> on_usage;
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

  ToolGate& gate() { return gate_; }

 private:
  struct Totals;
  class Workers;
  using EventFn = std::function<void(const AgentEvent&)>;
  // Runs the admitted calls at once, each on its own thread, with fuel and time capped by
  // what is left of the session's budget (the fuel shared out between them).
  void RunBatch(std::vector<GateTicket>& batch, const Totals& totals);
  Provider& provider_;
  tools::Registry& registry_;
  const Policy& policy_;
  AgentConfig config_;
  ToolGate gate_;                            // every tool call goes through it
  std::map<std::string, uint32_t> repeats_;  // tool + arguments -> calls
  RunSummary used_;                          // the session's use before this run
  uint32_t no_progress_ = 0;
  bool price_warned_ = false;  // the warning for a model without a known price, once
  // Threads for calls at once, kept between batches: a thread's first sandboxed call sets
  // up its wasm stack, which a fresh thread per call would pay every time.
  std::unique_ptr<Workers> workers_;
};

// `text` cut to `max` bytes on a character boundary, with a marker saying how much of it
// is shown.
std::string BoundResult(const std::string& text, size_t max);

}  // namespace moat::agent
