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

}  // namespace

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
      config_(std::move(config)),
      gate_(registry, policy, approver, audit,
            GateConfig{config_.workspace, config_.protect, config_.secrets, config_.approvals_file,
                       config_.checkpoints}) {}

std::vector<ToolSpec> Agent::OfferedTools() const {
  std::vector<ToolSpec> out;
  for (const auto& t : registry_.List()) {
    if (policy_.DecisionFor(t->manifest) == Decision::kDeny) continue;
    out.push_back({t->manifest.name, t->manifest.description, t->manifest.arguments});
  }
  return out;
}

void Agent::RunBatch(std::vector<GateTicket>& batch, const Totals& totals) {
  if (batch.empty()) return;
  const Budgets& b = policy_.budgets;
  // What is left of the session's fuel is shared out, so calls at once cannot together
  // spend more than the budget; time is the run's deadline for each.
  uint64_t fuel_left = b.fuel - std::min(b.fuel, totals.s.fuel);
  uint64_t fuel_share = fuel_left / batch.size();
  uint64_t elapsed = NowUs() - totals.start_us;
  uint64_t time_left = b.wall_time_us - std::min(b.wall_time_us, elapsed);
  for (GateTicket& t : batch) {
    t.options.fuel = std::max<uint64_t>(1, std::min(*t.options.fuel, fuel_share));
    t.options.timeout_us = std::max<uint64_t>(1000, std::min(*t.options.timeout_us, time_left));
  }
  std::vector<std::function<void()>> jobs;
  for (GateTicket& t : batch) jobs.push_back([this, &t] { gate_.Run(t); });
  if (jobs.size() == 1) {
    jobs[0]();
    return;
  }
  if (!workers_) workers_ = std::make_unique<Workers>();
  workers_->Run(jobs);
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
  // Every record of the run goes through the gate's fail-closed append: a log that cannot
  // take one stops the run before anything more happens.
  auto audit = [&](json record) {
    if (!gate_.Audit(std::move(record))) {
      stop(StopKind::kAuditFailed, "the audit log cannot take records: " + gate_.audit_error());
    }
  };
  auto warn = [&](const std::string& text) {
    Message m;
    m.role = Message::Role::kUser;
    m.content = "[moat] " + text;
    append(m);
    audit({{"type", "warning"}, {"message", text}});
    AgentEvent e;
    e.kind = AgentEvent::Kind::kWarning;
    e.text = text;
    if (on_event) on_event(e);
  };

  if (history.empty() && !config_.system_prompt.empty()) {
    append({Message::Role::kSystem, config_.system_prompt, {}, {}, {}});
  }
  append({Message::Role::kUser, prompt, {}, {}, {}});
  audit({{"type", "run_start"},
         {"provider", provider_.name()},
         {"model", config_.model},
         {"prompt_sha256", Sha256Hex(prompt)},
         {"workspace", config_.workspace}});
  if (!known_price && !price_warned_) {
    price_warned_ = true;
    std::string text = "no price is known for the model \"" + config_.model.substr(0, 100) +
                       "\": its use counts at " + Dollars(price.input_per_mtok) + " in, " +
                       Dollars(price.output_per_mtok) +
                       " out per million tokens (set its price in the provider config or the "
                       "policy's \"prices\")";
    audit({{"type", "warning"}, {"message", text}});
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
    RunSummary now = t.s;
    now.wall_us = SatAdd(used_.wall_us, NowUs() - run_start_us);
    RunSummary mine = Since(now, used_);
    if (config_.on_usage) config_.on_usage(mine);
    if (on_event) {
      AgentEvent e;
      e.kind = AgentEvent::Kind::kUsage;
      e.usage = mine;
      on_event(e);
    }
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
    audit({{"type", "model_call"},
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
    std::vector<GateTicket> batch;
    // A call the gate refused or finished: its result, cut to the context budget.
    auto result_of = [&](const GateTicket& ticket) {
      return ToolMessage(turn->tool_calls[ticket.index],
                         BoundResult(ticket.result_text, config_.max_result_bytes));
    };
    auto audit_check = [&] {
      if (gate_.audit_failed()) {
        stop(StopKind::kAuditFailed, "the audit log cannot take records: " + gate_.audit_error());
      }
    };
    auto flush = [&] {
      RunBatch(batch, t);
      for (GateTicket& ticket : batch) {
        gate_.Finish(ticket, on_event);
        ++t.s.tool_calls;
        t.s.fuel = SatAdd(t.s.fuel, ticket.result.exec.fuel_used);
        progress = progress || ticket.progress;
        results[ticket.index] = result_of(ticket);
      }
      if (!batch.empty()) report_usage();
      batch.clear();
      audit_check();
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
      std::shared_ptr<const tools::Tool> found = gate_.Resolve(call.name);
      bool writes = found && found->manifest.capabilities.filesystem == tools::FsAccess::kWrite;
      if (writes) {
        flush();  // what came before it in the turn; then it runs alone
        if (t.stop) {
          results[i] = not_run(call);
          continue;
        }
      }
      GateTicket ticket;
      ticket.index = i;
      if (!gate_.Admit({call.id, call.name, call.arguments, t.s.steps}, std::move(found), on_event,
                       cancel, &ticket)) {
        results[i] = result_of(ticket);
        audit_check();
      } else {
        batch.push_back(std::move(ticket));
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
  audit({{"type", "run_end"},
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
  if (gate_.audit_failed() && t.s.stop != StopKind::kAuditFailed) {
    t.s.message += " (audit log: " + gate_.audit_error() + ")";
  }
  AgentEvent e;
  e.kind = AgentEvent::Kind::kStop;
  e.stop = t.s.stop;
  e.text = t.s.message;
  e.usage = t.s;
  if (on_event) on_event(e);
  return t.s;
}

}  // namespace moat::agent
