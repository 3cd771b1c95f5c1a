#include "orchestration/agent/agent.h"

#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <latch>
#include <mutex>
#include <thread>

#include "base/sha256.h"
#include "orchestration/agent/approvals.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

uint64_t NowUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000ull + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

std::string Digest(std::string_view s) {
  return ToHex(
      Sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size())));
}

size_t Utf8Cut(const std::string& s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

Message ToolMessage(const ToolCall& call, std::string content) {
  Message m;
  m.role = Message::Role::kTool;
  m.tool_call_id = call.id;
  m.tool_name = call.name;
  m.content = std::move(content);
  return m;
}

std::string ErrorText(std::string_view code, std::string_view message) {
  return json({{"ok", false}, {"error", {{"code", code}, {"message", message}}}}).dump();
}

}  // namespace

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
  }
  return "?";
}

std::string BoundResult(const std::string& text, size_t max) {
  if (text.size() <= max) return text;
  size_t n = Utf8Cut(text, max);
  return text.substr(0, n) + "\n[moat: result truncated: " + std::to_string(n) + " of " +
         std::to_string(text.size()) + " bytes shown]";
}

struct Agent::Totals {
  RunSummary s;
  uint64_t start_us = 0;
  std::optional<StopKind> stop;
  std::string stop_message;
};

// A few threads that run a batch's calls beside the loop's thread.
class Agent::Workers {
 public:
  ~Workers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  // Runs jobs[0] on the calling thread and the others on workers; returns when all ended.
  void Run(const std::vector<std::function<void()>>& jobs) {
    if (jobs.empty()) return;
    std::latch done(static_cast<std::ptrdiff_t>(jobs.size() - 1));
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 1; i < jobs.size(); ++i) {
        queue_.push_back([&job = jobs[i], &done] {
          job();
          done.count_down();
        });
      }
      while (threads_.size() + 1 < jobs.size()) threads_.emplace_back([this] { Loop(); });
    }
    cv_.notify_all();
    jobs[0]();
    done.wait();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      std::function<void()> job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
};

Agent::~Agent() = default;

void Agent::CountEarlierUse(const RunSummary& earlier) {
  used_.steps += earlier.steps;
  used_.tool_calls += earlier.tool_calls;
  used_.input_tokens += earlier.input_tokens;
  used_.output_tokens += earlier.output_tokens;
  used_.cost_usd += earlier.cost_usd;
  used_.fuel += earlier.fuel;
  used_.wall_us += earlier.wall_us;
}

Agent::Agent(Provider& provider, tools::Registry& registry, const Policy& policy,
             Approver& approver, AuditLog* audit, AgentConfig config)
    : provider_(provider),
      registry_(registry),
      policy_(policy),
      approver_(approver),
      audit_(audit),
      config_(std::move(config)) {}

void Agent::Audit(json record) {
  if (audit_ == nullptr) return;
  auto r = audit_->Append(std::move(record));
  if (!r && audit_error_.empty()) audit_error_ = r.error().message;
}

std::vector<ToolSpec> Agent::OfferedTools() const {
  std::vector<ToolSpec> out;
  for (const auto& t : registry_.List()) {
    if (policy_.DecisionFor(t->manifest) == Decision::kDeny) continue;
    out.push_back({t->manifest.name, t->manifest.description, t->manifest.arguments});
  }
  return out;
}

struct Agent::Pending {
  size_t index = 0;  // the call's place in the turn
  ToolCall call;
  std::shared_ptr<const tools::Tool> tool;
  json args;
  tools::CallOptions options;
  json record;  // the audit record so far
  AgentEvent end;
  tools::CallResult result;
};

std::optional<Message> Agent::Prepare(const ToolCall& call, std::shared_ptr<const tools::Tool> tool,
                                      size_t index, uint64_t step, const EventFn& on_event,
                                      const std::shared_ptr<CancelToken>& cancel, Pending* p) {
  AgentEvent start;
  start.kind = AgentEvent::Kind::kToolStart;
  start.tool = call.name;
  start.call_id = call.id;
  start.arguments = call.arguments;
  if (on_event) on_event(start);
  p->index = index;
  p->call = call;
  p->end = start;
  p->end.kind = AgentEvent::Kind::kToolEnd;
  p->record = {{"type", "tool_call"},
               {"step", step},
               {"tool", call.name},
               {"call_id", call.id},
               {"arguments_sha256", Digest(call.arguments)},
               {"arguments_bytes", call.arguments.size()}};
  json& rec = p->record;
  auto refuse = [&](const std::string& status, const std::string& message) {
    p->end.status = status;
    rec["status"] = status;
    if (!p->end.decision.empty()) rec["decision"] = p->end.decision;
    Audit(rec);
    if (on_event) on_event(p->end);
    return ToolMessage(call, BoundResult(ErrorText(status, message), config_.max_result_bytes));
  };

  if (!tool) {
    return refuse("unknown_tool", "there is no tool named \"" + call.name.substr(0, 100) + "\"");
  }
  Decision decision = policy_.DecisionFor(tool->manifest);
  p->end.decision = std::string(DecisionName(decision));
  if (decision == Decision::kDeny)
    return refuse("denied", "the policy denies the tool " + call.name);
  json args = json::parse(call.arguments, nullptr, false);
  if (args.is_discarded() || !args.is_object()) {
    return refuse("invalid_arguments", "the arguments are not a JSON object");
  }
  if (auto s = tool->manifest.schema.Validate(args); !s) {
    return refuse("invalid_arguments", s.error().message);
  }
  if (decision == Decision::kAsk) {
    std::optional<ApprovalStore> standing;
    if (!config_.approvals_file.empty()) {
      auto loaded = ApprovalStore::Load(config_.approvals_file);
      if (loaded) standing = std::move(*loaded);  // a broken file grants nothing
    }
    if (always_.count(tool->manifest.name + "\n" + tool->sha256) != 0) {
      rec["approver"] = "always (this session)";
    } else if (standing && standing->Allows(tool->manifest.name, tool->sha256)) {
      rec["approver"] = "always (" + config_.approvals_file + ")";
    } else {
      Approval a = approver_.Ask({tool.get(), call.arguments});
      rec["approver"] = approver_.name();
      rec["approval"] = a == Approval::kDeny ? "deny" : a == Approval::kAlways ? "always" : "once";
      if (a == Approval::kDeny) return refuse("not_approved", "the user did not approve this call");
      // Scoped to this tool and this module (its capabilities come with it).
      if (a == Approval::kAlways) {
        always_.insert(tool->manifest.name + "\n" + tool->sha256);
        if (standing) {
          standing->Add(tool->manifest.name, tool->sha256);
          if (auto saved = standing->Save(config_.approvals_file); !saved) {
            rec["approval_error"] = saved.error().message;
          }
        }
      }
    }
  }

  tools::CallOptions& co = p->options;
  co.workspace = config_.workspace;
  co.extra_mounts = policy_.mounts;
  co.network = policy_.network;
  co.private_networks = policy_.private_networks;
  co.secrets = config_.secrets;
  co.requests_per_minute = policy_.requests_per_minute;
  co.cancel = cancel;
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
  p->tool = std::move(tool);
  p->args = std::move(args);
  return std::nullopt;
}

void Agent::RunBatch(std::vector<Pending>& batch, const Totals& totals) {
  if (batch.empty()) return;
  const Budgets& b = policy_.budgets;
  // What is left of the session's fuel is shared out, so calls at once cannot together
  // spend more than the budget; time is the run's deadline for each.
  uint64_t fuel_left = b.fuel - std::min(b.fuel, totals.s.fuel);
  uint64_t fuel_share = fuel_left / batch.size();
  uint64_t elapsed = NowUs() - totals.start_us;
  uint64_t time_left = b.wall_time_us - std::min(b.wall_time_us, elapsed);
  for (Pending& p : batch) {
    p.options.fuel = std::max<uint64_t>(1, std::min(*p.options.fuel, fuel_share));
    p.options.timeout_us = std::max<uint64_t>(1000, std::min(*p.options.timeout_us, time_left));
  }
  std::vector<std::function<void()>> jobs;
  for (Pending& p : batch) {
    jobs.push_back([this, &p] { p.result = registry_.Call(p.call.name, p.args, p.options); });
  }
  if (jobs.size() == 1) {
    jobs[0]();
    return;
  }
  if (!workers_) workers_ = std::make_unique<Workers>();
  workers_->Run(jobs);
}

Message Agent::Finish(Pending& p, Totals& totals, const EventFn& on_event, bool* progress) {
  const tools::CallResult& r = p.result;
  json& rec = p.record;
  ++totals.s.tool_calls;
  totals.s.fuel += r.exec.fuel_used;
  p.end.fuel = r.exec.fuel_used;
  p.end.memory = r.exec.peak_memory_bytes;
  p.end.wall_us = r.exec.wall_us;
  rec["fuel"] = r.exec.fuel_used;
  rec["memory_bytes"] = r.exec.peak_memory_bytes;
  rec["wall_us"] = r.exec.wall_us;
  rec["run_status"] = std::string(RunStatusName(r.exec.status));
  json denials = json::array();
  for (const CapabilityEvent& e : r.exec.denied) {
    denials.push_back({{"operation", e.operation}, {"subject", e.subject}, {"reason", e.reason}});
    if (denials.size() >= 16) break;
  }
  rec["denials"] = denials;
  std::string text = r.result.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string status = r.ok ? "ok" : r.result["error"].value("code", "error");
  if (r.ok && seen_results_.insert(Digest(text)).second) *progress = true;
  p.end.status = status;
  rec["status"] = status;
  rec["decision"] = p.end.decision;
  Audit(rec);
  if (on_event) on_event(p.end);
  return ToolMessage(p.call, BoundResult(text, config_.max_result_bytes));
}

RunSummary Agent::Run(std::vector<Message>& history, const std::string& prompt,
                      const std::function<void(const AgentEvent&)>& on_event,
                      const std::shared_ptr<CancelToken>& cancel) {
  // Listing loads (and, the first time, compiles) the tools: not the agent's time.
  std::vector<ToolSpec> offered = OfferedTools();
  // The counters start from the session's earlier use, so every budget check below is a
  // check of the whole session; this run's own numbers are the difference at the end.
  Totals t;
  const uint64_t run_start_us = NowUs();
  t.s = used_;
  t.start_us = run_start_us - std::min(run_start_us, used_.wall_us);
  const Budgets& b = policy_.budgets;
  const GovernorOptions& g = policy_.governor;
  Price price = policy_.PriceOf(config_.model);
  // Every message joins the history and is handed to the store as it is made, so a crash
  // loses at most the step in flight.
  auto append = [&](Message m) {
    history.push_back(std::move(m));
    if (config_.on_message) config_.on_message(history.back());
  };
  auto stop = [&](StopKind k, std::string message) {
    if (!t.stop) {
      t.stop = k;
      t.stop_message = std::move(message);
    }
  };
  auto warn = [&](const std::string& text) {
    Message m;
    m.role = Message::Role::kUser;
    m.content = "[moat] " + text;
    append(m);
    AgentEvent e;
    e.kind = AgentEvent::Kind::kWarning;
    e.text = text;
    if (on_event) on_event(e);
  };

  if (history.empty() && !config_.system_prompt.empty()) {
    append({Message::Role::kSystem, config_.system_prompt, {}, {}, {}});
  }
  append({Message::Role::kUser, prompt, {}, {}, {}});
  Audit({{"type", "run_start"},
         {"provider", provider_.name()},
         {"model", config_.model},
         {"prompt_sha256", Digest(prompt)},
         {"workspace", config_.workspace}});

  while (!t.stop) {
    if (cancel && cancel->cancelled()) {
      stop(StopKind::kCancelled, "cancelled");
      break;
    }
    if (t.s.steps >= b.steps) {
      stop(StopKind::kSteps, "the budget of " + std::to_string(b.steps) + " steps is used up");
      break;
    }
    if (NowUs() - t.start_us >= b.wall_time_us) {
      stop(StopKind::kWallTime, "the wall-time budget is used up");
      break;
    }
    ++t.s.steps;
    ModelRequest req{config_.model, history, offered};
    auto turn = provider_.Complete(
        req,
        [&](std::string_view text) {
          if (!on_event) return;
          AgentEvent e;
          e.kind = AgentEvent::Kind::kText;
          e.text = std::string(text);
          on_event(e);
        },
        cancel.get());
    if (!turn) {
      if (cancel && cancel->cancelled()) {
        stop(StopKind::kCancelled, "cancelled");
      } else {
        stop(StopKind::kProviderError, provider_.name() + ": " + turn.error().message);
      }
      break;
    }
    t.s.input_tokens += turn->usage.input_tokens;
    t.s.output_tokens += turn->usage.output_tokens;
    double cost = (static_cast<double>(turn->usage.input_tokens) * price.input_per_mtok +
                   static_cast<double>(turn->usage.output_tokens) * price.output_per_mtok) /
                  1e6;
    t.s.cost_usd += cost;
    Audit({{"type", "model_call"},
           {"step", t.s.steps},
           {"model", config_.model},
           {"input_tokens", turn->usage.input_tokens},
           {"output_tokens", turn->usage.output_tokens},
           {"cost_usd", cost},
           {"tool_calls", turn->tool_calls.size()},
           {"stop_reason", turn->stop_reason}});
    Message assistant;
    assistant.role = Message::Role::kAssistant;
    assistant.content = turn->text;
    assistant.tool_calls = turn->tool_calls;
    append(assistant);
    if (turn->tool_calls.empty()) {
      stop(StopKind::kCompleted, "the model finished");
      break;
    }
    if (t.s.input_tokens > b.input_tokens) {
      stop(StopKind::kInputTokens,
           "the budget of " + std::to_string(b.input_tokens) + " input tokens is used up");
    } else if (t.s.output_tokens > b.output_tokens) {
      stop(StopKind::kOutputTokens,
           "the budget of " + std::to_string(b.output_tokens) + " output tokens is used up");
    } else if (b.cost_usd > 0 && t.s.cost_usd > b.cost_usd) {
      char buf[96];
      snprintf(buf, sizeof buf, "the cost budget of $%.2f is used up", b.cost_usd);
      stop(StopKind::kCost, buf);
    }
    bool progress = false;
    // Every call in the turn gets a result, in the turn's order, so the conversation stays
    // well formed even when the run stops part way through it; warnings follow them.
    std::vector<std::optional<Message>> results(turn->tool_calls.size());
    std::vector<std::string> warnings;
    std::vector<Pending> batch;
    auto flush = [&] {
      RunBatch(batch, t);
      for (Pending& p : batch) results[p.index] = Finish(p, t, on_event, &progress);
      batch.clear();
      if (t.s.fuel > b.fuel) {
        stop(StopKind::kFuel, "the fuel budget of " + std::to_string(b.fuel) + " is used up");
      }
      if (cancel && cancel->cancelled()) stop(StopKind::kCancelled, "cancelled");
    };
    auto not_run = [&](const ToolCall& call) {
      return ToolMessage(call, ErrorText("not_run", "the run stopped: " + t.stop_message));
    };
    for (size_t i = 0; i < turn->tool_calls.size(); ++i) {
      const ToolCall& call = turn->tool_calls[i];
      if (t.stop) {
        results[i] = not_run(call);
        continue;
      }
      json canonical = json::parse(call.arguments, nullptr, false);
      std::string key =
          call.name + "\n" + (canonical.is_discarded() ? call.arguments : canonical.dump());
      uint32_t n = ++repeats_[key];
      if (n >= g.repeat_stop) {
        stop(StopKind::kGovernor, "the model called " + call.name + " with the same arguments " +
                                      std::to_string(n) + " times");
        results[i] = not_run(call);
        continue;
      }
      if (t.s.tool_calls + batch.size() >= b.tool_calls) {
        stop(StopKind::kToolCalls,
             "the budget of " + std::to_string(b.tool_calls) + " tool calls is used up");
        results[i] = not_run(call);
        continue;
      }
      std::shared_ptr<const tools::Tool> found = registry_.Find(call.name);
      bool writes = found && found->manifest.capabilities.filesystem == tools::FsAccess::kWrite;
      if (writes) {
        flush();  // what came before it in the turn; then it runs alone
        if (t.stop) {
          results[i] = not_run(call);
          continue;
        }
      }
      Pending p;
      if (auto refused = Prepare(call, found, i, t.s.steps, on_event, cancel, &p)) {
        results[i] = std::move(*refused);
      } else {
        batch.push_back(std::move(p));
        if (writes || batch.size() >= policy_.parallel_tools) flush();
      }
      if (n == g.repeat_warn) {
        warnings.push_back("You called " + call.name + " with the same arguments " +
                           std::to_string(n) +
                           " times; the result will not change. The run "
                           "stops at " +
                           std::to_string(g.repeat_stop) + ".");
      }
    }
    flush();
    for (std::optional<Message>& m : results) append(std::move(*m));
    for (const std::string& w : warnings) warn(w);
    no_progress_ = progress ? 0 : no_progress_ + 1;
    if (!t.stop && no_progress_ >= g.no_progress_stop) {
      stop(StopKind::kGovernor,
           std::to_string(no_progress_) + " steps in a row without a new successful result");
    } else if (!t.stop && no_progress_ == g.no_progress_warn) {
      warn(std::to_string(no_progress_) +
           " steps in a row brought no new successful result. Change approach or finish; the "
           "run stops at " +
           std::to_string(g.no_progress_stop) + ".");
    }
  }
  t.s.stop = *t.stop;
  t.s.message = t.stop_message;
  t.s.wall_us = used_.wall_us + (NowUs() - run_start_us);
  RunSummary session = t.s;
  t.s.steps -= used_.steps;
  t.s.tool_calls -= used_.tool_calls;
  t.s.input_tokens -= used_.input_tokens;
  t.s.output_tokens -= used_.output_tokens;
  t.s.cost_usd -= used_.cost_usd;
  t.s.fuel -= used_.fuel;
  t.s.wall_us -= used_.wall_us;
  used_ = session;
  Audit({{"type", "run_end"},
         {"reason", std::string(StopKindName(t.s.stop))},
         {"message", t.s.message},
         {"steps", t.s.steps},
         {"tool_calls", t.s.tool_calls},
         {"input_tokens", t.s.input_tokens},
         {"output_tokens", t.s.output_tokens},
         {"cost_usd", t.s.cost_usd},
         {"fuel", t.s.fuel},
         {"wall_us", t.s.wall_us},
         {"session_steps", session.steps},
         {"session_cost_usd", session.cost_usd}});
  if (!audit_error_.empty()) t.s.message += " (audit log: " + audit_error_ + ")";
  AgentEvent e;
  e.kind = AgentEvent::Kind::kStop;
  e.text = std::string(StopKindName(t.s.stop)) + ": " + t.s.message;
  if (on_event) on_event(e);
  return t.s;
}

}  // namespace moat::agent
