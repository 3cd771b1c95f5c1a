#include "orchestration/agent/events.h"

#include "execution/exec_json.h"

#include "orchestration/agent/session_store.h"

namespace moat::agent {

using json = nlohmann::json;

std::string_view StopKindName(StopKind k) {
  switch (k) {
    case StopKind::kCompleted: return "completed";
    case StopKind::kSteps: return "budget_steps";
    case StopKind::kToolCalls: return "budget_tool_calls";
    case StopKind::kInputTokens: return "budget_input_tokens";
    case StopKind::kOutputTokens: return "budget_output_tokens";
    case StopKind::kCost: return "budget_cost";
    case StopKind::kFuel: return "budget_fuel";
    case StopKind::kWallTime: return "budget_wall_time";
    case StopKind::kGovernor: return "loop_governor";
    case StopKind::kProviderError: return "provider_error";
    case StopKind::kCancelled: return "cancelled";
    case StopKind::kAuditFailed: return "audit_failed";
  }
  return "?";
}

std::string_view EventKindName(AgentEvent::Kind k) {
  using K = AgentEvent::Kind;
  switch (k) {
    case K::kText: return "text";
    case K::kToolStart: return "tool_start";
    case K::kToolEnd: return "tool_end";
    case K::kApprovalRequested: return "approval_requested";
    case K::kApprovalAnswered: return "approval_answered";
    case K::kWarning: return "warning";
    case K::kUsage: return "usage";
    case K::kCompile: return "compile";
    case K::kStop: return "stop";
  }
  return "?";
}

json RunSummaryToJson(const RunSummary& s) {
  return {{"steps", s.steps},
          {"tool_calls", s.tool_calls},
          {"input_tokens", s.input_tokens},
          {"output_tokens", s.output_tokens},
          {"cost_usd", s.cost_usd},
          {"fuel", s.fuel},
          {"wall_us", s.wall_us}};
}

json EventToJson(const AgentEvent& e) {
  using K = AgentEvent::Kind;
  json j = {{"v", kEventVersion}, {"type", std::string(EventKindName(e.kind))}};
  switch (e.kind) {
    case K::kText:
    case K::kWarning: j["text"] = e.text; break;
    case K::kToolStart:
    case K::kApprovalRequested:
      j["call_id"] = e.call_id;
      j["tool"] = e.tool;
      j["arguments"] = e.arguments;
      if (e.kind == K::kApprovalRequested && !e.reason.empty()) j["reason"] = e.reason;
      break;
    case K::kApprovalAnswered:
      j["call_id"] = e.call_id;
      j["tool"] = e.tool;
      j["approval"] = e.approval;
      j["approver"] = e.approver;
      break;
    case K::kToolEnd: {
      j["call_id"] = e.call_id;
      j["tool"] = e.tool;
      j["status"] = e.status;
      j["decision"] = e.decision;
      j["fuel"] = e.fuel;
      j["memory_bytes"] = e.memory;
      j["wall_us"] = e.wall_us;
      j["denials"] = CapabilityEventsToJson(e.denials);
      if (!e.reason.empty()) j["reason"] = e.reason;
      if (!e.untrusted_input.empty()) j["untrusted_input"] = e.untrusted_input;
      if (e.checkpoint > 0 || !e.undoable) {
        j["checkpoint"] = {{"call", e.checkpoint}, {"undoable", e.undoable}};
        if (!e.undo_note.empty()) j["checkpoint"]["reason"] = e.undo_note;
      }
      break;
    }
    case K::kUsage: j["usage"] = RunSummaryToJson(e.usage); break;
    case K::kCompile:
      j["module"] = e.tool;
      j["phase"] = e.status;
      j["wall_us"] = e.wall_us;
      break;
    case K::kStop:
      j["stop"] = std::string(StopKindName(e.stop));
      j["message"] = e.text;
      j["usage"] = RunSummaryToJson(e.usage);
      break;
  }
  return j;
}

json MessageToJson(const Message& m) {
  json j = {{"role", std::string(RoleName(m.role))}, {"content", m.content}};
  if (!m.tool_calls.empty()) {
    j["tool_calls"] = json::array();
    for (const ToolCall& c : m.tool_calls) {
      j["tool_calls"].push_back({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
    }
  }
  if (m.role == Message::Role::kTool) {
    j["tool_call_id"] = m.tool_call_id;
    j["tool_name"] = m.tool_name;
  }
  return j;
}

}  // namespace moat::agent
