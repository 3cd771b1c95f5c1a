#include "orchestration/session/agent_session.h"

#include <chrono>

#include "orchestration/agent/approvals.h"

namespace moat::session {

using agent::Approval;

// kClient mode: Ask waits for Approve (from another thread), the run's cancellation or the
// timeout, whichever comes first. A call is open to answers from the moment its
// approval_requested event is out (Expect, before the client can see the event), so an
// answer sent right away is never refused as unknown.
class AgentSession::ClientApprover : public agent::Approver {
 public:
  explicit ClientApprover(uint64_t timeout_us) : timeout_us_(timeout_us) {}
  void Expect(const std::string& call_id) {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_.try_emplace(call_id);  // a call already asked keeps its slot
  }
  Approval Ask(const agent::ApprovalRequest& r) override {
    std::unique_lock<std::mutex> lock(mu_);
    Slot& mine = waiting_[r.call_id];
    if (mine.asked) return Approval::kDeny;  // two calls, one id
    mine.asked = true;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(timeout_us_);
    Approval out = Approval::kTimedOut;
    while (true) {
      auto& slot = waiting_[r.call_id];
      if (slot.answer) {
        out = *slot.answer;
        break;
      }
      if (r.cancel && r.cancel->cancelled()) {
        out = Approval::kDeny;
        break;
      }
      // Woken by Approve; a cancelled run is noticed within the short wait.
      if (cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                      std::chrono::milliseconds(50))) ==
              std::cv_status::timeout &&
          std::chrono::steady_clock::now() >= deadline) {
        break;
      }
    }
    waiting_.erase(r.call_id);
    return out;
  }
  std::string name() const override { return "client"; }
  Status Answer(const std::string& call_id, Approval a) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = waiting_.find(call_id);
    if (it == waiting_.end() || it->second.answer) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "no call " + call_id.substr(0, 100) + " is waiting for approval");
    }
    it->second.answer = a;
    cv_.notify_all();
    return OkStatus();
  }

 private:
  struct Slot {
    bool asked = false;  // Ask is waiting on it (else only its event is out)
    std::optional<Approval> answer;
  };
  uint64_t timeout_us_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Slot> waiting_;
};

AgentSession::~AgentSession() = default;

void AgentSession::StoreProblem(const Status& s) {
  if (!s && on_notice_) on_notice_("session store: " + s.error().message);
}

Result<std::unique_ptr<AgentSession>> AgentSession::Open(Services& services,
                                                         SessionOptions options) {
  std::unique_ptr<AgentSession> s(new AgentSession());
  s->on_notice_ = options.on_notice;
  auto ws = Workspace::Open(options.workspace);
  if (!ws) return ws.error();
  s->workspace_ = *ws;
  const std::string& root = s->workspace_.root();
  std::string db_path =
      options.sessions_db.empty() ? s->workspace_.sessions_path() : options.sessions_db;
  bool keep = options.sessions_db != "none";
  if (!options.resume.empty() && !keep) {
    return MakeError(ErrorCode::kInvalidArgument, "--session needs a session store");
  }
  if (keep && options.sessions_db.empty()) {
    if (auto st = s->workspace_.EnsureStateDir(); !st) return st.error();
  }
  // A session goes on with the provider and model it was recorded with, or not at all:
  // never with the built-in demo in place of a model that is not configured here (its
  // turns would act on the real workspace).
  std::string recorded;
  if (!options.resume.empty()) {
    auto opened = agent::SessionStore::Open(db_path);
    if (!opened) return opened.error();
    auto info = (*opened)->Info(options.resume);
    if (!info) return info.error();
    recorded = "session " + options.resume.substr(0, 64) + " was recorded with provider " +
               info->provider.substr(0, 64) + " and model " + info->model.substr(0, 64);
    ProviderChoice& p = options.provider;
    if (info->provider.empty() || (!p.name.empty() && p.name != info->provider) ||
        (!p.model.empty() && !info->model.empty() && p.model != info->model)) {
      return MakeError(ErrorCode::kInvalidArgument, recorded + "; it goes on with those only");
    }
    p.name = info->provider;
    if (p.model.empty()) p.model = info->model;
  }
  auto chosen = services.MakeProvider(options.provider);
  if (!chosen) {
    if (!recorded.empty()) {
      return MakeError(chosen.error().code,
                       recorded + ", which cannot be used here: " + chosen.error().message);
    }
    return chosen.error();
  }
  s->provider_ = std::move(chosen->provider);
  s->model_ = chosen->model;

  // The approver.
  agent::Approver* approver = nullptr;
  switch (options.approval) {
    case ApprovalMode::kDenyAll:
    case ApprovalMode::kAllowAll:
      s->own_approver_ =
          std::make_unique<agent::FixedApprover>(options.approval == ApprovalMode::kAllowAll);
      approver = s->own_approver_.get();
      break;
    case ApprovalMode::kApprover:
      if (options.approver == nullptr) {
        return MakeError(ErrorCode::kInternal, "approval mode kApprover without an approver");
      }
      approver = options.approver;
      break;
    case ApprovalMode::kClient: {
      auto client = std::make_unique<ClientApprover>(options.approval_timeout_us);
      s->client_approver_ = client.get();
      s->own_approver_ = std::move(client);
      approver = s->own_approver_.get();
      break;
    }
  }

  // The policy: a workspace's own file widens nothing until the user trusts it.
  std::map<std::string, agent::Price> user_prices;
  if (chosen->price) user_prices[s->model_] = *chosen->price;
  agent::PolicyFile file;
  auto resolved =
      s->workspace_.ResolvePolicy(options.policy_file, services.registry(), user_prices, &file);
  if (!resolved) return resolved.error();
  if (resolved->applied_in_full()) {
    s->policy_ = resolved->effective;
  } else if (options.ask_trust && options.ask_trust(*resolved, file.path, root)) {
    if (auto st = agent::TrustStore::Trust(Workspace::TrustFile(), root, file.sha256); !st) {
      return st.error();
    }
    s->policy_ = file.policy;
  } else {
    s->policy_ = resolved->effective;
    if (s->on_notice_) {
      size_t n = resolved->widening.size();
      s->on_notice_("not applying what " + file.path + " widens (" + std::to_string(n) + " grant" +
                    (n == 1 ? "" : "s") + "; " +
                    (resolved->trust == agent::PolicyTrust::kChanged
                         ? "it changed since it was trusted"
                         : "not trusted") +
                    "): running with moat's defaults and what it narrows; review and trust it "
                    "with `moat trust --workspace " +
                    root + "`");
    }
  }
  // The configured price of the model, unless the workspace's policy names one.
  if (chosen->price && s->policy_.prices.count(s->model_) == 0) {
    s->policy_.prices[s->model_] = *chosen->price;
  }
  // The audit log: a log that cannot be opened (its chain broken, say) stops the session
  // before it starts; nothing runs unrecorded.
  if (options.audit_file != "none") {
    std::string path = options.audit_file;
    if (path.empty()) {
      if (auto st = s->workspace_.EnsureStateDir(); !st) return st.error();
      path = s->workspace_.audit_path();
    }
    auto log = services.AuditLogAt(path, {s->policy_.audit_sync});
    if (!log) return MakeError(ErrorCode::kAudit, log.error().message);
    s->audit_ = *log;
  }

  auto secrets = services.Secrets(s->policy_.secrets);
  if (!secrets) return secrets.error();
  auto prompt = s->workspace_.SystemPrompt();
  if (!prompt) return prompt.error();

  agent::AgentConfig config;
  config.model = s->model_;
  config.workspace = root;
  if (options.no_default_protect) config.protect.clear();
  for (const std::string& p : options.protect) {
    if (p.empty()) return MakeError(ErrorCode::kInvalidArgument, "--protect needs a pattern");
    config.protect.push_back(p);
  }
  config.secrets = std::move(*secrets);
  config.approvals_file = Workspace::ApprovalsFile();
  config.system_prompt = std::move(*prompt);

  agent::RunSummary earlier;  // a resumed session's runs: the budgets go on from there
  if (keep) {
    auto opened = agent::SessionStore::Open(db_path);
    if (!opened) return opened.error();
    s->store_ = std::move(*opened);
    if (!options.resume.empty()) {
      auto loaded = s->store_->Load(options.resume);
      if (!loaded) return loaded.error();
      s->history_ = std::move(*loaded);
      auto usage = s->store_->Usage(options.resume);
      if (!usage) return usage.error();
      earlier = *usage;
      s->id_ = options.resume;
      s->resumed_ = true;
    } else {
      auto id = s->store_->Create(root, s->provider_->name(), s->model_, options.title);
      if (!id) return id.error();
      s->id_ = *id;
    }
    // What the session's writing calls change, kept to be shown and undone. A store that
    // cannot be opened stops the session: its calls would change files beyond undo.
    if (!options.no_checkpoints) {
      if (auto st = s->workspace_.EnsureStateDir(); !st) return st.error();
      auto dir = s->workspace_.checkpoints_dir(s->id_);
      if (!dir) return dir.error();
      auto cps = undo::CheckpointStore::Open(*dir, s->policy_.checkpoints);
      if (!cps) return cps.error();
      config.checkpoints = std::move(*cps);
    }
    AgentSession* self = s.get();
    config.on_message = [self](const agent::Message& m) {
      self->StoreProblem(self->store_->Append(self->id_, m));
    };
    // The run's use after every model call: a killed run's spending still counts.
    config.on_usage = [self](const agent::RunSummary& so_far) {
      if (self->run_row_ > 0) {
        self->StoreProblem(self->store_->UpdateRun(self->id_, self->run_row_, so_far));
      }
    };
  }
  s->agent_ = std::make_unique<agent::Agent>(*s->provider_, services.registry(), s->policy_,
                                             *approver, s->audit_.get(), std::move(config));
  s->agent_->CountEarlierUse(earlier);
  // Untrusted input: a resumed session stays tainted, and what a run takes in is kept.
  if (s->store_) {
    if (s->resumed_) {
      auto taint = s->store_->Taint(s->id_);
      if (!taint) return taint.error();
      for (agent::TaintSource& t : *taint) s->agent_->gate().AddTaint(std::move(t));
    }
    AgentSession* self = s.get();
    s->agent_->gate().SetTaintSink([self](const agent::TaintSource& t) {
      self->StoreProblem(self->store_->AddTaint(self->id_, t));
    });
  }
  return s;
}

agent::RunSummary AgentSession::Send(
    const std::string& prompt, const std::function<void(const agent::AgentEvent&)>& on_event) {
  previous_cancel_ = std::move(cancel_);
  cancel_ = std::make_shared<CancelToken>();
  std::shared_ptr<CancelToken> cancel = cancel_;
  current_.store(cancel.get(), std::memory_order_release);
  run_row_ = 0;
  if (store_) {
    auto row = store_->BeginRun(id_);
    if (row) {
      run_row_ = *row;
    } else {
      StoreProblem(row.error());
    }
  }
  // A tool loaded for the first time compiles while the run waits: say so.
  CompileWatch watch([&on_event](const std::string& module, std::string_view phase, double s) {
    if (!on_event) return;
    agent::AgentEvent e;
    e.kind = agent::AgentEvent::Kind::kCompile;
    e.tool = module;
    e.status = std::string(phase);
    e.wall_us = static_cast<uint64_t>(s * 1e6);
    on_event(e);
  });
  // A client's answer may come the moment it sees approval_requested: the call is open to
  // it before the event goes out.
  std::function<void(const agent::AgentEvent&)> events = on_event;
  if (client_approver_ != nullptr) {
    events = [this, &on_event](const agent::AgentEvent& e) {
      if (e.kind == agent::AgentEvent::Kind::kApprovalRequested) {
        client_approver_->Expect(e.call_id);
      }
      if (on_event) on_event(e);
    };
  }
  agent::RunSummary last = agent_->Run(history_, prompt, events, cancel);
  if (store_) {
    StoreProblem(run_row_ > 0 ? store_->UpdateRun(id_, run_row_, last)
                              : store_->RecordRun(id_, last));
  }
  current_.store(nullptr, std::memory_order_release);
  return last;
}

void AgentSession::Cancel() {
  // A waiting ClientApprover sees the flag within its 50 ms poll.
  if (CancelToken* t = current_.load(std::memory_order_acquire)) t->Cancel();
}

Status AgentSession::Approve(const std::string& call_id, Approval answer) {
  if (client_approver_ == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "this session's approvals are not a client's");
  }
  if (answer == Approval::kTimedOut) {
    return MakeError(ErrorCode::kInvalidArgument, "an answer is once, always or deny");
  }
  return client_approver_->Answer(call_id, answer);
}

nlohmann::json SessionToJson(const AgentSession& s) {
  return {{"v", agent::kEventVersion},
          {"type", "session"},
          {"id", s.id()},
          {"resumed", s.resumed()},
          {"workspace", s.workspace().root()},
          {"provider", s.provider_name()},
          {"model", s.model()}};
}

}  // namespace moat::session
