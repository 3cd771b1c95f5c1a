// What an agent run tells its front end, as typed values with one versioned JSON form.
//
// Every front end (the terminal chat, `moat chat --json`, the HTTP event stream, MCP
// progress) consumes the same AgentEvent stream; the JSON form (EventToJson) is the wire
// format, stable within a version ("v": 1). Codecs for the other values a front end shows
// (messages, run summaries) live here too, beside their types, never in a CLI file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "execution/exec.h"
#include "orchestration/agent/provider.h"

namespace moat::agent {

inline constexpr int kEventVersion = 1;

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
  kAuditFailed,  // the audit log could not take a record: the run stops (fails closed)
};
std::string_view StopKindName(StopKind k);

// A run's use (or a session's, summed over its runs).
struct RunSummary {
  StopKind stop = StopKind::kCompleted;
  std::string message;
  uint64_t steps = 0, tool_calls = 0, input_tokens = 0, output_tokens = 0, fuel = 0;
  double cost_usd = 0;
  uint64_t wall_us = 0;
};

struct AgentEvent {
  enum class Kind {
    kText,               // model text as it streams
    kToolStart,          // a call the model made, before anything is decided
    kToolEnd,            // its outcome: status, decision, what it used and was denied
    kApprovalRequested,  // the policy says "ask": a front end shows it and answers
    kApprovalAnswered,   // the answer, and who gave it
    kWarning,
    kUsage,    // the run's use so far, after each model call and batch of tool calls
    kCompile,  // a module the run waits for is being compiled: `tool` (the module), `status`
               // (translating, compiling, done, failed), `wall_us` so far
    kStop,     // the run ended: `stop` and `usage` say why and what it used
  };
  Kind kind = Kind::kText;
  std::string text;  // streamed text, a warning, or why the run stopped
  std::string tool;
  std::string call_id;  // pairs a call's events when calls run at once
  std::string arguments;
  std::string status;    // kToolEnd: "ok", a host code (ToolGate) or the tool's own code
  std::string decision;  // kToolEnd: allow, ask, deny
  uint64_t fuel = 0, memory = 0, wall_us = 0;
  std::vector<CapabilityEvent> denials;  // kToolEnd: what the sandbox refused the tool
  std::string approval;                  // kApprovalAnswered: once, always, deny, timeout
  std::string approver;                  // kApprovalAnswered
  // kApprovalRequested, kToolEnd: why the decision was raised above the tool's own (the
  // session read untrusted content: what, and at which step); "" when it was not.
  std::string reason;
  // kToolEnd of a tool that may write, in a session that keeps checkpoints: the call's
  // number among them (0: none kept), whether it can be undone, and why not.
  uint64_t checkpoint = 0;
  bool undoable = true;
  std::string undo_note;
  // kToolEnd: the untrusted content the call took in (URLs, file paths), if any.
  std::vector<std::string> untrusted_input;
  StopKind stop = StopKind::kCompleted;  // kStop
  RunSummary usage;                      // kUsage, kStop
};
std::string_view EventKindName(AgentEvent::Kind k);

// The versioned JSON form of an event: {"v":1,"type":"tool_end",...}. Only the fields
// that belong to the kind are present.
nlohmann::json EventToJson(const AgentEvent& e);
nlohmann::json RunSummaryToJson(const RunSummary& s);

// A message as stored and exported: {"role":..., "content":..., "tool_calls":[...], ...}.
// The role's name is session_store.h's RoleName.
nlohmann::json MessageToJson(const Message& m);

}  // namespace moat::agent
