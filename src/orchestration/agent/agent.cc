#include "orchestration/agent/agent.h"

#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <latch>
#include <mutex>
#include <thread>

#include "base/json_text.h"
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

// Counts add up to the largest value instead of wrapping: a provider's absurd count is a
// spent budget, never a fresh one.
uint64_t SatAdd(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

// What `session` used beyond `before`: a run's own share of the session's counters.
RunSummary Since(const RunSummary& session, const RunSummary& before) {
  RunSummary r = session;
  r.steps -= std::min(r.steps, before.steps);
  r.tool_calls -= std::min(r.tool_calls, before.tool_calls);
  r.input_tokens -= std::min(r.input_tokens, before.input_tokens);
  r.output_tokens -= std::min(r.output_tokens, before.output_tokens);
  r.cost_usd = std::max(0.0, r.cost_usd - before.cost_usd);
  r.fuel -= std::min(r.fuel, before.fuel);
  r.wall_us -= std::min(r.wall_us, before.wall_us);
  return r;
}

std::string Dollars(double usd) {
  char buf[64];
  snprintf(buf, sizeof buf, "$%g", usd);
  return buf;
}

std::string ErrorText(std::string_view code, std::string_view message) {
  return DumpJson(json({{"ok", false}, {"error", {{"code", code}, {"message", message}}}}));
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
  used_.steps = SatAdd(used_.steps, earlier.steps);
  used_.tool_calls = SatAdd(used_.tool_calls, earlier.tool_calls);
  used_.input_tokens = SatAdd(used_.input_tokens, earlier.input_tokens);
  used_.output_tokens = SatAdd(used_.output_tokens, earlier.output_tokens);
  used_.cost_usd += std::max(0.0, earlier.cost_usd);
  used_.fuel = SatAdd(used_.fuel, earlier.fuel);
  used_.wall_us = SatAdd(used_.wall_us, earlier.wall_us);
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
  auto parsed = ParseJson(call.arguments);  // bounded in depth (base/json_text.h)
  if (!parsed) return refuse("invalid_arguments", "the arguments are " + parsed.error().message);
  json args = std::move(*parsed);
  if (!args.is_object()) return refuse("invalid_arguments", "the arguments are not a JSON object");
  if (auto s = tool->manifest.schema.Validate(args, cancel ? cancel->flag() : nullptr); !s) {
    return refuse("invalid_arguments", s.error().message);
  }
  if (decision == Decision::kAsk) {
    std::optional<ApprovalStore> standing;
    if (!config_.approvals_file.empty()) {
      auto loaded = ApprovalStore::Load(config_.approvals_file, config_.workspace);
      if (loaded) standing = std::move(*loaded);  // a broken file grants nothing
    }
    if (always_.count(tool->manifest.name + "\n" + tool->digest) != 0) {
      rec["approver"] = "always (this session)";
    } else if (standing && standing->Allows(tool->manifest.name, tool->digest)) {
      rec["approver"] = "always (" + config_.approvals_file + ")";
    } else {
      Approval a = approver_.Ask({tool.get(), call.arguments});
      rec["approver"] = approver_.name();
      rec["approval"] = a == Approval::kDeny ? "deny" : a == Approval::kAlways ? "always" : "once";
      if (a == Approval::kDeny) return refuse("not_approved", "the user did not approve this call");
      // Scoped to this tool, its module and its manifest (its capabilities come with them).
      if (a == Approval::kAlways) {
        always_.insert(tool->manifest.name + "\n" + tool->digest);
        if (!config_.approvals_file.empty()) {
          if (auto saved = ApprovalStore::Grant(config_.approvals_file, config_.workspace,
                                                tool->manifest.name, tool->digest);
              !saved) {
            rec["approval_error"] = saved.error().message;
          }
        }
      }
    }
  }

  tools::CallOptions& co = p->options;
  co.workspace = config_.workspace;
  co.extra_mounts = policy_.mounts;
  co.protect = config_.protect;
  co.protect.insert(co.protect.end(), policy_.protect.begin(), policy_.protect.end());
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
  // A call runs only once it is on record: when the log cannot take its "tool_start"
  // record (a write error, a log cut short or edited meanwhile), it is refused.
  if (audit_ != nullptr) {
    json started = rec;
    started["type"] = "tool_start";
    started["decision"] = p->end.decision;
    if (auto r = audit_->Append(std::move(started)); !r) {
      if (audit_error_.empty()) audit_error_ = r.error().message;
      return refuse("audit_failed", "the call was not run: its audit record could not be written");
    }
  }
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
  totals.s.fuel = SatAdd(totals.s.fuel, r.exec.fuel_used);
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
  std::string text = DumpJson(r.result);
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
  // A model without a known price is counted at the conservative default, never as free.
  std::optional<Price> known_price = policy_.KnownPrice(config_.model);
  Price price = known_price.value_or(kUnknownModelPrice);
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
  if (!known_price && !price_warned_) {
    price_warned_ = true;
    std::string text = "no price is known for the model \"" + config_.model.substr(0, 100) +
                       "\": its use counts at " + Dollars(price.input_per_mtok) + " in, " +
                       Dollars(price.output_per_mtok) +
                       " out per million tokens (set its price in the provider config or the "
                       "policy's \"prices\")";
    Audit({{"type", "warning"}, {"message", text}});
    AgentEvent e;
    e.kind = AgentEvent::Kind::kWarning;
    e.text = text;
    if (on_event) on_event(e);
  }
  auto elapsed_us = [&] { return NowUs() - t.start_us; };
  // Every budget, checked before each model call (`before`: nothing may be left over,
  // since the call would spend more) and after it (`!before`: the turn went past it).
  // True when one ended the run.
  auto over_budget = [&](bool before) {
    auto past = [before](uint64_t used, uint64_t limit) {
      return before ? used >= limit : used > limit;
    };
    if (past(elapsed_us(), b.wall_time_us)) {
      stop(StopKind::kWallTime, "the wall-time budget is used up");
    } else if (past(t.s.input_tokens, b.input_tokens)) {
      stop(StopKind::kInputTokens,
           "the budget of " + std::to_string(b.input_tokens) + " input tokens is used up");
    } else if (past(t.s.output_tokens, b.output_tokens)) {
      stop(StopKind::kOutputTokens,
           "the budget of " + std::to_string(b.output_tokens) + " output tokens is used up");
    } else if (b.cost_usd > 0 &&
               (before ? t.s.cost_usd >= b.cost_usd : t.s.cost_usd > b.cost_usd)) {
      stop(StopKind::kCost, "the cost budget of " + Dollars(b.cost_usd) + " is used up");
    } else {
      return false;
    }
    return true;
  };
  // This run's use so far, to the session store after every step.
  auto report_usage = [&] {
    if (!config_.on_usage) return;
    RunSummary now = t.s;
    now.wall_us = SatAdd(used_.wall_us, NowUs() - run_start_us);
    config_.on_usage(Since(now, used_));
  };

  while (!t.stop) {
    if (cancel && cancel->cancelled()) {
      stop(StopKind::kCancelled, "cancelled");
      break;
    }
    if (t.s.steps >= b.steps) {
      stop(StopKind::kSteps, "the budget of " + std::to_string(b.steps) + " steps is used up");
      break;
    }
    if (over_budget(true)) break;
    ++t.s.steps;
    report_usage();  // a call begun is a step spent, even if the run is killed during it
    ModelRequest req{config_.model, history, offered};
    // The call is bounded by what is left: its time, and the output tokens the output and
    // cost budgets still allow.
    req.timeout_us = b.wall_time_us - std::min(b.wall_time_us, elapsed_us());
    req.max_output_tokens = b.output_tokens - t.s.output_tokens;
    if (b.cost_usd > 0 && price.output_per_mtok > 0) {
      double affordable = (b.cost_usd - t.s.cost_usd) * 1e6 / price.output_per_mtok;
      if (affordable < static_cast<double>(req.max_output_tokens)) {
        req.max_output_tokens = std::max<uint64_t>(1, static_cast<uint64_t>(affordable));
      }
    }
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
      } else if (elapsed_us() >= b.wall_time_us) {
        stop(StopKind::kWallTime, "the wall-time budget is used up (the model call was cut: " +
                                      turn.error().message + ")");
      } else {
        stop(StopKind::kProviderError, provider_.name() + ": " + turn.error().message);
      }
      break;
    }
    t.s.input_tokens = SatAdd(t.s.input_tokens, turn->usage.input_tokens);
    t.s.output_tokens = SatAdd(t.s.output_tokens, turn->usage.output_tokens);
    double cost = (static_cast<double>(turn->usage.input_tokens) * price.input_per_mtok +
                   static_cast<double>(turn->usage.output_tokens) * price.output_per_mtok) /
                  1e6;
    t.s.cost_usd += cost;
    report_usage();
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
    // A turn that went past a budget ends the run with that budget's stop, whether it
    // called tools (they do not run) or not.
    if (over_budget(false) && turn->tool_calls.empty()) break;
    if (turn->tool_calls.empty()) {
      stop(StopKind::kCompleted, "the model finished");
      break;
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
      if (!batch.empty()) report_usage();
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
      // Text that does not parse (or nests too deeply to) counts as itself.
      auto canonical = ParseJson(call.arguments);
      std::string key = call.name + "\n" + (canonical ? DumpJson(*canonical) : call.arguments);
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
  t.s.wall_us = SatAdd(used_.wall_us, NowUs() - run_start_us);
  RunSummary session = t.s;
  t.s = Since(session, used_);
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
