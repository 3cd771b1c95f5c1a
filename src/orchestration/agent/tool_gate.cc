#include "orchestration/agent/tool_gate.h"

#include <time.h>

#include <algorithm>
#include <optional>

#include "base/json_text.h"
#include "base/sha256.h"
#include "base/units.h"
#include "execution/exec_json.h"
#include "orchestration/agent/approvals.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

// What a finished call took in from outside the workspace and the user: the URL it was
// asked to fetch (or the tool's network response), each untrusted file it read, the
// external result.
std::vector<TaintSource> SourcesOf(const GateTicket& t) {
  std::vector<TaintSource> out;
  const tools::CallResult& r = t.result;
  std::string at = UtcNowIso();
  auto add = [&](const char* kind, std::string source) {
    out.push_back({kind, std::move(source), t.call.name, t.call.step, at});
  };
  if (r.exec.http_requests > 0) {
    auto url = t.args.find("url");
    if (url != t.args.end() && url->is_string() && !url->get_ref<const std::string&>().empty()) {
      std::string u = url->get<std::string>();
      if (u.size() > 300) {  // cut on a character boundary
        size_t n = 300;
        while (n > 0 && (static_cast<unsigned char>(u[n]) & 0xC0) == 0x80) --n;
        u = u.substr(0, n) + "...";
      }
      add("network", std::move(u));
    } else {
      add("network", "the network response of " + t.call.name.substr(0, 100));
    }
  }
  for (const std::string& path : r.exec.untrusted_reads) add("file", path);
  if (r.untrusted) {
    add("external", r.untrusted_source.empty() ? "the result of " + t.call.name.substr(0, 100)
                                               : r.untrusted_source);
  }
  return out;
}

}  // namespace

std::string TaintText(const TaintSource& s) {
  return "the session read " + s.source + " at step " + std::to_string(s.step);
}

std::string_view HostCodeName(HostCode c) {
  switch (c) {
    case HostCode::kUnknownTool: return "unknown_tool";
    case HostCode::kToolUnavailable: return "tool_unavailable";
    case HostCode::kInvalidArguments: return "invalid_arguments";
    case HostCode::kDenied: return "denied";
    case HostCode::kNotApproved: return "not_approved";
    case HostCode::kAuditFailed: return "audit_failed";
    case HostCode::kNotRun: return "not_run";
    case HostCode::kInvalidLimits: return "invalid_limits";
    case HostCode::kToolFailed: return "tool_failed";
    case HostCode::kBadToolOutput: return "bad_tool_output";
  }
  return "?";
}

std::string_view ApprovalName(Approval a) {
  switch (a) {
    case Approval::kOnce: return "once";
    case Approval::kAlways: return "always";
    case Approval::kDeny: return "deny";
    case Approval::kTimedOut: return "timeout";
  }
  return "?";
}

std::string ErrorText(std::string_view code, std::string_view message) {
  return DumpJson(json({{"ok", false}, {"error", {{"code", code}, {"message", message}}}}));
}

ToolGate::ToolGate(tools::Registry& registry, const Policy& policy, Approver& approver,
                   AuditLog* audit, GateConfig config)
    : registry_(registry),
      policy_(policy),
      approver_(approver),
      audit_(audit),
      config_(std::move(config)) {}

std::string ToolGate::audit_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return audit_error_;
}

bool ToolGate::Audit(json record) {
  if (audit_ == nullptr) return true;
  if (audit_failed()) return false;  // a log that failed once takes nothing more
  auto r = audit_->Append(std::move(record));
  if (r) return true;
  std::lock_guard<std::mutex> lock(mu_);
  if (audit_error_.empty()) audit_error_ = r.error().message;
  audit_failed_.store(true, std::memory_order_release);
  return false;
}

void ToolGate::Refuse(GateTicket* t, std::string_view status, const std::string& message,
                      const EventFn& on_event) {
  t->status = std::string(status);
  t->end.status = t->status;
  t->record["status"] = t->status;
  if (!t->end.decision.empty()) t->record["decision"] = t->end.decision;
  Audit(t->record);
  t->result_text = ErrorText(status, message);
  if (on_event) on_event(t->end);
}

bool ToolGate::Admit(const GateCall& call, std::shared_ptr<const tools::Tool> tool,
                     const EventFn& on_event, const std::shared_ptr<CancelToken>& cancel,
                     GateTicket* t) {
  AgentEvent start;
  start.kind = AgentEvent::Kind::kToolStart;
  start.tool = call.name;
  start.call_id = call.id;
  start.arguments = call.arguments;
  if (on_event) on_event(start);
  t->call = call;
  t->end = start;
  t->end.kind = AgentEvent::Kind::kToolEnd;
  t->end.arguments.clear();
  t->record = {{"type", "tool_call"},
               {"step", call.step},
               {"tool", call.name},
               {"call_id", call.id},
               {"arguments_sha256", Sha256Hex(call.arguments)},
               {"arguments_bytes", call.arguments.size()}};
  json& rec = t->record;
  auto refuse = [&](HostCode code, const std::string& message) {
    Refuse(t, HostCodeName(code), message, on_event);
    return false;
  };
  if (audit_failed()) {
    return refuse(HostCode::kAuditFailed,
                  "the call was not run: the audit log cannot take records");
  }
  if (!tool) {
    std::string why = registry_.LoadError(call.name);
    if (!why.empty()) return refuse(HostCode::kToolUnavailable, why);
    return refuse(HostCode::kUnknownTool,
                  "there is no tool named \"" + call.name.substr(0, 100) + "\"");
  }
  // Which module the call is bound to: a reload after this point does not change it.
  rec["tool_digest"] = tool->digest;
  Decision decision = policy_.DecisionFor(tool->manifest);
  // After untrusted input: at least the policy's after_untrusted decision for what the tool
  // asks for, and the reason on record.
  std::string reason;
  bool raised = false;
  {
    std::vector<TaintSource> taint = this->taint();
    std::string why;
    Decision after =
        taint.empty() ? Decision::kAllow : policy_.DecisionAfterUntrusted(tool->manifest, &why);
    if (after != Decision::kAllow && Stricter(after, decision) == after) {
      raised = true;
      decision = after;
      reason = TaintText(taint.front());
      if (taint.size() > 1) {
        reason += " (and " + std::to_string(taint.size() - 1) + " more untrusted source" +
                  (taint.size() == 2 ? "" : "s") + ")";
      }
      reason += ", and " + call.name.substr(0, 100) + " " + why;
      rec["untrusted_source"] = taint.front().source;
      rec[decision == Decision::kDeny ? "denied_because" : "asked_because"] = reason;
      t->end.reason = reason;
    }
  }
  // Once the session's checkpoints are full, a writing call could not be undone: the
  // policy's checkpoints.when_full decides (at least).
  const bool writes = tool->manifest.capabilities.filesystem == tools::FsAccess::kWrite;
  bool full = false;
  if (writes && config_.checkpoints && policy_.checkpoints_when_full != Decision::kAllow &&
      Stricter(policy_.checkpoints_when_full, decision) != decision &&
      config_.checkpoints->full()) {
    full = true;
    decision = policy_.checkpoints_when_full;
    std::string why = "the session's checkpoints are full (" +
                      std::to_string(config_.checkpoints->files_used()) + " pre-images, " +
                      std::to_string(config_.checkpoints->bytes_used()) +
                      " bytes), so this call could not be undone";
    reason = reason.empty() ? why : reason + "; " + why;
    rec[decision == Decision::kDeny ? "denied_because" : "asked_because"] = reason;
    t->end.reason = reason;
  }
  t->end.decision = std::string(DecisionName(decision));
  if (decision == Decision::kDeny) {
    if (full) return refuse(HostCode::kDenied, "the policy denies " + call.name + ": " + reason);
    if (raised) {
      return refuse(HostCode::kDenied,
                    "the policy denies " + call.name + " after untrusted input: " + reason);
    }
    return refuse(HostCode::kDenied, "the policy denies the tool " + call.name);
  }
  auto parsed = ParseJson(call.arguments);  // bounded in depth (base/json_text.h)
  if (!parsed) {
    return refuse(HostCode::kInvalidArguments, "the arguments are " + parsed.error().message);
  }
  json args = std::move(*parsed);
  if (!args.is_object()) {
    return refuse(HostCode::kInvalidArguments, "the arguments are not a JSON object");
  }
  if (auto s = tool->manifest.schema.Validate(args, cancel ? cancel->flag() : nullptr); !s) {
    return refuse(HostCode::kInvalidArguments, s.error().message);
  }
  if (decision == Decision::kAsk) {
    // An ask raised by untrusted input is answered apart: only an "always" given for it in
    // this session covers it, never one from before the session read that content.
    std::string key = tool->manifest.name + "\n" + tool->digest + (raised ? "\nuntrusted" : "");
    bool session_always;
    {
      std::lock_guard<std::mutex> lock(mu_);
      session_always = always_.count(key) != 0;
    }
    std::optional<ApprovalStore> standing;
    if (!session_always && !raised && !config_.approvals_file.empty()) {
      auto loaded = ApprovalStore::Load(config_.approvals_file, config_.workspace);
      if (loaded) standing = std::move(*loaded);  // a broken file grants nothing
    }
    if (session_always) {
      rec["approver"] = "always (this session)";
    } else if (standing && standing->Allows(tool->manifest.name, tool->digest)) {
      rec["approver"] = "always (" + config_.approvals_file + ")";
    } else {
      AgentEvent asked = start;
      asked.kind = AgentEvent::Kind::kApprovalRequested;
      asked.reason = reason;
      if (on_event) on_event(asked);
      Approval a = approver_.Ask({tool.get(), call.arguments, call.id, reason, cancel});
      rec["approver"] = approver_.name();
      rec["approval"] = std::string(ApprovalName(a));
      AgentEvent answered = start;
      answered.kind = AgentEvent::Kind::kApprovalAnswered;
      answered.arguments.clear();
      answered.approval = std::string(ApprovalName(a));
      answered.approver = approver_.name();
      if (on_event) on_event(answered);
      std::string asked_why = raised ? " (asked because " + reason + ")" : "";
      if (a == Approval::kDeny) {
        return refuse(HostCode::kNotApproved, "the user did not approve this call" + asked_why);
      }
      if (a == Approval::kTimedOut) {
        return refuse(HostCode::kNotApproved,
                      "no answer came in time; the call was not run" + asked_why);
      }
      // Scoped to this tool, its module and its manifest (its capabilities come with them).
      if (a == Approval::kAlways) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          always_.insert(key);
        }
        if (!raised && !config_.approvals_file.empty()) {
          if (auto saved = ApprovalStore::Grant(config_.approvals_file, config_.workspace,
                                                tool->manifest.name, tool->digest);
              !saved) {
            rec["approval_error"] = saved.error().message;
          }
        }
      }
    }
  }

  tools::CallOptions& co = t->options;
  co.workspace = config_.workspace;
  co.extra_mounts = policy_.mounts;
  co.protect = config_.protect;
  co.protect.insert(co.protect.end(), policy_.protect.begin(), policy_.protect.end());
  co.untrusted = policy_.untrusted;
  co.network = policy_.network;
  co.private_networks = policy_.private_networks;
  co.secrets = config_.secrets;
  co.requests_per_minute = policy_.requests_per_minute;
  co.cancel = cancel;
  co.arguments_checked = true;
  if (auto it = policy_.tools.find(call.name); it != policy_.tools.end()) {
    const tools::ToolLimits& l = it->second.limits;
    co.fuel = l.fuel;
    co.memory_bytes = l.memory_bytes;
    co.timeout_us = l.timeout_us;
    co.max_output_bytes = l.max_output_bytes;
  }
  co.fuel = co.fuel.value_or(tool->manifest.limits.fuel.value_or(Limits::kDefaultFuel));
  co.timeout_us =
      co.timeout_us.value_or(tool->manifest.limits.timeout_us.value_or(Limits::kDefaultTimeoutUs));
  // A call runs only once it is on record.
  json started = rec;
  started["type"] = "tool_start";
  started["decision"] = t->end.decision;
  if (!Audit(std::move(started))) {
    return refuse(HostCode::kAuditFailed,
                  "the call was not run: its audit record could not be written");
  }
  if (writes && config_.checkpoints) {
    t->recorder = config_.checkpoints->BeginCall(call.step, call.id, call.name);
    co.preimages = t->recorder;
  }
  t->tool = std::move(tool);
  t->args = std::move(args);
  return true;
}

void ToolGate::Run(GateTicket& t) const { t.result = registry_.Call(t.tool, t.args, t.options); }

void ToolGate::Finish(GateTicket& t, const EventFn& on_event) {
  const tools::CallResult& r = t.result;
  json& rec = t.record;
  t.end.fuel = r.exec.fuel_used;
  t.end.memory = r.exec.peak_memory_bytes;
  t.end.wall_us = r.exec.wall_us;
  t.end.denials = r.exec.denied;
  if (t.end.denials.size() > 16) t.end.denials.resize(16);
  rec["fuel"] = r.exec.fuel_used;
  rec["memory_bytes"] = r.exec.peak_memory_bytes;
  rec["wall_us"] = r.exec.wall_us;
  rec["run_status"] = std::string(RunStatusName(r.exec.status));
  rec["denials"] = CapabilityEventsToJson(t.end.denials);
  // What the call took in from outside taints the session for the calls after it.
  std::vector<TaintSource> sources = SourcesOf(t);
  if (!sources.empty()) {
    json in = json::array();
    std::vector<TaintSource> added;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const TaintSource& src : sources) {
        if (in.size() < kMaxTaintSources) in.push_back(src.source);
        if (t.end.untrusted_input.size() < kMaxTaintSources) {
          t.end.untrusted_input.push_back(src.source);
        }
        if (AddTaintLocked(src)) added.push_back(src);
      }
    }
    rec["untrusted_input"] = std::move(in);
    if (r.exec.untrusted_read_count > r.exec.untrusted_reads.size()) {
      rec["untrusted_reads"] = r.exec.untrusted_read_count;
    }
    if (taint_sink_) {
      for (const TaintSource& src : added) taint_sink_(src);
    }
  }
  t.result_text = DumpJson(r.result);
  t.status = r.ok ? "ok" : r.result["error"].value("code", "error");
  if (r.ok) {
    std::string digest = Sha256Hex(t.result_text);
    std::lock_guard<std::mutex> lock(mu_);
    t.progress = seen_results_.insert(digest).second;
  }
  if (t.recorder) {
    undo::CallCheckpointSummary c = t.recorder->Finish();
    t.end.checkpoint = c.call;
    t.end.undoable = c.undoable;
    t.end.undo_note = c.reason;
    rec["checkpoint"] = {
        {"call", c.call}, {"files", c.files}, {"bytes", c.bytes}, {"undoable", c.undoable}};
    if (!c.undoable) rec["checkpoint"]["reason"] = c.reason;
  }
  t.end.status = t.status;
  rec["status"] = t.status;
  rec["decision"] = t.end.decision;
  Audit(rec);
  if (on_event) on_event(t.end);
}

bool ToolGate::AddTaintLocked(const TaintSource& s) {
  if (taint_.size() >= kMaxTaintSources) return false;
  for (const TaintSource& known : taint_) {
    if (known.kind == s.kind && known.source == s.source) return false;
  }
  taint_.push_back(s);
  return true;
}

std::vector<TaintSource> ToolGate::taint() const {
  std::lock_guard<std::mutex> lock(mu_);
  return taint_;
}

void ToolGate::AddTaint(TaintSource s) {
  std::lock_guard<std::mutex> lock(mu_);
  AddTaintLocked(s);
}

void ToolGate::SetTaintSink(std::function<void(const TaintSource&)> sink) {
  taint_sink_ = std::move(sink);
}

GateTicket ToolGate::Call(const GateCall& call, const EventFn& on_event,
                          const std::shared_ptr<CancelToken>& cancel) {
  GateTicket t;
  if (!Admit(call, Resolve(call.name), on_event, cancel, &t)) return t;
  Run(t);
  Finish(t, on_event);
  return t;
}

}  // namespace moat::agent
